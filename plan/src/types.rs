//! The frozen plan: the contract between `stir plan` and `stir-runtime`.
//!
//! These types are the only place plan JSON is produced or read. `Plan::to_json` writes
//! canonical JSON (keys sorted at every level, two-space indent, one trailing newline) and
//! `Plan::from_json` refuses anything that is not a sealed plan of a known format version.
//! docs/plan-format.md documents every field; docs/plan.schema.json is its JSON Schema.
//!
//! Invariant: the JSON never depends on hash order or on the machine: every list is sorted by
//! name or kept in the manifest's meaningful order (steps, statements), and `plan_hash` is the
//! sha256 of the canonical compact JSON of everything else.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// How staged files are stored in S3.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StagingCompression {
    /// An LZ4 frame (`.tsv.lz4`; `lz4 -d` reads it): about a third of the bytes to send and
    /// store, for little CPU.
    #[default]
    Lz4,
    /// Plain TabSeparated (`.tsv`).
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyOn {
    Failure,
    Always,
    /// No alert about the schedule's runs.
    Never,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Materialized {
    Table,
    Incremental,
    View,
}

/// The plan format this build writes and reads.
pub const FORMAT_VERSION: u32 = 7;

/// The oldest plan `stir plan --diff` still reviews against: every version since only added
/// fields whose absence reads as the old behaviour (3 added `staging.keep`, absent = all; 4
/// added `allow_empty`, absent = true, and `lock_timeout_ms`, absent = 0, no limit; 6 added the
/// sync's `postgres.rollback`, absent = no rollback; 7 added `retry_all`, absent = false, a
/// model's `full_refresh`, absent = none, and a request's `reads`, absent = not known).
pub const OLDEST_REVIEWABLE_VERSION: u32 = 2;

/// Stands in a sync's staging names (`postgres.new_table` and the names in its statements)
/// for the run's tag, so two runs never share a staging table. It always ends a quoted
/// identifier (`..{run}"`), which is the only place [`SyncLoad::for_run`] replaces it.
pub const RUN_TOKEN: &str = "{run}";

/// Bytes a bound [`RUN_TOKEN`] takes: the length of [`run_tag`].
pub const RUN_TAG_LEN: usize = 8;

/// The tag that replaces [`RUN_TOKEN`] for one run: 8 lowercase hex characters of the sha256
/// of the run id (short, so names stay within PostgreSQL's 63 bytes; any run id is safe).
pub fn run_tag(run_id: &str) -> String {
    sha256_hex(run_id.as_bytes())[..RUN_TAG_LEN].to_string()
}

/// Why a plan cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error, miette::Diagnostic)]
pub enum PlanError {
    #[error("not a stir plan: {0}")]
    #[diagnostic(
        code(stir::plan::not_a_plan),
        help("pass the plan.json written by `stir plan -o plan.json`")
    )]
    NotAPlan(String),
    #[error("plan format version {found} is newer than this {reader} (supports {supported}); upgrade {reader}")]
    #[diagnostic(code(stir::plan::newer_version))]
    NewerVersion {
        found: u64,
        supported: u32,
        reader: &'static str,
    },
    #[error("plan format version {found} is unknown; this {reader} supports {supported}")]
    #[diagnostic(
        code(stir::plan::unknown_version),
        help("write the plan again with `stir plan`")
    )]
    UnknownVersion {
        found: u64,
        supported: u32,
        reader: &'static str,
    },
    #[error("plan.json was edited after `stir plan`: hash mismatch")]
    #[diagnostic(
        code(stir::plan::hash_mismatch),
        help("never edit plan.json by hand: change stir.kdl and run `stir plan` again (content hashes to {computed}, the file says {recorded})")
    )]
    HashMismatch { recorded: String, computed: String },
    #[error("invalid plan: {0}")]
    #[diagnostic(
        code(stir::plan::invalid),
        help("write the plan again with `stir plan`")
    )]
    Invalid(String),
}

