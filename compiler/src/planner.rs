//! Stage 6: a checked manifest into the frozen plan (`plan.rs`), with every statement the runtime
//! runs generated here: ClickHouse DDL for each materialization, the export query and the
//! PostgreSQL load, index and swap statements of each sync, the final query of each request.
//!
//! Invariant: nothing here reads the environment, the clock or the file system; the plan is a
//! function of the compiled manifest alone.

use std::collections::BTreeMap;

use crate::manifest::{self, Materialized, SettingValue};
use crate::plan::{self, Plan, FORMAT_VERSION};
use crate::project::{Compiled, ResolvedStep};
pub use stir_plan::pgtype::clickhouse_types;
use stir_plan::quote::pg_literal;
pub use stir_plan::quote::{ch_ident, pg_ident};

/// Why a compiled manifest cannot become a plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanBuildError {
    #[error("the manifest has errors; run `stir check` and fix them first")]
    HasErrors,
    #[error("{0}")]
    Incomplete(String),
}

/// Build the plan of a compiled manifest that has no errors.
pub fn build(c: &Compiled) -> Result<Plan, PlanBuildError> {
    if c.has_errors() {
        return Err(PlanBuildError::HasErrors);
    }
    let m = &c.manifest;
    let manifest_bytes = c.files.text(c.manifest_file).as_bytes();
    let ch = Ch {
        db: m.warehouse.database.clone(),
        cluster: m.warehouse.cluster.clone(),
    };
    let incomplete = |what: String| PlanBuildError::Incomplete(what);

    let window = |b: &manifest::Blackout| plan::Window {
        name: b.name.text.clone(),
        from: b.from,
        to: b.to,
    };
    let mut blackouts: Vec<plan::Window> = m.blackouts.iter().map(window).collect();
    blackouts.sort_by(|a, b| a.name.cmp(&b.name));

    let mut schedules = Vec::new();
    for (si, s) in m.schedules.iter().enumerate() {
        let cron = s
            .cron
            .as_ref()
            .ok_or_else(|| incomplete(format!("schedule `{}` has no cron", s.name.text)))?;
        let timeout_secs = s
            .timeout_secs
            .ok_or_else(|| incomplete(format!("schedule `{}` has no timeout", s.name.text)))?;
        let mut skip = Vec::new();
        for b in &s.skip {
            let &bi = c
                .names
                .blackouts
                .get(&b.text)
                .ok_or_else(|| incomplete(format!("unknown blackout `{}`", b.text)))?;
            skip.push(window(&m.blackouts[bi]));
        }
        skip.sort_by(|a, b| a.name.cmp(&b.name));
        skip.dedup();
        let steps = c.steps[si]
            .iter()
            .map(|step| match step {
                ResolvedStep::Run(ms) => plan::Step::Run {
                    models: ms.iter().map(|&i| m.models[i].name.text.clone()).collect(),
                },
                ResolvedStep::Sql(sql) => plan::Step::Sql { sql: sql.clone() },
                ResolvedStep::Sync(i) => plan::Step::Sync {
                    sync: m.syncs[*i].name.text.clone(),
                },
                ResolvedStep::Request(i) => plan::Step::Request {
                    request: m.requests[*i].name.text.clone(),
                },
            })
            .collect();
        schedules.push(plan::Schedule {
            name: s.name.text.clone(),
            cron: cron.value.clone(),
            timeout_secs,
            heavy: s.heavy,
            enabled: s.enabled,
            retries: s.retries,
            retry_all: s.retry_all,
            on_missed: s.on_missed,
            threads: s.threads,
            notify: s
                .notify
                .as_ref()
                .map(|own| notify_plan(own, m.notify.as_ref())),
            skip,
            steps,
        });
    }
    schedules.sort_by(|a, b| a.name.cmp(&b.name));

    let mut models = Vec::new();
    for (i, model) in m.models.iter().enumerate() {
        if c.models[i].disabled {
            continue; // never built, never read by an enabled model (stir::disabled_dependency)
        }
        let compiled = &c.models[i];
        let sql = compiled
            .sql
            .as_deref()
            .ok_or_else(|| incomplete(format!("model `{}` has no SQL", model.name.text)))?;
        let mut deps: Vec<String> = compiled
            .deps
            .iter()
            .map(|&d| m.models[d].name.text.clone())
            .collect();
        deps.sort();
        let mut tags: Vec<String> = model.tags.iter().map(|t| t.text.clone()).collect();
        tags.sort();
        tags.dedup();
        models.push(model_plan(
            &ch,
            model,
            sql,
            compiled.sql_incremental.as_deref(),
            tags,
            deps,
        )?);
    }
    models.sort_by(|a, b| a.name.cmp(&b.name));

    let mut syncs = Vec::new();
    if !m.syncs.is_empty() {
        let staging = m
            .staging
            .as_ref()
            .ok_or_else(|| incomplete("syncs need a `staging s3` node".into()))?;
        let renderer = c.renderer();
        for s in &m.syncs {
            let target = crate::target::of(m, s).ok_or_else(|| {
                incomplete(format!(
                    "sync `{}` has no serving target (`serving postgres`, or `target=`)",
                    s.name.text
                ))
            })?;
            let mut sync = sync_plan(&ch, target.schema, &staging.prefix, s, &renderer)?;
            sync.target = target.name.map(str::to_string);
            syncs.push(sync);
        }
    }
    syncs.sort_by(|a, b| a.name.cmp(&b.name));

    let mut requests = Vec::new();
    for (i, r) in m.requests.iter().enumerate() {
        let missing = |what: &str| incomplete(format!("request `{}` has no {what}", r.name.text));
        let sql = c
            .requests
            .get(i)
            .and_then(|cr| cr.sql.as_deref())
            .ok_or_else(|| missing("query"))?;
        let sql = trim_sql(sql);
        requests.push(plan::Request {
            name: r.name.text.clone(),
            file: r
                .query
                .as_ref()
                .map(|q| q.value.clone())
                .ok_or_else(|| missing("query"))?,
            sql: match r.limit {
                Some(n) => format!("SELECT * FROM (\n{sql}\n) LIMIT {n}"),
                None => sql.to_string(),
            },
            limit: r.limit,
            endpoint: r
                .endpoint
                .as_ref()
                .map(|e| e.text.clone())
                .ok_or_else(|| missing("endpoint"))?,
            path: r.path.clone().unwrap_or_else(|| "/".into()),
            body: r
                .body
                .as_ref()
                .map(|b| b.value.clone())
                .ok_or_else(|| missing("body"))?,
            reads: c.requests.get(i).and_then(|cr| cr.reads.clone()),
            concurrency: r.concurrency,
            rate_per_sec: r.rate,
            max_failures_pct: r.max_failures_pct,
        });
    }
    requests.sort_by(|a, b| a.name.cmp(&b.name));

    let mut endpoints: Vec<String> = m.endpoints.iter().map(|e| e.text.clone()).collect();
    endpoints.sort();
    endpoints.dedup();

    let project = m
        .project
        .as_ref()
        .ok_or_else(|| incomplete("the manifest has no `project` node".into()))?;
    Ok(Plan {
        format_version: FORMAT_VERSION,
        manifest_hash: plan::sha256_hex(manifest_bytes),
        project: project.name.text.clone(),
        timezone: project.timezone.value.clone(),
        warehouse: plan::Warehouse {
            database: m.warehouse.database.clone(),
            cluster: m.warehouse.cluster.clone(),
            threads: m.warehouse.threads,
        },
        serving: m.serving.as_ref().map(|s| plan::Serving {
            schema: s.schema.clone(),
        }),
        targets: {
            let mut t: Vec<plan::Target> = m
                .targets
                .iter()
                .map(|t| plan::Target {
                    name: t.name.text.clone(),
                    schema: t.schema.clone(),
                })
                .collect();
            t.sort_by(|a, b| a.name.cmp(&b.name));
            t
        },
        staging: m.staging.as_ref().map(|s| plan::Staging {
            bucket: s.bucket.clone(),
            prefix: s.prefix.clone(),
            compression: s.compression,
            keep: s.keep,
        }),
        notify: m.notify.as_ref().map(|n| notify_plan(n, None)),
        endpoints,
        blackouts,
        schedules,
        models,
        syncs,
        requests,
        plan_hash: String::new(),
    }
    .seal())
}

