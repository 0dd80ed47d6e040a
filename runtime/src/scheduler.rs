//! Firing: each enabled schedule fires at the times the shared schedule code computes
//! (`stir_plan::schedule::Zone::next_fire_utc`, the compiler's own cron semantics), in the project
//! timezone, with its `skip` blackouts removed.
//!
//! Rules (docs/operations.md):
//! - no catchup of history: the first fire is strictly after start; a fire noticed more than
//!   [`LATE`] late (process suspended, clock jump, a stalled leader session), and the fires
//!   the new leader finds that nobody ran ([`Backlog`]), are *missed*: recorded, counted and
//!   alerted, and with `on-missed=run-once` the latest of them runs late if its window
//!   (fire to fire + timeout) is still open, with that window's deadline;
//! - fires only while the leader's session confirms the lock ([`Scheduler::with_firing`]);
//! - at most one active run per schedule: a fire finding its schedule running is skipped
//!   (`skipped_running`);
//! - a heavy fire finding another heavy run active is skipped and alerted (`skipped_heavy`):
//!   one of this runtime, or one the history shows for another process (`--once`,
//!   `--bootstrap`, within that schedule's timeout);
//! - a fire inside a skip blackout never happens; the first of each blackout is recorded
//!   (`skipped_blackout`), all are counted in the metrics;
//! - a run is cancelled at fire + timeout ([`crate::executor::Engine::drive`]);
//! - each scheduler serves in a [`Branch`] of the runtime's cancellation tree: stopping its
//!   firing lets its runs drain, cancelling its runs cancels every run under it.
//!
//! "Now" is a [`Clock`], so tests run the scheduler on tokio's paused clock.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use crate::run::Tier;
use chrono::{DateTime, Utc};
use stir_plan::cron::Cron;
use stir_plan::schedule::{DailyWindow, Zone};
use stir_plan::{OnMissed, Plan, Step};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::alert::{Alert, AlertKind};
use crate::executor::Engine;
use crate::history::Conflict;

/// A fire noticed later than this is dropped instead of run (no catchup).
pub const LATE: Duration = Duration::from_secs(60);
/// After the grace period, how long cancelled runs get to clean up.
const CANCEL_LIMIT: Duration = Duration::from_secs(150);

/// Fires that no runtime ran, per schedule, oldest first (found by a new leader in the
/// history: [`crate::missed_backlog`]).
pub type Backlog = std::collections::BTreeMap<String, Vec<DateTime<Utc>>>;

/// At most this many history rows for one batch of missed fires (all are counted).
const MISSED_ROWS: usize = 100;

/// A plan the runtime cannot run although its hash checked (exit code 2).
#[derive(Debug, Clone, thiserror::Error)]
pub enum PlanCheckError {
    #[error("plan timezone `{0}` is not a timezone this runtime knows")]
    Timezone(String),
    #[error("schedule `{schedule}`: cron `{cron}` does not parse: {reason}")]
    Cron {
        schedule: String,
        cron: String,
        reason: String,
    },
    #[error("schedule `{schedule}` names {kind} `{name}`, which the plan does not define")]
    Missing {
        schedule: String,
        kind: &'static str,
        name: String,
    },
    #[error("no schedule `{0}` in the plan")]
    NoSchedule(String),
}

