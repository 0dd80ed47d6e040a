//! Run history in PostgreSQL (schema `stir` by default): `runs` and `steps`, created on first
//! start. Writing history never fails a run: errors are logged and the run goes on.

pub use crate::errors::pg_message;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio_postgres::Client;
use tracing::{error, warn};

use crate::config::redact_url;
use crate::run::BoxFut;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("cannot connect to PostgreSQL at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("PostgreSQL: {0}")]
    Query(String),
    /// The server refused the statement itself (a constraint, a permission, the SQL).
    #[error("PostgreSQL refused: {message}")]
    Refused { sqlstate: String, message: String },
}

impl From<tokio_postgres::Error> for HistoryError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            // Classes 08 (connection), 53 (resources), 57 (operator intervention: shutdown,
            // cancel), 58 (system) and 40 (serialization, deadlock) are faults worth a retry.
            Some(db) if !matches!(&db.code().code()[..2], "08" | "40" | "53" | "57" | "58") => {
                HistoryError::Refused {
                    sqlstate: db.code().code().to_string(),
                    message: pg_message(&e),
                }
            }
            _ => HistoryError::Query(pg_message(&e)),
        }
    }
}

impl HistoryError {
    /// A fault of the link or the server that a retry may get past.
    pub fn is_transient(&self) -> bool {
        !matches!(self, HistoryError::Refused { .. })
    }

    /// The insert of a run's row hit an existing row: another runtime recorded this fire.
    pub fn is_duplicate(&self) -> bool {
        matches!(self, HistoryError::Refused { sqlstate, .. } if sqlstate == "23505")
    }
}

/// The start of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub id: String,
    pub schedule: String,
    pub fire_time: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub plan_hash: String,
    pub attempt: u32,
    /// Started by the leader's scheduler (not `--once` or `--bootstrap`).
    pub by_leader: bool,
    /// The runtime process that runs it ([`crate::leader::instance_id`]): a leader's runs are
    /// alive exactly while that process holds its instance lock.
    pub runtime: String,
    /// Schedules this run holds besides its own (a manual `run` holds the owners of the
    /// models it builds): while it runs, and until `deadline`, a claim that conflicts with one
    /// of them finds it.
    pub holds: Vec<String>,
    /// The end of the run's window (fire + timeout): a run never outlives it, so a run whose
    /// process died stops holding then.
    pub deadline: Option<DateTime<Utc>>,
    /// A run of a heavy schedule (or a heavy manual run): every other heavy claim, of any
    /// process on any plan, finds it ([`Conflict::any_heavy`]).
    pub heavy: bool,
}

/// Runs of `schedule` that keep another run from starting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub schedule: String,
    /// Runs that started before this no longer count: a crashed run never records its end,
    /// so callers pass now minus the schedule's timeout.
    pub since: DateTime<Utc>,
    /// Leader runs of this runtime do not count: it keeps its own runs apart in memory. Runs
    /// of every other process do (a manual run, a draining ex-leader's run).
    pub except_runtime: Option<String>,
}

/// The name [`Conflict::any_heavy`] stands under: no schedule can have it (`*` is not a
/// name character in the manifest).
pub const ANY_HEAVY: &str = "*heavy";

impl Conflict {
    pub fn any(schedule: &str, since: DateTime<Utc>) -> Conflict {
        Conflict {
            schedule: schedule.to_string(),
            since,
            except_runtime: None,
        }
    }

    /// Any heavy run of another process still inside its own window, whatever its schedule
    /// is called: a draining run of a schedule that the claiming plan no longer names (a
    /// reload, then a leadership change; a restart-based upgrade) still holds the heavy slot.
    /// A row without a recorded deadline (written before the column existed) counts while it
    /// started after `since`. Leader runs of `except_runtime` do not count: that runtime keeps
    /// its own runs apart in memory.
    pub fn any_heavy(since: DateTime<Utc>, except_runtime: Option<String>) -> Conflict {
        Conflict {
            schedule: ANY_HEAVY.to_string(),
            since,
            except_runtime,
        }
    }
}

/// A run in progress that keeps another from starting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy {
    pub schedule: String,
    pub run_id: String,
    pub started: Option<DateTime<Utc>>,
    /// Set when no run was found but the claim could not be confirmed (the history did not
    /// answer, or refused the run's row: another runtime recorded the same fire). The run
    /// does not start: a start nobody can vouch for may be a second one.
    pub unconfirmed: Option<String>,
}

