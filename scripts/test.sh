#!/usr/bin/env bash
# Every test stir has: formatting, lints, unit, golden, property and integration tests against
# real ClickHouse (chdb), PostgreSQL and S3 (SeaweedFS) servers started on loopback.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Builds are reused between runs when the target dir survives; it still works from nothing.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/stir-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 2; }
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy >/dev/null 2>&1 || true

echo "== servers"
scripts/servers.sh up
eval "$(scripts/servers.sh env)"

echo "== browser (Debian's Chromium and chromedriver, for the console's browser test)"
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  command -v apt-get >/dev/null || { echo "chromium/chromedriver missing and no apt-get" >&2; exit 2; }
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium chromium-driver fonts-dejavu-core >/dev/null
fi

echo "== container engine (podman and a Debian base image, for the image test)"
scripts/container.sh up
eval "$(scripts/container.sh env)"

echo "== dbt (dbt-core and dbt-clickhouse in a venv, for the dbt compatibility tests)"
STIR_DBT_VENV="$(scripts/dbt-venv.sh)"
export STIR_DBT_VENV

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

echo "== cargo test"
cargo test --workspace --no-fail-fast 2>&1 | tee /tmp/stir-test.log
status=${PIPESTATUS[0]}
passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' /tmp/stir-test.log | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' /tmp/stir-test.log | awk '{s+=$1} END {print s+0}')
echo "$passed passed, $failed failed"
exit "$status"
