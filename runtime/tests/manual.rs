//! Operators in control (issue #15), on the real servers: `stir-runtime plan.json run
//! SELECTOR…` builds exactly what it selects and respects the owners; `--full-refresh`
//! rebuilds incremental models from scratch; `retry="all"` re-runs every step.
//!
//! Needs `scripts/servers.sh up` and `eval "$(scripts/servers.sh env)"`.

#[path = "support/servers.rs"]
mod servers;

use std::time::Duration;

use servers::*;
use stir_runtime::executor::{RunStatus, FULL_REFRESH};
use stir_runtime::manual::{run_manual, Ran, MANUAL, MANUAL_HEAVY};
use stir_runtime::Options;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

async fn manual(
    w: &World,
    plan: &stir::plan::Plan,
    select: &[&str],
    exclude: &[&str],
    options: Options,
) -> Result<Ran, String> {
    run_manual(
        plan.clone(),
        w.config.clone(),
        &strings(select),
        &strings(exclude),
        None,
        options,
        std::future::pending(),
    )
    .await
    .map_err(|e| e.to_string())
}

/// `(name, status, error)` of every step of the runs of `schedule`, in order.
async fn steps_of(w: &World, schedule: &str) -> Vec<(String, String, Option<String>)> {
    let s = &w.config.history_schema;
    w.pg()
        .await
        .query(
            &format!(
                "SELECT st.name, st.status, st.error FROM {s}.steps st JOIN {s}.runs r ON r.id = st.run_id
                 WHERE r.schedule = $1 ORDER BY r.started_at, r.attempt, st.idx"
            ),
            &[&schedule],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

async fn hold(w: &World, id: &str, schedule: &str) {
    let s = &w.config.history_schema;
    w.pg()
        .await
        .batch_execute(&format!(
            "INSERT INTO {s}.runs (id, schedule, fire_time, started_at, status, plan_hash, attempt) \
             VALUES ('{id}', '{schedule}', now(), now(), 'running', 'x', 1)"
        ))
        .await
        .unwrap();
}

async fn release(w: &World, id: &str) {
    let s = &w.config.history_schema;
    w.pg()
        .await
        .batch_execute(&format!(
            "UPDATE {s}.runs SET status = 'ok', ended_at = now() WHERE id = '{id}'"
        ))
        .await
        .unwrap();
}

/// `run stg_events` rebuilds that table only (its reader keeps its rows), is recorded as a
/// run of `@run` with one step; while `core`, its owner, is running it is refused naming
/// `core` and nothing is built, and `--force` builds anyway. A selector naming nothing is
/// refused with the likely name, by the binary with exit 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_builds_exactly_the_selection_and_waits_for_its_owner() {
    let w = World::new("manual").await;
    w.seed(0, 10).await;
    let once = stir_runtime::run_once(w.plan.clone(), w.config.clone(), "core").await;
    assert_eq!(once.unwrap(), RunStatus::Ok);
    let count = |t: &str| format!("SELECT count() FROM {}.{t}", w.wh);
    let daily_sum = format!("SELECT sum(n) FROM {}.events_daily", w.wh);
    assert_eq!(w.number(&count("stg_events")).await, 10);

    w.seed(10, 20).await;
    let ran = manual(&w, &w.plan, &["stg_events"], &[], Options::default())
        .await
        .unwrap();
    assert_eq!(ran.status, RunStatus::Ok);
    assert_eq!(ran.models, ["stg_events"]);
    assert_eq!(ran.recorded_as, MANUAL);
    assert_eq!(w.number(&count("stg_events")).await, 20, "rebuilt");
    assert_eq!(w.number(&daily_sum).await, 10, "its reader untouched");
    assert_eq!(
        steps_of(&w, MANUAL).await,
        [("stg_events".to_string(), "ok".to_string(), None)]
    );

    // A selection with ancestors and an exclusion, in build order.
    let ran = manual(
        &w,
        &w.plan,
        &["+events_totals"],
        &["events_totals"],
        Options::default(),
    )
    .await
    .unwrap();
    assert_eq!(ran.models, ["stg_events", "events_daily"]);

    // The owner is running: refused, naming it; nothing built.
    hold(&w, "core-live", "core").await;
    w.seed(20, 25).await;
    let err = manual(&w, &w.plan, &["stg_events"], &[], Options::default())
        .await
        .unwrap_err();
    assert!(
        err.contains(
            "model `stg_events` is built by schedule `core`, which is running now (run `core-live`"
        ),
        "{err}"
    );
    assert_eq!(w.number(&count("stg_events")).await, 20, "not rebuilt");
    let forced = Options {
        force: true,
        ..Options::default()
    };
    let ran = manual(&w, &w.plan, &["stg_events"], &[], forced)
        .await
        .unwrap();
    assert_eq!(ran.status, RunStatus::Ok);
    assert_eq!(w.number(&count("stg_events")).await, 25, "--force builds");
    release(&w, "core-live").await;

    // A model of another schedule builds while `core` runs.
    hold(&w, "core-live-2", "core").await;
    let ran = manual(&w, &w.plan, &["tag:fragile"], &[], Options::default()).await;
    assert_eq!(ran.unwrap().models, ["fragile_events"]);
    release(&w, "core-live-2").await;

    // Selectors that pick nothing, with the likely fix.
    let err = manual(&w, &w.plan, &["events_dialy"], &[], Options::default())
        .await
        .unwrap_err();
    assert!(
        err.contains("the plan has no model `events_dialy`"),
        "{err}"
    );
    assert!(err.contains("did you mean `events_daily`?"), "{err}");
    let err = manual(&w, &w.plan, &["tag:cor"], &[], Options::default())
        .await
        .unwrap_err();
    assert!(err.contains("did you mean `tag:core`?"), "{err}");

    // The binary: exit 2 and the same help, before anything is built; a real build through
    // it: exit 0, the models named.
    let binary = |selector: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_stir-runtime"))
            .arg(&w.plan_path)
            .args(["run", selector])
            .env("STIR_HISTORY_SCHEMA", &w.config.history_schema)
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let (code, _, stderr) = binary("events_dialy");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("did you mean `events_daily`?"), "{stderr}");
    let (code, stdout, stderr) = binary("events_totals");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("run: ok 1 model: events_totals"),
        "{stdout}"
    );
    w.drop_all().await;
}

