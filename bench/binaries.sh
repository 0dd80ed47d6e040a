#!/usr/bin/env bash
# The release binaries (Cargo.toml [profile.release]: thin LTO, stripped): their sizes and
# start-up times, beside dbt's start-up (the tool a team moves from), measured in one run.
# Writes docs/bench-binaries.md.
#   bench/binaries.sh [ROUNDS]      (default 20; needs scripts/dbt-venv.sh's venv for dbt)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds="${1:-20}"
target="${CARGO_TARGET_DIR:-/var/tmp/stir-target}"
cargo build --release --workspace --bins -q
stir="$target/release/stir"
runtime="$target/release/stir-runtime"
dbt="${STIR_DBT_VENV:-/var/tmp/stir-dbt-venv}/bin/dbt"

# Median wall time of a command in milliseconds, over $rounds runs.
median_ms() {
  python3 - "$rounds" "$@" <<'PY'
import subprocess, sys, time, statistics
rounds, cmd = int(sys.argv[1]), sys.argv[2:]
times = []
for _ in range(rounds):
    t = time.perf_counter()
    # A command that fails fast would time nothing: the bench stops instead.
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    times.append((time.perf_counter() - t) * 1000)
print(f"{statistics.median(times):.1f}")
PY
}

size_mib() { python3 -c "import os,sys; print(f'{os.path.getsize(sys.argv[1])/1048576:.1f}')" "$1"; }

rows=()
rows+=("| \`stir --version\` | $(size_mib "$stir") MiB | $(median_ms "$stir" --version) ms |")
rows+=("| \`stir check tests/cases/clean/stir.kdl\` | | $(median_ms "$stir" check tests/cases/clean/stir.kdl) ms |")
rows+=("| \`stir check stir.kdl\` (112 models) | | $(median_ms "$stir" check stir.kdl) ms |")
rows+=("| \`stir-runtime --help\` | $(size_mib "$runtime") MiB | $(median_ms "$runtime" --help) ms |")
rows+=("| \`stir-runtime plan.json --dry-run\` (the shipped plan) | | $("$stir" plan stir.kdl -o /tmp/stir-bench-plan.json 2>/dev/null; median_ms "$runtime" /tmp/stir-bench-plan.json --dry-run) ms |")
if [[ -x "$dbt" ]]; then
  rows+=("| \`dbt --version\` (dbt-core, for comparison) | | $(median_ms "$dbt" --version) ms |")
fi

out=docs/bench-binaries.md
{
  echo "# Release binaries: size and start-up"
  echo
  echo "\`bench/binaries.sh $rounds\` on $(nproc) cores, $(date -u +%Y-%m-%d): the release profile (thin LTO,"
  echo "stripped symbols), median wall time of $rounds runs each, one run for all rows."
  echo
  echo "| command | binary size | median wall time |"
  echo "|---|---|---|"
  printf '%s\n' "${rows[@]}"
} > "$out"
cat "$out"