/// Where runs, steps and skipped fires are written.
pub trait Recorder: Send + Sync + 'static {
    fn run_started<'a>(&'a self, run: &'a RunRecord) -> BoxFut<'a, ()>;
    fn run_finished<'a>(
        &'a self,
        run_id: &'a str,
        at: DateTime<Utc>,
        status: &'a str,
        error: Option<&'a str>,
    ) -> BoxFut<'a, ()>;
    fn step_started<'a>(
        &'a self,
        run_id: &'a str,
        idx: usize,
        kind: &'a str,
        name: &'a str,
        at: DateTime<Utc>,
    ) -> BoxFut<'a, ()>;
    fn step_finished<'a>(
        &'a self,
        run_id: &'a str,
        idx: usize,
        at: DateTime<Utc>,
        status: &'a str,
        error: Option<&'a str>,
        rows: Option<u64>,
    ) -> BoxFut<'a, ()>;
    /// Record `run` as started unless one of `conflicts` (each schedule with the start after
    /// which a run still counts: its timeout) has a run in progress, as one step across
    /// processes; if one has, nothing is recorded and that run is returned. With no conflicts
    /// this is `run_started`. The scheduler claims each fire against manual runs of its
    /// schedule (and a heavy one against the other heavy schedules); `--once` and
    /// `--bootstrap` claim against what they must not run beside.
    fn claim_run<'a>(
        &'a self,
        run: &'a RunRecord,
        conflicts: &'a [Conflict],
    ) -> BoxFut<'a, Option<Busy>>;
    /// A fire that did not run: `skipped_running`, `skipped_heavy` or `skipped_blackout`.
    fn skipped<'a>(
        &'a self,
        schedule: &'a str,
        fire: DateTime<Utc>,
        status: &'a str,
        reason: &'a str,
        plan_hash: &'a str,
    ) -> BoxFut<'a, ()>;
}

/// One history event, as the in-memory recorder keeps it (tests, `--dry-run`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    RunStarted(RunRecord),
    RunFinished {
        run_id: String,
        at: DateTime<Utc>,
        status: String,
        error: Option<String>,
    },
    StepStarted {
        run_id: String,
        idx: usize,
        kind: String,
        name: String,
    },
    StepFinished {
        run_id: String,
        idx: usize,
        status: String,
        error: Option<String>,
    },
    Skipped {
        schedule: String,
        fire: DateTime<Utc>,
        status: String,
        reason: String,
    },
}

/// Keeps history in memory.
#[derive(Clone, Default)]
pub struct MemoryRecorder {
    pub events: Arc<Mutex<Vec<Event>>>,
    /// Runs of other processes, as `(schedule, run id)`: what `claim_run` finds.
    pub elsewhere: Arc<Mutex<Vec<(String, String)>>>,
}

impl MemoryRecorder {
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().map(|g| g.clone()).unwrap_or_default()
    }
    fn push(&self, e: Event) {
        if let Ok(mut g) = self.events.lock() {
            g.push(e);
        }
    }
}

impl Recorder for MemoryRecorder {
    fn claim_run<'a>(
        &'a self,
        run: &'a RunRecord,
        conflicts: &'a [Conflict],
    ) -> BoxFut<'a, Option<Busy>> {
        let busy = self.elsewhere.lock().ok().and_then(|g| {
            g.iter()
                .find(|(s, _)| conflicts.iter().any(|c| &c.schedule == s))
                .map(|(schedule, run_id)| Busy {
                    schedule: schedule.clone(),
                    run_id: run_id.clone(),
                    started: None,
                    unconfirmed: None,
                })
        });
        if busy.is_none() {
            self.push(Event::RunStarted(run.clone()));
        }
        Box::pin(async move { busy })
    }
    fn run_started<'a>(&'a self, run: &'a RunRecord) -> BoxFut<'a, ()> {
        self.push(Event::RunStarted(run.clone()));
        Box::pin(async {})
    }
    fn run_finished<'a>(
        &'a self,
        run_id: &'a str,
        at: DateTime<Utc>,
        status: &'a str,
        error: Option<&'a str>,
    ) -> BoxFut<'a, ()> {
        self.push(Event::RunFinished {
            run_id: run_id.into(),
            at,
            status: status.into(),
            error: error.map(str::to_string),
        });
        Box::pin(async {})
    }
    fn step_started<'a>(
        &'a self,
        run_id: &'a str,
        idx: usize,
        kind: &'a str,
        name: &'a str,
        _at: DateTime<Utc>,
    ) -> BoxFut<'a, ()> {
        self.push(Event::StepStarted {
            run_id: run_id.into(),
            idx,
            kind: kind.into(),
            name: name.into(),
        });
        Box::pin(async {})
    }
    fn step_finished<'a>(
        &'a self,
        run_id: &'a str,
        idx: usize,
        _at: DateTime<Utc>,
        status: &'a str,
        error: Option<&'a str>,
        _rows: Option<u64>,
    ) -> BoxFut<'a, ()> {
        self.push(Event::StepFinished {
            run_id: run_id.into(),
            idx,
            status: status.into(),
            error: error.map(str::to_string),
        });
        Box::pin(async {})
    }
    fn skipped<'a>(
        &'a self,
        schedule: &'a str,
        fire: DateTime<Utc>,
        status: &'a str,
        reason: &'a str,
        _plan_hash: &'a str,
    ) -> BoxFut<'a, ()> {
        self.push(Event::Skipped {
            schedule: schedule.into(),
            fire,
            status: status.into(),
            reason: reason.into(),
        });
        Box::pin(async {})
    }
}

