#!/usr/bin/env bash
# What power-loss durability costs token issuance (issue 11): client_credentials against
# two servers on copies of one store, one with durable_commits=true (synchronous=FULL, the
# default: every commit fsyncs the WAL) and one with durable_commits=false (NORMAL: fsync
# only at checkpoints). Both run at once, pinned to core 0 (the one not measured is idle);
# wrk on core 1; ROUNDS interleaved rounds; every response checked (a non-2xx or a body
# without "access_token" fails the run). Prints each round and the median ratio
# full ÷ normal. Needs wrk and sqlite3 (apt-get install wrk sqlite3).
# Usage: bench/durability.sh [seconds per run, default 5]   (env: ROUNDS, CONN, SEED_TOKENS)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-5}
ROUNDS=${ROUNDS:-5}
CONN=${CONN:-32}
SEED_TOKENS=${SEED_TOKENS:-100000}
cargo build --release --quiet -j 1 --bin scimgate --example seed
R=${CARGO_TARGET_DIR:-$PWD/target}/release
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
# shellcheck source=bench/lib.sh
. bench/lib.sh

"$R/examples/seed" tokens "$WORK/full.db" "$SEED_TOKENS"
read -r CLIENT_ID CLIENT_SECRET < <("$R/examples/seed" client "$WORK/full.db")
sqlite3 "$WORK/full.db" 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
cp "$WORK/full.db" "$WORK/normal.db"
BASIC="Authorization: Basic $(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)"

declare -A URL
for mode in full normal; do
  port=$(free_port)
  durable=true; [ "$mode" = normal ] && durable=false
  SCIMGATE_DURABLE_COMMITS=$durable SCIMGATE_CLIENT_ISSUANCE_PER_MINUTE=0 \
    taskset -c 0 "$R/scimgate" serve --db "$WORK/$mode.db" --listen "127.0.0.1:$port" \
    >"$WORK/$mode.log" 2>&1 &
  PIDS+=($!)
  URL[$mode]="http://127.0.0.1:$port"
  for _ in $(seq 100); do curl -sf "${URL[$mode]}/healthz" >/dev/null && break; sleep 0.1; done
  curl -sf -H "$BASIC" -d grant_type=client_credentials "${URL[$mode]}/oauth2/token" | grep -q access_token
done

cat >"$WORK/cc.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA
check_lua "$WORK/cc.lua" '"access_token"'

echo "store: $SEED_TOKENS tokens; $CONN connections; ${DUR}s per run; servers on core 0, wrk on core 1"
FAILED=0
for ROUND in $(seq "$ROUNDS"); do
  for mode in full normal; do
    sync
    taskset -c 1 wrk -t1 -c"$CONN" -d"${DUR}s" --latency -H "$BASIC" -s "$WORK/cc.lua" \
      "${URL[$mode]}/oauth2/token" >"$WORK/out.txt"
    rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/out.txt")
    p99=$(awk '$1=="99%" {print $2}' "$WORK/out.txt")
    bad=$(awk '/Bad responses:/ {print $3}' "$WORK/out.txt")
    non2xx=$(awk '/Non-2xx/ {print $5}' "$WORK/out.txt")
    printf 'round %s %-7s %10s tokens/s  p99 %8s  bad %s%s\n' "$ROUND" "$mode" "$rps" "$p99" "$bad" \
      "${non2xx:+  NON-2XX: $non2xx}"
    { [ "$bad" != 0 ] || [ -n "$non2xx" ]; } && FAILED=1
    echo "$ROUND $mode $rps" >>"$WORK/results"
  done
done
[ "$FAILED" = 0 ] || { echo "FAILED: a response was not a 200 with a token; no figure is reported"; exit 1; }
python3 - "$WORK/results" <<'PY'
import statistics, sys
rounds = {}
for line in open(sys.argv[1]):
    rnd, mode, rps = line.split()
    rounds.setdefault(rnd, {})[mode] = float(rps)
ratios = [r["full"] / r["normal"] for r in rounds.values()]
print("full ÷ normal per round: " + ", ".join(f"{x:.2f}" for x in ratios))
print(f"median: {statistics.median(ratios):.2f}")
PY
