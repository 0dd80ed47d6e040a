//! stir-runtime: runs a frozen `plan.json` in production.
//!
//! It reads nothing but the plan and its environment ([`config`]). The pieces, one noun per
//! file: [`scheduler`] (when to fire, pure and clock-driven), [`executor`] (a run: attempts,
//! steps, cleanup), [`warehouse`] (ClickHouse with query ids), [`history`] (PostgreSQL
//! `stir.runs`/`stir.steps`), [`leader`] (advisory-lock election), [`alert`] (Slack webhook),
//! [`metrics`] (Prometheus counters), [`server`] (`/healthz`, `/metrics` and the [`console`]
//! on axum), [`shutdown`] (signals), [`step`] (the extension point
//! for `sync` and `request` steps), [`sync`] (ClickHouse -> S3 -> PostgreSQL, with
//! [`staging`] for the staged file's parts and LZ4 frame and [`s3`] for the bucket),
//! [`request`] (HTTP POST per row), [`reload`] (a new plan on SIGHUP). The leader's loop ([`run_with`], with [`Sweep`] and [`missed_backlog`]),
//! `--once` and `--bootstrap` are below ([`run_once_with`], [`bootstrap_with`]).
//!
//! Invariant: the runtime fires exactly when the compiler's schedule analysis says it does:
//! both use `stir_plan::cron` and `stir_plan::schedule`.

pub mod alert;
pub mod clock;
pub mod config;
pub mod conninfo;
pub mod console;
pub mod dryrun;
pub mod errors;
pub mod executor;
pub mod history;
pub mod leader;
pub mod manual;
pub mod metrics;
pub mod notify;
pub mod redact;
pub mod reload;
pub mod replicas;
pub mod request;
pub mod run;
pub mod runner;
pub mod s3;
pub mod scheduler;
pub mod server;
pub mod shutdown;
pub mod staging;
pub mod step;
pub mod sync;
pub mod tls;
pub mod warehouse;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use stir_plan::file::ReadError;
use stir_plan::signature::{self, PublicKey, VerifyError};
use stir_plan::{Plan, PlanError};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::alert::{Alert, AlertKind, Alerter};
pub use crate::config::Config;
use crate::config::ConfigError;
use crate::executor::Engine;
use crate::history::{Conflict, HistoryError, PgHistory, Recorder};
use crate::metrics::Metrics;
use crate::run::RunStatus;
use crate::run::Tier;
use crate::scheduler::PlanCheckError;
use crate::step::StepRunner;
use crate::warehouse::Warehouse;
use stir_plan::quote::ch_ident;

/// Why the runtime could not run (exit code 2), or a run that did not succeed (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot read plan `{path}`: {reason}")]
    PlanUnreadable { path: String, reason: String },
    #[error("refusing plan `{path}`: {error}{}", help_line(.error))]
    Plan { path: String, error: PlanError },
    #[error("refusing plan `{path}`: {error}{}", help_line(.error))]
    Signature { path: String, error: VerifyError },
    #[error("refusing plan `{path}`: it is the plan of project `{found}`, and this runtime runs only project `{allowed}` (STIR_PROJECT or --project)\nhelp: deploy the plan of project `{allowed}` here; if this host is meant to run `{found}` now, change STIR_PROJECT (or --project)")]
    Project {
        path: String,
        found: String,
        allowed: String,
    },
    #[error(transparent)]
    PlanCheck(#[from] PlanCheckError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error("schedule `{schedule}` is heavy and heavy schedule `{other}` is running now (run `{run_id}`); two heavy runs never overlap\nhelp: wait for it to end (`stir-runtime history --schedule {other}`), or pass --force if that run is known to be dead")]
    HeavyRunning {
        schedule: String,
        other: String,
        run_id: String,
    },
    #[error("bootstrap: cannot ask ClickHouse which models exist: {0}")]
    Bootstrap(String),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
    #[error("schedule `{schedule}` is running now (run `{run_id}`, started {started}); --once, --bootstrap and run do not build beside a running schedule\nhelp: wait for it to end (`stir-runtime history --schedule {schedule}`), or pass --force if that run is known to be dead")]
    AlreadyRunning {
        schedule: String,
        run_id: String,
        started: String,
    },
    #[error("the plan has no sync `{name}`{help}")]
    NoSync { name: String, help: String },
    #[error("cannot confirm the start of run `{run_id}` in the history: {why}; not starting it, so it cannot run twice\nhelp: check that PostgreSQL is reachable and that no other runtime ran the same fire (`stir-runtime history --schedule {schedule}`)")]
    Unconfirmed {
        schedule: String,
        run_id: String,
        why: String,
    },
}

fn help_line(e: &dyn miette::Diagnostic) -> String {
    e.help().map(|h| format!("\nhelp: {h}")).unwrap_or_default()
}

/// Read and verify a plan: its signature when `config` has trusted keys (before anything of
/// it is parsed), its format version and hash, then its project when `config` pins one.
pub fn load_plan(path: &Path, config: &Config) -> Result<Plan, RuntimeError> {
    let shown = path.display().to_string();
    // Bounded like every file stir reads: a regular file, at most `MAX_PLAN_BYTES`.
    let unreadable = |reason: String| RuntimeError::PlanUnreadable {
        path: shown.clone(),
        reason,
    };
    let bytes = stir_plan::file::read_file(path, stir_plan::file::MAX_PLAN_BYTES)
        .map_err(|e| unreadable(format!("it {e}")))?;
    if config.plan_keys.is_empty() {
        warn!("plans are not verified: STIR_PLAN_PUBLIC_KEY is not set, so a plan changed after `stir plan` (with its plan_hash recomputed) would run; see docs/operations.md, \"Signed plans\"");
    } else {
        let signer = verify_signature(path, &bytes, &config.plan_keys)?;
        info!(key = %signer, "plan signature verified");
    }
    let text = String::from_utf8(bytes).map_err(|_| unreadable("it is not UTF-8 text".into()))?;
    let plan = Plan::from_json(&text).map_err(|error| RuntimeError::Plan {
        path: shown.clone(),
        error,
    })?;
    match &config.project {
        Some(allowed) if *allowed != plan.project => Err(RuntimeError::Project {
            path: shown,
            found: plan.project,
            allowed: allowed.clone(),
        }),
        _ => Ok(plan),
    }
}

