//! `sync` steps: a ClickHouse model -> an S3 staging object -> a PostgreSQL table, swapped in
//! atomically. [`Syncer`] runs them (and rollbacks) for `runner::Runner`.
//!
//! One sync, in order (the files of this module follow the phases):
//! 1. **Check** the declared columns against ClickHouse (`DESCRIBE`, `columns.rs`) before
//!    touching PostgreSQL: a missing column, an impossible type or one that would arrive
//!    rounded (`stir::lossy_column`) refuses the step.
//! 2. **Take the target** on one PostgreSQL session named `stir sync <name> <run id>`: a session
//!    advisory lock on the live table for the whole sync (one writer per target; a second run
//!    is refused, naming the holder), every statement bounded by the run's deadline
//!    (`statement_timeout`), and a cancel request sent if the job is dropped mid-statement.
//! 3. **Clean** what a killed run left: a swap stopped before its materialized views were
//!    rebuilt is finished (`swap.rs`), staging tables marked as this sync's are dropped, and
//!    unfinished multipart uploads under the sync's prefix are aborted.
//! 4. **Read the live table** once (`catalog.rs`): what a swap would lose is refused in one
//!    `stir::sync_live_table` message, what it can carry becomes a `Carry`.
//! 5. **Prepare** this run's staging table (`<to>__stir_new_<run tag>`, the plan's `{run}`
//!    token bound to `run_tag(run_id)`), created and marked with a comment in one transaction.
//! 6. **Export and load in one pass** (`export.rs`): the TabSeparated answer of
//!    `clickhouse.select` is streamed in chunks; each chunk goes both into the S3 multipart
//!    upload (`<s3_prefix><run_id>.tsv.lz4`, one LZ4 frame, or `.tsv` with `compression=none`;
//!    16 MiB parts; see `staging.rs`) and into `COPY … FROM STDIN` on the staging table. An
//!    exception ClickHouse writes into the answer after its 200 fails the step. The COPY is
//!    committed only after the S3 object is complete, so what is loaded is exactly the staged
//!    object. Memory stays bounded; nothing touches the local disk. [`LoadMode::FromS3`]
//!    instead uploads first and then streams the object back into COPY.
//! 7. **Guards**: rows in the file = rows COPY loaded (= `count()` in ClickHouse when the table
//!    did not change during the export).
//! 8. **Transform** (defaults, enrich, delete-where), **finish** (SET LOGGED, indexes,
//!    VACUUM (ANALYZE)), then the `Carry` (constraints, column grants, options, owner), all
//!    before any lock readers wait on; then `max-shrink` and the empty-result guard against
//!    the live table (`check_shrink`).
//! 9. **Swap** (`swap.rs`): one short transaction whose locks wait at most `lock-timeout`
//!    (else it gives up without blocking anyone and retries with backoff in the run's
//!    window): the staging table is checked to be this run's with the rows counted, the live
//!    table is compared with it again, the plan's renames run, grants and comments are carried
//!    and views on the table re-pointed. Materialized views downstream are then rebuilt
//!    beside the old ones and swapped in the same short way.
//! 10. Drop the backup with `keep-backup=#false` (kept by default, for `rollback.rs`), then the
//!     sync's staged files beyond the newest `staging.keep` (a failure there is a warning: the
//!     sync is done).
//!
//! Any failure before the swap leaves the live table as it was, drops this run's staging
//! table and aborts the multipart upload. docs/reliability.md lists every fault and its test.
//!
//! Invariant: credentials never reach SQL text, the S3 key, a log line or an error: URLs are
//! shown through [`redact_url`], PostgreSQL errors through their server message only.

mod catalog;
mod columns;
mod export;
mod rollback;
mod swap;

use catalog::uncarried;

use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::SinkExt;
use stir_plan::StagingCompression;
use stir_plan::{ExportColumn, Plan, Sync};
use tokio::sync::mpsc;
use tokio_postgres::{Client, CopyInSink};
use tokio_postgres_rustls::MakeRustlsConnect;
use tracing::{info, warn};

pub use crate::config::EnvFn;
use crate::config::{redact_text, redact_url};

/// How syncs behave (a part of `runner::RunnerOptions`).
#[derive(Clone)]
pub struct SyncOptions {
    pub load: LoadMode,
    pub s3_attempts: u32,
    pub s3_backoff: Duration,
    /// Multipart part size ([`PART_SIZE`]; tests use smaller parts, S3 itself wants >= 5 MiB).
    pub part_size: usize,
    pub failpoint: Option<Failpoint>,
    /// The process aborts at the failpoint (the binary) instead of returning an error.
    pub failpoint_aborts_process: bool,
    /// Notified when a `Pause*` failpoint starts pausing (tests act on it then).
    pub paused: Option<std::sync::Arc<tokio::sync::Notify>>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            load: LoadMode::Tee,
            s3_attempts: 4,
            s3_backoff: Duration::from_millis(500),
            part_size: PART_SIZE,
            failpoint: None,
            failpoint_aborts_process: false,
            paused: None,
        }
    }
}

/// Runs syncs and their rollbacks (`runner::Runner` calls it for `sync` steps).
#[derive(Clone)]
pub struct Syncer {
    pub(crate) options: SyncOptions,
    /// AWS credentials are read through this.
    pub(crate) env: EnvFn,
}

impl Syncer {
    pub fn new(options: SyncOptions, env: EnvFn) -> Syncer {
        Syncer { options, env }
    }
}
use crate::s3::{Listed, Part, S3Config, S3};
use crate::staging;
use crate::step::{StepCtx, StepError, StepOutcome};
use stir_plan::quote::{ch_ident, ch_literal, pg_ident, pg_literal, pg_qualified};

