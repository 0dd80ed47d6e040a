//! A new plan without a restart: on SIGHUP the long-running runtime reads its plan file again
//! (and its signature), checks it exactly as at start, and either takes it or keeps the old one.
//!
//! - Refused (unreadable, not a plan, wrong format or hash, bad or missing signature, another
//!   project, a missing target or webhook variable, a cron it cannot read): the old plan goes
//!   on; the refusal is logged, alerted, counted (`stir_plan_reloads_total{result="refused"}`,
//!   `stir_plan_reload_failed 1`) and shown by `/healthz` (`"last_reload":"refused"`).
//! - Accepted: every schedule fires from the new plan from its next fire on, and runs already
//!   going finish under the old one ([`Succession`]: the old scheduler is handed over, not
//!   stopped). Both share which schedules run here, so a draining run keeps its schedule and
//!   the heavy slot taken exactly as within one plan.
//! - A follower takes the new plan too (the reloader runs beside the leader loop), and leads
//!   with it.
//!
//! The same bytes again (a habitual reload) change nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use stir_plan::schedule::Zone;
use stir_plan::Plan;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::alert::{Alert, AlertKind, Alerter};
use crate::config::Config;
use crate::executor::{Engine, PlanSteps};
use crate::history::{PgHistory, Recorder};
use crate::metrics::Metrics;
use crate::run::Tier;
use crate::scheduler::{self, Backlog, Branch, FireHook, PlanCheckError, Scheduler};
use crate::step::StepRunner;
use crate::warehouse::Warehouse;
use crate::RuntimeError;

/// Where a reloaded plan comes from: the plan file the runtime was started with, read again
/// each time `requests` changes (SIGHUP, or a test).
#[derive(Clone)]
pub struct Source {
    pub path: PathBuf,
    pub requests: watch::Receiver<u64>,
}

impl Source {
    /// Reload `path` on every SIGHUP. Installed at once, so a SIGHUP from now on never ends
    /// the process.
    pub fn on_sighup(path: PathBuf) -> Source {
        Source {
            path,
            requests: crate::shutdown::hangups(),
        }
    }

    /// Reload `path` whenever the returned sender is bumped (tests).
    pub fn manual(path: PathBuf) -> (Source, watch::Sender<u64>) {
        let (tx, requests) = watch::channel(0);
        (Source { path, requests }, tx)
    }
}

/// What schedulers need of a plan: the engine that runs it, its zone and schedules.
pub struct Stage {
    pub engine: Arc<Engine>,
    pub zone: Zone,
    pub tiers: Vec<Tier>,
}

impl AsRef<Stage> for Stage {
    fn as_ref(&self) -> &Stage {
        self
    }
}

/// A plan the runtime runs, ready: its engine and schedules, the alerter routed by its
/// `notify`, the ClickHouse client for its cluster, its configuration (its targets and
/// webhooks read from the environment).
pub struct Generation {
    pub plan: Arc<Plan>,
    pub config: Arc<Config>,
    pub stage: Stage,
    pub alerts: Alerter,
    pub warehouse: Warehouse,
}

impl AsRef<Stage> for Generation {
    fn as_ref(&self) -> &Stage {
        &self.stage
    }
}

/// What every plan of one runtime shares: its history, metrics, step runner, recorder.
pub struct Base {
    pub history: Arc<PgHistory>,
    pub metrics: Metrics,
    /// Alerts given by the caller (tests); else each plan gets webhooks from its config.
    pub alerts: Option<Alerter>,
    pub runner: Arc<dyn StepRunner>,
    pub recorder: Arc<dyn Recorder>,
    pub leader: bool,
    pub runtime: String,
    /// `--full-refresh`: incremental models are rebuilt from scratch.
    pub full_refresh: bool,
    /// Schedules a manual run holds besides its own (`run`: the owners of its models).
    pub holds: Vec<String>,
}

impl Base {
    /// `plan` ready to run with `config`; its schedules are read as at start.
    pub fn generation(
        &self,
        plan: Arc<Plan>,
        config: Arc<Config>,
    ) -> Result<Generation, PlanCheckError> {
        let (zone, tiers) = scheduler::prepare(&plan)?;
        let warehouse = Warehouse::new(&config).with_cluster(plan.warehouse.cluster.clone());
        let notifier = Arc::new(crate::notify::Notifier::new(
            plan.clone(),
            Some(self.history.clone()),
        ));
        let route = notifier.clone();
        let alerts = match &self.alerts {
            Some(a) => a.clone(),
            None if config.slack_webhook.is_some() || !config.webhooks.is_empty() => {
                Alerter::webhooks(
                    config.slack_webhook.clone(),
                    config.webhooks.clone(),
                    Duration::from_secs(2),
                )
            }
            None => Alerter::log_only(),
        }
        .routed(Arc::new(move |a| route.route(a)));
        let steps = Arc::new(PlanSteps {
            plan: plan.clone(),
            config: config.clone(),
            warehouse: warehouse.clone(),
            runner: self.runner.clone(),
            recorder: self.recorder.clone(),
            clock: crate::clock::Clock::System,
            full_refresh: self.full_refresh,
        });
        let engine = Arc::new(Engine {
            plan_hash: plan.plan_hash.clone(),
            notify: notifier,
            steps,
            recorder: self.recorder.clone(),
            alerts: alerts.clone(),
            metrics: self.metrics.clone(),
            clock: crate::clock::Clock::System,
            retry_backoff: config.retry_backoff,
            leader: self.leader,
            runtime: self.runtime.clone(),
            holds: self.holds.clone(),
        });
        Ok(Generation {
            plan,
            config,
            stage: Stage {
                engine,
                zone,
                tiers,
            },
            alerts,
            warehouse,
        })
    }
}

