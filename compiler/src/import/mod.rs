//! `stir import --dbt PATH -o OUT`: a dbt project becomes `OUT/stir.kdl`, its model files
//! (config headers removed, SQL otherwise untouched), its macros, and `OUT/IMPORT.md`, which
//! lists everything not translated with file:line and what to write instead.
//!
//! Files are only read: no model, macro or Python runs. A `config()` header is evaluated as a
//! Jinja expression that sees `config` and `var` and nothing else.

mod airflow;
pub mod config;
mod dbt;
mod python;
mod yaml;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use config::At;

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The dbt project: the folder that holds dbt_project.yml.
    #[arg(long, value_name = "PATH")]
    pub dbt: PathBuf,
    /// Where to write stir.kdl, the models, the macros and IMPORT.md: a folder that does not
    /// exist yet or is empty (nothing is ever overwritten).
    #[arg(long, short, value_name = "OUT_DIR", default_value = ".")]
    pub output: PathBuf,
    /// The ClickHouse database the models are built in (the dbt target's `schema`).
    #[arg(long, default_value = "dbt")]
    pub database: String,
    /// Airflow's DAG folder: each DAG becomes a `schedule` (read, never run).
    #[arg(long, value_name = "DAGS_DIR")]
    pub airflow: Option<PathBuf>,
}

/// One thing not translated: where in the dbt project, what, and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Note {
    pub at: At,
    pub what: String,
    pub instead: String,
}

impl Note {
    pub fn new(at: At, what: impl Into<String>, instead: impl Into<String>) -> Note {
        Note {
            at,
            what: what.into(),
            instead: instead.into(),
        }
    }
}

/// What an import writes: files relative to the output folder, and the notes (also in
/// IMPORT.md, which is one of the files).
#[derive(Debug)]
pub struct Imported {
    pub files: Vec<(String, String)>,
    pub notes: Vec<Note>,
    pub models: usize,
}

/// The tag given to models dbt has disabled (`enabled: false`): kept, never built.
const DISABLED_TAG: &str = "dbt_disabled";

