//! One run of a schedule: attempts with exponential backoff inside the window
//! [fire, fire + timeout), cancellation at the deadline or on shutdown, history and alerts.
//! [`PlanSteps`] executes the plan's steps against ClickHouse (and the [`StepRunner`] for
//! syncs and requests); tests swap in a fake [`Steps`].

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use stir_plan::{Materialized, Model, Plan, Step};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn, Instrument};

use crate::alert::{Alert, AlertKind, Alerter};
use crate::clock::Clock;
use crate::config::Config;
use crate::history::{Busy, Conflict, Recorder, RunRecord};
use crate::metrics::Metrics;
use crate::notify::Ended;
use crate::run::BoxFut;
use crate::run::Tier;
pub use crate::run::{humanize, run_id, RunStatus};
use crate::step::{Delivered, QueryLog, StepCtx, StepError, StepOutcome, StepRunner};
use crate::warehouse::Warehouse;
use stir_plan::quote::ch_qualified;

/// A failed attempt: which step, and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("step `{step}` failed: {error}")]
pub struct RunError {
    pub step: String,
    pub error: StepError,
}

/// One attempt in flight.
pub struct RunCtx {
    pub run_id: String,
    pub schedule: String,
    pub fire: DateTime<Utc>,
    pub attempt: u32,
    pub queries: QueryLog,
    /// The end of the run's window (`fire + timeout`).
    pub deadline: Option<tokio::time::Instant>,
    /// The steps running now, by index (named in timeout alerts).
    pub current_step: std::sync::Mutex<std::collections::BTreeMap<usize, String>>,
    /// Steps that succeeded in an earlier attempt of this fire: a retry keeps them.
    pub kept: Arc<std::sync::Mutex<std::collections::BTreeSet<usize>>>,
    /// Shared by the attempts of one fire: request rows already accepted.
    pub delivered: Delivered,
}

impl RunCtx {
    fn current_step(&self) -> Option<String> {
        let g = self.current_step.lock().ok()?;
        (!g.is_empty()).then(|| g.values().cloned().collect::<Vec<_>>().join(", "))
    }
    fn set_step(&self, idx: usize, step: Option<String>) {
        if let Ok(mut g) = self.current_step.lock() {
            match step {
                Some(s) => g.insert(idx, s),
                None => g.remove(&idx),
            };
        }
    }
    fn is_kept(&self, idx: usize) -> bool {
        self.kept.lock().map(|k| k.contains(&idx)).unwrap_or(false)
    }
    fn keep(&self, idx: usize) {
        if let Ok(mut k) = self.kept.lock() {
            k.insert(idx);
        }
    }
}

/// What one attempt does. The real one is [`PlanSteps`].
pub trait Steps: Send + Sync + 'static {
    /// Every step of the schedule, in order; stop at the first failure (after its cleanup).
    fn attempt<'a>(&'a self, run: &'a RunCtx) -> BoxFut<'a, Result<(), RunError>>;
    /// After a timeout or cancellation: kill the attempt's queries and clean up.
    fn abort<'a>(&'a self, run: &'a RunCtx) -> BoxFut<'a, ()>;
}

/// Everything a run needs besides its schedule.
pub struct Engine {
    pub plan_hash: String,
    /// Which alerts a run's end sends, and where (`notify.rs`).
    pub notify: Arc<crate::notify::Notifier>,
    pub steps: Arc<dyn Steps>,
    pub recorder: Arc<dyn Recorder>,
    pub alerts: Alerter,
    pub metrics: Metrics,
    pub clock: Clock,
    /// First retry delay; doubles per attempt.
    pub retry_backoff: Duration,
    /// This engine is the leader's scheduler's (its runs are recorded as such).
    pub leader: bool,
    /// This process ([`crate::leader::instance_id`]), recorded with each run.
    pub runtime: String,
    /// Schedules each run of this engine holds besides its own ([`RunRecord::holds`]).
    pub holds: Vec<String>,
}

/// How long an aborted run waits for ClickHouse to confirm its queries are gone.
const KILL_WAIT: Duration = Duration::from_secs(20);

