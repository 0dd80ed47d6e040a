//! Plan reloads on tokio's paused clock: the leader's schedulers across a new plan
//! (`reload::Succession`), with the fake step executor of the scheduler tests. The real binary
//! and SIGHUP are in `cli_reload.rs`.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use stir::schedule::Zone;
use stir_runtime::alert::{Alert, AlertKind, Alerter};
use stir_runtime::clock::Clock;
use stir_runtime::executor::Engine;
use stir_runtime::history::{Event, MemoryRecorder};
use stir_runtime::metrics::Metrics;
use stir_runtime::reload::{Stage, Succession};
use stir_runtime::scheduler::{Backlog, Branch, Scheduler, Tier};
use support::*;
use tokio::sync::watch;

/// The fakes every plan of a test runs on.
#[derive(Clone)]
struct Rig {
    fake: Fake,
    recorder: MemoryRecorder,
    alerter: Alerter,
    clock: Clock,
}

impl Rig {
    /// Fakes on a paused clock showing `start`; the alerts they send.
    fn new(
        start: DateTime<Utc>,
        behaviours: &[(&str, Behaviour)],
    ) -> (Rig, Arc<Mutex<Vec<Alert>>>) {
        let clock = Clock::tokio_at(start);
        let (alerter, alerts) = Alerter::memory();
        let rig = Rig {
            fake: Fake::new(clock.clone(), behaviours, BTreeMap::new()),
            recorder: MemoryRecorder::default(),
            alerter,
            clock,
        };
        (rig, alerts)
    }

    /// The schedules `tiers` as the plan with hash `hash`.
    fn stage(&self, hash: &str, tiers: Vec<Tier>) -> Arc<Stage> {
        Arc::new(Stage {
            engine: Arc::new(Engine {
                plan_hash: hash.into(),
                notify: Arc::new(stir_runtime::notify::Notifier::failures_only()),
                steps: Arc::new(self.fake.clone()),
                recorder: Arc::new(self.recorder.clone()),
                alerts: self.alerter.clone(),
                metrics: Metrics::new(hash),
                clock: self.clock.clone(),
                retry_backoff: Duration::from_secs(30),
                leader: true,
                runtime: "test-runtime".into(),
                holds: Vec::new(),
            }),
            zone: utc_zone(),
            tiers,
        })
    }
}

/// A leader's schedulers on the paused clock, whose plan the test replaces.
struct Leader {
    rig: Rig,
    alerts: Arc<Mutex<Vec<Alert>>>,
    plans: watch::Sender<Arc<Stage>>,
    /// The leader's term: `firing` cancelled is a shutdown, `runs` cancelled an abort.
    term: Branch,
    task: tokio::task::JoinHandle<()>,
}

impl Leader {
    /// Leading from `start` with the plan `old` of `tiers`.
    fn start(start: DateTime<Utc>, tiers: Vec<Tier>, behaviours: &[(&str, Behaviour)]) -> Leader {
        Leader::start_with(start, tiers, behaviours, Backlog::new())
    }

    /// As [`Leader::start`], with fires nobody ran before this leader (`backlog`).
    fn start_with(
        start: DateTime<Utc>,
        tiers: Vec<Tier>,
        behaviours: &[(&str, Behaviour)],
        backlog: Backlog,
    ) -> Leader {
        let (rig, alerts) = Rig::new(start, behaviours);
        let (plans, stages) = watch::channel(rig.stage("old", tiers));
        let term = Branch::root();
        let succession = Succession::new(stages, watch::channel(true).1);
        let task = tokio::spawn(succession.serve_until(term.clone(), mins(1), backlog));
        Leader {
            rig,
            alerts,
            plans,
            term,
            task,
        }
    }

    /// Reload: the plan `hash` with `tiers` from now on.
    fn reload(&self, hash: &str, tiers: Vec<Tier>) {
        self.plans.send_replace(self.rig.stage(hash, tiers));
    }