/// The plan's bytes against `<plan>.sig` and the trusted keys.
fn verify_signature(
    path: &Path,
    bytes: &[u8],
    trusted: &[PublicKey],
) -> Result<PublicKey, RuntimeError> {
    let sig_path = signature::signature_path(path);
    let sig = match stir_plan::file::read_file(&sig_path, signature::MAX_SIGNATURE_BYTES) {
        Ok(s) => Some(s),
        Err(ReadError::NotFound) => None,
        Err(e) => {
            let reason = match e {
                ReadError::TooLarge { limit } => format!("it is larger than {limit} bytes"),
                e => format!("it {e}"),
            };
            return Err(RuntimeError::PlanUnreadable {
                path: sig_path.display().to_string(),
                reason,
            });
        }
    };
    signature::verify(bytes, &sig_path, sig.as_deref(), trusted).map_err(|error| {
        RuntimeError::Signature {
            path: path.display().to_string(),
            error,
        }
    })
}

/// The runner for `sync` and `request` steps. (sync.rs / request.rs plug in here.)
pub fn default_step_runner(_config: &Config) -> Arc<dyn StepRunner> {
    Arc::new(runner::Runner::from_env())
}

/// What callers may swap (tests: metrics to watch leadership, a step runner).
#[derive(Clone, Default)]
pub struct Options {
    pub runner: Option<Arc<dyn StepRunner>>,
    pub metrics: Option<Metrics>,
    pub alerts: Option<Alerter>,
    /// `--once --force`: run even if the history shows a run of the schedule in progress.
    pub force: bool,
    /// Told the run id once a manual run's start is recorded (the console answers then).
    pub claimed: Option<ClaimHook>,
    /// `--full-refresh`: incremental models are rebuilt from scratch.
    pub full_refresh: bool,
    /// Schedules a manual run holds besides its own (`run`: the owners of its models).
    pub holds: Vec<String>,
    /// The leader mode: where a new plan is read from on request (SIGHUP; `reload.rs`).
    pub reload: Option<reload::Source>,
}

/// See [`Options::claimed`]; sent at most once.
pub type ClaimHook = Arc<std::sync::Mutex<Option<tokio::sync::oneshot::Sender<String>>>>;

/// The history, telling a [`ClaimHook`] the id of the first run it records as started.
struct Announce {
    history: Arc<PgHistory>,
    hook: ClaimHook,
}

impl Announce {
    fn tell(&self, run_id: &str) {
        if let Some(tx) = self.hook.lock().ok().and_then(|mut g| g.take()) {
            let _ = tx.send(run_id.to_string());
        }
    }
}

impl Recorder for Announce {
    fn claim_run<'a>(
        &'a self,
        run: &'a history::RunRecord,
        conflicts: &'a [Conflict],
    ) -> step::BoxFut<'a, Option<history::Busy>> {
        Box::pin(async move {
            let busy = self.history.claim_run(run, conflicts).await;
            if busy.is_none() {
                self.tell(&run.id);
            }
            busy
        })
    }
    fn run_started<'a>(&'a self, run: &'a history::RunRecord) -> step::BoxFut<'a, ()> {
        Box::pin(async move {
            self.history.run_started(run).await;
            self.tell(&run.id);
        })
    }
    fn run_finished<'a>(
        &'a self,
        run_id: &'a str,
        at: chrono::DateTime<chrono::Utc>,
        status: &'a str,
        error: Option<&'a str>,
    ) -> step::BoxFut<'a, ()> {
        self.history.run_finished(run_id, at, status, error)
    }
    fn step_started<'a>(
        &'a self,
        run_id: &'a str,
        idx: usize,
        kind: &'a str,
        name: &'a str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> step::BoxFut<'a, ()> {
        self.history.step_started(run_id, idx, kind, name, at)
    }
    fn step_finished<'a>(
        &'a self,
        run_id: &'a str,
        idx: usize,
        at: chrono::DateTime<chrono::Utc>,
        status: &'a str,
        error: Option<&'a str>,
        rows: Option<u64>,
    ) -> step::BoxFut<'a, ()> {
        self.history
            .step_finished(run_id, idx, at, status, error, rows)
    }
    fn skipped<'a>(
        &'a self,
        schedule: &'a str,
        fire: chrono::DateTime<chrono::Utc>,
        status: &'a str,
        reason: &'a str,
        plan_hash: &'a str,
    ) -> step::BoxFut<'a, ()> {
        self.history
            .skipped(schedule, fire, status, reason, plan_hash)
    }
}

pub(crate) struct Parts {
    engine: Arc<Engine>,
    warehouse: Warehouse,
    history: Arc<PgHistory>,
    alerts: Alerter,
    metrics: Metrics,
    /// What every plan of this runtime shares; a reload makes a new generation from it.
    base: Arc<reload::Base>,
    /// The plan as it runs: engine, schedules, alerts (also in the fields above).
    generation: reload::Generation,
}

