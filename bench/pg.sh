#!/usr/bin/env bash
# PostgreSQL against SQLite (issue 16), in one run so the ratios are comparable on a shared
# machine. The server side gets core 0 (the scimgate processes, and on PostgreSQL the
# database's own processes too), wrk gets core 1, loopback only:
#   sqlite    one `scimgate serve` on a SQLite store, wrk -c$CONN
#   postgres  two `scimgate serve` instances on one PostgreSQL database (scripts/pg.sh's
#             cluster, TLS), two wrk at once with -c$((CONN/2)) each, one per instance;
#             the rate is their sum
# Endpoints: client_credentials (POST /oauth2/token; every request issues and commits a
# token), GET /scim/v2/Users/{id} (bearer check and a point read) and POST /scim/v2/Users
# (a new User each time, committed before the answer; no target) on a store of
# SEED_USERS (default 10,000) users. ROUNDS rounds (default 3), the two stores alternating
# which goes first; each round prints its rates, the result is the median round's ratio.
# Any non-2xx answer, wrong body or socket error fails the run.
# Targets: postgres / sqlite >= 0.5 for client_credentials, >= 0.8 for GET.
# Needs wrk, psql. Usage: bench/pg.sh [seconds per run, default 5]  (env: ROUNDS, CONN, SEED_USERS)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-5}
ROUNDS=${ROUNDS:-3}
CONN=${CONN:-32}
SEED_USERS=${SEED_USERS:-10000}
cargo build --release --quiet -j 1 --bin scimgate --example seed
R=${CARGO_TARGET_DIR:-$PWD/target}/release
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_workdir
ADMIN=$(bash scripts/pg.sh start)
DB=bench_pg_$$
SERVER2=""
trap '[ -n "$SERVER2" ] && kill $SERVER2 2>/dev/null; psql -q "$ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1; cleanup' EXIT
psql -q "$ADMIN" -c "CREATE DATABASE $DB"
PG="${ADMIN%/*}/$DB?sslmode=require&sslrootcert=$PWD/target/pg/ca.pem"
# The database's processes on core 0 with scimgate (new backends inherit the postmaster's).
for p in $(pgrep -f "postgres.*target/pg" || true) $(pgrep -x postgres || true); do
  taskset -a -p -c 0 "$p" >/dev/null 2>&1 || true
done

oauth_lua "$WORK" unused
post_lua "$WORK/post.lua"
USER_PATH=/scim/v2/Users/00000000-0000-4000-8000-000000000042
for store in "$WORK/s.db" "$PG"; do
  "$R/examples/seed" users "$store" "$SEED_USERS"
done
read -r SQ_ID SQ_SECRET < <("$R/examples/seed" client "$WORK/s.db")
read -r PG_ID PG_SECRET < <("$R/examples/seed" client "$PG")
SQ_TOKEN=$("$R/examples/seed" token "$WORK/s.db")
PG_TOKEN=$("$R/examples/seed" token "$PG")
echo "stores: $SEED_USERS users each; ${DUR}s per run; $CONN connections; server side on core 0, wrk on core 1"

ENVS=(SCIMGATE_CLIENT_ISSUANCE_PER_MINUTE=0)
# one NAME URL AUTH [wrk args…]: a wrk run against one server
one() {
  local name=$1 url=$2; shift 2
  wrk_measure "$WORK/$name.txt" "$url" "$@"
  [ -n "$PROBLEMS" ] && { echo "FAILED: $name: $PROBLEMS"; exit 1; }
  printf '%-30s %10s req/s  p99 %8s\n' "$name" "$RPS" "$P99"
  echo "$name $RPS" >>"$WORK/results"
}
# two NAME PATH [wrk args…]: wrk against both instances at once, half the connections each
two() {
  local name=$1 path=$2; shift 2
  sync
  taskset -c 1 wrk -t1 -c$((CONN / 2)) -d"${DUR}s" --latency "$@" "http://127.0.0.1:$PORT1$path" >"$WORK/$name.1.txt" &
  local w1=$!
  taskset -c 1 wrk -t1 -c$((CONN / 2)) -d"${DUR}s" --latency "$@" "http://127.0.0.1:$PORT2$path" >"$WORK/$name.2.txt"
  wait $w1
  local total=0
  for part in 1 2; do
    local f=$WORK/$name.$part.txt
    if grep -q "Non-2xx\|Socket errors" "$f" || grep -q "Bad responses: [1-9]" "$f"; then
      echo "FAILED: $name (instance $part):"; cat "$f"; exit 1
    fi
    total=$(awk -v t="$total" '/Requests\/sec/ {printf "%.2f", t + $2}' "$f")
  done
  printf '%-30s %10s req/s  (two instances)\n' "$name" "$total"
  echo "$name $total" >>"$WORK/results"
}

sqlite_round() { # ROUND
  start_server "$R/scimgate" "$WORK/s.db" "${ENVS[@]}"
  one "sqlite_cc_$1" "http://127.0.0.1:$PORT/oauth2/token" -s "$WORK/cc.lua" -H "Authorization: Basic $(printf '%s:%s' "$SQ_ID" "$SQ_SECRET" | base64 -w0)"
  one "sqlite_get_$1" "http://127.0.0.1:$PORT$USER_PATH" -H "Authorization: Bearer $SQ_TOKEN"
  one "sqlite_post_$1" "http://127.0.0.1:$PORT/scim/v2/Users" -s "$WORK/post.lua" -H "Authorization: Bearer $SQ_TOKEN"
  stop_server
}
pg_round() { # ROUND
  start_server "$R/scimgate" "$PG" "${ENVS[@]}"; PORT1=$PORT; SERVER2=$SERVER
  start_server "$R/scimgate" "$PG" "${ENVS[@]}"; PORT2=$PORT
  two "postgres_cc_$1" /oauth2/token -s "$WORK/cc.lua" -H "Authorization: Basic $(printf '%s:%s' "$PG_ID" "$PG_SECRET" | base64 -w0)"
  two "postgres_get_$1" "$USER_PATH" -H "Authorization: Bearer $PG_TOKEN"
  two "postgres_post_$1" /scim/v2/Users -s "$WORK/post.lua" -H "Authorization: Bearer $PG_TOKEN"
  stop_server; kill "$SERVER2"; wait "$SERVER2" 2>/dev/null || true; SERVER2=""
}
for r in $(seq "$ROUNDS"); do
  if ((r % 2)); then sqlite_round "$r"; pg_round "$r"; else pg_round "$r"; sqlite_round "$r"; fi
done

python3 - "$WORK/results" <<'PY'
import statistics, sys
r = {k: float(v) for k, v in (l.split() for l in open(sys.argv[1]))}
rounds = sorted({k.rsplit("_", 1)[1] for k in r}, key=int)
for what, target in (("cc", 0.5), ("get", 0.8), ("post", None)):
    ratios = []
    for n in rounds:
        pg, sq = r[f"postgres_{what}_{n}"], r[f"sqlite_{what}_{n}"]
        ratios.append(pg / sq)
        print(f"  {what} round {n}: postgres {pg:,.0f} / sqlite {sq:,.0f} req/s = {pg / sq:.2f}")
    goal = f"; target >= {target}" if target else "; no target"
    print(f"{what}: postgres (two instances) / sqlite = {statistics.median(ratios):.2f}   "
          f"(median of {len(ratios)} rounds{goal})")
PY