/// Size of one multipart part (S3 wants >= 5 MiB except the last; at most 10 000 parts, so
/// a part grows by this much every 1000 parts).
pub const PART_SIZE: usize = 16 * 1024 * 1024;

/// Where COPY reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMode {
    /// One pass: the export stream feeds the upload and COPY at once (the default).
    Tee,
    /// Upload the whole object, then stream it back from S3 into COPY.
    FromS3,
}

/// Test-only ways to stop a sync abruptly at a given point, as a killed process would: no
/// cleanup runs and no upload is aborted. `Pause*` sleep instead, so a test can act (kill the
/// PostgreSQL backend, SIGKILL the process) at that point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failpoint {
    /// The export and upload are complete, COPY is not committed.
    AfterExport,
    /// After the first chunk reached COPY (the upload is still open).
    DuringCopy,
    /// After the first transform (enrich, delete-where) statement.
    InTransform,
    /// After the first finish statement (SET LOGGED), before the indexes and VACUUM.
    InFinish,
    /// Everything is loaded and checked; the swap has not started.
    BeforeSwap,
    /// Inside the swap's transaction, after its renames, before the commit (locks held).
    InSwap,
    /// The table is swapped; the materialized views on it are not rebuilt yet.
    BeforeRebuild,
    PauseDuringCopy(Duration),
    PauseBeforeSwap(Duration),
    PauseInTransform(Duration),
    PauseInFinish(Duration),
    PauseInSwap(Duration),
    PauseBeforeRebuild(Duration),
}

impl Failpoint {
    /// `STIR_FAILPOINT=sync:<point>` (debug builds only; the process aborts there) or
    /// `sync:pause_<point>` (sleeps 120 s there), with `<point>` one of `after_export`,
    /// `during_copy`, `in_transform`, `in_finish`, `before_swap`, `in_swap`, `before_rebuild`.
    pub fn parse(s: &str) -> Option<Failpoint> {
        let s = s.trim().strip_prefix("sync:")?;
        let (pause, point) = match s.strip_prefix("pause_") {
            Some(p) => (true, p),
            None => (false, s),
        };
        let at = match point {
            "after_export" => Failpoint::AfterExport,
            "during_copy" => Failpoint::DuringCopy,
            "in_transform" => Failpoint::InTransform,
            "in_finish" => Failpoint::InFinish,
            "before_swap" => Failpoint::BeforeSwap,
            "in_swap" => Failpoint::InSwap,
            "before_rebuild" => Failpoint::BeforeRebuild,
            _ => return None,
        };
        if !pause {
            return Some(at);
        }
        let d = Duration::from_secs(120);
        Some(match at {
            Failpoint::DuringCopy => Failpoint::PauseDuringCopy(d),
            Failpoint::InTransform => Failpoint::PauseInTransform(d),
            Failpoint::InFinish => Failpoint::PauseInFinish(d),
            Failpoint::BeforeSwap => Failpoint::PauseBeforeSwap(d),
            Failpoint::InSwap => Failpoint::PauseInSwap(d),
            Failpoint::BeforeRebuild => Failpoint::PauseBeforeRebuild(d),
            _ => return None,
        })
    }

    /// The point a pause stops at, and for how long.
    fn pause(self) -> Option<(Failpoint, Duration)> {
        match self {
            Failpoint::PauseDuringCopy(d) => Some((Failpoint::DuringCopy, d)),
            Failpoint::PauseBeforeSwap(d) => Some((Failpoint::BeforeSwap, d)),
            Failpoint::PauseInTransform(d) => Some((Failpoint::InTransform, d)),
            Failpoint::PauseInFinish(d) => Some((Failpoint::InFinish, d)),
            Failpoint::PauseInSwap(d) => Some((Failpoint::InSwap, d)),
            Failpoint::PauseBeforeRebuild(d) => Some((Failpoint::BeforeRebuild, d)),
            _ => None,
        }
    }
}

impl Syncer {
    /// Act on the failpoint `at` if it is the configured one.
    async fn failpoint(&self, at: Failpoint) -> Result<(), Fail> {
        let Some(fp) = self.options.failpoint else {
            return Ok(());
        };
        if let Some((point, d)) = fp.pause() {
            if point == at {
                // Tests wait for this line (the point's name) before they act.
                warn!(?d, point = ?at, "failpoint: pausing at {at:?}");
                if let Some(n) = &self.options.paused {
                    n.notify_one();
                }
                tokio::time::sleep(d).await;
            }
            return Ok(());
        }
        if fp != at {
            return Ok(());
        }
        if self.options.failpoint_aborts_process {
            eprintln!("STIR_FAILPOINT {at:?}: aborting the process");
            std::process::abort();
        }
        Err(Fail::Killed(at))
    }
}

/// Internal failure: a step error (cleanup runs) or a simulated kill (nothing runs).
#[derive(Debug)]
enum Fail {
    Step(StepError),
    Killed(Failpoint),
    /// A lock was not granted within `lock-timeout` (or a deadlock was broken): nothing
    /// changed, and the caller may try again later in the run's window.
    Busy(String),
}

impl From<StepError> for Fail {
    fn from(e: StepError) -> Fail {
        Fail::Step(e)
    }
}

fn other(msg: impl Into<String>) -> Fail {
    Fail::Step(StepError::Other(msg.into()))
}

fn pg_err(what: &str, e: &tokio_postgres::Error) -> Fail {
    Fail::Step(StepError::Postgres(format!("{what}: {}", pg_message(e))))
}

