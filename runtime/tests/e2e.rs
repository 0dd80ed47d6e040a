//! End to end against the real servers (ClickHouse via chdb, PostgreSQL): `--once` builds the
//! fixture's models, failures keep the live table and alert, history lands in PostgreSQL,
//! readers never see a half-built table, and two runtimes elect one leader.

#[path = "support/servers.rs"]
mod servers;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use servers::*;
use stir::plan::Step;
use stir_runtime::executor::RunStatus;
use stir_runtime::metrics::Metrics;
use stir_runtime::Options;

#[tokio::test]
async fn servers_env_is_set() {
    require_servers();
}

#[tokio::test]
async fn once_builds_table_incremental_and_view_models_and_records_history() {
    let w = World::new("once").await;
    w.seed(0, 100).await;
    let status = stir_runtime::run_once(w.plan.clone(), w.config.clone(), "core")
        .await
        .unwrap();
    assert_eq!(status, RunStatus::Ok);
    assert_eq!(
        w.number(&format!("SELECT count() FROM {}.stg_events", w.wh))
            .await,
        100
    );
    assert_eq!(
        w.number(&format!("SELECT sum(n) FROM {}.events_daily", w.wh))
            .await,
        100
    );
    assert_eq!(
        w.number(&format!("SELECT count() FROM {}.events_daily", w.wh))
            .await,
        3
    );
    assert_eq!(
        w.number(&format!("SELECT sum(total) FROM {}.events_totals", w.wh))
            .await,
        100
    );

    // second run: the incremental model appends only the new rows
    w.seed(100, 150).await;
    let status = stir_runtime::run_once(w.plan.clone(), w.config.clone(), "core")
        .await
        .unwrap();
    assert_eq!(status, RunStatus::Ok);
    assert_eq!(
        w.number(&format!("SELECT count() FROM {}.stg_events", w.wh))
            .await,
        150
    );
    assert_eq!(
        w.number(&format!("SELECT sum(n) FROM {}.events_daily", w.wh))
            .await,
        150
    );
    assert_eq!(
        w.number(&format!("SELECT count() FROM {}.events_daily", w.wh))
            .await,
        6,
        "3 first-build rows + 3 appended"
    );
    assert_eq!(
        w.number(&format!("SELECT sum(total) FROM {}.events_totals", w.wh))
            .await,
        150
    );
    assert_eq!(
        w.table_names().await,
        vec!["events_daily", "events_totals", "stg_events"],
        "no __stir_new leftovers"
    );

    let pg = w.pg().await;
    let s = &w.config.history_schema;
    let runs = pg
        .query(&format!("SELECT id, status, attempt, plan_hash, ended_at IS NOT NULL FROM {s}.runs WHERE schedule = 'core' ORDER BY started_at"), &[])
        .await
        .unwrap();
    assert_eq!(runs.len(), 2);
    for r in &runs {
        assert_eq!(r.get::<_, String>(1), "ok");
        assert_eq!(r.get::<_, i32>(2), 1);
        assert_eq!(r.get::<_, String>(3), w.plan.plan_hash);
        assert!(r.get::<_, bool>(4));
    }
    let run_id: String = runs[1].get(0);
    let steps = pg
        .query(&format!("SELECT idx, kind, name, status, rows FROM {s}.steps WHERE run_id = $1 ORDER BY idx"), &[&run_id])
        .await
        .unwrap();
    let got: Vec<(i32, String, String, String, Option<i64>)> = steps
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                0,
                "model".into(),
                "stg_events".into(),
                "ok".into(),
                Some(150)
            ),
            (
                1,
                "model".into(),
                "events_daily".into(),
                "ok".into(),
                Some(6)
            ),
            (2, "model".into(), "events_totals".into(), "ok".into(), None),
        ]
    );
    let table = stir_runtime::history_table(&w.config, 10, Some("core"))
        .await
        .unwrap();
    assert!(
        table.lines().next().unwrap().starts_with("FIRE (UTC)"),
        "{table}"
    );
    assert_eq!(
        table.lines().filter(|l| l.contains(" ok ")).count(),
        2,
        "{table}"
    );
    w.drop_all().await;
}

