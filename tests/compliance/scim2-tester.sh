#!/usr/bin/env bash
# Run scim2-tester (PyPI, python-scim) against a SCIM 2.0 server. Part of the repository so
# that a fresh clone runs its compliance check with nothing from outside it: the tester is
# installed from PyPI, pinned in tests/compliance/requirements.txt, into a venv under the
# checkout's target/ (target/scim2-tester-venv; reinstalled only when the pins change).
# Usage: scim2-tester.sh BASE_URL TOKEN      e.g. http://127.0.0.1:8080/scim/v2 s3cret
# Optional env: SCIM_TESTER_INCLUDE=comma-separated tags to run only those (discovery, misc, crud,
#   crud:create|read|update|delete, crud:read:attributes, patch, patch:add|remove|replace; the
#   discovery queries always run), SCIM_REPORT_JSON=path (per-check results as JSON), PYTHON
#   (the interpreter that makes the venv, Python >= 3.11), SCIM_TESTER_VENV (the venv's path).
#   (No exclude option: scim2-tester 0.5.2's exclude_tags also skips discovery, so nothing else runs.)
# Last line: "passed N, failed M". Exit 0 = all passed, 1 = M>0, 2 = tool could not run.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
REQS=$HERE/requirements.txt
VENV=${SCIM_TESTER_VENV:-$ROOT/target/scim2-tester-venv}
die() { echo "ERROR: $*" >&2; echo "passed 0, failed 0"; exit 2; }
[ $# -eq 2 ] || die "usage: $0 BASE_URL TOKEN"
mkdir -p "$(dirname "$VENV")" || die "cannot create $(dirname "$VENV")"
(
  flock 9
  cmp -s "$REQS" "$VENV/.requirements" && "$VENV/bin/python" -c 'import scim2_tester, httpx2' 2>/dev/null && exit 0
  PY=""; for c in ${PYTHON:-} python3 python3.13 python3.12 python3.11; do
    command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { PY=$c; break; }
  done
  [ -n "$PY" ] || { echo "ERROR: scim2-tester needs Python >= 3.11 with venv and pip" >&2; exit 1; }
  echo "installing scim2-tester (pinned in tests/compliance/requirements.txt) into $VENV" >&2
  rm -rf "$VENV" && "$PY" -m venv "$VENV" \
    && "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQS" >"$VENV.install.log" 2>&1 \
    && cp "$REQS" "$VENV/.requirements" || { tail -20 "$VENV.install.log" >&2; exit 1; }
) 9>"$VENV.lock" || die "could not install scim2-tester into $VENV"

# The runner exits 0 (all passed), 3 (failures) or 2 (could not run); anything else is a crash.
SCIM_URL=$1 SCIM_TOKEN=$2 "$VENV/bin/python" - <<'PY'
import json, os, sys, time
from collections import Counter
import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

url, token = os.environ["SCIM_URL"], os.environ["SCIM_TOKEN"]
def fail(msg):
    print(f"ERROR: {msg}", file=sys.stderr); print("passed 0, failed 0"); sys.exit(2)
http = httpx2.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30,
                     trust_env=False)
try:
    http.get("ServiceProviderConfig")
except httpx2.HTTPError as exc:
    fail(f"server not reachable at {url}: {exc}")
start = time.monotonic()
try:
    include = set(filter(None, os.environ.get("SCIM_TESTER_INCLUDE", "").split(","))) or None
    results = check_server(SyncSCIMClient(http), include_tags=include)
except Exception as exc:  # a crash of the tool itself, not a server failure
    fail(f"scim2-tester crashed: {exc!r}")
for r in results:
    reason = " ".join((r.reason or "").split())[:300]
    print(f"{r.status.name:8} {('[' + r.resource_type + '] ') if r.resource_type else ''}{r.title}: {reason}")
counts = Counter(r.status for r in results)
passed = counts[Status.SUCCESS] + counts[Status.COMPLIANT] + counts[Status.ACCEPTABLE]
failed = counts[Status.ERROR] + counts[Status.CRITICAL]
print(f"scim2-tester on {url}: {len(results)} checks in {time.monotonic() - start:.1f}s; "
      + ", ".join(f"{s.name.lower()} {n}" for s, n in counts.items()))
if os.environ.get("SCIM_REPORT_JSON"):
    with open(os.environ["SCIM_REPORT_JSON"], "w") as f:
        json.dump([{"status": r.status.name, "title": r.title, "resource_type": r.resource_type,
                    "tags": sorted(r.tags), "reason": r.reason} for r in results], f, indent=1)
if not results:
    fail("scim2-tester ran no check")
print(f"passed {passed}, failed {failed}")
sys.exit(3 if failed else 0)
PY
case $? in 0) exit 0 ;; 3) exit 1 ;; 2) exit 2 ;; *) die "scim2-tester runner crashed" ;; esac
