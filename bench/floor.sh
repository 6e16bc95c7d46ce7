#!/usr/bin/env bash
# The floor under issue 15's targets: for each measured endpoint, three servers in one run,
# interleaved, each sent the very same requests (the same wrk scripts and checks as
# bench/oauth.sh and bench/http.sh):
#   ceiling   the bare actix-web server (bench/ceiling.rs): no store at all
#   floor     bench/floor.rs: the least work that answers each request from a SQLite store
#             with scimgate's durability (every write committed, and fsynced, before its
#             answer, by a group commit); no authentication, no parsing, no log
#   scimgate  the server, default settings (access log and monitoring on)
# Endpoints: client_credentials, the userName filter (a random one of 100,000 Users),
# POST /Users, PATCH /Users/{id} (a random one): those whose targets scimgate misses.
# (A GET by id and introspection write nothing and may answer from memory: their floor
# is the ceiling itself.) The store holds 100,000 Users and 100,000 tokens; the floor's
# holds the same Users' documents, byte for byte.
# Every server on core 0 (one worker; the floor's and scimgate's other threads there too),
# wrk on core 1, loopback only.
# Each round measures each endpoint on the three servers in turn, the ceiling sent the very
# same requests as the other two; a round's ratios divide by that endpoint's ceiling run.
# The result per endpoint is the median round; every round is printed. floor ÷ ceiling
# below a target means that no server committing each write before answering reaches that
# target on this machine.
# Any non-2xx answer or wrong body fails the run (no rate is reported).
# Needs wrk (apt-get install wrk).
# Usage: bench/floor.sh [seconds per run, default 5]   (env: ROUNDS (default 3), CONN)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-5}
ROUNDS=${ROUNDS:-3}
CONN=${CONN:-32}
USERS=100000
EXAMPLES="ceiling floor"
# shellcheck source=bench/lib.sh
. bench/lib.sh
release_bins
bench_workdir
FLOOR=""; CEILING=""
trap 'for s in "$FLOOR" "$CEILING"; do [ -n "$s" ] && kill "$s" 2>/dev/null; done; cleanup' EXIT

"$R/examples/seed" users "$WORK/u.db" "$USERS" >/dev/null
"$R/examples/seed" tokens "$WORK/u.db" 100000 >/dev/null
TOKEN=$("$R/examples/seed" token "$WORK/u.db")
read -r CLIENT_ID CLIENT_SECRET < <("$R/examples/seed" client "$WORK/u.db")
BASIC="Authorization: Basic $(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)"
AUTH="Authorization: Bearer $TOKEN"
"$R/examples/floor" prepare "$WORK/u.db" "$WORK/floor.db" >/dev/null

oauth_lua "$WORK" unused
filter_lua "$WORK/filter.lua" "$USERS"
post_lua "$WORK/post.lua"
patch_lua "$WORK/patch.lua" "$USERS"

CEILING_PORT=$(free_port)
taskset -c 0 "$R/examples/ceiling" "127.0.0.1:$CEILING_PORT" >/dev/null 2>&1 &
CEILING=$!
FLOOR_PORT=$(free_port)
taskset -c 0 "$R/examples/floor" serve "$WORK/floor.db" "127.0.0.1:$FLOOR_PORT" >"$WORK/floor.log" 2>&1 &
FLOOR=$!
start_server "$R/scimgate" "$WORK/u.db" SCIMGATE_CLIENT_ISSUANCE_PER_MINUTE=0
for port in "$CEILING_PORT" "$FLOOR_PORT"; do
  for _ in $(seq 100); do curl -so /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
done
echo "store: $USERS users, 100,000 tokens; $CONN connections; ${DUR}s per run; servers on core 0, wrk on core 1"
echo "wrk $(wrk --version 2>&1 | head -1 | awk '{print $2}'); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# run NAME URL [wrk args…]: one measurement; a run with errors reports no rate
run() {
  measure_or_fail "$@"
  echo "$ROUND $1 $RPS" >>"$WORK/results"
}

# each ENDPOINT PATH HEADER SCRIPT: the endpoint's requests to the ceiling, the floor and
# scimgate. The ceiling answers every request with the same 200 and small JSON, so it gets
# the script without its check of the answers (the same requests); the others get it whole.
each() {
  local name=$1 path=$2 header=$3 script=$4
  unchecked "$script" "$script.ceiling"
  run "ceiling_$name" "http://127.0.0.1:$CEILING_PORT$path" -H "$header" -s "$script.ceiling"
  run "floor_$name" "http://127.0.0.1:$FLOOR_PORT$path" -H "$header" -s "$script"
  run "scimgate_$name" "http://127.0.0.1:$PORT$path" -H "$header" -s "$script"
}

for ROUND in $(seq "$ROUNDS"); do
  echo "round $ROUND"
  each client_credentials /oauth2/token "$BASIC" "$WORK/cc.lua"
  each filter /scim/v2/Users "$AUTH" "$WORK/filter.lua"
  each post /scim/v2/Users "$AUTH" "$WORK/post.lua"
  each patch /scim/v2/Users "$AUTH" "$WORK/patch.lua"
done

python3 - "$WORK/results" <<'PY'
import statistics, sys
rounds = {}
for line in open(sys.argv[1]):
    rnd, name, rps = line.split()
    rounds.setdefault(int(rnd), {})[name] = float(rps)
targets = {"client_credentials": 0.5, "filter": 0.4, "post": 0.2, "patch": 0.2}
print()
print("per round and endpoint: the ceiling's req/s; the floor's and scimgate's as ratios to it")
cols = {n: {"floor": [], "scimgate": [], "share": []} for n in targets}
for rnd, r in sorted(rounds.items()):
    cells = []
    for n in targets:
        c = r["ceiling_" + n]
        f, s = r["floor_" + n] / c, r["scimgate_" + n] / c
        cols[n]["floor"].append(f); cols[n]["scimgate"].append(s); cols[n]["share"].append(s / f)
        cells.append(f"{n} {c:6.0f}: {f:.2f} {s:.2f}")
    print(f"  round {rnd}:  " + "   ".join(cells))
print()
print(f"{'endpoint':20s} {'target':>7s} {'floor/ceiling':>14s} {'scimgate/ceiling':>17s} {'scimgate/floor':>15s}   (medians of the rounds)")
for n, t in targets.items():
    m = {k: statistics.median(v) for k, v in cols[n].items()}
    verdict = "the floor is below the target" if m["floor"] < t else ("scimgate meets it" if m["scimgate"] >= t else "the floor reaches it, scimgate does not")
    print(f"{n:20s} {t:7.2f} {m['floor']:14.2f} {m['scimgate']:17.2f} {m['share']:15.2f}   {verdict}")
PY
