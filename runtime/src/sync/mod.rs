//! `sync` steps: a ClickHouse model -> an S3 staging object -> a PostgreSQL table, swapped in
//! atomically. Also [`Runner`], the [`StepRunner`] of the runtime (requests are in `request.rs`).
//!
//! One sync, in order:
//! 1. **Check** the declared columns against ClickHouse (`DESCRIBE`) before touching
//!    PostgreSQL: a missing column or an incompatible type refuses the step. So does a live
//!    table with what the swap cannot carry (triggers, foreign keys, row security, rules,
//!    publications), checked again under the swap's lock.
//! 2. **Clean** what a killed run left: unfinished multipart uploads under the sync's prefix
//!    (the staging table is dropped by the plan's `prepare`).
//! 3. **Export and load in one pass**: the TabSeparated answer of `clickhouse.select` is
//!    streamed in chunks; each chunk goes both into the S3 multipart upload
//!    (`<s3_prefix><run_id>.tsv.lz4`, one LZ4 frame, or `.tsv` with `compression=none`; 16 MiB
//!    parts; see `staging.rs`) and into `COPY … FROM STDIN` on the staging table. The COPY is committed only after the S3 object is complete, so what is loaded is
//!    exactly the staged object. Memory stays bounded (a part being filled, one being
//!    uploaded, a few chunks queued for COPY); nothing touches the local disk.
//!    [`LoadMode::FromS3`] instead uploads first and then streams the object back into COPY.
//! 4. **Transform** (defaults, enrich, delete-where) and **finish** (SET LOGGED, indexes,
//!    VACUUM (ANALYZE)).
//! 5. **Guards**: rows in the file = rows COPY loaded (= `count()` in ClickHouse when the table
//!    did not change during the export); `max-shrink` against the live table.
//! 6. **Swap** in one transaction: the plan's renames (live -> `__stir_old`, new -> live),
//!    plus the live table's grants copied to the new one and every view on the live table
//!    recreated (`CREATE OR REPLACE VIEW`, options kept) so it reads the new table;
//!    materialized views on it, and everything that reads them, are dropped and created again
//!    on the new table with their indexes, grants and comments; the table's and its columns'
//!    comments follow too.
//!    Readers wait on the rename's lock for a moment and then see the new table; never a
//!    missing one.
//! 7. Drop the backup (unless `keep-backup`), then the sync's staged files beyond the newest
//!    `staging.keep` (a failure there is a warning: the sync is done).
//!
//! Any failure before the swap leaves the live table as it was and runs the plan's `cleanup`
//! (drop the staging table) and aborts the multipart upload.
//!
//! Invariant: credentials never reach SQL text, the S3 key, a log line or an error: URLs are
//! shown through [`redact_url`], PostgreSQL errors through their server message only.

mod catalog;
mod columns;
mod export;
mod swap;

use catalog::uncarried;

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::SinkExt;
use stir::manifest::StagingCompression;
use stir::plan::{ExportColumn, Plan, Sync};
use tokio::sync::mpsc;
use tokio_postgres::{Client, CopyInSink, NoTls};
use tracing::{info, warn};

use crate::config::redact_url;
use crate::request::{self, RequestOptions};
use crate::s3::{Listed, Part, S3Config, S3};
use crate::staging;
use crate::step::{BoxFut, StepCtx, StepError, StepOutcome, StepRunner};
use crate::warehouse::{escape_literal, quote_ident};

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
    /// Everything is loaded and checked; the swap has not started.
    BeforeSwap,
    PauseDuringCopy(Duration),
    PauseBeforeSwap(Duration),
}

impl Failpoint {
    /// `STIR_FAILPOINT=sync:after_export|sync:during_copy|sync:before_swap` (debug builds only;
    /// the process aborts there), `sync:pause_before_swap` (sleeps 120 s).
    pub fn parse(s: &str) -> Option<Failpoint> {
        match s.trim() {
            "sync:after_export" => Some(Failpoint::AfterExport),
            "sync:during_copy" => Some(Failpoint::DuringCopy),
            "sync:before_swap" => Some(Failpoint::BeforeSwap),
            "sync:pause_during_copy" => Some(Failpoint::PauseDuringCopy(Duration::from_secs(120))),
            "sync:pause_before_swap" => Some(Failpoint::PauseBeforeSwap(Duration::from_secs(120))),
            _ => None,
        }
    }
}

/// Reads a variable of the environment (the process's in production; a map in tests).
pub type EnvFn = Arc<dyn Fn(&str) -> Option<String> + Send + std::marker::Sync>;

