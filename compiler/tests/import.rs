//! `stir import --dbt` through the real binary: the stir.kdl and IMPORT.md it writes for the
//! projects under tests/dbt/ and tests/import/ against golden/import/<project>/ (rewrite with
//! `UPDATE_GOLDEN=1`), header-stripped model files, a manifest that passes `stir check`, and
//! its refusals. tests/dbt_compat.rs proves the SQL is dbt's.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "support/deadline.rs"]
mod deadline;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("stir-import-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `stir import --dbt PROJECT -o OUT`, run from the repository so paths in IMPORT.md are
/// relative and the same on every machine.
fn import(project: &str, out: &Path) -> Output {
    import_with(project, None, out)
}

fn import_with(project: &str, dags: Option<&str>, out: &Path) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stir"));
    cmd.current_dir(repo())
        .args(["import", "--dbt", project, "-o"])
        .arg(out);
    if let Some(d) = dags {
        cmd.args(["--airflow", d]);
    }
    cmd.output().unwrap()
}

fn check(manifest: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stir"))
        .arg("check")
        .arg(manifest)
        .args(["--color", "never", "--format", "json"])
        .output()
        .unwrap()
}

fn golden(project: &str, name: &str, actual: &str) {
    let short = Path::new(project).file_name().unwrap().to_str().unwrap();
    let path = repo().join("golden/import").join(short).join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing {}: run with UPDATE_GOLDEN=1 and review it",
            path.display()
        )
    });
    if expected != actual {
        let diff = similar::TextDiff::from_lines(expected.as_str(), actual)
            .unified_diff()
            .to_string();
        panic!("{} differs from the import:\n{diff}", path.display());
    }
}

