#!/usr/bin/env bash
# The dbt that stir's compatibility tests compare against (compiler/tests/dbt_compat.rs):
# dbt-core (<1.12) and dbt-clickhouse from PyPI in a venv, made once and kept under /var/tmp so
# reruns are fast. Prints the venv's path. On a clean Debian machine it installs python3-venv.
set -euo pipefail

VENV="${STIR_DBT_VENV:-/var/tmp/stir-dbt-venv}"
REQS="dbt-core>=1.8,<1.12 dbt-clickhouse>=1.8,<2"
STAMP="$VENV/.stir-reqs"

log() { echo "dbt-venv: $*" >&2; }

if [[ -x "$VENV/bin/dbt" && -f "$STAMP" && "$(cat "$STAMP")" == "$REQS" ]]; then
  echo "$VENV"
  exit 0
fi

command -v python3 >/dev/null || {
  command -v apt-get >/dev/null || { log "python3 missing and no apt-get"; exit 2; }
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 >/dev/null
}
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  command -v apt-get >/dev/null || { log "python3 has no venv/ensurepip and there is no apt-get: install python3-venv"; exit 2; }
  log "installing python3-venv"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
fi

log "making $VENV ($REQS)"
rm -rf "$VENV"
python3 -m venv "$VENV"
# shellcheck disable=SC2086
"$VENV/bin/pip" install -q --disable-pip-version-check $REQS >&2
"$VENV/bin/dbt" --version >&2
echo "$REQS" > "$STAMP"
echo "$VENV"
