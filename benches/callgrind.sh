#!/usr/bin/env bash
# User-space instructions per delivery of the release herald (--threads 1)
# under a herald-bench load: callgrind on two runs, LONG and SHORT seconds
# of publishing (default 4 and 1), and (Ir_long - Ir_short) /
# (delivered_long - delivered_short), so start-up and shut-down cancel.
#
#   cargo build --release -p herald -p herald-bench
#   benches/callgrind.sh --subscribers 10 --patterns --pipeline 32   # 10 pattern subs
#   benches/callgrind.sh                                             # 1 -> 1, unpipelined
#   HERALD_BIN=/tmp/old-herald benches/callgrind.sh                  # another build
#
# The arguments go to herald-bench. Prints one line: the figure, and each
# run's instructions and deliveries.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${HERALD_BIN:-target/release/herald}
LONG=${LONG:-4}
SHORT=${SHORT:-1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

run() { # seconds -> "instructions delivered"
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.$1" "$BIN" --port "$port" --threads 1 \
    >/dev/null 2>"$work/valgrind.$1" &
  local pid=$!
  for _ in $(seq 600); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  local line
  line=$(target/release/herald-bench --addr "127.0.0.1:$port" --seconds "$1" "${@:2}" | tail -1)
  kill -INT "$pid"
  wait "$pid" || true
  case "$line" in *duplicates=0\ reorders=0\ lost=0*) ;; *) echo "bad run: $line" >&2; exit 1 ;; esac
  local delivered ir
  delivered=$(sed -E 's/.*delivered=([0-9]+).*/\1/' <<<"$line")
  ir=$(grep -E '^(summary|totals):' "$work/cg.$1" | tail -1 | awk '{print $2}')
  echo "$ir $delivered"
}

read -r ir_long del_long < <(run "$LONG" "$@")
read -r ir_short del_short < <(run "$SHORT" "$@")
echo "instructions/delivery=$(( (ir_long - ir_short) / (del_long - del_short) )) long=${ir_long}/${del_long} short=${ir_short}/${del_short}"
