#!/usr/bin/env bash
# The 100,000-tag scope of the README's "Tag-heavy: W2": W2's source and
# its complete target (../shared/bench, `./run.sh corpus W2` done), each
# namespace cloned ten times with hard links (no blob copied; about 4
# minutes and 2 million directory entries), served by a second pair of
# distribution registries on :5121 and :5122, and the image list of the
# 100,000 tags. A no-op run then measures memory at 100,000 tags:
#
#   tests/bench/w2x10.sh
#   /usr/bin/time -v regmigrate run --from 127.0.0.1:5121 --to 127.0.0.1:5122 --insecure \
#     --images "$BENCH_STATE/w2x10/images.txt" --out /tmp/w2x10-run --progress lines
#   kill $(cat "$BENCH_STATE"/w2x10/*.pid)
#
# Read-only use only: the clones share their files with W2's.
set -euo pipefail
S=${BENCH_STATE:?set BENCH_STATE to the bench harness state directory}
D=$S/data W=$S/corpus/W2 X=$S/w2x10
mkdir -p "$X"
for side in src-W2:src-W2x10:src:5121 snap-dst-W2:dst-W2x10:dst:5122; do
  IFS=: read -r from to name port <<<"$side"
  if [ ! -d "$D/$to" ]; then
    mkdir -p "$D/$to/docker/registry/v2/repositories"
    cp -al "$D/$from/docker/registry/v2/blobs" "$D/$to/docker/registry/v2/blobs"
    for ns in $(ls "$D/$from/docker/registry/v2/repositories"); do
      for k in 0 1 2 3 4 5 6 7 8 9; do
        cp -al "$D/$from/docker/registry/v2/repositories/$ns" "$D/$to/docker/registry/v2/repositories/${ns}c$k"
      done
    done
  fi
  sed -e "s#$D/$name\$#$D/$to#" -e "s/127.0.0.1:[0-9]*/127.0.0.1:$port/" "$S/conf/$name.yml" > "$X/$name.yml"
  nohup /usr/bin/docker-registry serve "$X/$name.yml" > "$X/$name.log" 2>&1 &
  echo $! > "$X/$name.pid"
done
awk -F/ '{for (k = 0; k < 10; k++) printf "%sc%d/%s\n", $1, k, substr($0, length($1) + 2)}' "$W/images.txt" > "$X/images.txt"
echo "$(wc -l < "$X/images.txt") tags; registries on 127.0.0.1:5121 (source) and :5122 (target)"
