#!/usr/bin/env bash
# What `/metrics` (unauthenticated) costs with many long-lived tokens in the store. For
# each binary given (default: this tree's release build), on a fresh copy of a store of
# TOKENS tokens (bench/seed.rs `tokens`: expiries spread over two years, so all but the
# first day's live longer than a day): one scrape (its size and time), then SCRAPES at once
# (how long until all are answered, their statuses), and the server's peak resident set
# (VmHWM). Every scrape must answer 200 with a page ending in `# EOF`; anything else fails
# the run. Server pinned to core 0, the scrapes to core 1.
# Usage: bash bench/metrics.sh [BIN …]   (env: TOKENS=100000, SCRAPES=40)
set -euo pipefail
cd "$(dirname "$0")/.."
TOKENS=${TOKENS:-100000}
SCRAPES=${SCRAPES:-40}
# shellcheck source=bench/lib.sh
. bench/lib.sh
release_bins "$@"
bench_workdir

cat >"$WORK/scrape.py" <<'PY'
import sys, time, urllib.error, urllib.request

from floods import at_once, proc_status

base, pid, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
problems, times, codes = [], [], []

def scrape():
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(base + "/metrics", timeout=300) as r:
            body = r.read()
            codes.append(r.status)
            if not body.rstrip().endswith(b"# EOF"):
                problems.append("a page without its end")
    except urllib.error.HTTPError as e:
        codes.append(e.code)
        problems.append(f"a scrape answered {e.code}")
    times.append(time.perf_counter() - t)
    return body if codes[-1] == 200 else b""

t = time.perf_counter()
one = scrape()
one_ms = (time.perf_counter() - t) * 1000
start, end = at_once(scrape, n)
took = end - start
hwm = proc_status(pid, "VmHWM") // 1024
series = one.count(b"\nscimgate_token_expiry_timestamp_seconds{")
by_status = {s: codes[1:].count(s) for s in sorted(set(codes[1:]))}
print(f"  one scrape: {len(one) / 1e6:.2f} MB, {series} expiry series, {one_ms:.0f} ms; "
      f"{n} at once answered in {took:.1f} s {by_status}; peak RSS {hwm} MiB")
for p in sorted(set(problems))[:5]:
    print("  FAILED:", p)
sys.exit(1 if problems else 0)
PY

"$R/examples/seed" tokens "$WORK/seed.db" "$TOKENS"
echo "$TOKENS tokens in the store; $SCRAPES scrapes at once"
FAILED=0
for bin in "${BINS[@]}"; do
  fresh_copy "$WORK/seed.db" "$WORK/run.db"
  start_server "$bin" "$WORK/run.db"
  echo "$bin"
  PYTHONPATH=bench taskset -c 1 python3 "$WORK/scrape.py" "http://127.0.0.1:$PORT" "$SERVER" "$SCRAPES" || FAILED=1
  stop_server
done
exit "$FAILED"