/// Read the plan's zone and schedules with the compiler's cron and zone code.
pub fn prepare(plan: &Plan) -> Result<(Zone, Vec<Tier>), PlanCheckError> {
    let zone = Zone::parse(&plan.timezone)
        .ok_or_else(|| PlanCheckError::Timezone(plan.timezone.clone()))?;
    let mut tiers = Vec::new();
    for s in &plan.schedules {
        let cron = Cron::parse(&s.cron).map_err(|e| PlanCheckError::Cron {
            schedule: s.name.clone(),
            cron: s.cron.clone(),
            reason: e.to_string(),
        })?;
        for step in &s.steps {
            let missing = match step {
                Step::Run { models } => models
                    .iter()
                    .find(|m| plan.model(m).is_none())
                    .map(|m| ("model", m.clone())),
                Step::Sync { sync } => {
                    (!plan.syncs.iter().any(|x| &x.name == sync)).then(|| ("sync", sync.clone()))
                }
                Step::Request { request } => (!plan.requests.iter().any(|x| &x.name == request))
                    .then(|| ("request", request.clone())),
                Step::Sql { .. } => None,
            };
            if let Some((kind, name)) = missing {
                return Err(PlanCheckError::Missing {
                    schedule: s.name.clone(),
                    kind,
                    name,
                });
            }
        }
        tiers.push(Tier {
            name: s.name.clone(),
            cron,
            skip: s
                .skip
                .iter()
                .map(|w| DailyWindow {
                    from: w.from,
                    to: w.to,
                })
                .collect(),
            timeout: Duration::from_secs(s.timeout_secs),
            heavy: s.heavy,
            retries: s.retries,
            enabled: s.enabled,
            on_missed: s.on_missed,
        });
    }
    Ok((zone, tiers))
}

/// The start after which a run still counts as running at `now` (`now - timeout`): an older
/// row marked running is a run whose runtime died without recording its end.
pub fn counts_since(now: DateTime<Utc>, timeout: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(timeout)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// How long a `--bootstrap` run counts as running in the history (its default timeout).
pub const BOOTSTRAP_WINDOW: Duration = Duration::from_secs(6 * 3600);

/// The heavy schedules other than `except`, plus `@bootstrap` and heavy manual `run`s
/// (`@run-heavy`), each with the start after which a run of it still counts as running (now -
/// its timeout), and last any heavy run the history marks heavy, whatever its name (a
/// schedule this plan no longer names, still draining in another process): what a heavy run
/// must not overlap. Leader runs of `own_runtime` are left to the caller's memory.
pub fn heavy_windows(
    tiers: &[Arc<Tier>],
    except: &str,
    now: DateTime<Utc>,
    own_runtime: Option<&str>,
) -> Vec<Conflict> {
    let since = |d: Duration| counts_since(now, d);
    // Rows from before the history recorded deadlines count for the longest window a run
    // of this plan could have.
    let longest = tiers
        .iter()
        .map(|t| t.timeout)
        .fold(BOOTSTRAP_WINDOW, Duration::max);
    tiers
        .iter()
        .filter(|t| t.heavy && t.name != except)
        .map(|t| Conflict::any(&t.name, since(t.timeout)))
        .chain(
            [crate::BOOTSTRAP, crate::run::MANUAL_HEAVY]
                .into_iter()
                .filter(|n| *n != except)
                .map(|n| Conflict::any(n, since(BOOTSTRAP_WINDOW))),
        )
        .chain([Conflict::any_heavy(
            since(longest),
            own_runtime.map(str::to_string),
        )])
        .collect()
}

/// The next fire of `tier` strictly after `after`, and whether a blackout removes it.
pub fn next_event(zone: &Zone, tier: &Tier, after: DateTime<Utc>) -> Option<(DateTime<Utc>, bool)> {
    let real = zone.next_fire_utc(&tier.cron, &tier.skip, after);
    if tier.skip.is_empty() {
        return real.map(|t| (t, false));
    }
    let raw = zone.next_fire_utc(&tier.cron, &[], after);
    match (raw, real) {
        (Some(r), Some(f)) if r < f => Some((r, true)),
        (Some(r), None) => Some((r, true)),
        (_, Some(f)) => Some((f, false)),
        (None, None) => None,
    }
}

/// A scheduler's two nodes in the runtime's cancellation tree (docs/ARCHITECTURE.md,
/// "Cancellation"). Cancelling `firing` stops new fires and lets the runs in flight drain;
/// cancelling `runs` cancels every run in flight under it (each run is a child node) and stops
/// firing too.
#[derive(Clone, Debug)]
pub struct Branch {
    /// The parent of every run started here.
    pub runs: CancellationToken,
    /// Cancelled: no new fire. Below `runs` in the branches [`Branch::root`], [`Branch::under`]
    /// and [`Branch::child`] make, so whatever cancels the runs stops the firing with them.
    pub firing: CancellationToken,
}

impl Branch {
    /// A branch nothing above cancels.
    pub fn root() -> Branch {
        Branch::under(CancellationToken::new())
    }

    /// A branch whose runs are children of `runs`: cancelled with it.
    pub fn under(runs: CancellationToken) -> Branch {
        Branch {
            firing: runs.child_token(),
            runs,
        }
    }

    /// A branch below this one (a plan generation's): this one's `firing` reaches its
    /// `firing`, this one's `runs` both of its nodes; cancelling its nodes reaches nothing
    /// above (a drained generation cancels only its own runs).
    pub fn child(&self) -> Branch {
        Branch {
            runs: self.runs.child_token(),
            firing: self.firing.child_token(),
        }
    }
}

/// Which schedules are running now.
#[derive(Default)]
struct Active {
    running: BTreeSet<String>,
    heavy: Option<String>,
}

/// Held by a run for its whole life; dropping it frees the schedule (and the heavy slot).
pub struct Claim {
    active: Arc<Mutex<Active>>,
    name: String,
    heavy: bool,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Ok(mut a) = self.active.lock() {
            a.running.remove(&self.name);
            if self.heavy && a.heavy.as_deref() == Some(self.name.as_str()) {
                a.heavy = None;
            }
        }
    }
}