/// Upper bound on cleanup after a timeout or cancellation.
const ABORT_LIMIT: Duration = Duration::from_secs(120);

impl Engine {
    /// Run `tier` fired at `fire` until it succeeds, fails for good, reaches its deadline
    /// (`fire + timeout`) or `cancel` is cancelled. `cancel` is the run's own node in the
    /// cancellation tree (a child of whatever may cancel it); the deadline ends only this run.
    pub async fn drive(
        &self,
        tier: &Tier,
        fire: DateTime<Utc>,
        cancel: CancellationToken,
    ) -> RunStatus {
        // With no conflicts no recorder has a reason to refuse the start.
        self.drive_guarded(tier, fire, cancel, &[])
            .await
            .unwrap_or(RunStatus::Failed)
    }

    /// [`Engine::drive`], but each attempt starts only if none of `conflicts` has a run in
    /// progress, checked and
    /// recorded as one step across processes ([`Recorder::claim_run`]). A first attempt so
    /// blocked is not a run: `Err` with the busy run. A blocked retry ends the run as failed.
    pub async fn drive_guarded(
        &self,
        tier: &Tier,
        fire: DateTime<Utc>,
        cancel: CancellationToken,
        conflicts: &[Conflict],
    ) -> Result<RunStatus, Busy> {
        let deadline_wall =
            fire + chrono::Duration::from_std(tier.timeout).unwrap_or(chrono::TimeDelta::MAX);
        let deadline = self.clock.instant_at(deadline_wall);
        let started = tokio::time::Instant::now();
        let mut attempt = 1u32;
        let kept = Arc::default();
        // The failure alert of the attempt before a retry.
        let mut deferred: Option<Alert> = None;
        let delivered = Delivered::default();
        let status = loop {
            let run = RunCtx {
                run_id: run_id(&tier.name, fire, attempt),
                schedule: tier.name.clone(),
                fire,
                attempt,
                queries: QueryLog::default(),
                deadline: Some(deadline),
                current_step: std::sync::Mutex::default(),
                kept: Arc::clone(&kept),
                delivered: delivered.clone(),
            };
            let record = RunRecord {
                id: run.run_id.clone(),
                schedule: tier.name.clone(),
                fire_time: fire,
                started_at: self.clock.now(),
                plan_hash: self.plan_hash.clone(),
                attempt,
                by_leader: self.leader,
                runtime: self.runtime.clone(),
                holds: self.holds.clone(),
                deadline: Some(deadline_wall),
                heavy: tier.heavy,
            };
            if let Some(busy) = self.recorder.claim_run(&record, conflicts).await {
                let Some(failed) = deferred.take() else {
                    return Err(busy);
                };
                warn!(schedule = %tier.name, other = %busy.schedule, run_id = %busy.run_id, "retry not started: a run it must not start beside is active");
                let why = match &busy.unconfirmed {
                    Some(why) => format!("its start could not be confirmed in the history: {why}"),
                    None => format!(
                        "schedule `{}` is running, run `{}`",
                        busy.schedule, busy.run_id
                    ),
                };
                let error = format!(
                    "{} (retry not started: {why})",
                    failed.error.clone().unwrap_or_default()
                );
                self.failed(failed.error(&error)).await;
                break RunStatus::Failed;
            }
            let span =
                tracing::info_span!("run", schedule = %tier.name, run_id = %run.run_id, attempt);
            info!(parent: &span, fire = %fire, "run started");
            let outcome = tokio::select! {
                r = tokio::time::timeout_at(deadline, self.steps.attempt(&run)).instrument(span.clone()) => match r {
                    Ok(Ok(())) => Outcome::Ok,
                    Ok(Err(e)) => Outcome::Failed(e),
                    Err(_) => Outcome::Timeout,
                },
                _ = cancel.cancelled() => Outcome::Cancelled,
            };
            let ended = self.clock.now();
            match outcome {
                Outcome::Ok => {
                    info!(parent: &span, "run ok");
                    self.recorder
                        .run_finished(&run.run_id, ended, RunStatus::Ok.as_str(), None)
                        .await;
                    self.notify
                        .run_ended(&self.alerts, &tier.name, &run.run_id, fire, Ended::Ok)
                        .await;
                    break RunStatus::Ok;
                }
                Outcome::Failed(e) => {
                    let message = e.to_string();
                    warn!(parent: &span, step = %e.step, error = %message, "run failed");
                    self.recorder
                        .run_finished(
                            &run.run_id,
                            ended,
                            RunStatus::Failed.as_str(),
                            Some(&message),
                        )
                        .await;
                    let alert = Alert::new(AlertKind::Failure, &tier.name, &run.run_id, fire)
                        .step(&e.step)
                        .error(&e.error.to_string());
                    if attempt <= tier.retries {
                        let backoff = self.backoff(attempt);
                        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                        if backoff < left {
                            info!(parent: &span, backoff_ms = backoff.as_millis() as u64, "retrying");
                            let stop = tokio::select! {
                                _ = tokio::time::sleep(backoff) => false,
                                _ = cancel.cancelled() => true,
                            };
                            if !stop {
                                attempt += 1;
                                // Sent only if the retry cannot start.
                                deferred = Some(alert);
                                continue;
                            }
                        } else {
                            warn!(parent: &span, "no retry: the backoff would pass the deadline");
                        }
                    }
                    self.failed(alert).await;
                    break RunStatus::Failed;
                }
                Outcome::Timeout | Outcome::Cancelled => {
                    let (status, kind) = if matches!(outcome, Outcome::Timeout) {
                        (RunStatus::Timeout, AlertKind::Timeout)
                    } else {
                        (RunStatus::Cancelled, AlertKind::Cancelled)
                    };
                    let step = run.current_step();
                    error!(parent: &span, step = step.as_deref().unwrap_or("-"), "run {}", status.as_str());
                    if tokio::time::timeout(ABORT_LIMIT, self.steps.abort(&run))
                        .await
                        .is_err()
                    {
                        error!(parent: &span, "cleanup after {} did not finish in {:?}", status.as_str(), ABORT_LIMIT);
                    }
                    let message = match status {
                        RunStatus::Timeout => format!("timed out after {}", humanize(tier.timeout)),
                        _ => "cancelled at shutdown".to_string(),
                    };
                    self.recorder
                        .run_finished(
                            &run.run_id,
                            self.clock.now(),
                            status.as_str(),
                            Some(&message),
                        )
                        .await;
                    let mut alert = Alert::new(kind, &tier.name, &run.run_id, fire).error(&message);
                    if let Some(s) = &step {
                        alert = alert.step(s);
                    }
                    if status == RunStatus::Timeout {
                        self.failed(alert).await;
                    } else {
                        self.alert(alert);
                    }
                    break status;
                }
            }
        };
        self.metrics
            .run_finished(&tier.name, status, started.elapsed());
        Ok(status)
    }