/// Translate the dbt project at `root` (and the Airflow DAG folder, with how IMPORT.md names
/// it). `shown` is how IMPORT.md names the project.
pub fn import_dbt(
    root: &Path,
    shown: &str,
    database: &str,
    airflow: Option<(&Path, &str)>,
) -> Result<Imported, String> {
    let mut p = dbt::read_project(root)?;
    let mut notes = std::mem::take(&mut p.notes);
    let dags = match airflow {
        Some((dir, shown)) => Some(airflow::read_dags(dir, shown)?),
        None => None,
    };
    scan_unsupported(&p, &dbt::package_names(root), &mut notes);
    let mut kdl = String::new();
    let _ = writeln!(
        kdl,
        "// Imported from the dbt project `{}` by `stir import`: IMPORT.md lists what was not\n// translated.\n",
        p.name
    );
    let _ = writeln!(kdl, "project {} timezone=UTC", kdl_str(&p.name));
    let _ = writeln!(kdl, "warehouse clickhouse database={}", kdl_str(database));
    if dags.as_ref().is_some_and(|d| d.slack) {
        let _ = writeln!(
            kdl,
            "notify slack on=failure   // the DAGs' Slack failure callbacks"
        );
    }
    for s in &p.sources {
        if !is_sql_ident(&s.name) || !is_sql_ident(&s.schema) {
            notes.push(Note::new(
                s.at.clone(),
                format!(
                    "source `{}` (schema `{}`) is not a plain SQL name",
                    s.name, s.schema
                ),
                "stir names sources with letters, digits and `_`: rename it",
            ));
            continue;
        }
        let db = if s.schema == s.name {
            String::new()
        } else {
            format!(" database={}", kdl_str(&s.schema))
        };
        let _ = writeln!(kdl, "\nsource {}{db} {{", s.name);
        for t in &s.tables {
            let _ = writeln!(kdl, "    table {}", kdl_str(t));
        }
        let _ = writeln!(kdl, "}}");
    }
    // Tags, in order of first use.
    let mut tags: Vec<String> = Vec::new();
    let mut disabled_used = false;
    for m in &p.models {
        for (t, at) in &m.config.tags {
            if !is_name(t) {
                notes.push(Note::new(
                    at.clone(),
                    format!("tag `{t}` of model `{}` is not a stir name", m.name),
                    "tags use letters, digits, `_` and `-`: rename it",
                ));
            } else if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
        disabled_used |= m
            .config
            .get("enabled")
            .is_some_and(|(v, _)| *v == Value::Bool(false));
    }
    // Tags the DAGs select or exclude that no model carries: declared, so the schedules
    // read as they do in Airflow (where such a selector is simply empty).
    let mut dag_only = Vec::new();
    for d in dags.iter().flat_map(|d| &d.dags) {
        for s in &d.steps {
            if let airflow::Step::Run { select, exclude } = s {
                for t in select
                    .iter()
                    .chain(exclude)
                    .filter_map(|x| x.strip_prefix("tag:"))
                {
                    if !tags.iter().any(|x| x == t) && !dag_only.iter().any(|x| x == t) {
                        dag_only.push(t.to_string());
                    }
                }
            }
        }
    }
    if !tags.is_empty() || disabled_used || !dag_only.is_empty() {
        kdl.push('\n');
    }
    for t in &dag_only {
        let _ = writeln!(
            kdl,
            "tag {}   // named by the DAGs; no model carries it",
            kdl_str(t)
        );
    }
    for t in &tags {
        let _ = writeln!(kdl, "tag {}", kdl_str(t));
    }
    if disabled_used {
        let _ = writeln!(
            kdl,
            "tag {DISABLED_TAG} disabled=#true   // dbt's `enabled: false`: kept, never built"
        );
    }
    let mut wrote_var = false;
    for (name, value, at) in &p.vars {
        let Some(v) = kdl_scalar(value) else {
            notes.push(Note::new(
                at.clone(),
                format!("var `{name}` is a list or a mapping"),
                "stir vars are strings, numbers or booleans: split it, or write the values into the SQL",
            ));
            continue;
        };
        if !is_sql_ident(name) {
            notes.push(Note::new(
                at.clone(),
                format!("var `{name}` is not a plain name"),
                "name vars with letters, digits and `_`",
            ));
            continue;
        }
        if !wrote_var {
            kdl.push('\n');
            wrote_var = true;
        }
        let _ = writeln!(kdl, "var {name} {v}");
    }
    let mut files: Vec<(String, String)> = Vec::new();
    if !p.macro_dirs.is_empty() {
        kdl.push('\n');
    }
    for d in &p.macro_dirs {
        let _ = writeln!(kdl, "macros dir={}", kdl_str(d));
    }
    files.extend(p.macro_files.iter().cloned());
    // Models, one group per folder (a folder's own files before its sub-folders').
    let dir_of = |f: &str| f.rsplit_once('/').map_or("", |(d, _)| d).to_string();
    p.models
        .sort_by(|a, b| (dir_of(&a.file), &a.file).cmp(&(dir_of(&b.file), &b.file)));
    let mut models = 0;
    let mut group: Option<String> = None;
    for m in &p.models {
        if !is_sql_ident(&m.name) {
            notes.push(Note::new(
                At {
                    file: m.file.clone(),
                    line: 1,
                },
                format!("model `{}` is not a plain SQL name", m.name),
                "rename the file: stir model names are letters, digits and `_`, at most 63 bytes",
            ));
            continue;
        }
        let dir = dir_of(&m.file);
        if group.as_deref() != Some(dir.as_str()) {
            if group.is_some() {
                let _ = writeln!(kdl, "}}");
            }
            let _ = writeln!(kdl, "\nmodels dir={} {{", kdl_str(&dir));
            group = Some(dir);
        }
        let (line, settings) = model_line(m, &mut notes);
        let _ = write!(kdl, "    {line}");
        if settings.is_empty() {
            kdl.push('\n');
        } else {
            let _ = writeln!(kdl, " {{\n        settings {settings}\n    }}");
        }
        files.push((m.file.clone(), m.sql.clone()));
        models += 1;
    }
    if group.is_some() {
        let _ = writeln!(kdl, "}}");
    }
    let schedules = dags.as_ref().map_or(0, |d| d.dags.len());
    if let Some(d) = dags {
        notes.extend(d.notes);
        schedules_kdl(&d.dags, &mut kdl, &mut notes);
    }
    notes.sort();
    notes.dedup();
    files.push((
        "IMPORT.md".into(),
        import_md(
            &p,
            shown,
            Counts {
                database,
                models,
                schedules,
            },
            &notes,
        ),
    ));
    files.push(("stir.kdl".into(), kdl));
    Ok(Imported {
        files,
        notes,
        models,
    })
}

/// A model's node and its `settings` (empty when none), noting what stir cannot express.
fn model_line(m: &dbt::Model, notes: &mut Vec<Note>) -> (String, String) {
    let c = &m.config;
    let mut line = format!("model {}", m.name);
    let note = |notes: &mut Vec<Note>, at: &At, what: String, instead: &str| {
        notes.push(Note::new(at.clone(), what, instead));
    };
    // dbt's default materialization is a view.
    let materialized = match c.get("materialized") {
        None => "view",
        Some((Value::String(s), at)) => match s.as_str() {
            "table" | "view" | "incremental" => s.as_str(),
            "ephemeral" => {
                note(notes, at, format!("model `{}` is ephemeral", m.name),
                    "stir has no ephemeral models: it is imported as a view; inline it as a CTE where dbt would");
                "view"
            }
            other => {
                note(notes, at, format!("materialization `{other}` of model `{}`", m.name),
                    "stir builds tables, views and incremental tables: it is imported as a table; rewrite it as one of those");
                "table"
            }
        },
        Some((_, at)) => {
            note(
                notes,
                at,
                format!("`materialized` of model `{}` is not a string", m.name),
                "write `materialized` as `table`, `view` or `incremental`",
            );
            "view"
        }
    };
    let _ = write!(line, " materialized={materialized}");
    let mut tags: Vec<&str> = c
        .tags
        .iter()
        .map(|(t, _)| t.as_str())
        .filter(|t| is_name(t))
        .collect();
    if c.get("enabled")
        .is_some_and(|(v, _)| *v == Value::Bool(false))
    {
        tags.push(DISABLED_TAG);
    }
    if !tags.is_empty() {
        let _ = write!(line, " tags={}", kdl_str(&tags.join(" ")));
    }
    for (key, prop) in [
        ("engine", "engine"),
        ("order_by", "order-by"),
        ("partition_by", "partition-by"),
    ] {
        match c.get(key) {
            None => {}
            Some((Value::String(s), _)) => {
                let _ = write!(line, " {prop}={}", kdl_str(s));
            }
            Some((Value::Array(a), at)) => {
                let parts: Option<Vec<&str>> = a.iter().map(Value::as_str).collect();
                match parts {
                    Some(parts) => {
                        let _ = write!(
                            line,
                            " {prop}={}",
                            kdl_str(&format!("({})", parts.join(", ")))
                        );
                    }
                    None => note(
                        notes,
                        at,
                        format!("`{key}` of model `{}` is not a list of strings", m.name),
                        "write it as one SQL expression on the model node",
                    ),
                }
            }
            Some((_, at)) => note(
                notes,
                at,
                format!("`{key}` of model `{}` is not a string", m.name),
                "write it as one SQL expression on the model node",
            ),
        }
    }
    // dbt-clickhouse's `query_settings` are the settings of the build's INSERT, as stir's
    // `settings` are; its `settings` are the table's (CREATE TABLE ... SETTINGS), which stir
    // has no place for (listed below).
    let mut settings = Vec::new();
    if let Some((v, at)) = c.get("query_settings") {
        match v {
            Value::Object(o) => {
                for (k, v) in o {
                    match kdl_scalar(v) {
                        Some(v) if is_sql_ident(k) => settings.push(format!("{k}={v}")),
                        _ => note(
                            notes,
                            at,
                            format!("setting `{k}` of model `{}`", m.name),
                            "write the setting on the model's `settings` node as key=value",
                        ),
                    }
                }
            }
            _ => note(
                notes,
                at,
                format!("`query_settings` of model `{}` is not a mapping", m.name),
                "write `settings key=value` inside the model node",
            ),
        }
    }
    if materialized == "incremental" {
        let strategy = c.get("incremental_strategy").and_then(|(v, _)| v.as_str());
        if let Some((key, at)) = c.get("unique_key") {
            if strategy != Some("append") {
                let key = key.as_str().map_or_else(|| key.to_string(), str::to_string);
                note(notes, at, format!("incremental model `{}` replaces rows by `unique_key` `{key}` ({} strategy)", m.name, strategy.unwrap_or("default")),
                    "stir's incremental models append (INSERT): to keep one row per key, use engine=\"ReplacingMergeTree()\" with order-by the key, or materialize it as a table");
            }
        } else if let Some((_, at)) = c
            .get("incremental_strategy")
            .filter(|_| !matches!(strategy, Some("append") | Some("default")))
        {
            note(
                notes,
                at,
                format!(
                    "incremental strategy `{}` of model `{}`",
                    strategy.unwrap_or("?"),
                    m.name
                ),
                "stir's incremental models append (INSERT); write the model so that appending is right",
            );
        }
    }
    for (key, (_, at)) in &c.values {
        if dbt::KNOWN.contains(&key.as_str()) || is_docs_only(key) {
            continue;
        }
        let instead = match key.as_str() {
            "schema" | "database" | "alias" => "stir builds every model as `<warehouse database>.<model name>`: rename the file, or move the model to another stir project",
            "pre_hook" | "post_hook" | "pre-hook" | "post-hook" => "write the statement as a `sql` step before or after the model's `run` step in its schedule",
            "on_schema_change" | "full_refresh" => "stir rebuilds tables in full every run; for an incremental model, drop its table to rebuild it",
            "grants" => "grant access in ClickHouse itself; stir swaps tables with EXCHANGE, which keeps grants on the name",
            "settings" => "stir has no table settings (dbt-clickhouse's `settings` go into CREATE TABLE ... SETTINGS, and stir makes a new table every build): drop them, or keep the model in dbt until stir has them; query settings go in `query_settings`, which stir writes as the model's `settings`",
            "primary_key" => "stir's table key is `order-by` (ClickHouse takes the primary key from it): drop `primary_key` or make it the `order-by`",
            "ttl" => "stir has no table TTL: delete old rows in the model's SQL, or keep the model in dbt",
            _ => "stir has no such setting: drop it, or express it in the SQL or the engine",
        };
        // A folder's config is one line of dbt_project.yml: one note for all its models.
        let whose = if at.file == dbt::PROJECT_FILE {
            "the models of this folder".to_string()
        } else {
            format!("model `{}`", m.name)
        };
        note(
            notes,
            at,
            format!("config `{key}` of {whose} is not translated"),
            instead,
        );
    }
    (line, settings.join(" "))
}

fn is_docs_only(key: &str) -> bool {
    matches!(
        key,
        "description"
            | "docs"
            | "meta"
            | "persist_docs"
            | "columns"
            | "contract"
            | "access"
            | "group"
            | "labels"
    )
}

/// dbt and Jinja features stir's templates do not have, by the name they are called with.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "env_var",
        "stir plans are frozen and read no environment: declare a `var` in stir.kdl",
    ),
    (
        "target",
        "stir has one target: write the value, or declare a `var`",
    ),
    (
        "adapter",
        "stir renders without a database connection: compute the value in SQL, or declare a `var`",
    ),
    (
        "run_query",
        "stir renders without a database connection: compute the value in SQL, or declare a `var`",
    ),
    (
        "statement",
        "stir renders without a database connection: compute the value in SQL",
    ),
    (
        "load_result",
        "stir renders without a database connection: compute the value in SQL",
    ),
    (
        "execute",
        "stir renders once, with no parse phase: drop the `execute` test",
    ),
    ("log", "stir's templates do not log: remove it"),
    (
        "exceptions",
        "stir's templates cannot raise: let the SQL fail, or check in `stir check`",
    ),
    (
        "return",
        "a stir macro's output is its text: write the value as the macro's body",
    ),
    (
        "modules",
        "stir's templates see no Python modules: compute the value in SQL",
    ),
    ("graph", "stir's templates cannot see the project graph"),
    (
        "invocation_id",
        "stir's plans are frozen: use a ClickHouse function such as now()",
    ),
    (
        "run_started_at",
        "stir's plans are frozen: use a ClickHouse function such as now()",
    ),
];

