#!/usr/bin/env bash
# Why regsync's W2 no-op leads on the shared bench: two registries and the
# client share two cores there. This sends the no-op's 20,000 manifest
# HEADs (W2's 10,000 tags, to the source and to the target) with the
# load generator in ./colocated, interleaved (both registries busy at once,
# as regmigrate asks) and phased (one registry at a time), and runs
# regsync's and regmigrate's own no-ops beside them. Each run gets freshly
# started registries (the harness's `run.sh down; run.sh up`, W2 in use
# with a complete target) and prints the registries' CPU seconds and
# voluntary context switches during the run:
#
#   BENCH_STATE=/work/bench-state REGMIGRATE=bin/regmigrate tests/bench/colocated.sh [ROUNDS] [VARIANTS]
#
# VARIANTS: interleaved phased regsync regmigrate (all by default).
set -euo pipefail
ROUNDS=${1:-2}
VARIANTS=${2:-"interleaved phased regsync regmigrate"}
BENCH=${BENCH:-$(cd "$(dirname "$0")/../../.." && pwd)/shared/bench}
[ -x "$BENCH/run.sh" ] || BENCH=/work/shared/bench
: "${BENCH_STATE:?set BENCH_STATE (the bench state folder, W2 generated and in use)}"
export BENCH_STATE
HERE=$(cd "$(dirname "$0")" && pwd)
W=$BENCH_STATE/corpus/W2
RUN=$BENCH_STATE/run
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
(cd "$HERE/colocated" && go build -o "$TMP/colocated" .)
REGMIGRATE=$(readlink -f "${REGMIGRATE:-bin/regmigrate}")
{ echo "version: 1"; echo "creds:"
  for p in 5101 5102; do echo "  - registry: 127.0.0.1:$p"; echo "    tls: disabled"; done
  echo "defaults:"; echo "  parallel: 4"; echo "sync:"
  while read -r r; do printf '  - source: 127.0.0.1:5101/%s\n    target: 127.0.0.1:5102/%s\n    type: repository\n' "$r" "$r"; done < "$W/repos.txt"
} > "$TMP/regsync.yaml"
cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14+$15)/hz}' "/proc/$(cat "$RUN/$1.pid")/stat"; }
csw() { cat "/proc/$(cat "$RUN/$1.pid")"/task/*/status | awk '/^voluntary_ctxt/{v+=$2} END{print v}'; }
echo "variant,round,wall_s,src_cpu_s,dst_cpu_s,registry_csw"
for i in $(seq "$ROUNDS"); do
  for v in $VARIANTS; do
    case $v in
      interleaved|phased) cmd=("$TMP/colocated" -list "$W/images.txt" -mode "$v") ;;
      regsync) cmd=("$BENCH_STATE/bin/regsync" once -c "$TMP/regsync.yaml" -v warn) ;;
      regmigrate) cmd=("$REGMIGRATE" run --from 127.0.0.1:5101 --to 127.0.0.1:5102 --insecure --images "$W/images.txt" --out "$TMP/run" --progress none) ;;
      *) echo "unknown variant $v" >&2; exit 2 ;;
    esac
    "$BENCH/run.sh" down >/dev/null 2>&1; "$BENCH/run.sh" up >/dev/null; sleep 1
    s0=$(cpu src); d0=$(cpu dst); c0=$(( $(csw src) + $(csw dst) )); t0=$(date +%s.%N)
    "${cmd[@]}" > "$TMP/out" 2>&1 || { echo "$v failed:" >&2; tail -5 "$TMP/out" >&2; exit 1; }
    t1=$(date +%s.%N); s1=$(cpu src); d1=$(cpu dst); c1=$(( $(csw src) + $(csw dst) ))
    rm -rf "$TMP/run"
    printf '%s,%s,%.2f,%.2f,%.2f,%s\n' "$v" "$i" "$(echo "$t1-$t0" | bc)" "$(echo "$s1-$s0" | bc)" "$(echo "$d1-$d0" | bc)" "$((c1-c0))"
  done
done
"$BENCH/run.sh" down >/dev/null 2>&1
