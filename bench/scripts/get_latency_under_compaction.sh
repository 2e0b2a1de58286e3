#!/bin/bash
# GET latency while overwrites drive flushes and compactions, against the same with compaction
# off, in one run: an open-loop get load (nacre-loadgen --rate, so a stall's queueing shows)
# beside a closed-loop overwrite load, on one nacred per setting. It reports; it asserts nothing.
#
#   cargo build --release -p nacre-daemon -p nacre-cli -p nacre-loadgen
#   bench/scripts/get_latency_under_compaction.sh [TARGET_DIR] [WORK_DIR]
#
# Client and server share the machine's cores: compare the two settings' lines, not absolute
# times. COMPACTION_SETTINGS (lines for [compaction], e.g. "hot_max_runs = 2") and
# EXTRA_CONFIG (more sections, e.g. "[diagnostics]\nstall_report_ms = 5") tune both servers.
set -euo pipefail
target=${1:-target/release}
work=${2:-/var/tmp/nacre-get-latency}
addr=127.0.0.1:27170
keys=200000
for enabled in true false; do
  data=$work/data-$enabled
  rm -rf "$data"
  mkdir -p "$data"
  cat > "$work/nacred-$enabled.toml" <<CONF
partitions = 8
[memory]
memtable_budget_bytes = 16777216
memtable_ceiling_bytes = 67108864
[compaction]
enabled = $enabled
$(printf '%b' "${COMPACTION_SETTINGS:-}")
$(printf '%b' "${EXTRA_CONFIG:-}")
CONF
  "$target/nacred" --config "$work/nacred-$enabled.toml" --data-dir "$data" --listen $addr --cores 2 \
    > "$work/nacred-$enabled.log" 2>&1 &
  server=$!
  for _ in $(seq 50); do "$target/nacre" --addr $addr stats > /dev/null 2>&1 && break; sleep 0.2; done
  "$target/nacre-loadgen" --progress-interval 0s --addr $addr --workload get --keys $keys --preload --duration 1s --warmup 0s --seed 1 > /dev/null
  "$target/nacre-loadgen" --progress-interval 0s --addr $addr --workload put --keys $keys --connections 2 --pipeline 8 --durability async \
    --duration 50s --warmup 0s --seed 2 > "$work/writer-$enabled.txt" &
  writer=$!
  sleep 5
  "$target/nacre-loadgen" --progress-interval 0s --addr $addr --workload get --keys $keys --connections 4 --pipeline 4 --rate 4000 \
    --duration 40s --warmup 2s --seed 3 > "$work/reader-$enabled.txt"
  wait $writer
  "$target/nacre" --addr $addr stats --partitions | awk '/compactions_total|segment_count|cache_hits_total|cache_misses_total/ {s[$1] += $NF} END {for (k in s) print k, s[k]}' \
    > "$work/stats-$enabled.txt" || true
  kill -TERM $server
  wait $server || true
  echo "== compaction.enabled = $enabled (op count ops/s p50 p90 p99 p99.9 p99.99 max, us)"
  grep -h -E "^(read|update) " "$work/reader-$enabled.txt" "$work/writer-$enabled.txt"
  cat "$work/stats-$enabled.txt"
done
