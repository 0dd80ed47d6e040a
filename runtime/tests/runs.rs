//! Runs build like dbt, only safer (issue #15), on the real servers: models of a run build side
//! by side up to `threads`; a failed model skips only what reads it; a retry keeps what built.
//!
//! Needs `scripts/servers.sh up` and `eval "$(scripts/servers.sh env)"`.

#[path = "support/servers.rs"]
mod servers;

use chrono::{DateTime, Utc};
use servers::*;
use stir_runtime::executor::RunStatus;

/// The fixture with its two schedules replaced by `schedules` and extra model files.
fn rewrite(w: &mut World, models: &[(&str, &str, &str)], schedules: &str) {
    let path = w.dir.join("stir.kdl");
    let text = std::fs::read_to_string(&path).unwrap();
    let cut = text.find("schedule core").unwrap();
    let mut text = text[..cut].to_string();
    let declared: String = models
        .iter()
        .map(|(name, tags, _)| format!("    model {name} tags={tags}\n"))
        .collect();
    text = text.replace(
        "    model fragile_events tags=fragile order-by=id\n",
        &format!("    model fragile_events tags=fragile order-by=id\n{declared}"),
    );
    for (name, _, sql) in models {
        std::fs::write(w.dir.join(format!("models/{name}.sql")), sql).unwrap();
    }
    text.push_str(schedules);
    std::fs::write(&path, text).unwrap();
    w.plan = compile(&path);
}

