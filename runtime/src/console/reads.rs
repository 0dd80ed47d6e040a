//! What the console reads from the history in PostgreSQL (`stir.runs`, `stir.steps`): a few
//! bounded queries, each served by an index of [`crate::history`] so pages stay fast with a
//! long history (docs/console.md has the measured figure).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use crate::history::{HistoryError, PgHistory};

/// One row of `stir.runs`.
#[derive(Debug, Clone)]
pub struct Run {
    pub id: String,
    pub schedule: String,
    pub fire_time: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub status: String,
    pub error: Option<String>,
    pub plan_hash: String,
    pub attempt: i32,
    pub by_leader: bool,
    pub runtime: Option<String>,
}

impl Run {
    /// Seconds from start to end, if both are known.
    pub fn seconds(&self) -> Option<f64> {
        Some((self.ended_at? - self.started_at?).num_milliseconds() as f64 / 1000.0)
    }
}

const RUN_COLUMNS: &str =
    "id, schedule, fire_time, started_at, ended_at, status, error, plan_hash, attempt, by_leader, runtime";

fn run(r: &Row) -> Run {
    Run {
        id: r.get(0),
        schedule: r.get(1),
        fire_time: r.get(2),
        started_at: r.get(3),
        ended_at: r.get(4),
        status: r.get(5),
        error: r.get(6),
        plan_hash: r.get(7),
        attempt: r.get(8),
        by_leader: r.get(9),
        runtime: r.get(10),
    }
}

/// One fire of a schedule as the grid and the sparklines show it (its newest attempt).
#[derive(Debug, Clone)]
pub struct Cell {
    pub id: String,
    pub fire_time: DateTime<Utc>,
    pub status: String,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub attempt: i32,
}

impl Cell {
    pub fn seconds(&self) -> Option<f64> {
        Some((self.ended_at? - self.started_at?).num_milliseconds() as f64 / 1000.0)
    }
}

/// One row of `stir.steps`.
#[derive(Debug, Clone)]
pub struct Step {
    pub idx: i32,
    pub kind: String,
    pub name: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub status: String,
    pub error: Option<String>,
    pub rows: Option<i64>,
}

/// A model's newest successful build.
#[derive(Debug, Clone)]
pub struct Build {
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub rows: Option<i64>,
}

/// A runtime process seen through the history.
#[derive(Debug, Clone)]
pub struct Replica {
    pub runtime: String,
    pub leader_runs: i64,
    pub manual_runs: i64,
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
    pub plan_hashes: String,
    pub running: i64,
}

pub struct Reads<'a>(pub &'a PgHistory);