/// The server's message (with detail and hint) or the client error; never the URL.
pub fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut m = format!("{}: {}", db.severity(), db.message());
            // Data and constraint errors carry row values in their DETAIL (`Key (id)=(42)`) and
            // CONTEXT (`line 501, column big: "…"`): kept out of the message, which reaches
            // the history and Slack; the log has them.
            let code = db.code().code();
            let data_error = code.starts_with("22") || code.starts_with("23");
            if let Some(d) = db.detail() {
                if data_error {
                    warn!(detail = %d, "PostgreSQL's detail of the error (kept out of alerts)");
                } else {
                    m.push_str(&format!(" ({d})"));
                }
            }
            if let Some(w) = db.where_() {
                let w = w.lines().next().unwrap_or(w);
                let w = w.split(": \"").next().unwrap_or(w);
                m.push_str(&format!(" [{w}]"));
            }
            m
        }
        None => {
            let mut m = redact_text(&e.to_string());
            let mut src = std::error::Error::source(e);
            while let Some(s) = src {
                m.push_str(&format!(": {s}"));
                src = s.source();
            }
            m
        }
    }
}

fn s3_err(e: crate::s3::S3Error) -> Fail {
    Fail::Step(StepError::S3(e.to_string()))
}

fn ch_err(what: &str, e: clickhouse::error::Error) -> Fail {
    Fail::Step(StepError::Other(format!(
        "clickhouse: {what}: {}",
        redact_text(e.to_string().trim())
    )))
}

pub use crate::warehouse::clickhouse_client;

/// Run one query and answer its TabSeparated text.
async fn ch_text(
    ch: &clickhouse::Client,
    ctx: &StepCtx,
    sql: &str,
    query_id: &str,
) -> Result<String, clickhouse::error::Error> {
    ctx.queries.begin(query_id);
    let r = async {
        let cursor = ch
            .query_raw(sql)
            .with_setting("query_id", query_id)
            .fetch_bytes("TabSeparated")?;
        crate::warehouse::Answer::new(cursor)
            .collect()
            .await
            .map_err(crate::warehouse::AnswerError::into_client_error)
    }
    .await;
    ctx.queries.end(query_id);
    r.map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// The staged files under `prefix` beyond the newest `keep`, `current` counted first and never
/// deleted. Only stir's own names directly under the prefix (`<run>.tsv`, `<run>.tsv.lz4`) are
/// candidates: anything else someone put there is left alone.
fn staged_to_delete(listed: &[Listed], prefix: &str, current: &str, keep: u32) -> Vec<String> {
    let mut others: Vec<&Listed> = listed
        .iter()
        .filter(|o| o.key != current)
        .filter(|o| {
            o.key.strip_prefix(prefix).is_some_and(|rest| {
                !rest.is_empty()
                    && !rest.contains('/')
                    && (rest.ends_with(".tsv") || rest.ends_with(".tsv.lz4"))
            })
        })
        .collect();
    // Newest first; the key (which holds the run id) breaks ties of the same second.
    others.sort_by(|a, b| (b.modified, &b.key).cmp(&(a.modified, &a.key)));
    others
        .into_iter()
        .skip(keep.saturating_sub(1) as usize)
        .map(|o| o.key.clone())
        .collect()
}

/// A key-safe form of the run id (it is part of the S3 key).
fn key_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What the export pass produced.
#[derive(Debug, Default, Clone, Copy)]
struct Exported {
    rows: u64,
    bytes: u64,
    parts: u32,
}

impl Syncer {
    /// Run sync `name` of `ctx`'s plan.
    pub(crate) async fn sync(
        &self,
        ctx: &StepCtx,
        name: &str,
        run_id: &str,
    ) -> Result<StepOutcome, StepError> {
        let plan = ctx.plan.clone();
        let Some(sync) = plan.syncs.iter().find(|s| s.name == name) else {
            return Err(StepError::Other(format!("no sync `{name}` in the plan")));
        };
        // This run's own staging names: another run of the sync never touches them.
        let sync = &Sync {
            postgres: sync.postgres.for_run(&stir_plan::run_tag(run_id)),
            ..sync.clone()
        };
        let mut job = self.job(ctx, &plan, sync, run_id).await?;
        let started = Instant::now();
        let result = job.run().await;
        let result = match result {
            Err(e) => {
                if !matches!(e, Fail::Killed(_)) {
                    job.clean_up_after_failure().await;
                }
                Err(e)
            }
            ok => ok,
        };
        // Finished, one way or the other: nothing of this job runs on the server any more.
        if let Some(c) = job.cancel.as_mut() {
            c.disarm();
        }
        match result {
            Ok((rows, phases)) => {
                info!(
                    sync = name,
                    rows,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "sync done"
                );
                Ok(StepOutcome {
                    rows: Some(rows),
                    phases,
                    ..Default::default()
                })
            }
            Err(e) => Err(step_error(&format!("sync `{name}`"), e)),
        }
    }
}

/// A job's failure as the step's error, prefixed with what failed (`sync `x``).
fn step_error(what: &str, e: Fail) -> StepError {
    match e {
        Fail::Killed(at) => StepError::Other(format!(
            "{what}: stopped at failpoint {at:?} (simulated kill: nothing cleaned up)"
        )),
        Fail::Busy(m) => StepError::Postgres(format!("{what}: {m}")),
        Fail::Step(e) => match e {
            StepError::Other(m) => StepError::Other(format!("{what}: {m}")),
            StepError::Postgres(m) => StepError::Postgres(format!("{what}: {m}")),
            StepError::S3(m) => StepError::S3(format!("{what}: {m}")),
            e => e,
        },
    }
}

impl Syncer {
    /// A job on `sync` of `plan` for the run `run_id`: its clients are made, nothing connects.
    async fn job<'a>(
        &'a self,
        ctx: &'a StepCtx,
        plan: &'a Plan,
        sync: &'a Sync,
        run_id: &'a str,
    ) -> Result<Job<'a>, StepError> {
        let name = &sync.name;
        let Some(staging) = plan.staging.as_ref() else {
            return Err(StepError::Other(format!(
                "sync `{name}`: the plan has no `staging s3` bucket"
            )));
        };
        // A named target's URL as the runtime read it at start, else from the environment
        // now (a config made in code); never from the plan.
        let var = stir_plan::target_url_var(sync.target.as_deref());
        let pg_url = match ctx.config.target_url(sync.target.as_deref()) {
            Ok(u) => u.to_string(),
            Err(e) => match sync.target.as_ref().and_then(|_| (self.env)(&var)) {
                Some(u) if !u.trim().is_empty() => u,
                _ => return Err(StepError::Other(e.to_string())),
            },
        };
        let mut s3_config =
            S3Config::from_env_with(ctx.config.s3_endpoint.as_deref(), self.env.as_ref());
        s3_config.attempts = self.options.s3_attempts;
        s3_config.backoff = self.options.s3_backoff;
        let s3 = S3::new(s3_config, &staging.bucket).await;
        let ch = clickhouse_client(&ctx.config);
        let compression = staging.compression;
        let key = format!(
            "{}{}{}",
            sync.s3_prefix,
            key_safe(run_id),
            staging::suffix(compression)
        );
        Ok(Job {
            runner: self,
            ctx,
            plan,
            sync,
            ch,
            s3,
            key,
            compression,
            keep: staging.keep,
            run_id,
            pg_url,
            qn: std::sync::atomic::AtomicUsize::new(0),
            upload_id: Mutex::new(None),
            pg: None,
            cancel: None,
            staging_oid: None,
            prepared: false,
        })
    }
}