/// The parts of a runtime; `leader`: for the leader's scheduler (not `--once`/`--bootstrap`).
async fn assemble(
    plan: &Arc<Plan>,
    config: &Arc<Config>,
    options: &Options,
    leader: bool,
    runtime: &str,
) -> Result<Parts, RuntimeError> {
    let pg = config.require_state()?;
    let history = Arc::new(PgHistory::open(pg, &config.history_schema).await?);
    let metrics = options
        .metrics
        .clone()
        .unwrap_or_else(|| Metrics::new(&plan.plan_hash));
    metrics.set_plan(&plan.plan_hash);
    let runner = options
        .runner
        .clone()
        .unwrap_or_else(|| default_step_runner(config));
    let recorder: Arc<dyn Recorder> = match &options.claimed {
        Some(hook) => Arc::new(Announce {
            history: history.clone(),
            hook: hook.clone(),
        }),
        None => history.clone(),
    };
    let base = Arc::new(reload::Base {
        history: history.clone(),
        metrics: metrics.clone(),
        alerts: options.alerts.clone(),
        runner,
        recorder,
        leader,
        runtime: runtime.to_string(),
        full_refresh: options.full_refresh,
        holds: options.holds.clone(),
    });
    let generation = base.generation(plan.clone(), config.clone())?;
    Ok(Parts {
        engine: generation.stage.engine.clone(),
        warehouse: generation.warehouse.clone(),
        history,
        alerts: generation.alerts.clone(),
        metrics,
        base,
        generation,
    })
}

/// The parts of a manual run (`--once`, `--bootstrap`): not the leader's.
pub(crate) async fn assemble_manual(
    plan: Plan,
    config: Config,
    options: &Options,
) -> Result<Parts, RuntimeError> {
    let instance = leader::instance_id();
    assemble(
        &Arc::new(plan),
        &Arc::new(config),
        options,
        false,
        &instance,
    )
    .await
}

