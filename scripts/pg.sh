#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the tests and benchmarks (issue 16), under target/pg/.
#
#   bash scripts/pg.sh start    create the cluster if missing, start it if stopped; print the URL
#   bash scripts/pg.sh stop     stop it (the data stays, for the next start)
#   bash scripts/pg.sh status   exit 0 and say the port when running, exit 3 when not
#   bash scripts/pg.sh url      print the URL (exit 1 when not running)
#   bash scripts/pg.sh destroy  stop it and delete target/pg
#   bash scripts/pg.sh bindir   print where the server's binaries are (exit 1 when none)
# Only the URL goes to stdout (URL=$(bash scripts/pg.sh start)); what it does, to stderr.
#
# `start` is idempotent: a running cluster is reused. It listens on 127.0.0.1 only, on a
# port free when it starts, and writes:
#   target/pg/url       postgres://scimgate:PASSWORD@127.0.0.1:PORT/scimgate_test
#   target/pg/ca.pem    the CA that signed the server's certificate (ssl = on, so
#                       `sslmode=require`, or verify-full against this file, works)
#   target/pg/password  the password of the role scimgate (generated once)
# The role `scimgate` logs in with a password (scram-sha-256 over TCP), owns the database
# `scimgate_test` and may CREATEDB, so a test can make a database of its own.
#
# The server never runs as root: as root (CI), it runs as the system user scimgate-pg
# (created with `useradd --system` when missing) through `runuser`; otherwise as the
# current user. Its files (data/, run/ the socket, log, tls/) are in target/pg/cluster, a
# directory of /tmp instead (target/pg/cluster is then a link to it) when that user cannot
# reach target/pg. The local socket is the server user's only (peer authentication), for
# this script's own administration.
#
# Settings for a 2-core box: fsync and synchronous_commit on (benchmarks measure real
# commits), shared_buffers 64MB, max_connections 200.
# Binaries: $PG_BINDIR, else `pg_config --bindir`, else the highest /usr/lib/postgresql/*/bin
# (Debian's postgresql package). Needs openssl.
# Env: SCIMGATE_PG_DIR (default <repo>/target/pg), SCIMGATE_PG_USER (the server's user when
# run as root; default scimgate-pg).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DIR=${SCIMGATE_PG_DIR:-$ROOT/target/pg}
case $DIR in /*) ;; *) DIR=$ROOT/$DIR ;; esac
ROLE=scimgate
DB=scimgate_test

die() { echo "pg.sh: $*" >&2; exit 1; }

bindir() {
  local d
  for d in ${PG_BINDIR:-} "$(pg_config --bindir 2>/dev/null || true)" \
    $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ] && { echo "$d"; return; }
  done
  return 1
}

# The server's user, and how to run a command as that user.
if [ "$(id -u)" = 0 ]; then
  PGUSER_OS=${SCIMGATE_PG_USER:-scimgate-pg}
  as_pg() { (cd / && runuser -u "$PGUSER_OS" -- "$@"); }
else
  PGUSER_OS=$(id -un)
  as_pg() { (cd / && "$@"); }
fi

# The cluster's files, by their real path (target/pg/cluster may be a link to /tmp, through a
# directory that the server's user cannot enter).
set_paths() {
  CLUSTER=$DIR/cluster
  [ -L "$CLUSTER" ] && CLUSTER=$(readlink -f "$CLUSTER")
  DATA=$CLUSTER/data
  SOCK=$CLUSTER/run
}
set_paths

# Port of the running server (from postmaster.pid), or fail.
running_port() {
  [ -f "$DATA/postmaster.pid" ] || return 1
  as_pg "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1 || return 1
  sed -n 4p "$DATA/postmaster.pid"
}

url_of() { echo "postgres://$ROLE:$(cat "$DIR/password")@127.0.0.1:$1/$DB"; }

# A port nobody listens on at 127.0.0.1 (a connection to it is refused).
free_port() {
  local p i
  for i in $(seq 50); do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  return 1
}

psql_admin() { # PORT ARGS...: as the superuser, through the socket
  local port=$1; shift
  as_pg "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$port" -d postgres "$@"
}

# The CA and the server's certificate (EC P-256; the server's is a leaf, CA:FALSE, for
# 127.0.0.1 and localhost, because rustls refuses a CA certificate as a server's).
make_tls() {
  local t=$CLUSTER/tls
  [ -s "$t/server.crt" ] && [ -s "$t/server.key" ] && [ -s "$DIR/ca.pem" ] && return
  command -v openssl >/dev/null || die "openssl is needed for the server's certificate"
  mkdir -p "$t"
  (
    set -e
    cd "$t"
    openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
    openssl req -x509 -new -key ca.key -days 3650 -subj "/CN=scimgate test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -out ca.pem 2>/dev/null
    openssl ecparam -name prime256v1 -genkey -noout -out server.key 2>/dev/null
    openssl req -new -key server.key -subj "/CN=localhost" -out server.csr 2>/dev/null
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
      "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile server.ext -out server.crt 2>/dev/null
    rm -f server.csr server.ext ca.srl ca.key
    chmod 600 server.key
  ) || die "could not make the server's certificate with openssl"
  cp "$t/ca.pem" "$DIR/ca.pem"
}

# The cluster's directory, reachable by the server's user.
place_cluster() {
  if [ "$(id -u)" = 0 ]; then
    id -u "$PGUSER_OS" >/dev/null 2>&1 || {
      echo "pg.sh: creating the system user $PGUSER_OS to run PostgreSQL (it refuses root)" >&2
      useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
        --user-group "$PGUSER_OS" || die "useradd $PGUSER_OS failed"
    }
    if [ ! -e "$DIR/cluster" ] && ! runuser -u "$PGUSER_OS" -- test -x "$DIR"; then
      # target/pg is under a directory the server's user may not enter (a home, say).
      local tmp
      tmp=$(mktemp -d /tmp/scimgate-pg.XXXXXX)
      ln -s "$tmp" "$DIR/cluster"
      echo "pg.sh: $PGUSER_OS cannot reach $DIR; the cluster lives in $tmp" >&2
      set_paths
    fi
    mkdir -p "$CLUSTER/"
    chown -R "$PGUSER_OS:" "$CLUSTER/"
  else
    mkdir -p "$CLUSTER"
  fi
  chmod 700 "$CLUSTER/"
}

init_cluster() {
  local version
  version=$("$BIN/postgres" --version | awk '{print $3}' | cut -d. -f1)
  if [ -f "$DATA/PG_VERSION" ] && [ "$(cat "$DATA/PG_VERSION")" != "$version" ]; then
    echo "pg.sh: the cluster is of PostgreSQL $(cat "$DATA/PG_VERSION"), the binaries $version: making it anew" >&2
    rm -rf "${DATA:?}"
  fi
  [ -f "$DATA/PG_VERSION" ] && return
  [ -s "$DIR/password" ] || { (umask 077; openssl rand -hex 16 >"$DIR/password"); }
  echo "pg.sh: initdb (PostgreSQL $version, $BIN) in $DATA" >&2
  as_pg mkdir -p "$SOCK"
  as_pg "$BIN/initdb" -D "$DATA" --no-locale -E UTF8 --auth-local=peer \
    --auth-host=scram-sha-256 >"$CLUSTER/initdb.log" 2>&1 \
    || { tail -20 "$CLUSTER/initdb.log" >&2; die "initdb failed"; }
  as_pg tee -a "$DATA/postgresql.conf" >/dev/null <<CONF

# scripts/pg.sh: a throw-away cluster for scimgate's tests and benchmarks
listen_addresses = '127.0.0.1'
unix_socket_directories = '$SOCK'
unix_socket_permissions = 0700
max_connections = 200
shared_buffers = 64MB
fsync = on
synchronous_commit = on
password_encryption = 'scram-sha-256'
ssl = on
ssl_cert_file = '$CLUSTER/tls/server.crt'
ssl_key_file = '$CLUSTER/tls/server.key'
CONF
}

# pg_ctl start, with no descriptor but stdin, stdout and stderr: the server would keep
# any other open for as long as it runs (this script's lock, a caller's pipe, which would
# make the caller wait for the server to stop).
server_start() { # PORT
  (
    local fd
    for fd in $(ls /proc/$BASHPID/fd); do
      [ "$fd" -gt 2 ] && { eval "exec $fd>&-" 2>/dev/null || true; }
    done
    as_pg "$BIN/pg_ctl" start -D "$DATA" -l "$CLUSTER/log" -w -t 60 -s -o "-p $1" </dev/null >/dev/null 2>&1
  )
}

cmd_start() {
  local port url try
  if port=$(running_port); then
    url=$(url_of "$port")
    (umask 077; echo "$url" >"$DIR/url")
    echo "$url"
    return
  fi
  place_cluster
  init_cluster
  make_tls
  [ "$(id -u)" = 0 ] && chown -R "$PGUSER_OS:" "$CLUSTER/"
  as_pg mkdir -p "$SOCK"
  for try in 1 2 3; do
    port=$(free_port) || die "no free port on 127.0.0.1"
    if server_start "$port"; then
      break
    fi
    port=
    tail -5 "$CLUSTER/log" >&2
  done
  [ -n "$port" ] || die "the server did not start (log: $CLUSTER/log)"
  psql_admin "$port" -v pw="$(cat "$DIR/password")" <<SQL >/dev/null
SELECT 'CREATE ROLE $ROLE LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') \gexec
ALTER ROLE $ROLE WITH LOGIN CREATEDB PASSWORD :'pw';
SELECT 'CREATE DATABASE $DB OWNER $ROLE' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB') \gexec
SQL
  url=$(url_of "$port")
  (umask 077; echo "$url" >"$DIR/url")
  echo "$url"
}

cmd_stop() {
  if running_port >/dev/null; then
    as_pg "$BIN/pg_ctl" stop -D "$DATA" -m fast -w -t 60 -s
    echo "pg.sh: stopped" >&2
  else
    echo "pg.sh: not running" >&2
  fi
  rm -f "$DIR/url"
}

[ $# = 1 ] || die "usage: bash scripts/pg.sh start|stop|status|url|destroy|bindir"
BIN=$(bindir) || die "no PostgreSQL server binaries (initdb, pg_ctl, postgres): install Debian's postgresql, or set PG_BINDIR"
[ "$1" = bindir ] && { echo "$BIN"; exit 0; }
mkdir -p "$DIR"
# One start or stop at a time.
exec 8>"$DIR/.lock"
flock 8
case $1 in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status)
    if port=$(running_port); then echo "running on 127.0.0.1:$port (PostgreSQL $(cat "$DATA/PG_VERSION"), $CLUSTER)"
    else echo "not running"; exit 3; fi ;;
  url)
    port=$(running_port) || die "not running (bash scripts/pg.sh start)"
    url_of "$port" ;;
  destroy)
    cmd_stop
    [ -L "$DIR/cluster" ] && rm -rf "$CLUSTER"
    exec 8>&-
    rm -rf "${DIR:?}" ;;
  *) die "usage: bash scripts/pg.sh start|stop|status|url|destroy|bindir" ;;
esac