// ---------------------------------------------------------------------------------------------
// ClickHouse

/// The warehouse as statements see it.
struct Ch {
    db: String,
    cluster: Option<String>,
}

impl Ch {
    fn table(&self, name: &str) -> String {
        format!("{}.{}", ch_ident(&self.db), ch_ident(name))
    }
    /// ` ON CLUSTER c` for DDL, or nothing.
    fn on_cluster(&self) -> String {
        self.cluster
            .as_ref()
            .map_or(String::new(), |c| format!(" ON CLUSTER {}", ch_ident(c)))
    }
}

/// A rendered SELECT as a statement body: surrounding whitespace and trailing `;` removed.
/// At least the bytes a model's rendered SQL takes in a plan: the JSON-escaped statement once
/// for each place [`model_plan`] writes it. `stir check`, which keeps no SQL, adds these up to
/// refuse a project whose plan no runtime would read before `stir plan` has to.
pub(crate) fn sql_bytes_in_plan(materialized: Materialized, incremental: bool, sql: &str) -> u64 {
    let copies = match (materialized, incremental) {
        // `sql`, `CREATE TABLE .. EMPTY AS` and `INSERT`
        (Materialized::Table, _) => 3,
        // `sql` and `CREATE OR REPLACE VIEW`
        (Materialized::View, _) => 2,
        // `sql`, then the first build's and the full refresh's CREATE and INSERT
        (Materialized::Incremental, false) => 5,
        // `sql_incremental` and the incremental INSERT
        (Materialized::Incremental, true) => 2,
    };
    // What JSON adds: one byte for `"`, `\\` and the control characters with a short escape
    // (`\\n`), five for the others (`\\u0001`). Byte counters over blocks of 255, which the
    // compiler turns into vector code: this runs over every model `stir check` renders.
    let sql = trim_sql(sql).as_bytes();
    let mut extra = 0u64;
    for block in sql.chunks(255) {
        let (mut one, mut five) = (0u8, 0u8);
        for &b in block {
            let control = b < 0x20;
            let short = b == b'\n' || b == b'\r' || b == b'\t' || b == 0x08 || b == 0x0c;
            one += u8::from(control || b == b'"' || b == b'\\');
            five += u8::from(control & !short);
        }
        extra += u64::from(one) + 4 * u64::from(five);
    }
    copies * (sql.len() as u64 + extra)
}

