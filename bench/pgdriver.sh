#!/usr/bin/env bash
# Which PostgreSQL driver for scimgate (issue 16): bench/pgdriver/ measured end to end.
#
# Starts the cluster of scripts/pg.sh (reused when running; stopped at the end when this
# script started it), makes the tables in its scimgate_test database (bench_kv: 100,000
# rows; bench_ins: emptied before each driver), builds bench/pgdriver (release, its own workspace), and runs, for each driver, a point
# SELECT by primary key, a one-row INSERT committed, and 32 INSERTs committed together, with
# 1 and 16 concurrent callers (pool of 16), then the point SELECT again over TLS, then checks
# that every driver connects with TLS (rustls, verify-full against target/pg/ca.pem).
# Also prints, per driver built alone: its dependency count (`cargo tree | wc -l`, normal
# dependencies) and its release build time from scratch (its own target dir), unless
# BUILD_TIMES=0.
#
# Every cargo command and the benchmark itself run under `flock /tmp/cargo.lock`: on a
# 2-core box nothing else may build or measure meanwhile.
# Env: SECS (per measurement, default 5; 1 s of warm-up before each), DRIVERS (default all:
# sync sync-typed deadpool-tasks deadpool-block_on sqlx-tasks sqlx-block_on), BUILD_TIMES (1).
# Output: a header line (server version, fsync, synchronous_commit, and pg_test_fsync's
# fdatasync rate on this disk), Markdown table rows on stdout, also in
# target/pgdriver/results.md.
# Usage: bash bench/pgdriver.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECS=${SECS:-5}
DRIVERS=${DRIVERS:-sync sync-typed deadpool-tasks deadpool-block_on sqlx-tasks sqlx-block_on}
OUT=$ROOT/target/pgdriver
mkdir -p "$OUT"
export CARGO_TERM_COLOR=never

# Stopped at the end if this script started it.
bash scripts/pg.sh status >/dev/null 2>&1 || trap 'bash "$ROOT/scripts/pg.sh" stop >/dev/null 2>&1' EXIT
URL=$(bash scripts/pg.sh start)
export PG_URL=$URL PG_CA=$ROOT/target/pg/ca.pem

echo "== tables (bench_kv 100,000 rows, bench_ins)" >&2
psql -X -q -v ON_ERROR_STOP=1 "$URL" <<'SQL'
DROP TABLE IF EXISTS bench_kv, bench_ins;
CREATE TABLE bench_kv (id bigint PRIMARY KEY, v text NOT NULL);
INSERT INTO bench_kv SELECT i, md5(i::text) FROM generate_series(1, 100000) AS i;
CREATE TABLE bench_ins (id bigserial PRIMARY KEY, k bigint NOT NULL, v text NOT NULL);
VACUUM ANALYZE bench_kv;
SQL

echo "== build (release)" >&2
(cd bench/pgdriver && flock /tmp/cargo.lock cargo build --release --quiet)
BIN=$ROOT/bench/pgdriver/target/release/pgdriver

# What one WAL flush costs on this disk (the floor of a committed transaction's latency).
FSYNC=$(flock /tmp/cargo.lock "$(bash scripts/pg.sh bindir)/pg_test_fsync" -s 1 -f "$OUT/fsync.test" 2>/dev/null \
  | awk '$1 == "fdatasync" {print $2, $3; exit}')
rm -f "$OUT/fsync.test"
{
  echo "PostgreSQL: $(psql -X -At "$URL" -c 'SHOW server_version'), fsync $(psql -X -At "$URL" -c 'SHOW fsync'), synchronous_commit $(psql -X -At "$URL" -c 'SHOW synchronous_commit'); pg_test_fsync: fdatasync ${FSYNC:-?}; ${SECS} s per figure"
  echo
  echo "| driver | operation | callers | ops/s | rows/s | p50 ms | p99 ms |"
  echo "|---|---|---:|---:|---:|---:|---:|"
} | tee "$OUT/results.md"
for d in $DRIVERS; do
  psql -X -q "$URL" -c 'TRUNCATE bench_ins'
  sync
  flock /tmp/cargo.lock "$BIN" "$d" --secs "$SECS" | tee -a "$OUT/results.md"
done
for d in $DRIVERS; do
  flock /tmp/cargo.lock "$BIN" "$d" --tls --tests select --secs "$SECS" | tee -a "$OUT/results.md"
done
echo | tee -a "$OUT/results.md"
echo "TLS check (rustls, verify-full against target/pg/ca.pem):" | tee -a "$OUT/results.md"
flock /tmp/cargo.lock "$BIN" tls-check | sed 's/^/- /' | tee -a "$OUT/results.md"

if [ "${BUILD_TIMES:-1}" = 1 ]; then
  echo | tee -a "$OUT/results.md"
  echo "| driver alone | crates (\`cargo tree -e normal \| wc -l\`) | release build from scratch |" | tee -a "$OUT/results.md"
  echo "|---|---:|---:|" | tee -a "$OUT/results.md"
  for f in sync deadpool sqlx; do
    n=$(cd bench/pgdriver && flock /tmp/cargo.lock cargo tree -e normal --no-default-features --features "$f" --prefix none | wc -l)
    # timed inside the lock: waiting for another build is not building
    t=$(cd bench/pgdriver && rm -rf "target/alone-$f" && CARGO_TARGET_DIR="target/alone-$f" F=$f \
      flock /tmp/cargo.lock bash -c 't0=$(date +%s.%N)
        cargo build --release --quiet --no-default-features --features "$F" >&2 || exit 1
        echo "$(date +%s.%N) - $t0" | bc')
    rm -rf "bench/pgdriver/target/alone-$f"
    printf '| %s | %s | %.0f s |\n' "$f" "$n" "$t" | tee -a "$OUT/results.md"
  done
fi
