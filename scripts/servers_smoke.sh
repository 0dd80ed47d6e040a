#!/usr/bin/env bash
# Smoke test of the test servers (scripts/servers.sh): starts them, then talks to each
# with its plain client (curl / psql / boto3). Safe to re-run; touches only database `dbt`,
# and the prefix smoke/ in the bucket.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$SCRIPT_DIR/servers.sh" up
eval "$("$SCRIPT_DIR/servers.sh" env)"
VENV="${STIR_SERVERS_DIR:-/var/tmp/stir-servers}/venv"

PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok   - $1"; }
bad() { FAILED=$((FAILED + 1)); echo "FAIL - $1"; [ -z "${2:-}" ] || printf '       %s\n' "$2"; }
check_eq() { # name expected actual
  if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "expected $(printf %q "$2"), got $(printf %q "$3")"; fi
}

# ch URLPARAMS < SQL-or-data : POST to ClickHouse with the test credentials, print the body
ch() {
  curl -sS -f -u "$STIR_CLICKHOUSE_USER:$STIR_CLICKHOUSE_PASSWORD" \
    "$STIR_CLICKHOUSE_URL/?${1:-}" --data-binary @-
}

# ---------------------------------------------------------------- ClickHouse
check_eq "clickhouse /ping" "Ok." "$(curl -sS "$STIR_CLICKHOUSE_URL/ping")"
check_eq "clickhouse version" "26.9" "$(echo 'SELECT version()' | ch | cut -d. -f1-2)"
ch <<<"DROP DATABASE IF EXISTS dbt SYNC" && ch <<<"CREATE DATABASE dbt ENGINE = Atomic" && ok "create database dbt"
ch "database=dbt" <<'SQL' && ok "create MergeTree tables"
CREATE TABLE events (id UInt64, grp String, v Float64, m Map(String, UInt32)) ENGINE = MergeTree ORDER BY id
SQL
ch "database=dbt" <<<"CREATE TABLE events_new AS events"
printf '1\ta\t1.5\t{}\n2\ta\t2.5\t{'"'"'k'"'"':1}\n3\tb\t10\t{}\n' |
  ch "database=dbt&query=INSERT%20INTO%20events%20FORMAT%20TabSeparated" \
  && ok "insert TSV"
check_eq "select TSV back" "$(printf '1\ta\t1.5\t{}\n2\ta\t2.5\t{'"'"'k'"'"':1}\n3\tb\t10\t{}')" \
  "$(ch "database=dbt" <<<"SELECT * FROM events ORDER BY id")"
check_eq "window function" "$(printf '1\ta\t1.5\n2\ta\t4\n3\tb\t10')" \
  "$(ch "database=dbt" <<<"SELECT id, grp, sum(v) OVER (PARTITION BY grp ORDER BY id) FROM events ORDER BY id")"
check_eq "JSONEachRow + default_format" '{"id":3,"m":{}}' \
  "$(ch "database=dbt&default_format=JSONEachRow" <<<"SELECT id, m FROM events WHERE id = 3")"
check_eq "query params (URL param_)" "2" \
  "$(ch "database=dbt&param_g=a&param_lo=1" <<<"SELECT count() FROM events WHERE grp = {g:String} AND id >= {lo:UInt64}")"
check_eq "query params (multipart, as the Rust crate sends them)" "1" \
  "$(curl -sS -f -u "$STIR_CLICKHOUSE_USER:$STIR_CLICKHOUSE_PASSWORD" "$STIR_CLICKHOUSE_URL/" \
      -F "query=SELECT {s:String} = 'it''s'" -F "param_s=it\\'s")"
ch "database=dbt" <<<"INSERT INTO events_new SELECT id + 100, grp, v, m FROM events"
ch "database=dbt" <<<"EXCHANGE TABLES events AND events_new" && ok "EXCHANGE TABLES"
check_eq "exchange swapped the data" "101 1" \
  "$(ch "database=dbt" <<<"SELECT (SELECT min(id) FROM events), (SELECT min(id) FROM events_new) FORMAT CSV" | tr ',' ' ')"
