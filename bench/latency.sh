#!/usr/bin/env bash
# Latency at half load, and memory (issue 15), on one store holding 100,000 tokens and
# 100,000 SCIM users (endpoints: client_credentials, introspection, SCIM GET by id, the
# userName filter, POST /Users, PATCH /Users/{id} of a random user), default settings
# (durable commits, access log and monitoring on).
# For each endpoint: its maximum rate closed-loop (wrk, DUR s), then an open-loop load at
# half that rate for DUR s (bench/rate.rs: latency from when each request was due, so a
# stall counts for every request it delays); p99 target 5 ms. Then the same open-loop load,
# at the same rate, sent to the bare actix-web ceiling (bench/ceiling.rs, on core 0 beside
# the idle scimgate): its p99 is what this host and the load generator add to any server's
# tail at that rate, in the same minute, so a tail scimgate causes is told from the
# host's. For the endpoints whose targets need the store (client_credentials, the filter,
# POST, PATCH), the same load goes to the floor (bench/floor.rs, on core 0 too, on a copy
# of the same Users: the least work that answers those requests from a durable SQLite
# store) twice: at the same rate, and at half of the floor's own maximum (measured as
# scimgate's). A p99 the floor misses at half of its own maximum is out of reach, on this
# machine, of any server that commits each write before answering.
# Each open-loop run also reports the share of core 0 its server used: requests
# that arrive one at a time cost a server more CPU each than wrk's batches do (each one
# wakes it and its client), so half of the closed-loop maximum is more than half of
# the core. Memory: the server's resident set (VmRSS) idle after start, and its peak
# (VmHWM) after all the loads.
# Server on core 0, load generators on core 1, loopback only; every answer is checked
# (status and body), and a run with a bad answer fails the script.
# Needs wrk. Usage: bench/latency.sh [seconds per run, default 10]   (env: CONN; BIN, another
# scimgate binary to measure instead of this tree's, for a before/after of the tails;
# TRACES, a directory to write each open-loop run's `--trace` to, named for the endpoint)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
CONN=${CONN:-32}
cargo build --release --quiet --workspace --bins --example seed --example rate --example ceiling \
  --example floor
R=$PWD/target/release
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_workdir

DB=$WORK/s.db
"$R/examples/seed" tokens "$DB" 100000
"$R/examples/seed" users "$DB" 100000
TOKEN=$("$R/examples/seed" token "$DB")
read -r CLIENT_ID CLIENT_SECRET < <("$R/examples/seed" client "$DB")
BASIC="Authorization: Basic $(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)"
AUTH="Authorization: Bearer $TOKEN"
# Introspection is of a token of the introspecting client (another client's reads inactive).
CC_TOKEN=""
USER_PATH=/scim/v2/Users/00000000-0000-4000-8000-000000050000
"$R/examples/floor" prepare "$DB" "$WORK/floor.db" >/dev/null
start_server "$(realpath "${BIN:-$R/scimgate}")" "$DB" SCIMGATE_CLIENT_ISSUANCE_PER_MINUTE=0
B="http://127.0.0.1:$PORT"
CEILING_PORT=$(free_port)
taskset -c 0 "$R/examples/ceiling" "127.0.0.1:$CEILING_PORT" >/dev/null 2>&1 &
CEILING=$!
C="http://127.0.0.1:$CEILING_PORT"
FLOOR_PORT=$(free_port)
taskset -c 0 "$R/examples/floor" serve "$WORK/floor.db" "127.0.0.1:$FLOOR_PORT" >"$WORK/floor.log" 2>&1 &
FLOOR=$!
F="http://127.0.0.1:$FLOOR_PORT"
trap 'kill "$CEILING" "$FLOOR" 2>/dev/null; cleanup' EXIT
for u in "$C" "$F"; do
  for _ in $(seq 100); do curl -so /dev/null "$u/" && break; sleep 0.1; done
done
rss() { awk -v k="$1:" '$1 == k {printf "%.1f", $2 / 1024}' "/proc/$SERVER/status"; }
# cpu_ticks PID: the process's user + system time so far, in clock ticks (all its threads).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# busy PID TICKS_BEFORE: the share of one core PID used since TICKS_BEFORE, over DUR s.
busy() { python3 -c "print('%.0f %%' % ((int('$(cpu_ticks "$1")') - int('$2')) * 100 / $(getconf CLK_TCK) / $DUR))"; }
sleep 2
IDLE=$(rss VmRSS)
echo "store: 100000 tokens, 100000 users; server idle: VmRSS $IDLE MiB"