enum Skip {
    Running,
    Heavy(String),
}

pub struct Scheduler {
    engine: Arc<Engine>,
    zone: Zone,
    tiers: Vec<Arc<Tier>>,
    active: Arc<Mutex<Active>>,
    /// True while this runtime may fire (the leader session answers).
    firing: watch::Receiver<bool>,
    /// Turns true once no fire loop runs any more: the lock can be handed over.
    stopped_firing: watch::Sender<bool>,
    /// Called as each fire starts; tests make a fire loop panic with it.
    fire_hook: Option<FireHook>,
    /// Set when a successor (a reloaded plan's scheduler) takes over: fires after it are the
    /// successor's ([`Scheduler::successor`]).
    handover: watch::Sender<Option<DateTime<Utc>>>,
    /// A successor fires only strictly after its predecessor's handover.
    start_after: Option<DateTime<Utc>>,
}

/// See [`Scheduler::with_fire_hook`].
pub type FireHook = Arc<dyn Fn(&str, DateTime<Utc>) + Send + Sync>;

impl Scheduler {
    pub fn new(engine: Arc<Engine>, zone: Zone, tiers: Vec<Tier>) -> Scheduler {
        Scheduler {
            engine,
            zone,
            tiers: tiers.into_iter().map(Arc::new).collect(),
            active: Arc::default(),
            firing: watch::channel(true).1,
            stopped_firing: watch::channel(false).0,
            fire_hook: None,
            handover: watch::channel(None).0,
            start_after: None,
        }
    }

    /// The scheduler of a new plan (`engine`, `zone`, `tiers`) taking over from this one at
    /// `at`: this one fires nothing after `at` and then only lets its runs end (at their own
    /// deadlines; nothing is cancelled early); the successor fires strictly after `at`. Both
    /// share which schedules run here, so a draining run of this plan keeps its schedule (and,
    /// if heavy, the heavy slot) taken for the new plan exactly as within one plan.
    pub fn successor(
        &self,
        engine: Arc<Engine>,
        zone: Zone,
        tiers: Vec<Tier>,
        at: DateTime<Utc>,
    ) -> Scheduler {
        self.handover.send_replace(Some(at));
        Scheduler {
            engine,
            zone,
            tiers: tiers.into_iter().map(Arc::new).collect(),
            active: self.active.clone(),
            firing: self.firing.clone(),
            stopped_firing: watch::channel(false).0,
            fire_hook: self.fire_hook.clone(),
            handover: watch::channel(None).0,
            start_after: Some(at),
        }
    }

    /// Whether fire `t` belongs to a successor.
    fn handed_over(handover: &watch::Receiver<Option<DateTime<Utc>>>, t: DateTime<Utc>) -> bool {
        handover.borrow().is_some_and(|h| t > h)
    }