    /// Stop and wait for every run to end.
    async fn stop(mut self) -> Leader {
        self.term.firing.cancel();
        let task = std::mem::replace(&mut self.task, tokio::spawn(async {}));
        if let Err(e) = task.await {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        self
    }

    fn spans(&self) -> Vec<Span> {
        self.rig.fake.spans.lock().unwrap().clone()
    }

    fn events(&self) -> Vec<Event> {
        self.rig.recorder.events()
    }

    /// (schedule, fire, plan hash) of every run started.
    fn started(&self) -> Vec<(String, DateTime<Utc>, String)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::RunStarted(r) => Some((r.schedule, r.fire_time, r.plan_hash)),
                _ => None,
            })
            .collect()
    }

    fn skips(&self, status: &str) -> Vec<(String, DateTime<Utc>)> {
        skips_in(self.events(), status)
    }

    fn finished(&self, run_id: &str) -> Option<String> {
        self.events().into_iter().find_map(|e| match e {
            Event::RunFinished {
                run_id: id, status, ..
            } if id == run_id => Some(status),
            _ => None,
        })
    }
}

fn utc_zone() -> Zone {
    Zone::parse("UTC").unwrap()
}

fn heavy(mut t: Tier) -> Tier {
    t.heavy = true;
    t
}

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    utc(2026, 1, 1, h, m, s)
}

/// Wait until the simulated clock shows `t`.
async fn until(l: &Leader, t: DateTime<Utc>) {
    let now = l.rig.clock.now();
    if t > now {
        tokio::time::sleep((t - now).to_std().unwrap()).await;
    }
}

