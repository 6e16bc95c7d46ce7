#!/usr/bin/env bash
# OAuth2 benchmarks (issues 3 and 15), all in one server run so the ratios are comparable on
# a shared machine. Servers pinned to core 0, wrk (load generator) to core 1, loopback only.
#   ceiling             a bare actix-web server built here (bench/ceiling.rs, one worker,
#                       a fixed small JSON answer), sent the very request client_credentials
#                       is (POST, Basic, form body, same wrk script and body check)
#   scimgate_healthz    scimgate's own GET /healthz, a second labelled line (not a ceiling:
#                       it pays scimgate's middleware and access log)
#   client_credentials  POST /oauth2/token, HTTP Basic, grant_type=client_credentials
#                       (every request issues and commits a new access token)
#   introspect          POST /oauth2/introspect of a live token, HTTP Basic
# The machine is shared (other builds come and go), so the three are interleaved: ROUNDS
# rounds (default 5) of ceiling, client_credentials, introspect, ceiling again. Each round's
# ratios use the mean of the two ceilings around it; the result is the median round, and
# every round is printed so the spread is visible.
# Any non-2xx response, or a response without the expected body, fails the run.
# Every measurement starts after `sync` (see run()), so none pays for another's writeback.
# The store holds SEED_TOKENS (default 100,000) tokens so the indexes are not toy-sized.
# Needs wrk (apt-get install wrk).
# Usage: bench/oauth.sh [seconds per run, default 5]   (env: ROUNDS, CONN, SEED_TOKENS)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-5}
ROUNDS=${ROUNDS:-5}
CONN=${CONN:-32}
SEED_TOKENS=${SEED_TOKENS:-100000}
cargo build --release --quiet -j 1 --bin scimgate --example seed --example ceiling
R=${CARGO_TARGET_DIR:-$PWD/target}/release
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_workdir

start() { start_server "$R/scimgate" "$1" SCIMGATE_CLIENT_ISSUANCE_PER_MINUTE=0; } # db
stop() { stop_server; }
CEILING_PORT=$(free_port)
taskset -c 0 "$R/examples/ceiling" "127.0.0.1:$CEILING_PORT" >/dev/null 2>&1 &
CEILING=$!
trap 'kill $CEILING 2>/dev/null; cleanup' EXIT
C="http://127.0.0.1:$CEILING_PORT"
for _ in $(seq 100); do curl -sf "$C/" >/dev/null && break; sleep 0.1; done

FAILED=0
# run NAME URL [wrk args…]: prints "NAME req/s p50 p99"; a non-2xx response fails the run
run() {
  local name=$1 url=$2; shift 2
  wrk_measure "$WORK/$name.txt" "$url" "$@"
  printf '%-20s %10s req/s  p50 %8s  p99 %8s%s\n' "$name" "$RPS" "$P50" "$P99" "${PROBLEMS:+  $PROBLEMS}"
  [ -z "$PROBLEMS" ] || FAILED=1
  echo "$ROUND $name $RPS $P50 $P99" >>"$WORK/results"
}

"$R/examples/seed" tokens "$WORK/oauth.db" "$SEED_TOKENS"
read -r CLIENT_ID CLIENT_SECRET < <("$R/examples/seed" client "$WORK/oauth.db")
BASIC="Authorization: Basic $(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)"
echo "store: $SEED_TOKENS tokens; $CONN connections; ${DUR}s per run; server on core 0, wrk on core 1"

start "$WORK/oauth.db"
B="http://127.0.0.1:$PORT"

# A live token of the benchmark client, to introspect; and a check that both endpoints
# answer what they should before measuring them.
TOKEN=$(curl -sf -H "$BASIC" -d grant_type=client_credentials "$B/oauth2/token" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
curl -sf -H "$BASIC" --data-urlencode "token=$TOKEN" "$B/oauth2/introspect" |
  python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["active"] is True, d'

oauth_lua "$WORK" "$TOKEN"

echo "wrk $(wrk --version 2>&1 | head -1 | awk '{print $2}'); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
before=$(sqlite3 "$WORK/oauth.db" 'SELECT count(*) FROM tokens')
for ROUND in $(seq "$ROUNDS"); do
  echo "round $ROUND"
  run ceiling "$C/oauth2/token" -H "$BASIC" -s "$WORK/cc.lua"
  run client_credentials "$B/oauth2/token" -H "$BASIC" -s "$WORK/cc.lua"
  run introspect "$B/oauth2/introspect" -H "$BASIC" -s "$WORK/introspect.lua"
  run scimgate_healthz "$B/healthz"
  run ceiling_after "$C/oauth2/token" -H "$BASIC" -s "$WORK/cc.lua"
done
stop
after=$(sqlite3 "$WORK/oauth.db" 'SELECT count(*) FROM tokens')
echo "tokens committed during the run: $((after - before))"
grep -a "token batcher closed" "$WORK/server.log" | sed 's/.*INFO //' || true

# A run with any error reports no rate.
if [ "$FAILED" != 0 ]; then echo "FAILED: non-2xx responses, bad bodies or socket errors; no rate is reported"; exit 1; fi
python3 - "$WORK/results" <<'PY'
import statistics, sys
rounds = {}
for line in open(sys.argv[1]):
    rnd, name, rps, p50, p99 = line.split()
    rounds.setdefault(int(rnd), {})[name] = (float(rps), p50, p99)
targets = {"client_credentials": 0.5, "introspect": 0.6}
ratios = {n: [] for n in targets}
print()
print("round  ceiling req/s (before/after)   client_credentials        introspect")
for rnd, r in sorted(rounds.items()):
    c = (r["ceiling"][0] + r["ceiling_after"][0]) / 2
    cells = []
    for n in targets:
        ratios[n].append((r[n][0] / c, rnd))
        cells.append(f"{r[n][0]:8.0f} = {r[n][0] / c:.2f}x")
    print(f"{rnd:5d}  {c:8.0f} ({r['ceiling'][0]:.0f}/{r['ceiling_after'][0]:.0f})   "
          + "      ".join(cells)
          + f"      (scimgate GET /healthz {r['scimgate_healthz'][0]:.0f} = {r['scimgate_healthz'][0] / c:.2f}x)")
print()
print("median round, per endpoint (req/s, p50, p99, ratio to that round's ceiling):")
for n, target in targets.items():
    ordered = sorted(ratios[n])
    ratio, rnd = ordered[len(ordered) // 2]
    r = rounds[rnd]
    c = (r["ceiling"][0] + r["ceiling_after"][0]) / 2
    print(f"  ceiling            (round {rnd}) {c:8.0f} req/s  p50 {r['ceiling'][1]:>8}  p99 {r['ceiling'][2]:>8}")
    ok = "ok" if ratio >= target else "BELOW TARGET"
    print(f"  {n:18s} (round {rnd}) {r[n][0]:8.0f} req/s  p50 {r[n][1]:>8}  p99 {r[n][2]:>8}"
          f"  ratio {ratio:.2f} (target >= {target}) {ok}")
PY