/// Calls in model and macro files that stir's templates do not have.
fn scan_unsupported(p: &dbt::Project, packages: &[String], notes: &mut Vec<Note>) {
    let files = p
        .models
        .iter()
        .map(|m| (&m.file, &m.original))
        .chain(p.macro_files.iter().map(|(f, t)| (f, t)));
    for (file, text) in files {
        // `ref('package', 'model')`: stir's ref names a model of this project only.
        for (args, span) in crate::render::call_spans(text, "ref") {
            if args.len() >= 2 {
                notes.push(Note::new(
                    At {
                        file: file.clone(),
                        line: text[..span.start].matches('\n').count() + 1,
                    },
                    format!(
                        "`ref('{}', '{}')` names a model of another project",
                        args[0], args[1]
                    ),
                    "copy the model into this project and write `ref('MODEL')`",
                ));
            }
        }
        for (range, line) in jinja_blocks(text) {
            let block = &text[range];
            for word in words(block) {
                let (w, next) = word;
                if let Some((_, instead)) = UNSUPPORTED.iter().find(|(u, _)| *u == w) {
                    if matches!(next, Some('(') | Some('.')) || w == "execute" || w == "target" {
                        notes.push(Note::new(
                            At {
                                file: file.clone(),
                                line,
                            },
                            format!("`{w}` is not in stir's templates"),
                            *instead,
                        ));
                    }
                } else if next == Some('.') && packages.iter().any(|p| p == w) {
                    notes.push(Note::new(
                        At {
                            file: file.clone(),
                            line,
                        },
                        format!("call into package `{w}`, which is not imported"),
                        "copy the macro into `macros/` and call it without the package name, or inline its SQL",
                    ));
                }
            }
        }
    }
}

