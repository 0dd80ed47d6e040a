//! High availability on the real servers (issue #13, "No fire vanishes" and "HA must fail
//! closed"): fires due while no runtime led are recorded or run once; a draining leader hands
//! the lock over at once and the new leader respects its running work; a stalled leader
//! session pauses firing and cancels nothing.
//!
//! Needs `scripts/servers.sh up` and `eval "$(scripts/servers.sh env)"`.

#[path = "support/servers.rs"]
mod servers;

use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, Utc};
use servers::*;
use stir::plan::{OnMissed, Schedule, Step};
use stir_runtime::alert::{AlertKind, Alerter};
use stir_runtime::metrics::Metrics;

/// A schedule firing every minute that runs `sql`.
fn every_minute(name: &str, timeout_secs: u64, on_missed: OnMissed, sql: String) -> Schedule {
    Schedule {
        name: name.into(),
        cron: "* * * * *".into(),
        timeout_secs,
        heavy: false,
        enabled: true,
        retries: 0,
        retry_all: false,
        on_missed,
        threads: None,
        notify: None,
        skip: vec![],
        steps: vec![Step::Sql { sql }],
    }
}

/// A statement that takes about `secs` seconds on the server.
fn sleeping(w: &World, secs: u32) -> String {
    format!(
        "INSERT INTO {}.sink SELECT sleepEachRow(0.1) FROM numbers({}) SETTINGS max_block_size = 1, max_threads = 1",
        w.wh,
        secs * 10
    )
}

/// A world whose plan has exactly the schedules `schedules` makes (given the world, for its
/// database names), and a `sink` table to write into.
async fn world_with(tag: &str, schedules: impl FnOnce(&World) -> Vec<Schedule>) -> World {
    let mut w = World::new(tag).await;
    w.sql(&format!(
        "CREATE TABLE {}.sink (x UInt8) ENGINE = MergeTree ORDER BY tuple()",
        w.wh
    ))
    .await;
    let mut plan = w.plan.clone();
    plan.schedules = schedules(&w);
    w.plan = plan.seal();
    // The history's tables, so the test can write what ran before.
    stir_runtime::history::PgHistory::open(
        w.config.postgres_url.as_deref().unwrap(),
        &w.config.history_schema,
    )
    .await
    .unwrap();
    w
}

/// A history row saying `schedule` ran at `fire` (so fires after it are the backlog).
async fn ran_at(w: &World, schedule: &str, fire: DateTime<Utc>) {
    let s = &w.config.history_schema;
    w.pg()
        .await
        .execute(
            &format!(
                "INSERT INTO {s}.runs (id, schedule, fire_time, started_at, ended_at, status, plan_hash, attempt) \
                 VALUES ($1, $2, $3, $3, $3, 'ok', 'x', 1)"
            ),
            &[&format!("{schedule}-seeded"), &schedule, &fire],
        )
        .await
        .unwrap();
}

