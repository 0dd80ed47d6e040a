//! scripts/ci-review.sh, the pull-request job, end to end on a git repository made here: a base
//! commit and a pull-request commit, as a CI would check them out.

#[path = "support/files.rs"]
mod files;
use files::copy_dir;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn git(repo: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .args(args)
        .current_dir(repo)
        .env("GIT_AUTHOR_NAME", "stir test")
        .env("GIT_AUTHOR_EMAIL", "test@stir.invalid")
        .env("GIT_COMMITTER_NAME", "stir test")
        .env("GIT_COMMITTER_EMAIL", "test@stir.invalid")
        .output()
        .expect("git runs");
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn review(repo: &Path, base: &str) -> Output {
    Command::new("bash")
        .arg(workspace().join("scripts/ci-review.sh"))
        .arg(base)
        .current_dir(repo)
        .env("STIR", env!("CARGO_BIN_EXE_stir"))
        .env("NO_COLOR", "1")
        .output()
        .expect("the script runs")
}

/// A repository with the `clean` case as its base commit.
fn repository(name: &str) -> (PathBuf, String) {
    let repo = std::env::temp_dir().join(format!("stir-ci-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&repo);
    copy_dir(&workspace().join("tests/cases/clean"), &repo);
    git(&repo, &["init", "--quiet", "--initial-branch=main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "--quiet", "-m", "base"]);
    let base = git(&repo, &["rev-parse", "HEAD"]);
    (repo, base)
}

#[test]
fn a_pull_request_gets_its_review_comment_and_the_plan_to_deploy() {
    let (repo, base) = repository("ok");
    let model = repo.join("models/mart_top.sql");
    let sql = std::fs::read_to_string(&model).unwrap();
    std::fs::write(
        &model,
        format!("{}\n-- top accounts, reviewed\n", sql.trim_end()),
    )
    .unwrap();
    git(&repo, &["commit", "--quiet", "-am", "pr"]);

    let o = review(&repo, &base);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let comment = std::fs::read_to_string(repo.join("stir-review/comment.md")).unwrap();
    assert!(
        comment.starts_with("<!-- stir plan review -->\n"),
        "{comment}"
    );
    assert!(
        comment.contains("**Plan: 0 to add, 1 to change, 0 to remove.**"),
        "{comment}"
    );
    assert!(
        comment.contains("<details><summary>~ model <code>mart_top</code>"),
        "{comment}"
    );
    assert!(comment.contains("```diff\n"), "{comment}");
    assert!(comment.contains("+-- top accounts, reviewed"), "{comment}");
    // The plan written is the one of the reviewed revision, and the comment names its hash.
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo.join("stir-review/plan.json")).unwrap())
            .unwrap();
    let hash = plan["plan_hash"].as_str().unwrap();
    assert!(
        comment.contains(&format!("New plan `{}`", &hash[..12])),
        "{comment}"
    );
    // The checkout is left as it was: no worktree of the base is left behind.
    assert_eq!(git(&repo, &["worktree", "list"]).lines().count(), 1);
    assert_eq!(
        git(&repo, &["status", "--porcelain", "--untracked-files=no"]),
        ""
    );
    let _ = std::fs::remove_dir_all(&repo);
}

#[test]
fn a_pull_request_with_check_errors_fails_with_the_report_as_its_comment() {
    let (repo, base) = repository("errors");
    let model = repo.join("models/mart_top.sql");
    let sql = std::fs::read_to_string(&model).unwrap();
    std::fs::write(
        &model,
        sql.replace("ref('mart_account')", "ref('mart_acount')"),
    )
    .unwrap();
    git(&repo, &["commit", "--quiet", "-am", "pr with a typo"]);

    let o = review(&repo, &base);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // GitHub annotations on stdout, for the changed line.
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("::error file=models/mart_top.sql"),
        "{stdout}"
    );
    let comment = std::fs::read_to_string(repo.join("stir-review/comment.md")).unwrap();
    assert!(
        comment.starts_with("<!-- stir plan review -->\n"),
        "{comment}"
    );
    assert!(comment.contains("found errors: no plan"), "{comment}");
    assert!(
        comment.contains("did you mean `mart_account`?"),
        "{comment}"
    );
    assert!(!repo.join("stir-review/plan.json").exists());
    let _ = std::fs::remove_dir_all(&repo);
}