fn trim_sql(sql: &str) -> &str {
    let mut s = sql.trim();
    while let Some(rest) = s.strip_suffix(';') {
        s = rest.trim_end();
    }
    s
}

fn setting_value(v: &SettingValue) -> String {
    match v {
        SettingValue::Str(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        SettingValue::Int(i) => i.to_string(),
        SettingValue::Float(f) => f.to_string(),
        SettingValue::Bool(b) => u8::from(*b).to_string(),
    }
}

fn model_plan(
    ch: &Ch,
    model: &manifest::Model,
    sql: &str,
    sql_incremental: Option<&str>,
    tags: Vec<String>,
    deps: Vec<String>,
) -> Result<plan::Model, PlanBuildError> {
    let name = &model.name.text;
    let target = ch.table(name);
    let new = ch.table(&format!("{name}__stir_new"));
    let oc = ch.on_cluster();
    let sql = trim_sql(sql);
    // Settings are query settings of the build's INSERT .. SELECT, sorted by name.
    let settings: BTreeMap<&str, String> = model
        .settings
        .iter()
        .map(|(k, v)| (k.as_str(), setting_value(v)))
        .collect();
    let settings_clause = if settings.is_empty() {
        String::new()
    } else {
        format!(
            "\nSETTINGS {}",
            settings
                .iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let mut layout = format!(" ENGINE = {}", model.engine.trim());
    if let Some(p) = &model.partition_by {
        layout.push_str(&format!(" PARTITION BY {}", key_tuple(p)));
    }
    match &model.order_by {
        Some(o) => layout.push_str(&format!(" ORDER BY {}", key_tuple(o))),
        None if model.engine.contains("MergeTree") => layout.push_str(" ORDER BY tuple()"),
        None => {}
    }
    // Create the staging table empty from the SELECT's shape (DDL, so ON CLUSTER), then fill it
    // with an INSERT that carries the model's settings (DML, run where the runtime connects).
    let create_new = [
        format!("DROP TABLE IF EXISTS {new}{oc}"),
        format!("CREATE TABLE {new}{oc}{layout} EMPTY AS\n{sql}"),
        format!("INSERT INTO {new}\n{sql}{settings_clause}"),
    ];
    let drop_new = format!("DROP TABLE IF EXISTS {new}{oc}");
    // A whole new table swapped in: a table model's build, an incremental's full refresh.
    let swap_in: Vec<String> = create_new
        .iter()
        .cloned()
        .chain([
            format!("CREATE TABLE IF NOT EXISTS {target}{oc} AS {new}"),
            format!("EXCHANGE TABLES {new} AND {target}{oc}"),
            drop_new.clone(),
        ])
        .collect();
    let mut out = plan::Model {
        name: name.clone(),
        materialized: model.materialized,
        tags,
        deps,
        file: model.file.clone(),
        table: format!("{}.{}", ch.db, name),
        sql: sql.to_string(),
        sql_incremental: None,
        build: Vec::new(),
        exists: None,
        first_build: Vec::new(),
        incremental: Vec::new(),
        full_refresh: Vec::new(),
        cleanup: Vec::new(),
        freshness_secs: model.freshness_secs,
    };
    match model.materialized {
        Materialized::Table => {
            out.build = swap_in;
            out.cleanup.push(drop_new);
        }
        Materialized::View => {
            out.build
                .push(format!("CREATE OR REPLACE VIEW {target}{oc} AS\n{sql}"));
        }
        Materialized::Incremental => {
            let inc = sql_incremental.map(trim_sql).ok_or_else(|| {
                PlanBuildError::Incomplete(format!(
                    "incremental model `{name}` has no incremental SQL"
                ))
            })?;
            out.sql_incremental = Some(inc.to_string());
            out.exists = Some(format!("EXISTS TABLE {target}"));
            out.first_build.extend(create_new);
            out.first_build
                .push(format!("RENAME TABLE {new} TO {target}{oc}"));
            // `--full-refresh`: the first build's SELECT into a new table, swapped in whole
            // as a table model's build is, so readers never see the table empty.
            out.full_refresh = swap_in;
            out.incremental
                .push(format!("INSERT INTO {target}\n{inc}{settings_clause}"));
            // Replacing/Collapsing engines deduplicate only at merge time; an incremental run
            // that re-appends recent rows would leave duplicates for every reader (and for a
            // sync's unique key) until then. Merge now, so the run ends with one row per key.
            if model.engine.contains("Replacing") || model.engine.contains("Collapsing") {
                out.incremental
                    .push(format!("OPTIMIZE TABLE {target}{oc} FINAL"));
            }
            out.cleanup.push(drop_new);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/// A `notify` as the runtime reads it: what `own` does not say comes from `top` (the
/// manifest's top-level `notify`), then the defaults.
fn notify_plan(own: &manifest::Notify, top: Option<&manifest::Notify>) -> plan::Notify {
    let top = top.cloned().unwrap_or_default();
    plan::Notify {
        on: own.on.or(top.on).unwrap_or(manifest::NotifyOn::Failure),
        webhook: own
            .webhook
            .as_ref()
            .or(top.webhook.as_ref())
            .map(|w| w.text.clone()),
        link: own.link.clone().or(top.link),
        repeat_secs: own
            .repeat_secs
            .or(top.repeat_secs)
            .unwrap_or(plan::DEFAULT_REPEAT_SECS),
    }
}

/// `head` followed by `tail`, in at most PostgreSQL's 63 bytes once a [`plan::RUN_TOKEN`] in
/// `tail` is bound. A name that would be longer keeps a prefix of `head`, then `_` and 8 hex
/// characters of `head`'s sha256, then the whole `tail`: the tail (the name's role) survives,
/// and two heads stay apart. PostgreSQL would cut the name instead, and `t__stir_new` and
/// `t__stir_old` of a long `t` would become one table.
pub fn pg_fit(head: &str, tail: &str) -> String {
    let tail_len = match tail.contains(plan::RUN_TOKEN) {
        true => tail.len() - plan::RUN_TOKEN.len() + plan::RUN_TAG_LEN,
        false => tail.len(),
    };
    if head.len() + tail_len <= 63 {
        return format!("{head}{tail}");
    }
    let hash = &plan::sha256_hex(head.as_bytes())[..8];
    let mut cut = 63usize.saturating_sub(tail_len + 1 + hash.len());
    while !head.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}_{hash}{tail}", &head[..cut])
}

/// The role of a staging name: [`plan::RUN_TOKEN`] is bound to the run's tag by the runtime.
const STAGING_TAIL: &str = "__stir_new_{run}";
const BACKUP_TAIL: &str = "__stir_old";
/// The live table's name for the moment a rollback exchanges it with the backup.
const ROLLBACK_TAIL: &str = "__stir_rb";

/// Every PostgreSQL name a sync to `to` generates besides `to` itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncNames {
    /// The per-run staging table (holds [`plan::RUN_TOKEN`]).
    pub staging: String,
    /// The backup the swap renames the live table to.
    pub backup: String,
    /// The live table's name inside a rollback's transaction, between its two renames.
    pub rollback: String,
    /// Per index, in the order given.
    pub indexes: Vec<IndexNames>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexNames {
    /// On the live table (the names stir has always used, so existing indexes are found).
    pub live: String,
    /// On the staging table (holds [`plan::RUN_TOKEN`]).
    pub staging: String,
    /// On the backup.
    pub backup: String,
    /// On the live table inside a rollback's transaction.
    pub rollback: String,
}

/// The names of a sync to `to` with indexes called `index_suffixes` (`key`, `month_idx`, ...).
pub fn sync_names(to: &str, index_suffixes: &[String]) -> SyncNames {
    SyncNames {
        staging: pg_fit(to, STAGING_TAIL),
        backup: pg_fit(to, BACKUP_TAIL),
        rollback: pg_fit(to, ROLLBACK_TAIL),
        indexes: index_suffixes
            .iter()
            .map(|suffix| {
                let head = format!("{to}__{suffix}");
                IndexNames {
                    live: pg_fit(&head, ""),
                    staging: pg_fit(&head, STAGING_TAIL),
                    backup: pg_fit(&head, BACKUP_TAIL),
                    rollback: pg_fit(&head, ROLLBACK_TAIL),
                }
            })
            .collect(),
    }
}

/// Settings of the export SELECT, sorted by name. A server default, a user profile or a
/// session could otherwise cut the answer short (`max_result_rows` with
/// `result_overflow_mode='break'`, `limit`, a `break` on a read, sort, set, join, distinct,
/// transfer or timeout limit, `group_by_overflow_mode='any'`, filters, extremes rows, a
/// cached answer, skipped shards) or change its text (NULL and Bool spellings, CRLF line
/// ends, float precision, time zone, date format, JSON quoting in `toJSONString`). The
/// limits themselves stay the operator's: with `throw` one that is hit fails the export
/// loudly instead of truncating it.
const EXPORT_SETTINGS: &[(&str, &str)] = &[
    ("additional_result_filter", "''"),
    ("additional_table_filters", "{}"),
    ("bool_false_representation", "'false'"),
    ("bool_true_representation", "'true'"),
    (
        "date_time_64_output_format_cut_trailing_zeros_align_to_groups_of_thousands",
        "0",
    ),
    ("date_time_output_format", "'simple'"),
    ("distinct_overflow_mode", "'throw'"),
    ("extremes", "0"),
    ("format_tsv_null_representation", "'\\\\N'"),
    ("group_by_overflow_mode", "'throw'"),
    ("interval_output_format", "'numeric'"),
    ("join_overflow_mode", "'throw'"),
    ("limit", "0"),
    ("max_result_bytes", "0"),
    ("max_result_rows", "0"),
    ("offset", "0"),
    (
        "output_format_always_write_decimal_point_in_float_and_decimal",
        "0",
    ),
    ("output_format_decimal_trailing_zeros", "0"),
    ("output_format_float_precision", "0"),
    ("output_format_json_escape_forward_slashes", "1"),
    ("output_format_json_map_as_array_of_tuples", "0"),
    ("output_format_json_named_tuples_as_objects", "1"),
    ("output_format_json_quote_64bit_floats", "0"),
    // JSON numbers stay numbers (ClickHouse before 25.8 quoted 64-bit integers by default).
    ("output_format_json_quote_64bit_integers", "0"),
    ("output_format_json_quote_decimals", "0"),
    ("output_format_json_quote_denormals", "0"),
    ("output_format_json_skip_null_value_in_named_tuples", "0"),
    ("output_format_json_validate_utf8", "0"),
    ("output_format_trim_fixed_string", "0"),
    ("output_format_tsv_crlf_end_of_line", "0"),
    ("partial_result_on_first_cancel", "0"),
    ("read_overflow_mode", "'throw'"),
    ("read_overflow_mode_leaf", "'throw'"),
    ("result_overflow_mode", "'throw'"),
    ("session_timezone", "''"),
    ("set_overflow_mode", "'throw'"),
    ("skip_unavailable_shards", "0"),
    ("sort_overflow_mode", "'throw'"),
    ("timeout_overflow_mode", "'throw'"),
    ("timeout_overflow_mode_leaf", "'throw'"),
    ("transfer_overflow_mode", "'throw'"),
    ("use_query_cache", "0"),
];

/// The exported expression: bytea as hex (`\x…`); timestamptz in UTC with its offset; arrays
/// become PostgreSQL array literals (`{"a","b"}`), since
/// TabSeparated writes ClickHouse arrays as `['a','b']`; jsonb/json columns are written as JSON
/// text by ClickHouse itself (Map, Array, Tuple, JSON), 64-bit integers unquoted.
fn export_expr(expr: &str, pg_type: &str) -> String {
    if pg_type == "jsonb" || pg_type == "json" {
        format!("toJSONString({expr})")
    } else if pg_type == "bytea" {
        // bytea's hex input (`\x00ff`): raw bytes would be read as bytea's escape format
        // (a backslash starts an escape) and must be valid UTF-8 to pass COPY at all.
        format!("concat('\\\\x', hex({expr}))")
    } else if pg_type == "timestamptz" {
        utc_text(expr)
    } else if pg_type.ends_with("[]") {
        let text = if pg_type == "timestamptz[]" {
            utc_text("x")
        } else {
            "toString(x)".to_string()
        };
        format!(
            "concat('{{', arrayStringConcat(arrayMap(x -> if(isNull(x), 'NULL', concat('\"', replaceAll(replaceAll({text}, '\\\\', '\\\\\\\\'), '\"', '\\\\\"'), '\"')), {expr}), ','), '}}')"
        )
    } else {
        expr.to_string()
    }
}

/// A DateTime (or Date: midnight UTC) as UTC text with an explicit offset. TabSeparated
/// writes the wall clock of the column's zone with none, which PostgreSQL would read in its
/// session's zone and so shift the instant.
fn utc_text(expr: &str) -> String {
    format!("concat(toString(toDateTime64({expr}, 6, 'UTC')), '+00')")
}

/// A sync's PostgreSQL statement written in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncStatement {
    Enrich,
    DeleteWhere,
}

impl SyncStatement {
    pub fn keyword(self) -> &'static str {
        match self {
            SyncStatement::Enrich => "enrich",
            SyncStatement::DeleteWhere => "delete-where",
        }
    }
}

/// The staging table a sync's statements see as `{{ target }}`: schema-qualified, quoted,
/// holding [`plan::RUN_TOKEN`].
pub fn sync_target(schema: &str, to: &str) -> String {
    format!(
        "{}.{}",
        pg_ident(schema),
        pg_ident(&sync_names(to, &[]).staging)
    )
}

/// One `enrich` or `delete-where` as written, and its statement or why it does not render.
pub type RenderedSyncStatement<'s> = (
    SyncStatement,
    &'s manifest::Spanned<String>,
    crate::render::Rendered,
);

/// Every `enrich` (in order), then every `delete-where` of a sync, rendered as the plan runs
/// them, with `target` as `{{ target }}`: `enrich` as written (trimmed), `delete-where` as
/// `DELETE FROM target WHERE ..`. The one rendering of these templates: `stir plan` writes the
/// results, `stir check` reports the failures and the refs.
pub fn sync_statements<'s>(
    renderer: &crate::render::Renderer,
    s: &'s manifest::Sync,
    target: &str,
) -> Vec<RenderedSyncStatement<'s>> {
    let value = minijinja::Value::from_safe_string(target.to_string());
    let render = |text: &str| {
        renderer
            .render_str(text, minijinja::context! { target => value.clone() })
            .map(|(sql, reads)| (trim_sql(&sql).to_string(), reads))
    };
    let enrich = s
        .enrich
        .iter()
        .map(|e| (SyncStatement::Enrich, e, render(&e.value)));
    let delete = s.delete_where.iter().map(|d| {
        let rendered = render(&d.value)
            .map(|(cond, reads)| (format!("DELETE FROM {target} WHERE {cond}"), reads));
        (SyncStatement::DeleteWhere, d, rendered)
    });
    enrich.chain(delete).collect()
}

