#!/usr/bin/env bash
# Runs the public SCIM compliance checker (scim2-tester, via tests/compliance/scim2-tester.sh,
# which installs it from PyPI, pinned, into target/scim2-tester-venv) against a freshly started
# scimgate with a temporary store. Needs only what the repository holds, the built binaries
# and Python >= 3.11. Exits non-zero on any failure.
# Usage: scripts/scim-compliance.sh [path/to/target/dir]   (default: target/debug)
# Env: SCIM_CHECK (another checker script taking BASE_URL TOKEN).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/debug}
CHECK=${SCIM_CHECK:-tests/compliance/scim2-tester.sh}
[ -x "$BIN/scimgate" ] && [ -x "$BIN/config" ] || { echo "build scimgate and config first (cargo build --workspace)"; exit 2; }
[ -f "$CHECK" ] || { echo "the compliance checker $CHECK does not exist"; exit 2; }
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export SCIMGATE_DB=$WORK/scimgate.db SCIMGATE_TOOL_PASSWORD=compliance-check-pw
"$BIN/config" init >/dev/null
CLIENT=$("$BIN/config" --json register-api-client -n "scim2-tester" -G client_credentials \
  -S user-directory.read.all -S user-directory.write.all | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
TOKEN=$("$BIN/config" --json issue-access-token -i "$CLIENT" --valid-for 1h \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
"$BIN/scimgate" serve --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
python3 - "$PORT" <<'PY' || { echo "scimgate did not start:"; tail -5 "$WORK/server.log"; exit 2; }
import sys, time, urllib.request
for _ in range(100):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=1); sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
PY
OUT=$WORK/report.txt
set +e
bash "$CHECK" "http://127.0.0.1:$PORT/scim/v2" "$TOKEN" >"$OUT" 2>&1
RC=$?
set -e
grep -E '^(ERROR|CRITICAL)' "$OUT" || true
tail -1 "$OUT"
exit $RC