/// `--bootstrap` creates the warehouse database and builds what does not exist (dependencies first, incremental models by their
/// first build), leaves existing tables alone, is recorded as one run, and refuses to build
/// beside a running schedule.
#[tokio::test]
async fn bootstrap_builds_only_the_missing_models_dependencies_first() {
    let w = World::new("boot").await;
    w.seed(0, 40).await;
    // A first deploy to an empty ClickHouse: the warehouse database does not exist yet.
    w.sql(&format!("DROP DATABASE {}", w.wh)).await;
    let boot = |force: bool| {
        stir_runtime::bootstrap_with(
            w.plan.clone(),
            w.config.clone(),
            Options {
                force,
                ..Options::default()
            },
            Duration::from_secs(600),
            std::future::pending(),
        )
    };
    let b = boot(false).await.unwrap();
    assert_eq!(b.status, Some(RunStatus::Ok));
    let mut names = b.models.clone();
    names.sort();
    assert_eq!(
        names,
        [
            "events_daily",
            "events_totals",
            "fragile_events",
            "stg_events"
        ]
    );
    for m in &w.plan.models {
        let at = |n: &str| b.models.iter().position(|x| x == n).unwrap();
        for d in &m.deps {
            assert!(at(d) < at(&m.name), "{d} before {}: {:?}", m.name, b.models);
        }
    }
    assert_eq!(
        w.number(&format!("SELECT sum(total) FROM {}.events_totals", w.wh))
            .await,
        40
    );

    // Everything exists: nothing runs.
    let again = boot(false).await.unwrap();
    assert_eq!(again.status, None);
    assert!(again.models.is_empty());

    // A model added later (here: dropped) is built alone; the others keep their rows.
    w.sql(&format!("DROP TABLE {}.events_daily", w.wh)).await;
    w.seed(40, 50).await;
    let b = boot(false).await.unwrap();
    assert_eq!(b.status, Some(RunStatus::Ok));
    assert_eq!(b.models, ["events_daily"]);
    assert_eq!(
        w.number(&format!("SELECT count() FROM {}.stg_events", w.wh))
            .await,
        40,
        "stg_events (a table model) was not rebuilt"
    );

    let pg = w.pg().await;
    let s = &w.config.history_schema;
    let n: i64 = pg
        .query_one(
            &format!(
                "SELECT count(*) FROM {s}.runs WHERE schedule = '@bootstrap' AND status = 'ok'"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2, "two bootstrap runs recorded");

    // A schedule shown running in the history: refused, unless --force.
    pg.batch_execute(&format!(
        "INSERT INTO {s}.runs (id, schedule, fire_time, started_at, status, plan_hash, attempt) \
         VALUES ('core-live', 'core', now(), now(), 'running', 'x', 1)"
    ))
    .await
    .unwrap();
    w.sql(&format!("DROP TABLE {}.events_totals", w.wh)).await;
    let err = boot(false).await.unwrap_err().to_string();
    assert!(err.contains("schedule `core` is running now"), "{err}");
    assert_eq!(boot(true).await.unwrap().models, ["events_totals"]);
    w.drop_all().await;
}

/// `--once` of a heavy schedule refuses while the history shows another heavy schedule
/// running (the leader's or another manual run), unless --force.
#[tokio::test]
async fn once_of_a_heavy_schedule_refuses_beside_another_heavy_run() {
    let w = World::new("heavyonce").await;
    w.seed(0, 10).await;
    let mut plan = w.plan.clone();
    for s in &mut plan.schedules {
        s.heavy = true;
    }
    let once = |force: bool| {
        stir_runtime::run_once_with(
            plan.clone(),
            w.config.clone(),
            "core",
            Options {
                force,
                ..Options::default()
            },
            std::future::pending(),
        )
    };
    // Nothing else runs: fine (this also creates the history tables).
    assert_eq!(once(false).await.unwrap(), RunStatus::Ok);
    let pg = w.pg().await;
    let s = &w.config.history_schema;
    pg.batch_execute(&format!(
        "INSERT INTO {s}.runs (id, schedule, fire_time, started_at, status, plan_hash, attempt) \
         VALUES ('fragile-live', 'fragile', now(), now(), 'running', 'x', 1)"
    ))
    .await
    .unwrap();
    let err = once(false).await.unwrap_err().to_string();
    assert!(
        err.contains("heavy schedule `fragile` is running now (run `fragile-live`)"),
        "{err}"
    );
    assert_eq!(
        once(true).await.unwrap(),
        RunStatus::Ok,
        "--force runs anyway"
    );
    // A run older than its schedule's timeout (10m) is a dead one: it no longer counts.
    pg.batch_execute(&format!(
        "UPDATE {s}.runs SET started_at = now() - interval '11 minutes' WHERE id = 'fragile-live'"
    ))
    .await
    .unwrap();
    assert_eq!(once(false).await.unwrap(), RunStatus::Ok);
    w.drop_all().await;
}

/// Two processes starting heavy runs at the same moment: the history check and the run's
/// insert are one step, so in every round exactly one starts and the other sees it.
/// Two leaders firing the same fire write the same run id: the second insert is refused and
/// that runtime does not run it (known: another runtime has the fire, so no alert). A claim
/// the history cannot confirm at all (here: PostgreSQL refuses the claim's connection) never
/// starts the run either (it used to start it anyway).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_that_cannot_be_confirmed_never_starts_the_run() {
    use stir_runtime::history::{Conflict, PgHistory, Recorder, RunRecord};
    let w = World::new("unconfirmed").await;
    let url = w.config.postgres_url.clone().unwrap();
    let s = w.config.history_schema.clone();
    let (a, b) = (
        PgHistory::open(&url, &s).await.unwrap(),
        PgHistory::open(&url, &s).await.unwrap(),
    );
    let fire = chrono::Utc::now();
    let record = |runtime: &str| RunRecord {
        id: stir_runtime::executor::run_id("daily", fire, 1),
        schedule: "daily".into(),
        fire_time: fire,
        started_at: fire,
        plan_hash: "x".into(),
        attempt: 1,
        by_leader: true,
        runtime: runtime.into(),
        holds: Vec::new(),
        deadline: None,
        heavy: false,
    };
    let guard = |runtime: &str| {
        [Conflict {
            schedule: "daily".into(),
            since: fire - chrono::Duration::minutes(10),
            except_runtime: Some(runtime.into()),
        }]
    };
    assert!(
        a.claim_run(&record("rt-a"), &guard("rt-a")).await.is_none(),
        "the first leader starts"
    );
    let busy = b
        .claim_run(&record("rt-b"), &guard("rt-b"))
        .await
        .expect("the second leader must not start the same fire");
    assert_eq!(busy.run_id, record("rt-b").id);
    assert_eq!(busy.unconfirmed, None, "known: another runtime has it");
    // A claim that cannot reach PostgreSQL (its own connection is refused, as when
    // max_connections is exhausted) is unconfirmed, and the run does not start.
    let (proxy_url, _proxy) = first_connection_only(&url).await;
    let c = PgHistory::open(&proxy_url, &s).await.unwrap();
    let mut other = record("rt-c");
    other.id = stir_runtime::executor::run_id("daily", fire + chrono::Duration::hours(1), 1);
    let busy = c
        .claim_run(&other, &guard("rt-c"))
        .await
        .expect("an unconfirmed claim must not start");
    assert!(busy.unconfirmed.is_some(), "{busy:?}");
    let rows: i64 = w
        .pg()
        .await
        .query_one(&format!("SELECT count(*) FROM {s}.runs"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1, "one run recorded");
    w.drop_all().await;
}

/// A TCP proxy to the PostgreSQL of `url` that forwards its first connection and closes every
/// later one at once (a server or pooler out of connections). Answers the URL through it.
async fn first_connection_only(url: &str) -> (String, tokio::task::JoinHandle<()>) {
    let target = pg_target(url);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut first = true;
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            if !first {
                drop(inbound);
                continue;
            }
            first = false;
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut out) = tokio::net::TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    });
    (pg_url_at(url, port), task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_claims_never_both_win_and_the_leader_yields_only_to_manual_runs() {
    use stir_runtime::history::{Conflict, PgHistory, Recorder, RunRecord};
    let w = World::new("claims").await;
    let url = w.config.postgres_url.clone().unwrap();
    let s = w.config.history_schema.clone();
    // Two histories on their own connections, as two runtimes have.
    let a = PgHistory::open(&url, &s).await.unwrap();
    let b = PgHistory::open(&url, &s).await.unwrap();
    let pg = w.pg().await;
    let since = chrono::Utc::now() - chrono::Duration::minutes(10);
    let record = |schedule: &str, i: usize| RunRecord {
        id: format!("{schedule}-{i}"),
        schedule: schedule.into(),
        fire_time: chrono::Utc::now(),
        started_at: chrono::Utc::now(),
        plan_hash: "x".into(),
        attempt: 1,
        by_leader: false,
        runtime: "rt-a".into(),
        holds: Vec::new(),
        deadline: None,
        heavy: false,
    };
    let (vs_b, vs_a) = (
        vec![Conflict::any("heavy_b", since)],
        vec![Conflict::any("heavy_a", since)],
    );
    for i in 0..25 {
        let (ra, rb) = (record("heavy_a", i), record("heavy_b", i));
        let (got_a, got_b) = tokio::join!(a.claim_run(&ra, &vs_b), b.claim_run(&rb, &vs_a));
        match (&got_a, &got_b) {
            (None, Some(busy)) => assert_eq!(busy.run_id, ra.id, "round {i}"),
            (Some(busy), None) => assert_eq!(busy.run_id, rb.id, "round {i}"),
            _ => panic!("round {i}: exactly one may start: {got_a:?} {got_b:?}"),
        }
        let running: i64 = pg
            .query_one(
                &format!("SELECT count(*) FROM {s}.runs WHERE status = 'running'"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(running, 1, "round {i}: one run recorded");
        pg.batch_execute(&format!(
            "UPDATE {s}.runs SET status = 'ok', ended_at = now() WHERE status = 'running'"
        ))
        .await
        .unwrap();
    }
    // The leader guards its own schedule against every process but itself: its own rows
    // never block it (it keeps its runs apart in memory); a `--once` of the schedule does.
    let own = [Conflict {
        schedule: "light".into(),
        since,
        except_runtime: Some("rt-a".into()),
    }];
    let mut leader_run = record("light", 100);
    leader_run.by_leader = true;
    assert!(a.claim_run(&leader_run, &[]).await.is_none());
    let mut next = record("light", 101);
    next.by_leader = true;
    assert_eq!(
        a.claim_run(&next, &own).await,
        None,
        "its own row does not block the leader"
    );
    pg.batch_execute(&format!(
        "UPDATE {s}.runs SET status = 'ok', ended_at = now() WHERE status = 'running'"
    ))
    .await
    .unwrap();
    let manual = record("light", 102);
    assert!(b.claim_run(&manual, &[]).await.is_none());
    let mut fire = record("light", 103);
    fire.by_leader = true;
    let busy = a
        .claim_run(&fire, &own)
        .await
        .expect("a manual run blocks the fire");
    assert_eq!(busy.run_id, manual.id);
    w.drop_all().await;
}

/// Runs whose process died without recording an end are marked `lost` once they are past
/// their schedule's timeout (plus a margin), or at once when they are leader runs of a
/// runtime that is gone (its instance lock is free), with one alert each; live ones are left
/// alone. A lost run's ClickHouse queries are killed first: the run stays `running` (and so
/// keeps its schedule and the heavy slot) until ClickHouse confirms none is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_past_their_deadline_without_an_end_are_marked_lost_and_alerted() {
    use stir_runtime::alert::{AlertKind, Alerter};
    use stir_runtime::history::PgHistory;
    let w = World::new("lost").await;
    let s = w.config.history_schema.clone();
    let url = w.config.postgres_url.clone().unwrap();
    let h = std::sync::Arc::new(PgHistory::open(&url, &s).await.unwrap());
    let pg = w.pg().await;
    // `core` has a 10m timeout; @bootstrap and a removed schedule count for 7 days.
    for (id, schedule, age, runtime) in [
        ("core-dead", "core", "30 minutes", "NULL"),
        ("core-live", "core", "5 minutes", "NULL"),
        ("boot-live", "@bootstrap", "2 hours", "NULL"),
        ("boot-dead", "@bootstrap", "8 days", "NULL"),
        ("gone-dead", "removed_schedule", "8 days", "NULL"),
        ("core-orphan", "core", "1 minute", "'rt-gone'"),
        ("core-draining", "core", "1 minute", "'rt-draining'"),
    ] {
        pg.batch_execute(&format!(
            "INSERT INTO {s}.runs (id, schedule, fire_time, started_at, status, plan_hash, attempt, by_leader, runtime) \
             VALUES ('{id}', '{schedule}', now() - interval '{age}', now() - interval '{age}', 'running', 'x', 1, true, {runtime})"
        ))
        .await
        .unwrap();
    }
    // `rt-draining` is alive: it holds its instance lock (here on a session of the test's).
    let draining = w.pg().await;
    draining
        .execute(
            "SELECT pg_advisory_lock($1)",
            &[&stir_runtime::leader::instance_key(&s, "rt-draining")],
        )
        .await
        .unwrap();
    // Each orphan candidate still has a statement running on ClickHouse under its run id.
    w.sql(&format!(
        "CREATE TABLE {}.sink (x UInt8) ENGINE = MergeTree ORDER BY tuple()",
        w.wh
    ))
    .await;
    let slow = format!(
        "INSERT INTO {}.sink SELECT sleepEachRow(0.1) FROM numbers(600) SETTINGS max_block_size = 1, max_threads = 1",
        w.wh
    );
    let mut statements = Vec::new();
    let db = w.plan.warehouse.database.clone();
    // This deployment's query ids, as its runs' steps make them.
    let prefix = |run: &str| stir_runtime::run::query_prefix(&db, run);
    for run in ["core-orphan", "core-draining"] {
        let (wh, sql, qid) = (
            w.warehouse.clone(),
            slow.clone(),
            format!("{}0-0", prefix(run)),
        );
        statements.push(tokio::spawn(async move { wh.execute(&sql, &qid).await }));
    }
    let running = |run: &'static str| {
        let (wh, prefix) = (w.warehouse.clone(), prefix(run));
        async move {
            wh.number(
                &format!(
                    "SELECT count() FROM system.processes WHERE startsWith(query_id, '{prefix}')"
                ),
                &next_id("probe"),
            )
            .await
            .unwrap()
        }
    };
    let t = std::time::Instant::now();
    while running("core").await < 2 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "statements did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, tiers) = stir_runtime::scheduler::prepare(&w.plan).unwrap();
    let sweep =
        |alerts: Alerter, warehouse: stir_runtime::warehouse::Warehouse| stir_runtime::Sweep {
            history: h.clone(),
            warehouse,
            tiers: tiers.clone().into(),
            alerts,
            notify: std::sync::Arc::new(stir_runtime::notify::Notifier::new(
                std::sync::Arc::new(w.plan.clone()),
                Some(h.clone()),
            )),
            own: "rt-self".into(),
            database: db.clone(),
        };
    // ClickHouse unreachable: nothing is marked lost, since no kill can be confirmed.
    let mut down = w.config.clone();
    down.clickhouse_url = "http://127.0.0.1:9".into();
    let (alerts, none) = Alerter::memory();
    sweep(alerts, stir_runtime::warehouse::Warehouse::new(&down))
        .run(chrono::Utc::now())
        .await;
    assert!(none.lock().unwrap().is_empty(), "fail closed");
    let (alerts, sent) = Alerter::memory();
    sweep(alerts, w.warehouse.clone())
        .run(chrono::Utc::now())
        .await;
    assert_eq!(
        running("core-orphan").await,
        0,
        "the orphan's statement is killed"
    );
    assert_eq!(running("core-draining").await, 1, "a live runtime's is not");
    let rows = pg
        .query(
            &format!("SELECT id, status, ended_at IS NOT NULL, coalesce(error, '') FROM {s}.runs ORDER BY id"),
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, String, bool)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let want = |id: &str, status: &str| (id.to_string(), status.to_string(), status == "lost");
    assert_eq!(
        got,
        vec![
            want("boot-dead", "lost"),
            want("boot-live", "running"),
            want("core-dead", "lost"),
            want("core-draining", "running"),
            want("core-live", "running"),
            want("core-orphan", "lost"),
            want("gone-dead", "lost"),
        ]
    );
    let orphan_error: String = rows
        .iter()
        .find(|r| r.get::<_, String>(0) == "core-orphan")
        .unwrap()
        .get(3);
    assert!(orphan_error.contains("rt-gone"), "{orphan_error}");
    let sent = sent.lock().unwrap().clone();
    let mut lost: Vec<&str> = sent
        .iter()
        .filter(|a| a.kind == AlertKind::Lost)
        .map(|a| a.run_id.as_str())
        .collect();
    lost.sort();
    // A lost run is a failure of its schedule: `core` lost two runs, alerted once (the
    // second is within `repeat` of the first), and both count in its failing streak.
    assert_eq!(lost.len(), 3, "{lost:?}");
    let mut schedules: Vec<&str> = sent
        .iter()
        .filter(|a| a.kind == AlertKind::Lost)
        .map(|a| a.schedule.as_str())
        .collect();
    schedules.sort();
    assert_eq!(schedules, ["@bootstrap", "core", "removed_schedule"]);
    let streak: i64 = pg
        .query_one(
            &format!("SELECT failures FROM {s}.alert_state WHERE schedule = 'core'"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        streak, 2,
        "both lost runs of core are in its failing streak"
    );
    // A second sweep finds nothing new: one alert per lost run.
    let (alerts, again) = Alerter::memory();
    sweep(alerts, w.warehouse.clone())
        .run(chrono::Utc::now())
        .await;
    assert!(again.lock().unwrap().is_empty());
    w.warehouse
        .kill_prefix("core-", &next_id("cleanup"), Duration::from_secs(30))
        .await
        .unwrap();
    for st in statements {
        let _ = st.await;
    }
    drop(draining);
    w.drop_all().await;
}

#[tokio::test]
async fn failing_model_keeps_the_old_table_records_the_error_and_alerts() {
    let mut w = World::new("fail").await;
    let (url, mut posts) = webhook().await;
    w.config.slack_webhook = Some(url);
    w.seed(0, 20).await;
    assert_eq!(
        stir_runtime::run_once(w.plan.clone(), w.config.clone(), "fragile")
            .await
            .unwrap(),
        RunStatus::Ok
    );
    assert_eq!(
        w.number(&format!("SELECT count() FROM {}.fragile_events", w.wh))
            .await,
        20
    );

    w.sql(&format!(
        "INSERT INTO {}.events VALUES (1000, '2026-01-02 00:00:00', -5)",
        w.raw
    ))
    .await;
    let status = stir_runtime::run_once(w.plan.clone(), w.config.clone(), "fragile")
        .await
        .unwrap();
    assert_eq!(status, RunStatus::Failed);
    assert_eq!(
        w.number(&format!("SELECT count() FROM {}.fragile_events", w.wh))
            .await,
        20,
        "the live table is untouched"
    );
    assert_eq!(
        w.table_names().await,
        vec!["fragile_events"],
        "cleanup dropped the __stir_new table"
    );

    let pg = w.pg().await;
    let s = &w.config.history_schema;
    let runs = pg
        .query(&format!("SELECT status, attempt, error FROM {s}.runs WHERE schedule = 'fragile' ORDER BY started_at, attempt"), &[])
        .await
        .unwrap();
    let got: Vec<(String, i32)> = runs.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        vec![("ok".into(), 1), ("failed".into(), 1), ("failed".into(), 2)],
        "retries=1: two attempts"
    );
    let error: String = runs[2].get(2);
    assert!(
        error.contains("fragile_events") && error.contains("negative value"),
        "{error}"
    );
    let step_err: String = pg
        .query_one(&format!("SELECT error FROM {s}.steps WHERE status = 'failed' ORDER BY started_at DESC LIMIT 1"), &[])
        .await
        .unwrap()
        .get(0);
    assert!(step_err.contains("negative value"), "{step_err}");

    let body = tokio::time::timeout(Duration::from_secs(10), posts.recv())
        .await
        .expect("alert posted")
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let text = v["text"].as_str().unwrap();
    assert!(text.contains("`fragile` failed"), "{text}");
    assert!(text.contains("step `fragile_events`"), "{text}");
    assert!(text.contains("negative value"), "{text}");
    assert!(
        posts.try_recv().is_err(),
        "one alert per failed run, none for the earlier success"
    );
    w.drop_all().await;
}

#[tokio::test]
async fn readers_never_see_a_missing_or_half_built_table_during_a_rebuild() {
    let w = World::new("reader").await;
    w.seed(0, 5000).await;
    assert_eq!(
        stir_runtime::run_once(w.plan.clone(), w.config.clone(), "core")
            .await
            .unwrap(),
        RunStatus::Ok
    );
    w.seed(5000, 12000).await;
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (wh, stop, warehouse) = (w.wh.clone(), stop.clone(), w.warehouse.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let r = warehouse
                    .number(
                        &format!("SELECT count() FROM {wh}.stg_events"),
                        &next_id("reader"),
                    )
                    .await;
                seen.push(r.map_err(|e| e.to_string()));
                tokio::task::yield_now().await;
            }
            seen
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let status = stir_runtime::run_once(w.plan.clone(), w.config.clone(), "core")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.store(true, Ordering::SeqCst);
    let seen = reader.await.unwrap();
    assert_eq!(status, RunStatus::Ok);
    assert!(
        seen.len() >= 5,
        "the reader interleaved only {} reads",
        seen.len()
    );
    for r in &seen {
        match r {
            Ok(5000) | Ok(12000) => {}
            other => panic!("a reader saw {other:?} (expected the old 5000 or the new 12000 rows)"),
        }
    }
    assert!(
        seen.iter().any(|r| r == &Ok(5000)) && seen.iter().any(|r| r == &Ok(12000)),
        "{seen:?}"
    );
    w.drop_all().await;
}

#[tokio::test]
async fn a_run_past_its_timeout_is_cancelled_killed_and_recorded() {
    let mut w = World::new("timeout").await;
    // a schedule whose statement outlives its 1s window (chdb allows sleep up to 3s)
    let mut plan = w.plan.clone();
    let mut s = plan.schedule("core").unwrap().clone();
    s.name = "sleepy".into();
    s.timeout_secs = 1;
    s.steps = vec![Step::Sql {
        sql: "SELECT sleep(3)".into(),
    }];
    plan.schedules.push(s);
    w.plan = plan.seal();
    let started = Instant::now();
    let status = stir_runtime::run_once(w.plan.clone(), w.config.clone(), "sleepy")
        .await
        .unwrap();
    assert_eq!(status, RunStatus::Timeout);
    assert!(started.elapsed() < Duration::from_secs(30));
    let pg = w.pg().await;
    let row = pg
        .query_one(
            &format!(
                "SELECT status, error FROM {}.runs WHERE schedule = 'sleepy'",
                w.config.history_schema
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "timeout");
    assert_eq!(
        row.get::<_, Option<String>>(1).as_deref(),
        Some("timed out after 1s")
    );
    // the warehouse answers again after the kill
    assert_eq!(w.number("SELECT 41 + 1").await, 42);
    w.drop_all().await;
}

#[tokio::test]
async fn two_runtimes_elect_one_leader_and_the_follower_takes_over() {
    let w = World::new("ha").await;
    w.seed(0, 10).await;
    // a crashed run's leftover: the leader drops it when it takes over
    w.sql(&format!(
        "CREATE TABLE {}.stg_events__stir_new (id UInt64) ENGINE = MergeTree ORDER BY id",
        w.wh
    ))
    .await;
    let start = |metrics: Metrics| start_runtime(w.plan.clone(), w.config.clone(), metrics, None);
    let wait_for = |m: Metrics, want: bool| async move {
        let t = Instant::now();
        while m.is_leader() != want {
            assert!(
                // A wait, not the claim (the takeover's time is asserted below): a loaded
                // machine may take longer to start a runtime.
                t.elapsed() < Duration::from_secs(30),
                "leadership did not become {want}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        t.elapsed()
    };
    let (ma, mb) = (Metrics::new("a"), Metrics::new("b"));
    let (stop_a, task_a) = start(ma.clone());
    wait_for(ma.clone(), true).await;
    let (stop_b, task_b) = start(mb.clone());
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(ma.is_leader() && !mb.is_leader(), "exactly one leader");
    assert!(
        !w.table_names()
            .await
            .contains(&"stg_events__stir_new".to_string()),
        "leftover dropped"
    );

    // the leader stops: the follower takes over
    let _ = stop_a.send(());
    task_a.await.unwrap().unwrap();
    assert!(!ma.is_leader());
    let took = wait_for(mb.clone(), true).await;
    assert!(took < Duration::from_secs(5), "takeover took {took:?}");

    // A comes back as a follower; then B's lock session dies: A takes over
    let (stop_a, task_a) = start(ma.clone());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!ma.is_leader() && mb.is_leader());
    assert_eq!(
        w.kill_leader_session().await,
        1,
        "one session holds the lock"
    );
    wait_for(ma.clone(), true).await;
    wait_for(mb.clone(), false).await;
    let _ = stop_a.send(());
    let _ = stop_b.send(());
    task_a.await.unwrap().unwrap();
    task_b.await.unwrap().unwrap();
    w.drop_all().await;
}

/// A rolling upgrade that renames the project (or the warehouse database) must not give two
/// leaders: the lock is the history's, not the plan's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtimes_whose_plans_differ_only_in_project_never_both_lead() {
    let w = World::new("harename").await;
    let start = |plan, metrics| start_runtime(plan, w.config.clone(), metrics, None);
    let mut renamed = w.plan.clone();
    renamed.project = format!("{}_v2", renamed.project);
    let (ma, mb) = (Metrics::new("a"), Metrics::new("b"));
    let (stop_a, task_a) = start(w.plan.clone(), ma.clone());
    let t = Instant::now();
    while !ma.is_leader() {
        assert!(t.elapsed() < Duration::from_secs(30), "no leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (stop_b, task_b) = start(renamed, mb.clone());
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!(ma.is_leader() && mb.is_leader()), "two leaders");
    }
    assert!(!mb.is_leader(), "the renamed plan's runtime follows");
    let _ = stop_a.send(());
    task_a.await.unwrap().unwrap();
    let t = Instant::now();
    while !mb.is_leader() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the follower never took over"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_b.send(());
    task_b.await.unwrap().unwrap();
    w.drop_all().await;
}
