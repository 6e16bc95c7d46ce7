#!/usr/bin/env bash
# One IdP's burst of searches that scan, and what it costs the other clients. For each
# binary given (default: this tree's release build), on a fresh copy of a store of USERS
# Users: one client sends SEARCHES searches at once (`name.familyName co "zzz"`, which
# reads every User), while another client requests a client_credentials token every 20 ms,
# and one User is read by id in a loop (a point read, which no search holds up). Prints how long the burst took to be
# answered and its answers by status, then the tokens' and the reads' p50 and max during
# it (and just before it, for reference). A search must answer 200 with a ListResponse, or
# 429 with `Retry-After` (too many of that client's at once); a token request 200 with an
# access token; a read 200. Anything else fails the run.
# Server pinned to core 0, the clients to core 1.
# Usage: bash bench/searches.sh [BIN …]   (env: USERS=100000, SEARCHES=32)
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${USERS:-100000}
SEARCHES=${SEARCHES:-32}
# shellcheck source=bench/lib.sh
. bench/lib.sh
release_bins "$@"
bench_workdir

cat >"$WORK/burst.py" <<'PY'
import base64, statistics, sys, threading, time, urllib.error, urllib.parse, urllib.request

from floods import at_once

base, basic, token, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
problems = []

def call(path, data=None, headers=None):
    req = urllib.request.Request(base + path, data=data, headers=headers or {})
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            status, body, hdrs = r.status, r.read().decode(), r.headers
    except urllib.error.HTTPError as e:
        status, body, hdrs = e.code, e.read().decode(), e.headers
    return status, body, hdrs, (time.perf_counter() - t) * 1000

bearer = {"Authorization": "Bearer " + token}
scan = "/scim/v2/Users?filter=" + urllib.parse.quote('name.familyName co "zzz"')
answers = []

def search():
    status, body, hdrs, _ = call(scan, headers=bearer)
    ok = (status == 200 and "ListResponse" in body) or (status == 429 and hdrs.get("Retry-After"))
    if not ok:
        problems.append(f"a search answered {status}: {body[:120]}")
    answers.append(status)

stop = threading.Event()
tokens, reads = [], []

def token_loop():
    while not stop.is_set():
        status, body, _, ms = call("/oauth2/token", b"grant_type=client_credentials", {
            "Authorization": basic, "Content-Type": "application/x-www-form-urlencoded"})
        if status != 200 or '"access_token"' not in body:
            problems.append(f"a token request answered {status}: {body[:120]}")
        tokens.append((time.perf_counter(), ms))
        stop.wait(0.02)

def read_loop():
    while not stop.is_set():
        status, body, _, ms = call("/scim/v2/Users/00000000-0000-4000-8000-000000000007",
                                   headers=bearer)
        if status != 200:
            problems.append(f"a read answered {status}: {body[:120]}")
        reads.append((time.perf_counter(), ms))

loops = [threading.Thread(target=token_loop), threading.Thread(target=read_loop)]
for t in loops:
    t.start()
time.sleep(1)
t0, t1 = at_once(search, n)
stop.set()
for t in loops:
    t.join()

def summary(samples):
    before = [ms for at, ms in samples if at < t0]
    during = [ms for at, ms in samples if t0 <= at <= t1] or [float("nan")]
    return (f"before p50 {statistics.median(before):.1f} ms; during p50 "
            f"{statistics.median(during):.1f}, max {max(during):.1f} ms (n={len(during)})")

by_status = {s: answers.count(s) for s in sorted(set(answers))}
print(f"  {n} searches at once answered in {t1 - t0:.2f} s: {by_status}")
print(f"  tokens: {summary(tokens)}")
print(f"  reads:  {summary(reads)}")
for p in sorted(set(problems))[:5]:
    print("  FAILED:", p)
sys.exit(1 if problems else 0)
PY

"$R/examples/seed" users "$WORK/seed.db" "$USERS"
TOKEN=$("$R/examples/seed" token "$WORK/seed.db")
read -r CLIENT_ID CLIENT_SECRET < <("$R/examples/seed" client "$WORK/seed.db")
BASIC="Basic $(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)"
echo "$USERS Users; $SEARCHES searches at once by one client"
FAILED=0
for bin in "${BINS[@]}"; do
  fresh_copy "$WORK/seed.db" "$WORK/run.db"
  start_server "$bin" "$WORK/run.db" SCIMGATE_CLIENT_ISSUANCE_PER_MINUTE=0
  echo "$bin"
  PYTHONPATH=bench taskset -c 1 python3 "$WORK/burst.py" "http://127.0.0.1:$PORT" "$BASIC" "$TOKEN" "$SEARCHES" || FAILED=1
  stop_server
done
exit "$FAILED"