    /// How long a handed-over scheduler's runs may still take: each ends by its deadline
    /// (fire + timeout) and its cleanup.
    fn drain_limit(&self) -> Duration {
        let longest = self
            .tiers
            .iter()
            .map(|t| t.timeout)
            .max()
            .unwrap_or_default();
        longest + CANCEL_LIMIT + LATE
    }

    /// Call `hook(schedule, fire)` in the fire loop as each fire starts (tests only).
    #[doc(hidden)]
    pub fn with_fire_hook(mut self, hook: FireHook) -> Scheduler {
        self.fire_hook = Some(hook);
        self
    }

    /// Fire only while `firing` is true: a fire due while it is false waits for it (and is
    /// missed if that takes longer than [`LATE`]).
    pub fn with_firing(mut self, firing: watch::Receiver<bool>) -> Scheduler {
        self.firing = firing;
        self
    }

    /// Turns true when the scheduler has stopped firing for good, and stays true for a
    /// receiver subscribed at any time, also after the fact.
    pub fn stopped_firing(&self) -> watch::Receiver<bool> {
        self.stopped_firing.subscribe()
    }

    /// Fire until `stop` is cancelled; then let running work finish for `grace`, cancel what
    /// is left and wait for its cleanup.
    pub async fn serve(self: Arc<Self>, stop: CancellationToken, grace: Duration) {
        let branch = Branch {
            runs: CancellationToken::new(),
            firing: stop,
        };
        self.serve_until(branch, grace, Backlog::new()).await
    }

    /// Fire until `branch.firing` is cancelled (or the handover to a successor); then let
    /// running work finish for `grace` (handed over: until the runs' own deadlines), cancel
    /// `branch.runs` and wait for the cleanup. Cancelling `branch.runs`, or a node above it
    /// (leadership lost, a whole succession's grace over), cancels running work at once.
    /// `backlog`: fires nobody ran, handled first.
    pub async fn serve_until(self: Arc<Self>, branch: Branch, grace: Duration, backlog: Backlog) {
        let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
        let mut loops = JoinSet::new();
        let mut loop_of: HashMap<tokio::task::Id, Arc<Tier>> = HashMap::new();
        let first = self.start_after.unwrap_or_else(|| self.engine.clock.now());
        for tier in self.tiers.iter().filter(|t| t.enabled) {
            let handle = loops.spawn(self.clone().fire_loop(
                tier.clone(),
                branch.clone(),
                done_tx.clone(),
                first,
            ));
            loop_of.insert(handle.id(), tier.clone());
        }
        for (name, fires) in &backlog {
            let tier = self.tiers.iter().find(|t| &t.name == name && t.enabled);
            if let (Some(tier), false) = (tier, fires.is_empty()) {
                self.missed(
                    tier,
                    fires,
                    "no runtime led when it was due (all runtimes stopped, deploying or cut off from PostgreSQL)",
                    &branch.runs,
                    &done_tx,
                );
            }
        }
        // A fire loop that panics is restarted at once, with an alert: otherwise its schedule
        // would stop firing without a word until the next restart.
        let mut handover = self.handover.subscribe();
        loop {
            tokio::select! {
                _ = branch.firing.cancelled() => break,
                _ = branch.runs.cancelled() => break,
                // Handed over and every fire loop ended at the handover: drain.
                _ = handover.wait_for(|h| h.is_some()), if loops.is_empty() => break,
                Some(ended) = loops.join_next_with_id() => {
                    let (id, panic) = match ended {
                        Ok((id, ())) => (id, None),
                        Err(e) => (e.id(), e.try_into_panic().ok()),
                    };
                    let tier = loop_of.remove(&id);
                    let (Some(tier), Some(panic)) = (tier, panic) else {
                        continue; // ended as it should (never fires again, or stopping)
                    };
                    let why = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic".into());
                    let now = self.engine.clock.now();
                    let reason = format!("the schedule's fire loop failed ({why}) and was restarted: a fire due at that moment did not run; report this as a bug");
                    error!(schedule = %tier.name, "{reason}");
                    self.engine.metrics.skipped(&tier.name, "missed");
                    let id = crate::run::run_id(&tier.name, now, 0);
                    self.engine
                        .alert(Alert::new(AlertKind::Missed, &tier.name, &id, now).error(&reason));
                    let handle = loops.spawn(self.clone().fire_loop(
                        tier.clone(),
                        branch.clone(),
                        done_tx.clone(),
                        now,
                    ));
                    loop_of.insert(handle.id(), tier);
                }
            }
        }
        drop(done_tx);
        loops.abort_all();
        while loops.join_next().await.is_some() {}
        // Kept for whoever asks later: a succession subscribes only once it saw the stop
        // itself, and `send` keeps nothing while nobody listens.
        self.stopped_firing.send_replace(true);
        // Handed over to a new plan: runs end at their own deadlines, not after the grace
        // period; a cancelled node above `branch.runs` (shutdown's grace over, leadership
        // lost) still cancels them.
        let handed_over = self.handover.borrow().is_some() && !branch.firing.is_cancelled();
        let grace = if handed_over {
            self.drain_limit()
        } else {
            grace
        };
        if handed_over {
            info!("handed over to a new plan; its running work finishes at its own deadlines");
        } else {
            info!(
                grace_ms = grace.as_millis() as u64,
                "stopped firing; waiting for running work"
            );
        }
        let finished = tokio::select! {
            r = tokio::time::timeout(grace, done_rx.recv()) => r.is_ok(),
            _ = branch.runs.cancelled() => false,
        };
        if !finished {
            warn!("cancelling running work");
            branch.runs.cancel();
            if tokio::time::timeout(CANCEL_LIMIT, done_rx.recv())
                .await
                .is_err()
            {
                warn!("cancelled runs did not finish cleaning up");
            }
        }
    }

