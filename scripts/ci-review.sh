#!/usr/bin/env bash
# The pull-request job, as a plain script for any CI (docs/ci/github-actions.yml runs the same
# steps): check the manifest of the checked-out revision with CI annotations, plan it and the
# base revision, and write the review as a pull-request comment.
#
#   scripts/ci-review.sh BASE_REV
#
# Run it in the repository, on the revision to review (in a pull request, the merge of the PR
# into its base: its plan is the one that is deployed once the PR is merged).
#   STIR           the stir binary (default: stir on PATH)
#   STIR_MANIFEST  the manifest, relative to the repository (default: stir.kdl)
#   STIR_REVIEW    where to write (default: stir-review/):
#                    plan.json    the plan of this revision: the artefact to deploy
#                    base.json    the plan of BASE_REV, when it has one
#                    comment.md   the review comment (its first line marks it as stir's, so a
#                                 job updates its own comment instead of adding one per push)
# Exit: 0 reviewed, 1 the check found errors (comment.md says so; no plan.json), 2 bad usage.
set -euo pipefail

base="${1:-}"
[[ -n "$base" ]] || { echo "usage: scripts/ci-review.sh BASE_REV" >&2; exit 2; }
stir="${STIR:-stir}"
manifest="${STIR_MANIFEST:-stir.kdl}"
out="${STIR_REVIEW:-stir-review}"
marker="<!-- stir plan review -->"

git rev-parse --verify --quiet "$base^{commit}" >/dev/null \
  || { echo "ci-review: $base is not a revision of this repository" >&2; exit 2; }
mkdir -p "$out"
rm -f "$out/plan.json" "$out/base.json" "$out/comment.md"

# Annotations on stdout (GitHub reads its workflow commands there); the human report for the
# comment.
status=0
"$stir" check "$manifest" --format github || status=$?
if [[ $status -ne 0 ]]; then
  report="$("$stir" --color never check "$manifest" 2>&1 || true)"
  {
    echo "$marker"
    echo "### stir plan"
    echo
    echo "**\`stir check\` found errors: no plan.** Fix them and push again."
    echo
    echo '<details><summary>stir check</summary>'
    echo
    echo '```'
    printf '%s\n' "${report:0:50000}"
    echo '```'
    echo
    echo '</details>'
  } > "$out/comment.md"
  echo "ci-review: stir check found errors; see $out/comment.md" >&2
  exit 1
fi

# The base revision's plan, from a worktree of its own (this checkout stays as it is).
tmp="$(mktemp -d)"
trap 'git worktree remove --force "$tmp/base" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
git worktree add --detach --quiet "$tmp/base" "$base"
if [[ -f "$tmp/base/$manifest" ]] \
  && "$stir" plan "$tmp/base/$manifest" -o "$out/base.json" 2>"$tmp/base-plan.log"; then
  "$stir" plan "$manifest" -o "$out/plan.json" --diff "$out/base.json" --format markdown \
    > "$out/comment.md"
else
  # A first manifest, or a base that did not check: nothing to compare with.
  "$stir" plan "$manifest" -o "$out/plan.json"
  hash="$(sed -n 's/.*"plan_hash": "\([0-9a-f]*\)".*/\1/p' "$out/plan.json" | head -n1)"
  {
    echo "$marker"
    echo "### stir plan"
    echo
    echo "**New plan \`${hash:0:12}\`.** The base revision has no plan to compare with (no \`$manifest\`, or it did not check)."
  } > "$out/comment.md"
fi
echo "ci-review: wrote $out/plan.json and $out/comment.md" >&2
