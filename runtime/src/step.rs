//! What steps that are not ClickHouse statements (`sync`, `request`) work with: their
//! context, outcome and errors, and the [`StepRunner`] trait that `runner::Runner` implements
//! for the binary and tests substitute.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use stir_plan::Plan;

use crate::config::Config;
pub use crate::run::BoxFut;
use crate::warehouse::{Warehouse, WarehouseError};

/// What a step runner may use.
#[derive(Clone)]
pub struct StepCtx {
    pub plan: Arc<Plan>,
    pub config: Arc<Config>,
    pub warehouse: Warehouse,
    pub schedule: String,
    /// The step's number in the run (also in its query ids: `<run_id>-<idx>-<n>`).
    pub idx: usize,
    /// Register every ClickHouse query id here before sending it, so a timeout can kill it.
    pub queries: QueryLog,
    /// When the run's window ends (`fire + timeout`): steps bound their server-side
    /// statements by it, so none outlives the run. `None`: unbounded (tests, tools).
    pub deadline: Option<tokio::time::Instant>,
    /// What earlier attempts of this fire delivered: a request step posts only the rest.
    pub delivered: Delivered,
}

impl StepCtx {
    /// The query id of this step's statement `n`.
    pub fn query_id(&self, run_id: &str, n: usize) -> String {
        let prefix = crate::run::query_prefix(&self.plan.warehouse.database, run_id);
        format!("{prefix}{}-{n}", self.idx)
    }
}

/// What a finished step reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepOutcome {
    /// Rows written (table rows, PostgreSQL rows, requests sent), when known.
    pub rows: Option<u64>,
    /// How long the step's phases took, in order (a sync: `load`, `finish`, `swap`).
    pub phases: Vec<(&'static str, std::time::Duration)>,
    /// What the history notes beside an `ok` (a full refresh).
    pub note: Option<&'static str>,
}

/// Why a step failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    #[error("postgres: {0}")]
    Postgres(String),
    #[error("s3: {0}")]
    S3(String),
    #[error("http: {0}")]
    Http(String),
    #[error("{0}")]
    Other(String),
}

/// Runs `sync` and `request` steps.
pub trait StepRunner: Send + Sync + 'static {
    fn run_sync<'a>(
        &'a self,
        ctx: &'a StepCtx,
        sync: &'a str,
        run_id: &'a str,
    ) -> BoxFut<'a, Result<StepOutcome, StepError>>;
    fn run_request<'a>(
        &'a self,
        ctx: &'a StepCtx,
        request: &'a str,
        run_id: &'a str,
    ) -> BoxFut<'a, Result<StepOutcome, StepError>>;
    /// `rollback SYNC`: swap the sync's backup back in (`allow_shrink` lifts its row guards).
    fn run_rollback<'a>(
        &'a self,
        _ctx: &'a StepCtx,
        sync: &'a str,
        _run_id: &'a str,
        _allow_shrink: bool,
    ) -> BoxFut<'a, Result<StepOutcome, StepError>> {
        Box::pin(async move {
            Err(StepError::Other(format!(
                "this step runner cannot roll back sync `{sync}`"
            )))
        })
    }
}

/// The request rows a fire's endpoints accepted (2xx), across the attempts of that fire, so a
/// retry posts only the rows not yet accepted. A row is its rendered body (sha256), counted:
/// two rows with the same body are two POSTs. Kept in memory: only the process that ran a
/// fire's first attempt retries it (docs/operations.md, "Retries and requests").
#[derive(Clone, Default)]
pub struct Delivered {
    inner: Arc<Mutex<HashMap<(usize, String), BodyCounts>>>,
}

/// Accepted POSTs per body (sha256 of the rendered body).
pub type BodyCounts = HashMap<[u8; 32], u32>;

impl Delivered {
    /// How many POSTs of each body step `idx` (request `name`) has had accepted.
    pub fn accepted(&self, idx: usize, name: &str) -> BodyCounts {
        self.inner
            .lock()
            .ok()
            .and_then(|g| g.get(&(idx, name.to_string())).cloned())
            .unwrap_or_default()
    }
    /// One more POST of `body` accepted for step `idx`.
    pub fn record(&self, idx: usize, name: &str, body: [u8; 32]) {
        if let Ok(mut g) = self.inner.lock() {
            *g.entry((idx, name.to_string()))
                .or_default()
                .entry(body)
                .or_default() += 1;
        }
    }
}

/// The ClickHouse query ids a run has in flight, and what to clean up if it is aborted.
#[derive(Clone, Default)]
pub struct QueryLog {
    inner: Arc<Mutex<QueryLogInner>>,
}

#[derive(Default)]
struct QueryLogInner {
    running: Vec<String>,
    /// Per step (models build side by side).
    cleanup: std::collections::BTreeMap<usize, Vec<String>>,
}

impl QueryLog {
    pub fn begin(&self, query_id: &str) {
        if let Ok(mut g) = self.inner.lock() {
            g.running.push(query_id.to_string());
        }
    }
    pub fn end(&self, query_id: &str) {
        if let Ok(mut g) = self.inner.lock() {
            g.running.retain(|q| q != query_id);
        }
    }
    /// Statements to run if the run is aborted now (step `idx`'s model's cleanup).
    pub fn set_cleanup(&self, idx: usize, statements: Vec<String>) {
        if let Ok(mut g) = self.inner.lock() {
            if statements.is_empty() {
                g.cleanup.remove(&idx);
            } else {
                g.cleanup.insert(idx, statements);
            }
        }
    }
    /// Take the in-flight query ids and pending cleanup, leaving both empty.
    pub fn take(&self) -> (Vec<String>, Vec<String>) {
        match self.inner.lock() {
            Ok(mut g) => (
                std::mem::take(&mut g.running),
                std::mem::take(&mut g.cleanup)
                    .into_values()
                    .flatten()
                    .collect(),
            ),
            Err(_) => (Vec::new(), Vec::new()),
        }
    }
}
