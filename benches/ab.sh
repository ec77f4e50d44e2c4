#!/usr/bin/env bash
# Two herald builds under the same herald-bench load, alternated round by
# round (A B, B A, ...), one fresh server per run. Prints one line per run:
# the build's label and herald-bench's summary.
#
#   cargo build --release -p herald -p herald-bench
#   A=/tmp/old-herald B=target/release/herald ROUNDS=6 THREADS=2 benches/ab.sh           # 1 -> 1
#   A=/tmp/old-herald B=target/release/herald benches/ab.sh --pipeline 32                # more herald-bench args
#
# Readiness is read from the server's log, not probed with a connection:
# a probe takes a client id, and a connection's arbiter is its id modulo
# the arbiters, so a probe moves the publisher and the subscriber to other
# arbiters relative to the channel's (BENCHMARKS.md, session 11).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${A:?the first build, e.g. A=/tmp/old-herald}" "${B:?the second build}"
ROUNDS=${ROUNDS:-4}
THREADS=${THREADS:-1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for round in $(seq "$ROUNDS"); do
  order="A B"
  [ $((round % 2)) -eq 0 ] && order="B A"
  for which in $order; do
    bin=${!which}
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$bin" --port "$port" --threads "$THREADS" >"$work/log" 2>&1 &
    pid=$!
    for _ in $(seq 200); do
      grep -q "ready to accept connections" "$work/log" && break
      sleep 0.05
    done
    line=$(target/release/herald-bench --addr "127.0.0.1:$port" --seconds 3 "$@" | tail -1)
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    echo "$which $line"
  done
done
