#!/bin/bash
# GET throughput through the RESP door after sustained overwrites, against a fresh store holding
# the same keys, in one run: 4,000,000 SETs of 1,000 keys (redis-benchmark, 100-byte values,
# pipelined 16, in chunks of 500,000) with compaction on and off, then, once the compaction queue
# is idle and after a restart (every read from segments), GETs of the same keys. Prints each
# store's GET rate (twice), data directory size, segment count and resident memory. It reports;
# it asserts nothing.
#
#   cargo build --release -p nacre-daemon -p nacre-cli
#   bench/scripts/get_after_sustained_overwrite.sh [TARGET_DIR] [WORK_DIR]
set -euo pipefail
target=${1:-target/release}
work=${2:-/var/tmp/nacre-sustained}
resp=26379
native=127.0.0.1:27270
mkdir -p "$work"
start() { # data dir, compaction enabled
  printf '[compaction]\nenabled = %s\n' "$2" > "$work/nacred-$2.toml"
  "$target/nacred" --config "$work/nacred-$2.toml" --data-dir "$1" --listen $native --resp-listen 127.0.0.1:$resp \
    --cores 2 >> "$1.log" 2>&1 &
  server=$!
  for _ in $(seq 50); do "$target/nacre" --addr $native stats > /dev/null 2>&1 && break; sleep 0.2; done
}
stop() { kill -TERM "$server"; wait "$server" || true; }
get_rate() {
  redis-benchmark -p $resp -t get -r 1000 -d 100 -P 16 -n 2000000 --csv -q 2> /dev/null | tail -1 | cut -d, -f2 | tr -d '"'
}
stat_sum() { "$target/nacre" --addr $native stats "${@:2}" | awk -v k="$1" '$1 == k {s += $NF} END {print s + 0}'; }
for store in fresh compaction-on compaction-off; do
  data=$work/data-$store
  rm -rf "$data" "$data.log"
  mkdir -p "$data"
  enabled=true
  [ $store = compaction-off ] && enabled=false
  start "$data" $enabled
  if [ $store = fresh ]; then
    redis-benchmark -p $resp -t set -r 1000 -d 100 -P 16 -n 5000 -q > /dev/null 2>&1
  else
    for _ in $(seq 8); do redis-benchmark -p $resp -t set -r 1000 -d 100 -P 16 -n 500000 -q > /dev/null 2>&1; done
  fi
  for _ in $(seq 60); do [ "$(stat_sum compaction_queue_length)" = 0 ] && break; sleep 1; done
  stop
  start "$data" $enabled
  first=$(get_rate)
  second=$(get_rate)
  echo "$store: GET/s $first, $second; data $(du -sm "$data" | cut -f1) MiB;" \
    "segments $(stat_sum segment_count --partitions), $(stat_sum segment_bytes --partitions) bytes;" \
    "resident $(ps -o rss= -p "$server") KiB"
  stop
done