struct Job<'a> {
    runner: &'a Syncer,
    ctx: &'a StepCtx,
    plan: &'a Plan,
    sync: &'a Sync,
    ch: clickhouse::Client,
    s3: S3,
    key: String,
    compression: StagingCompression,
    /// Staged files of this sync kept after success (`None`: all).
    keep: Option<u32>,
    run_id: &'a str,
    pg_url: String,
    /// ClickHouse statements sent so far (query ids `<run_id>-<idx>-<n>`).
    qn: std::sync::atomic::AtomicUsize,
    /// The open multipart upload, to abort on failure.
    upload_id: Mutex<Option<String>>,
    pg: Option<Client>,
    /// Cancels the statement the sync's session is running when the job is dropped before it
    /// finished (the run's timeout drops it): the server stops the work, not only the client.
    cancel: Option<CancelOnDrop>,
    /// The staging table this run created: the swap checks it is still this one.
    staging_oid: Option<u32>,
    /// The plan's `prepare` ran: a failure drops this run's staging table.
    prepared: bool,
}

/// Sends PostgreSQL a cancel request for the session when dropped, unless disarmed.
/// (The cancel request goes over TLS as the session did: it carries the session's secret key.)
struct CancelOnDrop(Option<(tokio_postgres::CancelToken, MakeRustlsConnect)>);

impl CancelOnDrop {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let Some((token, tls)) = self.0.take() else {
            return;
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = token.cancel_query(tls).await {
                    warn!(error = %pg_message(&e), "cannot cancel the sync's PostgreSQL statement");
                }
            });
        }
    }
}

