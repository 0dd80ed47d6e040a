//! What a run is, below the executor, the scheduler, the history and the metrics that all
//! speak of runs: its status, its id, the schedule it runs (`Tier`), the process that runs it,
//! and the lock keys that prove a process alive.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use stir_plan::cron::Cron;
use stir_plan::schedule::DailyWindow;
use stir_plan::OnMissed;

/// A boxed future, for the object-safe step and history traits.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a run ended (also the history status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RunStatus {
    Ok,
    Failed,
    Timeout,
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Failed => "failed",
            RunStatus::Timeout => "timeout",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

/// `dbt_core-20260101T001500000Z-a1`: readable, sortable, unique per fire and attempt.
pub fn run_id(schedule: &str, fire: DateTime<Utc>, attempt: u32) -> String {
    format!("{schedule}-{}-a{attempt}", fire.format("%Y%m%dT%H%M%S%3fZ"))
}

/// The start of every ClickHouse query id of run `run_id` in the deployment whose warehouse
/// database is `database`. Run ids repeat across deployments (schedule, fire, attempt), and a
/// run's queries are killed by this prefix (a cancelled run, the lost-run sweep); two
/// deployments on one ClickHouse server write two databases, so the prefix keeps one's kill
/// from reaching the other's run of the same fire. (Database names are SQL identifiers: no `.`.)
pub fn query_prefix(database: &str, run_id: &str) -> String {
    format!("{database}.{run_id}-")
}

pub fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    if s % 3600 == 0 && s > 0 {
        format!("{}h", s / 3600)
    } else if s % 60 == 0 && s > 0 {
        format!("{}m", s / 60)
    } else if s > 0 {
        format!("{s}s")
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// A schedule ready to fire.
#[derive(Debug, Clone)]
pub struct Tier {
    pub name: String,
    pub cron: Cron,
    pub skip: Vec<DailyWindow>,
    pub timeout: Duration,
    pub heavy: bool,
    pub retries: u32,
    pub enabled: bool,
    pub on_missed: OnMissed,
}

/// The lock key of a deployment: its history schema (`STIR_HISTORY_SCHEMA`, in the history's
/// database). Runtimes that write one history share one leader whatever their plans say, so
/// a plan that renames the project or the warehouse database in a rolling upgrade never gives
/// two leaders; two deployments on one PostgreSQL database keep apart by their schemas.
pub fn lock_key(history_schema: &str) -> i64 {
    key_of(&format!("stir-runtime/history/{history_schema}"))
}

/// The instance lock of runtime process `instance` in the deployment of `history_schema`.
pub fn instance_key(history_schema: &str, instance: &str) -> i64 {
    key_of(&format!(
        "stir-runtime/instance/{history_schema}/{instance}"
    ))
}

fn key_of(text: &str) -> i64 {
    let hex = stir_plan::sha256_hex(text.as_bytes());
    let n = u64::from_str_radix(hex.get(..16).unwrap_or("0"), 16).unwrap_or(0);
    n as i64
}

/// A name for this process, unique across hosts and restarts: host, pid and start time.
pub fn instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{host}-{}-{nanos:x}", std::process::id())
}

/// The name a manual `run SELECTOR…` is recorded under (no manifest name starts with `@`).
pub const MANUAL: &str = "@run";
/// The name of a manual `run` with a model of a heavy schedule: heavy fires do not start
/// beside it.
pub const MANUAL_HEAVY: &str = "@run-heavy";

/// How long a manual `run` may take, and holds the schedules whose models it builds.
pub const MANUAL_WINDOW: Duration = Duration::from_secs(6 * 3600);