/// Read and check the plan at `path` exactly as a start does ([`crate::load_plan`]: signature,
/// format, hash, project; then its serving targets' and webhooks' variables), with the
/// environment already read into `config`.
pub fn load(path: &std::path::Path, config: &Config) -> Result<(Plan, Config), RuntimeError> {
    let plan = crate::load_plan(path, config)?;
    let mut config = config.clone();
    config.target_urls.clear();
    config.webhooks.clear();
    let env = |k: &str| std::env::var(k).ok();
    config.read_targets(&plan, env)?;
    config.read_webhooks(&plan, env)?;
    Ok((plan, config))
}

/// See [`Reloader::on_accept`].
pub type OnAccept = Box<dyn Fn(&Generation) + Send + Sync>;

/// The reloads of one runtime: reads `source` on each request and publishes every accepted
/// plan on `generations`.
pub struct Reloader {
    pub source: Source,
    pub base: Arc<Base>,
    pub generations: watch::Sender<Arc<Generation>>,
    /// Told of each accepted plan (the console).
    pub on_accept: Option<OnAccept>,
}

impl Reloader {
    /// Serve reload requests until the source is gone.
    pub async fn run(mut self) {
        while self.source.requests.changed().await.is_ok() {
            self.reload().await;
        }
    }

    /// One reload: the new plan taken, or the old one kept with an error, an alert and the
    /// metrics saying so.
    pub async fn reload(&self) {
        let current = self.generations.borrow().clone();
        let path = self.source.path.display().to_string();
        info!(plan = %path, "reloading the plan (SIGHUP)");
        // Reading and hashing a large plan takes a while: not on a worker the fires need.
        let loaded = {
            let (file, config) = (self.source.path.clone(), current.config.clone());
            tokio::task::spawn_blocking(move || load(&file, &config)).await
        };
        let loaded = loaded.unwrap_or_else(|e| {
            Err(RuntimeError::PlanUnreadable {
                path: path.clone(),
                reason: format!("reading it failed: {e}"),
            })
        });
        let next = loaded.and_then(|(plan, config)| {
            if plan.plan_hash == current.plan.plan_hash {
                return Ok(None);
            }
            let g = self
                .base
                .generation(Arc::new(plan), Arc::new(config))
                .map_err(RuntimeError::from)?;
            Ok(Some(g))
        });
        match next {
            Ok(None) => {
                info!(plan_hash = %current.plan.plan_hash, "plan reloaded: unchanged");
                self.base.metrics.reloaded(true);
            }
            Ok(Some(g)) => {
                info!(
                    old = %current.plan.plan_hash,
                    new = %g.plan.plan_hash,
                    "plan reloaded: the next fires are the new plan's; running work finishes under the old one"
                );
                self.base.metrics.set_plan(&g.plan.plan_hash);
                self.base.metrics.reloaded(true);
                if let Some(f) = &self.on_accept {
                    f(&g);
                }
                self.generations.send_replace(Arc::new(g));
            }
            Err(e) => {
                let why = e.to_string();
                error!(plan = %path, running = %current.plan.plan_hash, "plan reload refused; the running plan goes on: {why}");
                self.base.metrics.reloaded(false);
                current.alerts.send(
                    Alert::new(
                        AlertKind::ReloadRefused,
                        RELOAD,
                        &current.plan.plan_hash,
                        chrono::Utc::now(),
                    )
                    .error(&why),
                );
            }
        }
    }
}

/// The name reload alerts are sent under (no manifest name starts with `@`).
pub const RELOAD: &str = "@reload";

/// `into` with every tier of `tiers`, each name keeping the longest timeout seen: the lost-run
/// sweep's view while runs of an earlier plan (which may have had a longer timeout) drain.
pub fn merge_tiers(into: &mut BTreeMap<String, Tier>, tiers: &[Tier]) {
    for t in tiers {
        match into.get_mut(&t.name) {
            Some(old) if old.timeout >= t.timeout => {}
            _ => {
                into.insert(t.name.clone(), t.clone());
            }
        }
    }
}

/// The leader's schedulers across reloads: one fires (the newest plan's), those of earlier
/// plans only let their runs end. To the leader loop it is one scheduler.
pub struct Succession<G> {
    stages: watch::Receiver<Arc<G>>,
    firing: watch::Receiver<bool>,
    stopped_firing: watch::Sender<bool>,
    hook: Option<FireHook>,
}

