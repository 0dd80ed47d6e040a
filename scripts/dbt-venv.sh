#!/usr/bin/env bash
# The dbt that stir's compatibility tests compare against (compiler/tests/dbt_compat.rs):
# dbt-core (1.11.16, under the issue's <1.12) and dbt-clickhouse (1.10.3) from PyPI in a venv,
# made once and kept under /var/tmp so reruns are fast (remade when REQS changes). Prints the
# venv's path. On a clean Debian machine it installs python3-venv.
set -euo pipefail

VENV="${STIR_DBT_VENV:-/var/tmp/stir-dbt-venv}"
# Pinned to the pair the tests were written against (as bench/run.sh pins its own): an
# adapter release that renders differently should be a deliberate change, not a surprise.
REQS="dbt-core==1.11.16 dbt-clickhouse==1.10.3"
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