/// Run the plan until `shutdown` resolves: elect a leader, fire schedules, record history.
pub async fn run(
    plan: Plan,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RuntimeError> {
    run_with(plan, config, shutdown, Options::default()).await
}

pub async fn run_with(
    plan: Plan,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    options: Options,
) -> Result<(), RuntimeError> {
    // The process's root in the cancellation tree (docs/ARCHITECTURE.md, "Cancellation").
    let stop = CancellationToken::new();
    shutdown::cancel_on(shutdown, &stop, lead(plan, config, options, stop.clone())).await
}

/// [`run_with`] until `stop` is cancelled.
async fn lead(
    plan: Plan,
    config: Config,
    options: Options,
    stop: CancellationToken,
) -> Result<(), RuntimeError> {
    let (zone, _) = scheduler::prepare(&plan)?;
    let plan = Arc::new(plan);
    let config = Arc::new(config);
    info!(plan_hash = %plan.plan_hash, project = %plan.project, timezone = %zone, config = ?config, "stir-runtime starting");
    let instance = leader::instance_id();
    let parts = assemble(&plan, &config, &options, true, &instance).await?;
    let (generations_tx, generations) = watch::channel(Arc::new(parts.generation));
    // The console starts manual runs with the leader's options and the running plan's alerts.
    let console_options = {
        let (metrics, options) = (parts.metrics.clone(), options.clone());
        move |alerts: &Alerter| Options {
            metrics: Some(metrics.clone()),
            alerts: Some(alerts.clone()),
            force: false,
            claimed: None,
            reload: None,
            ..options.clone()
        }
    };
    let mut consoles = None;
    let _server = match config.listen {
        Some(addr) => {
            let console = console::Console::new(console::Setup {
                plan: plan.clone(),
                config: config.clone(),
                history: parts.history.clone(),
                metrics: parts.metrics.clone(),
                options: console_options(&parts.alerts),
                instance: instance.clone(),
                stop: stop.clone(),
            })?;
            let slot = console::Consoles::from(console);
            consoles = Some(slot.clone());
            Some(
                server::serve(addr, parts.metrics.clone(), Some(slot))
                    .await
                    .map_err(|e| RuntimeError::Listen {
                        addr: addr.to_string(),
                        reason: e.to_string(),
                    })?,
            )
        }
        None => None,
    };
    // Reloads are taken while leading and while following alike.
    let reloader = options.reload.clone().map(|source| {
        let console_options = console_options.clone();
        let on_accept = move |g: &reload::Generation| {
            if let Some(c) = &consoles {
                c.replace(g.plan.clone(), g.config.clone(), console_options(&g.alerts));
            }
        };
        tokio::spawn(
            reload::Reloader {
                source,
                base: parts.base.clone(),
                generations: generations_tx,
                on_accept: Some(Box::new(on_accept)),
            }
            .run(),
        )
    });
    let pg = config.require_state()?.to_string();
    // Leading and following alike: which plan each live replica runs.
    let replicas = tokio::spawn(replicas::watch(
        parts.history.clone(),
        instance.clone(),
        generations.clone(),
        parts.metrics.clone(),
        config.leader_poll,
    ));
    let key = leader::lock_key(&config.history_schema);
    let instance_key = leader::instance_key(&config.history_schema, &instance);
    info!(%instance, "runtime instance");
    loop {
        let Some(leader) = leader::acquire(&pg, key, instance_key, config.leader_poll, &stop).await
        else {
            break;
        };
        parts.metrics.set_leader(true);
        let g = generations.borrow().clone();
        clean_leftovers(&g.warehouse, &g.plan.warehouse.database).await;
        let mut seen = std::collections::BTreeMap::new();
        reload::merge_tiers(&mut seen, &g.stage.tiers);
        let sweep = Sweep {
            history: parts.history.clone(),
            warehouse: g.warehouse.clone(),
            tiers: seen.values().cloned().collect(),
            alerts: g.alerts.clone(),
            notify: g.stage.engine.notify.clone(),
            own: instance.clone(),
            database: g.plan.warehouse.database.clone(),
        };
        // Orphans of a runtime that is gone are killed before anything fires.
        sweep.run(chrono::Utc::now()).await;
        let backlog = missed_backlog(
            &parts.history,
            &g.stage.zone,
            &g.stage.tiers,
            chrono::Utc::now(),
        )
        .await;
        let mut freshness = Freshness::new(
            parts.history.clone(),
            g.plan.clone(),
            parts.metrics.clone(),
            g.alerts.clone(),
            chrono::Utc::now(),
        );
        let sweeper = {
            let mut sweep = sweep.clone();
            let mut generations = generations.clone();
            tokio::spawn(async move {
                loop {
                    freshness.check(chrono::Utc::now()).await;
                    tokio::time::sleep(LOST_SWEEP).await;
                    if generations.has_changed().unwrap_or(false) {
                        // A reloaded plan: its models and alerts; a draining run of the
                        // old plan keeps the longer of its two timeouts.
                        let g = generations.borrow_and_update().clone();
                        reload::merge_tiers(&mut seen, &g.stage.tiers);
                        sweep.tiers = seen.values().cloned().collect();
                        sweep.alerts = g.alerts.clone();
                        sweep.warehouse = g.warehouse.clone();
                        freshness.plan = g.plan.clone();
                        freshness.alerts = g.alerts.clone();
                    }
                    sweep.run(chrono::Utc::now()).await;
                }
            })
        };
        let succession = reload::Succession::new(generations.clone(), leader.confirmed());
        let mut stopped_firing = succession.stopped_firing();
        // This term's branch hangs below the lock session: losing the session cancels every
        // run of the term at once; a shutdown stops its firing here, and its runs after the
        // grace period.
        let term = scheduler::Branch::under(leader.term());
        let mut serving = tokio::spawn(succession.serve_until(term.clone(), config.grace, backlog));
        let mut finished = None;
        let mut lost = tokio::select! {
            _ = stop.cancelled() => false,
            _ = leader.lost() => true,
        };
        if lost {
            error!("leadership lost: cancelling running work, becoming a follower");
        }
        term.firing.cancel();
        if !lost {
            // Draining: hand the lock over as soon as nothing fires here any more, so another
            // replica fires on time; the instance lock stays until the running work ends.
            // (Its sender gone: nothing fires there either.)
            let _ = stopped_firing.wait_for(|s| *s).await;
            leader.hand_over(key).await;
            parts.metrics.set_leader(false);
            tokio::select! {
                r = &mut serving => {
                    finished = Some(r);
                }
                _ = leader.lost() => {
                    // The instance lock is gone with the session: the new leader may kill
                    // this runtime's queries as orphans. Stop first.
                    error!("leader session lost while draining: cancelling running work");
                    lost = true;
                }
            }
        }
        let result = match finished {
            Some(r) => r,
            None => serving.await,
        };
        if let Err(e) = result {
            warn!(error = %e, "scheduler task ended abnormally");
        }
        sweeper.abort();
        parts.metrics.set_leader(false);
        if !lost || stop.is_cancelled() {
            leader.release().await;
            break;
        }
        // Give a healthy follower two polls to take over before competing again.
        tokio::select! {
            _ = tokio::time::sleep(config.leader_poll * 2) => {}
            _ = stop.cancelled() => break,
        }
    }
    if let Some(r) = reloader {
        r.abort();
    }
    replicas.abort();
    let last = generations.borrow().alerts.clone();
    last.flush(Duration::from_secs(10)).await;
    parts.alerts.flush(Duration::from_secs(10)).await;
    info!("stir-runtime stopped");
    Ok(())
}

/// How far back a new leader looks for fires nobody ran.
const BACKLOG_LOOKBACK: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// The fires of each enabled schedule after the newest fire the history has of it (run or
/// skipped) up to `now`, blackouts aside: fires due while no runtime led. A schedule the
/// history has never seen has none (a new deployment does not replay the past).
pub async fn missed_backlog(
    history: &PgHistory,
    zone: &stir_plan::schedule::Zone,
    tiers: &[Tier],
    now: chrono::DateTime<chrono::Utc>,
) -> scheduler::Backlog {
    let mut backlog = scheduler::Backlog::new();
    for tier in tiers.iter().filter(|t| t.enabled) {
        let last = match history.last_fire(&tier.name).await {
            Ok(Some(t)) => t.max(now - BACKLOG_LOOKBACK),
            Ok(None) => continue,
            Err(e) => {
                warn!(schedule = %tier.name, error = %e, "cannot read the history for missed fires");
                continue;
            }
        };
        let mut fires = Vec::new();
        let mut at = last;
        while let Some((t, blackout)) = scheduler::next_event(zone, tier, at) {
            if t > now {
                break;
            }
            if !blackout {
                fires.push(t);
            }
            at = t;
        }
        if !fires.is_empty() {
            backlog.insert(tier.name.clone(), fires);
        }
    }
    backlog
}

/// How long past its schedule's timeout a row still marked running may be a live run
/// (cancelling at the deadline and cleaning up take up to a few minutes).
const LOST_MARGIN: Duration = Duration::from_secs(600);
/// The same for runs of schedules the plan does not have (`@bootstrap`, removed schedules).
const LOST_OTHERS: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often the leader looks for lost runs.
const LOST_SWEEP: Duration = Duration::from_secs(60);
/// How long the sweep waits for ClickHouse to confirm an orphan's queries are gone.
const KILL_WAIT: Duration = Duration::from_secs(30);

/// The leader's look for runs whose process ended without recording their end (killed,
/// crashed, or cut off from PostgreSQL), at takeover and every [`LOST_SWEEP`].
#[derive(Clone)]
pub struct Sweep {
    pub history: Arc<PgHistory>,
    pub warehouse: Warehouse,
    pub tiers: Arc<[Tier]>,
    pub alerts: Alerter,
    /// A lost run is a failed run of its schedule: it counts in the failing streak, so a
    /// schedule whose runs keep getting lost alerts once, then "still failing", then
    /// "recovered", like any other failure.
    pub notify: Arc<notify::Notifier>,
    /// This runtime: its own runs are never orphans.
    pub own: String,
    /// The warehouse database: the lost runs' queries are this deployment's
    /// ([`run::query_prefix`]).
    pub database: String,
}

impl Sweep {
    /// Kill the queries of every orphaned run (by its run id, the prefix of all its query
    /// ids, on every replica) and only then mark it `lost` and alert once: a run stays
    /// `running`, and so keeps its schedule and the heavy slot taken, until ClickHouse
    /// confirms none of its queries runs. Orphans are runs past their schedule's timeout and
    /// a margin, and leader runs of a runtime whose instance lock is free (it is gone).
    pub async fn run(&self, now: chrono::DateTime<chrono::Utc>) {
        let before: Vec<(String, chrono::DateTime<chrono::Utc>)> = self
            .tiers
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    scheduler::counts_since(now, t.timeout + LOST_MARGIN),
                )
            })
            .collect();
        let others = scheduler::counts_since(now, LOST_OTHERS);
        let suspects = match self.history.suspects(&before, others, &self.own).await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "cannot look for lost runs in the history");
                return;
            }
        };
        let mut gone = std::collections::BTreeMap::<String, bool>::new();
        for (i, run) in suspects.iter().enumerate() {
            let why = if run.overdue {
                history::LOST_ERROR.to_string()
            } else {
                let Some(rt) = &run.runtime else { continue };
                if !gone.contains_key(rt) {
                    // Fail closed: a runtime whose liveness cannot be read counts as alive.
                    let dead = match self.history.runtime_alive(rt).await {
                        Ok(alive) => !alive,
                        Err(e) => {
                            warn!(runtime = %rt, error = %e, "cannot tell whether a runtime is alive");
                            false
                        }
                    };
                    gone.insert(rt.clone(), dead);
                }
                if !gone[rt] {
                    continue;
                }
                format!("{LOST_BY_RUNTIME} (runtime `{rt}`)")
            };
            let prefix = run::query_prefix(&self.database, &run.run_id);
            if let Err(e) = self
                .warehouse
                .kill_prefix(&prefix, &format!("stir-sweep-kill-{i}"), KILL_WAIT)
                .await
            {
                warn!(run_id = %run.run_id, error = %e, "cannot confirm that a lost run's queries are killed; it stays running until they are");
                continue;
            }
            match self.history.mark_lost(&run.run_id, &why).await {
                Ok(true) => {
                    warn!(schedule = %run.schedule, run_id = %run.run_id, "run lost: {why}");
                    let alert = Alert::new(AlertKind::Lost, &run.schedule, &run.run_id, run.fire)
                        .error(&why);
                    self.notify
                        .run_ended(
                            &self.alerts,
                            &run.schedule,
                            &run.run_id,
                            run.fire,
                            notify::Ended::Failed(alert),
                        )
                        .await;
                }
                Ok(false) => {}
                Err(e) => warn!(run_id = %run.run_id, error = %e, "cannot mark a run lost"),
            }
        }
    }
}