    /// A run failed or timed out for good: its alert, as the schedule's `notify` and its
    /// failing streak say.
    async fn failed(&self, alert: Alert) {
        let (schedule, run_id, fire) = (alert.schedule.clone(), alert.run_id.clone(), alert.fire);
        self.notify
            .run_ended(&self.alerts, &schedule, &run_id, fire, Ended::Failed(alert))
            .await;
    }

    /// Send an alert about one of the schedule's fires outside a run's end (skipped,
    /// missed, cancelled), routed by its `notify`; none with `on=never`.
    pub fn alert(&self, alert: Alert) {
        if !self.notify.silenced(&alert.schedule) {
            self.alerts.send(self.notify.route(alert));
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        self.retry_backoff
            .saturating_mul(1u32 << (attempt.saturating_sub(1)).min(16))
    }
}

enum Outcome {
    Ok,
    Failed(RunError),
    Timeout,
    Cancelled,
}

// ------------------------------------------------------------------ the real steps

/// Executes a schedule's plan steps: statements with query ids, model builds with cleanup.
pub struct PlanSteps {
    pub plan: Arc<Plan>,
    pub config: Arc<Config>,
    pub warehouse: Warehouse,
    pub runner: Arc<dyn StepRunner>,
    pub recorder: Arc<dyn Recorder>,
    pub clock: Clock,
    /// `--full-refresh`: incremental models are built from scratch (their `full_refresh`
    /// statements) instead of appended to.
    pub full_refresh: bool,
}

/// The note a model rebuilt from scratch gets in the history (`stir.steps.error` of an `ok`).
pub const FULL_REFRESH: &str = "full refresh: rebuilt from scratch into a new table and swapped in";

impl Steps for PlanSteps {
    fn attempt<'a>(&'a self, run: &'a RunCtx) -> BoxFut<'a, Result<(), RunError>> {
        Box::pin(self.attempt_inner(run))
    }