/// One attempt of a history write never holds a run up longer than this.
const WRITE_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a history write is retried while PostgreSQL is unreachable.
pub const WRITE_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(60);

/// The error of a run marked `lost`.
pub const LOST_ERROR: &str = "its end was never recorded: the process running it was killed or crashed, or could not reach PostgreSQL when it ended";

/// The advisory lock every run claim takes (the schema DDL uses another key).
const CLAIM_LOCK: i64 = 7274690147735500801;

/// History in PostgreSQL. The connection is re-opened when it drops.
pub struct PgHistory {
    url: String,
    schema: String,
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
}

/// Connect with a background task driving the connection (TLS as the URL's `sslmode` says).
pub async fn connect(url: &str) -> Result<Client, HistoryError> {
    let refused = |reason: String| HistoryError::Connect {
        url: redact_url(url),
        reason,
    };
    let pg = crate::tls::postgres(url).map_err(refused)?;
    let (client, connection) = pg.connect().await.map_err(refused)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            warn!(error = %pg_message(&e), "PostgreSQL connection closed");
        }
    });
    Ok(client)
}

impl PgHistory {
    /// Connect and create the schema and tables if they do not exist.
    pub async fn open(url: &str, schema: &str) -> Result<PgHistory, HistoryError> {
        let h = PgHistory {
            url: url.to_string(),
            schema: schema.to_string(),
            client: tokio::sync::Mutex::new(None),
        };
        let client = h.client().await?;
        h.create_schema(&client).await?;
        Ok(h)
    }