    async fn fire_loop(
        self: Arc<Self>,
        tier: Arc<Tier>,
        branch: Branch,
        done: mpsc::Sender<()>,
        mut after: DateTime<Utc>,
    ) {
        let clock = self.engine.clock.clone();
        let mut firing = self.firing.clone();
        let mut handover = self.handover.subscribe();
        // Only the first fire of a blackout is written to the history (a `*/5` schedule would
        // otherwise add 36 rows for a three-hour blackout every day), and at least one a day
        // for a schedule whose every fire falls in blackouts. All are counted in the metrics.
        let mut in_blackout = false;
        let mut recorded_at: Option<DateTime<Utc>> = None;
        loop {
            let Some((t, blackout)) = next_event(&self.zone, &tier, after) else {
                info!(schedule = %tier.name, "schedule never fires again");
                return;
            };
            tokio::select! {
                _ = clock.sleep_until(t) => {}
                _ = branch.firing.cancelled() => return,
                _ = handover.wait_for(|h| h.is_some_and(|h| t > h)) => return,
            }
            if branch.firing.is_cancelled() || Self::handed_over(&handover, t) {
                return;
            }
            if !*firing.borrow() && !blackout {
                info!(schedule = %tier.name, fire = %t, "fire waits: the leader session does not answer");
                tokio::select! {
                    r = firing.wait_for(|f| *f) => if r.is_err() { return },
                    _ = branch.firing.cancelled() => return,
                }
            }
            let now = clock.now();
            let late = crate::clock::until(t, now);
            if late > LATE {
                // This fire and every later one already due, blackouts aside.
                let mut fires = vec![t];
                let mut at = t;
                while let Some((f, b)) = next_event(&self.zone, &tier, at) {
                    if f > now || Self::handed_over(&handover, f) {
                        break;
                    }
                    if !b {
                        fires.push(f);
                    }
                    at = f;
                }
                let why = format!("the runtime noticed it {} late (host suspended, clock stepped or the leader session stalled)", crate::run::humanize(late));
                self.missed(&tier, &fires, &why, &branch.runs, &done);
            } else if blackout {
                info!(schedule = %tier.name, fire = %t, "fire skipped: blackout");
                let recent = recorded_at.is_some_and(|r| t - r < chrono::Duration::hours(24));
                if in_blackout && recent {
                    self.engine.metrics.skipped(&tier.name, "skipped_blackout");
                } else {
                    recorded_at = Some(t);
                    self.record_skip(
                        &tier,
                        t,
                        "skipped_blackout",
                        "inside a skip blackout (its later fires in this blackout are skipped too, not recorded)".into(),
                    );
                }
            } else {
                if let Some(hook) = &self.fire_hook {
                    hook(&tier.name, t);
                }
                self.fire(&tier, t, &branch.runs, done.clone());
            }
            in_blackout = blackout && late <= LATE;
            after = if late > LATE { now } else { t };
        }
    }

