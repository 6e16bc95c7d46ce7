#!/usr/bin/env bash
# Two scimgate instances on one PostgreSQL database behind HAProxy, as docs/deploy.md
# describes: the run that page quotes. Loopback only; everything it starts it stops, and
# the database it creates it drops.
#
#   bash scripts/lb-demo.sh
#
# Needs: haproxy (apt-get install haproxy), psql, curl, jq, and PostgreSQL's server for
# scripts/pg.sh (the test script installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
cargo build --release --quiet --workspace --bins
R=$ROOT/target/release
WORK=$(mktemp -d)
PIDS=()
ADMIN=$(bash scripts/pg.sh start)
DB=lbdemo_$$
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql -q "$ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

psql -q "$ADMIN" -c "CREATE DATABASE $DB"
export SCIMGATE_DB="${ADMIN%/*}/$DB?sslmode=require&sslrootcert=$ROOT/target/pg/ca.pem"
export SCIMGATE_TOOL_PASSWORD=lb-demo-tool-password
LB=$(free_port) A=$(free_port) B=$(free_port)
echo "\$ config init"
"$R/config" init | sed "s/$(cat target/pg/password)/PASSWORD/g"
CLIENT=$("$R/config" --json register-api-client -n "Entra provisioning" --idp entra \
  -G client_credentials -S user-directory.read.all -S user-directory.write.all)
ID=$(jq -r .id <<<"$CLIENT") SECRET=$(jq -r .client_secret <<<"$CLIENT")

for inst in a:$A b:$B; do
  name=${inst%%:*} port=${inst##*:}
  SCIMGATE_LISTEN=127.0.0.1:$port SCIMGATE_PUBLIC_URL=http://127.0.0.1:$LB \
    SCIMGATE_TRUSTED_PROXIES=127.0.0.1 SCIMGATE_MONITOR_TICK=2s \
    "$R/scimgate" serve >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  eval "PID_$name=$!"
done
sed -e "s/LB_PORT/$LB/" -e "s/A_PORT/$A/" -e "s/B_PORT/$B/" deploy/haproxy.cfg >"$WORK/haproxy.cfg"
haproxy -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$LB/readyz" >/dev/null && break; sleep 0.1
done

echo "\$ curl -s http://127.0.0.1:$LB/readyz"
curl -s "http://127.0.0.1:$LB/readyz"; echo
TOKENS=()
for i in 1 2 3 4; do
  TOKENS+=("$(curl -sf -u "$ID:$SECRET" -d grant_type=client_credentials \
    "http://127.0.0.1:$LB/oauth2/token" | jq -r .access_token)")
done
sleep 0.5
echo "4 tokens issued through the balancer: $(grep -c 'path="/oauth2/token"' "$WORK/a.log") by instance a, $(grep -c 'path="/oauth2/token"' "$WORK/b.log") by instance b (their access logs)"
T=${TOKENS[0]}
echo "\$ curl -s -X POST http://127.0.0.1:$LB/scim/v2/Users … (userName bjensen@example.com)"
USER_ID=$(curl -sf -H "Authorization: Bearer $T" -H 'Content-Type: application/scim+json' \
  -d '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bjensen@example.com"}' \
  "http://127.0.0.1:$LB/scim/v2/Users" | jq -r .id)
echo "created $USER_ID"
for i in 1 2 3 4; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${TOKENS[$i-1]}" \
    "http://127.0.0.1:$LB/scim/v2/Users/$USER_ID")
  echo "GET /scim/v2/Users/$USER_ID with token $i: $code"
done
echo "\$ kill -9 (instance a)"
{ kill -9 "$PID_a"; wait "$PID_a"; } 2>/dev/null || true
sleep 3
ok=0
for i in 1 2 3 4 5 6; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $T" \
    "http://127.0.0.1:$LB/scim/v2/Users/$USER_ID")
  [ "$code" = 200 ] && ok=$((ok + 1))
done
echo "after the kill: $ok of 6 requests through the balancer answered 200 (instance b)"
echo "\$ config list-tokens --client-id $ID"
"$R/config" list-tokens --client-id "$ID" | cut -c1-100
holder=$(psql -qAt "${ADMIN%/*}/$DB" -c "SELECT holder FROM leases WHERE name = 'monitor'")
echo "the monitor lease is held by pid $(cut -d: -f2 <<<"$holder") (instance b is pid $PID_b)"