/// A model of a heavy schedule is not built beside another heavy run (the run is recorded
/// as `@run-heavy`), one of a light schedule is; `--force` overrides; and a heavy `--once`
/// does not start beside a heavy manual run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_of_a_heavy_model_waits_for_other_heavy_runs() {
    let w = World::new("manualheavy").await;
    w.seed(0, 10).await;
    let mut plan = w.plan.clone();
    for s in &mut plan.schedules {
        s.heavy = true;
    }
    // Creates the history tables; builds what fragile_events needs nothing of.
    assert_eq!(
        stir_runtime::run_once(plan.clone(), w.config.clone(), "core")
            .await
            .unwrap(),
        RunStatus::Ok
    );
    hold(&w, "core-live", "core").await;
    let err = manual(&w, &plan, &["fragile_events"], &[], Options::default())
        .await
        .unwrap_err();
    assert!(
        err.contains("model `fragile_events` belongs to heavy schedule `fragile`, and heavy `core` is running now (run `core-live`)"),
        "{err}"
    );
    assert!(!w
        .table_names()
        .await
        .contains(&"fragile_events".to_string()));
    let forced = Options {
        force: true,
        ..Options::default()
    };
    let ran = manual(&w, &plan, &["fragile_events"], &[], forced)
        .await
        .unwrap();
    assert_eq!((ran.status, ran.recorded_as), (RunStatus::Ok, MANUAL_HEAVY));
    // `fragile` light: its model builds beside the heavy `core`.
    let mut light = plan.clone();
    light
        .schedules
        .iter_mut()
        .find(|s| s.name == "fragile")
        .unwrap()
        .heavy = false;
    let ran = manual(&w, &light, &["fragile_events"], &[], Options::default())
        .await
        .unwrap();
    assert_eq!((ran.status, ran.recorded_as), (RunStatus::Ok, MANUAL));
    release(&w, "core-live").await;

    // The other way: a heavy manual run holds heavy schedules back.
    hold(&w, "manual-live", MANUAL_HEAVY).await;
    let err = stir_runtime::run_once(plan.clone(), w.config.clone(), "fragile")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("heavy schedule `@run-heavy` is running now"),
        "{err}"
    );
    w.drop_all().await;
}