    /// The history's schema (a checked plain identifier).
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The live client, reconnecting if the last one closed. (A tokio mutex: the reconnect
    /// awaits while holding it, so two writers do not both reconnect.) The console reads
    /// through it.
    pub async fn client(&self) -> Result<Arc<Client>, HistoryError> {
        let mut g = self.client.lock().await;
        if let Some(c) = g.as_ref() {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        let c = Arc::new(connect(&self.url).await?);
        *g = Some(c.clone());
        Ok(c)
    }

    async fn create_schema(&self, client: &Client) -> Result<(), HistoryError> {
        let s = &self.schema;
        // Columns added since the first version, in the order they came.
        let added: String = [
            ("by_leader", "boolean NOT NULL DEFAULT false"),
            ("runtime", "text"),
            ("heavy", "boolean NOT NULL DEFAULT false"),
            ("deadline", "timestamptz"),
        ]
        .iter()
        .map(|(name, ty)| {
            format!(
                "IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = '{s}.runs'::regclass
                                AND attname = '{name}' AND NOT attisdropped) THEN
                   ALTER TABLE {s}.runs ADD COLUMN {name} {ty};
                 END IF;\n"
            )
        })
        .collect();
        // Two runtimes starting together: serialize the DDL on a transaction lock.
        let ddl = format!(
            "SET client_min_messages = warning;
             BEGIN;
             SELECT pg_advisory_xact_lock(7274690147735500800);
             CREATE SCHEMA IF NOT EXISTS {s};
             CREATE TABLE IF NOT EXISTS {s}.runs (
                 id          text PRIMARY KEY,
                 schedule    text NOT NULL,
                 fire_time   timestamptz NOT NULL,
                 started_at  timestamptz,
                 ended_at    timestamptz,
                 status      text NOT NULL,
                 error       text,
                 plan_hash   text NOT NULL,
                 attempt     integer NOT NULL
             );
             -- Only when missing: ALTER TABLE would take an exclusive lock at every start and
             -- queue every reader of the history behind a long query.
             DO $$ BEGIN
{added}
             END $$;
             CREATE INDEX IF NOT EXISTS runs_schedule_fire ON {s}.runs (schedule, fire_time DESC);
             CREATE INDEX IF NOT EXISTS runs_started ON {s}.runs (started_at DESC);
             -- Every claim and the lost-run sweep look only at running rows: a few, in a
             -- table that grows by thousands a day.
             CREATE INDEX IF NOT EXISTS runs_running ON {s}.runs (schedule, started_at) WHERE status = 'running';
             -- The console: the grid's and the sparklines' newest fires of each schedule read
             -- from the index alone; the timeline's week; a model's last good build.
             CREATE INDEX IF NOT EXISTS runs_grid ON {s}.runs (schedule, fire_time DESC, attempt DESC) INCLUDE (id, status, started_at, ended_at);
             CREATE INDEX IF NOT EXISTS runs_fire ON {s}.runs (fire_time);
             CREATE TABLE IF NOT EXISTS {s}.steps (
                 run_id      text NOT NULL REFERENCES {s}.runs (id) ON DELETE CASCADE,
                 idx         integer NOT NULL,
                 kind        text NOT NULL,
                 name        text NOT NULL,
                 started_at  timestamptz NOT NULL,
                 ended_at    timestamptz,
                 status      text NOT NULL,
                 error       text,
                 rows        bigint,
                 PRIMARY KEY (run_id, idx)
             );
             -- The schedules a run holds besides its own (a manual `run`: the owners of its
             -- models), looked up by schedule.
             CREATE TABLE IF NOT EXISTS {s}.holds (
                 schedule    text NOT NULL,
                 run_id      text NOT NULL REFERENCES {s}.runs (id) ON DELETE CASCADE,
                 until       timestamptz NOT NULL,
                 PRIMARY KEY (schedule, run_id)
             );
             -- Every live runtime and the plan it runs (`replicas.rs`), so replicas that run
             -- different plans are seen.
             CREATE TABLE IF NOT EXISTS {s}.replicas (
                 runtime     text PRIMARY KEY,
                 plan_hash   text NOT NULL,
                 leader      boolean NOT NULL,
                 seen_at     timestamptz NOT NULL
             );
             -- Freshness and the console: each model's last successful build.
             CREATE INDEX IF NOT EXISTS steps_model_ok ON {s}.steps (name, ended_at) WHERE kind = 'model' AND status = 'ok';
             COMMIT;"
        );
        client.batch_execute(&ddl).await?;
        Ok(())
    }

    /// Write with retries: a dropped connection is re-opened and the statement tried again
    /// with backoff for up to [`WRITE_RETRY_FOR`], so a restart or failover of PostgreSQL does
    /// not leave a finished run marked `running` (a false `lost` alert, a blocked `--once`).
    /// Only faults of the server or the link are retried; a refused statement is not.
    async fn write(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) {
        let start = tokio::time::Instant::now();
        let mut backoff = std::time::Duration::from_millis(200);
        loop {
            let result = tokio::time::timeout(WRITE_LIMIT, async {
                let c = self.client().await?;
                c.execute(sql, params).await.map_err(HistoryError::from)
            })
            .await;
            let (error, retry) = match result {
                Ok(Ok(_)) => return,
                Ok(Err(e)) => {
                    let retry = e.is_transient();
                    (e.to_string(), retry)
                }
                Err(_) => (
                    format!("PostgreSQL did not answer in {WRITE_LIMIT:?}"),
                    true,
                ),
            };
            if !retry || start.elapsed() + backoff > WRITE_RETRY_FOR {
                error!(error = %error, "could not record {what} in history");
                return;
            }
            warn!(error = %error, backoff_ms = backoff.as_millis() as u64, "could not record {what} in history; retrying");
            // A timed-out statement may still hold the old connection: start afresh.
            self.client.lock().await.take();
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
        }
    }

    /// The newest run of schedule `$1` that started after `$2` and has not ended, but for
    /// leader runs of runtime `$3`, or a run holding `$1` within its own window (a manual
    /// `run`): `id, started_at`.
    fn active_sql(&self) -> String {
        let s = &self.schema;
        format!(
            "SELECT id, started_at FROM (
                 SELECT id, started_at, by_leader, runtime FROM {s}.runs
                 WHERE schedule = $1 AND status = 'running' AND ended_at IS NULL AND started_at > $2
                 UNION ALL
                 SELECT r.id, r.started_at, r.by_leader, r.runtime
                 FROM {s}.holds h JOIN {s}.runs r ON r.id = h.run_id
                 WHERE h.schedule = $1 AND h.until > now() AND r.status = 'running'
                   AND r.ended_at IS NULL
             ) active
             WHERE NOT (by_leader AND coalesce(runtime = $3, false))
             ORDER BY started_at DESC LIMIT 1"
        )
    }