fn sync_plan(
    ch: &Ch,
    schema: &str,
    prefix: &str,
    s: &manifest::Sync,
    renderer: &crate::render::Renderer,
) -> Result<plan::Sync, PlanBuildError> {
    let incomplete =
        |what: &str| PlanBuildError::Incomplete(format!("sync `{}` has no {what}", s.name.text));
    let from = s
        .from
        .as_ref()
        .ok_or_else(|| incomplete("from"))?
        .text
        .clone();
    let to = s.to.as_ref().ok_or_else(|| incomplete("to"))?.text.clone();

    // The staging names carry the run token: each run loads its own table.
    let SyncNames {
        staging: new_name,
        backup: old_name,
        rollback: rb_name,
        ..
    } = sync_names(&to, &[]);
    let q = |t: &str| format!("{}.{}", pg_ident(schema), pg_ident(t));
    let (live, new, old) = (q(&to), sync_target(schema, &to), q(&old_name));

    // ClickHouse side: the exported columns, in declaration order.
    let exported: Vec<&manifest::Column> = s.columns.iter().filter(|c| c.export).collect();
    let mut columns = Vec::new();
    let mut select_list = Vec::new();
    for c in &exported {
        let expr = c.expr.clone().unwrap_or_else(|| ch_ident(&c.name.text));
        let shown = export_expr(&expr, &c.ty);
        if shown == ch_ident(&c.name.text) {
            select_list.push(shown);
        } else {
            select_list.push(format!("{shown} AS {}", ch_ident(&c.name.text)));
        }
        columns.push(plan::ExportColumn {
            name: c.name.text.clone(),
            expr,
            pg_type: c.ty.clone(),
            clickhouse_types: clickhouse_types(&c.ty),
        });
    }
    // The settings go last, on one line: the runtime moves that line to the outer query when
    // it wraps the SELECT (a subquery's settings do not reach the answer's format).
    let settings: Vec<String> = EXPORT_SETTINGS
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect();
    let select = format!(
        "SELECT\n    {}\nFROM {}\nSETTINGS {}",
        select_list.join(",\n    "),
        ch.table(&from),
        settings.join(", ")
    );

    // PostgreSQL side.
    let defs: Vec<String> = s
        .columns
        .iter()
        .map(|c| {
            let mut d = format!("{} {}", pg_ident(&c.name.text), c.ty);
            if let Some(def) = &c.default {
                d.push_str(&format!(" DEFAULT {def}"));
            }
            d
        })
        .collect();
    let prepare = vec![
        format!("DROP TABLE IF EXISTS {new}"),
        format!(
            "CREATE UNLOGGED TABLE {new} (\n    {}\n)",
            defs.join(",\n    ")
        ),
    ];
    let copy_cols: Vec<String> = exported.iter().map(|c| pg_ident(&c.name.text)).collect();
    let copy = format!(
        "COPY {new} ({}) FROM STDIN WITH (FORMAT text, DELIMITER E'\\t', NULL '\\N')",
        copy_cols.join(", ")
    );

    let mut transform = Vec::new();
    let filled: Vec<&&manifest::Column> = exported.iter().filter(|c| c.default.is_some()).collect();
    if !filled.is_empty() {
        let sets: Vec<String> = filled
            .iter()
            .map(|c| {
                format!(
                    "{0} = COALESCE({0}, {1})",
                    pg_ident(&c.name.text),
                    c.default.as_deref().unwrap_or("NULL")
                )
            })
            .collect();
        let conds: Vec<String> = filled
            .iter()
            .map(|c| format!("{} IS NULL", pg_ident(&c.name.text)))
            .collect();
        transform.push(format!(
            "UPDATE {new} SET {} WHERE {}",
            sets.join(", "),
            conds.join(" OR ")
        ));
    }
    // `stir check` renders the same statements through `sync_statements` and reports each
    // failure with a span; a failure here means a manifest with errors got this far.
    for (kind, _, rendered) in sync_statements(renderer, s, &new) {
        let (sql, _) = rendered.map_err(|e| {
            PlanBuildError::Incomplete(format!(
                "sync `{}` {}: {}",
                s.name.text,
                kind.keyword(),
                e.message
            ))
        })?;
        transform.push(sql);
    }

    // Indexes: built on the staging table under a per-run name, renamed to `<to>__<suffix>` by
    // the swap, so live names stay stable and never collide with another run's.
    let mut indexes: Vec<(String, bool, Vec<String>)> = Vec::new();
    if !s.key.is_empty() {
        indexes.push((
            "key".into(),
            true,
            s.key.iter().map(|k| k.text.clone()).collect(),
        ));
    }
    for ix in &s.indexes {
        let cols: Vec<String> = ix.columns.iter().map(|c| c.text.clone()).collect();
        let suffix = format!(
            "{}_{}",
            cols.join("_"),
            if ix.unique { "uidx" } else { "idx" }
        );
        if !indexes
            .iter()
            .any(|(n, u, c)| *n == suffix || (*u == ix.unique && *c == cols))
        {
            indexes.push((suffix, ix.unique, cols));
        }
    }
    let suffixes: Vec<String> = indexes.iter().map(|(n, _, _)| n.clone()).collect();
    let index_names = sync_names(&to, &suffixes).indexes;
    let mut finish = vec![format!("ALTER TABLE {new} SET LOGGED")];
    for ((_, unique, cols), n) in indexes.iter().zip(&index_names) {
        let cols: Vec<String> = cols.iter().map(|c| pg_ident(c)).collect();
        finish.push(format!(
            "CREATE {}INDEX {} ON {new} ({})",
            if *unique { "UNIQUE " } else { "" },
            pg_ident(&n.staging),
            cols.join(", ")
        ));
    }
    // VACUUM as well as ANALYZE, as today's DAGs do: it marks the fresh pages all-visible, so
    // readers get index-only scans and do not set hint bits (writes) on their first reads.
    // One statement on its own: VACUUM cannot run inside a transaction block.
    finish.push(format!("VACUUM (ANALYZE) {new}"));

    let mut swap = vec![
        format!("DROP TABLE IF EXISTS {old}"),
        format!(
            "ALTER TABLE IF EXISTS {live} RENAME TO {}",
            pg_ident(&old_name)
        ),
    ];
    for n in &index_names {
        swap.push(format!(
            "ALTER INDEX IF EXISTS {} RENAME TO {}",
            q(&n.live),
            pg_ident(&n.backup)
        ));
    }
    swap.push(format!("ALTER TABLE {new} RENAME TO {}", pg_ident(&to)));
    for n in &index_names {
        swap.push(format!(
            "ALTER INDEX {} RENAME TO {}",
            q(&n.staging),
            pg_ident(&n.live)
        ));
    }
    // The rollback exchanges the live table and the backup, so a rollback is itself undone
    // by another: live -> rb, backup -> live, rb -> backup, each with its indexes.
    let mut rollback = vec![format!(
        "ALTER TABLE IF EXISTS {live} RENAME TO {}",
        pg_ident(&rb_name)
    )];
    for n in &index_names {
        rollback.push(format!(
            "ALTER INDEX IF EXISTS {} RENAME TO {}",
            q(&n.live),
            pg_ident(&n.rollback)
        ));
    }
    rollback.push(format!("ALTER TABLE {old} RENAME TO {}", pg_ident(&to)));
    for n in &index_names {
        rollback.push(format!(
            "ALTER INDEX IF EXISTS {} RENAME TO {}",
            q(&n.backup),
            pg_ident(&n.live)
        ));
    }
    rollback.push(format!(
        "ALTER TABLE IF EXISTS {} RENAME TO {}",
        q(&rb_name),
        pg_ident(&old_name)
    ));
    for n in &index_names {
        rollback.push(format!(
            "ALTER INDEX IF EXISTS {} RENAME TO {}",
            q(&n.rollback),
            pg_ident(&n.backup)
        ));
    }
    let drop_old = if s.keep_backup {
        Vec::new()
    } else {
        vec![format!("DROP TABLE IF EXISTS {old}")]
    };

    let s3_prefix = if prefix.is_empty() {
        format!("{}/", s.name.text)
    } else {
        format!("{prefix}/{}/", s.name.text)
    };
    Ok(plan::Sync {
        name: s.name.text.clone(),
        from,
        clickhouse: plan::SyncExport {
            select,
            format: "TabSeparated".into(),
            columns,
        },
        postgres: plan::SyncLoad {
            schema: schema.to_string(),
            table: to.clone(),
            new_table: new_name,
            old_table: old_name,
            prepare,
            copy,
            transform,
            finish,
            live_exists: format!("SELECT to_regclass({}) IS NOT NULL", pg_literal(&live)),
            count_new: format!("SELECT count(*) FROM {new}"),
            count_live: format!("SELECT count(*) FROM {live}"),
            swap,
            drop_old,
            rollback,
            cleanup: vec![format!("DROP TABLE IF EXISTS {new}")],
        },
        s3_prefix,
        max_shrink_pct: s.max_shrink_pct,
        allow_empty: s.allow_empty,
        lock_timeout_ms: s.lock_timeout_secs * 1000,
        keep_backup: s.keep_backup,
        target: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert_eq!(ch_ident("mart_x"), "mart_x");
        assert_eq!(ch_ident("my-db"), "`my-db`");
        assert_eq!(ch_ident("a`b"), "`a\\`b`");
        assert_eq!(pg_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(trim_sql("\n select 1 ;\n;\n"), "select 1");
        let long = "x".repeat(70);
        assert_eq!(pg_fit(&long, "").len(), 63);
        assert_ne!(pg_fit(&long, ""), pg_fit(&format!("{long}y"), ""));
        // Names that fit are kept as they are: live index names of earlier plans still match.
        assert_eq!(pg_fit("vals__key", ""), "vals__key");
        assert_eq!(pg_fit("vals", "__stir_new_{run}"), "vals__stir_new_{run}");
        // 44 bytes + the tail bound to 8 hex chars is 63; one more byte is shortened.
        let t44 = "t".repeat(44);
        assert_eq!(
            pg_fit(&t44, "__stir_new_{run}"),
            format!("{t44}__stir_new_{{run}}")
        );
        let t45 = "t".repeat(45);
        let n = pg_fit(&t45, "__stir_new_{run}");
        assert_eq!(n.len() - "{run}".len() + 8, 63, "{n}");
        assert!(n.ends_with("__stir_new_{run}"), "{n}");
    }

    #[test]
    fn export_settings_are_sorted_and_unique() {
        let names: Vec<&str> = EXPORT_SETTINGS.iter().map(|(k, _)| *k).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
        // The runtime reads the line back as `name = value` pairs split at `, `.
        assert!(EXPORT_SETTINGS.iter().all(|(_, v)| !v.contains(',')));
    }

    #[test]
    fn numeric_columns_accept_what_fits() {
        assert_eq!(
            clickhouse_types("numeric(12,2)"),
            ["Int", "UInt", "Decimal(12,2)"]
        );
        assert_eq!(
            clickhouse_types("numeric(20)").last().unwrap(),
            "Decimal(20,0)"
        );
        assert_eq!(
            clickhouse_types("numeric"),
            ["Float", "Int", "UInt", "Decimal"]
        );
        assert!(!clickhouse_types("float8").contains(&"Int64".to_string()));
    }

    #[test]
    fn array_columns_become_postgres_arrays() {
        let e = export_expr("tags", "text[]");
        assert!(e.starts_with("concat('{', arrayStringConcat("), "{e}");
        assert!(e.ends_with(", tags), ','), '}')"), "{e}");
        assert_eq!(export_expr("tags", "jsonb"), "toJSONString(tags)");
        assert_eq!(export_expr("raw", "bytea"), "concat('\\\\x', hex(raw))");
        assert_eq!(
            export_expr("at", "timestamptz"),
            "concat(toString(toDateTime64(at, 6, 'UTC')), '+00')"
        );
    }
}

/// `month, platform` as written in the manifest is a tuple to ClickHouse only in parentheses;
/// wrap a key with a top-level comma (outside brackets and quotes) so both spellings work.
fn key_tuple(key: &str) -> String {
    let key = key.trim();
    let (mut depth, mut quote, mut top_comma) = (0i32, None, false);
    for c in key.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '(' | '[') => depth += 1,
            (None, ')' | ']') => depth -= 1,
            (None, ',') if depth == 0 => top_comma = true,
            _ => {}
        }
    }
    if top_comma {
        format!("({key})")
    } else {
        key.to_string()
    }
}

