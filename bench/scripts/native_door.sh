#!/bin/bash
# The native door's cost per operation: nacre-loadgen (25 sessions, each with a connection per
# shard, so 50 connections on two shards, each key sent to its owner) against nacred, async acknowledgements, GET and PUT at the given pipeline
# depths. For each run it prints the rate, nacred's operations per server CPU-second (utime +
# stime from /proc over the measured run) and nacred's allocations per operation (the change in
# every shard's `allocations_total` over the run, over the operations). Client and server share
# the machine's cores, so compare figures of one run, or of runs alternating two binaries. It
# reports; it asserts nothing.
#
#   cargo build --release -p nacre-daemon -p nacre-cli -p nacre-loadgen
#   bench/scripts/native_door.sh [TARGET_DIR] [WORK_DIR] [PIPELINES] [NACRED]
#   (MEASURE_SECONDS=3 for shorter runs)
set -euo pipefail
target=${1:-target/release}
work=${2:-/var/tmp/nacre-native-door}
pipelines=${3:-16 1}
nacred=${4:-$target/nacred}
addr=127.0.0.1:27370
measure_seconds=${MEASURE_SECONDS:-8}
rm -rf "$work" && mkdir -p "$work"
"$nacred" --data-dir "$work/data" --listen $addr > "$work/nacred.log" 2>&1 &
server=$!
trap 'kill -TERM $server 2> /dev/null; wait $server 2> /dev/null || true' EXIT
for _ in $(seq 50); do "$target/nacre" --addr $addr stats > /dev/null 2>&1 && break; sleep 0.2; done
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
allocations() { "$target/nacre" --addr $addr stats | awk '$1 == "allocations_total" {s += $NF} END {print s + 0}'; }
loadgen() { "$target/nacre-loadgen" --addr $addr --connections 25 --durability async --progress-interval 0s "$@"; }
# Every key written once, so gets hit.
loadgen --pipeline 16 --phase load > /dev/null
ticks_per_second=$(getconf CLK_TCK)
printf '%-4s %3s %12s %16s %10s\n' test -P 'op/s' 'op/server-cpu-s' 'allocs/op'
for pipeline in $pipelines; do
  for workload in get put; do
    a0=$(allocations)
    t0=$(cpu_ticks)
    # A session's slots spread over its connections: twice the depth keeps about $pipeline in
    # flight per connection on two shards.
    out=$(loadgen --pipeline $((2 * pipeline)) --workload $workload --duration ${measure_seconds}s --warmup 0s)
    t1=$(cpu_ticks)
    a1=$(allocations)
    # The stats calls themselves allocate a little; against millions of operations it rounds away.
    echo "$out" | awk -v t=$((t1 - t0)) -v hz="$ticks_per_second" -v a=$((a1 - a0)) -v w=$workload -v p="$pipeline" \
      '$1 == "all" {printf "%-4s %3s %12d %16.0f %10.2f\n", w, p, $3, $2 / (t / hz), a / $2}'
  done
done
