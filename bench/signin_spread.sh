#!/usr/bin/env bash
# Wrong passwords from ever new addresses, and whether the owner still gets in. For each
# binary given (default: this tree's release build), on a fresh store with one operator
# account, behind a trusted proxy (the server believes X-Forwarded-For from loopback):
# the owner signs in once (a browser that has signed in before); then FLOOD threads send
# wrong passwords to /ui/login, each attempt from a new address (every 8th from the
# owner's, as behind one NAT), until the sign-in queue is full (503s answered); then a
# newcomer (no earlier sign-in, an address of its own) and the owner (from the shared
# address) each sign in with the right password. Prints the flood's answers by status,
# the passwords verified and the sign-ins shed, and the newcomer's and the owner's answer
# and time. Every answer is checked: the flood's are 401, 429 or 503 with their page, a
# right password's 303 (signed in) or 503/429 with the page saying why; anything else
# fails the run.
# Server pinned to core 0; the flood and the sign-ins to core 1.
# Usage: bash bench/signin_spread.sh [BIN …]   (env: FLOOD=100)
set -euo pipefail
cd "$(dirname "$0")/.."
FLOOD=${FLOOD:-100}
# shellcheck source=bench/lib.sh
. bench/lib.sh
release_bins "$@"
bench_workdir

cat >"$WORK/spread.py" <<'PY'
import http.client, http.cookies, re, sys, threading, time, urllib.parse

from floods import metrics

base, flood = sys.argv[1], int(sys.argv[2])
host, port = urllib.parse.urlsplit(base).hostname, urllib.parse.urlsplit(base).port
OWNER, PASSWORD, NAT = "owner", "owner-password-1", "198.51.100.4"
expected = {401: "Wrong user name or password", 429: "Try again in|being checked",
            503: "too many sign-ins at once"}
problems = []

class Browser:
    """Cookies kept as a browser would (by name; paths do not matter here)."""
    def __init__(self):
        self.cookies, self.csrf = {}, None

    def request(self, method, path, ip, body=None):
        conn = http.client.HTTPConnection(host, port, timeout=120)
        headers = {"X-Forwarded-For": ip}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body, headers)
        r = conn.getresponse()
        text = r.read().decode()
        for h in r.headers.get_all("Set-Cookie") or []:
            for name, morsel in http.cookies.SimpleCookie(h).items():
                self.cookies[name] = morsel.value
        conn.close()
        return r.status, text

    def open_page(self, ip):
        status, page = self.request("GET", "/ui/login", ip)
        self.csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

    def sign_in(self, ip, password):
        form = urllib.parse.urlencode(
            {"csrf_token": self.csrf, "username": OWNER, "password": password})
        return self.request("POST", "/ui/login", ip, form)

def right_password(who, browser, ip):
    browser.open_page(ip)
    t = time.perf_counter()
    status, text = browser.sign_in(ip, PASSWORD)
    ms = (time.perf_counter() - t) * 1000
    if status != 303 and not re.search(expected.get(status, "^$"), text):
        problems.append(f"{who}'s right password answered {status}: {text[:120]}")
    return status, ms

owner = Browser()
status, _ = right_password("the owner (first sign-in)", owner, NAT)
if status != 303:
    print(f"  FAILED: the owner's first sign-in answered {status}")
    sys.exit(1)
had_mark = "scimgate_device" in owner.cookies
stop = threading.Event()
counts, lock = {}, threading.Lock()

def attacker(t):
    try:
        flood_from(t)
    except Exception as e:  # a broken answer: the run fails, the others stop
        problems.append(f"a flooding thread failed: {e!r}")
        stop.set()

def flood_from(t):
    b = Browser()
    b.open_page(f"10.{t}.255.255")
    n = 0
    while not stop.is_set():
        ip = NAT if n % 8 == 0 else f"10.{t}.{n // 250 % 250}.{n % 250}"
        status, text = b.sign_in(ip, "wrong-password")
        if not re.search(expected.get(status, "^$"), text):
            problems.append(f"a flooded sign-in answered {status}: {text[:120]}")
        with lock:
            counts[status] = counts.get(status, 0) + 1
        if status != 401:
            time.sleep(0.005)
        n += 1

threads = [threading.Thread(target=attacker, args=(t,), daemon=True) for t in range(flood)]
for t in threads:
    t.start()
deadline = time.time() + 60
while counts.get(503, 0) < 20 and time.time() < deadline and not problems:
    time.sleep(0.01)
full = counts.get(503, 0) >= 20
try:
    newcomer = right_password("the newcomer", Browser(), "192.0.2.77") if full else None
    # The owner comes back later: the session is gone, the browser's mark is not.
    owner.cookies.pop("scimgate_session", None)
    owner_again = right_password("the owner", owner, NAT) if full else None
finally:
    stop.set()
for t in threads:
    t.join()
metric = metrics(base)
if not full:
    problems.append("the flood never filled the sign-in queue (no 503 answered)")
else:
    show = lambda r: f"{r[0]} in {r[1]:.0f} ms"
    print(f"  flood of {flood} threads: {dict(sorted(counts.items()))}; verified "
          f"{metric('scimgate_login_failures_total')}, shed {metric('scimgate_login_shed_total')}; "
          f"newcomer {show(newcomer)}; owner {'(with a mark) ' if had_mark else ''}{show(owner_again)}")
for p in problems[:5]:
    print("  FAILED:", p)
sys.exit(1 if problems else 0)
PY

FAILED=0
for bin in "${BINS[@]}"; do
  rm -f "$WORK"/run.db*
  "$R/examples/seed" account "$WORK/run.db" owner owner-password-1
  start_server "$bin" "$WORK/run.db" SCIMGATE_TRUSTED_PROXIES=127.0.0.1
  echo "$bin"
  PYTHONPATH=bench taskset -c 1 python3 "$WORK/spread.py" "http://127.0.0.1:$PORT" "$FLOOD" || FAILED=1
  stop_server
done
exit "$FAILED"