impl Reads<'_> {
    /// The newest `fires` fires of each of `schedules` (one cell per fire: its newest
    /// attempt), newest first. One index range scan per schedule (`runs_grid`).
    pub async fn recent_fires(
        &self,
        schedules: &[String],
        fires: i64,
    ) -> Result<BTreeMap<String, Vec<Cell>>, HistoryError> {
        let c = self.0.client().await?;
        let s = self.0.schema();
        // Retries add rows to a fire: read a few more rows than fires.
        let rows = c
            .query(
                &format!(
                    "SELECT n.name, r.id, r.fire_time, r.status, r.started_at, r.ended_at, r.attempt
                     FROM unnest($1::text[]) AS n(name)
                     CROSS JOIN LATERAL (
                       SELECT id, fire_time, status, started_at, ended_at, attempt
                       FROM {s}.runs WHERE schedule = n.name
                       ORDER BY fire_time DESC, attempt DESC LIMIT $2) r"
                ),
                &[&schedules, &(fires * 2)],
            )
            .await?;
        let mut out: BTreeMap<String, Vec<Cell>> = BTreeMap::new();
        for r in &rows {
            let cells = out.entry(r.get(0)).or_default();
            let fire: DateTime<Utc> = r.get(2);
            if cells.last().is_some_and(|c| c.fire_time == fire) || cells.len() as i64 >= fires {
                continue;
            }
            cells.push(Cell {
                id: r.get(1),
                fire_time: fire,
                status: r.get(3),
                started_at: r.get(4),
                ended_at: r.get(5),
                attempt: r.get(6),
            });
        }
        Ok(out)
    }

    pub async fn run(&self, id: &str) -> Result<Option<Run>, HistoryError> {
        let c = self.0.client().await?;
        let row = c
            .query_opt(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM {}.runs WHERE id = $1",
                    self.0.schema()
                ),
                &[&id],
            )
            .await?;
        Ok(row.as_ref().map(run))
    }

    /// Every attempt of one fire, first attempt first.
    pub async fn attempts(
        &self,
        schedule: &str,
        fire: DateTime<Utc>,
    ) -> Result<Vec<Run>, HistoryError> {
        let c = self.0.client().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM {}.runs WHERE schedule = $1 AND fire_time = $2 ORDER BY attempt, id",
                    self.0.schema()
                ),
                &[&schedule, &fire],
            )
            .await?;
        Ok(rows.iter().map(run).collect())
    }

    pub async fn steps(&self, run_id: &str) -> Result<Vec<Step>, HistoryError> {
        let c = self.0.client().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT idx, kind, name, started_at, ended_at, status, error, rows
                     FROM {}.steps WHERE run_id = $1 ORDER BY idx",
                    self.0.schema()
                ),
                &[&run_id],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Step {
                idx: r.get(0),
                kind: r.get(1),
                name: r.get(2),
                started_at: r.get(3),
                ended_at: r.get(4),
                status: r.get(5),
                error: r.get(6),
                rows: r.get(7),
            })
            .collect())
    }

    /// Runs fired in [from, to), oldest first, at most `limit` (`runs_fire`).
    pub async fn fired_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Run>, HistoryError> {
        let c = self.0.client().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM {}.runs WHERE fire_time >= $1 AND fire_time < $2
                     ORDER BY fire_time, attempt LIMIT $3",
                    self.0.schema()
                ),
                &[&from, &to, &limit],
            )
            .await?;
        Ok(rows.iter().map(run).collect())
    }

    /// The newest successful build of each of `models` that has one: one probe of
    /// `steps_model_ok` per model.
    pub async fn last_builds(
        &self,
        models: &[String],
    ) -> Result<BTreeMap<String, Build>, HistoryError> {
        let c = self.0.client().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT n.name, b.run_id, b.started_at, b.ended_at, b.rows
                     FROM unnest($1::text[]) AS n(name)
                     CROSS JOIN LATERAL (
                       SELECT run_id, started_at, ended_at, rows FROM {}.steps
                       WHERE kind = 'model' AND status = 'ok' AND name = n.name
                       ORDER BY ended_at DESC LIMIT 1) b",
                    self.0.schema()
                ),
                &[&models],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    Build {
                        run_id: r.get(1),
                        started_at: r.get(2),
                        ended_at: r.get(3),
                        rows: r.get(4),
                    },
                )
            })
            .collect())
    }

    /// The runtime processes that started runs since `since`, newest first.
    pub async fn replicas(&self, since: DateTime<Utc>) -> Result<Vec<Replica>, HistoryError> {
        let c = self.0.client().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT runtime, count(*) FILTER (WHERE by_leader), count(*) FILTER (WHERE NOT by_leader),
                            min(started_at), max(started_at),
                            string_agg(DISTINCT plan_hash, ' '),
                            count(*) FILTER (WHERE status = 'running')
                     FROM {}.runs WHERE runtime IS NOT NULL AND started_at >= $1
                     GROUP BY runtime ORDER BY max(started_at) DESC LIMIT 20",
                    self.0.schema()
                ),
                &[&since],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Replica {
                runtime: r.get(0),
                leader_runs: r.get(1),
                manual_runs: r.get(2),
                first: r.get(3),
                last: r.get(4),
                plan_hashes: r.get::<_, Option<String>>(5).unwrap_or_default(),
                running: r.get(6),
            })
            .collect())
    }
}