/// The whole plan. Field order here is irrelevant to the JSON: keys are sorted on output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub format_version: u32,
    /// sha256 (hex) of the manifest's bytes.
    pub manifest_hash: String,
    pub project: String,
    /// IANA zone in which crons, blackouts and skips are read.
    pub timezone: String,
    pub warehouse: Warehouse,
    /// The unnamed serving target (URL `STIR_POSTGRES_URL` at run time).
    pub serving: Option<Serving>,
    /// Named serving targets, sorted by name (URL `STIR_POSTGRES_URL_<NAME>` at run time;
    /// format 6, absent: none).
    #[serde(default)]
    pub targets: Vec<Target>,
    pub staging: Option<Staging>,
    pub notify: Option<Notify>,
    /// Endpoint names; the runtime reads each base URL from `STIR_ENDPOINT_<NAME>`.
    pub endpoints: Vec<String>,
    pub blackouts: Vec<Window>,
    pub schedules: Vec<Schedule>,
    pub models: Vec<Model>,
    pub syncs: Vec<Sync>,
    pub requests: Vec<Request>,
    /// sha256 (hex) of the canonical compact JSON of every other field.
    pub plan_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Warehouse {
    pub database: String,
    pub cluster: Option<String>,
    /// Models of a run built at once (format 5; before it, one at a time).
    #[serde(default = "absent_threads")]
    pub threads: u32,
}

/// dbt's default `threads` for a new profile.
pub const DEFAULT_THREADS: u32 = 4;

/// A plan before version 5 built one model at a time.
fn absent_threads() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Serving {
    pub schema: String,
}

/// A named serving target: a PostgreSQL database syncs write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub name: String,
    pub schema: String,
}

/// The runtime's environment variable with the URL of serving target `name` (`None`: the
/// unnamed one): `STIR_POSTGRES_URL`, or `STIR_POSTGRES_URL_<NAME>` upper-cased, `-` as `_`.
pub fn target_url_var(name: Option<&str>) -> String {
    match name {
        None => "STIR_POSTGRES_URL".into(),
        Some(n) => format!("STIR_POSTGRES_URL_{}", n.to_uppercase().replace('-', "_")),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Staging {
    pub bucket: String,
    /// Key prefix without leading or trailing `/` (may be empty).
    pub prefix: String,
    /// `lz4`: staged objects are one LZ4 frame (`<run>.tsv.lz4`); `none`: plain `<run>.tsv`.
    pub compression: StagingCompression,
    /// After a successful sync the runtime deletes that sync's staged files but the newest
    /// `keep`; `null`: it deletes none (an S3 lifecycle rule expires them).
    pub keep: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    pub on: NotifyOn,
    /// The webhook's name: its URL is the runtime's `STIR_SLACK_WEBHOOK_<NAME>`; `null`:
    /// `STIR_SLACK_WEBHOOK` (format 6).
    #[serde(default)]
    pub webhook: Option<String>,
    /// A link to the run in every alert, `{run_id}` and `{schedule}` filled in (format 6).
    #[serde(default)]
    pub link: Option<String>,
    /// A schedule that keeps failing is alerted again ("still failing") at most this often;
    /// 0: every failure (format 6; absent: the default).
    #[serde(default = "default_repeat")]
    pub repeat_secs: u64,
}

/// How often a schedule that keeps failing is alerted again, unless the manifest says.
pub const DEFAULT_REPEAT_SECS: u64 = 3600;

fn default_repeat() -> u64 {
    DEFAULT_REPEAT_SECS
}

/// A daily window in the project timezone, as minutes of day; `to < from` wraps past midnight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub name: String,
    pub from: u16,
    pub to: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub name: String,
    /// Five-field cron, read in the project timezone.
    pub cron: String,
    pub timeout_secs: u64,
    pub heavy: bool,
    pub enabled: bool,
    pub retries: u32,
    /// A retry runs every step again, not only the failed and skipped ones (`retry=all`;
    /// format 7).
    #[serde(default)]
    pub retry_all: bool,
    /// What a fire that could not run on time becomes (format 5).
    #[serde(default = "absent_on_missed")]
    pub on_missed: OnMissed,
    /// At most this many of its models at once; `null`: the warehouse's `threads` (format 5).
    #[serde(default)]
    pub threads: Option<u32>,
    /// Its own alerting, the top `notify` filled in; `null`: the top `notify` (format 6).
    #[serde(default)]
    pub notify: Option<Notify>,
    /// Blackouts whose fires this schedule skips (copied, so the runtime needs no lookup).
    pub skip: Vec<Window>,
    pub steps: Vec<Step>,
}

/// A fire no runtime ran on time (no leader then, a suspended host, a deploy): `RunOnce`
/// runs the latest such fire late, once, if its window (fire to fire + timeout) is still
/// open, keeping that window's deadline so the schedule analysis stays true; `Skip` records
/// it `missed`. Either way every missed fire is recorded and alerted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnMissed {
    #[default]
    RunOnce,
    Skip,
}

