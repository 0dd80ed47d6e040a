//! The runner of the steps that are not ClickHouse statements, in one home: `sync` steps
//! (ClickHouse -> S3 -> PostgreSQL, `sync/`), `request` steps (HTTP POST per row,
//! `request.rs`) and rollbacks are peers behind [`StepRunner`].

use std::sync::Arc;

use crate::request::{self, RequestOptions};
use crate::step::{BoxFut, StepCtx, StepError, StepOutcome, StepRunner};
use crate::sync::{SyncOptions, Syncer};

pub use crate::config::EnvFn;

/// How the runner behaves; [`Runner::from_env`] is what the binary uses.
#[derive(Clone)]
pub struct RunnerOptions {
    /// AWS credentials and `STIR_ENDPOINT_<NAME>` are read through this.
    pub env: EnvFn,
    pub sync: SyncOptions,
    pub request: RequestOptions,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            env: Arc::new(|k: &str| std::env::var(k).ok()),
            sync: SyncOptions::default(),
            request: RequestOptions::default(),
        }
    }
}

/// The runtime's runner of `sync` steps (`sync/`), `request` steps (`request.rs`) and
/// rollbacks: one home, the kinds side by side.
#[derive(Clone)]
pub struct Runner {
    options: RunnerOptions,
    syncs: Syncer,
}

impl Runner {
    pub fn new(options: RunnerOptions) -> Runner {
        let syncs = Syncer::new(options.sync.clone(), options.env.clone());
        Runner { options, syncs }
    }

    /// The process environment; in debug builds `STIR_FAILPOINT` (see [`crate::sync::Failpoint::parse`]).
    pub fn from_env() -> Runner {
        #[allow(unused_mut)]
        let mut options = RunnerOptions::default();
        #[cfg(debug_assertions)]
        if let Some(fp) = std::env::var("STIR_FAILPOINT")
            .ok()
            .and_then(|v| crate::sync::Failpoint::parse(&v))
        {
            tracing::warn!(failpoint = ?fp, "STIR_FAILPOINT is set: sync steps stop there (debug build)");
            options.sync.failpoint = Some(fp);
            options.sync.failpoint_aborts_process = true;
        }
        Runner::new(options)
    }

    pub fn options(&self) -> &RunnerOptions {
        &self.options
    }
}

impl StepRunner for Runner {
    fn run_sync<'a>(
        &'a self,
        ctx: &'a StepCtx,
        sync: &'a str,
        run_id: &'a str,
    ) -> BoxFut<'a, Result<StepOutcome, StepError>> {
        Box::pin(self.syncs.sync(ctx, sync, run_id))
    }

    fn run_request<'a>(
        &'a self,
        ctx: &'a StepCtx,
        name: &'a str,
        run_id: &'a str,
    ) -> BoxFut<'a, Result<StepOutcome, StepError>> {
        Box::pin(request::run(
            ctx,
            name,
            run_id,
            &self.options.env,
            &self.options.request,
        ))
    }

    fn run_rollback<'a>(
        &'a self,
        ctx: &'a StepCtx,
        sync: &'a str,
        run_id: &'a str,
        allow_shrink: bool,
    ) -> BoxFut<'a, Result<StepOutcome, StepError>> {
        Box::pin(self.syncs.rollback(ctx, sync, run_id, allow_shrink))
    }
}