impl Job<'_> {
    fn next_qid(&self) -> String {
        let n = self.qn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.ctx.query_id(self.run_id, n)
    }

    /// `db.table` of the exported model.
    fn source_table(&self) -> String {
        self.plan
            .model(&self.sync.from)
            .map(|m| m.table.clone())
            .unwrap_or_else(|| {
                format!(
                    "{}.{}",
                    ch_ident(&self.plan.warehouse.database),
                    ch_ident(&self.sync.from)
                )
            })
    }

    /// Answers the rows now live and the phase timings (load, finish, swap).
    async fn run(&mut self) -> Result<(u64, Vec<(&'static str, Duration)>), Fail> {
        let select = self.check_columns().await?;
        self.abort_stale_uploads().await?;
        let count_before = self.ch_count().await;
        self.take_target().await?;
        // Staging tables of killed runs are dropped.
        self.drop_leftover_staging().await?;
        // Refuse before the export what the swap would lose; carry the rest (catalog.rs).
        let (load, live) = (&self.sync.postgres, self.live());
        let staging = pg_qualified(&load.schema, &load.new_table);
        let carry =
            catalog::inspect(self.pg()?, &live, &staging, &load.prepare, &load.finish).await?;
        let backup = pg_qualified(&load.schema, &load.old_table);
        catalog::backup_depended_on(self.pg()?, &backup, &live).await?;
        self.prepared = true;
        self.prepare_staging().await?;
        self.bound().await?;
        let t0 = Instant::now();
        let (exported, copied) = match self.runner.options.load {
            LoadMode::Tee => self.export_and_copy(&select).await?,
            LoadMode::FromS3 => {
                let exported = self.export(&select, None).await?;
                self.runner.failpoint(Failpoint::AfterExport).await?;
                let copied = self.copy_from_s3().await?;
                (exported, copied)
            }
        };
        let load_time = t0.elapsed();
        let load_secs = load_time.as_secs_f64();
        info!(
            sync = %self.sync.name,
            rows = exported.rows,
            bytes = exported.bytes,
            parts = exported.parts,
            key = %self.key,
            secs = load_secs,
            "exported to S3 and copied into the staging table"
        );
        // Guard: every exported row was loaded, and (when ClickHouse's table did not change
        // meanwhile) every row of the model was exported.
        if copied != exported.rows {
            return Err(other(format!(
                "COPY loaded {copied} rows but the export has {} rows; refusing the swap",
                exported.rows
            )));
        }
        let count_after = self.ch_count().await;
        match (count_before, count_after) {
            (Some(b), Some(a)) if a == b && a != exported.rows => {
                return Err(other(format!(
                    "the export has {} rows but `{}` has {a} in ClickHouse; refusing the swap",
                    exported.rows,
                    self.source_table()
                )));
            }
            (Some(b), Some(a)) if a != b => warn!(
                sync = %self.sync.name, before = b, after = a,
                "the ClickHouse table changed during the export; skipping the count() guard"
            ),
            _ => {}
        }
        for (i, sql) in load.transform.iter().enumerate() {
            self.exec(sql, "transform").await?;
            if i == 0 {
                self.runner.failpoint(Failpoint::InTransform).await?;
            }
        }
        let t1 = Instant::now();
        for (i, sql) in load.finish.iter().enumerate() {
            self.exec(sql, "finish").await?;
            if i == 0 {
                self.runner.failpoint(Failpoint::InFinish).await?;
            }
        }
        carry.apply(self.pg()?, &staging).await?; // before the swap's lock
        let finish_time = t1.elapsed();
        info!(sync = %self.sync.name, secs = finish_time.as_secs_f64(), "staging table finished (logged, indexed, analyzed)");
        let new_rows = self.count(&load.count_new).await?;
        let live_exists = self.bool(&load.live_exists).await?;
        if live_exists {
            let live_rows = self.count(&load.count_live).await?;
            check_shrink(self.sync, new_rows, live_rows).map_err(other)?;
        }
        self.runner.failpoint(Failpoint::BeforeSwap).await?;
        let t2 = Instant::now();
        self.swap(swap::Incoming::Staging { rows: new_rows })
            .await?;
        let swap_time = t2.elapsed();
        for sql in &load.drop_old {
            if let Err(e) = self.exec(sql, "drop the backup").await {
                warn!(sync = %self.sync.name, error = ?e, "the swap is done but the backup could not be dropped; the next swap drops it");
            }
        }
        self.prune_staged().await;
        Ok((
            new_rows,
            vec![
                ("load", load_time),
                ("finish", finish_time),
                ("swap", swap_time),
            ],
        ))
    }

    /// Connect and take the target: everything after it, up to the end of the swap, is this
    /// job's. A swap a killed run left half done (materialized views not rebuilt yet) is
    /// finished first.
    async fn take_target(&mut self) -> Result<(), Fail> {
        let (pg, tls) = connect(
            &self.pg_url,
            &self.sync.name,
            self.run_id,
            &self.sync.postgres.schema,
        )
        .await?;
        self.cancel = Some(CancelOnDrop(Some((pg.cancel_token(), tls))));
        self.pg = Some(pg);
        // From here on no statement of the session may outlive the run (each later `exec`
        // sets it again, to what is left then).
        self.bound().await?;
        // One writer per target.
        self.lock_target().await?;
        self.finish_interrupted_swap().await
    }

    /// Delete this sync's staged files but the newest `keep` (this run's always stays). The
    /// sync has succeeded by now, so a failure here is only a warning; the next run tries again.
    async fn prune_staged(&self) {
        let Some(keep) = self.keep else { return };
        let listed = match self.s3.list_objects(&self.sync.s3_prefix).await {
            Ok(l) => l,
            Err(e) => {
                warn!(sync = %self.sync.name, error = %e, "cannot list the staged files to delete the old ones; the next run tries again");
                return;
            }
        };
        let old = staged_to_delete(&listed, &self.sync.s3_prefix, &self.key, keep);
        for key in &old {
            if let Err(e) = self.s3.delete_object(key).await {
                warn!(sync = %self.sync.name, error = %e, "cannot delete an old staged file; the next run tries again");
                return;
            }
        }
        if !old.is_empty() {
            info!(sync = %self.sync.name, deleted = old.len(), keep, "deleted old staged files");
        }
    }

    fn pg(&self) -> Result<&Client, Fail> {
        self.pg
            .as_ref()
            .ok_or_else(|| other("no PostgreSQL connection"))
    }

    /// The time left in the run's window; `None` without a deadline.
    fn remaining(&self) -> Option<Duration> {
        self.ctx
            .deadline
            .map(|d| d.saturating_duration_since(tokio::time::Instant::now()))
    }

    /// Bound the session's next statements by the run's deadline, so no statement of this
    /// sync outlives the run on the server (a dropped client alone does not stop it).
    async fn bound(&self) -> Result<(), Fail> {
        let Some(left) = self.remaining() else {
            return Ok(());
        };
        if left.is_zero() {
            return Err(other(
                "the run's window is over; stopping before the next statement",
            ));
        }
        self.pg()?
            .batch_execute(&format!(
                "SET statement_timeout = {}",
                left.as_millis().max(1)
            ))
            .await
            .map_err(|e| pg_err("set statement_timeout", &e))
    }

    async fn exec(&self, sql: &str, what: &str) -> Result<(), Fail> {
        self.bound().await?;
        self.pg()?
            .batch_execute(sql)
            .await
            .map_err(|e| pg_err(&format!("{what} `{}`", first_line(sql)), &e))
    }

    async fn count(&self, sql: &str) -> Result<u64, Fail> {
        self.bound().await?;
        let row = self
            .pg()?
            .query_one(sql, &[])
            .await
            .map_err(|e| pg_err(&format!("`{sql}`"), &e))?;
        let n: i64 = row
            .try_get(0)
            .map_err(|e| pg_err(&format!("`{sql}`"), &e))?;
        Ok(n as u64)
    }

    async fn bool(&self, sql: &str) -> Result<bool, Fail> {
        let row = self
            .pg()?
            .query_one(sql, &[])
            .await
            .map_err(|e| pg_err(&format!("`{sql}`"), &e))?;
        row.try_get(0).map_err(|e| pg_err(&format!("`{sql}`"), &e))
    }

    /// Take the target's advisory lock for the rest of the session, or refuse: two runs of one
    /// sync (a `--once --force` beside the leader's, two leaders, a resumed VM) must never
    /// interleave their staging, guards and swap.
    async fn lock_target(&self) -> Result<(), Fail> {
        let live = self.live();
        let pg = self.pg()?;
        let got: bool = pg
            .query_one(
                "SELECT pg_try_advisory_lock($1, hashtext($2))",
                &[&TARGET_LOCK_CLASS, &live],
            )
            .await
            .map_err(|e| pg_err("take the target's lock", &e))?
            .get(0);
        if got {
            return Ok(());
        }
        let holder = pg
            .query_opt(TARGET_LOCK_HOLDER_SQL, &[&TARGET_LOCK_CLASS, &live])
            .await
            .ok()
            .flatten()
            .map(|r| {
                format!(
                    " (held by `{}`, PostgreSQL pid {}, since {})",
                    r.get::<_, String>(0),
                    r.get::<_, i32>(1),
                    r.get::<_, String>(2)
                )
            })
            .unwrap_or_default();
        Err(Fail::Busy(format!(
            "another run is syncing {live}{holder}; refusing to start beside it (the live table is untouched)\n\
             help: one writer per table at a time: run it again when the other has finished (a scheduled sync retries by itself within its window)"
        )))
    }

    /// Create the staging table with a comment that names it as this run's, and note its OID, so
    /// the swap can tell it is still the table this run loaded, and a later run can tell a
    /// killed run's leftover from anything else.
    ///
    /// The plan's `prepare` and the mark run as one implicit transaction (one simple-query
    /// batch), so a killed run never leaves an unmarked staging table nobody would drop.
    async fn prepare_staging(&mut self) -> Result<(), Fail> {
        let load = &self.sync.postgres;
        let staging = pg_qualified(&load.schema, &load.new_table);
        let mark = pg_literal(&format!("{}{}", staging_mark(load), self.run_id));
        let mut batch = load.prepare.join(";\n");
        batch.push_str(&format!(";\nCOMMENT ON TABLE {staging} IS {mark}"));
        self.exec(&batch, "prepare the staging table").await?;
        let oid: u32 = self
            .pg()?
            .query_one("SELECT to_regclass($1)::oid", &[&staging])
            .await
            .map_err(|e| pg_err("read the staging table's oid", &e))?
            .get(0);
        self.staging_oid = Some(oid);
        Ok(())
    }

    /// Drop the staging tables killed runs of this sync left (found by their mark). Only
    /// called under the target's lock, so none of them belongs to a live run.
    async fn drop_leftover_staging(&self) -> Result<(), Fail> {
        let load = &self.sync.postgres;
        let mark = format!(
            "{}%",
            staging_mark(load).replace('%', "\\%").replace('_', "\\_")
        );
        let rows = self
            .pg()?
            .query(
                LEFTOVER_STAGING_SQL,
                &[&load.schema, &mark, &load.table, &load.old_table],
            )
            .await
            .map_err(|e| pg_err("list leftover staging tables", &e))?;
        for r in rows {
            let name: String = r.get(0);
            self.exec(
                &format!("DROP TABLE IF EXISTS {}", pg_qualified(&load.schema, &name)),
                "drop a killed run's staging table",
            )
            .await?;
            info!(sync = %self.sync.name, table = %name, "dropped a staging table a killed run left");
        }
        Ok(())
    }

    /// `count()` of the source table; `None` if it cannot be had (the guard is then skipped).
    async fn ch_count(&self) -> Option<u64> {
        let qid = self.next_qid();
        let sql = format!("SELECT count() FROM {}", self.source_table());
        match ch_text(&self.ch, self.ctx, &sql, &qid).await {
            Ok(t) => t.trim().parse().ok(),
            Err(e) => {
                warn!(sync = %self.sync.name, error = %redact_text(&e.to_string()), "cannot count the ClickHouse table");
                None
            }
        }
    }

    fn live(&self) -> String {
        let load = &self.sync.postgres;
        format!("{}.{}", pg_ident(&load.schema), pg_ident(&load.table))
    }

    /// The swap transaction: the plan's renames, grants and views carried over.
    /// After a failure: drop the staging table (on a new connection if needed), abort the upload.
    async fn clean_up_after_failure(&mut self) {
        let id = self.upload_id.lock().ok().and_then(|mut g| g.take());
        if let Some(id) = id {
            if let Err(e) = self.s3.abort_multipart(&self.key, &id).await {
                warn!(sync = %self.sync.name, error = %e, "cannot abort the multipart upload; the next run aborts it");
            }
        }
        if !self.prepared {
            return;
        }
        let pg = match self.pg.take() {
            Some(c) if !c.is_closed() => Some(c),
            _ => connect(
                &self.pg_url,
                &self.sync.name,
                self.run_id,
                &self.sync.postgres.schema,
            )
            .await
            .ok()
            .map(|(c, _)| c),
        };
        let Some(pg) = pg else {
            warn!(sync = %self.sync.name, "cannot reach PostgreSQL to drop the staging table; the next run drops it");
            return;
        };
        for sql in &self.sync.postgres.cleanup {
            if let Err(e) = pg.batch_execute(sql).await {
                warn!(sync = %self.sync.name, error = %pg_message(&e), "cleanup failed; the next run drops the staging table");
            }
        }
    }
}
/// The first key of the targets' advisory locks (`pg_advisory_lock(int4, int4)`, a key space
/// apart from the leader's and the history's `bigint` keys); the second is `hashtext` of the
/// qualified live table.
const TARGET_LOCK_CLASS: i32 = 0x5354_4952; // "STIR"