/// `(fire_time, status, runtime)` of each history row of `schedule`, oldest fire first.
async fn rows_of(w: &World, schedule: &str) -> Vec<(DateTime<Utc>, String, Option<String>)> {
    let s = &w.config.history_schema;
    w.pg()
        .await
        .query(
            &format!(
                "SELECT fire_time, status, runtime FROM {s}.runs WHERE schedule = $1 AND id <> $2 ORDER BY fire_time, id"
            ),
            &[&schedule, &format!("{schedule}-seeded")],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t = Instant::now();
    while !check().await {
        assert!(t.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn last_minute() -> DateTime<Utc> {
    Utc::now()
        .duration_trunc(chrono::TimeDelta::minutes(1))
        .unwrap()
}

/// Two runtimes and a hand-over between them, as the tests below start it.
struct HandOver {
    ma: Metrics,
    task_a: tokio::task::JoinHandle<Result<(), stir_runtime::RuntimeError>>,
    stop_b: tokio::sync::oneshot::Sender<()>,
    task_b: tokio::task::JoinHandle<Result<(), stir_runtime::RuntimeError>>,
    /// The fire of A's run of `running`, and A's runtime id.
    fire: DateTime<Utc>,
    a_runtime: Option<String>,
    /// From A's stop to B leading.
    handover: Duration,
}

/// A leads on the world's plan and starts `running` at once (its newest fire is the backlog),
/// B follows on `plan_b`; once A's run is running, A is stopped (SIGTERM: it drains, with a
/// grace period longer than the run) and B takes over.
async fn hand_over(w: &World, plan_b: stir::plan::Plan, running: &str) -> HandOver {
    ran_at(w, running, last_minute() - chrono::TimeDelta::minutes(1)).await;
    let mut config = w.config.clone();
    config.grace = Duration::from_secs(150);
    let (ma, mb) = (Metrics::new("a"), Metrics::new("b"));
    let (stop_a, task_a) = start_runtime(w.plan.clone(), config.clone(), ma.clone(), None);
    wait_until("A leads", Duration::from_secs(15), || async {
        ma.is_leader()
    })
    .await;
    let (stop_b, task_b) = start_runtime(plan_b, config, mb.clone(), None);
    wait_until("A's run is running", Duration::from_secs(20), || async {
        rows_of(w, running)
            .await
            .iter()
            .any(|(_, st, _)| st == "running")
    })
    .await;
    let (fire, _, a_runtime) = rows_of(w, running)
        .await
        .into_iter()
        .find(|(_, st, _)| st == "running")
        .unwrap();
    let _ = stop_a.send(());
    let t = Instant::now();
    // The hand-over's speed is asserted by the test that is about it, on `handover`; a
    // loaded CI machine may take longer to get here than the feature does.
    wait_until("B leads", Duration::from_secs(45), || async {
        mb.is_leader()
    })
    .await;
    HandOver {
        ma,
        task_a,
        stop_b,
        task_b,
        fire,
        a_runtime,
        handover: t.elapsed(),
    }
}

/// Fires due while no runtime led (here: the five minutes since the history's last row) are
/// never silent: a new leader records each `missed` and alerts; with `on-missed=run-once` it
/// runs the newest of them now, inside its window; with `skip` it runs none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fires_due_while_no_runtime_led_are_recorded_alerted_and_the_newest_run_once() {
    let w = world_with("backlog", |_| {
        vec![
            every_minute("once", 600, OnMissed::RunOnce, "SELECT 1".into()),
            every_minute("skip", 600, OnMissed::Skip, "SELECT 1".into()),
        ]
    })
    .await;
    let newest = last_minute();
    let seeded = newest - chrono::TimeDelta::minutes(5);
    ran_at(&w, "once", seeded).await;
    ran_at(&w, "skip", seeded).await;
    let (alerts, sent) = Alerter::memory();
    let metrics = Metrics::new("backlog");
    let (stop, task) = start_runtime(
        w.plan.clone(),
        w.config.clone(),
        metrics.clone(),
        Some(alerts),
    );
    wait_until(
        "the newest missed fire ran",
        Duration::from_secs(45),
        || async {
            rows_of(&w, "once")
                .await
                .iter()
                .any(|(t, st, _)| *t == newest && st == "ok")
        },
    )
    .await;
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    let minutes = |from: i64, to: i64| -> Vec<DateTime<Utc>> {
        (from..=to)
            .map(|m| seeded + chrono::TimeDelta::minutes(m))
            .collect()
    };
    let fires = |rows: &[(DateTime<Utc>, String, Option<String>)], status: &str| {
        rows.iter()
            .filter(|(t, st, _)| st == status && *t <= newest)
            .map(|(t, _, _)| *t)
            .collect::<Vec<_>>()
    };
    let once = rows_of(&w, "once").await;
    assert_eq!(fires(&once, "missed"), minutes(1, 4), "{once:?}");
    assert_eq!(fires(&once, "ok"), vec![newest], "{once:?}");
    let skip = rows_of(&w, "skip").await;
    assert_eq!(fires(&skip, "missed"), minutes(1, 5), "{skip:?}");
    assert!(fires(&skip, "ok").is_empty(), "{skip:?}");
    let sent = sent.lock().unwrap().clone();
    let missed: Vec<&str> = sent
        .iter()
        .filter(|a| a.kind == AlertKind::Missed)
        .map(|a| a.schedule.as_str())
        .collect();
    assert_eq!(missed.len(), 2, "one alert per schedule: {missed:?}");
    assert!(metrics.render().contains("reason=\"missed\""));
    w.drop_all().await;
}

/// SIGTERM of a leader with a run in flight: it stops firing and hands the lock over at
/// once, so the other replica leads within a poll or two and fires on time, while the old
/// leader's run goes on to its end (not cancelled). The new leader does not start that
/// schedule beside the draining run (`skipped_running`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_leader_hands_over_at_once_and_its_run_is_respected() {
    let w = world_with("handover", |w| {
        vec![
            every_minute("slow", 300, OnMissed::RunOnce, sleeping(w, 75)),
            every_minute("quick", 50, OnMissed::RunOnce, "SELECT 1".into()),
        ]
    })
    .await;
    let HandOver {
        ma,
        mut task_a,
        stop_b,
        task_b,
        fire: slow_fire,
        a_runtime,
        handover,
    } = hand_over(&w, w.plan.clone(), "slow").await;
    assert!(!task_a.is_finished(), "A is still draining its run");
    assert!(!ma.is_leader());
    // The next minute: B fires quick, and skips slow while A's run still runs.
    let next = slow_fire + chrono::TimeDelta::minutes(1);
    wait_until(
        "B handled the next fire",
        Duration::from_secs(75),
        || async {
            let quick = rows_of(&w, "quick").await;
            let slow = rows_of(&w, "slow").await;
            quick.iter().any(|(t, st, _)| *t >= next && st == "ok")
                && slow.iter().any(|(t, _, _)| *t >= next)
        },
    )
    .await;
    let quick = rows_of(&w, "quick").await;
    let (_, _, b_runtime) = quick
        .iter()
        .find(|(t, st, _)| *t >= next && st == "ok")
        .unwrap();
    assert_ne!(b_runtime, &a_runtime, "quick ran on B: {quick:?}");
    let slow = rows_of(&w, "slow").await;
    let later: Vec<_> = slow.iter().filter(|(t, _, _)| *t >= next).collect();
    assert!(
        later.iter().all(|(_, st, _)| st == "skipped_running"),
        "B never starts slow beside A's draining run: {slow:?}"
    );
    let a_done = tokio::time::timeout(Duration::from_secs(120), &mut task_a).await;
    a_done.expect("A ends once its run ends").unwrap().unwrap();
    let slow = rows_of(&w, "slow").await;
    assert!(
        slow.iter().any(|(t, st, _)| *t == slow_fire && st == "ok"),
        "A's run finished, not cancelled: {slow:?}"
    );
    assert!(handover < Duration::from_secs(5), "{handover:?}");
    let _ = stop_b.send(());
    task_b.await.unwrap().unwrap();
    w.drop_all().await;
}

/// A PostgreSQL stall on the leader's session shorter than the stall limit (the session's
/// backend frozen with SIGSTOP for 6 s) pauses firing but cancels nothing: the run in flight
/// ends `ok` and the runtime stays leader. It used to cancel every run after 3 heartbeats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_stall_of_the_leader_session_cancels_nothing() {
    let w = world_with("stall", |w| {
        vec![every_minute(
            "slow",
            300,
            OnMissed::RunOnce,
            sleeping(w, 15),
        )]
    })
    .await;
    ran_at(&w, "slow", last_minute() - chrono::TimeDelta::minutes(1)).await;
    let metrics = Metrics::new("stall");
    let (stop, task) = start_runtime(w.plan.clone(), w.config.clone(), metrics.clone(), None);
    wait_until("the run is running", Duration::from_secs(20), || async {
        rows_of(&w, "slow")
            .await
            .iter()
            .any(|(_, st, _)| st == "running")
    })
    .await;
    let key = stir_runtime::leader::lock_key(&w.config.history_schema);
    let pid: i32 = w
        .pg()
        .await
        .query_one(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND ((classid::bigint << 32) | objid::bigint) = $1",
            &[&key],
        )
        .await
        .unwrap()
        .get(0);
    let signal = |sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(
            ok,
            "kill {sig} {pid}: the test must be able to signal PostgreSQL's backends"
        );
    };
    signal("-STOP");
    let t = Instant::now();
    let mut led = true;
    while t.elapsed() < Duration::from_secs(6) {
        led &= metrics.is_leader();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    signal("-CONT");
    assert!(led, "leadership was given up during a 6 s stall");
    let fire = rows_of(&w, "slow").await[0].0;
    wait_until("the run ended", Duration::from_secs(60), || async {
        rows_of(&w, "slow")
            .await
            .iter()
            .any(|(t, st, _)| *t == fire && st != "running")
    })
    .await;
    let rows = rows_of(&w, "slow").await;
    assert!(
        rows.iter().any(|(t, st, _)| *t == fire && st == "ok"),
        "the run in flight ended ok: {rows:?}"
    );
    assert!(metrics.is_leader());
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    w.drop_all().await;
}

/// The heavy slot across a leadership change when the two runtimes run different plans (a
/// restart-based upgrade, or a reload followed by a hand-over): A runs heavy `old_heavy`,
/// which B's plan no longer names; A is stopped and drains. B's heavy `new_heavy` must not
/// start beside the draining run (`skipped_heavy`, naming it), and runs once it has ended.
/// B's plan alone cannot say `old_heavy` was heavy: the history's `heavy` column does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_heavy_run_of_a_schedule_the_new_leaders_plan_lacks_keeps_the_heavy_slot() {
    let heavy = |mut s: Schedule| {
        s.heavy = true;
        s
    };
    let w = world_with("heavyslot", |w| {
        vec![heavy(every_minute(
            "old_heavy",
            300,
            OnMissed::RunOnce,
            sleeping(w, 75),
        ))]
    })
    .await;
    let mut plan_b = w.plan.clone();
    plan_b.schedules = vec![heavy(every_minute(
        "new_heavy",
        50,
        OnMissed::Skip,
        "SELECT 1".into(),
    ))];
    let plan_b = plan_b.seal();
    let HandOver {
        mut task_a,
        stop_b,
        task_b,
        ..
    } = hand_over(&w, plan_b, "old_heavy").await;
    // A's run lasts 75 s, so at least one of B's minutely fires falls inside it.
    let a_done = tokio::time::timeout(Duration::from_secs(120), &mut task_a).await;
    a_done.expect("A ends once its run ends").unwrap().unwrap();
    let s = &w.config.history_schema;
    let old_end: DateTime<Utc> = w
        .pg()
        .await
        .query_one(
            &format!("SELECT ended_at FROM {s}.runs WHERE schedule = 'old_heavy' AND status = 'ok' AND id <> 'old_heavy-seeded'"),
            &[],
        )
        .await
        .expect("A's heavy run finished ok, not cancelled")
        .get(0);
    // B's next fire after A's run ended runs.
    wait_until(
        "B runs new_heavy once the slot is free",
        Duration::from_secs(75),
        || async {
            rows_of(&w, "new_heavy")
                .await
                .iter()
                .any(|(t, st, _)| *t > old_end && st == "ok")
        },
    )
    .await;
    let rows = w
        .pg()
        .await
        .query(
            &format!(
                "SELECT fire_time, status, coalesce(error, ''), started_at, ended_at FROM {s}.runs \
                 WHERE schedule = 'new_heavy' ORDER BY fire_time"
            ),
            &[],
        )
        .await
        .unwrap();
    let beside: Vec<(DateTime<Utc>, String, String)> = rows
        .iter()
        .filter(|r| r.get::<_, DateTime<Utc>>(0) < old_end)
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert!(
        !beside.is_empty(),
        "B had a fire while A's heavy run drained: {beside:?}"
    );
    for (fire, status, error) in &beside {
        assert_eq!(status, "skipped_heavy", "fire {fire}: {beside:?}");
        assert!(
            error.contains("old_heavy"),
            "the skip names the draining run's schedule: {error}"
        );
    }
    let _ = stop_b.send(());
    task_b.await.unwrap().unwrap();
    w.drop_all().await;
}