    /// The newest heavy run of any schedule still inside its window (its recorded deadline;
    /// without one, started after `$1`), but for leader runs of runtime `$2`:
    /// `id, started_at, schedule` ([`Conflict::any_heavy`]).
    fn active_heavy_sql(&self) -> String {
        format!(
            "SELECT id, started_at, schedule FROM {}.runs
             WHERE status = 'running' AND ended_at IS NULL AND heavy
               AND coalesce(deadline > now(), started_at > $1)
               AND NOT (by_leader AND coalesce(runtime = $2, false))
             ORDER BY started_at DESC LIMIT 1",
            self.schema
        )
    }

    /// Record the schedules `run` holds; parameters `run id, schedules, until` (no deadline:
    /// [`MANUAL_WINDOW`](crate::run::MANUAL_WINDOW)).
    fn insert_holds_sql(&self) -> String {
        let window = crate::run::MANUAL_WINDOW.as_secs();
        format!(
            "INSERT INTO {}.holds (schedule, run_id, until)
             SELECT DISTINCT unnest($2::text[]), $1, coalesce($3, now() + interval '{window} seconds')
             ON CONFLICT DO NOTHING",
            self.schema
        )
    }

    /// The first of `conflicts` that has a run in progress.
    pub async fn active_among(&self, conflicts: &[Conflict]) -> Result<Option<Busy>, HistoryError> {
        let c = self.client().await?;
        self.first_busy(&*c, conflicts).await
    }

    /// The first of `conflicts` with a run in progress, read through `c` (a client or the
    /// claim's transaction).
    async fn first_busy(
        &self,
        c: &impl tokio_postgres::GenericClient,
        conflicts: &[Conflict],
    ) -> Result<Option<Busy>, HistoryError> {
        let (sql, heavy_sql) = (self.active_sql(), self.active_heavy_sql());
        for k in conflicts {
            let found = if k.schedule == ANY_HEAVY {
                c.query_opt(&heavy_sql, &[&k.since, &k.except_runtime])
                    .await?
            } else {
                c.query_opt(&sql, &[&k.schedule, &k.since, &k.except_runtime])
                    .await?
            };
            if let Some(r) = found {
                // A held schedule is busy under its own name (the holder is a manual run);
                // any heavy run is named by its schedule.
                let schedule = if k.schedule == ANY_HEAVY {
                    r.get(2)
                } else {
                    k.schedule.clone()
                };
                return Ok(Some(Busy {
                    schedule,
                    run_id: r.get(0),
                    started: Some(r.get(1)),
                    unconfirmed: None,
                }));
            }
        }
        Ok(None)
    }

