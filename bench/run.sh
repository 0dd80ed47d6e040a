#!/usr/bin/env bash
# stir vs dbt, side by side (issues #8, #14). End to end, from a bare machine:
#   1. a venv with pinned dbt-core + dbt-clickhouse from PyPI ($STIR_BENCH_VENV)
#   2. `cargo build --release -p stir` ($CARGO_TARGET_DIR, default /var/tmp/stir-target)
#   3. bench/generate.py: projects of 112, 1,000, 5,000 and 10,000 models ($STIR_BENCH_DIR),
#      in both shapes of SQL (small, and marts like the platform's real ones)
#   4. checks that every stir project is clean (`stir check --deny-warnings`) and that
#      `dbt parse` succeeds on every dbt project (the timed runs below fail loudly otherwise)
#   5. bench/bench.py: the alternating timings; writes bench/results/, the section
#      "stir check vs dbt parse" of docs/performance.md and docs/perf-check.svg
#
# With STIR_BENCH_BASELINE=/path/to/stir (an older build; STIR_BENCH_BASELINE_LABEL names it
# in the docs), its `stir check` runs in the same rounds: before and after side by side.
#
# usage: bench/run.sh [--quick] [SIZE ...]
set -euo pipefail

started=$(date +%s.%N)
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
venv=${STIR_BENCH_VENV:-/var/tmp/stir-bench-venv}
work=${STIR_BENCH_DIR:-/var/tmp/stir-bench}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/stir-target}
# Versions found working together (dbt-core 1.11+ with this adapter was not tried;
# an unpinned dbt-core resolves to a 2.x pre-release that downloads a binary at install).
DBT_CORE_VERSION=1.10.15
DBT_CLICKHOUSE_VERSION=1.10.3

quick=()
sizes=()
for a in "$@"; do
    case "$a" in
        --quick) quick=(--quick) ;;
        *) sizes+=("$a") ;;
    esac
done
[ ${#sizes[@]} -gt 0 ] || sizes=(112 1000 5000 10000)

echo "== tools"
if [ ! -x /usr/bin/time ]; then
    apt-get update -qq && apt-get install -y -qq time
fi
want="dbt-core==$DBT_CORE_VERSION dbt-clickhouse==$DBT_CLICKHOUSE_VERSION"
have=$("$venv/bin/python" -c "import importlib.metadata as m; print(f\"dbt-core=={m.version('dbt-core')} dbt-clickhouse=={m.version('dbt-clickhouse')}\")" 2>/dev/null || true)
if [ "$have" != "$want" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check $want
fi
echo "$want in $venv"

echo "== build"
(cd "$repo" && cargo build --release -p stir --quiet)
stir="$CARGO_TARGET_DIR/release/stir"
"$stir" --version

echo "== generate"
python3 "$here/generate.py" --out "$work/projects" --shape both "${sizes[@]}"

echo "== verify"
# Clean, but for one finding a big marts project may have: its plan would pass the 64 MiB a
# runtime reads (stir::plan_too_big; each model's SQL is in a plan three times). The check
# still runs every stage; bench.py times it as it is.
for n in "${sizes[@]}"; do
    for dir in "$n" "marts-$n"; do
        m="$work/projects/$dir/stir/stir.kdl"
        "$stir" check --deny-warnings "$m" && continue
        findings=$("$stir" check --format json "$m" || true)
        python3 -c '
import json, sys
codes = {f["code"] for f in json.load(sys.stdin)}
sys.exit(0 if codes == {"stir::plan_too_big"} else f"unexpected findings: {sorted(codes)}")' <<<"$findings"
        echo "$dir: its plan would be too big for a runtime (stir::plan_too_big), the one finding"
    done
done

baseline=()
if [ -n "${STIR_BENCH_BASELINE:-}" ]; then
    baseline=(--baseline "$STIR_BENCH_BASELINE"
              --baseline-label "${STIR_BENCH_BASELINE_LABEL:-$STIR_BENCH_BASELINE}")
fi

echo "== time (alternating stir and dbt)"
python3 "$here/bench.py" --stir "$stir" --venv "$venv" --projects "$work/projects" \
    --repo "$repo" --sizes "${sizes[@]}" --started "$started" "${quick[@]}" "${baseline[@]}"
end=$(date +%s.%N)
echo "== bench/run.sh took $(python3 -c "print(f'{($end - $started) / 60:.1f}')") minutes"
