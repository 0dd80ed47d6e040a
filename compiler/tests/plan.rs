//! `stir plan` and `stir diff` through the real binary: the golden plan of tests/plan/base,
//! golden reviews of typical pull-request changes, determinism, secrets, and refusals.
//!
//! `UPDATE_GOLDEN=1 cargo test --test plan` rewrites golden/plan/*; a missing golden file fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use stir::plan::{Plan, PlanError, FORMAT_VERSION};

#[path = "support/golden.rs"]
mod golden;
#[path = "support/plan_schema.rs"]
mod plan_schema;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn base() -> PathBuf {
    repo().join("tests/plan/base")
}

/// A scratch folder under the system temp dir, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("stir-plan-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
    /// A copy of tests/plan/base at `rel`.
    fn copy_base(&self, rel: &str) -> PathBuf {
        let to = self.path(rel);
        copy_dir(&base(), &to);
        to
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    let mut entries: Vec<_> = std::fs::read_dir(from)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.contains(from),
        "{} does not contain {from:?}",
        path.display()
    );
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

fn stir(args: &[&dyn AsRef<std::ffi::OsStr>], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stir"));
    cmd.arg("--color=never");
    for a in args {
        cmd.arg(a);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run stir")
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Write the plan of `manifest_dir/stir.kdl` to `out`, asserting success.
fn plan_to(manifest_dir: &Path, out: &Path) -> String {
    let o = stir(&[&"plan", &manifest_dir.join("stir.kdl"), &"-o", &out], &[]);
    assert_eq!(code(&o), 0, "stir plan failed:\n{}", text(&o.stderr));
    std::fs::read_to_string(out).unwrap()
}

fn golden(name: &str, actual: &str) {
    if let Some(d) = golden::differs(&repo().join("golden/plan").join(name), actual) {
        panic!("{d}");
    }
}

#[test]
fn golden_plan_of_the_base_manifest() {
    let s = Scratch::new("golden");
    let json = plan_to(&base(), &s.path("plan.json"));
    golden("base.json", &json);
    let plan = Plan::from_json(&json).expect("the written plan reads back");
    assert_eq!(plan.to_json(), json, "to_json(from_json(x)) == x");
}

#[test]
fn plan_to_stdout_matches_the_file() {
    let s = Scratch::new("stdout");
    let file = plan_to(&base(), &s.path("plan.json"));
    let o = stir(&[&"plan", &base().join("stir.kdl")], &[]);
    assert_eq!(code(&o), 0);
    assert_eq!(text(&o.stdout), file);
}

/// One review: plan base as previous.json, plan the variant, diff.
fn review_of(name: &str, change: impl Fn(&Path)) -> (String, Output) {
    let s = Scratch::new(name);
    plan_to(&base(), &s.path("previous.json"));
    let variant = s.copy_base("variant");
    change(&variant);
    plan_to(&variant, &s.path("plan.json"));
    let o = stir(
        &[&"diff", &s.path("previous.json"), &s.path("plan.json")],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    // The same review from `stir plan --diff`, with the detailed exit code.
    let p = stir(
        &[
            &"plan",
            &variant.join("stir.kdl"),
            &"-o",
            &s.path("again.json"),
            &"--diff",
            &s.path("previous.json"),
            &"--detailed-exitcode",
        ],
        &[],
    );
    assert_eq!(code(&p), 2, "{}", text(&p.stderr));
    assert_eq!(text(&p.stdout), text(&o.stdout));
    (text(&o.stdout), p)
}

#[test]
fn review_cron_change() {
    let (review, _) = review_of("cron", |d| {
        edit(
            &d.join("stir.kdl"),
            "cron=\"0 2 * * *\" timeout=\"3h\"",
            "cron=\"30 4 * * *\" timeout=\"4h\"",
        )
    });
    golden("review-cron.txt", &review);
    assert!(
        review.ends_with("Plan: 0 to add, 1 to change, 0 to remove.\n"),
        "{review}"
    );
}

#[test]
fn review_sql_edit() {
    let (review, _) = review_of("sql", |d| {
        edit(
            &d.join("models/marts/mart_customer_orders.sql"),
            "sum(o.amount) as revenue",
            "sum(o.amount) as revenue, max(o.amount) as largest_order",
        )
    });
    golden("review-sql.txt", &review);
    assert!(review.contains("+select o.customer_id, o.order_date, count() as order_count, sum(o.amount) as revenue, max(o.amount) as largest_order"), "{review}");
    assert!(
        review.contains("mart_daily_revenue (built by daily)"),
        "{review}"
    );
}

#[test]
fn review_new_model() {
    let (review, _) = review_of("new-model", |d| {
        edit(&d.join("stir.kdl"), "    model mart_top_customers tags=daily", "    model mart_churn tags=daily order-by=customer_id\n    model mart_top_customers tags=daily");
        std::fs::write(d.join("models/marts/mart_churn.sql"), "select customer_id, max(order_date) as last_order\nfrom {{ ref('mart_customer_orders') }}\ngroup by customer_id\n").unwrap();
    });
    golden("review-new-model.txt", &review);
    assert!(review.contains("+ model mart_churn"), "{review}");
    assert!(
        review.ends_with(
            "Plan: 1 to add, 1 to change, 0 to remove.\n\
             After deploying, `stir-runtime plan.json --bootstrap` builds the new model before any schedule reads it.\n"
        ),
        "{review}"
    );
}

#[test]
fn review_removed_sync() {
    let (review, _) = review_of("removed-sync", |d| {
        let path = d.join("stir.kdl");
        let kdl = std::fs::read_to_string(&path).unwrap();
        let start = kdl.find("sync top_customers from=").unwrap();
        let end = start + kdl[start..].find("\n}\n").unwrap() + 3;
        let kdl =
            format!("{}{}", &kdl[..start], &kdl[end..]).replace("    sync top_customers\n", "");
        std::fs::write(&path, kdl).unwrap();
    });
    golden("review-removed-sync.txt", &review);
    assert!(review.contains("- sync top_customers"), "{review}");
    assert!(
        review.ends_with("Plan: 0 to add, 1 to change, 1 to remove.\n"),
        "{review}"
    );
}

/// A sync moved to a named serving target: the review shows the new target (a project
/// change) and the sync's `target`; the plan names the target, never a URL.
#[test]
fn review_target_change() {
    let (review, _) = review_of("target", |d| {
        let path = d.join("stir.kdl");
        edit(
            &path,
            "serving postgres schema=serving\n",
            "serving postgres schema=serving\nserving postgres staging schema=serving_staging\n",
        );
        edit(
            &path,
            "sync top_customers from=mart_top_customers to=top_customers",
            "sync top_customers from=mart_top_customers to=top_customers target=staging",
        );
    });
    golden("review-target.txt", &review);
    assert!(review.contains("~ project shop"), "{review}");
    assert!(review.contains("targets"), "{review}");
    assert!(review.contains("~ sync top_customers"), "{review}");
    assert!(review.contains("target"), "{review}");
    assert!(review.contains("\"staging\""), "{review}");
    assert!(review.contains("serving_staging"), "{review}");
    assert!(!review.contains("STIR_POSTGRES_URL"), "{review}");
}

#[test]
fn review_json_and_no_changes() {
    let s = Scratch::new("nochange");
    plan_to(&base(), &s.path("previous.json"));
    let o = stir(
        &[
            &"plan",
            &base().join("stir.kdl"),
            &"-o",
            &s.path("plan.json"),
            &"--diff",
            &s.path("previous.json"),
            &"--detailed-exitcode",
        ],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout),
        "No changes. The plan matches previous.json.\n"
    );

    let variant = s.copy_base("variant");
    edit(&variant.join("stir.kdl"), "retries=1", "retries=3");
    plan_to(&variant, &s.path("new.json"));
    let o = stir(
        &[
            &"diff",
            &s.path("previous.json"),
            &s.path("new.json"),
            &"--format",
            &"json",
            &"--detailed-exitcode",
        ],
        &[],
    );
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["changed"], true);
    assert_eq!(
        v["summary"],
        serde_json::json!({"add": 0, "change": 1, "remove": 0})
    );
    assert_eq!(v["changes"][0]["kind"], "schedule");
    assert_eq!(
        v["changes"][0]["fields"][0],
        serde_json::json!({"field": "retries", "old": 1, "new": 3, "diff": null})
    );
}

#[test]
fn same_manifest_same_bytes() {
    let s = Scratch::new("twice");
    let a = plan_to(&base(), &s.path("a.json"));
    let b = plan_to(&base(), &s.path("b.json"));
    assert_eq!(a, b);
    // A copy elsewhere (another absolute path) gives the same bytes too.
    let copy = s.copy_base("elsewhere/deeper");
    let c = plan_to(&copy, &s.path("c.json"));
    assert_eq!(a, c);
}

/// Reverse the order of the top-level declarations: each starts on an unindented line and
/// runs to the next one (its block, comments and blank lines with it).
fn shuffle(kdl: &str) -> String {
    let mut header = String::new();
    let mut nodes: Vec<String> = Vec::new();
    for line in kdl.lines() {
        if line.starts_with(|c: char| c.is_ascii_alphabetic()) {
            nodes.push(String::new());
        }
        let target = nodes.last_mut().unwrap_or(&mut header);
        target.push_str(line.trim_end());
        target.push('\n');
    }
    let mut out = header;
    for n in nodes.iter().rev() {
        out.push_str(n.trim_end());
        out.push('\n');
    }
    out
}

fn blank_hashes(json: &str) -> Value {
    let mut v: Value = serde_json::from_str(json).unwrap();
    v["manifest_hash"] = Value::from("");
    v["plan_hash"] = Value::from("");
    v
}

#[test]
fn reordered_declarations_change_only_the_hashes() {
    let s = Scratch::new("shuffled");
    let a = plan_to(&base(), &s.path("a.json"));
    let dir = s.copy_base("shuffled");
    let kdl = std::fs::read_to_string(dir.join("stir.kdl")).unwrap();
    let shuffled = shuffle(&kdl);
    assert_ne!(shuffled, kdl);
    // The two `models` groups and the two schedules trade places too.
    let pos = |t: &str, needle: &str| t.find(needle).unwrap();
    assert!(pos(&shuffled, "schedule daily") < pos(&shuffled, "schedule hourly"));
    assert!(
        pos(&shuffled, "models dir=\"models/marts\"")
            < pos(&shuffled, "models dir=\"models/staging\"")
    );
    std::fs::write(dir.join("stir.kdl"), &shuffled).unwrap();
    let b = plan_to(&dir, &s.path("b.json"));
    assert_ne!(a, b, "manifest_hash differs");
    let (va, vb) = (blank_hashes(&a), blank_hashes(&b));
    assert_ne!(va.to_string().len(), 0);
    assert_eq!(va, vb, "only manifest_hash and plan_hash may differ");
    // And the review calls them equal.
    let o = stir(
        &[
            &"diff",
            &s.path("a.json"),
            &s.path("b.json"),
            &"--detailed-exitcode",
        ],
        &[],
    );
    assert_eq!(code(&o), 0, "{}{}", text(&o.stdout), text(&o.stderr));
}

#[test]
fn no_environment_value_or_credential_reaches_the_plan() {
    let s = Scratch::new("secrets");
    let sentinels = [
        (
            "STIR_POSTGRES_URL",
            "postgres://sentinel_user:SENTINEL_PG_PASSWORD@pg.invalid/db",
        ),
        (
            "STIR_CLICKHOUSE_URL",
            "https://sentinel:SENTINEL_CH_PASSWORD@ch.invalid",
        ),
        (
            "STIR_SLACK_WEBHOOK",
            "https://hooks.slack.invalid/SENTINEL_SLACK",
        ),
        ("STIR_ENDPOINT_SCRAPER", "https://SENTINEL_ENDPOINT.invalid"),
        ("AWS_ACCESS_KEY_ID", "SENTINEL_AWS_KEY_ID"),
        ("AWS_SECRET_ACCESS_KEY", "SENTINEL_AWS_SECRET"),
        ("TZ", "SENTINEL/Zone"),
    ];
    let out = s.path("plan.json");
    let o = stir(
        &[&"plan", &base().join("stir.kdl"), &"-o", &out],
        &sentinels,
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let plan = std::fs::read_to_string(&out).unwrap();
    assert!(
        !plan.to_lowercase().contains("sentinel"),
        "an environment value reached the plan"
    );
    for (_, v) in sentinels {
        assert!(!plan.contains(v));
    }
    // No absolute path either: not the repository, not the temp dir, not a home folder.
    for p in [repo().display().to_string(), s.0.display().to_string()] {
        assert!(!plan.contains(&p), "absolute path {p} in the plan");
    }
    let v: Value = serde_json::from_str(&plan).unwrap();
    let files = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .chain(v["requests"].as_array().unwrap())
        .map(|x| x["file"].as_str().unwrap());
    for f in files {
        assert!(
            !f.starts_with('/') && !f.contains(".."),
            "file `{f}` is not relative to the manifest folder"
        );
    }
    // And it equals the plan written without those variables.
    let clean = plan_to(&base(), &s.path("clean.json"));
    assert_eq!(plan, clean);
}

#[test]
fn refuses_a_manifest_with_errors() {
    let s = Scratch::new("errors");
    let dir = s.copy_base("broken");
    edit(&dir.join("stir.kdl"), "run tag:daily", "run tag:dayly");
    let out = s.path("plan.json");
    let o = stir(&[&"plan", &dir.join("stir.kdl"), &"-o", &out], &[]);
    assert_eq!(code(&o), 1);
    let err = text(&o.stderr);
    assert!(err.contains("stir::unknown_tag"), "{err}");
    assert!(err.contains("no plan written"), "{err}");
    assert!(!out.exists());
}

#[test]
fn refuses_tampered_newer_and_foreign_plans() {
    let s = Scratch::new("tamper");
    let good = plan_to(&base(), &s.path("plan.json"));

    let tampered = good.replace("\"timeout_secs\": 2700", "\"timeout_secs\": 9000");
    assert_ne!(tampered, good);
    assert!(matches!(
        Plan::from_json(&tampered),
        Err(PlanError::HashMismatch { .. })
    ));
    std::fs::write(s.path("tampered.json"), &tampered).unwrap();
    let o = stir(
        &[&"diff", &s.path("tampered.json"), &s.path("plan.json")],
        &[],
    );
    assert_eq!(code(&o), 2);
    assert!(
        text(&o.stderr).contains("plan.json was edited after `stir plan`: hash mismatch"),
        "{}",
        text(&o.stderr)
    );

    let (now, next) = (FORMAT_VERSION, FORMAT_VERSION + 1);
    let newer = good.replace(
        &format!("\"format_version\": {now}"),
        &format!("\"format_version\": {next}"),
    );
    assert_eq!(
        Plan::from_json(&newer).unwrap_err().to_string(),
        format!("plan format version {next} is newer than this stir-runtime (supports {now}); upgrade stir-runtime")
    );
    std::fs::write(s.path("newer.json"), &newer).unwrap();
    let o = stir(
        &[
            &"plan",
            &base().join("stir.kdl"),
            &"--diff",
            &s.path("newer.json"),
        ],
        &[],
    );
    assert_eq!(code(&o), 2);
    assert!(
        text(&o.stderr).contains(&format!(
            "plan format version {next} is newer than this stir (supports {now}); upgrade stir"
        )),
        "{}",
        text(&o.stderr)
    );
    let o = stir(
        &[
            &"plan",
            &base().join("stir.kdl"),
            &"--diff",
            &s.path("newer.json"),
            &"--detailed-exitcode",
        ],
        &[],
    );
    assert_eq!(code(&o), 1, "with --detailed-exitcode an error is 1");

    for (name, content) in [
        ("garbage.json", "not json at all"),
        ("array.json", "[1, 2]"),
        ("empty.json", ""),
        ("kdl.json", "project x\n"),
    ] {
        std::fs::write(s.path(name), content).unwrap();
        assert!(Plan::from_json(content).is_err());
        let o = stir(&[&"diff", &s.path(name), &s.path("plan.json")], &[]);
        assert_eq!(code(&o), 2, "{name}");
        assert!(
            text(&o.stderr).contains("is not a stir plan")
                || text(&o.stderr).contains("not a stir plan"),
            "{name}: {}",
            text(&o.stderr)
        );
    }
    let o = stir(
        &[&"diff", &s.path("missing.json"), &s.path("plan.json")],
        &[],
    );
    assert_eq!(code(&o), 2);
    assert!(
        text(&o.stderr).contains("cannot read plan"),
        "{}",
        text(&o.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// Plans against docs/plan.schema.json (support/plan_schema.rs: the `jsonschema` crate).

#[test]
fn golden_plan_validates_against_the_schema() {
    let s = Scratch::new("schema");
    let plan: Value = serde_json::from_str(&plan_to(&base(), &s.path("plan.json"))).unwrap();
    assert_eq!(plan_schema::errors(&plan), Vec::<String>::new());
    // The schema is strict, and the validator applies all of it: one error per break.
    type Break = (&'static str, fn(&mut Value));
    let breaks: [Break; 5] = [
        ("an unknown key", |p| {
            p["models"][0]["surprise"] = Value::Bool(true)
        }),
        ("a window past the day", |p| {
            p["blackouts"][0]["to"] = 1440.into()
        }),
        ("a negative minute", |p| {
            p["blackouts"][0]["from"] = (-1).into()
        }),
        ("no threads", |p| p["warehouse"]["threads"] = 0.into()),
        ("a hash that is not sha256", |p| {
            p["plan_hash"] = "ABC".into()
        }),
    ];
    for (what, break_it) in breaks {
        let mut bad = plan.clone();
        break_it(&mut bad);
        assert_eq!(plan_schema::errors(&bad).len(), 1, "{what}");
    }
}

/// A blackout to the end of the day (`to="24:00"`) is midnight in the plan: minute 0, a
/// window that wraps (docs/manifest.md), inside the schema's 0..=1439.
#[test]
fn a_blackout_to_24_00_is_midnight_in_the_plan() {
    let s = Scratch::new("midnight");
    let dir = s.copy_base("m");
    edit(
        &dir.join("stir.kdl"),
        "blackout nightly-batch from=\"01:00\" to=\"03:00\"",
        "blackout nightly-batch from=\"22:30\" to=\"24:00\"",
    );
    let plan: Value = serde_json::from_str(&plan_to(&dir, &s.path("plan.json"))).unwrap();
    assert_eq!(plan_schema::errors(&plan), Vec::<String>::new());
    let window = &plan["blackouts"][0];
    assert_eq!(
        (window["from"].as_u64(), window["to"].as_u64()),
        (Some(1350), Some(0))
    );
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL names a sync generates: within 63 bytes, distinct, per run.

/// Every double-quoted identifier in `sql`.
fn quoted_identifiers(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = sql;
    while let Some(start) = rest.find('"') {
        let mut name = String::new();
        let mut tail = &rest[start + 1..];
        loop {
            let end = tail.find('"').expect("a closed identifier");
            name.push_str(&tail[..end]);
            tail = &tail[end + 1..];
            match tail.strip_prefix('"') {
                Some(t) => {
                    name.push('"');
                    tail = t;
                }
                None => break,
            }
        }
        out.push(name);
        rest = tail;
    }
    out
}

/// The relation names (tables and indexes) of a bound sync load: every quoted identifier of
/// its statements but the schema's and the columns'.
fn relation_names(
    load: &stir::plan::SyncLoad,
    columns: &[&str],
) -> std::collections::BTreeSet<String> {
    load.prepare
        .iter()
        .chain(&load.finish)
        .chain(&load.swap)
        .chain(&load.cleanup)
        .chain(&load.drop_old)
        .chain(&load.rollback)
        .flat_map(|s| quoted_identifiers(s))
        .filter(|n| *n != load.schema && !columns.contains(&n.as_str()))
        .collect()
}

/// For a `to` of every length from 1 to 63 bytes, the plan's names, bound for two runs: every
/// identifier fits PostgreSQL's 63 bytes (so none is truncated), the live table, its staging
/// table, its backup, its name during a rollback and the three indexes of each are 16 distinct
/// names, and the two runs'
/// staging names differ. Fails on a planner that appends `__stir_new`/`__stir_old` and lets
/// PostgreSQL cut the result (56+ bytes: staging and backup became one name).
#[test]
fn sync_names_fit_and_differ_for_every_to_length() {
    let s = Scratch::new("names");
    let dir = s.copy_base("base");
    let manifest = dir.join("stir.kdl");
    let original = std::fs::read_to_string(&manifest).unwrap();
    let columns = [
        "customer_id",
        "name",
        "revenue",
        "orders",
        "tags",
        "profile",
        "segment",
    ];
    let (tag_a, tag_b) = (stir::plan::run_tag("run-a"), stir::plan::run_tag("run-b"));
    assert_ne!(tag_a, tag_b);
    for n in 1..=63 {
        let to: String = "top_customers_".chars().cycle().take(n).collect();
        std::fs::write(
            &manifest,
            original.replacen("to=top_customers", &format!("to={to}"), 1),
        )
        .unwrap();
        let compiled = stir::compile_path(&manifest).unwrap();
        let plan = stir::planner::build(&compiled).unwrap();
        let load = &plan.syncs[0].postgres;
        assert_eq!(load.table, to);
        let (a, b) = (load.for_run(&tag_a), load.for_run(&tag_b));
        for bound in [&a, &b] {
            let names = relation_names(bound, &columns);
            for name in &names {
                assert!(
                    name.len() <= 63,
                    "to of {n} bytes: `{name}` is {} bytes",
                    name.len()
                );
                assert!(
                    !name.contains("{run}"),
                    "to of {n} bytes: `{name}` is unbound"
                );
            }
            assert_eq!(names.len(), 16, "to of {n} bytes: {names:#?}");
            for name in [&bound.table, &bound.new_table, &bound.old_table] {
                assert!(
                    names.contains(name),
                    "to of {n} bytes: `{name}` not in {names:#?}"
                );
            }
        }
        let staging = |l: &stir::plan::SyncLoad, tag: &str| -> Vec<String> {
            relation_names(l, &columns)
                .into_iter()
                .filter(|x| x.contains(tag))
                .collect()
        };
        let (sa, sb) = (staging(&a, &tag_a), staging(&b, &tag_b));
        assert_eq!(
            sa.len(),
            4,
            "to of {n} bytes: the staging table and its 3 indexes"
        );
        assert!(sa.contains(&a.new_table) && sb.contains(&b.new_table));
        let others = relation_names(&a, &columns);
        for x in &sb {
            assert!(
                !others.contains(x),
                "to of {n} bytes: `{x}` is in both runs"
            );
        }
    }
}

mod names_props {
    use proptest::prelude::*;
    use stir::plan::{run_tag, RUN_TOKEN};
    use stir::planner::sync_names;

    /// A name of exactly `len` bytes from ASCII and 2-, 3- and 4-byte characters.
    fn name_of_len(len: usize, pick: &[char]) -> String {
        let mut s = String::new();
        for c in pick.iter().cycle().take(len * 2) {
            if s.len() + c.len_utf8() <= len {
                s.push(*c);
            }
        }
        while s.len() < len {
            s.push('x');
        }
        s
    }

    fn chars() -> impl Strategy<Value = Vec<char>> {
        prop::collection::vec(
            prop_oneof![
                Just('a'),
                Just('Z'),
                Just('_'),
                Just('7'),
                Just('é'),
                Just('日'),
                Just('🎉')
            ],
            1..64,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Bound for two runs, every name a sync to `to` generates is at most 63 bytes, all of
        /// them and `to` are pairwise distinct, and no staging name of one run is a name of
        /// the other.
        #[test]
        fn generated_names_fit_are_distinct_and_per_run(
            len in 1usize..=63,
            pick in chars(),
            index_columns in prop::collection::btree_set("[a-z_]{1,63}", 0..4),
            runs in ("[a-z0-9-]{1,40}", "[a-z0-9-]{1,40}").prop_filter("two runs", |(a, b)| a != b),
        ) {
            let to = name_of_len(len, &pick);
            prop_assert_eq!(to.len(), len);
            let mut suffixes = vec!["key".to_string()];
            suffixes.extend(index_columns.iter().map(|c| format!("{c}_idx")));
            let names = sync_names(&to, &suffixes);
            let bind = |tag: &str| -> Vec<String> {
                let mut all = vec![to.clone(), names.staging.replace(RUN_TOKEN, tag), names.backup.clone(), names.rollback.clone()];
                for ix in &names.indexes {
                    all.push(ix.live.clone());
                    all.push(ix.staging.replace(RUN_TOKEN, tag));
                    all.push(ix.backup.clone());
                    all.push(ix.rollback.clone());
                }
                all
            };
            let (ta, tb) = (run_tag(&runs.0), run_tag(&runs.1));
            let (a, b) = (bind(&ta), bind(&tb));
            for n in a.iter().chain(&b) {
                prop_assert!(n.len() <= 63, "`{}` is {} bytes", n, n.len());
            }
            let distinct: std::collections::BTreeSet<&String> = a.iter().collect();
            prop_assert_eq!(distinct.len(), a.len(), "{:#?}", a);
            if ta != tb {
                let staging_b = [&b[1]].into_iter().chain(b.iter().skip(5).step_by(4));
                for s in staging_b {
                    prop_assert!(!a.contains(s), "`{}` is a name of both runs", s);
                }
            }
        }
    }
}

#[test]
fn review_as_a_pull_request_comment() {
    let s = Scratch::new("markdown");
    plan_to(&base(), &s.path("previous.json"));
    let variant = s.copy_base("variant");
    edit(
        &variant.join("models/marts/mart_customer_orders.sql"),
        "sum(o.amount) as revenue",
        "sum(o.amount) as revenue, max(o.amount) as largest_order",
    );
    let new = plan_to(&variant, &s.path("plan.json"));
    let new_hash = Plan::from_json(&new).unwrap().plan_hash;
    let o = stir(
        &[
            &"diff",
            &s.path("previous.json"),
            &s.path("plan.json"),
            &"--format",
            &"markdown",
        ],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let md = text(&o.stdout);
    golden("review-sql.md", &md);
    assert!(md.starts_with("<!-- stir plan review -->\n"), "{md}");
    assert!(
        md.contains("**Plan: 0 to add, 1 to change, 0 to remove.**"),
        "{md}"
    );
    assert!(
        md.contains(&format!("New plan `{}`", &new_hash[..12])),
        "{md}"
    );
    // One collapsible section per change, the SQL change as a diff block.
    assert_eq!(md.matches("<details>").count(), 1, "{md}");
    assert!(md.contains("```diff\n"), "{md}");
    assert!(
        md.contains("+select o.customer_id, o.order_date, count() as order_count, sum(o.amount) as revenue, max(o.amount) as largest_order"),
        "{md}"
    );
    assert!(md.contains("rebuilds 2 models downstream"), "{md}");
}

#[test]
fn a_review_too_long_for_a_comment_keeps_every_change_as_a_line() {
    let s = Scratch::new("markdown-long");
    plan_to(&base(), &s.path("previous.json"));
    let variant = s.copy_base("variant");
    // Each model's SQL grows by ~20 KB of distinct columns: three such diffs pass the limit.
    for entry in std::fs::read_dir(variant.join("models/marts")).unwrap() {
        let p = entry.unwrap().path();
        let sql = std::fs::read_to_string(&p).unwrap();
        let cols: String = (0..800)
            .map(|i| format!(", {i} as c{i:04}_pad\n"))
            .collect();
        let sql = sql.replacen("select ", &format!("select 0 as first{cols}, "), 1);
        std::fs::write(&p, sql).unwrap();
    }
    plan_to(&variant, &s.path("plan.json"));
    let o = stir(
        &[
            &"diff",
            &s.path("previous.json"),
            &s.path("plan.json"),
            &"--format",
            &"markdown",
        ],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let md = text(&o.stdout);
    assert!(md.len() <= 65_536, "{} characters", md.len());
    let changed = md
        .split("**Plan: 0 to add, ")
        .nth(1)
        .and_then(|r| r.split(" to change").next())
        .and_then(|n| n.parse::<usize>().ok())
        .expect("a summary line");
    assert!(changed >= 3, "{md}");
    // Every changed model is still named, whole or as one line, and the cut is said.
    let whole = md.matches("<details>").count();
    let lines = md.lines().filter(|l| l.starts_with("- ~ model")).count();
    assert_eq!(whole + lines, changed, "{md}");
    assert!(lines > 0, "nothing was cut from {} characters", md.len());
    assert!(md.contains("shown as one line"), "{md}");
}
