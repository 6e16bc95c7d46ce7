# Shared by the benchmark scripts (sourced, run from the repository's root).

# bench_workdir: a scratch directory WORK, removed at exit with the server SERVER (if any)
# still running then killed.
bench_workdir() {
  WORK=$(mktemp -d)
  SERVER=""
  cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
  trap cleanup EXIT
}

# release_bins [BIN …]: build this tree's release server and `seed` example (and the
# examples named in EXAMPLES), set R to their directory and BINS to the binaries given
# (default: this tree's server). For the scripts that compare binaries, each on a fresh
# copy of one seeded store (`fresh_copy`).
release_bins() {
  R=${CARGO_TARGET_DIR:-$PWD/target}/release
  local examples=(--example seed) e
  for e in ${EXAMPLES:-}; do examples+=(--example "$e"); done
  cargo build --release --quiet -j 1 --bin scimgate "${examples[@]}"
  BINS=("$@")
  [ ${#BINS[@]} -gt 0 ] || BINS=("$R/scimgate")
}

# fresh_copy SRC DST: DST (and its -wal, -shm) replaced by a copy of the store SRC, with its
# WAL, where the seed's last writes may still be.
fresh_copy() {
  rm -f "$2" "$2-wal" "$2-shm"
  local f
  for f in "$1" "$1-wal"; do [ -e "$f" ] && cp "$f" "$2${f#"$1"}"; done
  return 0
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Every response must be a 200 with the expected body (an error with a 200 would not
# count): each wrk thread counts the others, `done` prints the total for run() to check.
check_lua() { # FILE PATTERN [STATUS, default 200]
  cat >>"$1" <<LUA
local threads = {}
setup = function(thread) table.insert(threads, thread) end
bad = 0
response = function(status, headers, body)
  if status ~= ${3:-200} or not body:find('$2', 1, true) then bad = bad + 1 end
end
done = function(summary, latency, requests)
  local n = 0
  for _, t in ipairs(threads) do n = n + t:get("bad") end
  io.write("Bad responses: " .. n .. "\\n")
end
LUA
}

# unchecked FILE OUT: FILE's requests without the check check_lua appended to it (for a
# server, such as the ceiling, that answers everything with one fixed 200).
unchecked() { sed '/^local threads = {}$/,$d' "$1" >"$2"; }

# The wrk scripts of the OAuth2 benchmarks, in DIR: cc.lua (client_credentials) and
# introspect.lua (of TOKEN), each checking its responses.
oauth_lua() { # DIR TOKEN
  cat >"$1/cc.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA
  cat >"$1/introspect.lua" <<LUA
wrk.method = "POST"
wrk.body = "token=$2&token_type_hint=access_token"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA
  check_lua "$1/cc.lua" '"access_token"'
  check_lua "$1/introspect.lua" '"active":true'
}

# wrk_measure OUT URL [wrk args…]: run wrk on core 1 (DUR seconds, CONN connections) after
# `sync`, output in OUT; set RPS, P50, P99, and PROBLEMS (non-2xx answers, bad bodies,
# socket errors: empty when there were none). `sync` first so no measurement pays for the
# writeback of the one before: the kernel writes dirty pages back 30 s after they were
# dirtied (vm.dirty_expire_centisecs), into whichever run is going then (a ceiling run was
# once measured 40 % low that way).
wrk_measure() {
  local out=$1 url=$2; shift 2
  sync
  taskset -c 1 wrk -t1 -c"$CONN" -d"${DUR}s" --latency "$@" "$url" >"$out"
  RPS=$(awk '/Requests\/sec/ {print $2}' "$out")
  P50=$(awk '$1=="50%" {print $2}' "$out")
  P99=$(awk '$1=="99%" {print $2}' "$out")
  local non2xx errors bad
  non2xx=$(awk '/Non-2xx/ {print $5}' "$out")
  errors=$(awk '/Socket errors/ {print}' "$out")
  bad=$(awk '/Bad responses:/ && $3 != "0" {print $3}' "$out")
  [ -n "$bad" ] && non2xx="${non2xx:-0}, bad bodies $bad"
  PROBLEMS="${non2xx:+NON-2XX: $non2xx}${errors:+  $errors}"
}

# measure_or_fail NAME URL [wrk args…]: wrk_measure into $WORK/NAME.txt, printed as
# "NAME req/s p50 p99"; a run with errors ends the script, and no rate is reported for it.
measure_or_fail() {
  local name=$1 url=$2; shift 2
  wrk_measure "$WORK/$name.txt" "$url" "$@"
  printf '%-28s %10s req/s  p50 %8s  p99 %8s%s\n' "$name" "$RPS" "$P50" "$P99" "${PROBLEMS:+  $PROBLEMS}"
  if [ -n "$PROBLEMS" ]; then
    echo "FAILED: $name had non-2xx answers, bad bodies or socket errors; no rate is reported"; exit 1
  fi
}

# start_server BIN DB [VAR=VALUE …]: scimgate serve on DB, on core 0 and a free port (PORT),
# with the given environment; waits for /healthz. SERVER is its pid; log in $WORK/server.log.
start_server() {
  local bin=$1 db=$2; shift 2
  PORT=$(free_port)
  env "$@" taskset -c 0 "$bin" serve --db "$db" --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && return; sleep 0.1; done
  echo "server did not start"; cat "$WORK/server.log"; exit 1
}
stop_server() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""; }

# The IdPs' lookup before a create: each request names a different seeded user, at random
# (one repeated name would measure a cache, not the lookup), and must find exactly one.
filter_lua() { # FILE N
  cat >"$1" <<LUA
math.randomseed(os.time())
request = function()
  local path = string.format('/scim/v2/Users?filter=userName%%20eq%%20%%22user%06d@example.com%%22', math.random(0, $2 - 1))
  return wrk.format("GET", path)
end
LUA
  check_lua "$1" '"totalResults":1}'
}

# scim_write_lua FILE: the start of a wrk script sending SCIM JSON: `scim(method, path,
# body)` keeps the -H headers (wrk.format drops them when given a table) and adds the
# content type.
scim_write_lua() {
  cat >"$1" <<'LUA'
local function scim(method, path, body)
  local headers = {}
  for k, v in pairs(wrk.headers) do headers[k] = v end
  headers["Content-Type"] = "application/scim+json"
  return wrk.format(method, path, headers, body)
end
LUA
}

# post_lua FILE: a wrk script creating a new SCIM User at each request (unique userNames),
# checking each answer (201, the new User).
post_lua() {
  scim_write_lua "$1"
  cat >>"$1" <<'LUA'
-- A prefix of its own for every wrk thread, from the kernel's random numbers: two wrk
-- started in the same second (bench/pg.sh's two instances) must not post the same names.
local f = io.open("/dev/urandom", "rb")
local b = f:read(4)
f:close()
local n = 0
local tid = string.format("%02x%02x%02x%02x", b:byte(1, 4))
request = function()
  n = n + 1
  return scim("POST", nil, '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"post-' .. tid .. '-' .. n .. '@example.com","name":{"givenName":"P","familyName":"Q"},"active":true}')
end
LUA
  check_lua "$1" '"userName":"post-' 201
}

# patch_lua FILE N: a wrk script PATCHing a random one of N seeded Users at each request
# (a new givenName each time, so every request writes), checking each answer (200, a
# givenName written by the script: `patched-N`).
patch_lua() {
  scim_write_lua "$1"
  cat >>"$1" <<LUA
math.randomseed(os.time())
local n = 0
request = function()
  n = n + 1
  local path = string.format('/scim/v2/Users/00000000-0000-4000-8000-%012d', math.random(0, $2 - 1))
  return scim("PATCH", path, '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"name.givenName","value":"patched-' .. n .. '"}]}')
end
LUA
  check_lua "$1" '"givenName":"patched-'
}