check_eq "per-request setting" "3" "$(ch "max_threads=3" <<<"SELECT getSetting('max_threads')")"
resp="$(curl -sS -o /dev/null -w '%{http_code}' -D - -u "$STIR_CLICKHOUSE_USER:$STIR_CLICKHOUSE_PASSWORD" \
  "$STIR_CLICKHOUSE_URL/" --data-binary 'SELECT nosuch' | tr -d '\r')"
case "$resp" in
  *"X-ClickHouse-Exception-Code: 47"*500) ok "error -> 500 + X-ClickHouse-Exception-Code" ;;
  *) bad "error -> 500 + X-ClickHouse-Exception-Code" "$resp" ;;
esac
check_eq "wrong password -> 403" "403" \
  "$(curl -sS -o /dev/null -w '%{http_code}' -u "stir:wrong" "$STIR_CLICKHOUSE_URL/" --data-binary 'SELECT 1')"
check_eq "server survives errors" "1" "$(ch <<<"SELECT 1")"

# ClickHouse writing to and reading from the S3 server through s3()
S3URL="$STIR_S3_ENDPOINT/$STIR_S3_BUCKET/smoke/events.parquet"
ch "s3_truncate_on_insert=1" <<<"INSERT INTO FUNCTION s3('$S3URL', '$AWS_ACCESS_KEY_ID', '$AWS_SECRET_ACCESS_KEY', 'Parquet') SELECT * FROM dbt.events" \
  && ok "clickhouse s3() insert"
check_eq "clickhouse s3() select" "3 306" \
  "$(ch <<<"SELECT count(), sum(id) FROM s3('$S3URL', '$AWS_ACCESS_KEY_ID', '$AWS_SECRET_ACCESS_KEY', 'Parquet') FORMAT CSV" | tr ',' ' ')"

check_eq "clickhouse https (test CA)" "1" \
  "$(curl -sS -f --cacert "$STIR_TEST_CA" -u "$STIR_CLICKHOUSE_USER:$STIR_CLICKHOUSE_PASSWORD" \
      "$STIR_TEST_CLICKHOUSE_HTTPS_URL/" --data-binary 'SELECT 1')"

# ---------------------------------------------------------------- PostgreSQL
check_eq "psql query" "stir|3" \
  "$(psql "$STIR_POSTGRES_URL" -tAX -v ON_ERROR_STOP=1 -c "SELECT current_user, count(*) FROM generate_series(1,3)")"
check_eq "psql verify-full (test CA)" "t" \
  "$(psql "$STIR_POSTGRES_URL?sslmode=verify-full&sslrootcert=$STIR_TEST_CA" -tAX -v ON_ERROR_STOP=1 \
      -c "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")"

# ---------------------------------------------------------------- S3 (SigV4 via boto3)
"$VENV/bin/python" -c 'import boto3' 2>/dev/null || "$VENV/bin/pip" install -q --disable-pip-version-check boto3
if "$VENV/bin/python" - <<'PY'
import os, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["STIR_S3_ENDPOINT"], region_name=os.environ["AWS_REGION"])
b = os.environ["STIR_S3_BUCKET"]
s3.put_object(Bucket=b, Key="smoke/hello.txt", Body=b"hello stir")
assert s3.get_object(Bucket=b, Key="smoke/hello.txt")["Body"].read() == b"hello stir"
keys = [o["Key"] for o in s3.list_objects_v2(Bucket=b, Prefix="smoke/")["Contents"]]
assert "smoke/hello.txt" in keys and "smoke/events.parquet" in keys, keys
bad = boto3.client("s3", endpoint_url=os.environ["STIR_S3_ENDPOINT"], region_name="us-east-1",
                   aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"], aws_secret_access_key="wrong")
try:
    bad.get_object(Bucket=b, Key="smoke/hello.txt")
    raise SystemExit("wrong secret was accepted")
except bad.exceptions.ClientError:
    pass
PY
then ok "s3 put/get/list with SigV4, wrong secret rejected"; else bad "s3 put/get/list with SigV4"; fi

echo "servers smoke: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