    /// Fires of `tier` that did not run when due (`fires`, oldest first, not empty): each is
    /// recorded `missed` (the newest [`MISSED_ROWS`]), counted and alerted once; with
    /// `on-missed=run-once` the newest runs now if its window is still open. Its deadline
    /// stays fire + timeout, the interval the overlap analysis gave it.
    fn missed(
        &self,
        tier: &Arc<Tier>,
        fires: &[DateTime<Utc>],
        why: &str,
        runs: &CancellationToken,
        done: &mpsc::Sender<()>,
    ) {
        let Some(&latest) = fires.last() else { return };
        let now = self.engine.clock.now();
        let closes =
            latest + chrono::Duration::from_std(tier.timeout).unwrap_or(chrono::TimeDelta::MAX);
        let run_latest = tier.on_missed == OnMissed::RunOnce && now < closes;
        let gone = if run_latest {
            &fires[..fires.len() - 1]
        } else {
            fires
        };
        if let Some(&last_gone) = gone.last() {
            let count = if gone.len() == 1 {
                String::new()
            } else {
                format!(" ({} fires from {} to {})", gone.len(), gone[0], last_gone)
            };
            let outcome = match (tier.on_missed, run_latest) {
                (_, true) => format!("; the newest fire, {latest}, runs late instead"),
                (OnMissed::Skip, _) => "; not run (on-missed=skip)".to_string(),
                (OnMissed::RunOnce, false) => {
                    format!("; not run late: its window closed at {closes} (fire + timeout)")
                }
            };
            let reason = format!("missed: {why}{count}{outcome}");
            warn!(schedule = %tier.name, fires = gone.len(), newest = %last_gone, "{reason}");
            let id = crate::run::run_id(&tier.name, last_gone, 0);
            self.engine
                .alert(Alert::new(AlertKind::Missed, &tier.name, &id, last_gone).error(&reason));
            for _ in gone {
                self.engine.metrics.skipped(&tier.name, "missed");
            }
            let rows: Vec<DateTime<Utc>> = gone.iter().rev().take(MISSED_ROWS).copied().collect();
            let engine = self.engine.clone();
            let name = tier.name.clone();
            tokio::spawn(async move {
                for t in rows {
                    engine
                        .recorder
                        .skipped(&name, t, "missed", &reason, &engine.plan_hash)
                        .await;
                }
            });
        }
        if run_latest {
            info!(schedule = %tier.name, fire = %latest, "running a missed fire late, inside its window");
            self.fire(tier, latest, runs, done.clone());
        }
    }

    fn claim(&self, tier: &Tier) -> Result<Claim, Skip> {
        let mut a = self.active.lock().map_err(|_| Skip::Running)?;
        if a.running.contains(&tier.name) {
            return Err(Skip::Running);
        }
        if tier.heavy {
            if let Some(other) = &a.heavy {
                return Err(Skip::Heavy(other.clone()));
            }
            a.heavy = Some(tier.name.clone());
        }
        a.running.insert(tier.name.clone());
        Ok(Claim {
            active: self.active.clone(),
            name: tier.name.clone(),
            heavy: tier.heavy,
        })
    }