    /// Check `conflicts` and insert `run` in one transaction under a transaction-level
    /// advisory lock that every claim takes, so two processes cannot both see "nothing running"
    /// and both start. A connection of its own: if this is cut short the session ends and
    /// PostgreSQL releases the lock.
    async fn claim(
        &self,
        run: &RunRecord,
        conflicts: &[Conflict],
    ) -> Result<Option<Busy>, HistoryError> {
        let mut c = connect(&self.url).await?;
        let tx = c.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CLAIM_LOCK])
            .await?;
        if let Some(busy) = self.first_busy(&tx, conflicts).await? {
            return Ok(Some(busy));
        }
        let attempt = run.attempt as i32;
        match tx
            .execute(&self.insert_run_sql(), &run_params(run, &attempt))
            .await
            .map_err(HistoryError::from)
        {
            // Run ids are the same on every replica: the row exists, so another runtime
            // already started this fire. Known, not unconfirmed.
            Err(e) if e.is_duplicate() => {
                return Ok(Some(Busy {
                    schedule: run.schedule.clone(),
                    run_id: run.id.clone(),
                    started: None,
                    unconfirmed: None,
                }))
            }
            r => r?,
        };
        if !run.holds.is_empty() {
            tx.execute(
                &self.insert_holds_sql(),
                &[&run.id, &run.holds, &run.deadline],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(None)
    }

    /// Insert a run as `running`; parameters from [`run_params`].
    fn insert_run_sql(&self) -> String {
        format!(
            "INSERT INTO {}.runs (id, schedule, fire_time, started_at, status, plan_hash, attempt, by_leader, runtime, heavy, deadline)
             VALUES ($1, $2, $3, $4, 'running', $5, $6, $7, $8, $9, $10)",
            self.schema
        )
    }

    /// Runs still `running` that may be orphaned: those that started before their schedule's
    /// `before` (now minus its timeout and a margin: a live run is cancelled at its deadline
    /// and records that) or, for schedules not listed (`@bootstrap`, removed ones), before
    /// `others_before` (`overdue`); and leader runs of runtimes other than `own`, whose
    /// liveness the caller checks ([`PgHistory::runtime_alive`]).
    pub async fn suspects(
        &self,
        before: &[(String, DateTime<Utc>)],
        others_before: DateTime<Utc>,
        own: &str,
    ) -> Result<Vec<Suspect>, HistoryError> {
        let c = self.client().await?;
        let s = &self.schema;
        let (names, times): (Vec<&str>, Vec<DateTime<Utc>>) =
            before.iter().map(|(n, t)| (n.as_str(), *t)).unzip();
        let rows = c
            .query(
                &format!(
                    "SELECT r.schedule, r.id, r.fire_time, r.runtime,
                            r.started_at < coalesce(t.before, $3) AS overdue
                     FROM {s}.runs r
                     LEFT JOIN unnest($1::text[], $2::timestamptz[]) AS t(schedule, before)
                       ON t.schedule = r.schedule
                     WHERE r.status = 'running' AND r.ended_at IS NULL
                       AND (r.started_at < coalesce(t.before, $3)
                            OR (r.by_leader AND r.runtime IS NOT NULL AND r.runtime <> $4))
                     ORDER BY r.started_at, r.id"
                ),
                &[&names, &times, &others_before, &own],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Suspect {
                schedule: r.get(0),
                run_id: r.get(1),
                fire: r.get(2),
                runtime: r.get(3),
                overdue: r.get(4),
            })
            .collect())
    }

    /// Each model's last successful build (any run, any process): `(model, ended_at)`.
    pub async fn last_builds(&self) -> Result<Vec<(String, DateTime<Utc>)>, HistoryError> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT name, max(ended_at) FROM {}.steps
                     WHERE kind = 'model' AND status = 'ok' AND ended_at IS NOT NULL
                     GROUP BY name ORDER BY name",
                    self.schema
                ),
                &[],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// The newest fire of `schedule` the history has a row of (run or skipped).
    pub async fn last_fire(&self, schedule: &str) -> Result<Option<DateTime<Utc>>, HistoryError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                &format!(
                    "SELECT fire_time FROM {}.runs WHERE schedule = $1 ORDER BY fire_time DESC LIMIT 1",
                    self.schema
                ),
                &[&schedule],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Whether runtime process `instance` is alive: it holds its instance lock on its leader
    /// session while it leads or drains ([`crate::leader`]). Asked on a session of its own, so
    /// a lock taken here to test it ends with that session.
    pub async fn runtime_alive(&self, instance: &str) -> Result<bool, HistoryError> {
        let c = connect(&self.url).await?;
        let key = crate::run::instance_key(&self.schema, instance);
        let free: bool = c
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .await?
            .get(0);
        if free {
            c.execute("SELECT pg_advisory_unlock($1)", &[&key]).await?;
        }
        Ok(!free)
    }

    /// Mark run `run_id` `lost` with `error` if it is still running; whether it was.
    pub async fn mark_lost(&self, run_id: &str, error: &str) -> Result<bool, HistoryError> {
        let c = self.client().await?;
        let n = c
            .execute(
                &format!(
                    "UPDATE {}.runs SET status = 'lost', ended_at = now(), error = $2
                     WHERE id = $1 AND status = 'running' AND ended_at IS NULL",
                    self.schema
                ),
                &[&run_id, &error],
            )
            .await?;
        Ok(n > 0)
    }

    /// Recent runs, newest first.
    pub async fn recent(
        &self,
        limit: i64,
        schedule: Option<&str>,
    ) -> Result<Vec<HistoryRow>, HistoryError> {
        let c = self.client().await?;
        let s = &self.schema;
        let sql = format!(
            "SELECT r.id, r.schedule, r.fire_time, r.started_at, r.ended_at, r.status, r.error, r.attempt,
                    (SELECT st.name FROM {s}.steps st WHERE st.run_id = r.id AND st.status = 'failed' ORDER BY st.idx LIMIT 1),
                    r.plan_hash
             FROM {s}.runs r
             WHERE $1::text IS NULL OR r.schedule = $1
             ORDER BY r.fire_time DESC, r.id DESC
             LIMIT $2"
        );
        let rows = c.query(&sql, &[&schedule, &limit]).await?;
        Ok(rows
            .iter()
            .map(|r| HistoryRow {
                id: r.get(0),
                schedule: r.get(1),
                fire_time: r.get(2),
                started_at: r.get(3),
                ended_at: r.get(4),
                status: r.get(5),
                error: r.get(6),
                attempt: r.get(7),
                failed_step: r.get(8),
                plan_hash: r.get(9),
            })
            .collect())
    }
}

