#!/usr/bin/env bash
# Before/after: two scimgate binaries (say, the build before a change and after it) on the
# same seeded store, measured in alternation in one run so the ratio B/A is fair on a
# shared machine. Each round runs A then B then A again for each endpoint; B's ratio uses
# the mean of the two A runs around it; the result is the median round.
#   client_credentials  POST /oauth2/token, HTTP Basic (every request commits a token)
#   introspect          POST /oauth2/introspect of a live token
#   scim_get            GET /scim/v2/Users/{id} with a bearer token
#   scim_filter         GET /scim/v2/Users?filter=userName eq "…", a random one of SEED_USERS
#   scim_post           POST /scim/v2/Users, a new User each time (committed before the answer)
#   scim_patch          PATCH /scim/v2/Users/{id} of a random seeded User (a new givenName)
# The two writes run each on a fresh copy of the seeded store.
# Servers pinned to core 0, wrk to core 1, loopback only. Any non-2xx response, or a
# response without the expected body, fails the run. Needs wrk.
# The store is seeded by this tree's `seed` example, or by SEED (say, the older build's, when
# B's schema is newer: B migrates the copy it gets when it opens it).
# Usage: bench/ab.sh BIN_A BIN_B [seconds per run, default 5]   (env: ROUNDS, CONN, SEED_TOKENS, SEED_USERS, SEED)
set -euo pipefail
cd "$(dirname "$0")/.."
A_BIN=$(realpath "$1")
B_BIN=$(realpath "$2")
DUR=${3:-5}
ROUNDS=${ROUNDS:-3}
CONN=${CONN:-32}
SEED_TOKENS=${SEED_TOKENS:-100000}
SEED_USERS=${SEED_USERS:-100000}
R=${CARGO_TARGET_DIR:-$PWD/target}/release
if [ -z "${SEED:-}" ]; then
  cargo build --release --quiet -j 1 --example seed
  SEED=$R/examples/seed
fi
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_workdir

start() { start_server "$1" "$2" SCIMGATE_CLIENT_ISSUANCE_PER_MINUTE=0; } # binary db
stop() { stop_server; }

FAILED=0
run() { # LABEL ROUND URL [wrk args…]
  local label=$1 round=$2 url=$3; shift 3
  wrk_measure "$WORK/out.txt" "$url" "$@"
  printf '  %-28s %10s req/s  p99 %8s%s\n' "$label" "$RPS" "$P99" "${PROBLEMS:+  $PROBLEMS}"
  [ -z "$PROBLEMS" ] || FAILED=1
  echo "$round $label $RPS" >>"$WORK/results"
}

"$SEED" users "$WORK/a.db" "$SEED_USERS"
"$SEED" tokens "$WORK/a.db" "$SEED_TOKENS"
read -r CLIENT_ID CLIENT_SECRET < <("$SEED" client "$WORK/a.db")
BASIC="Authorization: Basic $(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)"
# A SCIM user to read, and a live token for it and for introspection.
start "$A_BIN" "$WORK/a.db"
U="http://127.0.0.1:$PORT"
TOKEN=$(curl -sf -H "$BASIC" -d grant_type=client_credentials "$U/oauth2/token" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
USER_ID=$(curl -sf -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/scim+json' \
  -d '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bench@example.com"}' \
  "$U/scim/v2/Users" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
stop
# Long-lived enough for the whole run (a client_credentials token lives 1 h).
cp "$WORK/a.db" "$WORK/b.db"
# The writes run on a fresh copy of this store each time, so no run writes into a store
# that earlier runs grew (and B migrates its copy, if its schema is newer, before it runs).
cp "$WORK/a.db" "$WORK/seed.db"

oauth_lua "$WORK" "$TOKEN"
cat >"$WORK/get.lua" <<'LUA'
wrk.method = "GET"
LUA
check_lua "$WORK/get.lua" '"bench@example.com"'
filter_lua "$WORK/filter.lua" "$SEED_USERS"
post_lua "$WORK/post.lua"
patch_lua "$WORK/patch.lua" "$SEED_USERS"

echo "A: $A_BIN"
echo "B: $B_BIN"
echo "store: $SEED_TOKENS tokens, $SEED_USERS users; $CONN connections; ${DUR}s per run; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
measure() { # LABEL BIN DB ROUND
  start "$2" "$3"
  local u="http://127.0.0.1:$PORT"
  run "$1 client_credentials" "$4" "$u/oauth2/token" -H "$BASIC" -s "$WORK/cc.lua"
  run "$1 introspect" "$4" "$u/oauth2/introspect" -H "$BASIC" -s "$WORK/introspect.lua"
  run "$1 scim_get" "$4" "$u/scim/v2/Users/$USER_ID" -H "Authorization: Bearer $TOKEN" -s "$WORK/get.lua"
  run "$1 scim_filter" "$4" "$u/" -H "Authorization: Bearer $TOKEN" -s "$WORK/filter.lua"
  stop
  local write
  for write in post patch; do
    rm -f "$WORK/w.db" "$WORK/w.db-wal" "$WORK/w.db-shm"
    cp "$WORK/seed.db" "$WORK/w.db"
    start "$2" "$WORK/w.db"
    run "$1 scim_$write" "$4" "http://127.0.0.1:$PORT/scim/v2/Users" \
      -H "Authorization: Bearer $TOKEN" -s "$WORK/$write.lua"
    stop
  done
}
for ROUND in $(seq "$ROUNDS"); do
  echo "round $ROUND"
  measure A "$A_BIN" "$WORK/a.db" "$ROUND"
  measure B "$B_BIN" "$WORK/b.db" "$ROUND"
  measure A_after "$A_BIN" "$WORK/a.db" "$ROUND"
done

if [ "$FAILED" != 0 ]; then echo "FAILED: non-2xx responses, bad bodies or socket errors; no ratio is reported"; exit 1; fi
python3 - "$WORK/results" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    rnd, who, endpoint, rps = line.split()
    rows.setdefault((int(rnd), endpoint), {})[who] = float(rps)
print()
print("endpoint             rounds of B / mean(A before, A after)     median")
for endpoint in ("client_credentials", "introspect", "scim_get", "scim_filter", "scim_post", "scim_patch"):
    ratios = []
    for (rnd, e), r in sorted(rows.items()):
        if e == endpoint:
            ratios.append(r["B"] / ((r["A"] + r["A_after"]) / 2))
    med = sorted(ratios)[len(ratios) // 2]
    print(f"{endpoint:20s} " + "  ".join(f"{x:.2f}" for x in ratios) + f"     {med:.2f}")
PY
