#!/usr/bin/env bash
# The API suite: Schemathesis (property-based testing of an HTTP API from its OpenAPI
# document) against a freshly started scimgate with a temporary store. It reads
# docs/openapi.yaml, generates and mutates requests for every operation there (valid ones,
# boundary values, wrong types, junk strings, missing and extra fields, wrong methods), follows
# the document's links (create a User, then GET, PUT, PATCH and DELETE it) and fails on:
#   - any 5xx (a client's mistake is never a server error);
#   - a status, media type, header or body the document does not list for that operation
#     (a SCIM error is application/scim+json with the SCIM error body, an OAuth2 error is
#     JSON with `error`, a listed resource has its `id`);
#   - a protected operation that answers without credentials, a method the document does not
#     list that is not answered 405 with `Allow`, a deleted resource still readable, a created
#     one not readable;
#   - a crash: the server must still answer /healthz afterwards, and its log holds no panic.
# Three runs, each over every operation it applies to: the SCIM API with a bearer token
# holding both scopes, the OAuth2 endpoints with the client's HTTP Basic credentials, and
# everything with no credentials at all (the unauthenticated paths).
# Not checked: whether every request the document allows is accepted, and every one it does
# not allow is refused (Schemathesis's positive_data_acceptance and negative_data_rejection):
# a schema cannot say that a filter must parse or a userName be unique, and the server
# accepts some things a strict reading refuses (a string for `attributes`, null members),
# as docs/scim.md says.
#
# Needs the built binaries (cargo build --workspace) and Python >= 3.10 with venv; installs
# tests/api/requirements.txt (Schemathesis, pinned) into target/api-venv when it changed.
# Usage: bash tests/api/run.sh [path/to/target/dir]   (default: target/debug)
# Env: API_BACKEND=postgres (the store is a new database on the cluster of
#      SCIMGATE_TEST_PG_URL, with SCIMGATE_TEST_PG_CA: see scripts/pg.sh; dropped at the end;
#      default: a SQLite file),
#      API_SEED (Hypothesis's seed; default a fixed one, so a run is repeatable),
#      API_EXAMPLES (examples per operation and phase, default 40), PYTHON.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=${1:-target/debug}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
[ -x "$BIN/scimgate" ] && [ -x "$BIN/config" ] || { echo "build scimgate and config first (cargo build --workspace)"; exit 2; }
SEED=${API_SEED:-20261206}
EXAMPLES=${API_EXAMPLES:-40}

VENV=$ROOT/target/api-venv
REQS=tests/api/requirements.txt
if ! cmp -s "$REQS" "$VENV/.requirements" 2>/dev/null || ! "$VENV/bin/schemathesis" --version >/dev/null 2>&1; then
  echo "installing Schemathesis ($REQS) into target/api-venv"
  rm -rf "$VENV"
  "${PYTHON:-python3}" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQS"
  cp "$REQS" "$VENV/.requirements"
fi

WORK=$(mktemp -d)
SERVER="" DROP=""
trap '[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null; [ -n "$DROP" ] && $DROP; [ -n "${API_KEEP:-}" ] || rm -rf "$WORK"' EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DB=$WORK/scimgate.db
if [ "${API_BACKEND:-sqlite}" = postgres ]; then
  [ -n "${SCIMGATE_TEST_PG_URL:-}" ] || { echo "API_BACKEND=postgres needs SCIMGATE_TEST_PG_URL (bash scripts/pg.sh start)"; exit 2; }
  PGBIN=$(bash scripts/pg.sh bindir)
  NAME=api_$$_$RANDOM
  "$PGBIN/createdb" --maintenance-db="$SCIMGATE_TEST_PG_URL" "$NAME"
  DROP="$PGBIN/dropdb --maintenance-db=$SCIMGATE_TEST_PG_URL --force $NAME"
  DB=${SCIMGATE_TEST_PG_URL%/*}/$NAME${SCIMGATE_TEST_PG_CA:+?sslmode=require&sslrootcert=$SCIMGATE_TEST_PG_CA}
fi
echo "api: store ${API_BACKEND:-sqlite}, seed $SEED, $EXAMPLES examples per operation and phase"
export SCIMGATE_DB=$DB SCIMGATE_TOOL_PASSWORD=api-suite-tool-pw
"$BIN/config" init >/dev/null
read -r CLIENT SECRET < <("$BIN/config" --json register-api-client -n "schemathesis" \
  -G client_credentials -S user-directory.read.all -S user-directory.write.all \
  | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["id"], d["client_secret"])')
TOKEN=$("$BIN/config" --json issue-access-token -i "$CLIENT" --valid-for 1h \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
# Its store in WORK, its heartbeat log beside it; the sign-in back-off stays on.
"$BIN/scimgate" serve --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER=$!
BASE=http://127.0.0.1:$PORT
# healthy: whether /healthz answers 200 (python3, as everything here: no curl needed).
healthy() {
  python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/healthz", timeout=5)' "$BASE" 2>/dev/null
}
for _ in $(seq 100); do healthy && break; sleep 0.1; done
healthy || { echo "scimgate did not start:"; tail -5 "$WORK/server.log"; exit 2; }

FAILED=()
# run NAME [schemathesis args…]: one Schemathesis run, its report in WORK/NAME.txt.
run() {
  local name=$1; shift
  local out=$WORK/$name.txt t0=$SECONDS
  # From WORK: Hypothesis keeps its example database in the working directory.
  if (cd "$WORK" && "$VENV/bin/schemathesis" run "$ROOT/docs/openapi.yaml" --url "$BASE" \
      --checks all --exclude-checks positive_data_acceptance,negative_data_rejection \
      --max-examples "$EXAMPLES" --seed "$SEED" --suppress-health-check all \
      --no-color "$@") >"$out" 2>&1; then
    echo "api $name: passed ($(grep -Eo '[0-9]+ generated' "$out" | head -1) requests, $((SECONDS - t0)) s)"
  else
    echo "api $name: FAILED"
    { sed -n '/= FAILURES =/,/= SUMMARY =/p' "$out" | grep -v '^\s*$' | head -80; tail -15 "$out"; } || true
    FAILED+=("$name")
  fi
}
run scim --workers 1 -H "Authorization: Bearer $TOKEN" --include-path-regex '^/scim/'
run oauth --workers 1 -a "$CLIENT:$SECRET" --include-path-regex '^/(oauth2/(token|introspect|revoke)|\.well-known/)' --phases examples,coverage,fuzzing
# A wrong client credential is answered after a growing delay (docs/security.md): four
# workers, so those waits overlap.
run anonymous --workers 4

if ! healthy; then
  echo "api: the server no longer answers /healthz"; tail -20 "$WORK/server.log"; FAILED+=(alive)
fi
if grep -n 'panicked' "$WORK/server.log"; then
  echo "api: the server's log holds a panic"; FAILED+=(panic)
fi
[ ${#FAILED[@]} -eq 0 ] || { echo "api: failed: ${FAILED[*]}"; exit 1; }
echo "api: passed"
