#!/usr/bin/env bash
# A flood of wrong passwords on the sign-in page, and what it costs the server and its
# other clients. For each binary given (default: this tree's release build), on a fresh
# store: FLOOD sign-ins with a wrong password are sent at once from one address to
# /ui/login (one session, its CSRF token), while one client_credentials token is requested
# every 20 ms. Prints how long the flood took to be answered, its answers by status, how
# many passwords were verified (`scimgate_login_failures_total`) and how many sign-ins were
# refused unchecked (`scimgate_login_shed_total`: 503, and 429 for an address with two
# being checked; when the binary has it), the server's peak resident set
# (VmHWM) and thread count, and the tokens' p50 and max. Every answer is checked: a
# sign-in answers 401, 429 or 503 with its page, a token request 200 with an access
# token; anything else fails the run.
# Server pinned to core 0; the flood and the token requests to core 1.
# Usage: bash bench/signin.sh [BIN …]   (env: FLOOD=200)
set -euo pipefail
cd "$(dirname "$0")/.."
FLOOD=${FLOOD:-200}
# shellcheck source=bench/lib.sh
. bench/lib.sh
release_bins "$@"
bench_workdir

cat >"$WORK/flood.py" <<'PY'
import http.cookiejar, json, re, statistics, sys, threading, time, urllib.error
import urllib.parse, urllib.request

from floods import at_once, metrics, proc_status

base, pid, flood, basic = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
page = opener.open(base + "/ui/login").read().decode()
csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
form = urllib.parse.urlencode(
    {"csrf_token": csrf, "username": "admin", "password": "wrong-password"}).encode()
expected = {401: ["Wrong user name or password"], 429: ["Try again in", "being checked"],
            503: ["too many sign-ins at once"]}
answers, problems = [], []

def post(url, data, headers):
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()

def sign_in():
    status, body = post(base + "/ui/login", form, {
        "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
    if not any(text in body for text in expected.get(status, [])):
        problems.append(f"sign-in answered {status}: {body[:120]}")
    answers.append(status)

done = threading.Event()
token_ms = []

def tokens():
    while not done.is_set():
        t = time.perf_counter()
        status, body = post(base + "/oauth2/token", b"grant_type=client_credentials", {
            "Authorization": basic, "Content-Type": "application/x-www-form-urlencoded"})
        token_ms.append((time.perf_counter() - t) * 1000)
        if status != 200 or '"access_token"' not in body:
            problems.append(f"token request answered {status}: {body[:120]}")
        done.wait(0.02)

ticker = threading.Thread(target=tokens)
ticker.start()
time.sleep(0.2)
start, end = at_once(sign_in, flood)
took = end - start
done.set()
ticker.join()
metric = metrics(base)
by_status = {s: answers.count(s) for s in sorted(set(answers))}
print(f"  flood of {flood} answered in {took:.2f} s: {by_status}; verified "
      f"{metric('scimgate_login_failures_total')}, shed {metric('scimgate_login_shed_total')}; "
      f"peak RSS {proc_status(pid, 'VmHWM') / 1024:.0f} MiB, threads {proc_status(pid, 'Threads')}; "
      f"tokens meanwhile: {len(token_ms)}, p50 {statistics.median(token_ms):.1f} ms, "
      f"max {max(token_ms):.1f} ms")
for p in problems[:5]:
    print("  FAILED:", p)
sys.exit(1 if problems else 0)
PY

FAILED=0
for bin in "${BINS[@]}"; do
  rm -f "$WORK"/run.db*
  read -r CLIENT_ID CLIENT_SECRET < <("$R/examples/seed" client "$WORK/run.db")
  BASIC="Basic $(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)"
  start_server "$bin" "$WORK/run.db" SCIMGATE_CLIENT_ISSUANCE_PER_MINUTE=0
  echo "$bin"
  PYTHONPATH=bench taskset -c 1 python3 "$WORK/flood.py" "http://127.0.0.1:$PORT" "$SERVER" "$FLOOD" "$BASIC" || FAILED=1
  stop_server
done
exit "$FAILED"