/// `--full-refresh` replaces an incremental table's rows: rows the source lost, which an
/// incremental run keeps, are gone after it, through `run` and through `--once`; the
/// history notes the refresh on the model's step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_refresh_rebuilds_an_incremental_model_from_scratch() {
    let w = World::new("refresh").await;
    w.seed(0, 10).await;
    let once = |full_refresh: bool| {
        stir_runtime::run_once_with(
            w.plan.clone(),
            w.config.clone(),
            "core",
            Options {
                full_refresh,
                ..Options::default()
            },
            std::future::pending(),
        )
    };
    assert_eq!(once(false).await.unwrap(), RunStatus::Ok);
    let daily_sum = format!("SELECT sum(n) FROM {}.events_daily", w.wh);
    assert_eq!(w.number(&daily_sum).await, 10);
    // The source is restated with fewer rows: an incremental run appends nothing.
    w.sql(&format!("TRUNCATE TABLE {}.events", w.raw)).await;
    w.seed(0, 4).await;
    let ran = manual(&w, &w.plan, &["+events_daily"], &[], Options::default())
        .await
        .unwrap();
    assert_eq!(ran.status, RunStatus::Ok);
    assert_eq!(w.number(&daily_sum).await, 10, "incremental keeps old rows");

    let refresh = Options {
        full_refresh: true,
        ..Options::default()
    };
    let ran = manual(&w, &w.plan, &["+events_daily"], &[], refresh)
        .await
        .unwrap();
    assert_eq!(ran.status, RunStatus::Ok);
    assert_eq!(w.number(&daily_sum).await, 4, "rebuilt from the source");
    let last = steps_of(&w, MANUAL).await.pop().unwrap();
    assert_eq!(
        last,
        (
            "events_daily".into(),
            "ok".into(),
            Some(FULL_REFRESH.into())
        )
    );
    assert!(
        !w.table_names()
            .await
            .iter()
            .any(|t| t.contains("__stir_new")),
        "no staging table left"
    );

    // --once SCHEDULE --full-refresh: the same, for the schedule's models.
    w.sql(&format!("TRUNCATE TABLE {}.events", w.raw)).await;
    w.seed(0, 2).await;
    assert_eq!(once(true).await.unwrap(), RunStatus::Ok);
    assert_eq!(w.number(&daily_sum).await, 2);
    let core = steps_of(&w, "core").await;
    let daily: Vec<_> = core
        .iter()
        .filter(|(n, _, _)| n == "events_daily")
        .collect();
    assert_eq!(daily.len(), 2);
    assert_eq!(daily[0].2, None, "the first, plain run");
    assert_eq!(daily[1].2.as_deref(), Some(FULL_REFRESH));
    w.drop_all().await;
}

/// `retry="all"`: the retry after a failed model runs every step again (none `kept`), where
/// the default keeps what built (runtime/tests/runs.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_all_reruns_every_step() {
    let mut w = World::new("retryall").await;
    let path = w.dir.join("stir.kdl");
    let text = std::fs::read_to_string(&path).unwrap();
    let cut = text.find("schedule core").unwrap();
    let text = format!(
        "{}schedule both cron=\"0 4 * * *\" timeout=\"10m\" retries=1 retry=\"all\" {{\n    run tag:core tag:fragile\n}}\n",
        &text[..cut]
    );
    std::fs::write(&path, text).unwrap();
    w.plan = compile(&path);
    assert!(w.plan.schedules[0].retry_all);
    w.seed(0, 10).await;
    w.sql(&format!(
        "INSERT INTO {}.events VALUES (1000, '2026-01-02 00:00:00', -5)",
        w.raw
    ))
    .await;
    let status = stir_runtime::run_once(w.plan.clone(), w.config.clone(), "both")
        .await
        .unwrap();
    assert_eq!(status, RunStatus::Failed);
    let steps = steps_of(&w, "both").await;
    assert_eq!(steps.len(), 8, "two attempts of four models: {steps:?}");
    let second: Vec<(&str, &str)> = steps[4..]
        .iter()
        .map(|(n, s, _)| (n.as_str(), s.as_str()))
        .collect();
    for (name, status) in &second {
        let want = if *name == "fragile_events" {
            "failed"
        } else {
            "ok"
        };
        assert_eq!(status, &want, "{name} in the retry: {second:?}");
    }
    w.drop_all().await;
}