/// Who holds a target's lock: application name, pid, since when.
const TARGET_LOCK_HOLDER_SQL: &str = "SELECT coalesce(a.application_name, ''), a.pid, \
    coalesce(to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS UTC'), '?') \
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
    WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::int4::oid \
      AND l.objid = hashtext($2)::oid AND l.objsubid = 2 LIMIT 1";

/// Tables in schema `$1` whose comment matches the LIKE pattern `$2`, never the live table `$3`
/// or its backup `$4`, whatever their comments say.
const LEFTOVER_STAGING_SQL: &str = "SELECT c.relname::text FROM pg_class c \
    JOIN pg_namespace n ON n.oid = c.relnamespace \
    WHERE n.nspname = $1 AND c.relkind = 'r' \
      AND obj_description(c.oid, 'pg_class') LIKE $2 \
      AND c.relname::text NOT IN ($3, $4) ORDER BY 1";

/// The comment prefix of a sync's staging tables; the run id follows.
fn staging_mark(load: &stir_plan::SyncLoad) -> String {
    format!("stir staging table of {}.{}, run ", load.schema, load.table)
}

/// Connect for one sync; the connection is driven by a background task. The session's
/// search_path is the serving schema, so enrich statements name app tables unqualified.
async fn connect(
    url: &str,
    sync: &str,
    run_id: &str,
    schema: &str,
) -> Result<(Client, MakeRustlsConnect), Fail> {
    let refused = |what: &str, m: String| Fail::Step(StepError::Postgres(format!("{what}: {m}")));
    let mut pg =
        crate::tls::postgres(url).map_err(|m| refused("the serving target's URL is invalid", m))?;
    // Names the run too, so an operator (and the refusal of a second run) can tell who holds
    // a target; PostgreSQL keeps the first 63 bytes.
    pg.config
        .application_name(format!("stir sync {sync} {run_id}"))
        .connect_timeout(Duration::from_secs(30));
    let (client, connection) = pg
        .connect()
        .await
        .map_err(|m| refused(&format!("cannot connect to {}", redact_url(url)), m))?;
    let name = sync.to_string();
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            warn!(sync = %name, error = %pg_message(&e), "sync's PostgreSQL connection closed");
        }
    });
    client
        .batch_execute(&format!("SET search_path TO {}, public", pg_ident(schema)))
        .await
        .map_err(|e| pg_err("cannot set search_path", &e))?;
    // PostgreSQL >= 14 notices a vanished client during a long statement (a killed runtime's
    // CREATE INDEX stops within a second instead of running on, holding the target's lock).
    client
        .batch_execute(
            "SELECT set_config('client_connection_check_interval', '1000', false) \
             WHERE current_setting('server_version_num')::int >= 140000",
        )
        .await
        .map_err(|e| pg_err("cannot set client_connection_check_interval", &e))?;
    Ok((client, pg.tls))
}

