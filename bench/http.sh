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
#             in alternating order, every run after `sync`.
# Rounds: everything above but the 100-user filter runs ROUNDS times (default 5). Each
# round of the endpoints starts a server on a fresh copy of the seeded store (the POSTs of
# one round do not grow the next round's store) and runs the ceiling before and after
# them. Every round's ratios are printed; each target's ratio is the median of its rounds.
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
ROUNDS=${ROUNDS:-5}
for n in $(seq "$ROUNDS"); do
  echo "round $n"
  fresh_copy "$WORK/u100000.db" "$WORK/round.db"
  start "$WORK/round.db"
  B="http://127.0.0.1:$PORT"
  run "ceiling.$n" "$C/scim/v2/Users/00000000-0000-4000-8000-000000050000" -H "$AUTH"
  run "scimgate_healthz.$n" "$B/healthz"
  run "scim_get.$n" "$B/scim/v2/Users/00000000-0000-4000-8000-000000050000" -H "$AUTH"
  run "ceiling_filter.$n" "$C/" -H "$AUTH" -s "$WORK/filter100000.ceiling.lua"
  run "filter_100k.$n" "$B/" -H "$AUTH" -s "$WORK/filter100000.lua"
  run "ceiling_post.$n" "$C/scim/v2/Users" -H "$AUTH" -s "$WORK/post.ceiling.lua"
  run "post_users.$n" "$B/scim/v2/Users" -H "$AUTH" -s "$WORK/post.lua"
  run "ceiling_patch.$n" "$C/" -H "$AUTH" -s "$WORK/patch.ceiling.lua"
  run "patch_users.$n" "$B/" -H "$AUTH" -s "$WORK/patch.lua"
  run "ceiling_after.$n" "$C/scim/v2/Users/00000000-0000-4000-8000-000000050000" -H "$AUTH"
  stop
done
# Monitoring off and on, interleaved (see the header).
cp "$WORK/u100000.db" "$WORK/mon-off.db"; cp "$WORK/u100000.db" "$WORK/mon-on.db"
for f in "$WORK"/u100000.db-wal; do [ -e "$f" ] && cp "$f" "$WORK/mon-off.db-wal" && cp "$f" "$WORK/mon-on.db-wal"; done
start "$WORK/mon-off.db" false; OFF_SERVER=$SERVER; OFF="http://127.0.0.1:$PORT"
start "$WORK/mon-on.db" true; ON_SERVER=$SERVER; ON="http://127.0.0.1:$PORT"
USER_PATH=/scim/v2/Users/00000000-0000-4000-8000-000000050000
for r in $(seq "$ROUNDS"); do
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
from statistics import median as med
import sys
r = {k: float(v) for k, v in (l.split() for l in open(sys.argv[1]))}
rounds = sorted({k.rsplit(".", 1)[1] for k in r if k.startswith("ceiling.")}, key=int)
# Each round's reference: its ceiling before and after the endpoints' runs (one run of it
# drifts). Every ratio is taken within its round.
c = {n: (r[f"ceiling.{n}"] + r[f"ceiling_after.{n}"]) / 2 for n in rounds}
print("round  ceiling (before/after)       GET     filter  POST    PATCH   (each of its own ceiling; healthz of the GET's)")
per = {name: [] for name in ("get", "filter", "post", "patch", "healthz")}
for n in rounds:
    ratios = {
        "get": r[f"scim_get.{n}"] / c[n],
        "filter": r[f"filter_100k.{n}"] / r[f"ceiling_filter.{n}"],
        "post": r[f"post_users.{n}"] / r[f"ceiling_post.{n}"],
        "patch": r[f"patch_users.{n}"] / r[f"ceiling_patch.{n}"],
        "healthz": r[f"scimgate_healthz.{n}"] / c[n],
    }
    for k, v in ratios.items():
        per[k].append(v)
    print(f"{n:>5}  {c[n]:>8,.0f} ({r[f'ceiling.{n}']:,.0f}/{r[f'ceiling_after.{n}']:,.0f})"
          f"   {ratios['get']:.2f}    {ratios['filter']:.2f}    {ratios['post']:.2f}    "
          f"{ratios['patch']:.2f}    (healthz {ratios['healthz']:.2f})")
def rates(name):
    return ", ".join(f"{r[f'{name}.{n}']:,.0f}" for n in rounds)
def line(label, key, name, target):
    print(f"{label:<26}= {med(per[key]):.2f}   median of {len(rounds)} rounds "
          f"({', '.join(f'{x:.2f}' for x in per[key])}; {rates(name)} req/s; target >= {target})")
print(f"ceiling                   = {med(list(c.values())):,.0f} req/s (median of the rounds' means)")
line("scim_get / ceiling", "get", "scim_get", 0.6)
line("filter_100k", "filter", "filter_100k", 0.4)
line("post_users", "post", "post_users", 0.2)
line("patch_users", "patch", "patch_users", 0.2)
print(f"scimgate healthz / ceiling= {med(per['healthz']):.2f}   (scimgate's own GET /healthz, for reference)")
f100k = med([r[f"filter_100k.{n}"] for n in rounds])
print(f"filter 100k / filter 100  = {f100k / r['filter_100']:.2f} throughput ratio "
      f"(the rounds' median rate against one run of 100 users; latency ratio "
      f"{r['filter_100'] / f100k:.2f}x; target within 1.5x)")
mon = sorted({k.rsplit("_", 1)[1] for k in r if k.startswith("scim_get_monitoring_")}, key=int)
ratios = []
for n in mon:
    on, off = r[f"scim_get_monitoring_on_{n}"], r[f"scim_get_monitoring_off_{n}"]
    ratios.append(on / off)
    print(f"  monitoring round {n}: on {on:,.0f} / off {off:,.0f} req/s = {on / off:.2f}")
print(f"monitoring on / off       = {med(ratios):.2f}   (median of {len(ratios)} rounds; target >= 0.9)")
PY
