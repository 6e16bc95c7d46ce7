#!/usr/bin/env bash
# CLI benchmark (issue 2): with 100,000 tokens in the store, time list-tokens
# --expiring-within 14d, show-token and revoke-token, and separately the fixed cost every
# command pays (process start, opening the store, argon2id of the tool password). Then
# add EXPIRED (default 500,000) tokens that expired 100 days ago and time one
# `prune-tokens --expired-for 30d` (it deletes them, so it runs once), and last one
# `revoke-token --client-id X --all` of every token left.
# Needs hyperfine (apt-get install hyperfine). Prints hyperfine's summaries.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
EXPIRED=${EXPIRED:-500000}
cargo build --release --quiet --workspace --bins --example seed
R=$PWD/target/release
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export SCIMGATE_DB=$WORK/s.db SCIMGATE_TOOL_PASSWORD=bench-password
"$R/config" init >/dev/null
"$R/examples/seed" tokens "$SCIMGATE_DB" "$N"
echo "store: $N tokens, $("$R/config" list-tokens --expiring-within 14d | tail -n +2 | wc -l) expiring within 14 days"
ids=$("$R/config" --json list-tokens --limit 40 | python3 -c 'import json,sys; print(",".join(t["id"] for t in json.load(sys.stdin)))')
one=${ids%%,*}
hyperfine -N --warmup 3 --runs 30 --export-markdown "$WORK/cli.md" \
  -n "start only (config --version)" "$R/config --version" \
  -n "open store + argon2id (config policy)" "$R/config policy" \
  -n "list-tokens --expiring-within 14d" "$R/config list-tokens --expiring-within 14d" \
  -n "show-token ID" "$R/config show-token $one"
cat "$WORK/cli.md"
# Each revocation needs a live token: one run per token id.
hyperfine -N --runs 40 --export-markdown "$WORK/revoke.md" \
  -n "revoke-token --id ID" --parameter-list id "$ids" "$R/config revoke-token --id {id}" >/dev/null 2>&1
python3 - "$WORK/revoke.md" <<'PY'
import re, sys
rows = [l for l in open(sys.argv[1]) if l.startswith("| `revoke")]
means = [float(re.split(r"\s*\|\s*", r)[2].split()[0]) for r in rows]
print(f"revoke-token --id ID: mean {sum(means)/len(means):.1f} ms, max {max(means):.1f} ms over {len(means)} tokens")
PY
"$R/examples/seed" expired "$SCIMGATE_DB" "$EXPIRED"
start=$(date +%s.%N)
"$R/config" prune-tokens --expired-for 30d
end=$(date +%s.%N)
python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); n=int(sys.argv[3]); print(f'prune-tokens: {n:,} expired tokens among {n + int(sys.argv[4]):,} in {s:.2f} s ({s * 1e6 / n:.1f} µs per token; what it costs a running server: bench/prune.sh)')" "$start" "$end" "$EXPIRED" "$N"
# Revoking every token of a client is one UPDATE of its row however many it holds (issue
# 11: one transaction per token held the write lock 16 s for 519,000 tokens). The command
# then waits out the servers' 1 s caches before it returns; that wait is part of the time.
client=$("$R/config" --json list-api-clients | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
live=$("$R/config" --json list-tokens -i "$client" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
start=$(date +%s.%N)
"$R/config" revoke-token --client-id "$client" --all >/dev/null
end=$(date +%s.%N)
python3 -c "import sys; print(f'revoke-token --client-id X --all: {int(sys.argv[3]):,} live tokens cut off in {float(sys.argv[2])-float(sys.argv[1]):.2f} s, of which 1.02 s is the wait for server caches')" "$start" "$end" "$live"