/// Refuse a new table that lost more than `max_shrink_pct` of the live table's rows, or that is
/// empty while the live table has rows; `allow_empty` lets an empty one through.
fn check_shrink(sync: &Sync, new_rows: u64, live_rows: u64) -> Result<(), String> {
    if new_rows >= live_rows {
        return Ok(());
    }
    let table = format!("{}.{}", sync.postgres.schema, sync.postgres.table);
    // An empty result is its own decision: `allow-empty` says it is expected, whatever the
    // max-shrink; without it, not even `max-shrink none` lets it through.
    if new_rows == 0 {
        if sync.allow_empty {
            return Ok(());
        }
        return Err(format!(
            "refusing the swap: the new table has 0 rows, the live `{table}` has {live_rows}; if an empty table is right, set `allow-empty=#true` on the sync"
        ));
    }
    let Some(max) = sync.max_shrink_pct else {
        return Ok(());
    };
    let lost = (live_rows - new_rows) as f64 * 100.0 / live_rows as f64;
    if lost > max {
        return Err(format!(
            "refusing the swap: the new table has {new_rows} rows, the live `{table}` has {live_rows} ({lost:.1}% fewer; max-shrink is {max}%); if the loss is expected, raise the sync's `max-shrink` (e.g. `max-shrink \"{}%\"`) or set `max-shrink none`",
            lost.ceil()
        ));
    }
    Ok(())
}

fn count_lines(b: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', b).count() as u64
}