CC_TOKEN=$(curl -sf -H "$BASIC" -d grant_type=client_credentials "$B/oauth2/token" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
oauth_lua "$WORK" "$CC_TOKEN"
filter_lua "$WORK/filter.lua" 100000
post_lua "$WORK/post.lua"
POST_BODY='{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"rate-{seq}@example.com","name":{"givenName":"P","familyName":"Q"},"active":true}'
patch_lua "$WORK/patch.lua" 100000
PATCH_BODY='{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"name.givenName","value":"patched-{seq}"}]}'

# again LABEL PID HOST RATE [EXPECT]: the endpoint's open-loop load (RATE_ARGS, with
# @RATE@) at RATE req/s, sent to another server (PID) on HOST, expecting EXPECT instead
# of the endpoint's body if given; prints its line (LABEL says which server and rate).
again() {
  local label=$1 pid=$2 host=$3 rate=$4 expect=${5:-} arg prev="" args=() out ticks
  for arg in "${RATE_ARGS[@]}"; do
    if [ "$prev" = --expect ] && [ -n "$expect" ]; then arg=$expect; else arg=${arg/#$B/$host}; fi
    args+=("$arg"); prev=$arg
  done
  sync
  ticks=$(cpu_ticks "$pid")
  out=$(taskset -c 1 "$R/examples/rate" "${args[@]/@RATE@/$rate}" ${TRACES:+--trace "$TRACES/$NAME.${label%% *}$rate"}) || { echo "FAILED: $NAME, the $label: $out"; FAILED=1; return; }
  printf '%-12s the %-30s %s   its cpu %s\n' "" "$label:" "$out" "$(busy "$pid" "$ticks")"
}

# measure NAME -- WRK_ARGS... -- RATE_ARGS...: max closed-loop, then half of it open-loop;
# then the same open-loop load to the ceiling, and (client_credentials, the filter and the
# writes) to the floor, at that rate and at half of the floor's own maximum.
FAILED=0
measure() {
  NAME=$1; shift; shift
  local wrk_args=()
  while [ "$1" != -- ]; do wrk_args+=("$1"); shift; done; shift
  RATE_ARGS=("$@")
  wrk_measure "$WORK/$NAME.txt" "${wrk_args[@]}"
  if [ -n "$PROBLEMS" ]; then echo "FAILED: $NAME: $PROBLEMS"; FAILED=1; return; fi
  local half out ticks cpu
  half=$(python3 -c "print(int(float('$RPS') / 2))")
  sync
  ticks=$(cpu_ticks "$SERVER")
  out=$(taskset -c 1 "$R/examples/rate" "${RATE_ARGS[@]/@RATE@/$half}" ${TRACES:+--trace "$TRACES/$NAME"}) || { echo "FAILED: $NAME at $half req/s: $out"; FAILED=1; return; }
  cpu=$(busy "$SERVER" "$ticks")
  printf '%-12s max %9s req/s   at half: %s   server cpu %s   peak RSS so far %s MiB\n' "$NAME" "$RPS" "$out" "$cpu" "$(rss VmHWM)"
  # The ceiling answers every request with the same fixed body, so only that is expected.
  again "ceiling at the same rate" "$CEILING" "$C" "$half" '"access_token"'
  case $NAME in
    cc | filter | post_users | patch_users)
      again "floor at the same rate" "$FLOOR" "$F" "$half"
      wrk_measure "$WORK/$NAME.floor.txt" "${wrk_args[@]/#$B/$F}"
      if [ -n "$PROBLEMS" ]; then echo "FAILED: $NAME on the floor: $PROBLEMS"; FAILED=1; return; fi
      half=$(python3 -c "print(int(float('$RPS') / 2))")
      again "floor at half its max of $((half * 2))" "$FLOOR" "$F" "$half"
      ;;
  esac
}
measure cc -- "$B/oauth2/token" -H "$BASIC" -s "$WORK/cc.lua" -- \
  "$B/oauth2/token" @RATE@ "$DUR" -c "$CONN" -H "$BASIC" -H 'Content-Type: application/x-www-form-urlencoded' \
  -d grant_type=client_credentials --expect '"access_token"'
measure introspect -- "$B/oauth2/introspect" -H "$BASIC" -s "$WORK/introspect.lua" -- \
  "$B/oauth2/introspect" @RATE@ "$DUR" -c "$CONN" -H "$BASIC" -H 'Content-Type: application/x-www-form-urlencoded' \
  -d "token=$CC_TOKEN&token_type_hint=access_token" --expect '"active":true'
measure scim_get -- "$B$USER_PATH" -H "$AUTH" -- \
  "$B$USER_PATH" @RATE@ "$DUR" -c "$CONN" -H "$AUTH" --expect '"userName":"user050000@example.com"'
measure filter -- "$B/" -H "$AUTH" -s "$WORK/filter.lua" -- \
  "$B/scim/v2/Users?filter=userName%20eq%20%22user{user}@example.com%22" @RATE@ "$DUR" -c "$CONN" \
  -H "$AUTH" --users 100000 --expect '"totalResults":1}'
measure post_users -- "$B/scim/v2/Users" -H "$AUTH" -s "$WORK/post.lua" -- \
  "$B/scim/v2/Users" @RATE@ "$DUR" -c "$CONN" -H "$AUTH" -H 'Content-Type: application/scim+json' \
  -d "$POST_BODY" --expect '"userName":"rate-'
measure patch_users -- "$B/" -H "$AUTH" -s "$WORK/patch.lua" -- \
  "$B/scim/v2/Users/00000000-0000-4000-8000-000000{user}" @RATE@ "$DUR" -c "$CONN" -H "$AUTH" \
  -H 'Content-Type: application/scim+json' -X PATCH -d "$PATCH_BODY" --users 100000 \
  --expect '"givenName":"patched-'
echo "server memory: idle VmRSS $IDLE MiB (target <= 30), peak VmHWM $(rss VmHWM) MiB under the loads above (target <= 100);"
echo "  at the end: VmRSS $(rss VmRSS) MiB = RssAnon $(rss RssAnon) (heap, stacks) + RssFile $(rss RssFile) (the binary, the store's memory map)"
exit $FAILED