impl OnMissed {
    pub fn as_str(self) -> &'static str {
        match self {
            OnMissed::RunOnce => "run-once",
            OnMissed::Skip => "skip",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Step {
    /// Models in build order.
    Run {
        models: Vec<String>,
    },
    /// One ClickHouse statement, as written.
    Sql {
        sql: String,
    },
    Sync {
        sync: String,
    },
    Request {
        request: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    pub name: String,
    pub materialized: Materialized,
    pub tags: Vec<String>,
    /// Models this one reads, sorted by name.
    pub deps: Vec<String>,
    /// The SQL template, relative to the manifest's folder.
    pub file: String,
    /// `database.name` of the built table or view.
    pub table: String,
    /// The rendered SELECT (for incremental models: `is_incremental()` false).
    pub sql: String,
    /// Incremental models: the rendered SELECT with `is_incremental()` true.
    pub sql_incremental: Option<String>,
    /// Table and view models: the statements of one build, in order.
    pub build: Vec<String>,
    /// Incremental models: the statement whose answer (1 or 0) says whether the table exists.
    pub exists: Option<String>,
    /// Incremental models: the statements when the table does not exist yet.
    pub first_build: Vec<String>,
    /// Incremental models: the statements when it does.
    pub incremental: Vec<String>,
    /// Incremental models: `--full-refresh`, a first build into `<table>__stir_new` swapped in
    /// with `EXCHANGE TABLES` (format 7).
    #[serde(default)]
    pub full_refresh: Vec<String>,
    /// Statements that remove what a failed build left behind.
    pub cleanup: Vec<String>,
    /// The model's `freshness`: the runtime alerts when its last successful build is older
    /// (format 5).
    #[serde(default)]
    pub freshness_secs: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sync {
    pub name: String,
    /// The exported model.
    pub from: String,
    pub clickhouse: SyncExport,
    pub postgres: SyncLoad,
    /// S3 key prefix for this sync's files: `<staging prefix>/<sync name>/`.
    pub s3_prefix: String,
    /// Refuse the swap when the new table has lost more than this percentage of the live
    /// table's rows; `null` (`max-shrink none`): any loss but to empty.
    pub max_shrink_pct: Option<f64>,
    /// An empty new table may replace a live table that has rows (otherwise refused, even
    /// with `max_shrink_pct` null).
    #[serde(default = "absent_allow_empty")]
    pub allow_empty: bool,
    /// How long the swap waits for its lock on the live table (PostgreSQL `lock_timeout`).
    #[serde(default)]
    pub lock_timeout_ms: u64,
    pub keep_backup: bool,
    /// The named serving target it writes; `null`: the unnamed one (format 6; absent: null,
    /// the only target there was).
    #[serde(default)]
    pub target: Option<String>,
}

/// A runtime before version 5 dropped a late fire: as `skip`, but without a record.
fn absent_on_missed() -> OnMissed {
    OnMissed::Skip
}

/// A plan before version 4 swapped empty results in.
fn absent_allow_empty() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncExport {
    /// The SELECT that produces the file (no FORMAT clause: the format is `format`).
    pub select: String,
    /// ClickHouse output format of the staged file: `TabSeparated`.
    pub format: String,
    /// The exported columns in file order, with what the runtime checks of their types.
    pub columns: Vec<ExportColumn>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportColumn {
    pub name: String,
    /// The ClickHouse expression as exported (before any conversion stir adds).
    pub expr: String,
    /// The PostgreSQL column type.
    pub pg_type: String,
    /// ClickHouse type families accepted for this column, after unwrapping `Nullable(..)` and
    /// `LowCardinality(..)`; empty means any. A family matches a type whose name (before `(`)
    /// is the family followed by nothing or by digits only (`Int` matches `Int64`).
    pub clickhouse_types: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncLoad {
    pub schema: String,
    /// The live table, its staging copy and its backup (unqualified names).
    pub table: String,
    pub new_table: String,
    pub old_table: String,
    /// Drop leftovers and create the UNLOGGED staging table.
    pub prepare: Vec<String>,
    /// `COPY .. FROM STDIN`, fed with the staged file.
    pub copy: String,
    /// Defaults for NULLs, enrich and delete-where statements, in order.
    pub transform: Vec<String>,
    /// SET LOGGED, indexes and VACUUM (ANALYZE) on the staging table, one statement each.
    pub finish: Vec<String>,
    /// Answers one row, one column: whether the live table exists.
    pub live_exists: String,
    /// Row counts for the max-shrink guard.
    pub count_new: String,
    pub count_live: String,
    /// Run in one transaction: live -> old, new -> live (with index renames).
    pub swap: Vec<String>,
    /// After the swap (empty with keep-backup).
    pub drop_old: Vec<String>,
    /// `stir-runtime plan.json rollback SYNC`, in one transaction: the live table and its
    /// backup exchange names, with their indexes (format 6; absent: no rollback).
    #[serde(default)]
    pub rollback: Vec<String>,
    /// After a failure: drop the staging table.
    pub cleanup: Vec<String>,
}

impl SyncLoad {
    /// This load for one run: [`RUN_TOKEN`] replaced by `tag` ([`run_tag`]) in `new_table` and
    /// at the end of every quoted identifier of every statement.
    pub fn for_run(&self, tag: &str) -> SyncLoad {
        let quoted = format!("{RUN_TOKEN}\"");
        let bound = format!("{tag}\"");
        let bind = |sql: &String| sql.replace(&quoted, &bound);
        let all = |list: &[String]| list.iter().map(bind).collect::<Vec<_>>();
        SyncLoad {
            schema: self.schema.clone(),
            table: self.table.clone(),
            new_table: self.new_table.replace(RUN_TOKEN, tag),
            old_table: self.old_table.clone(),
            prepare: all(&self.prepare),
            copy: bind(&self.copy),
            transform: all(&self.transform),
            finish: all(&self.finish),
            live_exists: bind(&self.live_exists),
            count_new: bind(&self.count_new),
            count_live: bind(&self.count_live),
            swap: all(&self.swap),
            drop_old: all(&self.drop_old),
            rollback: all(&self.rollback),
            cleanup: all(&self.cleanup),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub name: String,
    /// The query file, relative to the manifest's folder.
    pub file: String,
    /// The final ClickHouse query (wrapped with `LIMIT` when the request has a limit).
    pub sql: String,
    pub limit: Option<u64>,
    pub endpoint: String,
    pub path: String,
    /// Jinja template over `row`, rendered per row by the runtime.
    pub body: String,
    /// The models its query reads (through `ref`), sorted: a run skips the step only when one
    /// of them failed. `null`: not known (a model named without `ref`, or a plan before format
    /// 7): the step is skipped after any failure before it.
    #[serde(default)]
    pub reads: Option<Vec<String>>,
    pub concurrency: u32,
    /// At most this many POSTs (tries included) per second; `null`: unpaced (format 6;
    /// absent: null).
    #[serde(default)]
    pub rate_per_sec: Option<f64>,
    pub max_failures_pct: f64,
}

impl Plan {
    /// Canonical pretty JSON with sorted keys and a trailing newline.
    pub fn to_json(&self) -> String {
        let v = canonical(serde_json::to_value(self).expect("plan types always serialize"));
        let mut s = serde_json::to_string_pretty(&v).expect("a JSON value always serializes");
        s.push('\n');
        s
    }

    /// The hash of everything but `plan_hash`.
    pub fn compute_hash(&self) -> String {
        hash_value(serde_json::to_value(self).expect("plan types always serialize"))
    }

    /// Set `plan_hash` from the content.
    pub fn seal(mut self) -> Plan {
        self.plan_hash = self.compute_hash();
        self
    }

    /// Read a plan for stir-runtime.
    pub fn from_json(text: &str) -> Result<Plan, PlanError> {
        Plan::from_json_for(text, "stir-runtime")
    }

    /// Read a plan; `reader` names the program in version errors (`stir`, `stir-runtime`).
    pub fn from_json_for(text: &str, reader: &'static str) -> Result<Plan, PlanError> {
        Plan::parse(text, reader, FORMAT_VERSION)
    }

    /// Read a previous plan to review against: versions from [`OLDEST_REVIEWABLE_VERSION`].
    pub fn from_json_for_review(text: &str) -> Result<Plan, PlanError> {
        Plan::parse(text, "stir", OLDEST_REVIEWABLE_VERSION)
    }

    fn parse(text: &str, reader: &'static str, oldest: u32) -> Result<Plan, PlanError> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| PlanError::NotAPlan(format!("not JSON ({e})")))?;
        let Value::Object(map) = &v else {
            return Err(PlanError::NotAPlan("the JSON is not an object".into()));
        };
        let version = match map.get("format_version") {
            None => return Err(PlanError::NotAPlan("no `format_version`".into())),
            Some(x) => x.as_u64().ok_or_else(|| {
                PlanError::NotAPlan(format!("`format_version` is {x}, not a whole number"))
            })?,
        };
        if version > u64::from(FORMAT_VERSION) {
            return Err(PlanError::NewerVersion {
                found: version,
                supported: FORMAT_VERSION,
                reader,
            });
        }
        if version < u64::from(oldest) {
            return Err(PlanError::UnknownVersion {
                found: version,
                supported: FORMAT_VERSION,
                reader,
            });
        }
        let recorded = match map.get("plan_hash") {
            Some(Value::String(h)) => h.clone(),
            _ => return Err(PlanError::NotAPlan("no `plan_hash`".into())),
        };
        let computed = hash_value(v.clone());
        if computed != recorded {
            return Err(PlanError::HashMismatch { recorded, computed });
        }
        serde_json::from_value(v).map_err(|e| PlanError::Invalid(e.to_string()))
    }

    pub fn schedule(&self, name: &str) -> Option<&Schedule> {
        self.schedules.iter().find(|s| s.name == name)
    }
    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.iter().find(|m| m.name == name)
    }
}

/// sha256 hex of the canonical compact JSON of `v` without its `plan_hash` key.
fn hash_value(mut v: Value) -> String {
    if let Value::Object(map) = &mut v {
        map.remove("plan_hash");
    }
    let text = serde_json::to_string(&canonical(v)).expect("a JSON value always serializes");
    sha256_hex(text.as_bytes())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Rebuild every object with its keys inserted in sorted order, whatever map serde_json uses.
fn canonical(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn tiny() -> Plan {
        Plan {
            format_version: FORMAT_VERSION,
            manifest_hash: "00".into(),
            project: "p".into(),
            timezone: "UTC".into(),
            warehouse: Warehouse {
                database: "dbt".into(),
                cluster: None,
                threads: DEFAULT_THREADS,
            },
            serving: None,
            targets: vec![],
            staging: None,
            notify: None,
            endpoints: vec![],
            blackouts: vec![],
            schedules: vec![Schedule {
                name: "s".into(),
                cron: "* * * * *".into(),
                timeout_secs: 60,
                heavy: false,
                enabled: true,
                retries: 0,
                retry_all: false,
                on_missed: OnMissed::default(),
                threads: None,
                notify: None,
                skip: vec![],
                steps: vec![
                    Step::Sql {
                        sql: "select 1".into(),
                    },
                    Step::Run {
                        models: vec!["a".into()],
                    },
                ],
            }],
            models: vec![],
            syncs: vec![],
            requests: vec![],
            plan_hash: String::new(),
        }
        .seal()
    }

    #[test]
    fn round_trip_and_sorted_keys() {
        let p = tiny();
        let text = p.to_json();
        assert_eq!(Plan::from_json(&text).unwrap(), p);
        let keys: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("  \""))
            .map(|l| l.trim().split('"').nth(1).unwrap())
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert!(text.contains("\"kind\": \"sql\""));
    }

    /// A version-2 plan (no `staging.keep`) is refused by the runtime but still reviewable,
    /// read as keeping every staged file, which is what version 2 did.
    #[test]
    fn version_2_plans_are_reviewable_not_runnable() {
        let mut p = tiny();
        p.staging = Some(Staging {
            bucket: "b".into(),
            prefix: "tmp".into(),
            compression: StagingCompression::Lz4,
            keep: Some(3),
        });
        let mut v: Value = serde_json::from_str(&p.to_json()).unwrap();
        v["format_version"] = 2.into();
        v["staging"].as_object_mut().unwrap().remove("keep");
        v["plan_hash"] = hash_value(v.clone()).into();
        let old = serde_json::to_string_pretty(&v).unwrap();
        assert!(matches!(
            Plan::from_json(&old),
            Err(PlanError::UnknownVersion { found: 2, .. })
        ));
        let read = Plan::from_json_for_review(&old).unwrap();
        assert_eq!(read.format_version, 2);
        assert_eq!(read.staging.unwrap().keep, None);
        let v1 = old.replace("\"format_version\": 2", "\"format_version\": 1");
        assert!(Plan::from_json_for_review(&v1).is_err());
    }

    /// A version-3 plan (no `allow_empty`, no `lock_timeout_ms`) is reviewable, read as what
    /// version 3 did: empty results swapped in, no lock timeout.
    #[test]
    fn version_3_syncs_read_as_allowing_empty_without_lock_timeout() {
        let mut v: Value = serde_json::from_str(&tiny().to_json()).unwrap();
        let sync = serde_json::json!({
            "name": "s", "from": "m", "s3_prefix": "p/s/", "max_shrink_pct": null,
            "keep_backup": false,
            "clickhouse": {"select": "SELECT 1", "format": "TabSeparated", "columns": []},
            "postgres": {
                "schema": "app", "table": "t", "new_table": "t__stir_new",
                "old_table": "t__stir_old", "prepare": [], "copy": "", "transform": [],
                "finish": [], "live_exists": "", "count_new": "", "count_live": "",
                "swap": [], "drop_old": [], "cleanup": []
            }
        });
        v["syncs"] = Value::Array(vec![sync]);
        v["format_version"] = 3.into();
        v["plan_hash"] = hash_value(v.clone()).into();
        let old = serde_json::to_string_pretty(&v).unwrap();
        assert!(matches!(
            Plan::from_json(&old),
            Err(PlanError::UnknownVersion { found: 3, .. })
        ));
        let read = Plan::from_json_for_review(&old).unwrap();
        assert!(read.syncs[0].allow_empty);
        assert_eq!(read.syncs[0].lock_timeout_ms, 0);
    }

    /// A version-4 plan (no `on_missed`) is reviewable, read as what version 4 did: a missed
    /// fire was dropped, not run late.
    #[test]
    fn version_4_schedules_read_as_skipping_missed_fires() {
        let mut v: Value = serde_json::from_str(&tiny().to_json()).unwrap();
        for s in v["schedules"].as_array_mut().unwrap() {
            s.as_object_mut().unwrap().remove("on_missed");
        }
        v["format_version"] = 4.into();
        v["plan_hash"] = hash_value(v.clone()).into();
        let old = serde_json::to_string_pretty(&v).unwrap();
        assert!(
            Plan::from_json(&old).is_err(),
            "the runtime refuses format 4"
        );
        let read = Plan::from_json_for_review(&old).unwrap();
        // Every schedule read back, by name (not merely some), each as skipping.
        let names = |p: &Plan| {
            p.schedules
                .iter()
                .map(|s| s.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&read), names(&tiny()));
        assert!(read.schedules.iter().all(|s| s.on_missed == OnMissed::Skip));
    }

    /// A version-5 plan (no `postgres.rollback`) is reviewable, read as what version 5 did:
    /// no rollback statements.
    #[test]
    fn version_5_syncs_read_without_rollback() {
        let mut v: Value = serde_json::from_str(&tiny().to_json()).unwrap();
        let sync = serde_json::json!({
            "name": "s", "from": "m", "s3_prefix": "p/s/", "max_shrink_pct": 50.0,
            "keep_backup": false, "allow_empty": false, "lock_timeout_ms": 5000,
            "clickhouse": {"select": "SELECT 1", "format": "TabSeparated", "columns": []},
            "postgres": {
                "schema": "app", "table": "t", "new_table": "t__stir_new_{run}",
                "old_table": "t__stir_old", "prepare": [], "copy": "", "transform": [],
                "finish": [], "live_exists": "", "count_new": "", "count_live": "",
                "swap": [], "drop_old": ["DROP TABLE IF EXISTS \"app\".\"t__stir_old\""],
                "cleanup": []
            }
        });
        v["syncs"] = Value::Array(vec![sync]);
        v["format_version"] = 5.into();
        v["plan_hash"] = hash_value(v.clone()).into();
        let old = serde_json::to_string_pretty(&v).unwrap();
        assert!(matches!(
            Plan::from_json(&old),
            Err(PlanError::UnknownVersion { found: 5, .. })
        ));
        let read = Plan::from_json_for_review(&old).unwrap();
        assert!(read.syncs[0].postgres.rollback.is_empty());
        assert!(!read.syncs[0].keep_backup);
        assert_eq!(read.syncs[0].postgres.drop_old.len(), 1);
    }

    /// A version-6 plan (no `retry_all`) is reviewable, read as what version 6 did: retries
    /// resume.
    #[test]
    fn version_6_schedules_read_without_retry_all() {
        let mut v: Value = serde_json::from_str(&tiny().to_json()).unwrap();
        for s in v["schedules"].as_array_mut().unwrap() {
            s.as_object_mut().unwrap().remove("retry_all");
        }
        v["format_version"] = 6.into();
        v["plan_hash"] = hash_value(v.clone()).into();
        let old = serde_json::to_string_pretty(&v).unwrap();
        assert!(matches!(
            Plan::from_json(&old),
            Err(PlanError::UnknownVersion { found: 6, .. })
        ));
        let read = Plan::from_json_for_review(&old).unwrap();
        assert!(!read.schedules[0].retry_all);
    }

    #[test]
    fn refuses_edits_versions_and_garbage() {
        let text = tiny().to_json();
        let edited = text.replace("select 1", "select 2");
        assert!(matches!(
            Plan::from_json(&edited),
            Err(PlanError::HashMismatch { .. })
        ));
        assert_eq!(
            Plan::from_json(&edited).unwrap_err().to_string(),
            "plan.json was edited after `stir plan`: hash mismatch"
        );
        let (now, next) = (FORMAT_VERSION, FORMAT_VERSION + 1);
        let newer = text.replace(
            &format!("\"format_version\": {now}"),
            &format!("\"format_version\": {next}"),
        );
        assert_eq!(
            Plan::from_json(&newer).unwrap_err().to_string(),
            format!("plan format version {next} is newer than this stir-runtime (supports {now}); upgrade stir-runtime")
        );
        for garbage in [
            "",
            "null",
            "[]",
            "{}",
            "{\"format_version\": \"1\"}",
            "{\"format_version\": 1}",
            "{\"format_version\": 2}",
            "{\"format_version\": 3}",
            "{\"format_version\": 4}",
            "{\"format_version\": 5}",
            "{\"format_version\": 6}",
            "{\"format_version\": 7}",
            "\u{0}",
            "{\"format_version\": 0}",
        ] {
            assert!(Plan::from_json(garbage).is_err(), "{garbage:?}");
        }
    }

    #[test]
    fn run_tags_are_8_hex_chars_and_differ_by_run() {
        let a = run_tag("dbt_daily-20260101T001500000Z-a1");
        assert_eq!(a.len(), RUN_TAG_LEN);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(a, run_tag("dbt_daily-20260101T001500000Z-a1"));
        assert_ne!(a, run_tag("dbt_daily-20260101T001500000Z-a2"));
        assert_eq!(run_tag("").len(), RUN_TAG_LEN);
    }

    /// The token is bound in names only: a user's literal `{run}` in an enrich stays as written.
    #[test]
    fn for_run_binds_the_staging_names_only() {
        let n = "\"s\".\"t__stir_new_{run}\"";
        let load = SyncLoad {
            schema: "s".into(),
            table: "t".into(),
            new_table: "t__stir_new_{run}".into(),
            old_table: "t__stir_old".into(),
            prepare: vec![format!("CREATE UNLOGGED TABLE {n} (a int)")],
            copy: format!("COPY {n} (a) FROM STDIN"),
            transform: vec![format!("UPDATE {n} SET a = length('{{run}}')")],
            finish: vec![format!(
                "CREATE INDEX \"t__a_idx__stir_new_{{run}}\" ON {n} (a)"
            )],
            live_exists: "SELECT true".into(),
            count_new: format!("SELECT count(*) FROM {n}"),
            count_live: "SELECT count(*) FROM \"s\".\"t\"".into(),
            swap: vec![format!("ALTER TABLE {n} RENAME TO \"t\"")],
            drop_old: vec![],
            rollback: vec![],
            cleanup: vec![format!("DROP TABLE IF EXISTS {n}")],
        };
        let b = load.for_run("0123abcd");
        assert_eq!(b.new_table, "t__stir_new_0123abcd");
        assert_eq!(b.copy, "COPY \"s\".\"t__stir_new_0123abcd\" (a) FROM STDIN");
        assert_eq!(
            b.transform,
            ["UPDATE \"s\".\"t__stir_new_0123abcd\" SET a = length('{run}')"]
        );
        assert_eq!(
            b.finish,
            ["CREATE INDEX \"t__a_idx__stir_new_0123abcd\" ON \"s\".\"t__stir_new_0123abcd\" (a)"]
        );
        let text = serde_json::to_string(&b).unwrap();
        assert_eq!(text.matches("{run}").count(), 1, "{text}");
    }
}