/// The leader's watch over `freshness`: each model's last successful build (from the
/// history, whichever process built it) is exported as `stir_model_last_success_timestamp`,
/// and a model older than its freshness is alerted once, until a build makes it fresh again.
/// A model never built counts from when this runtime began to lead.
pub struct Freshness {
    history: Arc<PgHistory>,
    plan: Arc<Plan>,
    metrics: Metrics,
    alerts: Alerter,
    since: chrono::DateTime<chrono::Utc>,
    stale: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl Freshness {
    pub fn new(
        history: Arc<PgHistory>,
        plan: Arc<Plan>,
        metrics: Metrics,
        alerts: Alerter,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Freshness {
        Freshness {
            history,
            plan,
            metrics,
            alerts,
            since,
            stale: Default::default(),
        }
    }

    /// One look; answers the models that became stale now (each alerted).
    pub async fn check(&self, now: chrono::DateTime<chrono::Utc>) -> Vec<String> {
        let built: std::collections::BTreeMap<String, chrono::DateTime<chrono::Utc>> =
            match self.history.last_builds().await {
                Ok(b) => b.into_iter().collect(),
                Err(e) => {
                    warn!(error = %e, "cannot read the models' last builds");
                    return Vec::new();
                }
            };
        let mut newly = Vec::new();
        for m in &self.plan.models {
            let last = built.get(&m.name).copied();
            if let Some(t) = last {
                self.metrics.model_success(&m.name, t.timestamp());
            }
            let Some(limit) = m.freshness_secs else {
                continue;
            };
            let age = now - last.unwrap_or(self.since);
            let is_stale = age > chrono::TimeDelta::seconds(limit as i64);
            let Ok(mut stale) = self.stale.lock() else {
                continue;
            };
            if !is_stale {
                stale.remove(&m.name);
                continue;
            }
            if !stale.insert(m.name.clone()) {
                continue;
            }
            let error = match last {
                Some(t) => format!(
                    "model `{}` was last built {} ago ({t}); its freshness is {}",
                    m.name,
                    executor::humanize(age.to_std().unwrap_or_default()),
                    executor::humanize(Duration::from_secs(limit))
                ),
                None => format!(
                    "model `{}` has no successful build in the history; its freshness is {}",
                    m.name,
                    executor::humanize(Duration::from_secs(limit))
                ),
            };
            warn!(model = %m.name, "{error}");
            let owner = self
                .plan
                .schedules
                .iter()
                .find(|s| s.steps.iter().any(|st| matches!(st, stir_plan::Step::Run { models } if models.contains(&m.name))))
                .map_or("-", |s| s.name.as_str());
            self.alerts
                .send(Alert::new(AlertKind::Stale, owner, &m.name, now).error(&error));
            newly.push(m.name.clone());
        }
        newly
    }
}

/// `stir-runtime history --models`: each model's last successful build and age, with its
/// freshness and state when the plan is given.
pub async fn model_ages(
    config: &Config,
    plan: Option<&Plan>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String, RuntimeError> {
    let pg = config.require_state()?;
    let h = PgHistory::open(pg, &config.history_schema).await?;
    let built: std::collections::BTreeMap<String, chrono::DateTime<chrono::Utc>> =
        h.last_builds().await?.into_iter().collect();
    let names: std::collections::BTreeSet<String> = match plan {
        Some(p) => p.models.iter().map(|m| m.name.clone()).collect(),
        None => built.keys().cloned().collect(),
    };
    let mut rows =
        vec![["MODEL", "LAST SUCCESS (UTC)", "AGE", "FRESHNESS", "STATE"].map(String::from)];
    for name in names {
        let last = built.get(&name);
        let limit = plan
            .and_then(|p| p.model(&name))
            .and_then(|m| m.freshness_secs);
        let age = last.map(|t| (now - *t).to_std().unwrap_or_default());
        let state = match (age, limit) {
            (None, _) => "never built",
            (Some(a), Some(l)) if a > Duration::from_secs(l) => "STALE",
            (Some(_), Some(_)) => "fresh",
            (Some(_), None) => "-",
        };
        rows.push([
            name,
            last.map_or("-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
            age.map_or("-".into(), executor::humanize),
            limit.map_or("-".into(), |l| executor::humanize(Duration::from_secs(l))),
            state.to_string(),
        ]);
    }
    Ok(history::format_columns(&rows))
}

/// The error of a leader run whose runtime is gone.
pub const LOST_BY_RUNTIME: &str = "the runtime running it is gone (its PostgreSQL session ended, so it no longer holds its instance lock); its ClickHouse queries were killed";

/// Drop every `*__stir_new` table: what a crashed run left behind.
pub async fn clean_leftovers(warehouse: &Warehouse, database: &str) {
    match warehouse
        .leftovers(database, "stir-startup-leftovers")
        .await
    {
        Ok(names) => {
            for (i, name) in names.iter().enumerate() {
                let sql = format!(
                    "DROP TABLE IF EXISTS {}.{}",
                    ch_ident(database),
                    ch_ident(name)
                );
                match warehouse
                    .execute(&sql, &format!("stir-startup-drop-{i}"))
                    .await
                {
                    Ok(()) => info!(table = %name, "dropped leftover of a crashed run"),
                    Err(e) => warn!(table = %name, error = %e, "could not drop leftover"),
                }
            }
        }
        Err(e) => warn!(error = %e, "could not list leftovers of crashed runs"),
    }
}

/// `--once SCHEDULE`: run one schedule now, wait for its alerts, return its status.
pub async fn run_once(
    plan: Plan,
    config: Config,
    schedule: &str,
) -> Result<RunStatus, RuntimeError> {
    run_once_with(
        plan,
        config,
        schedule,
        Options::default(),
        std::future::pending(),
    )
    .await
}

pub async fn run_once_with(
    plan: Plan,
    config: Config,
    schedule: &str,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<RunStatus, RuntimeError> {
    let (_zone, tiers) = scheduler::prepare(&plan)?;
    let tiers: Vec<Arc<scheduler::Tier>> = tiers.into_iter().map(Arc::new).collect();
    let tier = tiers
        .iter()
        .find(|t| t.name == schedule)
        .cloned()
        .ok_or_else(|| PlanCheckError::NoSchedule(schedule.to_string()))?;
    if !tier.enabled {
        warn!(
            schedule,
            "schedule is disabled in the plan; running it anyway (--once)"
        );
    }
    // At most one active run per schedule, and no two heavy runs at once, hold for manual
    // runs too: the leader (or another --once) may be running.
    let mut guard = Vec::new();
    if !options.force {
        let now = chrono::Utc::now();
        guard.push(Conflict::any(
            schedule,
            scheduler::counts_since(now, tier.timeout),
        ));
        if tier.heavy {
            guard.extend(scheduler::heavy_windows(&tiers, schedule, now, None));
        }
    }
    let parts = assemble_manual(plan, config, &options).await?;
    drive_manual(&parts, &tier, &guard, shutdown).await
}

/// Run a manual (`--once`, `--bootstrap`) run of `tier` now, unless one of `guard` is running:
/// read strictly first, for a clear refusal when the history cannot be read; then the run's
/// start checks again and records itself in one step, so two processes cannot both pass.
async fn drive_manual(
    parts: &Parts,
    tier: &scheduler::Tier,
    guard: &[Conflict],
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<RunStatus, RuntimeError> {
    let refuse = |busy| busy_error(&tier.name, busy);
    drive_manual_with(parts, tier, guard, shutdown, &refuse).await
}

/// [`drive_manual`] with the refusal `refuse` makes of a busy run.
pub(crate) async fn drive_manual_with<E: From<RuntimeError>>(
    parts: &Parts,
    tier: &scheduler::Tier,
    guard: &[Conflict],
    shutdown: impl Future<Output = ()> + Send + 'static,
    refuse: &(dyn Fn(history::Busy) -> E + Sync),
) -> Result<RunStatus, E> {
    let active = parts
        .history
        .active_among(guard)
        .await
        .map_err(|e| E::from(e.into()))?;
    if let Some(busy) = active {
        return Err(refuse(busy));
    }
    // A manual run is a root of its own, cancelled by its process's shutdown.
    let cancel = CancellationToken::new();
    let fire = parts.engine.clock.now();
    let run = parts
        .engine
        .drive_guarded(tier, fire, cancel.clone(), guard);
    let status = shutdown::cancel_on(shutdown, &cancel, run)
        .await
        .map_err(refuse)?;
    parts.alerts.flush(Duration::from_secs(30)).await;
    Ok(status)
}

/// The refusal of a manual run of `schedule` because `busy` is running.
pub(crate) fn busy_error(schedule: &str, busy: history::Busy) -> RuntimeError {
    if let Some(why) = busy.unconfirmed {
        RuntimeError::Unconfirmed {
            schedule: schedule.to_string(),
            run_id: busy.run_id,
            why,
        }
    } else if busy.schedule == schedule || schedule == BOOTSTRAP {
        RuntimeError::AlreadyRunning {
            schedule: busy.schedule,
            run_id: busy.run_id,
            started: busy.started.map_or_else(
                || "just now".to_string(),
                |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            ),
        }
    } else {
        RuntimeError::HeavyRunning {
            schedule: schedule.to_string(),
            other: busy.schedule,
            run_id: busy.run_id,
        }
    }
}

/// The name `--bootstrap` runs and records under (no manifest name starts with `@`).
pub const BOOTSTRAP: &str = "@bootstrap";

/// What `--bootstrap` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bootstrapped {
    /// `None` when every model already existed (nothing ran).
    pub status: Option<RunStatus>,
    /// The models it built (or tried to), dependencies first.
    pub models: Vec<String>,
}

/// `--bootstrap`: build every model of the plan whose table does not exist yet, dependencies
/// first, as one recorded run named [`BOOTSTRAP`]; existing tables are not touched. What a new
/// warehouse needs before its schedules run (schedules may read each other's models, so no
/// order of schedules can start it), and what a model added to the plan needs before the
/// schedules that read it fire ahead of its owner. Incremental models get their first build.
pub async fn bootstrap_with(
    plan: Plan,
    config: Config,
    options: Options,
    timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Bootstrapped, RuntimeError> {
    let (_zone, tiers) = scheduler::prepare(&plan)?;
    let warehouse = Warehouse::new(&config);
    // A new user's first deploy: the database itself may not exist yet.
    let create = create_database_sql(&plan.warehouse.database, plan.warehouse.cluster.as_deref());
    warehouse
        .execute(&create, "stir-bootstrap-database")
        .await
        .map_err(|e| RuntimeError::Bootstrap(e.to_string()))?;
    let mut missing = std::collections::BTreeSet::new();
    for (i, m) in plan.models.iter().enumerate() {
        let exists = warehouse
            .number(
                &format!("EXISTS TABLE {}", m.table),
                &format!("stir-bootstrap-exists-{i}"),
            )
            .await
            .map_err(|e| RuntimeError::Bootstrap(e.to_string()))?;
        if exists == 0 {
            missing.insert(m.name.clone());
        }
    }
    // Dependencies first; existing dependencies are not rebuilt.
    let mut order = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    fn visit(
        plan: &Plan,
        name: &str,
        missing: &std::collections::BTreeSet<String>,
        seen: &mut std::collections::BTreeSet<String>,
        order: &mut Vec<String>,
    ) {
        if !missing.contains(name) || !seen.insert(name.to_string()) {
            return;
        }
        if let Some(m) = plan.model(name) {
            for d in &m.deps {
                visit(plan, d, missing, seen, order);
            }
        }
        order.push(name.to_string());
    }
    for name in &missing {
        visit(&plan, name, &missing, &mut seen, &mut order);
    }
    if order.is_empty() {
        info!("bootstrap: every model of the plan exists; nothing to build");
        return Ok(Bootstrapped {
            status: None,
            models: order,
        });
    }
    // Not beside any running schedule.
    let now = chrono::Utc::now();
    let guard: Vec<Conflict> = if options.force {
        Vec::new()
    } else {
        tiers
            .iter()
            .map(|t| Conflict::any(&t.name, scheduler::counts_since(now, t.timeout)))
            .collect()
    };
    info!(models = ?order, "bootstrap: the models that do not exist yet");
    let mut plan = plan;
    let tier = add_manual_schedule(&mut plan, BOOTSTRAP, true, timeout, order.clone());
    let parts = assemble_manual(plan, config, &options).await?;
    let status = drive_manual(&parts, &tier, &guard, shutdown).await?;
    Ok(Bootstrapped {
        status: Some(status),
        models: order,
    })
}

/// Add to `plan` a schedule named `name` (an `@` name no manifest can declare) that builds
/// `models` in that order once, with the plan's threads and no retry: how `--bootstrap` and
/// `run` drive the schedules' own executor. Answers its tier.
pub(crate) fn add_manual_schedule(
    plan: &mut Plan,
    name: &str,
    heavy: bool,
    timeout: Duration,
    models: Vec<String>,
) -> scheduler::Tier {
    const NEVER: &str = "0 0 1 1 *";
    plan.schedules.push(stir_plan::Schedule {
        name: name.into(),
        cron: NEVER.into(),
        timeout_secs: timeout.as_secs(),
        heavy,
        enabled: true,
        retries: 0,
        retry_all: false,
        on_missed: stir_plan::OnMissed::Skip,
        threads: None,
        notify: None,
        skip: Vec::new(),
        steps: vec![stir_plan::Step::Run { models }],
    });
    scheduler::Tier {
        name: name.into(),
        cron: stir_plan::cron::Cron::parse(NEVER).expect("a valid cron"),
        skip: Vec::new(),
        timeout,
        heavy,
        retries: 0,
        enabled: true,
        on_missed: stir_plan::OnMissed::Skip,
    }
}

/// The name rollbacks are recorded under in the history (no manifest name starts with `@`).
pub const ROLLBACK: &str = "@rollback";

/// `stir-runtime plan.json rollback SYNC`: swap the sync's backup back in (docs/operations.md,
/// "Rollback"), recorded in the history as a run of [`ROLLBACK`] with one `rollback` step, and
/// alerted either way. Answers the rows now live, or why nothing was rolled back (exit 1);
/// an error is a bad invocation or an unreachable history (exit 2).
pub async fn rollback_with(
    plan: Plan,
    config: Config,
    sync: &str,
    allow_shrink: bool,
    timeout: Duration,
    options: Options,
) -> Result<Result<u64, String>, RuntimeError> {
    if plan.syncs.iter().all(|s| s.name != sync) {
        let names: Vec<&str> = plan.syncs.iter().map(|s| s.name.as_str()).collect();
        let help = match stir_plan::did_you_mean(sync, names.iter().copied()) {
            Some(m) => format!("\nhelp: {m}"),
            None if names.is_empty() => "\nhelp: the plan has no syncs".to_string(),
            None => format!("\nhelp: its syncs are {}", names.join(", ")),
        };
        return Err(RuntimeError::NoSync {
            name: sync.to_string(),
            help,
        });
    }
    let (plan, config) = (Arc::new(plan), Arc::new(config));
    let instance = leader::instance_id();
    let parts = assemble(&plan, &config, &options, false, &instance).await?;
    let runner = options
        .runner
        .clone()
        .unwrap_or_else(|| default_step_runner(&config));
    let now = chrono::Utc::now();
    let run_id = format!("{ROLLBACK}-{sync}-{}", now.format("%Y%m%dT%H%M%S%3fZ"));
    let record = history::RunRecord {
        id: run_id.clone(),
        schedule: ROLLBACK.into(),
        fire_time: now,
        started_at: now,
        plan_hash: plan.plan_hash.clone(),
        attempt: 1,
        by_leader: false,
        runtime: instance,
        holds: Vec::new(),
        deadline: None,
        heavy: false,
    };
    let h: &dyn Recorder = parts.history.as_ref();
    h.run_started(&record).await;
    h.step_started(&run_id, 0, "rollback", sync, now).await;
    let ctx = step::StepCtx {
        plan: plan.clone(),
        config: config.clone(),
        warehouse: parts.warehouse.clone(),
        schedule: ROLLBACK.into(),
        idx: 0,
        queries: Default::default(),
        deadline: Some(tokio::time::Instant::now() + timeout),
        delivered: Default::default(),
    };
    let result = match tokio::time::timeout(
        timeout,
        runner.run_rollback(&ctx, sync, &run_id, allow_shrink),
    )
    .await
    {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!(
            "rollback of sync `{sync}`: not done within {}; PostgreSQL rolled back what was not committed",
            executor::humanize(timeout)
        )),
    };
    let end = chrono::Utc::now();
    let (status, error, rows) = match &result {
        Ok(o) => ("ok", None, o.rows),
        Err(e) => ("failed", Some(e.as_str()), None),
    };
    h.step_finished(&run_id, 0, end, status, error, rows).await;
    h.run_finished(&run_id, end, status, error).await;
    let kind = match result {
        Ok(_) => AlertKind::RolledBack,
        Err(_) => AlertKind::RollbackFailed,
    };
    let mut alert = Alert::new(kind, ROLLBACK, &run_id, now).step(sync);
    if let Some(e) = error {
        alert = alert.error(e);
    }
    parts.alerts.send(alert);
    parts.alerts.flush(Duration::from_secs(30)).await;
    Ok(result.map(|o| o.rows.unwrap_or(0)))
}

/// `CREATE DATABASE IF NOT EXISTS db [ON CLUSTER c]`.
pub fn create_database_sql(database: &str, cluster: Option<&str>) -> String {
    let on = cluster
        .map(|c| format!(" ON CLUSTER {}", ch_ident(c)))
        .unwrap_or_default();
    format!("CREATE DATABASE IF NOT EXISTS {}{on}", ch_ident(database))
}

/// `stir-runtime history`: recent runs as a table.
pub async fn history_table(
    config: &Config,
    limit: i64,
    schedule: Option<&str>,
) -> Result<String, RuntimeError> {
    let pg = config.require_state()?;
    let h = PgHistory::open(pg, &config.history_schema).await?;
    let rows = h.recent(limit, schedule).await?;
    Ok(history::format_table(&rows))
}
