//! `stir-runtime plan.json run SELECTOR… [--exclude …] [--full-refresh] [--force]`: build
//! exactly the selected models of the plan now, with the plan's statements, in dependency
//! order with the plan's threads (the schedules' own executor, as `--bootstrap` does), as one
//! run recorded under [`MANUAL`] (or [`MANUAL_HEAVY`]). It respects the owners: it does not
//! start while a schedule that builds a selected model is running, nor, when a selected
//! model's owner is heavy, beside another heavy run; `--force` overrides both. In turn it
//! holds the owners while it runs (`history::RunRecord::holds`): their fires are
//! `skipped_running`, and their `--once` refused, as beside a run of their own.

use std::future::Future;
use std::time::Duration;

use stir_plan::select::{Models, SelectErrors};
use stir_plan::{Plan, Step};

use crate::history::{Busy, Conflict};
use crate::run::RunStatus;
use crate::scheduler;
use crate::{Options, RuntimeError};

pub use crate::run::{MANUAL, MANUAL_HEAVY};

/// The longest a manual run may take (and counts as running in the history), and how long
/// one takes when no selected model has an owner.
pub const MANUAL_TIMEOUT: Duration = crate::run::MANUAL_WINDOW;

/// Why `run` did not start (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ManualError {
    #[error("{0}")]
    Select(#[from] SelectErrors),
    #[error("run: model `{model}` is built by schedule `{schedule}`, which is running now (run `{run_id}`, started {started}); `run` does not build beside its owner\nhelp: wait for it to end (`stir-runtime history --schedule {schedule}`), or pass --force if that run is known to be dead")]
    OwnerRunning {
        model: String,
        schedule: String,
        run_id: String,
        started: String,
    },
    #[error("run: model `{model}` belongs to heavy schedule `{owner}`, and heavy `{other}` is running now (run `{run_id}`); two heavy runs never overlap\nhelp: wait for it to end (`stir-runtime history --schedule {other}`), or pass --force if that run is known to be dead")]
    HeavyRunning {
        model: String,
        owner: String,
        other: String,
        run_id: String,
    },
    #[error("run: another manual build is running now (`{schedule}`, run `{run_id}`); two never build at once\nhelp: wait for it to end (`stir-runtime history --schedule {schedule}`), or pass --force if that run is known to be dead")]
    ManualRunning { schedule: String, run_id: String },
    #[error("run: --timeout {0} is longer than a manual run may take (6h)\nhelp: build fewer models at once")]
    Timeout(String),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// What a manual run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    pub status: RunStatus,
    /// The models built (or tried), in build order.
    pub models: Vec<String>,
    /// [`MANUAL`] or [`MANUAL_HEAVY`]: where the history has it.
    pub recorded_as: &'static str,
}

/// The schedules whose `run` steps build each model.
fn owners(plan: &Plan) -> std::collections::BTreeMap<&str, Vec<&stir_plan::Schedule>> {
    let mut out: std::collections::BTreeMap<&str, Vec<&stir_plan::Schedule>> = Default::default();
    for s in &plan.schedules {
        for step in &s.steps {
            if let Step::Run { models } = step {
                for m in models {
                    let list = out.entry(m.as_str()).or_default();
                    if !list.iter().any(|x| x.name == s.name) {
                        list.push(s);
                    }
                }
            }
        }
    }
    out
}

/// Build the models `include` less `exclude` select, now.
pub async fn run_manual(
    plan: Plan,
    config: crate::Config,
    include: &[String],
    exclude: &[String],
    timeout: Option<Duration>,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Ran, ManualError> {
    if let Some(t) = timeout.filter(|t| *t > MANUAL_TIMEOUT) {
        return Err(ManualError::Timeout(crate::executor::humanize(t)));
    }
    let (_, tiers) = scheduler::prepare(&plan).map_err(RuntimeError::from)?;
    let models: Vec<String> = Models::new(&plan)
        .select(include, exclude)?
        .into_iter()
        .map(String::from)
        .collect();
    let owners = owners(&plan);
    // Each selected model's owners, and which of them are heavy.
    let mut owner_of: Vec<(String, String)> = Vec::new();
    let mut heavy_owner: Option<(String, String)> = None;
    for m in &models {
        for s in owners
            .get(m.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if !owner_of.iter().any(|(_, o)| *o == s.name) {
                owner_of.push((m.clone(), s.name.clone()));
            }
            if s.heavy && heavy_owner.is_none() {
                heavy_owner = Some((m.clone(), s.name.clone()));
            }
        }
    }
    // As long as the longest of its owners' runs may take, unless --timeout says.
    let timeout = timeout.unwrap_or_else(|| {
        owner_of
            .iter()
            .filter_map(|(_, o)| plan.schedule(o))
            .map(|s| Duration::from_secs(s.timeout_secs))
            .max()
            .unwrap_or(MANUAL_TIMEOUT)
            .min(MANUAL_TIMEOUT)
    });
    let name = if heavy_owner.is_some() {
        MANUAL_HEAVY
    } else {
        MANUAL
    };
    let now = chrono::Utc::now();
    let mut guard = Vec::new();
    if !options.force {
        for (_, o) in &owner_of {
            let timeout = plan
                .schedule(o)
                .map_or(MANUAL_TIMEOUT, |s| Duration::from_secs(s.timeout_secs));
            guard.push(Conflict::any(o, scheduler::counts_since(now, timeout)));
        }
        for other in [MANUAL, MANUAL_HEAVY, crate::BOOTSTRAP] {
            guard.push(Conflict::any(
                other,
                scheduler::counts_since(now, MANUAL_TIMEOUT),
            ));
        }
        if heavy_owner.is_some() {
            let tiers: Vec<std::sync::Arc<_>> =
                tiers.into_iter().map(std::sync::Arc::new).collect();
            guard.extend(scheduler::heavy_windows(&tiers, name, now, None));
        }
    }
    let refuse = |busy: Busy| -> ManualError {
        if busy.unconfirmed.is_some() {
            return crate::busy_error(name, busy).into();
        }
        if let Some((model, schedule)) = owner_of.iter().find(|(_, o)| *o == busy.schedule) {
            return ManualError::OwnerRunning {
                model: model.clone(),
                schedule: schedule.clone(),
                run_id: busy.run_id,
                started: busy.started.map_or_else(
                    || "just now".to_string(),
                    |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                ),
            };
        }
        if [MANUAL, MANUAL_HEAVY, crate::BOOTSTRAP].contains(&busy.schedule.as_str()) {
            return ManualError::ManualRunning {
                schedule: busy.schedule,
                run_id: busy.run_id,
            };
        }
        let (model, owner) = heavy_owner.clone().unwrap_or_default();
        ManualError::HeavyRunning {
            model,
            owner,
            other: busy.schedule,
            run_id: busy.run_id,
        }
    };
    // While it runs, the owners' fires (and --once) find it and do not build beside it.
    let mut options = options;
    options.holds = owner_of.iter().map(|(_, o)| o.clone()).collect();
    tracing::info!(models = ?models, recorded_as = name, full_refresh = options.full_refresh, "run: building the selected models");
    let mut plan = plan;
    let tier = crate::add_manual_schedule(
        &mut plan,
        name,
        name == MANUAL_HEAVY,
        timeout,
        models.clone(),
    );
    let parts = crate::assemble_manual(plan, config, &options).await?;
    let status = crate::drive_manual_with(&parts, &tier, &guard, shutdown, &refuse).await?;
    Ok(Ran {
        status,
        models,
        recorded_as: name,
    })
}
