//! Golden tests: every `tests/cases/<name>/stir.kdl` against `golden/check/<name>.txt`.
//! `UPDATE_GOLDEN=1 cargo test --test golden` rewrites them; a case without a golden file fails.

use std::path::{Path, PathBuf};

use stir::diagnostic::{render_human, render_json, summary, CODES};

#[path = "support/golden.rs"]
mod golden;
#[path = "support/plan_schema.rs"]
mod plan_schema;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The text a user sees from `stir check --color never`, minus the machine's paths.
fn rendered(case: &str) -> (String, String) {
    let rel = format!("tests/cases/{case}/stir.kdl");
    let c = stir::compile_path(&workspace().join(&rel)).expect("case manifest loads");
    let root = format!("{}/", workspace().display());
    let mut text = render_human(&c.findings, &c.files, false, 100);
    if c.findings.is_empty() {
        text.push_str("ok: no findings\n");
    } else {
        text.push_str(&format!("{}\n", summary(&c.findings)));
    }
    let json = render_json(&c.findings, &c.files);
    (text.replace(&root, ""), json.replace(&root, ""))
}

fn cases() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(workspace().join("tests/cases"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_case_matches_its_golden_file() {
    let failures: Vec<String> = cases()
        .iter()
        .filter_map(|case| {
            let golden = workspace().join(format!("golden/check/{case}.txt"));
            golden::differs(&golden, &rendered(case).0).map(|d| format!("case `{case}`: {d}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Only `UPDATE_GOLDEN=1` rewrites: `UPDATE_GOLDEN=0` (or any other value) compares, so a
/// run that means "do not update" can never pass by rewriting.
#[test]
fn only_update_golden_1_rewrites() {
    use std::ffi::OsStr;
    assert!(golden::rewrites(Some(OsStr::new("1"))));
    for other in ["0", "", "true", "yes", "11", " 1"] {
        assert!(!golden::rewrites(Some(OsStr::new(other))), "{other:?}");
    }
    assert!(!golden::rewrites(None));
}

#[test]
fn every_code_has_a_case() {
    let all: String = cases().iter().map(|c| rendered(c).1).collect();
    let missing: Vec<&str> = CODES
        .iter()
        .map(|(code, _)| *code)
        .filter(|code| !all.contains(&format!("\"{code}\"")))
        .collect();
    assert!(
        missing.is_empty(),
        "codes without a golden case: {missing:?}"
    );
}

#[test]
fn the_clean_case_has_no_findings() {
    let (text, json) = rendered("clean");
    assert_eq!(text, "ok: no findings\n");
    assert_eq!(json.trim(), "[]");
}

#[test]
fn json_findings_are_sorted_by_file_and_position() {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Finding {
        code: String,
        severity: String,
        message: String,
        file: String,
        line: usize,
        column: usize,
        end_line: usize,
        end_column: usize,
        help: Option<String>,
    }
    for case in cases() {
        let (_, json) = rendered(&case);
        let found: Vec<Finding> =
            serde_json::from_str(&json).expect("valid JSON array of findings");
        let keys: Vec<(String, usize, usize)> = found
            .iter()
            .map(|f| (f.file.clone(), f.line, f.column))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "case {case}");
        for f in &found {
            assert!(f.code.starts_with("stir::"), "{}", f.code);
            assert!(f.severity == "error" || f.severity == "warning");
            assert!(f.help.is_some(), "case {case}: `{}` has no help", f.message);
        }
    }
}

/// Today's platform, ported faithfully: `stir check` must find what is really wrong with it.
#[test]
fn todays_platform_findings_match_golden_and_name_the_real_problems() {
    let c = stir::compile_path(&workspace().join("examples/today/stir.kdl")).expect("loads");
    let root = format!("{}/", workspace().display());
    let mut text = render_human(&c.findings, &c.files, false, 100);
    text.push_str(&format!("{}\n", summary(&c.findings)));
    let text = text.replace(&root, "");
    if let Some(d) = golden::differs(&workspace().join("golden/check/today.txt"), &text) {
        panic!("{d}");
    }
    let has = |code: &str, words: &[&str]| {
        c.findings
            .iter()
            .any(|f| f.code == code && words.iter().all(|w| f.message.contains(w)))
    };
    assert!(has(
        "stir::schedule_overlap",
        &["`post_ranker`", "`dbt_daily`", "2026-01-01 19:00"]
    ));
    assert!(has(
        "stir::schedule_overlap",
        &["`post_ranker`", "`dbt_weekly`"]
    ));
    assert!(has("stir::blackout_overrun", &["`dbt_hourly`", "17:00"]));
    assert!(has("stir::blackout_overrun", &["`dbt_collections`"]));
    assert!(has(
        "stir::irregular_cron",
        &["`dbt_weekly`", "day-of-month"]
    ));
    assert!(has(
        "stir::stale_read",
        &["`sync_leaderboard_prod`", "20:15", "`dbt_daily`"]
    ));
    assert!(has("stir::tag_conflict", &[]));
    assert!(has(
        "stir::hidden_ref",
        &["`mart_instagram_account`", "`mart_linked_socials`"]
    ));
}

/// The shipped manifest is the same platform with every finding resolved.
#[test]
fn shipped_manifest_is_clean_even_with_deny_warnings() {
    let c = stir::compile_path(&workspace().join("stir.kdl")).expect("loads");
    let text = render_human(&c.findings, &c.files, false, 100);
    assert!(c.findings.is_empty(), "{text}");
    assert_eq!(c.manifest.models.len(), 112);
    let staging = c
        .manifest
        .models
        .iter()
        .filter(|m| m.file.starts_with("models/staging/"))
        .count();
    assert_eq!(staging, 29);
}

/// Every manifest in the repository (the cases, the shipped and example platforms, the test
/// fixtures): the ones `stir check` passes, `stir plan` builds. What the plan renders (sync
/// `enrich` and `delete-where` templates included) is checked first, with a span.
#[test]
fn every_manifest_that_checks_clean_also_plans() {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            let kind = e.file_type().unwrap();
            if kind.is_dir() && !name.starts_with('.') && name != "target" {
                walk(&path, root, out);
            } else if kind.is_file() && name.ends_with(".kdl") {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut manifests = Vec::new();
    walk(&workspace(), &workspace(), &mut manifests);
    assert!(manifests.len() > cases().len(), "{manifests:?}");
    let mut planned = 0;
    for rel in &manifests {
        let c = stir::compile_path(&workspace().join(rel)).expect("manifest loads");
        if c.has_errors() {
            continue;
        }
        let plan = match stir::planner::build(&c) {
            Ok(plan) => plan,
            Err(e) => panic!("`{rel}`: stir check passes, stir plan refuses: {e}"),
        };
        let json: serde_json::Value = serde_json::from_str(&plan.to_json()).unwrap();
        let errors = plan_schema::errors(&json);
        assert!(
            errors.is_empty(),
            "`{rel}`: the plan breaks docs/plan.schema.json: {errors:#?}"
        );
        planned += 1;
    }
    // The shipped platform, its port of today, the fixtures and the clean cases.
    assert!(planned >= 10, "only {planned} manifests check clean");
}

/// `stir check`, `ls` and `timeline` keep no rendered SQL; what they report is the same.
#[test]
fn a_compile_that_keeps_only_findings_finds_the_same() {
    use stir::compile::{compile_path_keeping, Keep};
    let mut manifests: Vec<PathBuf> = cases()
        .iter()
        .map(|c| workspace().join(format!("tests/cases/{c}/stir.kdl")))
        .collect();
    manifests.push(workspace().join("stir.kdl"));
    manifests.push(workspace().join("examples/today/stir.kdl"));
    for path in manifests {
        let all = compile_path_keeping(&path, Keep::Everything).expect("loads");
        let lean = compile_path_keeping(&path, Keep::Findings).expect("loads");
        assert_eq!(all.findings, lean.findings, "{}", path.display());
        assert!(lean
            .models
            .iter()
            .all(|m| m.sql.is_none() && m.sql_incremental.is_none()));
        if !all.has_errors() {
            assert!(
                all.models.iter().any(|m| m.sql.is_some()),
                "{}",
                path.display()
            );
        }
    }
}

/// A message, label or help that names a file names it relative to the manifest: an absolute
/// path reads differently on every machine (and wrapped differently in CI's checkout).
#[test]
fn findings_never_name_the_machines_paths() {
    let root = workspace().display().to_string();
    let mut leaks = Vec::new();
    for case in cases() {
        let c = stir::compile_path(&workspace().join(format!("tests/cases/{case}/stir.kdl")))
            .expect("case manifest loads");
        for f in &c.findings {
            let texts = [&f.message, &f.label]
                .into_iter()
                .chain(f.help.as_ref())
                .chain(f.notes.iter().map(|(_, n)| n));
            for t in texts {
                if t.contains(&root) {
                    leaks.push(format!("{case}: {}: {t}", f.code));
                }
            }
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
}