/// The parameters of [`PgHistory::insert_run_sql`].
fn run_params<'a>(
    run: &'a RunRecord,
    attempt: &'a i32,
) -> [&'a (dyn tokio_postgres::types::ToSql + Sync); 10] {
    [
        &run.id,
        &run.schedule,
        &run.fire_time,
        &run.started_at,
        &run.plan_hash,
        attempt,
        &run.by_leader,
        &run.runtime,
        &run.heavy,
        &run.deadline,
    ]
}

/// A run marked `running` that may be orphaned ([`PgHistory::suspects`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspect {
    pub schedule: String,
    pub run_id: String,
    pub fire: DateTime<Utc>,
    /// The runtime that started it (`None` for rows of versions before 2026-12).
    pub runtime: Option<String>,
    /// Past its schedule's timeout and margin: dead whatever its runtime says.
    pub overdue: bool,
}

/// One line of `stir-runtime history`.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub id: String,
    pub schedule: String,
    pub fire_time: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub status: String,
    pub error: Option<String>,
    pub attempt: i32,
    pub failed_step: Option<String>,
    /// The plan it ran (a reload changes it from one run to the next).
    pub plan_hash: String,
}

/// The part of an error worth a table cell: ClickHouse's own message when there is one.
pub fn short_error(e: &str) -> String {
    let e = e.replace('\n', " ");
    let msg = match e.find("DB::Exception: ") {
        Some(i) => &e[i + "DB::Exception: ".len()..],
        None => e.as_str(),
    };
    let msg = match msg.rfind(" (version ") {
        Some(i) => &msg[..i],
        None => msg,
    };
    msg.trim().to_string()
}

/// Render rows as an aligned text table.
pub fn format_table(rows: &[HistoryRow]) -> String {
    let header = [
        "FIRE (UTC)",
        "SCHEDULE",
        "STATUS",
        "TRY",
        "DURATION",
        "PLAN",
        "STEP",
        "ERROR",
    ];
    let mut table: Vec<[String; 8]> = vec![header.map(str::to_string)];
    for r in rows {
        let duration = match (r.started_at, r.ended_at) {
            (Some(a), Some(b)) => {
                let secs = (b - a).num_milliseconds() as f64 / 1000.0;
                format!("{secs:.1}s")
            }
            (Some(_), None) => "running".into(),
            _ => "-".into(),
        };
        let error: String = short_error(r.error.as_deref().unwrap_or(""))
            .chars()
            .take(160)
            .collect();
        table.push([
            r.fire_time.format("%Y-%m-%d %H:%M:%S").to_string(),
            r.schedule.clone(),
            r.status.clone(),
            r.attempt.to_string(),
            duration,
            r.plan_hash.chars().take(12).collect(),
            r.failed_step.clone().unwrap_or_else(|| "-".into()),
            error,
        ]);
    }
    format_columns(&table)
}