fn first_line(sql: &str) -> String {
    let l = sql.lines().next().unwrap_or("");
    if l.len() < sql.trim_end().len() {
        format!("{l} …")
    } else {
        l.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PostgreSQL error names the statement by its first line, with `…` when more follows,
    /// so an operator finds it in the plan without the whole statement in the log.
    #[test]
    fn errors_name_a_statement_by_its_first_line() {
        assert_eq!(first_line("DROP TABLE t"), "DROP TABLE t");
        assert_eq!(first_line("DROP TABLE t\n"), "DROP TABLE t");
        assert_eq!(
            first_line("CREATE TABLE t (\n  a int\n)"),
            "CREATE TABLE t ( …"
        );
        assert_eq!(first_line(""), "");
    }

    /// Every name the doc lists parses to its point, and `pause_` to its pause (120 s); the
    /// process tests that set `STIR_FAILPOINT` use only some of them.
    #[test]
    fn failpoints_parse() {
        let d = Duration::from_secs(120);
        let points = [
            ("after_export", Failpoint::AfterExport, None),
            (
                "during_copy",
                Failpoint::DuringCopy,
                Some(Failpoint::PauseDuringCopy(d)),
            ),
            (
                "in_transform",
                Failpoint::InTransform,
                Some(Failpoint::PauseInTransform(d)),
            ),
            (
                "in_finish",
                Failpoint::InFinish,
                Some(Failpoint::PauseInFinish(d)),
            ),
            (
                "before_swap",
                Failpoint::BeforeSwap,
                Some(Failpoint::PauseBeforeSwap(d)),
            ),
            (
                "in_swap",
                Failpoint::InSwap,
                Some(Failpoint::PauseInSwap(d)),
            ),
            (
                "before_rebuild",
                Failpoint::BeforeRebuild,
                Some(Failpoint::PauseBeforeRebuild(d)),
            ),
        ];
        for (name, at, paused) in points {
            assert_eq!(
                Failpoint::parse(&format!("sync:{name}")),
                Some(at),
                "{name}"
            );
            assert_eq!(
                Failpoint::parse(&format!(" sync:pause_{name}\n")),
                paused,
                "{name}"
            );
        }
        assert_eq!(Failpoint::parse("nope"), None);
        assert_eq!(Failpoint::parse("sync:nope"), None);
        assert_eq!(Failpoint::parse("after_export"), None);
    }

    #[test]
    fn old_staged_files_beyond_keep_are_chosen_newest_kept() {
        let o = |key: &str, modified: i64| Listed {
            key: key.into(),
            modified,
        };
        let p = "tmp/leaderboard/";
        let listed = vec![
            o("tmp/leaderboard/r1.tsv.lz4", 100),
            o("tmp/leaderboard/r2.tsv", 200),
            o("tmp/leaderboard/r3.tsv.lz4", 300),
            o("tmp/leaderboard/r4.tsv.lz4", 400),
            o("tmp/leaderboard/notes.txt", 50),
            o("tmp/leaderboard/sub/r0.tsv", 10),
        ];
        // keep=2: this run (r4) and r3 stay; r1 and r2 go; what stir did not write stays.
        let mut d = staged_to_delete(&listed, p, "tmp/leaderboard/r4.tsv.lz4", 2);
        d.sort();
        assert_eq!(d, ["tmp/leaderboard/r1.tsv.lz4", "tmp/leaderboard/r2.tsv"]);
        // This run's file is kept even when the listing does not show it yet.
        let d = staged_to_delete(&listed[..3], p, "tmp/leaderboard/r9.tsv.lz4", 1);
        assert_eq!(d.len(), 3);
        // keep=1 keeps only this run's; a large keep deletes nothing.
        assert_eq!(
            staged_to_delete(&listed, p, "tmp/leaderboard/r4.tsv.lz4", 1).len(),
            3
        );
        assert!(staged_to_delete(&listed, p, "tmp/leaderboard/r4.tsv.lz4", 10).is_empty());
        // Same second: the later run id sorts first and stays.
        let tie = vec![o("x/a1.tsv", 5), o("x/a2.tsv", 5), o("x/a3.tsv", 5)];
        assert_eq!(staged_to_delete(&tie, "x/", "x/a3.tsv", 2), ["x/a1.tsv"]);
    }

    #[test]
    fn keys_are_safe() {
        assert_eq!(
            key_safe("dbt_daily-20260101T001500000Z-a1"),
            "dbt_daily-20260101T001500000Z-a1"
        );
        assert_eq!(key_safe("a/b c"), "a_b_c");
    }

    fn guarded(max_shrink_pct: Option<f64>, allow_empty: bool) -> Sync {
        let load = stir_plan::SyncLoad {
            schema: "app".into(),
            table: "vals".into(),
            new_table: "vals__stir_new_{run}".into(),
            old_table: "vals__stir_old".into(),
            prepare: vec![],
            copy: String::new(),
            transform: vec![],
            finish: vec![],
            live_exists: String::new(),
            count_new: String::new(),
            count_live: String::new(),
            swap: vec![],
            drop_old: vec![],
            rollback: vec![],
            cleanup: vec![],
        };
        Sync {
            name: "vals".into(),
            from: "mart_values".into(),
            clickhouse: stir_plan::SyncExport {
                select: String::new(),
                format: "TabSeparated".into(),
                columns: vec![],
            },
            postgres: load,
            s3_prefix: "p/vals/".into(),
            max_shrink_pct,
            allow_empty,
            lock_timeout_ms: 5000,
            keep_backup: false,
            target: None,
        }
    }

    #[test]
    fn shrink_guard_refuses_big_losses_and_empty_results() {
        let default = guarded(Some(50.0), false);
        // 60% lost: refused, with both counts, the table and the fix.
        let e = check_shrink(&default, 400, 1000).unwrap_err();
        assert!(
            e.contains("has 400 rows") && e.contains("`app.vals` has 1000"),
            "{e}"
        );
        assert!(
            e.contains("max-shrink is 50%") && e.contains("max-shrink \"60%\""),
            "{e}"
        );
        // Exactly 50% lost, growth and equality pass.
        assert!(check_shrink(&default, 500, 1000).is_ok());
        assert!(check_shrink(&default, 1000, 1000).is_ok());
        assert!(check_shrink(&default, 2000, 1000).is_ok());
        // Empty over rows: refused, naming allow-empty; empty over empty passes.
        let e = check_shrink(&default, 0, 3).unwrap_err();
        assert!(
            e.contains("0 rows") && e.contains("has 3") && e.contains("allow-empty=#true"),
            "{e}"
        );
        assert!(check_shrink(&default, 0, 0).is_ok());
        // max-shrink none: any loss but to empty.
        let none = guarded(None, false);
        assert!(check_shrink(&none, 1, 1000).is_ok());
        assert!(check_shrink(&none, 0, 1000)
            .unwrap_err()
            .contains("allow-empty"));
        // allow-empty lets an empty result through even under a max-shrink.
        assert!(check_shrink(&guarded(Some(50.0), true), 0, 1000).is_ok());
        assert!(check_shrink(&guarded(None, true), 0, 1000).is_ok());
        // allow-empty does not lift max-shrink for a non-empty result.
        assert!(check_shrink(&guarded(Some(50.0), true), 1, 1000).is_err());
    }
}