/// `{{ }}` and `{% %}` blocks of a template (comments skipped), each with the line it starts on.
fn jinja_blocks(text: &str) -> Vec<(std::ops::Range<usize>, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(pos) = text[i..].find('{') {
        let start = i + pos;
        let close = match text.as_bytes().get(start + 1) {
            Some(b'{') => "}}",
            Some(b'%') => "%}",
            Some(b'#') => "#}",
            _ => {
                i = start + 1;
                continue;
            }
        };
        let end = text[start + 2..]
            .find(close)
            .map_or(text.len(), |e| start + 2 + e);
        if close != "#}" {
            out.push((start + 2..end, text[..start].matches('\n').count() + 1));
        }
        i = (end + 2).min(text.len());
        if i <= start {
            break;
        }
    }
    out
}

/// Identifiers outside string literals, each with the character after it.
fn words(block: &str) -> Vec<(&str, Option<char>)> {
    let b = block.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\'' || c == b'"' {
            i += 1;
            while i < b.len() && b[i] != c {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let after = block[i..].trim_start().chars().next();
            // An attribute (`x.log`) is not a call of `log`.
            if s == 0 || b[s - 1] != b'.' {
                out.push((&block[s..i], after));
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The DAGs as blackouts and schedules.
fn schedules_kdl(dags: &[airflow::Dag], kdl: &mut String, notes: &mut Vec<Note>) {
    let mut windows: Vec<(u32, u32)> = dags.iter().filter_map(|d| d.skip).collect();
    windows.sort_unstable();
    windows.dedup();
    let window_name = |(a, b): (u32, u32)| format!("hours-{a:02}-{b:02}");
    if !windows.is_empty() {
        kdl.push('\n');
    }
    for w in &windows {
        let _ = writeln!(
            kdl,
            "blackout {} from=\"{:02}:00\" to=\"{:02}:00\"   // the DAGs' ShortCircuit on the hour",
            window_name(*w),
            w.0,
            w.1 % 24
        );
    }
    for d in dags {
        if !is_name(&d.id) {
            notes.push(Note::new(
                d.at.clone(),
                format!("DAG `{}` is not a stir name", d.id),
                "name schedules with letters, digits, `_` and `-`",
            ));
            continue;
        }
        let mut line = format!(
            "\nschedule {} cron={} timeout={}",
            d.id,
            kdl_str(&d.cron),
            kdl_str(&duration(d.timeout_minutes))
        );
        if let Some(r) = d.retries.filter(|r| *r > 0) {
            let _ = write!(line, " retries={}", r.min(100));
        }
        if let Some(w) = d.skip {
            let _ = write!(line, " skip={}", window_name(w));
        }
        let _ = writeln!(kdl, "{line} {{");
        for s in &d.steps {
            match s {
                airflow::Step::Run { select, exclude } => {
                    let _ = write!(kdl, "    run {}", kdl_str(&select.join(" ")));
                    if !exclude.is_empty() {
                        let _ = write!(kdl, " exclude={}", kdl_str(&exclude.join(" ")));
                    }
                    kdl.push('\n');
                }
                airflow::Step::Sql(sql) => {
                    let _ = writeln!(kdl, "    sql {}", kdl_str(sql));
                }
            }
        }
        let _ = writeln!(kdl, "}}");
        if d.timeout_minutes >= airflow::HEAVY_CANDIDATE_MINUTES {
            notes.push(Note::new(
                d.at.clone(),
                format!(
                    "schedule `{}` may run {} (`heavy` candidate)",
                    d.id,
                    duration(d.timeout_minutes)
                ),
                "if it competes for the warehouse with other long schedules, mark it `heavy=#true`: stir check then proves no two heavy schedules can run at once",
            ));
        }
    }
}

/// Minutes as a stir duration (`90m`, `6h`, `1h30m`).
fn duration(m: u64) -> String {
    match (m / 60, m % 60) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h{m}m"),
    }
}

/// How many of each thing an import wrote, for IMPORT.md's head.
struct Counts<'a> {
    database: &'a str,
    models: usize,
    schedules: usize,
}

fn import_md(p: &dbt::Project, shown: &str, n: Counts, notes: &[Note]) -> String {
    let Counts {
        database,
        models,
        schedules,
    } = n;
    let mut md = String::new();
    let _ = writeln!(md, "# What `stir import` did not translate\n");
    let _ = writeln!(
        md,
        "From the dbt project `{}` (`{shown}`): {models} models, {} macro files, {} sources, {} vars.",
        p.name,
        p.macro_files.len(),
        p.sources.len(),
        p.vars.len()
    );
    let _ = writeln!(
        md,
        "The models are built in the ClickHouse database `{database}` (`stir import --database`,\nthe dbt target's `schema`; stir does not read profiles.yml).\n"
    );
    let _ = writeln!(
        md,
        "The model files were copied with their `config()` headers removed and the SQL otherwise as\nit was; their configuration is on their `model` nodes in stir.kdl (dbt's precedence: the\nheader over properties YAML over dbt_project.yml folders; tags add up).\n"
    );
    if schedules == 0 {
        let _ = writeln!(
            md,
            "dbt has no schedules: every model is `stir::unscheduled` until a `schedule` runs it.\n"
        );
    } else {
        let _ = writeln!(
            md,
            "{} from the Airflow DAGs (read as text; no Python was run).\n",
            crate::diagnostic::plural(schedules, "schedule")
        );
    }
    if notes.is_empty() {
        let _ = writeln!(md, "Everything else was translated.");
        return md;
    }
    let _ = writeln!(
        md,
        "Each line: where (in the dbt project or the DAG files), what was not translated, and what\nto write instead.\n"
    );
    let _ = writeln!(md, "| where | not translated | write instead |");
    let _ = writeln!(md, "|---|---|---|");
    for n in notes {
        let _ = writeln!(
            md,
            "| `{}` | {} | {} |",
            n.at,
            n.what.replace('|', "\\|"),
            n.instead.replace('|', "\\|")
        );
    }
    md
}

fn kdl_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON scalar as a KDL value; `None` for lists and mappings.
fn kdl_scalar(v: &Value) -> Option<String> {
    Some(match v {
        Value::String(s) => kdl_str(s),
        Value::Bool(true) => "#true".into(),
        Value::Bool(false) => "#false".into(),
        Value::Null => "#null".into(),
        // KDL floats need digits on both sides of the point, which serde_json writes.
        Value::Number(n) => n.to_string(),
        Value::Array(_) | Value::Object(_) => return None,
    })
}

fn is_sql_ident(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `stir import`: translate, refuse to overwrite anything, write, then check what was written.
pub fn command(args: &ImportArgs) -> Result<(), String> {
    let shown = args.dbt.display().to_string();
    if !is_sql_ident(&args.database) {
        return Err(format!(
            "--database `{}` is not a ClickHouse database name (letters, digits, `_`)",
            args.database
        ));
    }
    let airflow_shown = args.airflow.as_ref().map(|a| a.display().to_string());
    let airflow = args.airflow.as_deref().zip(airflow_shown.as_deref());
    let imported = import_dbt(&args.dbt, &shown, &args.database, airflow)
        .map_err(|e| format!("cannot import `{shown}`: {e}"))?;
    let out = &args.output;
    match std::fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(format!(
                    "`{}` is not empty: stir import writes only into a new or empty folder, so it never overwrites a file (pass `-o NEW_DIR`)",
                    out.display()
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot use `{}`: {e}", out.display())),
    }
    for (rel, text) in &imported.files {
        let path = out.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create `{}`: {e}", parent.display()))?;
        }
        std::fs::write(&path, text)
            .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
    }
    let manifest = out.join("stir.kdl");
    let compiled = crate::compile::compile_path_keeping(&manifest, crate::compile::Keep::Findings)
        .map_err(|e| e.to_string())?;
    eprintln!(
        "wrote {} ({} models) and {}: {} not translated; `stir check {}`: {}",
        manifest.display(),
        imported.models,
        out.join("IMPORT.md").display(),
        crate::diagnostic::plural(imported.notes.len(), "item"),
        manifest.display(),
        crate::diagnostic::summary(&compiled.findings)
    );
    Ok(())
}