/// Two replicas on two plans (one was reloaded and the other not, or refused the new plan):
/// each counts two plans in `stir_replica_plans`, and the leader alerts once, naming the other
/// replica and its plan. When that replica stops, the count is back to one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_different_plans_are_counted_and_the_leader_alerts_once() {
    let w = world_with("replicas", |_| {
        vec![every_minute("quick", 50, OnMissed::Skip, "SELECT 1".into())]
    })
    .await;
    let mut plan_b = w.plan.clone();
    plan_b.schedules[0].timeout_secs = 40;
    let plan_b = plan_b.seal();
    assert_ne!(plan_b.plan_hash, w.plan.plan_hash);
    let (alerts, sent) = Alerter::memory();
    let (ma, mb) = (Metrics::new("a"), Metrics::new("b"));
    let (stop_a, task_a) =
        start_runtime(w.plan.clone(), w.config.clone(), ma.clone(), Some(alerts));
    wait_until("A leads", Duration::from_secs(15), || async {
        ma.is_leader()
    })
    .await;
    let (stop_b, task_b) = start_runtime(plan_b.clone(), w.config.clone(), mb.clone(), None);
    let plans = |m: &Metrics| -> Option<i64> {
        m.render()
            .lines()
            .find_map(|l| l.strip_prefix("stir_replica_plans "))
            .and_then(|v| v.trim().parse().ok())
    };
    wait_until("both count two plans", Duration::from_secs(10), || async {
        plans(&ma) == Some(2) && plans(&mb) == Some(2)
    })
    .await;
    let differ = || -> Vec<stir_runtime::alert::Alert> {
        sent.lock()
            .unwrap()
            .iter()
            .filter(|a| a.kind == AlertKind::PlansDiffer)
            .cloned()
            .collect()
    };
    wait_until("the leader alerted", Duration::from_secs(5), || async {
        !differ().is_empty()
    })
    .await;
    // Several polls later: still one alert, not one a poll.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let alerts = differ();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].run_id, w.plan.plan_hash);
    let why = alerts[0].error.clone().unwrap_or_default();
    assert!(why.contains(&plan_b.plan_hash[..12]), "{why}");
    assert!(alerts[0]
        .text()
        .contains("the replicas run different plans"));
    let _ = stop_b.send(());
    task_b.await.unwrap().unwrap();
    wait_until("A counts one plan", Duration::from_secs(10), || async {
        plans(&ma) == Some(1)
    })
    .await;
    let _ = stop_a.send(());
    task_a.await.unwrap().unwrap();
    w.drop_all().await;
}

