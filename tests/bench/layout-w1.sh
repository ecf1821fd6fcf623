#!/usr/bin/env bash
# Registry -> layout and layout -> registry on ../shared/bench W1, beside
# skopeo 1.9 (copy --all --preserve-digests per image, as the runbook's
# loop, to and from dir:, one folder per image, which keeps every manifest
# as it is) and regsync 0.11.7 (ocidir://, one layout per repository),
# with regmigrate's own registry -> registry cold copy, paired in the
# same rounds (issue 15, speed). Every run goes through the
# harness's `run.sh peer candidate cold` (the target registry wiped first,
# wall time, CPU, peak RSS, bytes the source registry served, and for
# runs into the registry the harness's check of every tag against the
# source); each row is copied to $OUT with the variant's name.
#
#   BENCH_STATE=/work/bench-state REGMIGRATE=bin/regmigrate tests/bench/layout-w1.sh [ROUNDS] [VARIANTS] [FIRST_ROUND]
#
# The layouts are kept in $BENCH_STATE/layouts/<tool> between a tool's
# registry -> layout run and its layout -> registry run of the same round.
set -euo pipefail
ROUNDS=${1:-2}
VARIANTS=${2:-"regmigrate-reg2reg regmigrate-reg2oci skopeo-reg2dir regsync-reg2ocidir regmigrate-oci2reg skopeo-dir2reg regsync-ocidir2reg"}
BENCH=${BENCH:-$(cd "$(dirname "$0")/../../.." && pwd)/shared/bench}
[ -x "$BENCH/run.sh" ] || BENCH=/work/shared/bench
: "${BENCH_STATE:?set BENCH_STATE (the bench state folder, W1 generated)}"
REGMIGRATE=$(readlink -f "${REGMIGRATE:-bin/regmigrate}")
[ -x "$REGMIGRATE" ] || { echo "build regmigrate first (make build), or set REGMIGRATE" >&2; exit 2; }
export BENCH_STATE
L=$BENCH_STATE/layouts
OUT=${OUT:-$BENCH_STATE/results/layout-w1.csv}
mkdir -p "$L"
RES=$BENCH_STATE/results
[ -f "$OUT" ] || echo "variant,round,wall_s,user_s,sys_s,maxrss_kb,rc,registry_check,src_served_MB,dst_received_MB" > "$OUT"

cmd_of() {
  case $1 in
    regmigrate-reg2reg) echo "$REGMIGRATE run --from \"\$SRC\" --to \"\$DST\" --insecure --images \"\$IMAGES\" --out \"\$WORK/run\" --progress none" ;;
    regmigrate-reg2oci) echo "$REGMIGRATE run --from \"\$SRC\" --to oci:$L/regmigrate --insecure --images \"\$IMAGES\" --out \"\$WORK/run\" --progress none" ;;
    regmigrate-reg2oci-auto) echo "$REGMIGRATE run --from \"\$SRC\" --to oci:$L/regmigrate --insecure --images \"\$IMAGES\" --out \"\$WORK/run\" --progress none --verify auto" ;;
    regmigrate-oci2reg) echo "$REGMIGRATE run --from oci:$L/regmigrate --to \"\$DST\" --insecure --out \"\$WORK/run\" --progress none" ;;
    skopeo-reg2dir) echo "while read -r i; do d=$L/skopeo/\${i//:/_}; mkdir -p \"\${d%/*}\" && skopeo copy -q --all --preserve-digests --src-tls-verify=false docker://\$SRC/\$i dir:\$d || exit 1; done < \"\$IMAGES\"" ;;
    skopeo-dir2reg) echo "while read -r i; do skopeo copy -q --all --preserve-digests --dest-tls-verify=false dir:$L/skopeo/\${i//:/_} docker://\$DST/\$i || exit 1; done < \"\$IMAGES\"" ;;
    regsync-reg2ocidir|regsync-ocidir2reg)
      local from to
      if [ "$1" = regsync-reg2ocidir ]; then from='$SRC/$r' to="ocidir://$L/regsync/\$r"; else from="ocidir://$L/regsync/\$r" to='$DST/$r'; fi
      echo "{ printf 'version: 1\ncreds:\n  - registry: %s\n    tls: disabled\n  - registry: %s\n    tls: disabled\ndefaults:\n  parallel: 4\nsync:\n' \"\$SRC\" \"\$DST\"; while read -r r; do printf '  - source: %s\n    target: %s\n    type: repository\n' \"$from\" \"$to\"; done < \"\$REPOS\"; } > \"\$WORK/regsync.yaml\" && regsync once -c \"\$WORK/regsync.yaml\" -v warn" ;;
    *) echo "unknown variant $1" >&2; exit 2 ;;
  esac
}

cd "$BENCH"
./run.sh use W1 >/dev/null
FIRST=${3:-1}
for i in $(seq "$FIRST" $((FIRST + ROUNDS - 1))); do
  for v in $VARIANTS; do
    case $v in # a tool's layout is written anew each round (not timed)
      regmigrate-reg2oci*) rm -rf "$L/regmigrate" ;;
      skopeo-reg2dir) rm -rf "$L/skopeo"; mkdir -p "$L/skopeo" ;;
      regsync-reg2ocidir) rm -rf "$L/regsync" ;;
    esac
    CANDIDATE_CMD=$(cmd_of "$v") ./run.sh peer candidate cold "$i" || true
    row=$(tail -1 "$RES/results.csv"); io=$(tail -1 "$RES/io.csv")
    # ts,workload,peer,scenario,iter,wall_s,user_s,sys_s,maxrss_kb,registry_cpu_s,rc,correct,check
    IFS=, read -r _ _ _ _ _ wall user sys rss _ rc ok _ <<< "$row"
    IFS=, read -r _ _ _ _ _ srcmb dstmb _ <<< "$io"
    case $v in *2reg) ;; *) [ "$v" = regmigrate-reg2reg ] || ok=n/a ;; esac
    echo "$v,$i,$wall,$user,$sys,$rss,$rc,$ok,$srcmb,$dstmb" | tee -a "$OUT"
  done
done
