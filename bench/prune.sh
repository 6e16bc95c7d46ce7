#!/usr/bin/env bash
# What `config prune-tokens` costs a running server: client_credentials issuance (the
# server's hottest write path) measured alone, then while `config prune-tokens` deletes
# EXPIRED (default 1,000,000) tokens that expired 100 days ago, in the same run. Server
# pinned to core 0, wrk and config to core 1, loopback only. Prints req/s, p50, p99 and
# max of both, the prune's wall time, and the ratio of the two issuance rates.
# Needs wrk (apt-get install wrk).
# Usage: bench/prune.sh [seconds per run, default 8]   (env: EXPIRED, CONN)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-8}
EXPIRED=${EXPIRED:-1000000}
CONN=${CONN:-32}
cargo build --release --quiet --workspace --bins --example seed
R=${CARGO_TARGET_DIR:-$PWD/target}/release
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_workdir
export SCIMGATE_DB=$WORK/s.db SCIMGATE_TOOL_PASSWORD=bench-password
"$R/config" init >/dev/null
"$R/examples/seed" tokens "$SCIMGATE_DB" 100000
"$R/examples/seed" expired "$SCIMGATE_DB" "$EXPIRED"
read -r CLIENT_ID CLIENT_SECRET < <("$R/examples/seed" client "$SCIMGATE_DB")
BASIC="Authorization: Basic $(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)"
PORT=$(free_port)
SCIMGATE_CLIENT_ISSUANCE_PER_MINUTE=0 taskset -c 0 "$R/scimgate" serve --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
cat >"$WORK/cc.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA
measure() { # NAME
  sync
  taskset -c 1 wrk -t1 -c"$CONN" -d"${DUR}s" --latency -H "$BASIC" -s "$WORK/cc.lua" \
    "http://127.0.0.1:$PORT/oauth2/token" >"$WORK/$1.txt"
  awk -v n="$1" '/Requests\/sec/ {r=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2}
    $1=="Latency" && $2 ~ /^[0-9]/ {max=$4} /Non-2xx/ {bad=$5}
    END {printf "%-12s %10s req/s  p50 %8s  p99 %8s  max %8s%s\n", n, r, p50, p99, max, (bad ? "  NON-2XX " bad : "")}' \
    "$WORK/$1.txt"
}
echo "store: 100000 live and $EXPIRED expired tokens; $CONN connections; ${DUR}s per run"
measure alone
# The prune starts a second into the measurement and must end before it does.
(sleep 1; start=$(date +%s.%N)
 taskset -c 1 "$R/config" prune-tokens --expired-for 30d >"$WORK/prune.txt"
 echo "$start $(date +%s.%N)" >"$WORK/prune.time") &
PRUNE=$!
measure with_prune
wait "$PRUNE"
cat "$WORK/prune.txt"
python3 - "$WORK" "$DUR" <<'PY'
import sys
work, dur = sys.argv[1], float(sys.argv[2])
start, end = map(float, open(f"{work}/prune.time").read().split())
rps = {n: float(next(l.split()[1] for l in open(f"{work}/{n}.txt") if "Requests/sec" in l))
       for n in ("alone", "with_prune")}
print(f"prune wall time: {end - start:.2f} s (inside the {dur:.0f} s run: {end - start < dur - 1})")
print(f"issuance while pruning / alone = {rps['with_prune'] / rps['alone']:.2f}")
PY
