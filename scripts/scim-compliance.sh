#!/usr/bin/env bash
# Runs the public SCIM compliance checker (scim2-tester, via ../shared/checks) against a
# freshly started scimgate with a temporary store. Exits non-zero on any failure.
# Usage: scripts/scim-compliance.sh [path/to/target/dir]   (default: target/debug)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/debug}
CHECK=${SCIM_CHECK:-../shared/checks/scim-compliance-tester.sh}
[ -x "$BIN/scimgate" ] && [ -x "$BIN/config" ] || { echo "build scimgate and config first (cargo build --workspace)"; exit 2; }
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
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
OUT=$WORK/report.txt
set +e
bash "$CHECK" "http://127.0.0.1:$PORT/scim/v2" "$TOKEN" >"$OUT" 2>&1
RC=$?
set -e
grep -E '^(ERROR|CRITICAL)' "$OUT" || true
tail -1 "$OUT"
exit $RC