#[tokio::test(start_paused = true)]
async fn the_new_plan_fires_from_its_next_fire_while_a_run_of_the_old_one_finishes() {
    // Old plan: `removed` every minute, its 00:01 run lasting until 00:02:40; `changed` every
    // 10 minutes; `kept` every 5.
    let l = Leader::start(
        at(0, 0, 30),
        vec![
            tier("removed", "* * * * *", 10),
            tier("changed", "*/10 * * * *", 10),
            tier("kept", "*/5 * * * *", 10),
        ],
        &[("removed", Behaviour::lasting(Duration::from_secs(100)))],
    );
    until(&l, at(0, 2, 30)).await;
    // New plan: `removed` gone, `added` every minute, `changed` every 3 minutes.
    l.reload(
        "new",
        vec![
            tier("added", "* * * * *", 10),
            tier("changed", "*/3 * * * *", 10),
            tier("kept", "*/5 * * * *", 10),
        ],
    );
    until(&l, at(0, 10, 30)).await;
    let l = l.stop().await;

    let started = l.started();
    let runs = |name: &str| -> Vec<(DateTime<Utc>, String)> {
        started
            .iter()
            .filter(|(s, ..)| s == name)
            .map(|(_, f, h)| (*f, h.clone()))
            .collect()
    };
    // The old plan's run in flight finished, whole, under the old plan; nothing of
    // `removed` fired after the reload.
    assert_eq!(runs("removed"), vec![(at(0, 1, 0), "old".to_string())]);
    let removed = l
        .spans()
        .into_iter()
        .find(|s| s.schedule == "removed")
        .unwrap();
    assert_eq!(removed.end, Some(at(0, 2, 40)), "{removed:?}");
    assert!(removed.ok, "{removed:?}");
    assert_eq!(
        l.finished(&removed.run_id).as_deref(),
        Some("ok"),
        "the old run is recorded ok, not cancelled"
    );
    assert!(l.rig.fake.aborted.lock().unwrap().is_empty());
    // Added: every minute from the first fire after the reload, under the new plan.
    let added: Vec<_> = (3..=10).map(|m| (at(0, m, 0), "new".to_string())).collect();
    assert_eq!(runs("added"), added);
    // Changed: the new cron (*/3), not the old one (*/10 would fire at 00:10).
    assert_eq!(
        runs("changed"),
        [3, 6, 9]
            .iter()
            .map(|m| (at(0, *m, 0), "new".to_string()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        runs("kept"),
        vec![
            (at(0, 5, 0), "new".to_string()),
            (at(0, 10, 0), "new".to_string())
        ]
    );
    // `removed`'s 00:02 fire found its own run still going, as within one plan.
    assert_eq!(
        l.skips("skipped_running"),
        vec![("removed".into(), at(0, 2, 0))]
    );
}

#[tokio::test(start_paused = true)]
async fn a_reload_on_a_fire_runs_that_fire_exactly_once() {
    let l = Leader::start(at(0, 0, 30), vec![tier("kept", "*/5 * * * *", 10)], &[]);
    // The reload lands on the very instant `kept` fires.
    until(&l, at(0, 5, 0)).await;
    l.reload("new", vec![tier("kept", "*/5 * * * *", 10)]);
    until(&l, at(0, 11, 0)).await;
    let l = l.stop().await;
    let fires: Vec<DateTime<Utc>> = l.started().into_iter().map(|(_, f, _)| f).collect();
    assert_eq!(fires, vec![at(0, 5, 0), at(0, 10, 0)]);
    assert!(l.skips("skipped_running").is_empty(), "{:?}", l.events());
}

#[tokio::test(start_paused = true)]
async fn a_heavy_run_of_the_old_plan_still_draining_blocks_a_heavy_fire_of_the_new_one() {
    // Old plan: heavy `nightly` at 00:01, running until 00:05:30.
    let l = Leader::start(
        at(0, 0, 30),
        vec![heavy(tier("nightly", "1 * * * *", 30))],
        &[
            ("nightly", Behaviour::lasting(Duration::from_secs(270))),
            ("rebuild", Behaviour::lasting(Duration::from_secs(30))),
            ("nightly_v2", Behaviour::lasting(Duration::from_secs(30))),
        ],
    );
    until(&l, at(0, 2, 30)).await;
    // New plan: `nightly` renamed (`nightly_v2`, hourly at :03) and a new heavy `rebuild`
    // every 2 minutes; the old run goes on.
    l.reload(
        "new",
        vec![
            heavy(tier("nightly_v2", "3 * * * *", 30)),
            heavy(tier("rebuild", "*/2 * * * *", 30)),
        ],
    );
    until(&l, at(0, 9, 0)).await;
    let l = l.stop().await;

    let spans = l.spans();
    // Heavy runs never overlap, across the two plans.
    for a in &spans {
        for b in &spans {
            if a.run_id < b.run_id {
                let (a0, a1) = (a.start, a.end.unwrap());
                let (b0, b1) = (b.start, b.end.unwrap());
                assert!(a1 <= b0 || b1 <= a0, "heavy runs overlap: {a:?} {b:?}");
            }
        }
    }
    let heavy_skips = l.skips("skipped_heavy");
    assert_eq!(
        heavy_skips,
        vec![
            ("nightly_v2".to_string(), at(0, 3, 0)),
            ("rebuild".to_string(), at(0, 4, 0)),
        ]
    );
    let alerted: Vec<_> = l
        .alerts
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a.kind == AlertKind::SkippedHeavy)
        .map(|a| a.schedule.clone())
        .collect();
    assert_eq!(alerted, vec!["nightly_v2", "rebuild"]);
    // The old heavy run finished; the new plan's heavy runs start once it has.
    let nightly = spans.iter().find(|s| s.schedule == "nightly").unwrap();
    assert_eq!(nightly.end, Some(at(0, 5, 30)));
    assert!(nightly.ok);
    let rebuild: Vec<_> = spans
        .iter()
        .filter(|s| s.schedule == "rebuild")
        .map(|s| s.fire)
        .collect();
    assert_eq!(rebuild, vec![at(0, 6, 0), at(0, 8, 0)]);
}

#[tokio::test(start_paused = true)]
async fn a_schedule_kept_across_a_reload_is_not_started_beside_its_own_draining_run() {
    // `core` every minute lasting 150 s: its 00:01 run drains until 00:03:30 after the reload,
    // which changes its cron; the new plan's 00:02 and 00:03 fires of it are skipped.
    let l = Leader::start(
        at(0, 0, 30),
        vec![tier("core", "*/1 * * * *", 10)],
        &[("core", Behaviour::lasting(Duration::from_secs(150)))],
    );
    until(&l, at(0, 1, 30)).await;
    l.reload("new", vec![tier("core", "* * * * *", 10)]);
    until(&l, at(0, 4, 30)).await;
    let l = l.stop().await;
    let started: Vec<_> = l.started().into_iter().map(|(_, f, h)| (f, h)).collect();
    assert_eq!(
        started,
        vec![
            (at(0, 1, 0), "old".to_string()),
            (at(0, 4, 0), "new".to_string())
        ]
    );
    assert_eq!(
        l.skips("skipped_running"),
        vec![("core".into(), at(0, 2, 0)), ("core".into(), at(0, 3, 0))]
    );
}

/// The handover splits fires exactly: up to its instant they are the old plan's (even when the
/// old scheduler learns of the handover before it reaches them), strictly after it the new
/// one's. A handover set ahead of time shows it deterministically; a reload sets it at now.
#[tokio::test(start_paused = true)]
async fn fires_up_to_the_handover_are_the_old_plans_and_after_it_the_new_ones() {
    let (rig, _alerts) = Rig::new(at(0, 0, 30), &[]);
    let kept = || vec![tier("kept", "*/5 * * * *", 10)];
    let old_stage = rig.stage("old", kept());
    let old = Arc::new(Scheduler::new(old_stage.engine.clone(), utc_zone(), kept()));
    let term = Branch::root();
    let old_task = tokio::spawn(
        old.clone()
            .serve_until(term.child(), mins(1), Backlog::new()),
    );
    let sleep = |d: u64| tokio::time::sleep(Duration::from_secs(d));
    sleep(4 * 60).await; // 00:04:30
    let new_stage = rig.stage("new", kept());
    let new = Arc::new(old.successor(new_stage.engine.clone(), utc_zone(), kept(), at(0, 5, 0)));
    let new_task = tokio::spawn(new.serve_until(term.child(), mins(1), Backlog::new()));
    sleep(7 * 60).await; // 00:11:30
    term.firing.cancel();
    old_task.await.unwrap();
    new_task.await.unwrap();
    let started: Vec<(DateTime<Utc>, String)> = rig
        .recorder
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::RunStarted(r) => Some((r.fire_time, r.plan_hash)),
            _ => None,
        })
        .collect();
    assert_eq!(
        started,
        vec![
            (at(0, 5, 0), "old".to_string()),
            (at(0, 10, 0), "new".to_string())
        ]
    );
    // Neither fired the other's fire (it would have found it running).
    assert!(skips_in(rig.recorder.events(), "skipped_running").is_empty());
}