    fn fire(
        &self,
        tier: &Arc<Tier>,
        t: DateTime<Utc>,
        runs: &CancellationToken,
        done: mpsc::Sender<()>,
    ) {
        match self.claim(tier) {
            Ok(claim) => {
                // The run's own node: its parents' cancellation reaches it, nothing of its
                // own (its timeout ends only its attempt) reaches them.
                let cancel = runs.child_token();
                let engine = self.engine.clone();
                let tier = tier.clone();
                // A manual run of this schedule (this runtime's own runs are kept apart by the
                // claim above) and, for a heavy one, any other heavy run.
                let now = engine.clock.now();
                let mut guard = vec![Conflict {
                    schedule: tier.name.clone(),
                    since: counts_since(now, tier.timeout),
                    except_runtime: Some(engine.runtime.clone()),
                }];
                if tier.heavy {
                    guard.extend(heavy_windows(
                        &self.tiers,
                        &tier.name,
                        now,
                        Some(&engine.runtime),
                    ));
                }
                tokio::spawn(async move {
                    let _done = done;
                    let _claim = claim;
                    // Runs of other processes show in the history, which the run's start checks
                    // and writes in one step.
                    let Err(busy) = engine.drive_guarded(&tier, t, cancel, &guard).await else {
                        return;
                    };
                    if busy.run_id == crate::run::run_id(&tier.name, t, 1) {
                        // This very fire was started by another runtime (a leader handing
                        // over, say): it runs once, there; nothing to record here.
                        info!(schedule = %tier.name, fire = %t, "fire already started by another runtime");
                        return;
                    }
                    let own = busy.schedule == tier.name;
                    let (status, kind, reason) = if let Some(why) = &busy.unconfirmed {
                        (
                            "missed",
                            Some(AlertKind::Missed),
                            format!("its start could not be confirmed in the history ({why}); not started, so it cannot run twice"),
                        )
                    } else if own {
                        (
                            "skipped_running",
                            Some(AlertKind::SkippedRunning),
                            format!(
                                "a run started by another process (a manual run, or a runtime that led before) is still active (run `{}`)",
                                busy.run_id
                            ),
                        )
                    } else {
                        (
                            "skipped_heavy",
                            Some(AlertKind::SkippedHeavy),
                            format!(
                                "heavy schedule `{}` is running (run `{}`, started outside this runtime)",
                                busy.schedule, busy.run_id
                            ),
                        )
                    };
                    warn!(schedule = %tier.name, fire = %t, other = %busy.schedule, run_id = %busy.run_id, "fire skipped: {reason}");
                    if let Some(kind) = kind {
                        let id = crate::run::run_id(&tier.name, t, 0);
                        engine.alert(Alert::new(kind, &tier.name, &id, t).error(&reason));
                    }
                    engine.metrics.skipped(&tier.name, status);
                    engine
                        .recorder
                        .skipped(&tier.name, t, status, &reason, &engine.plan_hash)
                        .await;
                });
            }
            Err(Skip::Running) => {
                warn!(schedule = %tier.name, fire = %t, "fire skipped: previous run still active");
                let reason = "the previous run is still active".to_string();
                let id = crate::run::run_id(&tier.name, t, 0);
                self.engine.alert(
                    Alert::new(AlertKind::SkippedRunning, &tier.name, &id, t).error(&reason),
                );
                self.record_skip(tier, t, "skipped_running", reason);
            }
            Err(Skip::Heavy(other)) => {
                let reason = format!("heavy schedule `{other}` is running");
                warn!(schedule = %tier.name, fire = %t, %other, "fire skipped: another heavy run is active");
                let id = crate::run::run_id(&tier.name, t, 0);
                self.engine
                    .alert(Alert::new(AlertKind::SkippedHeavy, &tier.name, &id, t).error(&reason));
                self.record_skip(tier, t, "skipped_heavy", reason);
            }
        }
    }

    fn record_skip(&self, tier: &Tier, t: DateTime<Utc>, status: &'static str, reason: String) {
        self.engine.metrics.skipped(&tier.name, status);
        let engine = self.engine.clone();
        let name = tier.name.clone();
        tokio::spawn(async move {
            engine
                .recorder
                .skipped(&name, t, status, &reason, &engine.plan_hash)
                .await;
        });
    }
}