/// How the runner behaves; [`Runner::from_env`] is what the binary uses.
#[derive(Clone)]
pub struct RunnerOptions {
    /// AWS credentials and `STIR_ENDPOINT_<NAME>` are read through this.
    pub env: EnvFn,
    pub load: LoadMode,
    pub s3_attempts: u32,
    pub s3_backoff: Duration,
    /// Multipart part size ([`PART_SIZE`]; tests use smaller parts, S3 itself wants >= 5 MiB).
    pub part_size: usize,
    pub failpoint: Option<Failpoint>,
    /// The process aborts at the failpoint (the binary) instead of returning an error.
    pub failpoint_aborts_process: bool,
    pub request: RequestOptions,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            env: Arc::new(|k: &str| std::env::var(k).ok()),
            load: LoadMode::Tee,
            s3_attempts: 4,
            s3_backoff: Duration::from_millis(500),
            part_size: PART_SIZE,
            failpoint: None,
            failpoint_aborts_process: false,
            request: RequestOptions::default(),
        }
    }
}

/// The runtime's runner for `sync` and `request` steps.
#[derive(Clone)]
pub struct Runner {
    options: RunnerOptions,
}

impl Runner {
    pub fn new(options: RunnerOptions) -> Runner {
        Runner { options }
    }

    /// The process environment; in debug builds `STIR_FAILPOINT` (see [`Failpoint::parse`]).
    pub fn from_env() -> Runner {
        #[allow(unused_mut)]
        let mut options = RunnerOptions::default();
        #[cfg(debug_assertions)]
        if let Some(fp) = std::env::var("STIR_FAILPOINT")
            .ok()
            .and_then(|v| Failpoint::parse(&v))
        {
            warn!(failpoint = ?fp, "STIR_FAILPOINT is set: sync steps stop there (debug build)");
            options.failpoint = Some(fp);
            options.failpoint_aborts_process = true;
        }
        Runner { options }
    }

    pub fn options(&self) -> &RunnerOptions {
        &self.options
    }

    /// Act on the failpoint `at` if it is the configured one.
    async fn failpoint(&self, at: Failpoint) -> Result<(), Fail> {
        match self.options.failpoint {
            Some(Failpoint::PauseDuringCopy(d)) if at == Failpoint::DuringCopy => {
                warn!(?d, "failpoint: pausing during COPY");
                tokio::time::sleep(d).await;
                Ok(())
            }
            Some(Failpoint::PauseBeforeSwap(d)) if at == Failpoint::BeforeSwap => {
                warn!(?d, "failpoint: pausing before the swap");
                tokio::time::sleep(d).await;
                Ok(())
            }
            Some(fp) if fp == at => {
                if self.options.failpoint_aborts_process {
                    eprintln!("STIR_FAILPOINT {at:?}: aborting the process");
                    std::process::abort();
                }
                Err(Fail::Killed(at))
            }
            _ => Ok(()),
        }
    }
}

impl StepRunner for Runner {
    fn run_sync<'a>(
        &'a self,
        ctx: &'a StepCtx,
        sync: &'a str,
        run_id: &'a str,
    ) -> BoxFut<'a, Result<StepOutcome, StepError>> {
        Box::pin(self.sync(ctx, sync, run_id))
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
}

/// Internal failure: a step error (cleanup runs) or a simulated kill (nothing runs).
#[derive(Debug)]
enum Fail {
    Step(StepError),
    Killed(Failpoint),
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
            if let Some(d) = db.detail() {
                m.push_str(&format!(" ({d})"));
            }
            if let Some(w) = db.where_() {
                m.push_str(&format!(" [{}]", w.lines().next().unwrap_or(w)));
            }
            m
        }
        None => {
            let mut m = redact_url(&e.to_string());
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
        redact_url(e.to_string().trim())
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
        let mut cursor = ch
            .query_raw(sql)
            .with_setting("query_id", query_id)
            .fetch_bytes("TabSeparated")?;
        cursor.collect().await
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

impl Runner {
    async fn sync(
        &self,
        ctx: &StepCtx,
        name: &str,
        run_id: &str,
    ) -> Result<StepOutcome, StepError> {
        let plan = ctx.plan.clone();
        let Some(sync) = plan.syncs.iter().find(|s| s.name == name) else {
            return Err(StepError::Other(format!("no sync `{name}` in the plan")));
        };
        let Some(staging) = plan.staging.as_ref() else {
            return Err(StepError::Other(format!(
                "sync `{name}`: the plan has no `staging s3` bucket"
            )));
        };
        let pg_url = ctx
            .config
            .require_postgres()
            .map_err(|e| StepError::Other(e.to_string()))?
            .to_string();
        let mut s3_config =
            S3Config::from_env_with(ctx.config.s3_endpoint.as_deref(), self.options.env.as_ref());
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
        let mut job = Job {
            runner: self,
            ctx,
            plan: &plan,
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
        };
        let started = Instant::now();
        match job.run().await {
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
                })
            }
            Err(Fail::Killed(at)) => Err(StepError::Other(format!(
                "sync `{name}`: stopped at failpoint {at:?} (simulated kill: nothing cleaned up)"
            ))),
            Err(Fail::Step(e)) => {
                job.clean_up_after_failure().await;
                Err(match e {
                    StepError::Other(m) => StepError::Other(format!("sync `{name}`: {m}")),
                    StepError::Postgres(m) => StepError::Postgres(format!("sync `{name}`: {m}")),
                    StepError::S3(m) => StepError::S3(format!("sync `{name}`: {m}")),
                    e => e,
                })
            }
        }
    }
}

