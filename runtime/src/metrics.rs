//! The runtime's Prometheus metrics, kept and encoded by the `prometheus-client` crate; served
//! on `/metrics` by [`crate::server`]. The names and labels are those docs/operations.md lists.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::run::RunStatus;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    schedule: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScheduleLabel {
    schedule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabel {
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlanLabel {
    plan_hash: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabel {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SkipLabels {
    schedule: String,
    reason: String,
}

/// Run durations from a second to the longest timeouts (hours).
fn duration_histogram() -> Histogram {
    Histogram::new([
        1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0,
    ])
}

type DurationFamily = Family<ScheduleLabel, Histogram, fn() -> Histogram>;

/// Shared counters; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    runs: Family<RunLabels, Counter>,
    durations: DurationFamily,
    skipped: Family<SkipLabels, Counter>,
    /// Unix time of each model's last successful build, as the history shows it.
    model_success: Family<ModelLabel, Gauge>,
    leader_gauge: Gauge,
    leader: Arc<AtomicBool>,
    /// `stir_plan_info{plan_hash}`: 1 for the plan being run (a reload moves it).
    plan_info: Family<PlanLabel, Gauge>,
    plan: Arc<Mutex<(String, LastReload)>>,
    reloads: Family<ReloadLabel, Counter>,
    reload_failed: Gauge,
    /// `stir_replica_plans`: how many plans the live replicas run (`replicas.rs`).
    replica_plans: Gauge,
}

/// How the last plan reload went (SIGHUP; `/healthz`'s `last_reload`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LastReload {
    None,
    Ok,
    Refused,
}

impl LastReload {
    pub fn as_str(self) -> &'static str {
        match self {
            LastReload::None => "none",
            LastReload::Ok => "ok",
            LastReload::Refused => "refused",
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new("")
    }
}

impl Metrics {
    pub fn new(plan_hash: &str) -> Metrics {
        let mut registry = Registry::default();
        let runs = Family::<RunLabels, Counter>::default();
        let durations: DurationFamily = Family::new_with_constructor(duration_histogram);
        let skipped = Family::<SkipLabels, Counter>::default();
        let model_success = Family::<ModelLabel, Gauge>::default();
        let leader_gauge = Gauge::default();
        // A gauge family rather than an info metric: a reload changes the plan.
        let plan_info = Family::<PlanLabel, Gauge>::default();
        plan_info
            .get_or_create(&PlanLabel {
                plan_hash: plan_hash.to_string(),
            })
            .set(1);
        registry.register(
            "stir_plan_info",
            "The plan this runtime runs",
            plan_info.clone(),
        );
        let reloads = Family::<ReloadLabel, Counter>::default();
        registry.register(
            "stir_plan_reloads",
            "Plan reloads (SIGHUP) by result: ok, refused",
            reloads.clone(),
        );
        let reload_failed = Gauge::default();
        registry.register(
            "stir_plan_reload_failed",
            "1 when the last plan reload was refused (the previous plan still runs)",
            reload_failed.clone(),
        );
        let replica_plans = Gauge::default();
        registry.register(
            "stir_replica_plans",
            "How many different plans the live replicas of this project run (1 when they agree)",
            replica_plans.clone(),
        );
        registry.register(
            "stir_leader",
            "1 when this runtime holds the leader lock",
            leader_gauge.clone(),
        );
        // Counters get the `_total` suffix.
        registry.register(
            "stir_runs",
            "Finished runs by schedule and status",
            runs.clone(),
        );
        registry.register(
            "stir_run_duration_seconds",
            "Run durations (all attempts)",
            durations.clone(),
        );
        registry.register(
            "stir_skipped_fires",
            "Fires that did not run, by reason",
            skipped.clone(),
        );
        registry.register(
            "stir_model_last_success_timestamp",
            "Unix time of the model's last successful build",
            model_success.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            runs,
            durations,
            skipped,
            model_success,
            leader_gauge,
            leader: Arc::default(),
            plan_info,
            plan: Arc::new(Mutex::new((plan_hash.to_string(), LastReload::None))),
            reloads,
            reload_failed,
            replica_plans,
        }
    }

    /// The live replicas run `n` different plans.
    pub fn set_replica_plans(&self, n: usize) {
        self.replica_plans.set(n as i64);
    }

    /// The plan being run is now `plan_hash`.
    pub fn set_plan(&self, plan_hash: &str) {
        let Ok(mut p) = self.plan.lock() else { return };
        if p.0 != plan_hash {
            self.plan_info.remove(&PlanLabel {
                plan_hash: p.0.clone(),
            });
            self.plan_info
                .get_or_create(&PlanLabel {
                    plan_hash: plan_hash.to_string(),
                })
                .set(1);
            p.0 = plan_hash.to_string();
        }
    }

    /// A plan reload ended: taken (or unchanged), or refused.
    pub fn reloaded(&self, ok: bool) {
        let result = if ok { "ok" } else { "refused" };
        self.reloads
            .get_or_create(&ReloadLabel {
                result: result.to_string(),
            })
            .inc();
        self.reload_failed.set(i64::from(!ok));
        if let Ok(mut p) = self.plan.lock() {
            p.1 = if ok {
                LastReload::Ok
            } else {
                LastReload::Refused
            };
        }
    }

    /// The plan being run and how the last reload went.
    pub fn plan(&self) -> (String, LastReload) {
        self.plan
            .lock()
            .map(|p| p.clone())
            .unwrap_or_else(|_| (String::new(), LastReload::None))
    }

    pub fn run_finished(&self, schedule: &str, status: RunStatus, took: Duration) {
        self.runs
            .get_or_create(&RunLabels {
                schedule: schedule.to_string(),
                status: status.as_str().to_string(),
            })
            .inc();
        self.durations
            .get_or_create(&ScheduleLabel {
                schedule: schedule.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn skipped(&self, schedule: &str, reason: &'static str) {
        self.skipped
            .get_or_create(&SkipLabels {
                schedule: schedule.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    pub fn model_success(&self, model: &str, unix: i64) {
        self.model_success
            .get_or_create(&ModelLabel {
                model: model.to_string(),
            })
            .set(unix);
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.store(leader, Ordering::Relaxed);
        self.leader_gauge.set(i64::from(leader));
    }

    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed)
    }

    /// The OpenMetrics text exposition (which Prometheus scrapes natively).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            // Writing into a String cannot fail; keep what was written.
            tracing::warn!("cannot encode the metrics");
        }
        out
    }
}

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
