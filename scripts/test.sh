#!/usr/bin/env bash
# The whole test suite of scimgate (what the README and .ci/run name).
#
# Needs the Rust toolchain, Python >= 3.11 with pip (venv), Node 20 with npm, and, for
# Chromium, root with apt. Installs what is missing, idempotently (a second run installs
# nothing), and says what before doing it:
#   - Debian's chromium and fonts-liberation, for the browser suite only, when
#     /usr/bin/chromium is missing: `apt-get install --no-install-recommends --no-upgrade`
#     (about 26 new packages on Debian 12; no installed package is upgraded — the list is
#     printed first, from apt's own simulation);
#   - tests/browser/node_modules: playwright-core, pinned in tests/browser/package-lock.json
#     (npm ci; it drives the system Chromium, it downloads no browser);
#   - target/venv: a Python venv with tests/thirdparty/requirements.txt (authlib, requests,
#     aiosmtpd, pinned); its python is exported as SCIMGATE_TEST_PYTHON for every suite;
#   - target/scim2-tester-venv: scim2-tester and its pins from tests/compliance/requirements.txt
#     (installed by tests/compliance/scim2-tester.sh when the compliance suite first runs);
#   - target/api-venv: Schemathesis and its pins from tests/api/requirements.txt (installed by
#     tests/api/run.sh when the api suite first runs);
#   - Debian's postgresql (the server's binaries), when scripts/pg.sh finds no initdb, pg_ctl
#     and postgres: `apt-get install --no-install-recommends --no-upgrade` as for Chromium
#     (Debian's package also makes a cluster of its own, unused here).
# Then starts a throw-away PostgreSQL cluster, `bash scripts/pg.sh start` (target/pg/, a free
# port on 127.0.0.1, run as the system user scimgate-pg when root), exports its URL as
# SCIMGATE_TEST_PG_URL and its CA (ssl = on) as SCIMGATE_TEST_PG_CA for every suite, and
# stops it when this script ends (unless it was running before). If that fails the suites
# run all the same, without the variables.
# The first run builds everything cold: about 10 minutes on 2 cores.
# Then runs, in order, each suite whatever the previous one did:
#   1. cargo test --workspace
#   1b. SCIMGATE_TEST_BACKEND=postgres cargo test --test integration (suite `postgres`): the
#      integration suite again with every store on the PostgreSQL cluster (skipped, and said
#      so, when no cluster could be started; under CI=true that fails instead)
#   2. bash scripts/scim-compliance.sh <target>/debug   (after cargo build --workspace), run
#      from a copy of the repository's files in a fresh directory with nothing beside it, so
#      the suite proves it needs nothing from outside the repository
#   2b. bash tests/api/run.sh <target>/debug       (Schemathesis: requests generated from
#      docs/openapi.yaml against a real server; any 5xx, undocumented answer or crash fails),
#      then again with API_BACKEND=postgres (suite `api-postgres`, skipped like `postgres`)
#   3. node tests/browser/oauth_login.mjs               (login → consent → code in Chromium)
#      node tests/browser/timeline.mjs                  (the operator's token timeline, screenshot)
#   4. python tests/thirdparty/authlib_client.py        (Authlib as a strict OAuth2 client)
#   5. bash fuzz/run.sh $FUZZ_SECONDS                   (each libFuzzer target for 15 s: installs
#      cargo-fuzz, pinned, if missing; builds fuzz/ in fuzz/target; replays every seed and
#      past finding first; any crash, timeout or slow input fails the suite)
# Last line: "N passed, M failed" (suites); exit status 1 if any suite failed.
#
# Env: CARGO_TARGET_DIR (binaries are taken from $CARGO_TARGET_DIR/debug, default
# target/debug), CARGO_BUILD_JOBS, PYTHON (the interpreter that makes the venv),
# FUZZ_SECONDS (per fuzz target, default 15).
# Usage: bash scripts/test.sh [SUITE...]   SUITE: cargo, postgres, compliance, api, browser,
# thirdparty, fuzz.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac
BIN=$TARGET/debug
VENV=$ROOT/target/venv
SUITES=("$@")
[ ${#SUITES[@]} -gt 0 ] || SUITES=(cargo postgres compliance api browser thirdparty fuzz)
wants() { local s; for s in "${SUITES[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
for s in "${SUITES[@]}"; do
  case $s in cargo | postgres | compliance | api | browser | thirdparty | fuzz) ;; *) echo "unknown suite: $s" >&2; exit 2 ;; esac
done

T0=$SECONDS
mkdir -p "$ROOT/target"
LOGS=$ROOT/target/test-logs
mkdir -p "$LOGS"
# One setup at a time per checkout.
exec 9>"$ROOT/target/.test-setup.lock"
flock 9

step() { echo; echo "== $*"; }
SETUP_FAILED=()

# --- setup: system packages (apt-get update once, only when something is missing). Only
# the named packages and what they depend on: no recommends, no upgrades of installed ones.
APT_UPDATED=
APT_FLAGS=(-y -qq --no-install-recommends --no-upgrade)
apt_install() { # WHY PACKAGE...
  local why=$1 as_root=() sim plan new upgrades; shift
  [ "$(id -u)" = 0 ] || { command -v sudo >/dev/null && as_root=(sudo -n); }
  if [ -z "$APT_UPDATED" ]; then
    "${as_root[@]}" apt-get update -qq >"$LOGS/apt.log" 2>&1 || { tail -5 "$LOGS/apt.log"; return 1; }
    APT_UPDATED=1
  fi
  # Say exactly what will be installed (apt's own simulation) before installing it.
  # ("Inst NAME (VERSION …)" is a new package, "Inst NAME [OLD] (NEW …)" an upgrade.)
  sim=$(apt-get install -s "${APT_FLAGS[@]}" "$@" 2>>"$LOGS/apt.log")
  plan=$(echo "$sim" | awk '/^Inst / && $3 !~ /^\[/ {print $2}')
  upgrades=$(echo "$sim" | awk '/^Inst / && $3 ~ /^\[/ {print $2}')
  new=$(echo "$plan" | grep -c . || true)
  echo "installing $* for $why: apt-get install --no-install-recommends --no-upgrade;"
  echo "  $new new Debian packages: $(echo $plan)"
  if [ -n "$upgrades" ]; then
    echo "  upgraded because a new package needs a newer version: $(echo $upgrades)"
  else
    echo "  no installed package is upgraded"
  fi
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install "${APT_FLAGS[@]}" "$@" >>"$LOGS/apt.log" 2>&1 \
    || { tail -20 "$LOGS/apt.log"; return 1; }
}
if wants browser && [ ! -x /usr/bin/chromium ]; then
  step "setup: Chromium for the browser suite (/usr/bin/chromium is missing)"
  apt_install "the browser suite (headless Chromium)" chromium fonts-liberation || SETUP_FAILED+=(browser)
fi

# --- setup: playwright-core for the browser test (npm ci when the lock file changed)
if wants browser; then
  stamp=tests/browser/node_modules/.scimgate-lock
  if ! cmp -s tests/browser/package-lock.json "$stamp" 2>/dev/null; then
    step "setup: npm ci (tests/browser)"
    if (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error) >"$LOGS/npm.log" 2>&1; then
      cp tests/browser/package-lock.json "$stamp"
    else
      tail -20 "$LOGS/npm.log"; SETUP_FAILED+=(browser)
    fi
  fi
fi

# --- setup: the Python venv (recreated when requirements.txt changed)
REQS=tests/thirdparty/requirements.txt
if ! cmp -s "$REQS" "$VENV/.requirements" 2>/dev/null || ! "$VENV/bin/python" -c '' 2>/dev/null; then
  step "setup: Python venv $VENV ($REQS)"
  PY=""
  for c in ${PYTHON:-} python3 python3.13 python3.12 python3.11; do
    command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { PY=$c; break; }
  done
  if [ -n "$PY" ] && rm -rf "$VENV" && "$PY" -m venv "$VENV" \
    && "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQS" >"$LOGS/pip.log" 2>&1; then
    cp "$REQS" "$VENV/.requirements"
  else
    echo "could not make the venv (Python >= 3.11 with venv and pip needed)"; tail -20 "$LOGS/pip.log" 2>/dev/null
    SETUP_FAILED+=(thirdparty)
  fi
fi
[ -x "$VENV/bin/python" ] && export SCIMGATE_TEST_PYTHON=$VENV/bin/python

# --- setup: a throw-away PostgreSQL cluster for the tests of the PostgreSQL store (issue 16)
if ! bash scripts/pg.sh bindir >/dev/null 2>&1; then
  step "setup: PostgreSQL's server (scripts/pg.sh finds no initdb, pg_ctl and postgres)"
  apt_install "the PostgreSQL tests (a throw-away cluster: scripts/pg.sh)" postgresql || true
fi
PG_STARTED=
bash scripts/pg.sh status >/dev/null 2>&1 || PG_STARTED=1
step "setup: PostgreSQL cluster (bash scripts/pg.sh start)"
if PG_URL=$(bash scripts/pg.sh start 2>"$LOGS/pg.log"); then
  export SCIMGATE_TEST_PG_URL=$PG_URL SCIMGATE_TEST_PG_CA=$ROOT/target/pg/ca.pem
  # Stop the cluster when this script ends, however it ends, if this script started it.
  [ -n "$PG_STARTED" ] && trap 'bash "$ROOT/scripts/pg.sh" stop >/dev/null 2>&1' EXIT
  echo "$(bash scripts/pg.sh status)${PG_STARTED:+; stopped at the end}"
else
  cat "$LOGS/pg.log"
  echo "no PostgreSQL cluster: SCIMGATE_TEST_PG_URL is not set (the tests that need it skip, or fail under CI=true)"
fi
# Under CI the PostgreSQL tests must run: without the cluster they fail instead of skipping.
[ "${CI:-}" = true ] && export SCIMGATE_TEST_PG_REQUIRED=1
exec 9>&-
echo "setup: $((SECONDS - T0))s${SCIMGATE_TEST_PYTHON:+; SCIMGATE_TEST_PYTHON=$SCIMGATE_TEST_PYTHON}${SCIMGATE_TEST_PG_URL:+; SCIMGATE_TEST_PG_URL and SCIMGATE_TEST_PG_CA set}"

# --- the suites
PASSED=0 FAILED=0 REPORT=()
record() { # NAME RC SECONDS
  if [ "$2" = 0 ]; then PASSED=$((PASSED + 1)); REPORT+=("PASS  $1 ($3s)")
  else FAILED=$((FAILED + 1)); REPORT+=("FAIL  $1 ($3s, exit $2)"); fi
}
setup_failed() { local s; for s in "${SETUP_FAILED[@]+"${SETUP_FAILED[@]}"}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

BUILT=
build() { # the debug binaries scimgate and config, once
  [ -n "$BUILT" ] && return "$BUILT"
  step "cargo build --workspace"
  cargo build --workspace --quiet; BUILT=$?
  return "$BUILT"
}

run_suite() { # NAME COMMAND...
  local name=$1 t=$SECONDS rc; shift
  step "$name"
  if setup_failed "$name"; then echo "setup for $name failed (see above)"; record "$name" setup $((SECONDS - t)); return; fi
  "$@"; rc=$?
  record "$name" "$rc" $((SECONDS - t))
}
needs_bins() { build || { echo "cargo build --workspace failed"; return 1; }; "$@"; }

wants cargo && run_suite cargo cargo test --workspace
# The integration suite again, every store on PostgreSQL.
on_postgres() {
  if [ -z "${SCIMGATE_TEST_PG_URL:-}" ] && [ -z "${SCIMGATE_TEST_PG_REQUIRED:-}" ]; then
    echo "skipped: no PostgreSQL cluster (see setup above)"; return 0
  fi
  SCIMGATE_TEST_BACKEND=postgres cargo test --test integration
}
wants postgres && run_suite postgres on_postgres
# The compliance suite from a copy of the repository's files in a fresh, otherwise empty
# directory: a user's clone has nothing beside it, so the suite may need nothing there.
compliance_from_copy() {
  local base copy rc
  base=$(mktemp -d)
  copy=$base/scimgate
  mkdir -p "$copy"
  if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$ROOT" ls-files -z --cached --others --exclude-standard | (cd "$ROOT" && xargs -0 tar -cf - 2>/dev/null) | tar -xf - -C "$copy"
  else
    tar -C "$ROOT" --exclude=./target -cf - . | tar -xf - -C "$copy"
  fi
  [ "$(ls -A "$base")" = scimgate ] || { echo "$base holds more than the copy"; return 1; }
  echo "running scripts/scim-compliance.sh from a copy of the repository in $copy (nothing beside it)"
  SCIM_TESTER_VENV=${SCIM_TESTER_VENV:-$ROOT/target/scim2-tester-venv} bash "$copy/scripts/scim-compliance.sh" "$BIN"
  rc=$?
  rm -rf "$base"
  return $rc
}
wants compliance && run_suite compliance needs_bins compliance_from_copy
wants api && run_suite api needs_bins bash tests/api/run.sh "$BIN"
# The API suite again, its store on PostgreSQL (whose errors differ from SQLite's).
api_on_postgres() {
  if [ -z "${SCIMGATE_TEST_PG_URL:-}" ] && [ -z "${SCIMGATE_TEST_PG_REQUIRED:-}" ]; then
    echo "skipped: no PostgreSQL cluster (see setup above)"; return 0
  fi
  API_BACKEND=postgres bash tests/api/run.sh "$BIN"
}
wants api && run_suite api-postgres needs_bins api_on_postgres
wants browser && run_suite browser needs_bins node tests/browser/oauth_login.mjs "$BIN"
wants browser && run_suite timeline needs_bins node tests/browser/timeline.mjs "$BIN"
wants thirdparty && run_suite thirdparty needs_bins "$VENV/bin/python" tests/thirdparty/authlib_client.py "$BIN"
wants fuzz && run_suite fuzz bash fuzz/run.sh "${FUZZ_SECONDS:-15}"

echo
echo "== summary (total $((SECONDS - T0))s; disk: $(df -h "$TARGET" | awk 'NR == 2 {print $4 " free of " $2}'))"
printf '%s\n' "${REPORT[@]}"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
