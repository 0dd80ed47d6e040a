//! Replicas that run different plans. Each runtime records, every leader poll, the plan it
//! runs in `stir.replicas`; each reads which plans the live replicas run
//! (`stir_replica_plans`), and the leader alerts when another live replica runs another plan
//! (one replica reloaded and not the other, or one refused the new plan): a follower on an old
//! plan would fire that plan the moment it takes over.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use crate::alert::{Alert, AlertKind};
use crate::history::{HistoryError, PgHistory};
use crate::metrics::Metrics;
use crate::reload::Generation;

/// A replica counts as live while it was seen within this many polls.
const LIVE_POLLS: u32 = 3;
/// Rows of runtimes gone this long are deleted.
const FORGET_AFTER: &str = "1 day";

/// A live runtime and the plan it runs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Replica {
    pub runtime: String,
    pub plan_hash: String,
    pub leader: bool,
}

/// Record that `runtime` runs `plan_hash`, and read every replica seen within `live`.
pub async fn beat(
    history: &PgHistory,
    runtime: &str,
    plan_hash: &str,
    leader: bool,
    live: Duration,
) -> Result<Vec<Replica>, HistoryError> {
    let c = history.client().await?;
    let s = history.schema();
    c.execute(
        &format!(
            "INSERT INTO {s}.replicas (runtime, plan_hash, leader, seen_at) VALUES ($1, $2, $3, now())
             ON CONFLICT (runtime) DO UPDATE SET plan_hash = $2, leader = $3, seen_at = now()"
        ),
        &[&runtime, &plan_hash, &leader],
    )
    .await?;
    c.execute(
        &format!("DELETE FROM {s}.replicas WHERE seen_at < now() - interval '{FORGET_AFTER}'"),
        &[],
    )
    .await?;
    let live_secs = live.as_secs_f64();
    let rows = c
        .query(
            &format!(
                "SELECT runtime, plan_hash, leader FROM {s}.replicas
                 WHERE seen_at > now() - make_interval(secs => $1) ORDER BY runtime"
            ),
            &[&live_secs],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Replica {
            runtime: r.get(0),
            plan_hash: r.get(1),
            leader: r.get(2),
        })
        .collect())
}

/// Every `poll`: record this runtime's plan, count the plans of the live replicas, and while
/// leading alert once for each new set of replicas on another plan. Runs until aborted.
pub async fn watch(
    history: Arc<PgHistory>,
    runtime: String,
    generations: watch::Receiver<Arc<Generation>>,
    metrics: Metrics,
    poll: Duration,
) {
    let mut alerted: BTreeSet<Replica> = BTreeSet::new();
    loop {
        let g = generations.borrow().clone();
        let own = g.plan.plan_hash.clone();
        let leader = metrics.is_leader();
        match beat(&history, &runtime, &own, leader, poll * LIVE_POLLS).await {
            Ok(live) => {
                let plans: BTreeSet<&str> = live
                    .iter()
                    .map(|r| r.plan_hash.as_str())
                    .chain([own.as_str()])
                    .collect();
                metrics.set_replica_plans(plans.len());
                let others: BTreeSet<Replica> = live
                    .into_iter()
                    .filter(|r| r.runtime != runtime && r.plan_hash != own)
                    .collect();
                if others.is_empty() && !alerted.is_empty() {
                    info!(plan_hash = %own, "the replicas run one plan again");
                }
                if leader && !others.is_empty() && others != alerted {
                    let list: Vec<String> = others
                        .iter()
                        .map(|r| {
                            format!(
                                "replica `{}` runs plan `{}`",
                                r.runtime,
                                // Read from a table anyone with access can write: no byte slicing.
                                r.plan_hash.chars().take(12).collect::<String>()
                            )
                        })
                        .collect();
                    let why = format!(
                        "{}; it fires that plan if it takes over. Reload it (SIGHUP) with the plan this leader runs, or see why it refused the plan (its log, `stir_plan_reload_failed`)",
                        list.join(", ")
                    );
                    warn!(plan_hash = %own, "the replicas run different plans: {why}");
                    g.alerts.send(
                        Alert::new(AlertKind::PlansDiffer, "", &own, chrono::Utc::now())
                            .error(&why),
                    );
                }
                alerted = if leader { others } else { BTreeSet::new() };
            }
            Err(e) => warn!(error = %e, "cannot record this replica's plan in the history"),
        }
        tokio::time::sleep(poll).await;
    }
}