/// `(idx, name, status)` of each step of `run_id`.
async fn steps(w: &World, run_id: &str) -> Vec<(i32, String, String)> {
    let s = &w.config.history_schema;
    w.pg()
        .await
        .query(
            &format!("SELECT idx, name, status FROM {s}.steps WHERE run_id = $1 ORDER BY idx"),
            &[&run_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

async fn run_ids(w: &World, schedule: &str) -> Vec<String> {
    let s = &w.config.history_schema;
    w.pg()
        .await
        .query(
            &format!("SELECT id FROM {s}.runs WHERE schedule = $1 ORDER BY started_at, attempt"),
            &[&schedule],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// One failing model (`fragile_events`, a negative value in the source) used to end the whole
/// run: here everything that does not read it builds, its reader and the `sql` step after it
/// are `skipped_upstream`, and the retry keeps the models that built (`kept`) and runs only
/// the failed and skipped ones. Once the data is fixed, the next run builds everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_model_skips_only_what_reads_it_and_a_retry_keeps_what_built() {
    let mut w = World::new("isolate").await;
    rewrite(
        &mut w,
        &[(
            "fragile_rollup",
            "fragile",
            "select count() as n from {{ ref('fragile_events') }}",
        )],
        "schedule mixed cron=\"0 4 * * *\" timeout=\"10m\" retries=1 {\n    run tag:fragile tag:core\n    sql \"SELECT 1\"\n}\n",
    );
    w.seed(0, 20).await;
    w.sql(&format!(
        "INSERT INTO {}.events VALUES (1000, '2026-01-02 00:00:00', -5)",
        w.raw
    ))
    .await;
    let status = stir_runtime::run_once(w.plan.clone(), w.config.clone(), "mixed")
        .await
        .unwrap();
    assert_eq!(status, RunStatus::Failed);
    let ids = run_ids(&w, "mixed").await;
    assert_eq!(ids.len(), 2, "retries=1: two attempts {ids:?}");
    let statuses = |rows: Vec<(i32, String, String)>| -> Vec<(String, String)> {
        rows.into_iter().map(|(_, n, s)| (n, s)).collect()
    };
    let mut first = statuses(steps(&w, &ids[0]).await);
    first.sort();
    let want = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        first,
        want(&[
            ("SELECT 1", "skipped_upstream"),
            ("events_daily", "ok"),
            ("events_totals", "ok"),
            ("fragile_events", "failed"),
            ("fragile_rollup", "skipped_upstream"),
            ("stg_events", "ok"),
        ])
    );
    let mut second = statuses(steps(&w, &ids[1]).await);
    second.sort();
    assert_eq!(
        second,
        want(&[
            ("SELECT 1", "skipped_upstream"),
            ("events_daily", "kept"),
            ("events_totals", "kept"),
            ("fragile_events", "failed"),
            ("fragile_rollup", "skipped_upstream"),
            ("stg_events", "kept"),
        ])
    );
    // What does not read the failure was built; the failed model's reader was not.
    let tables = w.table_names().await;
    for t in ["stg_events", "events_daily", "events_totals"] {
        assert!(tables.contains(&t.to_string()), "{t} built: {tables:?}");
    }
    assert!(
        !tables.contains(&"fragile_rollup".to_string()),
        "{tables:?}"
    );

    // The data is fixed: the next fire builds everything.
    w.sql(&format!("TRUNCATE TABLE {}.events", w.raw)).await;
    w.seed(0, 20).await;
    let status = stir_runtime::run_once(w.plan.clone(), w.config.clone(), "mixed")
        .await
        .unwrap();
    assert_eq!(status, RunStatus::Ok);
    let ids = run_ids(&w, "mixed").await;
    assert!(steps(&w, ids.last().unwrap())
        .await
        .iter()
        .all(|(_, _, s)| s == "ok"));
    w.drop_all().await;
}

/// Requests are isolated like syncs: one whose query reads (through `ref`) only what built
/// posts its rows although a model of the run failed; one reading the failure is
/// `skipped_upstream`, and so is every request after a `sql` step that did not run (stir cannot
/// see what that step would have changed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_model_skips_only_the_requests_that_read_it() {
    use std::sync::Arc;
    let mut w = World::new("isoreq").await;
    std::fs::create_dir_all(w.dir.join("requests")).unwrap();
    std::fs::write(
        w.dir.join("requests/totals.sql"),
        "select day, total from {{ ref('events_totals') }} order by day",
    )
    .unwrap();
    std::fs::write(
        w.dir.join("requests/fragile.sql"),
        "select id from {{ ref('fragile_events') }}",
    )
    .unwrap();
    let request = |name: &str, file: &str| {
        format!(
            "request {name} {{\n    query \"requests/{file}.sql\"\n    post endpoint=sink path=\"/{name}\"\n    body #\"{{\"r\": \"{name}\"}}\"#\n}}\n"
        )
    };
    rewrite(
        &mut w,
        &[],
        &format!(
            "endpoint sink\n{}{}{}\
             schedule mixed cron=\"0 4 * * *\" timeout=\"10m\" {{\n    run tag:fragile tag:core\n    \
             request post_totals\n    request post_fragile\n    sql \"SELECT 1\"\n    request post_after_sql\n}}\n",
            request("post_totals", "totals"),
            request("post_fragile", "fragile"),
            request("post_after_sql", "totals"),
        ),
    );
    let reads = |name: &str| {
        w.plan
            .requests
            .iter()
            .find(|r| r.name == name)
            .and_then(|r| r.reads.clone())
    };
    assert_eq!(
        reads("post_totals"),
        Some(vec!["events_totals".to_string()])
    );
    w.seed(0, 20).await;
    w.sql(&format!(
        "INSERT INTO {}.events VALUES (1000, '2026-01-02 00:00:00', -5)",
        w.raw
    ))
    .await;

    let (hook, mut posts) = webhook().await;
    let base = hook
        .trim_end_matches("/services/T000/B000/secret")
        .to_string();
    let runner = stir_runtime::runner::Runner::new(stir_runtime::runner::RunnerOptions {
        env: Arc::new(move |k: &str| {
            (k == "STIR_ENDPOINT_SINK")
                .then(|| base.clone())
                .or_else(|| std::env::var(k).ok())
        }),
        ..Default::default()
    });
    let options = stir_runtime::Options {
        runner: Some(Arc::new(runner)),
        ..Default::default()
    };
    let status = stir_runtime::run_once_with(
        w.plan.clone(),
        w.config.clone(),
        "mixed",
        options,
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(status, RunStatus::Failed);
    let ids = run_ids(&w, "mixed").await;
    let got: Vec<(String, String)> = steps(&w, &ids[0])
        .await
        .into_iter()
        .filter(|(_, n, _)| n.starts_with("post_") || n == "SELECT 1")
        .map(|(_, n, s)| (n, s))
        .collect();
    let want: Vec<(String, String)> = [
        ("post_totals", "ok"),
        ("post_fragile", "skipped_upstream"),
        ("SELECT 1", "skipped_upstream"),
        ("post_after_sql", "skipped_upstream"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, want);
    // The receiver got the independent request's rows, one POST per day, and nothing else.
    let mut bodies = Vec::new();
    while let Ok(b) = posts.try_recv() {
        bodies.push(b);
    }
    let days = w
        .number(&format!("SELECT count() FROM {}.events_totals", w.wh))
        .await;
    assert!(days > 0);
    assert_eq!(bodies.len() as u64, days, "{bodies:?}");
    assert!(
        bodies.iter().all(|b| b == r#"{"r": "post_totals"}"#),
        "{bodies:?}"
    );
    w.drop_all().await;
}

/// Three independent models of about 2 s each: with `threads` 4 they build at once (their
/// recorded intervals overlap), with a schedule's `threads=1` one after the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_models_build_side_by_side_up_to_threads() {
    for (tag, threads, overlap) in [("par", "", true), ("seq", " threads=1", false)] {
        let mut w = World::new(tag).await;
        let slow = "select number as x, sleepEachRow(0.5) as s from numbers(4) settings max_block_size = 1";
        rewrite(
            &mut w,
            &[("slow_a", "fragile", slow), ("slow_b", "fragile", slow), ("slow_c", "fragile", slow)],
            &format!(
                "schedule wide cron=\"0 4 * * *\" timeout=\"10m\"{threads} {{\n    run slow_a slow_b slow_c\n}}\nschedule rest cron=\"0 5 * * *\" timeout=\"10m\" {{\n    run tag:core fragile_events\n}}\n"
            ),
        );
        let status = stir_runtime::run_once(w.plan.clone(), w.config.clone(), "wide")
            .await
            .unwrap();
        assert_eq!(status, RunStatus::Ok);
        let s = &w.config.history_schema;
        let spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = w
            .pg()
            .await
            .query(
                &format!("SELECT started_at, ended_at FROM {s}.steps ORDER BY idx"),
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(spans.len(), 3);
        let latest_start = spans.iter().map(|s| s.0).max().unwrap();
        let earliest_end = spans.iter().map(|s| s.1).min().unwrap();
        assert_eq!(
            latest_start < earliest_end,
            overlap,
            "threads{threads}: {spans:?}"
        );
        w.drop_all().await;
    }
}

/// `freshness` is real: the last successful build of each model (from the history) is
/// exported, a model older than its freshness is alerted once until it is fresh again, and
/// `stir-runtime history --models` lists the ages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_older_than_its_freshness_is_alerted_once_and_listed() {
    use stir_runtime::alert::{AlertKind, Alerter};
    let mut w = World::new("fresh").await;
    let path = w.dir.join("stir.kdl");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "model stg_events tags=core order-by=id",
        "model stg_events tags=core order-by=id freshness=\"1h\"",
    );
    let text = text.replace(
        "model fragile_events tags=fragile order-by=id",
        "model fragile_events tags=fragile order-by=id freshness=\"1m\"",
    );
    std::fs::write(&path, text).unwrap();
    w.plan = compile(&path);
    w.seed(0, 10).await;
    let status = stir_runtime::run_once(w.plan.clone(), w.config.clone(), "core")
        .await
        .unwrap();
    assert_eq!(status, RunStatus::Ok);
    let history = std::sync::Arc::new(
        stir_runtime::history::PgHistory::open(
            w.config.postgres_url.as_deref().unwrap(),
            &w.config.history_schema,
        )
        .await
        .unwrap(),
    );
    let (alerts, sent) = Alerter::memory();
    let metrics = stir_runtime::metrics::Metrics::new("fresh");
    let now = Utc::now();
    let fresh = stir_runtime::Freshness::new(
        history,
        std::sync::Arc::new(w.plan.clone()),
        metrics.clone(),
        alerts,
        now,
    );
    let minutes = |m: i64| now + chrono::TimeDelta::minutes(m);
    assert!(fresh.check(now).await.is_empty(), "all fresh at first");
    assert!(metrics
        .render()
        .contains("stir_model_last_success_timestamp{model=\"stg_events\"}"));
    assert_eq!(
        fresh.check(minutes(2)).await,
        ["fragile_events"],
        "never built, 1m freshness"
    );
    assert!(fresh.check(minutes(3)).await.is_empty(), "alerted once");
    assert_eq!(fresh.check(minutes(120)).await, ["stg_events"]);
    let sent = sent.lock().unwrap().clone();
    let stale: Vec<&str> = sent
        .iter()
        .filter(|a| a.kind == AlertKind::Stale)
        .map(|a| a.run_id.as_str())
        .collect();
    assert_eq!(stale, ["fragile_events", "stg_events"]);
    let table = stir_runtime::model_ages(&w.config, Some(&w.plan), minutes(2))
        .await
        .unwrap();
    let line = |m: &str| {
        table
            .lines()
            .find(|l| l.starts_with(m))
            .unwrap_or("")
            .to_string()
    };
    assert!(line("stg_events").ends_with("fresh"), "{table}");
    assert!(line("fragile_events").ends_with("never built"), "{table}");
    w.drop_all().await;
}