/// The leader's lock session ends (its backend terminated) with a run in flight: leadership
/// is lost, and with it every run of the term (they hang below the session in the
/// cancellation tree): the run is cancelled at once, its ClickHouse query killed and the run
/// recorded `cancelled`, instead of running on beside the next leader. The grace period (150 s
/// here) is for a shutdown, not for a lost lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_leader_session_cancels_the_run_in_flight_at_once() {
    // A schedule name no other test here uses: run ids (and the kill by their prefix) are
    // schedule and fire, and the tests share one ClickHouse server.
    let w = world_with("lostrun", |w| {
        vec![every_minute(
            "doomed",
            300,
            OnMissed::RunOnce,
            sleeping(w, 60),
        )]
    })
    .await;
    ran_at(&w, "doomed", last_minute() - chrono::TimeDelta::minutes(1)).await;
    let mut config = w.config.clone();
    config.grace = Duration::from_secs(150);
    let metrics = Metrics::new("lostrun");
    let (stop, task) = start_runtime(w.plan.clone(), config, metrics.clone(), None);
    let s = &w.config.history_schema;
    let running_id = || async {
        w.pg()
            .await
            .query(
                &format!(
                    "SELECT id FROM {s}.runs WHERE schedule = 'doomed' AND status = 'running'"
                ),
                &[],
            )
            .await
            .unwrap()
            .first()
            .map(|r| r.get::<_, String>(0))
    };
    wait_until("the run is running", Duration::from_secs(20), || async {
        running_id().await.is_some()
    })
    .await;
    let run_id = running_id().await.unwrap();
    let prefix = stir_runtime::run::query_prefix(&w.plan.warehouse.database, &run_id);
    let probe =
        format!("SELECT count() FROM system.processes WHERE startsWith(query_id, '{prefix}')");
    let queries = || w.number(&probe);
    wait_until("its query runs", Duration::from_secs(20), || async {
        queries().await > 0
    })
    .await;
    assert_eq!(
        w.kill_leader_session().await,
        1,
        "one session holds the lock"
    );
    let status = || async {
        w.pg()
            .await
            .query_one(
                &format!("SELECT status FROM {s}.runs WHERE id = $1"),
                &[&run_id],
            )
            .await
            .unwrap()
            .get::<_, String>(0)
    };
    // Left running, it would end `ok` after its minute; the grace period is longer still.
    wait_until("the run ended", Duration::from_secs(40), || async {
        status().await != "running"
    })
    .await;
    assert_eq!(status().await, "cancelled");
    assert_eq!(queries().await, 0, "its query is killed");
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    w.drop_all().await;
}

