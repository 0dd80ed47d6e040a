//! Selectors over the plan (`stir_plan::select`, what `stir-runtime plan.json run` uses) pick
//! what `stir ls` picks, on the shipped stir.kdl; and `stir plan`'s summary prints each
//! schedule's critical path, a real longest chain.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use stir::plan::select::{critical_path, schedule_models, Models};
use stir::plan::{Plan, Step};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The shipped manifest's plan, and `stir plan`'s stderr.
fn shipped_plan(tag: &str) -> (Plan, String) {
    let dir = std::env::temp_dir().join(format!("stir-select-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("plan.json");
    let o = Command::new(env!("CARGO_BIN_EXE_stir"))
        .args(["--color=never", "plan"])
        .arg(repo().join("stir.kdl"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{stderr}");
    let plan = Plan::from_json(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (plan, stderr)
}

fn stir_ls(select: &[String], exclude: &[String]) -> Vec<String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stir"));
    cmd.args(["--color=never", "ls", "--manifest"])
        .arg(repo().join("stir.kdl"))
        .args(select);
    if !exclude.is_empty() {
        cmd.arg("--exclude").args(exclude);
    }
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "stir ls {select:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn selection_over_the_plan_picks_what_stir_ls_picks() {
    let (plan, _) = shipped_plan("ls");
    let models = Models::new(&plan);
    let tags: BTreeSet<&str> = plan
        .models
        .iter()
        .flat_map(|m| m.tags.iter().map(String::as_str))
        .collect();
    let dirs: BTreeSet<String> = plan
        .models
        .iter()
        .filter_map(|m| m.file.rsplit_once('/').map(|(d, _)| d.to_string()))
        .collect();
    let mut cases: Vec<(Vec<String>, Vec<String>)> = Vec::new();
    let one = |s: String| (vec![s], Vec::new());
    cases.extend(tags.iter().map(|t| one(format!("tag:{t}"))));
    cases.extend(dirs.iter().map(|d| one(format!("path:{d}"))));
    // Every eleventh model with its ancestors, and with its descendants (each case is one
    // `stir ls` of the whole platform).
    for m in plan.models.iter().step_by(11) {
        for s in [format!("+{}", m.name), format!("{}+", m.name)] {
            cases.push(one(s));
        }
    }
    cases.push((vec!["tag:daily".into()], vec!["tag:leaderboard".into()]));
    cases.push((
        vec!["tag:core".into(), "tag:hourly".into()],
        vec!["path:models/staging".into()],
    ));
    assert!(cases.len() > 30, "{}", cases.len());
    let mut compared = 0;
    for (select, exclude) in &cases {
        let want = stir_ls(select, exclude);
        let got = models.select(select, exclude);
        if want.is_empty() {
            assert!(
                got.is_err(),
                "{select:?}: ls picks nothing, plan picks {got:?}"
            );
            continue;
        }
        let got: Vec<String> = got
            .unwrap_or_else(|e| panic!("{select:?} less {exclude:?}: {e}"))
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(got, want, "{select:?} less {exclude:?}");
        compared += 1;
    }
    assert!(compared > 30, "{compared}");
}

/// The longest chain by brute force: each model's longest chain of readers below it.
fn longest(plan: &Plan, set: &BTreeSet<&str>) -> usize {
    fn depth<'a>(
        plan: &'a Plan,
        m: &'a str,
        set: &BTreeSet<&str>,
        memo: &mut BTreeMap<&'a str, usize>,
    ) -> usize {
        if let Some(&d) = memo.get(m) {
            return d;
        }
        let d = 1 + plan
            .model(m)
            .unwrap()
            .deps
            .iter()
            .filter(|d| set.contains(d.as_str()))
            .map(|d| depth(plan, d, set, memo))
            .max()
            .unwrap_or(0);
        memo.insert(m, d);
        d
    }
    let mut memo = BTreeMap::new();
    set.iter()
        .map(|m| depth(plan, m, set, &mut memo))
        .max()
        .unwrap_or(0)
}

#[test]
fn stir_plan_prints_each_schedule_s_critical_path() {
    let (plan, stderr) = shipped_plan("cp");
    let daily = plan.schedule("dbt_daily").unwrap();
    let built = schedule_models(daily);
    let c = critical_path(&plan, daily).unwrap();
    assert_eq!(c.models, built.len());
    assert_eq!(c.chain.len(), longest(&plan, &built), "{:?}", c.chain);
    assert!(c.chain.len() > 1 && c.chain.len() < built.len(), "{c}");
    // A chain: each model reads the one before it, all built by the schedule.
    for w in c.chain.windows(2) {
        assert!(plan.model(&w[1]).unwrap().deps.contains(&w[0]), "{w:?}");
    }
    assert!(c.chain.iter().all(|m| built.contains(m.as_str())));
    let line = format!("  dbt_daily: {c}\n");
    assert!(stderr.contains(&line), "{line:?} in:\n{stderr}");
    assert!(line.starts_with(&format!(
        "  dbt_daily: {} models, critical path {} ({} → ",
        built.len(),
        c.chain.len(),
        c.chain[0]
    )));
    // Every schedule with run steps has its line, in the plan's order, and the same bytes
    // each time.
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("critical path"))
        .collect();
    let with_models = plan
        .schedules
        .iter()
        .filter(|s| s.steps.iter().any(|x| matches!(x, Step::Run { .. })))
        .count();
    assert_eq!(lines.len(), with_models);
    let again = shipped_plan("cp2").1;
    let again: Vec<&str> = again
        .lines()
        .filter(|l| l.contains("critical path"))
        .collect();
    assert_eq!(again, lines);
}
