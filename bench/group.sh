#!/usr/bin/env bash
# A large Group's writes and reads, and what they cost everyone else: a store of USERS
# Users and a Group of MEMBERS of them. For each binary given (default: this tree's
# release build), on a fresh copy of that store, three runs of DUR seconds, each while
# tokens are requested at TOKEN_RATE a second (open loop, bench/rate.rs, 4 connections):
#   patch   one client adds one member to the Group and removes it again, PATCH after PATCH;
#   delete  one client deletes Users that are members of the Group, one after the other;
#   read    one client reads the Group as Entra ID does (`excludedAttributes=members`).
# Prints each run's median and max, and the tokens' p50, p99 and max (from when each was
# due). Every answer is checked: each PATCH is a 200 whose Group holds (or no longer
# holds) the member, each DELETE a 204, each read a 200 with the Group's displayName and
# no members, each token answer a 200 with an access token. Any failure fails the run.
# Server pinned to core 0; the token load and the other client to core 1.
# Usage: bash bench/group.sh [BIN …]   (env: MEMBERS=49000, USERS=50000, DUR=5, TOKEN_RATE=500)
set -euo pipefail
cd "$(dirname "$0")/.."
MEMBERS=${MEMBERS:-49000}
USERS=${USERS:-50000}
DUR=${DUR:-5}
TOKEN_RATE=${TOKEN_RATE:-500}
# shellcheck source=bench/lib.sh
. bench/lib.sh
EXAMPLES=rate release_bins "$@"
bench_workdir
[ "$USERS" -gt "$MEMBERS" ] || { echo "USERS must exceed MEMBERS (the PATCHes add users not yet in the group)"; exit 1; }

"$R/examples/seed" users "$WORK/seed.db" "$USERS"
GROUP=$("$R/examples/seed" group "$WORK/seed.db" "$MEMBERS")
TOKEN=$("$R/examples/seed" token "$WORK/seed.db")
read -r CLIENT_ID CLIENT_SECRET < <("$R/examples/seed" client "$WORK/seed.db")
BASIC="Authorization: Basic $(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)"
echo "A Group of $MEMBERS members among $USERS Users; tokens at $TOKEN_RATE/s meanwhile; ${DUR} s for each kind of request"

FAILED=0
for bin in "${BINS[@]}"; do
  fresh_copy "$WORK/seed.db" "$WORK/run.db"
  start_server "$(realpath "$bin")" "$WORK/run.db" SCIMGATE_CLIENT_ISSUANCE_PER_MINUTE=0
  echo "$bin"
  for what in patch delete read; do
    taskset -c 1 "$R/examples/rate" "http://127.0.0.1:$PORT/oauth2/token" "$TOKEN_RATE" $((DUR + 1)) \
      -c 4 -X POST -H "$BASIC" -H 'Content-Type: application/x-www-form-urlencoded' \
      -d grant_type=client_credentials --expect access_token >"$WORK/tokens.txt" &
    TOKENS=$!
    sleep 0.5
    writes=$(taskset -c 1 python3 - "$PORT" "$GROUP" "$TOKEN" "$MEMBERS" "$USERS" "$DUR" "$what" <<'PY'
import http.client, json, sys, time
port, group, token = int(sys.argv[1]), sys.argv[2], sys.argv[3]
members, users, dur, what = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), sys.argv[7]
conn = http.client.HTTPConnection("127.0.0.1", port)
headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
user = lambda i: f"00000000-0000-4000-8000-{i:012d}"
times, k, end = [], 0, time.time() + dur
def timed(method, path, body=None):
    started = time.perf_counter()
    conn.request(method, path, body, headers)
    reply = conn.getresponse()
    answer = reply.read()
    times.append(time.perf_counter() - started)
    return reply.status, answer
while time.time() < end:
    if what == "read":
        status, answer = timed("GET", f"/scim/v2/Groups/{group}?excludedAttributes=members")
        if status != 200 or b'"displayName"' not in answer or b'"members"' in answer:
            sys.exit(f"GET of the Group: {status} {answer[:200]!r}")
        continue
    if what == "delete":
        # Members of the Group, from the first.
        status, answer = timed("DELETE", f"/scim/v2/Users/{user(k)}")
        k += 1
        if status != 204:
            sys.exit(f"DELETE of {user(k - 1)}: {status} {answer[:200]!r}")
        continue
    u = user(members + k % (users - members))
    k += 1
    for op, present in (({"op": "add", "path": "members", "value": [{"value": u}]}, True),
                        ({"op": "remove", "path": f'members[value eq "{u}"]'}, False)):
        body = json.dumps({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                           "Operations": [op]})
        status, answer = timed("PATCH", f"/scim/v2/Groups/{group}", body)
        if status != 200 or (f'"{u}"'.encode() in answer) != present:
            sys.exit(f"PATCH {op['op']} of {u}: {status} {answer[:200]!r}")
times.sort()
name = {"delete": "DELETEs of a member", "read": "reads without members",
        "patch": "one-member PATCHes"}[what]
print(f"{len(times)} {name}: median {times[len(times) // 2] * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms")
PY
    ) || FAILED=1
    wait "$TOKENS" || FAILED=1
    echo "  $writes"
    echo "    tokens meanwhile: $(cat "$WORK/tokens.txt")"
  done
  stop_server
done
[ "$FAILED" = 0 ] || { echo "FAILED: an answer was wrong (see above)"; exit 1; }