struct Job<'a> {
    runner: &'a Runner,
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
                    quote_ident(&self.plan.warehouse.database),
                    quote_ident(&self.sync.from)
                )
            })
    }

    /// Answers the rows now live and the phase timings (load, finish, swap).
    async fn run(&mut self) -> Result<(u64, Vec<(&'static str, Duration)>), Fail> {
        let select = self.check_columns().await?;
        self.abort_stale_uploads().await?;
        let count_before = self.ch_count().await;
        let pg = connect(&self.pg_url, &self.sync.name, &self.sync.postgres.schema).await?;
        // Refuse before the export what the swap would lose; carry the rest (catalog.rs).
        let (load, live) = (&self.sync.postgres, self.live());
        let staging = qualified(&load.schema, &load.new_table);
        let carry = catalog::inspect(&pg, &live, &staging, &load.prepare, &load.finish).await?;
        self.pg = Some(pg);
        let load = &self.sync.postgres;
        for sql in &load.prepare {
            self.exec(sql, "prepare").await?;
        }
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
        for sql in &load.transform {
            self.exec(sql, "transform").await?;
        }
        let t1 = Instant::now();
        for sql in &load.finish {
            self.exec(sql, "finish").await?;
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
        self.swap().await?;
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

    async fn exec(&self, sql: &str, what: &str) -> Result<(), Fail> {
        self.pg()?
            .batch_execute(sql)
            .await
            .map_err(|e| pg_err(&format!("{what} `{}`", first_line(sql)), &e))
    }

    async fn count(&self, sql: &str) -> Result<u64, Fail> {
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

    /// `count()` of the source table; `None` if it cannot be had (the guard is then skipped).
    async fn ch_count(&self) -> Option<u64> {
        let qid = self.next_qid();
        let sql = format!("SELECT count() FROM {}", self.source_table());
        match ch_text(&self.ch, self.ctx, &sql, &qid).await {
            Ok(t) => t.trim().parse().ok(),
            Err(e) => {
                warn!(sync = %self.sync.name, error = %redact_url(&e.to_string()), "cannot count the ClickHouse table");
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
        let pg = match self.pg.take() {
            Some(c) if !c.is_closed() => Some(c),
            _ => connect(&self.pg_url, &self.sync.name, &self.sync.postgres.schema)
                .await
                .ok(),
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
/// Connect for one sync; the connection is driven by a background task. The session's
/// search_path is the serving schema, so enrich statements name app tables unqualified.
async fn connect(url: &str, sync: &str, schema: &str) -> Result<Client, Fail> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| {
        Fail::Step(StepError::Postgres(format!(
            "STIR_POSTGRES_URL is invalid: {}",
            pg_message(&e)
        )))
    })?;
    config.application_name(format!("stir sync {sync}"));
    config.connect_timeout(Duration::from_secs(30));
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| pg_err(&format!("cannot connect to {}", redact_url(url)), &e))?;
    let name = sync.to_string();
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            warn!(sync = %name, error = %pg_message(&e), "sync's PostgreSQL connection closed");
        }
    });
    client
        .batch_execute(&format!(
            "SET search_path TO {}, public",
            stir::planner::pg_ident(schema)
        ))
        .await
        .map_err(|e| pg_err("cannot set search_path", &e))?;
    Ok(client)
}

/// Refuse a new table that lost more than `max_shrink_pct` of the live table's rows.
fn check_shrink(sync: &Sync, new_rows: u64, live_rows: u64) -> Result<(), String> {
    let Some(max) = sync.max_shrink_pct else {
        return Ok(());
    };
    if live_rows == 0 || new_rows >= live_rows {
        return Ok(());
    }
    let lost = (live_rows - new_rows) as f64 * 100.0 / live_rows as f64;
    if lost > max {
        return Err(format!(
            "refusing the swap: the new table has {new_rows} rows, the live `{}.{}` has {live_rows} ({lost:.1}% fewer; max-shrink is {max}%)",
            sync.postgres.schema, sync.postgres.table
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

fn pg_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn pg_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `DROP`/`CREATE` need `"`-quoting; exported for tests and the benchmark.
pub fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", pg_ident(schema), pg_ident(table))
}

/// A ClickHouse string literal.
pub fn ch_literal(s: &str) -> String {
    format!("'{}'", escape_literal(s))
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failpoints_parse() {
        assert_eq!(
            Failpoint::parse("sync:after_export"),
            Some(Failpoint::AfterExport)
        );
        assert_eq!(Failpoint::parse("nope"), None);
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
}