impl<G: AsRef<Stage> + Send + Sync + 'static> Succession<G> {
    /// Fire the plan `stages` holds, and each one it is given later; only while `firing`.
    pub fn new(stages: watch::Receiver<Arc<G>>, firing: watch::Receiver<bool>) -> Succession<G> {
        Succession {
            stages,
            firing,
            stopped_firing: watch::channel(false).0,
            hook: None,
        }
    }

    /// See [`Scheduler::with_fire_hook`] (tests only).
    #[doc(hidden)]
    pub fn with_fire_hook(mut self, hook: FireHook) -> Succession<G> {
        self.hook = Some(hook);
        self
    }

    /// Turns true when nothing fires here any more (after `branch.firing` or `branch.runs`
    /// is cancelled), and stays true.
    pub fn stopped_firing(&self) -> watch::Receiver<bool> {
        self.stopped_firing.subscribe()
    }

    /// As [`Scheduler::serve_until`], taking each new plan as it comes. Each plan's scheduler
    /// serves in a child of `branch`: cancelling `branch.firing` stops them all, cancelling
    /// `branch.runs` (leadership lost, or the grace over here) cancels the runs of every plan,
    /// draining or not. A new plan leaves the old one's branch alone: its runs end at their
    /// own deadlines.
    pub async fn serve_until(mut self, branch: Branch, grace: Duration, backlog: Backlog) {
        let stage = self.stages.borrow_and_update().clone();
        let s: &Stage = (*stage).as_ref();
        let mut first = Scheduler::new(s.engine.clone(), s.zone.clone(), s.tiers.clone())
            .with_firing(self.firing.clone());
        if let Some(h) = &self.hook {
            first = first.with_fire_hook(h.clone());
        }
        let mut current = Arc::new(first);
        let mut tasks = JoinSet::new();
        tasks.spawn(current.clone().serve_until(branch.child(), grace, backlog));
        let mut stages_open = true;
        loop {
            tokio::select! {
                _ = branch.firing.cancelled() => break,
                _ = branch.runs.cancelled() => break,
                r = self.stages.changed(), if stages_open => {
                    if r.is_err() {
                        stages_open = false;
                        continue;
                    }
                    let next = self.stages.borrow_and_update().clone();
                    let s: &Stage = (*next).as_ref();
                    let at = s.engine.clock.now();
                    let successor = Arc::new(current.successor(
                        s.engine.clone(),
                        s.zone.clone(),
                        s.tiers.clone(),
                        at,
                    ));
                    info!(plan_hash = %s.engine.plan_hash, handover = %at, "firing the new plan; runs of the old one finish under it");
                    current = successor;
                    tasks.spawn(
                        current
                            .clone()
                            .serve_until(branch.child(), grace, Backlog::new()),
                    );
                }
                Some(ended) = tasks.join_next() => {
                    if let Err(e) = ended {
                        warn!(error = %e, "a scheduler ended abnormally");
                    }
                }
            }
        }
        // Every plan stops firing (when `branch.runs` was cancelled, the tree has cancelled
        // their runs already).
        branch.firing.cancel();
        let mut current_stopped = current.stopped_firing();
        tokio::select! {
            _ = current_stopped.wait_for(|s| *s) => {}
            _ = wait_all(&mut tasks) => {}
        }
        self.stopped_firing.send_replace(true);
        // Every plan's running work gets the same grace, then is cancelled.
        let drained = tokio::select! {
            r = tokio::time::timeout(grace, wait_all(&mut tasks)) => r.is_ok(),
            _ = branch.runs.cancelled() => false,
        };
        if !drained {
            branch.runs.cancel();
            wait_all(&mut tasks).await;
        }
    }
}

async fn wait_all(tasks: &mut JoinSet<()>) {
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r {
            warn!(error = %e, "a scheduler ended abnormally");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier(name: &str, minutes: u64) -> Tier {
        Tier {
            name: name.into(),
            cron: stir_plan::cron::Cron::parse("* * * * *").expect("a cron"),
            skip: Vec::new(),
            timeout: Duration::from_secs(minutes * 60),
            heavy: false,
            retries: 0,
            enabled: true,
            on_missed: stir_plan::OnMissed::Skip,
        }
    }

    #[test]
    fn the_sweep_keeps_the_longest_timeout_a_schedule_had() {
        let mut seen = BTreeMap::new();
        merge_tiers(&mut seen, &[tier("a", 60), tier("b", 10)]);
        // The reloaded plan shortens `a`, lengthens `b`, adds `c`.
        merge_tiers(&mut seen, &[tier("a", 5), tier("b", 30), tier("c", 1)]);
        let timeouts: Vec<(&str, u64)> = seen
            .values()
            .map(|t| (t.name.as_str(), t.timeout.as_secs() / 60))
            .collect();
        assert_eq!(timeouts, vec![("a", 60), ("b", 30), ("c", 1)]);
    }
}