/// Import `project` into a scratch folder named by `test` (tests run at once).
fn imported(project: &str, test: &str) -> (Scratch, String, String) {
    let short = Path::new(project).file_name().unwrap().to_str().unwrap();
    let s = Scratch::new(&format!("{test}-{short}"));
    let out = import(project, &s.0);
    assert!(
        out.status.success(),
        "stir import {project}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kdl = std::fs::read_to_string(s.0.join("stir.kdl")).unwrap();
    let md = std::fs::read_to_string(s.0.join("IMPORT.md")).unwrap();
    (s, kdl, md)
}

fn errors(manifest: &Path) -> Vec<String> {
    let out = check(manifest);
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    findings
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error")
        .map(|f| format!("{}: {}", f["code"], f["message"]))
        .collect()
}

#[test]
fn projects_stir_can_express_import_to_golden_manifests_that_check_clean() {
    for project in ["tests/dbt/shop", "tests/dbt/events"] {
        let (s, kdl, md) = imported(project, "golden");
        golden(project, "stir.kdl", &kdl);
        golden(project, "IMPORT.md", &md);
        let errs = errors(&s.0.join("stir.kdl"));
        assert!(errs.is_empty(), "{project}: {errs:?}");
        assert!(md.contains("Everything else was translated."), "{md}");
    }
}

#[test]
fn precedence_is_dbts_header_over_properties_over_folders_and_tags_add_up() {
    let (_s, kdl, _) = imported("tests/dbt/shop", "precedence");
    let line = |model: &str| {
        kdl.lines()
            .find(|l| l.trim_start().starts_with(&format!("model {model} ")))
            .unwrap_or_else(|| panic!("no model {model} in\n{kdl}"))
            .trim()
            .to_string()
    };
    // Folder: table, tag daily, order_by [customer_id]; properties YAML: order_by and a tag;
    // header: partition_by and settings.
    assert_eq!(
        line("customer_orders"),
        "model customer_orders materialized=table tags=\"daily customers\" order-by=\"(customer_id, first_order)\" partition-by=\"toYYYYMM(first_order)\" {"
    );
    // Properties YAML says view, the header says table: the header wins.
    assert!(line("order_facts").contains("materialized=table"));
    // No config at all below the root's `+materialized: view`.
    assert_eq!(
        line("stg_clicks"),
        "model stg_clicks materialized=view tags=\"hourly\""
    );
    // A sub-folder adds its tag to its parent's and sets its engine and settings.
    assert!(
        line("daily_revenue").contains("tags=\"daily finance\" engine=\"ReplacingMergeTree()\"")
    );
    assert!(kdl.contains(
        "settings join_algorithm=\"partial_merge\" max_bytes_before_external_group_by=20000000000"
    ));
}

#[test]
fn model_files_lose_their_config_headers_and_nothing_else() {
    let (s, _, _) = imported("tests/dbt/events", "headers");
    let original =
        std::fs::read_to_string(repo().join("tests/dbt/events/models/reports/weekly_kinds.sql"))
            .unwrap();
    let written = std::fs::read_to_string(s.0.join("models/reports/weekly_kinds.sql")).unwrap();
    let start = original.find("{{ config(").unwrap();
    let end = original[start..].find("}}").unwrap() + start + 2;
    assert_eq!(
        written,
        format!("{}{}", &original[..start], &original[end..])
    );
    let base = std::fs::read_to_string(s.0.join("models/base/base_events.sql")).unwrap();
    assert_eq!(
        base,
        std::fs::read_to_string(repo().join("tests/dbt/events/models/base/base_events.sql"))
            .unwrap()
    );
    // Macros are copied as they are.
    assert_eq!(
        std::fs::read_to_string(s.0.join("macros/windows.sql")).unwrap(),
        std::fs::read_to_string(repo().join("tests/dbt/events/macros/windows.sql")).unwrap()
    );
}

#[test]
fn what_stir_cannot_express_is_listed_in_import_md_with_file_and_line() {
    let project = "tests/import/untranslated";
    let (s, kdl, md) = imported(project, "untranslated");
    golden(project, "stir.kdl", &kdl);
    golden(project, "IMPORT.md", &md);
    for expected in [
        "`models/staging/stg_users.sql:2` | call into package `dbt_utils`",
        "`models/staging/stg_users.sql:4` | `env_var` is not in stir's templates",
        "`models/staging/stg_users.sql:1` | config `pre_hook` of model `stg_users`",
        "`models/staging/stg_dynamic.sql:2` | `run_query`",
        "`packages.yml:2` | package `dbt-labs/dbt_utils` is not fetched",
        "`models/staging/order-items.sql:1` | model `order-items` is not a plain SQL name",
        "`models/staging/stg_cross.sql:2` | `ref('other_project', 'their_model')`",
        "`models/staging/py_model.py:1` | a dbt Python model is not translated",
    ] {
        assert!(md.contains(expected), "IMPORT.md lacks `{expected}`:\n{md}");
    }
    // What IMPORT.md lists is what `stir check` still refuses: the package call, the
    // environment, run_query.
    let errs = errors(&s.0.join("stir.kdl"));
    assert!(!errs.is_empty());
    assert!(
        errs.iter().all(|e| e.contains("stir::template")),
        "{errs:?}"
    );
}

#[test]
fn import_never_overwrites_and_never_runs_without_a_project() {
    let s = Scratch::new("refusals");
    std::fs::create_dir_all(&s.0).unwrap();
    std::fs::write(s.0.join("stir.kdl"), "project mine\n").unwrap();
    let out = import("tests/dbt/shop", &s.0);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not empty"));
    assert_eq!(
        std::fs::read_to_string(s.0.join("stir.kdl")).unwrap(),
        "project mine\n"
    );
    assert!(!s.0.join("IMPORT.md").exists());

    let empty = Scratch::new("no-project");
    std::fs::create_dir_all(&empty.0).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stir"))
        .args(["import", "--dbt"])
        .arg(&empty.0)
        .arg("-o")
        .arg(empty.0.join("out"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("dbt_project.yml"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!empty.0.join("out").exists());
}

/// `stir import` of the write-up's dbt project and DAGs (tests/import/today) into a scratch folder.
fn import_today(test: &str) -> Scratch {
    let s = Scratch::new(test);
    let out = import_with(
        "tests/import/today/dbt",
        Some("tests/import/today/dags"),
        &s.0,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s
}

/// The DAG files and model files of today's platform as the write-up shows them
/// (tests/import/today/), the models they need and it does not show as one-line stand-ins.
#[test]
fn todays_dags_become_schedules_that_check_finds_todays_problems_in() {
    let s = import_today("today");
    let kdl = std::fs::read_to_string(s.0.join("stir.kdl")).unwrap();
    let md = std::fs::read_to_string(s.0.join("IMPORT.md")).unwrap();
    golden("tests/import/today", "stir.kdl", &kdl);
    golden("tests/import/today", "IMPORT.md", &md);
    for expected in [
        "notify slack on=failure",
        "blackout hours-19-22 from=\"19:00\" to=\"22:00\"",
        "schedule dbt_hourly cron=\"0 1-23/2 * * *\" timeout=\"3h\" skip=hours-19-22 {\n    run \"tag:hourly\" exclude=\"tag:deprecated tag:post_ranker tag:core\"\n}",
        // The chain: check_hour >> truncate_fake_ts >> create_ts >> fetch_from_ch ...
        "schedule dbt_collections cron=\"*/30 * * * *\" timeout=\"3h\" skip=hours-19-22 {\n    sql \"truncate table dbt.mart_fake_events\"\n    run \"tag:collections\"",
        "schedule dbt_recent_scl cron=\"*/5 * * * *\" timeout=\"1h30m\" {",
        "schedule post_ranker cron=\"0 */5 * * *\" timeout=\"5h\" {",
        "schedule dbt_weekly cron=\"0 6 */7 * *\" timeout=\"6h\" {",
    ] {
        assert!(kdl.contains(expected), "stir.kdl lacks\n{expected}\nin\n{kdl}");
    }
    // `heavy` is a decision: none is marked, the long ones are listed.
    assert!(!kdl.contains("heavy"));
    for heavy in [
        "post_ranker` may run 5h",
        "dbt_daily` may run 6h",
        "dbt_weekly` may run 6h",
    ] {
        assert!(md.contains(heavy), "{md}");
    }
    assert!(!md.contains("dbt_hourly` may run"), "{md}");
    // The sync DAG: its pattern is named, with the table it swaps and the model it exports.
    assert!(md.contains("to=leaderboard"), "{md}");
    assert!(md.contains("`from=mart_leaderboard`"), "{md}");
    assert!(
        md.contains("task `create_insta_post_scl` runs Python"),
        "{md}"
    );
    // What stir check finds is what docs/today.md lists for these schedules and models: the
    // tag conflict (#4, illustrative), both blackout overruns (#5, #6), both irregular crons
    // (#7, #8), the hidden refs of the three quoted models and of the sql step (#10); nothing
    // else but the stand-ins nobody schedules.
    let only = |f: &Finding| f.code != "stir::unscheduled";
    let mut rows = vec![4, 5, 6, 7, 8, 10];
    assert_findings_are_todays(&findings_of(&s.0.join("stir.kdl"), only), &rows);
    // Marking IMPORT.md's heavy candidates heavy, as it suggests, adds the overlaps #1 and #2;
    // writing the sync IMPORT.md asks for in `sync_leaderboard_prod` adds the stale read #9.
    let mut edited: String = kdl
        .lines()
        .map(|l| {
            let candidate = ["post_ranker", "dbt_daily", "dbt_weekly"]
                .iter()
                .any(|d| l.starts_with(&format!("schedule {d} ")));
            if candidate {
                l.replacen(" {", " heavy=#true {", 1) + "\n"
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    edited.push_str(
        "serving postgres schema=public\n\
         staging s3 bucket=gcc-social-data prefix=\"data-pipeline/tmp\"\n\
         schedule sync_leaderboard_prod cron=\"15 20 * * *\" timeout=\"4h\" {\n    sync leaderboard\n}\n\
         sync leaderboard from=mart_leaderboard to=leaderboard {\n    key id\n    column id type=int8\n}\n",
    );
    std::fs::write(s.0.join("stir.kdl"), edited).unwrap();
    rows.extend([1, 2, 9]);
    assert_findings_are_todays(&findings_of(&s.0.join("stir.kdl"), only), &rows);
}

struct Finding {
    code: String,
    message: String,
}

/// `stir check --format json` of `manifest`, the findings `keep` keeps.
fn findings_of(manifest: &Path, keep: impl Fn(&Finding) -> bool) -> Vec<Finding> {
    let out = check(manifest);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json.as_array()
        .unwrap()
        .iter()
        .map(|f| Finding {
            code: f["code"].as_str().unwrap().to_string(),
            message: f["message"].as_str().unwrap().to_string(),
        })
        .filter(|f| keep(f))
        .collect()
}

/// docs/today.md's findings, by row of its table: the code and the names a finding of that row
/// carries in backticks. Each row is checked against the table itself, so the doc and the test
/// cannot drift apart.
const TODAY: &[(u32, &str, &[&[&str]])] = &[
    (
        1,
        "stir::schedule_overlap",
        &[&["post_ranker", "dbt_daily"]],
    ),
    (
        2,
        "stir::schedule_overlap",
        &[&["post_ranker", "dbt_weekly"]],
    ),
    (
        4,
        "stir::tag_conflict",
        &[&["mart_yt_account_weekly", "dbt_daily", "dbt_weekly"]],
    ),
    (5, "stir::blackout_overrun", &[&["dbt_hourly"]]),
    (6, "stir::blackout_overrun", &[&["dbt_collections"]]),
    (7, "stir::irregular_cron", &[&["dbt_weekly"]]),
    (8, "stir::irregular_cron", &[&["post_ranker"]]),
    (
        9,
        "stir::stale_read",
        &[&["sync_leaderboard_prod", "mart_leaderboard", "dbt_daily"]],
    ),
    (
        10,
        "stir::hidden_ref",
        &[
            &["mart_instagram_account", "mart_linked_socials"],
            &["mart_instagram_account", "mart_insta_account_weekly"],
            &["mart_instagram_account", "mart_primary_group_metrics"],
            &["mart_time_series", "mart_youtube_account"],
            &["mart_time_series", "mart_instagram_account"],
            &["mart_time_series", "mart_yt_account_weekly"],
            &["mart_collection_post", "stg_beat_instagram_post"],
            &["dbt_collections", "mart_fake_events"],
        ],
    ),
];

/// Every finding is one of `rows` of docs/today.md's table, and every finding those rows list
/// is there: the code and the names (not the wording).
fn assert_findings_are_todays(found: &[Finding], rows: &[u32]) {
    let doc = std::fs::read_to_string(repo().join("docs/today.md")).unwrap();
    let mut expected: Vec<(u32, &str, &[&str])> = Vec::new();
    for &(row, code, findings) in TODAY.iter().filter(|t| rows.contains(&t.0)) {
        let line = doc
            .lines()
            .find(|l| l.starts_with(&format!("| {row} | `{code}` |")))
            .unwrap_or_else(|| panic!("docs/today.md has no row {row} for `{code}`"));
        for names in findings {
            // The row names the schedules and models; #10's names are in its own section.
            for name in names.iter() {
                let named = line.contains(&format!("`{name}`"))
                    || line.contains(&format!("dbt.{name}"))
                    || (row == 10
                        && (doc.contains(&format!("`{name}`"))
                            || doc.contains(&format!("`dbt.{name}`"))));
                assert!(
                    named,
                    "docs/today.md row {row} does not name `{name}`: {line}"
                );
            }
            expected.push((row, code, names));
        }
    }
    let names_in = |m: &str, names: &[&str]| names.iter().all(|n| m.contains(&format!("`{n}`")));
    for f in found {
        assert!(
            expected
                .iter()
                .any(|(_, code, names)| f.code == *code && names_in(&f.message, names)),
            "a finding docs/today.md does not list for these schedules: {} {}",
            f.code,
            f.message
        );
    }
    for (row, code, names) in &expected {
        assert!(
            found
                .iter()
                .any(|f| f.code == *code && names_in(&f.message, names)),
            "no `{code}` naming {names:?} (docs/today.md #{row}) in:\n{}",
            found
                .iter()
                .map(|f| format!("{} {}", f.code, f.message))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert_eq!(found.len(), expected.len(), "one finding per listed item");
}

/// A FIFO among the model files, and a DAG file nested 200,000 deep: an import still ends, with
/// the FIFO listed in IMPORT.md (a read of it would never end) and no stack overflow.
#[test]
fn hostile_files_in_a_project_end_in_notes_not_a_hang_or_a_crash() {
    let s = Scratch::new("hostile");
    let project = s.0.join("shop");
    std::fs::create_dir_all(&s.0).unwrap();
    let status = Command::new("cp")
        .arg("-r")
        .arg(repo().join("tests/dbt/shop"))
        .arg(&project)
        .status()
        .unwrap();
    assert!(status.success());
    let fifo = project.join("models/staging/stuck.sql");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let dags = s.0.join("dags");
    std::fs::create_dir_all(&dags).unwrap();
    std::fs::write(
        dags.join("deep.py"),
        format!(
            "with DAG(dag_id='deep', schedule='@daily', tags={}{}) as dag:\n    pass\n",
            "[".repeat(200_000),
            "]".repeat(200_000)
        ),
    )
    .unwrap();
    let out = s.0.join("out");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stir"));
    cmd.args(["import", "--dbt"])
        .arg(&project)
        .arg("--airflow")
        .arg(&dags)
        .arg("-o")
        .arg(&out);
    let (status, _, stderr) = deadline::run(&mut cmd, &s.0);
    assert!(status.success(), "{stderr}");
    let md = std::fs::read_to_string(out.join("IMPORT.md")).unwrap();
    assert!(
        md.contains(
            "`models/staging/stuck.sql:1` | cannot read `models/staging/stuck.sql`: is a FIFO"
        ),
        "{md}"
    );
}

/// The models whose `config()` header the write-up quotes (tests/import/today/dbt). The eighth
/// model it quotes, `mart_insta_account_weekly`, is a CTE without its header.
const QUOTED_MODELS: &[&str] = &[
    "stg_beat_instagram_account",
    "mart_instagram_account",
    "mart_leaderboard",
    "mart_time_series",
    "mart_collection_post",
    "mart_instagram_account_summary",
];

/// examples/today is what `stir import` makes of the write-up's DAGs and models, where the import
/// can make it: every schedule it imports is in examples/today with the same cron, timeout,
/// blackout window and `run`/`sql` steps, and every model whose header the write-up quotes has
/// the same materialization, tags and ORDER BY. (The rest is by hand; docs/today.md says which.)
#[test]
fn examples_today_is_what_the_import_of_the_write_up_gives() {
    let s = import_today("today-example");
    let imported = stir::compile_path(&s.0.join("stir.kdl")).expect("imported manifest loads");
    let example =
        stir::compile_path(&repo().join("examples/today/stir.kdl")).expect("example loads");
    let (im, ex) = (&imported.manifest, &example.manifest);
    let window = |m: &stir::manifest::Manifest, skip: &[stir::manifest::Name]| -> Vec<(u16, u16)> {
        skip.iter()
            .map(|n| {
                let b = m.blackouts.iter().find(|b| b.name.text == n.text).unwrap();
                (b.from, b.to)
            })
            .collect()
    };
    let steps = |sched: &stir::manifest::Schedule| -> Vec<String> {
        use stir::manifest::StepKind;
        sched
            .steps
            .iter()
            .filter_map(|st| match &st.kind {
                StepKind::Run { select, exclude } => {
                    let t = |v: &[stir::manifest::Name]| {
                        v.iter()
                            .map(|n| n.text.as_str())
                            .collect::<Vec<_>>()
                            .join(" ")
                    };
                    Some(format!("run {} exclude={}", t(select), t(exclude)))
                }
                StepKind::Sql(sql) => Some(format!("sql {sql}")),
                // Syncs and requests are IMPORT.md items, written by hand.
                StepKind::Sync(_) | StepKind::Request(_) => None,
            })
            .collect()
    };
    assert!(!im.schedules.is_empty());
    for i in &im.schedules {
        let e = ex
            .schedules
            .iter()
            .find(|e| e.name.text == i.name.text)
            .unwrap_or_else(|| panic!("examples/today lacks schedule `{}`", i.name.text));
        let what = format!("schedule `{}`", i.name.text);
        assert_eq!(
            e.cron.as_ref().map(|c| &c.value),
            i.cron.as_ref().map(|c| &c.value),
            "{what}: cron"
        );
        assert_eq!(e.timeout_secs, i.timeout_secs, "{what}: timeout");
        assert_eq!(window(ex, &e.skip), window(im, &i.skip), "{what}: skip");
        assert_eq!(steps(e), steps(i), "{what}: steps");
    }
    let key = |o: &Option<String>| {
        let o: String = o.as_deref().unwrap_or("").split_whitespace().collect();
        match o.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
            Some(inner) if !o.starts_with("tuple") => inner.to_string(),
            _ => o,
        }
    };
    let tags = |m: &stir::manifest::Model| {
        let mut t: Vec<String> = m.tags.iter().map(|n| n.text.clone()).collect();
        t.sort();
        t
    };
    for name in QUOTED_MODELS {
        let find = |m: &stir::manifest::Manifest| {
            m.models
                .iter()
                .find(|m| m.name.text == *name)
                .unwrap_or_else(|| panic!("no model `{name}`"))
                .clone()
        };
        let (i, e) = (find(im), find(ex));
        assert_eq!(
            format!("{:?}", e.materialized),
            format!("{:?}", i.materialized),
            "`{name}`: materialized"
        );
        assert_eq!(tags(&e), tags(&i), "`{name}`: tags");
        assert_eq!(key(&e.order_by), key(&i.order_by), "`{name}`: order-by");
    }
}

/// The lines of a quoted SQL text that count: the `config()` header and `--` comments aside,
/// whitespace and `{{ref(...)}}` spacing normalized.
fn sql_lines(sql: &str) -> Vec<String> {
    let body = match (sql.find("{{ config("), sql.find(") }}")) {
        (Some(a), Some(b)) if a < b => format!("{}{}", &sql[..a], &sql[b + 4..]),
        _ => sql.to_string(),
    };
    body.lines()
        .map(|l| {
            l.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .replace("{{ref(", "{{ ref(")
                .replace("')}}", "') }}")
        })
        .filter(|l| !l.is_empty() && !l.starts_with("--"))
        .collect()
}

/// The write-up's SQL stays as written in the port: every line the write-up quotes (the model
/// files under tests/import/today/dbt, the scrape-request query inside
/// tests/import/today/dags/sync_insta_collection_posts.py) is in examples/today's copy, except
/// the lines docs/today.md lists as changed, each with its reason. A line dropped without a word
/// (as `status = 'FAILED'` once was) fails here.
#[test]
fn examples_today_keeps_the_write_ups_sql_but_for_the_changes_docs_today_lists() {
    let read = |p: &str| std::fs::read_to_string(repo().join(p)).unwrap();
    let dag = read("tests/import/today/dags/sync_insta_collection_posts.py");
    let query = dag
        .split("'''")
        .nth(1)
        .expect("the query of client.query('''...''')");
    let fixture = |m: &str| read(&format!("tests/import/today/dbt/models/{m}.sql"));
    // (the write-up's text, the port's file, the write-up's lines docs/today.md says changed)
    let cases: Vec<(String, &str, &[&str])> = vec![
        (
            query.to_string(),
            "examples/today/models/requests/insta_posts_to_scrape.sql",
            &[],
        ),
        (
            fixture("staging/stg_beat_instagram_account"),
            "models/staging/stg_beat_instagram_account.sql",
            &["select * from beat_replica.instagram_account"],
        ),
        (
            fixture("marts/discovery/mart_instagram_account"),
            "examples/today/models/marts/discovery/mart_instagram_account.sql",
            &[
                // the growth CTE follows mart_insta_account_weekly's columns
                "platform_id profile_id,",
                "argMax(followers, date) cur_followers,",
                "argMaxIf(followers, date, date < toStartOfWeek(now()) - INTERVAL 7 DAY) followers_7d,",
                "argMaxIf(followers, date, date < toStartOfWeek(now()) - INTERVAL 30 DAY) followers_30d,",
                "argMaxIf(followers, date, date < toStartOfWeek(now()) - INTERVAL 90 DAY) followers_90d,",
                "argMaxIf(followers, date, date < toStartOfWeek(now()) - INTERVAL 1 YEAR) followers_1y,",
                // `followers` qualified as `stats.followers`
                "followers < 5000, '0-5k',",
                "followers < 10000, '5k-10k',",
                "followers < 50000, '10k-50k',",
                "followers < 100000, '50k-100k',",
                "followers < 500000, '100k-500k',",
                "followers < 1000000, '500k-1M',",
                "rank() over (partition by country order by followers desc) country_rank,",
                "rank() over (partition by country, category order by followers desc) category_rank,",
                // the audience join also matches the platform
                "left join {{ ref('mart_audience_info') }} aud on aud.platform_id = ia.profile_id",
                // generated by the loop over `metrics`
                "argMax(followers, updated_at) followers,",
                "argMax(engagement_rate, updated_at) engagement_rate,",
                // `final_without_group_metrics.*` and `gm.group_size`: both tables have group_key
                "*,",
                "group_key",
            ],
        ),
        (
            fixture("marts/leaderboard/mart_time_series"),
            "examples/today/models/marts/leaderboard/mart_time_series.sql",
            // `settings` on the model in stir.kdl
            &[
                "SETTINGS max_bytes_before_external_group_by = 20000000000,",
                "max_bytes_before_external_sort = 20000000000,",
                "join_algorithm='partial_merge'",
            ],
        ),
        (
            fixture("marts/collection/mart_collection_post"),
            "examples/today/models/marts/collection/mart_collection_post.sql",
            // an excerpt line: the port applies it to the post's hashtags, `pd.hashtags`
            &["arrayMap(x -> lower(x), hashtags) hashtags"],
        ),
        (
            fixture("marts/leaderboard/mart_insta_account_weekly"),
            "models/marts/leaderboard/mart_insta_account_weekly.sql",
            &[],
        ),
        (
            fixture("marts/profile_stats/mart_instagram_account_summary"),
            "models/marts/profile_stats/mart_instagram_account_summary.sql",
            &[],
        ),
        (
            fixture("marts/leaderboard/mart_leaderboard"),
            "models/marts/leaderboard/mart_leaderboard.sql",
            &[
                // one select for the three boards, by a loop over them; the map entries
                // generated from the list of 28 ranks, with `toUInt64` around each
                "'IA' profile_platform,",
                "'followers_rank', ifNull(followers_rank_prev, 0),",
                "'views_rank', ifNull(views_rank_prev, 0),",
                "'followers_change_rank', ifNull(followers_change_rank_prev, 0),",
                "'plays_rank', ifNull(plays_rank_prev, 0),",
                "'followers_rank', ifNull(followers_rank, 0),",
                "'views_rank', ifNull(views_rank, 0),",
                "from {{ ref('mart_instagram_leaderboard') }}",
                "select ... from {{ ref('mart_youtube_leaderboard') }}",
                "select ... from {{ ref('mart_cross_platform_leaderboard') }}",
                // `settings` on the model in stir.kdl
                "SETTINGS max_bytes_before_external_group_by = 20000000000,",
                "max_bytes_before_external_sort = 20000000000,",
                "join_algorithm='partial_merge'",
            ],
        ),
    ];
    for (written, port, changed) in cases {
        let have: std::collections::BTreeSet<String> = sql_lines(&read(port)).into_iter().collect();
        let mut missing: Vec<String> = sql_lines(&written)
            .into_iter()
            .filter(|l| !have.contains(l))
            .collect();
        missing.dedup();
        let changed: Vec<String> = changed.iter().map(|l| sql_lines(l).concat()).collect();
        assert_eq!(
            missing, changed,
            "{port}: the write-up's lines it lacks are not the ones docs/today.md lists as changed"
        );
    }
}
