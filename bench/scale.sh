#!/usr/bin/env bash
# Scale (issue 15): does a rate change with the size of the store? Target: less than 1.2×.
#   tokens  client_credentials and introspection on a store of 1,000 and of 1,000,000
#           access tokens (bench/seed.rs: five clients, expiries spread over two years)
#   users   SCIM GET /Users/{id} and the userName filter (a random seeded user per request)
#           on a store of 100 and of 100,000 Users
# Small and large alternate, ROUNDS rounds (default 3), in one run; the ratio of a round is
# small ÷ large, and the median is printed. Server on core 0, wrk on core 1, every answer
# checked; a run with a bad answer fails the script. Needs wrk.
# Usage: bench/scale.sh [seconds per run, default 5]   (env: ROUNDS, CONN)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-5}
CONN=${CONN:-32}
ROUNDS=${ROUNDS:-3}
cargo build --release --quiet --workspace --bins --example seed
R=$PWD/target/release
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_workdir

FAILED=0
run() { # LABEL URL [wrk args…]
  local label=$1 url=$2; shift 2
  wrk_measure "$WORK/out.txt" "$url" "$@"
  printf '  %-24s %10s req/s  p99 %8s%s\n' "$label" "$RPS" "$P99" "${PROBLEMS:+  $PROBLEMS}"
  [ -z "$PROBLEMS" ] || FAILED=1
  echo "$label $RPS" >>"$WORK/results"
}

t0=$SECONDS
for n in 1000 1000000; do
  "$R/examples/seed" tokens "$WORK/t$n.db" "$n"
  read -r CID CSECRET < <("$R/examples/seed" client "$WORK/t$n.db")
  echo "$CID $CSECRET" >"$WORK/t$n.client"
done
for n in 100 100000; do
  "$R/examples/seed" users "$WORK/u$n.db" "$n"
  "$R/examples/seed" token "$WORK/u$n.db" >"$WORK/u$n.token"
  filter_lua "$WORK/filter$n.lua" "$n"
done
echo "seeded in $((SECONDS - t0)) s: $(du -h "$WORK/t1000000.db" | cut -f1) for 1,000,000 tokens"

for r in $(seq "$ROUNDS"); do
  echo "round $r"
  for n in 1000 1000000; do
    read -r CID CSECRET <"$WORK/t$n.client"
    BASIC="Authorization: Basic $(printf '%s:%s' "$CID" "$CSECRET" | base64 -w0)"
    start_server "$R/scimgate" "$WORK/t$n.db" SCIMGATE_CLIENT_ISSUANCE_PER_MINUTE=0
    U="http://127.0.0.1:$PORT"
    TOKEN=$(curl -sf -H "$BASIC" -d grant_type=client_credentials "$U/oauth2/token" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    oauth_lua "$WORK" "$TOKEN"
    run "cc_$n.$r" "$U/oauth2/token" -H "$BASIC" -s "$WORK/cc.lua"
    run "introspect_$n.$r" "$U/oauth2/introspect" -H "$BASIC" -s "$WORK/introspect.lua"
    stop_server
  done
  for n in 100 100000; do
    AUTH="Authorization: Bearer $(cat "$WORK/u$n.token")"
    start_server "$R/scimgate" "$WORK/u$n.db"
    U="http://127.0.0.1:$PORT"
    check_lua "$WORK/get.lua" '"userName":"user000050@example.com"'
    run "scim_get_$n.$r" "$U/scim/v2/Users/00000000-0000-4000-8000-000000000050" -H "$AUTH" -s "$WORK/get.lua"
    run "filter_$n.$r" "$U/" -H "$AUTH" -s "$WORK/filter$n.lua"
    rm -f "$WORK/get.lua"
    stop_server
  done
done
[ "$FAILED" = 0 ] || { echo "FAILED: a run had bad answers; no ratio is reported"; exit 1; }

python3 - "$WORK/results" <<'PY'
import statistics, sys
r = {k: float(v) for k, v in (l.split() for l in open(sys.argv[1]))}
rounds = sorted({k.rsplit(".", 1)[1] for k in r}, key=int)
for name, small, large in [("client_credentials", "cc_1000", "cc_1000000"),
                           ("introspection", "introspect_1000", "introspect_1000000"),
                           ("SCIM GET by id", "scim_get_100", "scim_get_100000"),
                           ("userName filter", "filter_100", "filter_100000")]:
    ratios = [r[f"{small}.{n}"] / r[f"{large}.{n}"] for n in rounds]
    print(f"{name:20s} small / large: {' '.join(f'{x:.2f}' for x in ratios)}  median {statistics.median(ratios):.2f}  (target < 1.2)")
PY