    fn abort<'a>(&'a self, run: &'a RunCtx) -> BoxFut<'a, ()> {
        Box::pin(async move {
            let (running, cleanup) = run.queries.take();
            for q in running {
                match self.warehouse.kill(&q, &format!("{q}-kill")).await {
                    Ok(()) => info!(query_id = %q, "killed"),
                    Err(e) => warn!(query_id = %q, error = %e, "kill failed"),
                }
            }
            // Also what this process does not remember (a step's own queries): every query of
            // the run starts with its id. (The kill's own id must not, or it would count itself.)
            let prefix = crate::run::query_prefix(&self.plan.warehouse.database, &run.run_id);
            if let Err(e) = self
                .warehouse
                .kill_prefix(&prefix, &format!("stir-abort-{}", run.run_id), KILL_WAIT)
                .await
            {
                warn!(run_id = %run.run_id, error = %e, "cannot confirm that the run's queries are gone");
            }
            for (k, sql) in cleanup.iter().enumerate() {
                if let Err(e) = self
                    .warehouse
                    .execute(sql, &format!("{}-abort-{k}", run.run_id))
                    .await
                {
                    warn!(error = %e, "cleanup statement failed");
                }
            }
        })
    }
}

/// Why a step whose reads stir cannot see is skipped: an earlier step of the attempt failed.
fn after_failure(first: &Option<RunError>, u: &Unit) -> Option<String> {
    first.as_ref().map(|e| {
        format!(
            "step `{}` failed before it, and stir cannot see what a {} step reads",
            e.step, u.kind
        )
    })
}

impl PlanSteps {
    /// One attempt: the schedule's steps in order, the models of consecutive `run` steps built
    /// side by side (up to `threads`, each once what it reads in this run is built). A failed
    /// step skips only what reads it (`skipped_upstream`): models reading it directly or
    /// through others, syncs exporting those, requests whose query reads those (through
    /// `ref`; a request whose reads the plan does not know, and one after a failed or skipped
    /// `sql` step, waits on every failure before it), and `sql` steps after any failure
    /// (stir cannot see what they read). Steps kept from an earlier attempt are not run again.
    /// The first failure is the attempt's error.
    async fn attempt_inner(&self, run: &RunCtx) -> Result<(), RunError> {
        let Some(schedule) = self.plan.schedule(&run.schedule) else {
            return Err(RunError {
                step: "-".into(),
                error: StepError::Other(format!("no schedule `{}` in the plan", run.schedule)),
            });
        };
        if schedule.retry_all {
            // `retry=all`: a retry runs every step again, keeping nothing.
            if let Ok(mut k) = run.kept.lock() {
                k.clear();
            }
        }
        let units = units_of(&self.plan, schedule)?;
        let threads = schedule
            .threads
            .unwrap_or(self.plan.warehouse.threads)
            .clamp(1, self.plan.warehouse.threads.max(1)) as usize;
        let mut broken = BTreeSet::<&str>::new();
        let mut first: Option<RunError> = None;
        // Set once a `sql` step failed or was skipped: every request after it is skipped.
        let mut barrier: Option<String> = None;
        let mut i = 0;
        while i < units.len() {
            if matches!(units[i].what, What::Model(_)) {
                let end = units[i..]
                    .iter()
                    .position(|u| !matches!(u.what, What::Model(_)))
                    .map_or(units.len(), |n| i + n);
                self.build_models(run, &units[i..end], threads, &mut broken, &mut first)
                    .await;
                i = end;
                continue;
            }
            let u = &units[i];
            i += 1;
            let upstream = match u.what {
                What::Sync(name) => self
                    .plan
                    .syncs
                    .iter()
                    .find(|x| x.name == name)
                    .filter(|x| broken.contains(x.from.as_str()))
                    .map(|x| format!("model `{}` it exports failed or was skipped", x.from)),
                // A request whose query names its models through `ref` waits only on those,
                // and on any `sql` step before it (stir cannot see what that one changed).
                What::Request(name) => match self
                    .plan
                    .requests
                    .iter()
                    .find(|r| r.name == name)
                    .and_then(|r| r.reads.as_ref())
                {
                    Some(reads) => barrier.clone().or_else(|| {
                        reads
                            .iter()
                            .find(|m| broken.contains(m.as_str()))
                            .map(|m| format!("model `{m}` it reads failed or was skipped"))
                    }),
                    None => after_failure(&first, u),
                },
                _ => after_failure(&first, u),
            };
            if let Some(why) = upstream {
                self.skip(run, u, &why).await;
                if matches!(u.what, What::Sql(_)) {
                    barrier.get_or_insert(format!("the `sql` step before it was skipped ({why})"));
                }
                continue;
            }
            if let Err(e) = self.unit(run, u).await {
                if matches!(u.what, What::Sql(_)) {
                    barrier.get_or_insert(
                        "the `sql` step before it failed, and stir cannot see what that step changed"
                            .into(),
                    );
                }
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Build `models` (consecutive `run` steps' models, dependencies first) with up to
    /// `threads` at once; what fails or is skipped goes into `broken`.
    async fn build_models<'u>(
        &self,
        run: &RunCtx,
        models: &'u [Unit<'u>],
        threads: usize,
        broken: &mut BTreeSet<&'u str>,
        first: &mut Option<RunError>,
    ) {
        let here: BTreeSet<&str> = models.iter().map(|u| u.name).collect();
        let mut done = BTreeSet::<&str>::new();
        let mut pending: Vec<&Unit> = models.iter().collect();
        let mut running = futures_util::stream::FuturesUnordered::new();
        loop {
            while running.len() < threads {
                let Some(pos) = pending.iter().position(|u| {
                    u.deps().iter().all(|d| {
                        !here.contains(d.as_str())
                            || done.contains(d.as_str())
                            || broken.contains(d.as_str())
                    })
                }) else {
                    break;
                };
                let u = pending.remove(pos);
                if let Some(d) = u.deps().iter().find(|d| broken.contains(d.as_str())) {
                    self.skip(
                        run,
                        u,
                        &format!("model `{d}` it reads failed or was skipped"),
                    )
                    .await;
                    broken.insert(u.name);
                    continue;
                }
                running.push(async move { (u, self.unit(run, u).await) });
            }
            let Some((u, result)) = futures_util::StreamExt::next(&mut running).await else {
                break;
            };
            match result {
                Ok(()) => {
                    done.insert(u.name);
                }
                Err(e) => {
                    broken.insert(u.name);
                    first.get_or_insert(e);
                }
            }
        }
    }

    /// Run one unit, or keep it if an earlier attempt of this fire built it.
    async fn unit(&self, run: &RunCtx, u: &Unit<'_>) -> Result<(), RunError> {
        if run.is_kept(u.idx) {
            let now = self.clock.now();
            self.recorder
                .step_started(&run.run_id, u.idx, u.kind, u.name, now)
                .await;
            self.recorder
                .step_finished(&run.run_id, u.idx, now, "kept", Some(KEPT), None)
                .await;
            return Ok(());
        }
        let r = match u.what {
            What::Sql(sql) => {
                self.one_step(run, u.idx, "sql", &short_sql(sql), |ctx| async move {
                    let qid = ctx.query_id(&run.run_id, 0);
                    ctx.queries.begin(&qid);
                    let r = self.warehouse.execute(sql, &qid).await;
                    ctx.queries.end(&qid);
                    r?;
                    Ok(StepOutcome::default())
                })
                .await
            }
            What::Model(model) => {
                self.one_step(run, u.idx, "model", u.name, |ctx| async move {
                    self.build_model(run, &ctx, model).await
                })
                .await
            }
            What::Sync(sync) => {
                self.one_step(run, u.idx, "sync", sync, |ctx| async move {
                    self.runner.run_sync(&ctx, sync, &run.run_id).await
                })
                .await
            }
            What::Request(request) => {
                self.one_step(run, u.idx, "request", request, |ctx| async move {
                    self.runner.run_request(&ctx, request, &run.run_id).await
                })
                .await
            }
        };
        if r.is_ok() {
            run.keep(u.idx);
        }
        r
    }

    /// Record a step that did not run because something it reads failed.
    async fn skip(&self, run: &RunCtx, u: &Unit<'_>, why: &str) {
        info!(schedule = %run.schedule, step = %u.name, "step skipped: {why}");
        let now = self.clock.now();
        self.recorder
            .step_started(&run.run_id, u.idx, u.kind, u.name, now)
            .await;
        self.recorder
            .step_finished(&run.run_id, u.idx, now, "skipped_upstream", Some(why), None)
            .await;
    }

    /// Record, trace and run one step.
    async fn one_step<'a, F, Fut>(
        &'a self,
        run: &'a RunCtx,
        idx: usize,
        kind: &'static str,
        name: &str,
        body: F,
    ) -> Result<(), RunError>
    where
        F: FnOnce(StepCtx) -> Fut,
        Fut: std::future::Future<Output = Result<StepOutcome, StepError>> + 'a,
    {
        let ctx = StepCtx {
            plan: self.plan.clone(),
            config: self.config.clone(),
            warehouse: self.warehouse.clone(),
            schedule: run.schedule.clone(),
            idx,
            queries: run.queries.clone(),
            deadline: run.deadline,
            delivered: run.delivered.clone(),
        };
        run.set_step(idx, Some(name.to_string()));
        self.recorder
            .step_started(&run.run_id, idx, kind, name, self.clock.now())
            .await;
        let span = tracing::info_span!("step", schedule = %run.schedule, step = %name, kind, idx);
        let started = tokio::time::Instant::now();
        let result = body(ctx).instrument(span.clone()).await;
        let ended = self.clock.now();
        match result {
            Ok(outcome) => {
                info!(parent: &span, elapsed_ms = started.elapsed().as_millis() as u64, rows = outcome.rows, note = outcome.note, "step ok");
                self.recorder
                    .step_finished(&run.run_id, idx, ended, "ok", outcome.note, outcome.rows)
                    .await;
                run.set_step(idx, None);
                Ok(())
            }
            Err(error) => {
                run.set_step(idx, None);
                warn!(parent: &span, error = %error, "step failed");
                self.recorder
                    .step_finished(
                        &run.run_id,
                        idx,
                        ended,
                        "failed",
                        Some(&error.to_string()),
                        None,
                    )
                    .await;
                Err(RunError {
                    step: name.to_string(),
                    error,
                })
            }
        }
    }

    /// Build one model. The plan's statements build into `<table>__stir_new` and swap it in,
    /// so a failure leaves the live table as it was; the cleanup statements then drop the
    /// leftovers.
    async fn build_model(
        &self,
        run: &RunCtx,
        ctx: &StepCtx,
        model: &Model,
    ) -> Result<StepOutcome, StepError> {
        ctx.queries.set_cleanup(ctx.idx, model.cleanup.clone());
        let mut n = 0usize;
        let statements: &[String] = match model.materialized {
            Materialized::Incremental if self.full_refresh => {
                if model.full_refresh.is_empty() {
                    return Err(StepError::Other(format!(
                        "the plan has no full-refresh statements for `{}`: write it again with this release's `stir plan`",
                        model.name
                    )));
                }
                &model.full_refresh
            }
            Materialized::Incremental => {
                let qid = ctx.query_id(&run.run_id, n);
                n += 1;
                let exists_sql = model
                    .exists
                    .clone()
                    .unwrap_or_else(|| format!("EXISTS TABLE {}", ch_qualified(&model.table)));
                ctx.queries.begin(&qid);
                let exists = self.warehouse.number(&exists_sql, &qid).await;
                ctx.queries.end(&qid);
                if exists? == 1 {
                    &model.incremental
                } else {
                    &model.first_build
                }
            }
            Materialized::Table | Materialized::View => &model.build,
        };
        for sql in statements {
            let qid = ctx.query_id(&run.run_id, n);
            n += 1;
            ctx.queries.begin(&qid);
            let r = self.warehouse.execute(sql, &qid).await;
            ctx.queries.end(&qid);
            if let Err(e) = r {
                ctx.queries.set_cleanup(ctx.idx, Vec::new());
                for (k, c) in model.cleanup.iter().enumerate() {
                    let cid = format!("{}-c{k}", ctx.query_id(&run.run_id, n));
                    if let Err(ce) = self.warehouse.execute(c, &cid).await {
                        warn!(error = %ce, "cleanup statement failed");
                    }
                }
                return Err(e.into());
            }
        }
        ctx.queries.set_cleanup(ctx.idx, Vec::new());
        let rows = match model.materialized {
            Materialized::View => None,
            _ => {
                let qid = ctx.query_id(&run.run_id, n);
                self.warehouse
                    .number(
                        &format!("SELECT count() FROM {}", ch_qualified(&model.table)),
                        &qid,
                    )
                    .await
                    .ok()
            }
        };
        let refreshed = self.full_refresh && model.materialized == Materialized::Incremental;
        Ok(StepOutcome {
            rows,
            note: refreshed.then_some(FULL_REFRESH),
            ..Default::default()
        })
    }
}

/// The error text of a step kept from an earlier attempt.
const KEPT: &str = "succeeded in an earlier attempt of this fire; not run again";

/// What one step of a schedule does; models of `run` steps are a unit each.
enum What<'p> {
    Model(&'p Model),
    Sql(&'p str),
    Sync(&'p str),
    Request(&'p str),
}

/// One step as the history numbers it.
struct Unit<'p> {
    idx: usize,
    kind: &'static str,
    name: &'p str,
    what: What<'p>,
}

impl Unit<'_> {
    fn deps(&self) -> &[String] {
        match self.what {
            What::Model(m) => &m.deps,
            _ => &[],
        }
    }
}

/// The steps of `schedule`, numbered in order.
fn units_of<'p>(
    plan: &'p Plan,
    schedule: &'p stir_plan::Schedule,
) -> Result<Vec<Unit<'p>>, RunError> {
    let mut units = Vec::new();
    for step in &schedule.steps {
        let idx = units.len();
        match step {
            Step::Sql { sql } => units.push(Unit {
                idx,
                kind: "sql",
                name: sql,
                what: What::Sql(sql),
            }),
            Step::Sync { sync } => units.push(Unit {
                idx,
                kind: "sync",
                name: sync,
                what: What::Sync(sync),
            }),
            Step::Request { request } => units.push(Unit {
                idx,
                kind: "request",
                name: request,
                what: What::Request(request),
            }),
            Step::Run { models } => {
                for name in models {
                    let Some(model) = plan.model(name) else {
                        return Err(RunError {
                            step: name.clone(),
                            error: StepError::Other(format!("no model `{name}` in the plan")),
                        });
                    };
                    let idx = units.len();
                    units.push(Unit {
                        idx,
                        kind: "model",
                        name,
                        what: What::Model(model),
                    });
                }
            }
        }
    }
    Ok(units)
}

/// The first line of a statement, cut to 80 characters (a step name in history).
pub fn short_sql(sql: &str) -> String {
    let line = sql.trim().lines().next().unwrap_or("").trim();
    if line.chars().count() > 80 {
        format!("{}…", line.chars().take(79).collect::<String>())
    } else {
        line.to_string()
    }
}
