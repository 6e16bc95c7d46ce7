#!/usr/bin/env bash
# HTTP benchmarks, all in one run so ratios are comparable on a shared machine.
# Server pinned to core 0, wrk (load generator) to core 1, loopback only.
#   ceiling   a bare actix-web server built here (bench/ceiling.rs, one worker, a fixed
#             small JSON answer) sent the very request scim_get is (GET, bearer header),
#             before and after the endpoints' runs; their mean is the reference;
#             scimgate's own GET /healthz is a second, labelled line (scimgate_healthz).
#             The filter, POST and PATCH are each also divided by a ceiling run sent that
#             endpoint's own requests (the same wrk script, its answer checks left out:
#             the ceiling answers everything with one 200), right before the endpoint's
#             run: the issue's rule (same method, body and headers). Their scripts build
#             each request in Lua, which costs wrk time on its core, so that ceiling is
#             lower than the plain GET's; both ratios are printed.
#   scim_get  GET /scim/v2/Users/{id} with bearer validation
#   filter    GET /scim/v2/Users?filter=userName eq "…" with 100 and with 100,000 users,
#             each request a different seeded user at random (every answer must hold one)
#   post      POST /scim/v2/Users (each request a new user)
#   patch     PATCH /scim/v2/Users/{id} of a random seeded user (a new givenName each time)
#   monitor   GET /scim/v2/Users/{id} with lifecycle monitoring on and off (issue 5): two
#             servers at once on copies of the store (the one not measured is idle),
#             ROUNDS rounds (default 5) in alternating order, every run after `sync`; the
#             ratio is the median of the rounds' ratios, and every round is printed.
# Needs wrk (apt-get install wrk).
# Usage: bench/http.sh [seconds per run, default 10]   (env: ROUNDS, CONN)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
CONN=${CONN:-32}
cargo build --release --quiet --workspace --bins --example seed --example ceiling
R=$PWD/target/release
WORK=$(mktemp -d)
SERVER=""; OFF_SERVER=""; ON_SERVER=""; CEILING=""
cleanup() {
  for s in "$SERVER" "$OFF_SERVER" "$ON_SERVER" "$CEILING"; do [ -n "$s" ] && kill "$s" 2>/dev/null; done
  wait 2>/dev/null || true; rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck source=bench/lib.sh
. bench/lib.sh

start() { start_server "$R/scimgate" "$1" "SCIMGATE_MONITORING=${2:-true}"; } # db [monitoring: true|false]
stop() { stop_server; }

# run NAME URL [wrk args…]: prints "NAME req/s p50 p99"; a run with errors reports no rate
run() {
  measure_or_fail "$@"
  echo "$1 $RPS" >>"$WORK/results"
}

post_lua "$WORK/post.lua"
patch_lua "$WORK/patch.lua" 100000

filter_lua "$WORK/filter100.lua" 100
filter_lua "$WORK/filter100000.lua" 100000
for s in filter100000 post patch; do unchecked "$WORK/$s.lua" "$WORK/$s.ceiling.lua"; done

for n in 100 100000; do
  "$R/examples/seed" users "$WORK/u$n.db" "$n"
done
TOKEN=$("$R/examples/seed" token "$WORK/u100000.db")
TOKEN100=$("$R/examples/seed" token "$WORK/u100.db")
AUTH="Authorization: Bearer $TOKEN"
echo "store: 100000 users; $CONN connections; ${DUR}s per run; server on core 0, wrk on core 1"

CEILING_PORT=$(free_port)
taskset -c 0 "$R/examples/ceiling" "127.0.0.1:$CEILING_PORT" >/dev/null 2>&1 &
CEILING=$!
C="http://127.0.0.1:$CEILING_PORT"
for _ in $(seq 100); do curl -sf "$C/" >/dev/null && break; sleep 0.1; done
start "$WORK/u100000.db"
B="http://127.0.0.1:$PORT"
run ceiling "$C/scim/v2/Users/00000000-0000-4000-8000-000000050000" -H "$AUTH"
run scimgate_healthz "$B/healthz"
run scim_get "$B/scim/v2/Users/00000000-0000-4000-8000-000000050000" -H "$AUTH"
run ceiling_filter "$C/" -H "$AUTH" -s "$WORK/filter100000.ceiling.lua"
run filter_100k "$B/" -H "$AUTH" -s "$WORK/filter100000.lua"
run ceiling_post "$C/scim/v2/Users" -H "$AUTH" -s "$WORK/post.ceiling.lua"
run post_users "$B/scim/v2/Users" -H "$AUTH" -s "$WORK/post.lua"
run ceiling_patch "$C/" -H "$AUTH" -s "$WORK/patch.ceiling.lua"
run patch_users "$B/" -H "$AUTH" -s "$WORK/patch.lua"
run ceiling_after "$C/scim/v2/Users/00000000-0000-4000-8000-000000050000" -H "$AUTH"
stop
# Monitoring off and on, interleaved (see the header).
cp "$WORK/u100000.db" "$WORK/mon-off.db"; cp "$WORK/u100000.db" "$WORK/mon-on.db"
for f in "$WORK"/u100000.db-wal; do [ -e "$f" ] && cp "$f" "$WORK/mon-off.db-wal" && cp "$f" "$WORK/mon-on.db-wal"; done
start "$WORK/mon-off.db" false; OFF_SERVER=$SERVER; OFF="http://127.0.0.1:$PORT"
start "$WORK/mon-on.db" true; ON_SERVER=$SERVER; ON="http://127.0.0.1:$PORT"
USER_PATH=/scim/v2/Users/00000000-0000-4000-8000-000000050000
for r in $(seq "${ROUNDS:-5}"); do
  for m in $( ((r % 2)) && echo "off on" || echo "on off"); do
    url=$OFF; [ "$m" = on ] && url=$ON
    run "scim_get_monitoring_${m}_$r" "$url$USER_PATH" -H "$AUTH" >/dev/null
  done
done
kill "$OFF_SERVER" "$ON_SERVER"; wait "$OFF_SERVER" "$ON_SERVER" 2>/dev/null || true
SERVER=""; OFF_SERVER=""; ON_SERVER=""
start "$WORK/u100.db"
B="http://127.0.0.1:$PORT"
run filter_100 "$B/" -H "Authorization: Bearer $TOKEN100" -s "$WORK/filter100.lua"
stop

python3 - "$WORK/results" <<'PY'
import statistics, sys
r = {k: float(v) for k, v in (l.split() for l in open(sys.argv[1]))}
# The ceiling before and after the endpoints' runs: the mean (one run of it drifts).
c = (r["ceiling"] + r["ceiling_after"]) / 2
print(f"ceiling                   = {c:,.0f} req/s (before {r['ceiling']:,.0f}, after {r['ceiling_after']:,.0f})")
print(f"scim_get / ceiling        = {r['scim_get'] / c:.2f}   (target >= 0.6)")
def own(name, ceiling, target):
    print(f"{name:<26}= {r[name] / r[ceiling]:.2f}   of the ceiling sent the same requests "
          f"({r[ceiling]:,.0f} req/s; target >= {target}); {r[name] / c:.2f} of the GET ceiling")
own("filter_100k", "ceiling_filter", 0.4)
print(f"scimgate healthz / ceiling= {r['scimgate_healthz'] / c:.2f}   (scimgate's own GET /healthz, for reference)")
print(f"filter 100k / filter 100  = {r['filter_100k'] / r['filter_100']:.2f} throughput ratio "
      f"(latency ratio {r['filter_100'] / r['filter_100k']:.2f}x; target within 1.5x)")
own("post_users", "ceiling_post", 0.2)
own("patch_users", "ceiling_patch", 0.2)
rounds = sorted({k.rsplit("_", 1)[1] for k in r if k.startswith("scim_get_monitoring_")}, key=int)
ratios = []
for n in rounds:
    on, off = r[f"scim_get_monitoring_on_{n}"], r[f"scim_get_monitoring_off_{n}"]
    ratios.append(on / off)
    print(f"  monitoring round {n}: on {on:,.0f} / off {off:,.0f} req/s = {on / off:.2f}")
print(f"monitoring on / off       = {statistics.median(ratios):.2f}   (median of {len(ratios)} rounds; target >= 0.9)")
PY
