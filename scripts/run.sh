#!/usr/bin/env bash
# The main job, for real: build stir, start the test servers (ClickHouse, PostgreSQL, S3), seed
# the raw tables, check and plan the shipped stir.kdl, draw its week, bootstrap the new warehouse
# (stir-runtime --bootstrap), then run EVERY enabled schedule once with stir-runtime (upstream
# schedules first) against those servers, with the
# scrape requests POSTed to a local receiver standing in for beat. Writes plan.json and week.svg.
#
# It resets the warehouse database `dbt` and the app tables it needs in PostgreSQL's `public`
# (of the production and the staging database) on the TEST servers (scripts/servers.sh), so it can be run again and again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/stir-target}"
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 2; }
bin="$CARGO_TARGET_DIR/release"
step() { printf '\n== %s\n' "$*"; }
started=$SECONDS

step "cargo build --release (stir, stir-runtime)"
cargo build --release -q --workspace

step "scripts/servers.sh up (ClickHouse, PostgreSQL, S3 on 127.0.0.1)"
scripts/servers.sh up
eval "$(scripts/servers.sh env)"

step "stir check --deny-warnings stir.kdl"
"$bin/stir" check --deny-warnings stir.kdl
step "stir plan stir.kdl -o plan.json"
"$bin/stir" plan stir.kdl -o plan.json
step "stir timeline stir.kdl -o week.svg"
"$bin/stir" timeline stir.kdl -o week.svg

step "seed: raw tables (examples/seed/raw.sql), a new warehouse database, the app's tables, the S3 bucket"
python3 examples/seed/seed.py load examples/seed/raw.sql
db=$(python3 -c 'import json; print(json.load(open("plan.json"))["warehouse"]["database"])')
bucket=$(python3 -c 'import json; print(json.load(open("plan.json"))["staging"]["bucket"])')
curl -sf -u "$STIR_CLICKHOUSE_USER:$STIR_CLICKHOUSE_PASSWORD" "$STIR_CLICKHOUSE_URL/" \
  --data-binary "DROP DATABASE IF EXISTS $db" >/dev/null
curl -sf -u "$STIR_CLICKHOUSE_USER:$STIR_CLICKHOUSE_PASSWORD" "$STIR_CLICKHOUSE_URL/" \
  --data-binary "CREATE DATABASE $db ENGINE = Atomic" >/dev/null
echo "ClickHouse database $db: new and empty"
# The enrich statements of the syncs join the app's own tables in the serving schema, in the
# production database and in the staging app's (the `staging` serving target).
for url in "$STIR_POSTGRES_URL" "$STIR_POSTGRES_URL_STAGING"; do
psql -q "$url" -v ON_ERROR_STOP=1 <<'SQL'
DROP TABLE IF EXISTS public.instagram_account, public.post_collection;
CREATE TABLE public.instagram_account (id int8 PRIMARY KEY, ig_id text, handle text, thumbnail text,
    followers int8, audience_gender jsonb, search_phrase text);
INSERT INTO public.instagram_account
    SELECT i, (1000000 + i)::text, 'creator_' || i, 'https://app.example.com/' || i || '.jpg',
           2000 + i * i * 20, '{"male": 0.5}', 'creator ' || i
    FROM generate_series(1, 400) i;
CREATE TABLE public.post_collection (id int8 PRIMARY KEY, share_id text);
INSERT INTO public.post_collection SELECT c, 'app-share-' || c FROM generate_series(1, 30) c;
SQL
done
echo "PostgreSQL public.instagram_account, public.post_collection: created in both databases"
venv="${STIR_SERVERS_DIR:-/var/tmp/stir-servers}/venv"
"$venv/bin/python" -c 'import boto3' 2>/dev/null ||
  "$venv/bin/pip" install -q --disable-pip-version-check boto3
BUCKET="$bucket" "$venv/bin/python" - <<'PY'
import os, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["STIR_S3_ENDPOINT"], region_name=os.environ["AWS_REGION"])
if os.environ["BUCKET"] not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
    s3.create_bucket(Bucket=os.environ["BUCKET"])
print(f"S3 bucket {os.environ['BUCKET']}: ready")
PY

step "beat: a local receiver that answers 200 to every POST"
port=18765
python3 -c '
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200); self.send_header("content-length", "2"); self.end_headers()
        self.wfile.write(b"ok"); print(self.path, flush=True)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
' "$port" >"${TMPDIR:-/tmp}/stir-run-beat.log" 2>&1 &
receiver=$!
trap 'kill "$receiver" 2>/dev/null || true' EXIT
for e in $(python3 -c 'import json; print(" ".join(json.load(open("plan.json"))["endpoints"]))'); do
  var="STIR_ENDPOINT_$(echo "$e" | tr 'a-z-' 'A-Z_')"
  export "$var=http://127.0.0.1:$port"
  echo "$var=http://127.0.0.1:$port"
done
: >"${TMPDIR:-/tmp}/stir-run-beat.log"

step "stir-runtime plan.json --bootstrap (build what a new warehouse lacks, dependencies first)"
RUST_LOG=warn "$bin/stir-runtime" plan.json --bootstrap --force

step "every enabled schedule once, upstream first: stir-runtime plan.json --once SCHEDULE"
ok=0; failed=()
log="${TMPDIR:-/tmp}/stir-run-once.log"
# --force: no leader runs on these test servers, so a "running" row in the history can only be
# a run this script was interrupted in.
for s in $(python3 examples/seed/seed.py order plan.json); do
  t=$SECONDS
  if RUST_LOG=warn "$bin/stir-runtime" plan.json --once "$s" --force >"$log" 2>&1; then
    ok=$((ok + 1)); printf '  ok      %-40s %3ss\n' "$s" $((SECONDS - t))
  else
    failed+=("$s"); printf '  FAILED  %-40s %3ss\n' "$s" $((SECONDS - t)); sed 's/^/          /' "$log" | tail -5
  fi
done
posts=$(wc -l <"${TMPDIR:-/tmp}/stir-run-beat.log")

step "stir-runtime history --limit 20"
RUST_LOG=warn "$bin/stir-runtime" history --limit 20

echo
if [ ${#failed[@]} -eq 0 ]; then
  echo "stir run: ${ok} schedules ok, 0 failed; beat got ${posts} POSTs; $((SECONDS - started))s (plan.json, week.svg written)"
else
  echo "stir run: ${ok} schedules ok, ${#failed[@]} failed (${failed[*]}); beat got ${posts} POSTs; $((SECONDS - started))s"
  exit 1
fi