#[cfg(test)]
mod size_tests {
    use std::path::Path;

    #[test]
    fn a_models_sql_bytes_in_the_plan_count_every_copy_and_stay_below_its_json() {
        let files = [
            ("stir.kdl", "project p timezone=UTC\nwarehouse clickhouse database=dbt\n\
                models dir=\"models\" {\n    model t\n    model v materialized=view\n\
                model i materialized=incremental engine=\"ReplacingMergeTree\" order-by=\"id\"\n}\n\
                schedule daily cron=\"0 3 * * *\" timeout=\"1h\" {\n    run t v i\n}\n"),
            ("models/t.sql", "select 1 as id, 'a \"quoted\" \\\\ \t tab \u{1} control' as s\n;\n"),
            ("models/v.sql", "select id\nfrom {{ ref('t') }}"),
            ("models/i.sql", "{% if is_incremental() %}select id from {{ this }} where id > 0{% else %}select id from {{ ref('t') }}{% endif %}"),
        ];
        let read = |p: &Path| {
            files
                .iter()
                .find(|(n, _)| p.ends_with(n))
                .map(|(_, t)| t.as_bytes().to_vec())
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
        };
        let c =
            crate::compile::compile_bytes("stir.kdl", files[0].1.as_bytes(), Path::new(""), &read);
        assert!(c.findings.is_empty(), "{:?}", c.findings);
        let plan = super::build(&c).expect("a plan");
        for (i, m) in c.manifest.models.iter().enumerate() {
            let compiled = &c.models[i];
            let sql = compiled.sql.as_deref().expect("rendered");
            let mut bound = super::sql_bytes_in_plan(m.materialized, false, sql);
            let model = plan
                .models
                .iter()
                .find(|p| p.name == m.name.text)
                .expect("planned");
            let json = serde_json::to_string(model).expect("serializes");
            let escaped = |s: &str| serde_json::to_string(super::trim_sql(s)).expect("a string");
            // Every copy the bound counts is in the model's JSON (escaped as the plan escapes it).
            let inner = |s: &str| escaped(s)[1..escaped(s).len() - 1].to_string();
            let copies = |s: &str| json.matches(&inner(s)).count() as u64;
            assert_eq!(
                bound,
                copies(sql) * inner(sql).len() as u64,
                "{}",
                m.name.text
            );
            if let Some(inc) = compiled.sql_incremental.as_deref() {
                let b = super::sql_bytes_in_plan(m.materialized, true, inc);
                assert_eq!(b, copies(inc) * inner(inc).len() as u64, "{}", m.name.text);
                assert_eq!(copies(inc), 2);
                bound += b;
            }
            assert!(
                bound < json.len() as u64,
                "{}: {bound} of {}",
                m.name.text,
                json.len()
            );
        }
    }
}

#[cfg(test)]
mod key_tests {
    use super::key_tuple;

    #[test]
    fn keys_with_top_level_commas_become_tuples() {
        assert_eq!(
            key_tuple("month, platform, platform_id"),
            "(month, platform, platform_id)"
        );
        assert_eq!(key_tuple("(profile_id, date)"), "(profile_id, date)");
        assert_eq!(
            key_tuple("date, ifNull(platform_id, 'MISSING')"),
            "(date, ifNull(platform_id, 'MISSING'))"
        );
        assert_eq!(key_tuple("ifNull(a, ',')"), "ifNull(a, ',')");
        assert_eq!(key_tuple("id"), "id");
    }
}