/// A run as it ended: run id, plan hash, end, recorded status.
type Ended = (String, String, Option<DateTime<Utc>>, Option<String>);

/// The old plan's `long` (fired 00:01) and the new plan's `fresh` (fired 00:03) are both in
/// flight at 00:05, each lasting 30 minutes: how each ended after `end` did its part.
async fn two_plans_in_flight_then(end: impl FnOnce(&Leader)) -> Vec<Ended> {
    let long = || Behaviour::lasting(mins(30));
    let l = Leader::start(
        at(0, 0, 30),
        vec![tier("long", "1 * * * *", 60)],
        &[("long", long()), ("fresh", long())],
    );
    until(&l, at(0, 2, 30)).await;
    l.reload(
        "new",
        vec![tier("fresh", "3 * * * *", 60), tier("tick", "* * * * *", 1)],
    );
    until(&l, at(0, 5, 0)).await;
    end(&l);
    let l = l.stop().await;
    let hashes: BTreeMap<String, String> = l
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::RunStarted(r) => Some((r.id, r.plan_hash)),
            _ => None,
        })
        .collect();
    let ticks_after: Vec<_> = l
        .started()
        .into_iter()
        .filter(|(s, f, _)| s == "tick" && *f > at(0, 5, 0))
        .collect();
    assert_eq!(ticks_after, vec![], "fired after the stop");
    l.spans()
        .into_iter()
        .filter(|s| s.schedule != "tick")
        .map(|s| {
            let status = l.finished(&s.run_id);
            (s.run_id.clone(), hashes[&s.run_id].clone(), s.end, status)
        })
        .collect()
}

/// What [`two_plans_in_flight_then`] gives when both runs were cancelled at `t`.
fn both_cancelled_at(t: DateTime<Utc>) -> Vec<Ended> {
    [
        ("long-20260101T000100000Z-a1", "old"),
        ("fresh-20260101T000300000Z-a1", "new"),
    ]
    .into_iter()
    .map(|(id, hash)| (id.into(), hash.into(), Some(t), Some("cancelled".into())))
    .collect()
}