/// Two deployments on one ClickHouse server (two warehouse databases, two histories), each
/// with a schedule `twin` firing the same minute: the same run id in both. A's run times out
/// and its queries are killed; B's run of that fire is not touched and ends `ok`. Query ids
/// begin with the deployment's database, so a kill (exact, or by the run's prefix) stays in
/// its own deployment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_run_never_kills_another_deployments_run_of_the_same_fire() {
    let twin = |w: &World, timeout: u64| {
        vec![every_minute(
            "twin",
            timeout,
            OnMissed::Skip,
            sleeping(w, 40),
        )]
    };
    let a = world_with("twin_a", |w| twin(w, 20)).await;
    let b = world_with("twin_b", |w| twin(w, 300)).await;
    assert_ne!(a.plan.warehouse.database, b.plan.warehouse.database);
    assert_ne!(a.config.history_schema, b.config.history_schema);
    let (ma, mb) = (Metrics::new("a"), Metrics::new("b"));
    let (stop_a, task_a) = start_runtime(a.plan.clone(), a.config.clone(), ma.clone(), None);
    let (stop_b, task_b) = start_runtime(b.plan.clone(), b.config.clone(), mb.clone(), None);
    wait_until("both lead", Duration::from_secs(15), || async {
        ma.is_leader() && mb.is_leader()
    })
    .await;
    // A fire both ran: A's timed out, B's has ended.
    let ended = |s: &str| !matches!(s, "running");
    wait_until(
        "a fire that timed out in A and ended in B",
        Duration::from_secs(150),
        || async {
            let (ra, rb) = (rows_of(&a, "twin").await, rows_of(&b, "twin").await);
            ra.iter()
                .any(|(f, st, _)| st == "timeout" && rb.iter().any(|(g, s, _)| g == f && ended(s)))
        },
    )
    .await;
    let (ra, rb) = (rows_of(&a, "twin").await, rows_of(&b, "twin").await);
    for (fire, _, _) in ra.iter().filter(|(_, st, _)| st == "timeout") {
        if let Some((_, status, _)) = rb.iter().find(|(g, s, _)| g == fire && ended(s)) {
            assert_eq!(
                status, "ok",
                "B's run of {fire} was killed with A's: A {ra:?}, B {rb:?}"
            );
        }
    }
    for (stop, task) in [(stop_a, task_a), (stop_b, task_b)] {
        let _ = stop.send(());
        task.await.unwrap().unwrap();
    }
    a.drop_all().await;
    b.drop_all().await;
}