/// Rows as left-aligned columns two spaces apart (the first row is the header).
pub fn format_columns<const N: usize>(table: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in table {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in table {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

impl Recorder for PgHistory {
    fn claim_run<'a>(
        &'a self,
        run: &'a RunRecord,
        conflicts: &'a [Conflict],
    ) -> BoxFut<'a, Option<Busy>> {
        Box::pin(async move {
            if conflicts.is_empty() {
                self.run_started(run).await;
                return None;
            }
            // Fail closed: a claim that cannot be confirmed does not start the run. Two
            // leaders firing one fire write the same run id, and the second insert fails.
            let why = match tokio::time::timeout(WRITE_LIMIT, self.claim(run, conflicts)).await {
                Ok(Ok(busy)) => return busy,
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("PostgreSQL did not answer in {WRITE_LIMIT:?}"),
            };
            warn!(run_id = %run.id, error = %why, "cannot confirm the run's start in the history; not starting it");
            Some(Busy {
                schedule: run.schedule.clone(),
                run_id: run.id.clone(),
                started: None,
                unconfirmed: Some(why),
            })
        })
    }
    fn run_started<'a>(&'a self, run: &'a RunRecord) -> BoxFut<'a, ()> {
        Box::pin(async move {
            let attempt = run.attempt as i32;
            self.write(
                "run start",
                &self.insert_run_sql(),
                &run_params(run, &attempt),
            )
            .await;
            if !run.holds.is_empty() {
                self.write(
                    "the schedules a run holds",
                    &self.insert_holds_sql(),
                    &[&run.id, &run.holds, &run.deadline],
                )
                .await;
            }
        })
    }
    fn run_finished<'a>(
        &'a self,
        run_id: &'a str,
        at: DateTime<Utc>,
        status: &'a str,
        error: Option<&'a str>,
    ) -> BoxFut<'a, ()> {
        Box::pin(async move {
            let sql = format!(
                "UPDATE {}.runs SET ended_at = $2, status = $3, error = $4 WHERE id = $1",
                self.schema
            );
            self.write("run end", &sql, &[&run_id, &at, &status, &error])
                .await;
            // Steps cut short with the run (a timeout or a cancel drops them all at once).
            let sql = format!(
                "UPDATE {}.steps SET ended_at = $2, status = 'cancelled' WHERE run_id = $1 AND status = 'running'",
                self.schema
            );
            self.write("cancelled steps", &sql, &[&run_id, &at]).await;
        })
    }
    fn step_started<'a>(
        &'a self,
        run_id: &'a str,
        idx: usize,
        kind: &'a str,
        name: &'a str,
        at: DateTime<Utc>,
    ) -> BoxFut<'a, ()> {
        Box::pin(async move {
            let sql = format!(
                "INSERT INTO {}.steps (run_id, idx, kind, name, started_at, status) VALUES ($1, $2, $3, $4, $5, 'running')",
                self.schema
            );
            let idx = idx as i32;
            self.write("step start", &sql, &[&run_id, &idx, &kind, &name, &at])
                .await;
        })
    }
    fn step_finished<'a>(
        &'a self,
        run_id: &'a str,
        idx: usize,
        at: DateTime<Utc>,
        status: &'a str,
        error: Option<&'a str>,
        rows: Option<u64>,
    ) -> BoxFut<'a, ()> {
        Box::pin(async move {
            let sql = format!(
                "UPDATE {}.steps SET ended_at = $3, status = $4, error = $5, rows = $6 WHERE run_id = $1 AND idx = $2",
                self.schema
            );
            let idx = idx as i32;
            let rows = rows.map(|r| r as i64);
            self.write(
                "step end",
                &sql,
                &[&run_id, &idx, &at, &status, &error, &rows],
            )
            .await;
        })
    }
    fn skipped<'a>(
        &'a self,
        schedule: &'a str,
        fire: DateTime<Utc>,
        status: &'a str,
        reason: &'a str,
        plan_hash: &'a str,
    ) -> BoxFut<'a, ()> {
        Box::pin(async move {
            let sql = format!(
                "INSERT INTO {}.runs (id, schedule, fire_time, started_at, ended_at, status, error, plan_hash, attempt)
                 VALUES ($1, $2, $3, now(), now(), $4, $5, $6, 0) ON CONFLICT (id) DO NOTHING",
                self.schema
            );
            let id = format!("{schedule}-{}-skip", fire.format("%Y%m%dT%H%M%S%3fZ"));
            self.write(
                "skipped fire",
                &sql,
                &[&id, &schedule, &fire, &status, &reason, &plan_hash],
            )
            .await;
        })
    }
}