/// A shutdown while a reload's old plan still drains: both plans stop firing at once and,
/// after the grace period (1 minute here), the runs of both are cancelled, the old plan's too
/// although its own drain would wait for its runs' deadlines (00:31, 01:01).
#[tokio::test(start_paused = true)]
async fn a_shutdown_cancels_the_runs_of_every_plan_after_the_grace_period() {
    let runs = two_plans_in_flight_then(|l| l.term.firing.cancel()).await;
    assert_eq!(runs, both_cancelled_at(at(0, 6, 0)));
}

/// Leadership lost (the term's `runs` node cancelled, as the lock session's end does): the
/// runs of every plan, the old plan's draining run too, are cancelled at once, with no grace
/// period, and nothing fires any more.
#[tokio::test(start_paused = true)]
async fn losing_leadership_cancels_the_runs_of_every_plan_at_once() {
    let runs = two_plans_in_flight_then(|l| l.term.runs.cancel()).await;
    assert_eq!(runs, both_cancelled_at(at(0, 5, 0)));
}

/// Fires nobody ran before this leader took over are recorded `missed` under their own
/// schedule (not a neighbour's), and only the newest runs (`on-missed=run-once`, the default).
#[tokio::test(start_paused = true)]
async fn a_backlog_is_recorded_under_its_own_schedule_and_its_newest_fire_runs() {
    let backlog = Backlog::from([(
        "late".to_string(),
        vec![at(0, 1, 0), at(0, 2, 0), at(0, 3, 0)],
    )]);
    let l = Leader::start_with(
        at(0, 3, 20),
        vec![
            tier("early", "0 5 * * *", 10),
            tier("late", "0 * * * *", 10),
            tier("other", "0 6 * * *", 10),
        ],
        &[],
        backlog,
    );
    until(&l, at(0, 4, 0)).await;
    let l = l.stop().await;
    let mut missed = l.skips("missed");
    missed.sort();
    assert_eq!(
        missed,
        vec![
            ("late".to_string(), at(0, 1, 0)),
            ("late".to_string(), at(0, 2, 0)),
        ],
        "{:?}",
        l.events()
    );
    let started: Vec<(String, DateTime<Utc>)> =
        l.started().into_iter().map(|(s, f, _)| (s, f)).collect();
    assert_eq!(started, vec![("late".to_string(), at(0, 3, 0))]);
}

/// A stopped leader hands its lock over as soon as nothing fires, not when its runs end
/// (`lib.rs` waits on the succession's `stopped_firing`). Here the scheduler has no fire loop
/// left when the stop comes (its schedule never fires again), so it sees the stop and says it
/// stopped before the succession has subscribed to hear it: the word must keep until it is
/// asked for. It used to be dropped (a `watch` send without a receiver keeps nothing), and
/// the hand-over waited for the draining run: `ha.rs` saw "B leads: not within 45s".
#[tokio::test(start_paused = true)]
async fn a_stop_is_heard_at_once_even_when_the_scheduler_stops_first_and_its_run_drains() {
    // February 30th never comes: after its backlog run the schedule has nothing to fire.
    let backlog = Backlog::from([("drain".to_string(), vec![at(0, 0, 0)])]);
    let (rig, _alerts) = Rig::new(
        at(0, 0, 10),
        &[("drain", Behaviour::lasting(Duration::from_secs(600)))],
    );
    let (_plans, stages) = watch::channel(rig.stage("old", vec![tier("drain", "0 0 30 2 *", 30)]));
    let term = Branch::root();
    let succession = Succession::new(stages, watch::channel(true).1);
    let mut stopped = succession.stopped_firing();
    let task = tokio::spawn(succession.serve_until(term.clone(), mins(20), backlog));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        rig.fake.spans.lock().unwrap().len(),
        1,
        "the backlog run started"
    );
    term.firing.cancel();
    let heard = tokio::time::timeout(Duration::from_secs(1), stopped.wait_for(|s| *s)).await;
    let spans = rig.fake.spans.lock().unwrap().clone();
    assert!(
        heard.is_ok(),
        "the stop was not heard within a second; the run still draining: {spans:?}"
    );
    assert_eq!(spans[0].end, None, "heard while the run still runs");
    task.await.unwrap();
    let spans = rig.fake.spans.lock().unwrap().clone();
    assert_eq!(
        spans[0].end,
        Some(at(0, 10, 10)),
        "the run drained to its end"
    );
}
