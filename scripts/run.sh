#!/usr/bin/env bash
# The main job on the shipped stir.kdl: check it as a pull request would, freeze the plan,
# and show what the runtime will fire next (touching no server).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/stir-target}"
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 2; }
cargo build --release -q --workspace
bin="$CARGO_TARGET_DIR/release"
echo "== stir check --deny-warnings stir.kdl"
"$bin/stir" check --deny-warnings stir.kdl
echo "== stir plan stir.kdl -o plan.json"
"$bin/stir" plan stir.kdl -o plan.json
echo "== stir timeline stir.kdl -o week.svg"
"$bin/stir" timeline stir.kdl -o week.svg
if [ -x "$bin/stir-runtime" ]; then
  echo "== stir-runtime plan.json --dry-run"
  "$bin/stir-runtime" plan.json --dry-run | head -60
fi
