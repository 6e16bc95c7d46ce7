"""Shared by the flood benchmarks (signin.sh, signin_spread.sh, metrics.sh, searches.sh;
they run their scripts with this folder on PYTHONPATH): many copies of one request sent at
once, what the server holds, read from /proc, and its /metrics counters."""
import re
import threading
import time
import urllib.request


def at_once(target, n):
    """Run `target` in `n` threads started together; returns (start, end) in
    time.perf_counter() seconds, end when the last one has returned."""
    threads = [threading.Thread(target=target) for _ in range(n)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return start, time.perf_counter()


def proc_status(pid, field):
    """A number from /proc/PID/status: VmHWM (peak resident set, KiB), Threads, …"""
    status = open(f"/proc/{pid}/status").read()
    return int(re.search(field + r":\s+(\d+)", status).group(1))


def metrics(base):
    """The server's /metrics now, as a function from a series' name to its value ("-"
    when the server has no such series)."""
    text = urllib.request.urlopen(base + "/metrics").read().decode()
    return lambda name: next((l.split()[-1] for l in text.splitlines()
                              if l.startswith(name + " ")), "-")