/// While a manual `run` builds a model, the schedule that owns it does not start beside it:
/// `--once` is refused naming the manual run (the leader's fire reads the same history and is
/// `skipped_running`); once the build is done, the schedule runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_build_holds_the_owner_of_its_models() {
    let mut w = World::new("holds").await;
    w.add_slow_core();
    w.seed(0, 10).await;
    let core = || stir_runtime::run_once(w.plan.clone(), w.config.clone(), "core");
    assert_eq!(core().await.unwrap(), RunStatus::Ok);

    let (plan, config) = (w.plan.clone(), w.config.clone());
    let build = tokio::spawn(async move {
        let select = strings(&["slow_core"]);
        run_manual(
            plan,
            config,
            &select,
            &[],
            None,
            Options::default(),
            std::future::pending(),
        )
        .await
    });
    let s = &w.config.history_schema;
    let pg = w.pg().await;
    let running =
        format!("SELECT count(*) FROM {s}.runs WHERE schedule = '@run' AND status = 'running'");
    let mut waited = 0;
    while pg.query_one(&running, &[]).await.unwrap().get::<_, i64>(0) == 0 {
        assert!(waited < 600, "the manual run never started");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        waited += 1;
    }
    let err = core().await.unwrap_err().to_string();
    assert!(
        err.contains("schedule `core` is running now (run `@run-"),
        "{err}"
    );
    let ran = build.await.unwrap().unwrap();
    assert_eq!(
        (ran.status, ran.models),
        (RunStatus::Ok, strings(&["slow_core"]))
    );
    assert_eq!(core().await.unwrap(), RunStatus::Ok, "free once it is done");
    // It held `core` until its deadline: by default its owner's timeout (10m).
    let held: f64 = pg
        .query_one(
            &format!(
                "SELECT extract(epoch FROM h.until - r.fire_time)::float8 FROM {s}.holds h
                 JOIN {s}.runs r ON r.id = h.run_id WHERE h.schedule = 'core'"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(held, 600.0);
    // A manual run whose process died (still `running`) holds nothing past its deadline.
    pg.batch_execute(&format!(
        "INSERT INTO {s}.runs (id, schedule, fire_time, started_at, status, plan_hash, attempt)
         VALUES ('@run-dead', '@run', now() - interval '11 minutes', now() - interval '11 minutes', 'running', 'x', 1);
         INSERT INTO {s}.holds (schedule, run_id, until) VALUES ('core', '@run-dead', now() - interval '1 minute')"
    ))
    .await
    .unwrap();
    assert_eq!(core().await.unwrap(), RunStatus::Ok, "a lapsed hold");
    w.drop_all().await;
}

/// A manual run (`--once` here; `run`, `--bootstrap` and the console's Run now go the same
/// way) is cancelled when its shutdown signal comes (SIGTERM, or the runtime's stop for Run
/// now): its ClickHouse query killed, the run recorded `cancelled`, and the call still
/// returns only after that cleanup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_run_is_cancelled_when_its_shutdown_signal_comes() {
    let mut w = World::new("oncestop").await;
    w.sql(&format!(
        "CREATE TABLE {}.sink (x UInt8) ENGINE = MergeTree ORDER BY tuple()",
        w.wh
    ))
    .await;
    // A name no other test uses: run ids (and kills by their prefix) are schedule and fire.
    let name = "stuck_once";
    let mut plan = w.plan.clone();
    plan.schedules = vec![stir::plan::Schedule {
        name: name.into(),
        cron: "0 0 1 1 *".into(),
        timeout_secs: 600,
        heavy: false,
        enabled: true,
        retries: 0,
        retry_all: false,
        on_missed: stir::plan::OnMissed::Skip,
        threads: None,
        notify: None,
        skip: vec![],
        steps: vec![stir::plan::Step::Sql {
            sql: format!(
                "INSERT INTO {}.sink SELECT sleepEachRow(0.1) FROM numbers(600) SETTINGS max_block_size = 1, max_threads = 1",
                w.wh
            ),
        }],
    }];
    w.plan = plan.seal();
    let (stop, signal) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(stir_runtime::run_once_with(
        w.plan.clone(),
        w.config.clone(),
        name,
        Options::default(),
        async move {
            let _ = signal.await;
        },
    ));
    // The run's query ids start with the deployment's database, then its run id (`name-…`).
    let prefix = stir_runtime::run::query_prefix(&w.plan.warehouse.database, name);
    let probe =
        format!("SELECT count() FROM system.processes WHERE startsWith(query_id, '{prefix}')");
    let t = std::time::Instant::now();
    while w.number(&probe).await == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the run's query never ran"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(());
    // Left alone it would end `ok` after its minute.
    let status = tokio::time::timeout(Duration::from_secs(40), run)
        .await
        .expect("the run ends once cancelled")
        .unwrap()
        .unwrap();
    assert_eq!(status, RunStatus::Cancelled);
    assert_eq!(w.number(&probe).await, 0, "its query is killed");
    let s = &w.config.history_schema;
    let rows: Vec<String> = w
        .pg()
        .await
        .query(
            &format!("SELECT status FROM {s}.runs WHERE schedule = $1"),
            &[&name],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rows, vec!["cancelled".to_string()]);
    w.drop_all().await;
}
