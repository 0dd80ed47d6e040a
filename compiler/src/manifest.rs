//! Stage 1: `stir.kdl` (KDL 2.0) into typed declarations with spans.
//!
//! Parsing never stops at the first problem: every node is read, every bad value is reported,
//! and what could be read is returned for the later stages.

use std::collections::BTreeMap;
use std::ops::Range;

use kdl::{KdlDocument, KdlEntry, KdlNode, KdlValue};
use miette::SourceSpan;

use crate::diagnostic::{did_you_mean, FileId, Finding};
pub use stir_plan::pgtype::{normalize_pg_type, PG_TYPE_NAMES};
pub use stir_plan::{Materialized, NotifyOn, StagingCompression};

pub type Span = Range<usize>;

/// A name as written, with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    pub text: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

#[derive(Debug, Clone, Default)]
pub struct Manifest {
    pub file: Option<FileId>,
    pub project: Option<Project>,
    pub warehouse: Warehouse,
    /// The unnamed `serving postgres` (URL `STIR_POSTGRES_URL`): the default target.
    pub serving: Option<Serving>,
    /// Named ones, `serving postgres NAME` (URL `STIR_POSTGRES_URL_<NAME>`), in manifest order.
    pub targets: Vec<ServingTarget>,
    pub staging: Option<Staging>,
    pub notify: Option<Notify>,
    pub endpoints: Vec<Name>,
    pub sources: Vec<Source>,
    pub tags: Vec<Tag>,
    pub vars: Vec<Var>,
    pub blackouts: Vec<Blackout>,
    pub models: Vec<Model>,
    pub schedules: Vec<Schedule>,
    pub syncs: Vec<Sync>,
    pub requests: Vec<Request>,
    /// `macros dir=...` nodes: folders whose `.sql` files define macros for every template.
    pub macros: Vec<Spanned<String>>,
}

#[derive(Debug, Clone)]
pub struct Project {
    pub name: Name,
    pub timezone: Spanned<String>,
}

#[derive(Debug, Clone)]
pub struct Warehouse {
    pub database: String,
    pub cluster: Option<String>,
    /// Models of a run built at once (dbt's `threads`).
    pub threads: u32,
}

impl Default for Warehouse {
    fn default() -> Self {
        Warehouse {
            database: "dbt".into(),
            cluster: None,
            threads: crate::plan::DEFAULT_THREADS,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Serving {
    pub schema: String,
}

/// `serving postgres NAME schema=...`: a PostgreSQL database syncs may write.
#[derive(Debug, Clone)]
pub struct ServingTarget {
    pub name: Name,
    pub schema: String,
}

#[derive(Debug, Clone)]
pub struct Staging {
    pub bucket: String,
    pub prefix: String,
    pub compression: StagingCompression,
    /// Staged files kept per sync after a successful run, the newest; `None`: all of them.
    pub keep: Option<u32>,
}

/// Staged files kept per sync when the manifest does not say: the one just loaded and two
/// before it, to read or reload by hand after a bad day.
pub const DEFAULT_STAGING_KEEP: u32 = 3;

/// `notify slack ...`, at the top (every schedule's) or in a schedule (its own); what a
/// schedule's does not say comes from the top one.
#[derive(Debug, Clone, Default)]
pub struct Notify {
    pub on: Option<NotifyOn>,
    /// `webhook=NAME`: the URL is `STIR_SLACK_WEBHOOK_<NAME>`; none: `STIR_SLACK_WEBHOOK`.
    pub webhook: Option<Name>,
    /// `link="https://…/runs/{run_id}"`: a link in every alert, to the run.
    pub link: Option<String>,
    /// `repeat`: a schedule that keeps failing is alerted again at most this often.
    pub repeat_secs: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Source {
    /// The name templates use (`source('NAME', 'table')`); the ClickHouse database too,
    /// unless `database=` names another (dbt's source `name` with its `schema`).
    pub database: Name,
    pub tables: Vec<Name>,
    /// `database=`: the ClickHouse database the source's tables are in.
    pub in_database: Option<Name>,
}

#[derive(Debug, Clone)]
pub struct Tag {
    pub name: Name,
    pub disabled: bool,
}

#[derive(Debug, Clone)]
pub struct Var {
    pub name: Name,
    pub value: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct Blackout {
    pub name: Name,
    /// Minutes of day; `to < from` wraps past midnight.
    pub from: u16,
    pub to: u16,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SettingValue {
    Str(String),
    Int(i128),
    Float(f64),
    Bool(bool),
}

#[derive(Debug, Clone)]
pub struct Model {
    pub name: Name,
    /// The SQL file, relative to the manifest's folder, `/`-separated.
    pub file: String,
    /// Span of whatever set the file (the `file=` value, or the model's name).
    pub file_span: Span,
    pub materialized: Materialized,
    pub tags: Vec<Name>,
    pub engine: String,
    pub order_by: Option<String>,
    pub partition_by: Option<String>,
    pub freshness_secs: Option<u64>,
    pub settings: Vec<(String, SettingValue)>,
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: Name,
    pub cron: Option<Spanned<String>>,
    pub timeout_secs: Option<u64>,
    pub heavy: bool,
    pub skip: Vec<Name>,
    pub retries: u32,
    /// `retry="all"`: a retry runs every step again (default `"failed"`: the failed and
    /// skipped steps only).
    pub retry_all: bool,
    pub on_missed: crate::plan::OnMissed,
    /// At most this many of the schedule's models at once (below the warehouse's `threads`).
    pub threads: Option<u32>,
    pub enabled: bool,
    /// Its own `notify slack` child, if any.
    pub notify: Option<Notify>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub kind: StepKind,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum StepKind {
    Run {
        select: Vec<Name>,
        exclude: Vec<Name>,
    },
    Sql(String),
    Sync(Name),
    Request(Name),
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: Name,
    pub ty: String,
    pub default: Option<String>,
    /// ClickHouse expression exported for this column; the column's name when absent.
    pub expr: Option<String>,
    /// False for columns filled only in PostgreSQL (by default or enrich).
    pub export: bool,
}

#[derive(Debug, Clone)]
pub struct Index {
    pub columns: Vec<Name>,
    pub unique: bool,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Sync {
    pub name: Name,
    pub from: Option<Name>,
    pub to: Option<Name>,
    /// `target=NAME`: the named `serving postgres` it writes; `None`: the default target.
    pub target: Option<Name>,
    pub keep_backup: bool,
    pub key: Vec<Name>,
    pub columns: Vec<Column>,
    pub enrich: Vec<Spanned<String>>,
    pub delete_where: Vec<Spanned<String>>,
    pub indexes: Vec<Index>,
    /// Largest allowed loss of rows against the live table, in percent; `None`: `max-shrink
    /// none`, any loss but to empty (see `allow_empty`).
    pub max_shrink_pct: Option<f64>,
    /// An empty result may replace a live table that has rows.
    pub allow_empty: bool,
    /// How long the swap waits for its lock on the live table, in seconds.
    pub lock_timeout_secs: u64,
}

/// `max-shrink` when a sync does not say: a lost half is a broken upstream more often than news.
pub const DEFAULT_MAX_SHRINK_PCT: f64 = 50.0;
/// `lock-timeout` when a sync does not say: readers of the live table queue behind a swap that
/// waits for its lock, so it waits briefly and retries rather than stall the app.
pub const DEFAULT_LOCK_TIMEOUT_SECS: u64 = 5;
/// The longest `lock-timeout`: every reader of the table may queue this long behind the swap.
pub const MAX_LOCK_TIMEOUT_SECS: u64 = 3600;

#[derive(Debug, Clone)]
pub struct Request {
    pub name: Name,
    pub limit: Option<u64>,
    pub query: Option<Spanned<String>>,
    pub endpoint: Option<Name>,
    pub path: Option<String>,
    pub body: Option<Spanned<String>>,
    pub concurrency: u32,
    /// `rate`: at most this many POSTs (tries included) per second; `None`: no pacing.
    pub rate: Option<f64>,
    pub max_failures_pct: f64,
}

/// KDL text as one document. A big manifest is cut before top-level nodes into one piece
/// per core, parsed at once (plain KDL by `kdl_reader`, the rest by the kdl crate, the
/// slowest stage of `stir check` when it runs). The pieces are the whole parse's nodes whenever they all parse (see
/// [`node_start_after`]); when any piece fails, the whole text is parsed again, so a broken
/// manifest gets exactly the errors its whole document gives.
fn parse_document(text: &str) -> Result<KdlDocument, kdl::KdlError> {
    const PIECE_BYTES: usize = 16 * 1024;
    let pieces = text.len() / PIECE_BYTES;
    parse_in_pieces(
        text,
        if pieces < 2 {
            1
        } else {
            crate::parallel::cores().min(pieces)
        },
    )
}

fn parse_in_pieces(text: &str, pieces: usize) -> Result<KdlDocument, kdl::KdlError> {
    let mut cuts = vec![0];
    for k in 1..pieces {
        let from = (text.len() * k / pieces).max(cuts[cuts.len() - 1]);
        if let Some(at) = node_start_after(text, from) {
            if at > cuts[cuts.len() - 1] {
                cuts.push(at);
            }
        }
    }
    if cuts.len() < 2 {
        return parse_piece(text);
    }
    cuts.push(text.len());
    let spread = crate::parallel::Spread {
        batch: 1,
        stack_bytes: crate::load::PARSE_STACK_BYTES,
    };
    let parsed = crate::parallel::parallel_map(
        cuts.len() - 1,
        spread,
        || (),
        |_, k| parse_piece(&text[cuts[k]..cuts[k + 1]]),
    );
    let mut docs = Vec::with_capacity(parsed.len());
    for piece in parsed {
        match piece {
            Ok(d) => docs.push(d),
            Err(_) => return KdlDocument::parse_v2(text),
        }
    }
    let mut whole = KdlDocument::new();
    for (doc, &at) in docs.iter_mut().zip(&cuts) {
        shift_spans(doc, at);
        whole.nodes_mut().append(doc.nodes_mut());
    }
    whole.set_span(SourceSpan::new(0.into(), text.len()));
    Ok(whole)
}

/// Plain KDL through the fast reader, the rest (and every error) through the kdl crate.
fn parse_piece(text: &str) -> Result<KdlDocument, kdl::KdlError> {
    crate::kdl_reader::read(text).map_or_else(|| KdlDocument::parse_v2(text), Ok)
}

/// The first line start after `from` where a cut is safe: the line starts with a letter (a
/// node name), and the line before holds no `\`, so no line continuation (which may end in a
/// comment, or at the end of a piece) carries a node across the cut. A piece ending inside a
/// string, comment or block, or in a slash-dash, fails to parse, so if every piece parses, the
/// cuts were between nodes (`tests::a_manifest_parsed_in_pieces_is_the_whole_parse`).
fn node_start_after(text: &str, from: usize) -> Option<usize> {
    let b = text.as_bytes();
    let mut at = from;
    loop {
        let line_start = at;
        at += b.get(at..)?.iter().position(|&c| c == b'\n')? + 1;
        // The first line may be a part of one (and `from` inside a character): never cut after it.
        if line_start == from || !b.get(at).is_some_and(u8::is_ascii_alphabetic) {
            continue;
        }
        let before = &text[line_start..at - 1];
        if !before.contains('\\') {
            return Some(at);
        }
    }
}

/// Move every span of a document parsed from `text[at..]` to where it is in `text`.
fn shift_spans(doc: &mut KdlDocument, at: usize) {
    fn moved(s: SourceSpan, at: usize) -> SourceSpan {
        SourceSpan::new((s.offset() + at).into(), s.len())
    }
    fn ident(i: &mut kdl::KdlIdentifier, at: usize) {
        i.set_span(moved(i.span(), at));
    }
    doc.set_span(moved(doc.span(), at));
    for node in doc.nodes_mut() {
        node.set_span(moved(node.span(), at));
        ident(node.name_mut(), at);
        if let Some(t) = node.ty_mut() {
            ident(t, at);
        }
        for e in node.entries_mut() {
            e.set_span(moved(e.span(), at));
            if let Some(n) = e.name_mut() {
                ident(n, at);
            }
            if let Some(t) = e.ty_mut() {
                ident(t, at);
            }
        }
        if let Some(children) = node.children_mut() {
            shift_spans(children, at);
        }
    }
}

/// Parse a manifest's text. Findings go to `out`; whatever could be read is returned.
/// Most KDL syntax errors reported for one manifest.
pub const MAX_SYNTAX_FINDINGS: usize = 50;

pub fn parse(text: &str, file: FileId, out: &mut Vec<Finding>) -> Manifest {
    let mut manifest = Manifest {
        file: Some(file),
        ..Manifest::default()
    };
    let doc = match parse_document(text) {
        Ok(doc) => doc,
        Err(err) => {
            // The first errors are what a user fixes; thousands (a binary file) would only
            // cost quadratic rendering time.
            for d in err.diagnostics.into_iter().take(MAX_SYNTAX_FINDINGS) {
                let span = char_span_to_bytes(text, d.span.offset(), d.span.len());
                let message = d.message.unwrap_or_else(|| "invalid KDL".into());
                out.push(
                    Finding::error("stir::syntax", file, span, lowercase_first(&message))
                        .label(d.label.unwrap_or_else(|| "here".into()))
                        .help(d.help.unwrap_or_else(|| {
                            "see the KDL 2.0 syntax: nodes are `name arg key=value { children }`, strings in double quotes, booleans `#true`/`#false`".into()
                        })),
                );
            }
            return manifest;
        }
    };
    let mut cx = Cx { file, out };
    let mut seen_project = false;
    for node in doc.nodes() {
        match node.name().value() {
            "project" => {
                if seen_project {
                    cx.err(
                        "stir::duplicate",
                        name_span(node),
                        "more than one `project` node",
                    )
                    .label("second project")
                    .help("keep exactly one `project` node");
                }
                seen_project = true;
                manifest.project = read_project(&mut cx, node);
            }
            "warehouse" => {
                cx.kind_arg(node, "clickhouse");
                let p = cx.props(node, &["database", "cluster", "threads"]);
                cx.no_children(node);
                if let Some(db) = cx.ident_prop(&p, "database") {
                    manifest.warehouse.database = db.text;
                }
                manifest.warehouse.cluster = cx.ident_prop(&p, "cluster").map(|n| n.text);
                if let Some(t) = cx.int_prop(&p, "threads", 1, 64) {
                    manifest.warehouse.threads = t as u32;
                }
            }
            "serving" => {
                // `serving postgres [NAME]`: the kind, then an optional target name.
                let a = args(node);
                let name = match a.as_slice() {
                    [kind, name] if kind.value().as_string() == Some("postgres") => {
                        cx.name_of(name, NameKind::Name)
                    }
                    _ => {
                        cx.kind_arg(node, "postgres");
                        None
                    }
                };
                let p = cx.props(node, &["schema"]);
                cx.no_children(node);
                let schema = cx
                    .ident_prop(&p, "schema")
                    .map_or("public".into(), |n| n.text);
                match name {
                    Some(name) => manifest.targets.push(ServingTarget { name, schema }),
                    None if a.len() > 1 => {}
                    None => {
                        if manifest.serving.is_some() {
                            cx.err(
                                "stir::duplicate",
                                name_span(node),
                                "more than one unnamed `serving postgres` node",
                            )
                            .label("second default target")
                            .help("name the other targets: `serving postgres staging schema=public`, and say `target=staging` on their syncs");
                        }
                        manifest.serving = Some(Serving { schema });
                    }
                }
            }
            "staging" => {
                cx.kind_arg(node, "s3");
                let p = cx.props(node, &["bucket", "prefix", "compression", "keep"]);
                cx.no_children(node);
                let bucket = cx.string_prop(&p, "bucket");
                if bucket.is_none() {
                    cx.missing(
                        node,
                        "bucket",
                        "staging s3 bucket=my-bucket prefix=\"stir/tmp\"",
                    );
                }
                let prefix = cx
                    .string_prop(&p, "prefix")
                    .map(|s| s.value)
                    .unwrap_or_default();
                let compression = match cx.choice_prop(
                    &p,
                    "compression",
                    &["lz4", "none"],
                    "a staging compression",
                    "use `compression=lz4` (the default) or `compression=none`",
                ) {
                    Some(1) => StagingCompression::None,
                    _ => StagingCompression::Lz4,
                };
                let keep = match p.get("keep").map(|e| (e, e.value())) {
                    None => Some(DEFAULT_STAGING_KEEP),
                    Some((_, KdlValue::String(v))) if v == "all" => None,
                    Some((_, KdlValue::Integer(n))) if (1..=10_000).contains(n) => Some(*n as u32),
                    Some((e, _)) => {
                        cx.err(
                            "stir::invalid_value",
                            entry_span(e),
                            "`keep` takes a number of staged files per sync (1 to 10000), or \"all\"",
                        )
                        .label("not a count")
                        .help("write `keep=3` (stir deletes all but the newest three per sync) or `keep=all` (stir deletes none; give the prefix an S3 lifecycle rule)");
                        Some(DEFAULT_STAGING_KEEP)
                    }
                };
                manifest.staging = bucket.map(|b| Staging {
                    bucket: b.value,
                    prefix: prefix.trim_matches('/').to_string(),
                    compression,
                    keep,
                });
            }
            "notify" => manifest.notify = Some(read_notify(&mut cx, node)),
            "endpoint" => {
                cx.props(node, &[]);
                cx.no_children(node);
                if let Some(n) = cx.name_arg(node, NameKind::Name) {
                    manifest.endpoints.push(n);
                }
            }
            "source" => {
                let p = cx.props(node, &["database"]);
                let in_database = cx.ident_prop(&p, "database");
                if let Some(db) = cx.name_arg(node, NameKind::Sql) {
                    let mut tables = Vec::new();
                    for child in children(node) {
                        if child.name().value() == "table" {
                            cx.props(child, &[]);
                            if let Some(t) = cx.name_arg(child, NameKind::Sql) {
                                tables.push(t);
                            }
                        } else {
                            cx.unknown_node(child, &["table"], "source");
                        }
                    }
                    manifest.sources.push(Source {
                        database: db,
                        tables,
                        in_database,
                    });
                }
            }
            "tag" => {
                let p = cx.props(node, &["disabled"]);
                cx.no_children(node);
                let disabled = cx.bool_prop(&p, "disabled").unwrap_or(false);
                if let Some(name) = cx.name_arg(node, NameKind::Name) {
                    manifest.tags.push(Tag { name, disabled });
                }
            }
            "var" => {
                cx.props(node, &[]);
                cx.no_children(node);
                let args = args(node);
                if args.len() != 2 {
                    cx.err(
                        "stir::invalid_value",
                        name_span(node),
                        "`var` takes a name and a value",
                    )
                    .label("var")
                    .help("write it as `var min_followers 1000`");
                    continue;
                }
                if let Some(name) = cx.name_of(args[0], NameKind::Sql) {
                    let value = match args[1].value() {
                        KdlValue::String(s) => serde_json::Value::String(s.clone()),
                        KdlValue::Integer(i) => {
                            serde_json::Value::from(i64::try_from(*i).unwrap_or(i64::MAX))
                        }
                        KdlValue::Float(f) => serde_json::Number::from_f64(*f)
                            .map_or(serde_json::Value::Null, serde_json::Value::Number),
                        KdlValue::Bool(b) => serde_json::Value::Bool(*b),
                        KdlValue::Null => serde_json::Value::Null,
                    };
                    manifest.vars.push(Var { name, value });
                }
            }
            "blackout" => {
                let p = cx.props(node, &["from", "to"]);
                cx.no_children(node);
                let name = cx.name_arg(node, NameKind::Name);
                let from = cx.time_prop(&p, "from", false);
                let to = cx.time_prop(&p, "to", true);
                if !p.contains_key("from") {
                    cx.missing(
                        node,
                        "from",
                        "blackout daily-batch from=\"19:00\" to=\"22:00\"",
                    );
                }
                if !p.contains_key("to") {
                    cx.missing(
                        node,
                        "to",
                        "blackout daily-batch from=\"19:00\" to=\"22:00\"",
                    );
                }
                if let (Some(name), Some(from), Some(to)) = (name, from, to) {
                    if from == 0 && to == 1440 {
                        cx.err(
                            "stir::invalid_value",
                            entry_span(p["to"]),
                            "a blackout from 00:00 to 24:00 covers the whole day: a schedule that skips it never fires",
                        )
                        .label("the whole day")
                        .help("to stop a schedule, give it enabled=#false; a blackout is part of a day, e.g. from=\"19:00\" to=\"24:00\"");
                    } else if from == to % 1440 {
                        cx.err(
                            "stir::invalid_value",
                            entry_span(p["to"]),
                            "a blackout window from and to the same time is empty",
                        )
                        .label("same as `from`")
                        .help("give the window a length, e.g. from=\"19:00\" to=\"22:00\"");
                    } else {
                        // `24:00` is midnight, the end of the day: the window wraps to it.
                        manifest.blackouts.push(Blackout {
                            name,
                            from,
                            to: to % 1440,
                        });
                    }
                }
            }
            "models" => read_models(&mut cx, node, &mut manifest.models),
            "macros" => {
                let p = cx.props(node, &["dir"]);
                cx.no_children(node);
                for a in args(node) {
                    cx.err(
                        "stir::invalid_value",
                        entry_span(a),
                        "`macros` takes no arguments",
                    )
                    .label("unexpected argument")
                    .help("name the folder with `dir=\"macros\"`");
                }
                let dir = cx.string_prop(&p, "dir").unwrap_or(Spanned {
                    value: "macros".into(),
                    span: name_span(node),
                });
                manifest.macros.push(Spanned {
                    value: normalize_path(&dir.value),
                    span: dir.span,
                });
            }
            "model" => {
                cx.err(
                    "stir::unknown_node",
                    name_span(node),
                    "`model` must stand inside a `models` group",
                )
                .label("outside a group")
                .help("wrap it: models dir=\"models\" { model my_model }");
            }
            "schedule" => {
                if let Some(s) = read_schedule(&mut cx, node) {
                    manifest.schedules.push(s);
                }
            }
            "sync" => {
                if let Some(s) = read_sync(&mut cx, node) {
                    manifest.syncs.push(s);
                }
            }
            "request" => {
                if let Some(r) = read_request(&mut cx, node) {
                    manifest.requests.push(r);
                }
            }
            _ => cx.unknown_node(node, TOP_LEVEL, "a manifest"),
        }
    }
    if !seen_project {
        cx.out.push(
            Finding::error(
                "stir::missing_node",
                file,
                0..0,
                "the manifest has no `project` node",
            )
            .label("expected here")
            .help("start the manifest with `project my_project timezone=UTC`"),
        );
    }
    manifest
}

const TOP_LEVEL: &[&str] = &[
    "project",
    "warehouse",
    "serving",
    "staging",
    "notify",
    "endpoint",
    "source",
    "tag",
    "var",
    "blackout",
    "models",
    "macros",
    "schedule",
    "sync",
    "request",
];

fn read_project(cx: &mut Cx, node: &KdlNode) -> Option<Project> {
    let p = cx.props(node, &["timezone"]);
    cx.no_children(node);
    let name = cx.name_arg(node, NameKind::Name)?;
    let timezone = cx.string_prop(&p, "timezone").unwrap_or(Spanned {
        value: "UTC".into(),
        span: name.span.clone(),
    });
    Some(Project { name, timezone })
}

/// Group defaults carried by `models` onto each `model` inside.
#[derive(Clone, Default)]
struct ModelDefaults {
    dir: String,
    materialized: Option<Materialized>,
    tags: Vec<Name>,
    engine: Option<String>,
    order_by: Option<String>,
    partition_by: Option<String>,
    freshness_secs: Option<u64>,
}

const MODEL_PROPS: &[&str] = &[
    "materialized",
    "tags",
    "engine",
    "order-by",
    "partition-by",
    "freshness",
];

fn read_models(cx: &mut Cx, node: &KdlNode, models: &mut Vec<Model>) {
    let mut allowed = vec!["dir"];
    allowed.extend_from_slice(MODEL_PROPS);
    let p = cx.props(node, &allowed);
    for a in args(node) {
        cx.err(
            "stir::invalid_value",
            entry_span(a),
            "`models` takes no arguments",
        )
        .label("unexpected argument")
        .help("name the folder with `dir=\"models/marts\"`");
    }
    let mut defaults = ModelDefaults {
        dir: cx
            .string_prop(&p, "dir")
            .map(|s| normalize_path(&s.value))
            .unwrap_or_default(),
        ..ModelDefaults::default()
    };
    read_model_props(cx, &p, &mut defaults);
    for child in children(node) {
        if child.name().value() != "model" {
            cx.unknown_node(child, &["model"], "a `models` group");
            continue;
        }
        let mut allowed = vec!["file"];
        allowed.extend_from_slice(MODEL_PROPS);
        let mp = cx.props(child, &allowed);
        let Some(name) = cx.name_arg(child, NameKind::Sql) else {
            continue;
        };
        let mut own = defaults.clone();
        own.tags.clear();
        read_model_props(cx, &mp, &mut own);
        let mut tags = defaults.tags.clone();
        for t in own.tags {
            if !tags.iter().any(|x| x.text == t.text) {
                tags.push(t);
            }
        }
        let (file, file_span) = match cx.string_prop(&mp, "file") {
            // Paths are relative to the manifest's folder, like `dir` itself.
            Some(f) => (normalize_path(&f.value), f.span),
            None => (
                join_path(&defaults.dir, &format!("{}.sql", name.text)),
                name.span.clone(),
            ),
        };
        let mut settings = Vec::new();
        for gc in children(child) {
            if gc.name().value() != "settings" {
                cx.unknown_node(gc, &["settings"], "a `model`");
                continue;
            }
            for e in gc.entries() {
                let Some(key) = e.name() else {
                    cx.err(
                        "stir::invalid_value",
                        entry_span(e),
                        "a setting needs a name",
                    )
                    .label("value without a name")
                    .help(
                        "write settings as key=value, e.g. `settings join_algorithm=partial_merge`",
                    );
                    continue;
                };
                if !is_sql_ident(key.value()) {
                    cx.err(
                        "stir::invalid_value",
                        entry_span(e),
                        format!("`{}` is not a valid setting name", key.value()),
                    )
                    .label("invalid name")
                    .help("ClickHouse setting names are letters, digits and underscores");
                    continue;
                }
                let v = match e.value() {
                    KdlValue::String(s) => SettingValue::Str(s.clone()),
                    KdlValue::Integer(i) => SettingValue::Int(*i),
                    KdlValue::Float(f) => SettingValue::Float(*f),
                    KdlValue::Bool(b) => SettingValue::Bool(*b),
                    KdlValue::Null => {
                        cx.err(
                            "stir::invalid_value",
                            entry_span(e),
                            "a setting cannot be null",
                        )
                        .label("null")
                        .help("give the setting a value or remove it");
                        continue;
                    }
                };
                settings.retain(|(k, _): &(String, SettingValue)| k != key.value());
                settings.push((key.value().to_string(), v));
            }
        }
        models.push(Model {
            name,
            file,
            file_span,
            materialized: own.materialized.unwrap_or(Materialized::Table),
            tags,
            engine: own.engine.unwrap_or_else(|| "MergeTree()".into()),
            order_by: own.order_by,
            partition_by: own.partition_by,
            freshness_secs: own.freshness_secs,
            settings,
        });
    }
}

fn read_model_props(cx: &mut Cx, p: &Props, d: &mut ModelDefaults) {
    if let Some(m) = cx.string_prop(p, "materialized") {
        d.materialized = match m.value.as_str() {
            "table" => Some(Materialized::Table),
            "incremental" => Some(Materialized::Incremental),
            "view" => Some(Materialized::View),
            other => {
                let help = did_you_mean(other, ["table", "incremental", "view"])
                    .unwrap_or_else(|| "use `table`, `incremental` or `view`".into());
                cx.err(
                    "stir::invalid_value",
                    m.span,
                    format!("`{other}` is not a materialization"),
                )
                .label("unknown materialization")
                .help(help);
                d.materialized
            }
        };
    }
    if let Some(tags) = cx.names_prop(p, "tags", NameKind::Name) {
        d.tags = tags;
    }
    if let Some(e) = cx.string_prop(p, "engine") {
        d.engine = Some(e.value);
    }
    if let Some(e) = cx.string_prop(p, "order-by") {
        d.order_by = Some(e.value);
    }
    if let Some(e) = cx.string_prop(p, "partition-by") {
        d.partition_by = Some(e.value);
    }
    if let Some(f) = cx.duration_prop(p, "freshness") {
        d.freshness_secs = Some(f);
    }
}

fn read_schedule(cx: &mut Cx, node: &KdlNode) -> Option<Schedule> {
    let p = cx.props(
        node,
        &[
            "cron",
            "timeout",
            "heavy",
            "skip",
            "retries",
            "retry",
            "enabled",
            "on-missed",
            "threads",
        ],
    );
    let name = cx.name_arg(node, NameKind::Name)?;
    let cron = cx.string_prop(&p, "cron");
    if !p.contains_key("cron") {
        cx.missing(
            node,
            "cron",
            &format!("schedule {} cron=\"0 * * * *\" timeout=\"40m\"", name.text),
        );
    }
    let timeout_secs = cx.duration_prop(&p, "timeout");
    if !p.contains_key("timeout") {
        cx.missing(node, "timeout", &format!("schedule {} cron=\"...\" timeout=\"90m\"", name.text))
            .help("give the schedule a timeout (e.g. timeout=\"90m\"): every run is cancelled at fire + timeout, and the overlap analysis needs it");
    }
    if let Some(0) = timeout_secs {
        cx.err(
            "stir::invalid_value",
            entry_span(p["timeout"]),
            "a timeout of zero never lets a run start",
        )
        .label("zero")
        .help("give the longest time a run may take, e.g. timeout=\"90m\"");
    }
    let heavy = cx.bool_prop(&p, "heavy").unwrap_or(false);
    let enabled = cx.bool_prop(&p, "enabled").unwrap_or(true);
    let skip = cx
        .names_prop(&p, "skip", NameKind::Name)
        .unwrap_or_default();
    let retries = cx.int_prop(&p, "retries", 0, 100).unwrap_or(0) as u32;
    let on_missed = match cx.choice_prop(
        &p,
        "on-missed",
        &["run-once", "skip"],
        "a choice of `on-missed`",
        "use `on-missed=\"run-once\"` (the default: run the latest missed fire late, inside its window) or `on-missed=\"skip\"` (record it missed)",
    ) {
        Some(1) => crate::plan::OnMissed::Skip,
        _ => crate::plan::OnMissed::RunOnce,
    };
    let retry_all = cx.choice_prop(
        &p,
        "retry",
        &["failed", "all"],
        "a choice of `retry`",
        "use `retry=\"failed\"` (the default: a retry runs the failed and skipped steps only) or `retry=\"all\"` (a retry runs every step again)",
    ) == Some(1);
    let threads = cx.int_prop(&p, "threads", 1, 64).map(|t| t as u32);
    let mut steps = Vec::new();
    let mut notify = None;
    for child in children(node) {
        let span = node_span(child);
        let kind = match child.name().value() {
            "notify" => {
                notify = Some(read_notify(cx, child));
                continue;
            }
            "run" => {
                let rp = cx.props(child, &["exclude"]);
                cx.no_children(child);
                let mut select = Vec::new();
                for a in args(child) {
                    if let Some(s) = cx.selector_of(a) {
                        select.extend(s);
                    }
                }
                if select.is_empty() {
                    cx.err(
                        "stir::missing_property",
                        name_span(child),
                        "`run` names no models",
                    )
                    .label("empty run step")
                    .help("name what to build, e.g. `run tag:daily` or `run mart_leaderboard+`");
                    continue;
                }
                let exclude = match rp.get("exclude") {
                    Some(e) => cx.selector_of(e).unwrap_or_default(),
                    None => Vec::new(),
                };
                StepKind::Run { select, exclude }
            }
            "sql" => {
                cx.props(child, &[]);
                cx.no_children(child);
                let a = args(child);
                match a.first().map(|e| e.value()) {
                    Some(KdlValue::String(s)) if a.len() == 1 && !s.trim().is_empty() => {
                        StepKind::Sql(s.clone())
                    }
                    _ => {
                        cx.err(
                            "stir::invalid_value",
                            name_span(child),
                            "`sql` takes one statement as a string",
                        )
                        .label("sql step")
                        .help("write it as `sql \"truncate table dbt.mart_fake_events\"`");
                        continue;
                    }
                }
            }
            "sync" | "request" => {
                cx.props(child, &[]);
                cx.no_children(child);
                let Some(n) = cx.name_arg(child, NameKind::Name) else {
                    continue;
                };
                if child.name().value() == "sync" {
                    StepKind::Sync(n)
                } else {
                    StepKind::Request(n)
                }
            }
            _ => {
                cx.unknown_node(
                    child,
                    &["run", "sql", "sync", "request", "notify"],
                    "a `schedule`",
                );
                continue;
            }
        };
        steps.push(Step { kind, span });
    }
    if steps.is_empty() {
        cx.err(
            "stir::missing_property",
            name.span.clone(),
            format!("schedule `{}` has no steps", name.text),
        )
        .label("nothing to run")
        .help("add a step, e.g. `schedule name cron=\"...\" timeout=\"1h\" { run tag:daily }`");
    }
    Some(Schedule {
        name,
        cron,
        timeout_secs,
        heavy,
        skip,
        retries,
        retry_all,
        on_missed,
        threads,
        enabled,
        notify,
        steps,
    })
}

/// `notify slack on=failure|always|never webhook=NAME link="…{run_id}…" repeat="1h"`.
fn read_notify(cx: &mut Cx, node: &KdlNode) -> Notify {
    cx.kind_arg(node, "slack");
    let p = cx.props(node, &["on", "webhook", "link", "repeat"]);
    cx.no_children(node);
    let on = cx.string_prop(&p, "on").map(|v| match v.value.as_str() {
        "failure" => NotifyOn::Failure,
        "always" => NotifyOn::Always,
        "never" => NotifyOn::Never,
        _ => {
            cx.err("stir::invalid_value", v.span, format!("`{}` is not a notify condition", v.value))
                .label("unknown condition")
                .help("use `on=failure` (failures, timeouts and skipped heavy runs), `on=always` or `on=never`");
            NotifyOn::Failure
        }
    });
    let webhook = p.get("webhook").and_then(|e| cx.name_of(e, NameKind::Name));
    let link = cx.string_prop(&p, "link").and_then(|l| {
        let ok = (l.value.starts_with("https://") || l.value.starts_with("http://"))
            && !l.value.chars().any(|c| c.is_whitespace() || "<>|\"".contains(c));
        if ok {
            Some(l.value)
        } else {
            cx.err("stir::invalid_value", l.span, "`link` is not an http(s) URL")
                .label("not a URL")
                .help("e.g. `link=\"https://stir.example.com/runs/{run_id}\"`: `{run_id}` and `{schedule}` are filled in per alert");
            None
        }
    });
    let repeat_secs = cx.duration_prop(&p, "repeat");
    Notify {
        on,
        webhook,
        link,
        repeat_secs,
    }
}

fn read_sync(cx: &mut Cx, node: &KdlNode) -> Option<Sync> {
    let p = cx.props(
        node,
        &[
            "from",
            "to",
            "target",
            "keep-backup",
            "allow-empty",
            "lock-timeout",
        ],
    );
    let name = cx.name_arg(node, NameKind::Name)?;
    let from = cx.ident_prop(&p, "from");
    let mut to = cx.ident_prop(&p, "to");
    if let Some(t) = to.take_if(|t| t.text.contains("__stir_")) {
        // Such a name could be another sync's staging table or backup, which the swap drops.
        cx.err(
            "stir::invalid_value",
            t.span,
            format!(
                "`{}` holds `__stir_`, which marks the tables stir makes for itself",
                t.text
            ),
        )
        .label("reserved for stir")
        .help("name the PostgreSQL table without `__stir_`");
    }
    for key in ["from", "to"] {
        if !p.contains_key(key) {
            cx.missing(
                node,
                key,
                &format!("sync {} from=mart_model to=pg_table {{ ... }}", name.text),
            );
        }
    }
    let target = p.get("target").and_then(|e| cx.name_of(e, NameKind::Name));
    let mut sync = Sync {
        name,
        from,
        to,
        target,
        // One generation kept by default, as today's `_old_bkp`: what a rollback swaps back in.
        keep_backup: cx.bool_prop(&p, "keep-backup").unwrap_or(true),
        key: Vec::new(),
        columns: Vec::new(),
        enrich: Vec::new(),
        delete_where: Vec::new(),
        indexes: Vec::new(),
        max_shrink_pct: Some(DEFAULT_MAX_SHRINK_PCT),
        allow_empty: cx.bool_prop(&p, "allow-empty").unwrap_or(false),
        lock_timeout_secs: DEFAULT_LOCK_TIMEOUT_SECS,
    };
    match cx.duration_prop(&p, "lock-timeout") {
        Some(secs) if (1..=MAX_LOCK_TIMEOUT_SECS).contains(&secs) => sync.lock_timeout_secs = secs,
        Some(_) => {
            cx.err(
                "stir::invalid_value",
                entry_span(p["lock-timeout"]),
                "`lock-timeout` takes a duration from 1s to 1h",
            )
            .label("out of range")
            .help("PostgreSQL reads zero as `wait forever`, and every reader of the table queues behind a waiting swap: write e.g. `lock-timeout=\"5s\"`");
        }
        None => {}
    }
    for child in children(node) {
        match child.name().value() {
            "key" => {
                cx.props(child, &[]);
                for a in args(child) {
                    if let Some(n) = cx.name_of(a, NameKind::Sql) {
                        sync.key.push(n);
                    }
                }
            }
            "column" => {
                let cp = cx.props(child, &["type", "default", "expr", "export"]);
                let Some(cname) = cx.name_arg(child, NameKind::Sql) else {
                    continue;
                };
                let ty = match cx.string_prop(&cp, "type") {
                    Some(t) => match normalize_pg_type(&t.value) {
                        Some(ty) => match pg_type_problem(&ty) {
                            None => ty,
                            Some(problem) => {
                                cx.err("stir::invalid_value", t.span, problem.message)
                                    .label(problem.label)
                                    .help(problem.help);
                                continue;
                            }
                        },
                        None => {
                            cx.err("stir::invalid_value", t.span, format!("`{}` is not a PostgreSQL column type stir knows", t.value))
                                .label("unknown type")
                                .help(did_you_mean(&t.value, PG_TYPE_NAMES.iter().copied()).unwrap_or_else(|| {
                                    "use a PostgreSQL type such as text, int8, float8, numeric(12,2), boolean, date, timestamp, timestamptz, jsonb or text[]".into()
                                }));
                            continue;
                        }
                    },
                    None => {
                        cx.missing(child, "type", &format!("column {} type=text", cname.text));
                        continue;
                    }
                };
                let default = cp.get("default").map(|e| match e.value() {
                    KdlValue::String(s) => format!("'{}'", s.replace('\'', "''")),
                    KdlValue::Integer(i) => i.to_string(),
                    KdlValue::Float(f) => f.to_string(),
                    KdlValue::Bool(b) => b.to_string(),
                    KdlValue::Null => "NULL".into(),
                });
                sync.columns.push(Column {
                    name: cname,
                    ty,
                    default,
                    expr: cx.string_prop(&cp, "expr").map(|s| s.value),
                    export: cx.bool_prop(&cp, "export").unwrap_or(true),
                });
            }
            "enrich" | "delete-where" => {
                cx.props(child, &[]);
                let a = args(child);
                match a.first().map(|e| e.value()) {
                    Some(KdlValue::String(s)) if a.len() == 1 => {
                        let v = Spanned {
                            value: s.clone(),
                            span: entry_span(a[0]),
                        };
                        if child.name().value() == "enrich" {
                            sync.enrich.push(v);
                        } else {
                            sync.delete_where.push(v);
                        }
                    }
                    _ => {
                        cx.err("stir::invalid_value", name_span(child), format!("`{}` takes one SQL string", child.name().value()))
                            .label("expected one string")
                            .help("write the statement as one string, e.g. enrich \"update {{ target }} t set ...\"");
                    }
                }
            }
            "index" => {
                let ip = cx.props(child, &["unique"]);
                let mut columns = Vec::new();
                for a in args(child) {
                    if let Some(n) = cx.name_of(a, NameKind::Sql) {
                        columns.push(n);
                    }
                }
                if columns.is_empty() {
                    cx.err(
                        "stir::missing_property",
                        name_span(child),
                        "`index` names no columns",
                    )
                    .label("empty index")
                    .help("name the indexed columns, e.g. `index month platform`");
                    continue;
                }
                sync.indexes.push(Index {
                    columns,
                    unique: cx.bool_prop(&ip, "unique").unwrap_or(false),
                    span: node_span(child),
                });
            }
            "max-shrink" => {
                cx.props(child, &[]);
                let a = args(child);
                let parsed = a.first().and_then(|e| match e.value() {
                    KdlValue::String(s) if s == "none" => Some(None),
                    KdlValue::String(s) => s
                        .strip_suffix('%')
                        .and_then(|n| n.trim().parse::<f64>().ok())
                        .map(Some),
                    _ => None,
                });
                match parsed {
                    Some(pct) if a.len() == 1 && pct.is_none_or(|p| (0.0..=100.0).contains(&p)) => {
                        sync.max_shrink_pct = pct
                    }
                    _ => {
                        cx.err(
                            "stir::invalid_value",
                            node_span(child),
                            "`max-shrink` takes a percentage between 0% and 100%, or `none`",
                        )
                        .label("not a percentage")
                        .help("write it as `max-shrink \"10%\"` (the default is 50%), or `max-shrink none` to allow any loss but an empty table");
                    }
                }
            }
            _ => cx.unknown_node(
                child,
                &[
                    "key",
                    "column",
                    "enrich",
                    "delete-where",
                    "index",
                    "max-shrink",
                ],
                "a `sync`",
            ),
        }
    }
    Some(sync)
}

fn read_request(cx: &mut Cx, node: &KdlNode) -> Option<Request> {
    let p = cx.props(node, &["limit", "concurrency", "rate", "max-failures"]);
    let name = cx.name_arg(node, NameKind::Name)?;
    let limit = cx.int_prop(&p, "limit", 1, 1_000_000);
    // One at a time by default, as today's request DAGs post.
    let concurrency = cx.int_prop(&p, "concurrency", 1, 256).unwrap_or(1) as u32;
    let rate = p.get("rate").and_then(|e| {
        let v = match e.value() {
            KdlValue::Integer(i) => Some(*i as f64),
            KdlValue::Float(f) => Some(*f),
            _ => None,
        };
        match v {
            Some(v) if v > 0.0 && v <= 1000.0 => Some(v),
            _ => {
                cx.err(
                    "stir::invalid_value",
                    entry_span(e),
                    "`rate` takes requests per second: a number above 0, at most 1000",
                )
                .label("not a rate")
                .help("e.g. `rate=2` (two POSTs a second) or `rate=0.5` (one every 2 s)");
                None
            }
        }
    });
    let max_failures_pct = match cx.string_prop(&p, "max-failures") {
        None => 10.0,
        Some(s) => match s
            .value
            .strip_suffix('%')
            .and_then(|n| n.trim().parse::<f64>().ok())
        {
            Some(v) if (0.0..=100.0).contains(&v) => v,
            _ => {
                cx.err(
                    "stir::invalid_value",
                    s.span,
                    "`max-failures` takes a percentage",
                )
                .label("not a percentage")
                .help("write it as max-failures=\"10%\"");
                10.0
            }
        },
    };
    let mut r = Request {
        name,
        limit,
        query: None,
        endpoint: None,
        path: None,
        body: None,
        concurrency,
        rate,
        max_failures_pct,
    };
    for child in children(node) {
        match child.name().value() {
            "query" | "body" => {
                cx.props(child, &[]);
                let a = args(child);
                match a.first().map(|e| e.value()) {
                    Some(KdlValue::String(s)) if a.len() == 1 => {
                        let v = Spanned {
                            value: s.clone(),
                            span: entry_span(a[0]),
                        };
                        if child.name().value() == "query" {
                            r.query = Some(Spanned {
                                value: normalize_path(&v.value),
                                span: v.span,
                            });
                        } else {
                            r.body = Some(v);
                        }
                    }
                    _ => {
                        cx.err(
                            "stir::invalid_value",
                            name_span(child),
                            format!("`{}` takes one string", child.name().value()),
                        )
                        .label("expected one string")
                        .help("e.g. query \"models/requests/posts_to_scrape.sql\"");
                    }
                }
            }
            "post" => {
                let pp = cx.props(child, &["endpoint", "path"]);
                r.endpoint = cx.ident_prop(&pp, "endpoint");
                r.path = cx.string_prop(&pp, "path").map(|s| s.value);
                if r.endpoint.is_none() {
                    cx.missing(child, "endpoint", "post endpoint=beat path=\"/flow\"");
                }
            }
            _ => cx.unknown_node(child, &["query", "post", "body"], "a `request`"),
        }
    }
    for (what, present) in [
        ("query", r.query.is_some()),
        (
            "post",
            r.endpoint.is_some() || children(node).any(|c| c.name().value() == "post"),
        ),
        ("body", r.body.is_some()),
    ] {
        if !present {
            cx.err("stir::missing_property", r.name.span.clone(), format!("request `{}` has no `{what}`", r.name.text))
                .label(format!("no {what}"))
                .help("a request needs `query \"file.sql\"`, `post endpoint=NAME path=\"/...\"` and `body \"...\"`");
        }
    }
    Some(r)
}

// ---------------------------------------------------------------------------------------------
// Reading helpers

/// Builder calls on a finding already pushed (so `cx.err(..).label(..).help(..)` reads as elsewhere).
trait Edit {
    fn label(self, label: impl Into<String>) -> Self;
    fn help(self, help: impl Into<String>) -> Self;
}

impl Edit for &mut Finding {
    fn label(self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }
    fn help(self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

type Props<'a> = BTreeMap<String, &'a KdlEntry>;

#[derive(Clone, Copy)]
enum NameKind {
    /// Names of schedules, tags, blackouts, syncs: letters, digits, `_` and `-`.
    Name,
    /// SQL identifiers: models, tables, columns, databases.
    Sql,
}

struct Cx<'o> {
    file: FileId,
    out: &'o mut Vec<Finding>,
}

impl Cx<'_> {
    fn err(&mut self, code: &'static str, span: Span, message: impl Into<String>) -> &mut Finding {
        self.out
            .push(Finding::error(code, self.file, span, message));
        self.out.last_mut().expect("just pushed")
    }

    fn missing(&mut self, node: &KdlNode, prop: &str, example: &str) -> &mut Finding {
        let kind = node.name().value().to_string();
        self.err(
            "stir::missing_property",
            name_span(node),
            format!("`{kind}` is missing `{prop}`"),
        )
        .label(format!("needs `{prop}`"))
        .help(format!("add it, e.g. `{example}`"))
    }

    fn unknown_node(&mut self, node: &KdlNode, known: &[&str], inside: &str) {
        let name = node.name().value();
        let help = did_you_mean(name, known.iter().copied())
            .unwrap_or_else(|| format!("nodes allowed in {inside}: {}", known.join(", ")));
        self.err(
            "stir::unknown_node",
            name_span(node),
            format!("unknown node `{name}` in {inside}"),
        )
        .label("unknown node")
        .help(help);
    }

    fn no_children(&mut self, node: &KdlNode) {
        if let Some(c) = node.children() {
            if !c.nodes().is_empty() {
                let kind = node.name().value().to_string();
                self.err(
                    "stir::unknown_node",
                    c.span().offset()..c.span().offset() + c.span().len(),
                    format!("`{kind}` takes no children"),
                )
                .label("unexpected block")
                .help("remove the block");
            }
        }
    }

    /// Properties of a node, reporting unknown ones with a "did you mean".
    fn props<'a>(&mut self, node: &'a KdlNode, allowed: &[&str]) -> Props<'a> {
        let mut map = BTreeMap::new();
        for e in node.entries() {
            if let Some(key) = e.name() {
                let k = key.value();
                if allowed.contains(&k) {
                    map.insert(k.to_string(), e);
                } else {
                    let kind = node.name().value();
                    let help = did_you_mean(k, allowed.iter().copied()).unwrap_or_else(|| {
                        if allowed.is_empty() {
                            format!("`{kind}` takes no properties")
                        } else {
                            format!(
                                "`{kind}` takes {}",
                                allowed
                                    .iter()
                                    .map(|a| format!("`{a}`"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        }
                    });
                    self.err(
                        "stir::unknown_property",
                        entry_span(e),
                        format!("unknown property `{k}` on `{kind}`"),
                    )
                    .label("unknown property")
                    .help(help);
                }
            }
        }
        map
    }

    fn kind_arg(&mut self, node: &KdlNode, expected: &str) {
        let a = args(node);
        let kind = node.name().value().to_string();
        match a.first() {
            Some(e) if e.value().as_string() == Some(expected) && a.len() == 1 => {}
            Some(e) => {
                self.err(
                    "stir::invalid_value",
                    entry_span(e),
                    format!("`{kind}` supports only `{expected}`"),
                )
                .label("unsupported")
                .help(format!("write `{kind} {expected} ...`"));
            }
            None => {
                self.err(
                    "stir::missing_property",
                    name_span(node),
                    format!("`{kind}` needs its kind"),
                )
                .label("no kind")
                .help(format!("write `{kind} {expected} ...`"));
            }
        }
    }

    fn name_arg(&mut self, node: &KdlNode, kind: NameKind) -> Option<Name> {
        let a = args(node);
        let what = node.name().value().to_string();
        match a.as_slice() {
            [one] => self.name_of(one, kind),
            [] => {
                self.err(
                    "stir::missing_property",
                    name_span(node),
                    format!("`{what}` needs a name"),
                )
                .label("no name")
                .help(format!("write `{what} NAME ...`"));
                None
            }
            [first, rest @ ..] => {
                let span = entry_span(rest[0]).start..entry_span(rest[rest.len() - 1]).end;
                self.err(
                    "stir::invalid_value",
                    span,
                    format!("`{what}` takes one name"),
                )
                .label("extra arguments")
                .help("give properties as key=value; quote a value that holds spaces");
                self.name_of(first, kind)
            }
        }
    }

    fn name_of(&mut self, e: &KdlEntry, kind: NameKind) -> Option<Name> {
        let span = entry_span(e);
        let Some(s) = e.value().as_string() else {
            self.err("stir::invalid_value", span, "expected a name")
                .label("not a name")
                .help("names are identifiers like `mart_leaderboard` or `daily-batch`");
            return None;
        };
        let ok = match kind {
            NameKind::Name => is_name(s),
            NameKind::Sql => is_sql_ident(s),
        };
        if !ok
            && matches!(kind, NameKind::Sql)
            && s.get(..63).is_some_and(is_sql_ident)
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            // PostgreSQL would cut it to 63 bytes without a word, and then two names (or a
            // table and the staging copy stir makes of it) could silently become one.
            self.err(
                "stir::invalid_value",
                span.clone(),
                format!("`{s}` is {} bytes long; SQL names are at most 63", s.len()),
            )
            .label("longer than 63 bytes")
            .help(
                "shorten the name to 63 bytes or fewer: PostgreSQL silently truncates longer names",
            );
            return None;
        }
        if !ok {
            let help = match kind {
                NameKind::Name => "use letters, digits, `_` and `-`, starting with a letter or `_`",
                NameKind::Sql => {
                    "SQL names use letters, digits and `_`, starting with a letter or `_`"
                }
            };
            self.err(
                "stir::invalid_value",
                span.clone(),
                format!("`{s}` is not a valid name"),
            )
            .label("invalid name")
            .help(help);
            return None;
        }
        Some(Name {
            text: s.to_string(),
            span,
        })
    }

    fn ident_prop(&mut self, p: &Props, key: &str) -> Option<Name> {
        let e = p.get(key)?;
        self.name_of(e, NameKind::Sql)
    }

    fn names_prop(&mut self, p: &Props, key: &str, kind: NameKind) -> Option<Vec<Name>> {
        let s = self.string_prop(p, key)?;
        Some(self.split_names(&s, kind))
    }

    /// Split a space-separated string value into names with their own spans.
    fn split_names(&mut self, s: &Spanned<String>, kind: NameKind) -> Vec<Name> {
        let mut out = Vec::new();
        for (start, word) in words(&s.value) {
            let span = inner_span(&s.span, &s.value, start, word.len());
            let ok = match kind {
                NameKind::Name => is_name(word),
                NameKind::Sql => is_sql_ident(word),
            };
            if ok {
                out.push(Name {
                    text: word.to_string(),
                    span,
                });
            } else {
                self.err(
                    "stir::invalid_value",
                    span,
                    format!("`{word}` is not a valid name"),
                )
                .label("invalid name")
                .help("separate names with spaces; names use letters, digits, `_` and `-`");
            }
        }
        out
    }

    /// Selectors from one argument or an `exclude` value (space-separated, each with its span).
    fn selector_of(&mut self, e: &KdlEntry) -> Option<Vec<Name>> {
        let span = entry_span(e);
        let Some(s) = e.value().as_string() else {
            self.err("stir::invalid_value", span, "expected a selector")
                .label("not a selector")
                .help("selectors look like `tag:daily`, `mart_x`, `+mart_x`, `mart_x+` or \"path:models/marts\"");
            return None;
        };
        let sp = Spanned {
            value: s.to_string(),
            span,
        };
        let mut out = Vec::new();
        for (start, word) in words(&sp.value) {
            out.push(Name {
                text: word.to_string(),
                span: inner_span(&sp.span, &sp.value, start, word.len()),
            });
        }
        Some(out)
    }

    fn string_prop(&mut self, p: &Props, key: &str) -> Option<Spanned<String>> {
        let e = p.get(key)?;
        match e.value() {
            KdlValue::String(s) => Some(Spanned {
                value: s.clone(),
                span: entry_value_span(e),
            }),
            other => {
                self.err(
                    "stir::invalid_value",
                    entry_span(e),
                    format!("`{key}` takes a string, not `{other}`"),
                )
                .label("expected a string")
                .help(format!("quote the value: {key}=\"...\""));
                None
            }
        }
    }

    fn bool_prop(&mut self, p: &Props, key: &str) -> Option<bool> {
        let e = p.get(key)?;
        match e.value() {
            KdlValue::Bool(b) => Some(*b),
            KdlValue::String(s) if s == "true" || s == "false" => {
                self.err(
                    "stir::invalid_value",
                    entry_span(e),
                    format!("`{key}` takes a boolean"),
                )
                .label("a string, not a boolean")
                .help(format!("KDL 2 booleans are written `{key}=#{s}`"));
                None
            }
            _ => {
                self.err(
                    "stir::invalid_value",
                    entry_span(e),
                    format!("`{key}` takes a boolean"),
                )
                .label("expected #true or #false")
                .help(format!("write `{key}=#true` or `{key}=#false`"));
                None
            }
        }
    }

    /// A string property with a fixed set of values: the index of the one given; `None` when
    /// absent or not a choice (then a finding: `\`x\` is not {what}`, the nearest choice or
    /// `help`).
    fn choice_prop(
        &mut self,
        p: &Props,
        key: &str,
        choices: &[&str],
        what: &str,
        help: &str,
    ) -> Option<usize> {
        let v = self.string_prop(p, key)?;
        if let Some(i) = choices.iter().position(|c| *c == v.value) {
            return Some(i);
        }
        let help = did_you_mean(&v.value, choices.iter().copied()).unwrap_or_else(|| help.into());
        self.err(
            "stir::invalid_value",
            v.span,
            format!("`{}` is not {what}", v.value),
        )
        .label(format!("unknown {key}"))
        .help(help);
        None
    }

    fn int_prop(&mut self, p: &Props, key: &str, min: i128, max: i128) -> Option<u64> {
        let e = p.get(key)?;
        match e.value() {
            KdlValue::Integer(i) if (min..=max).contains(i) => Some(*i as u64),
            _ => {
                self.err(
                    "stir::invalid_value",
                    entry_span(e),
                    format!("`{key}` takes a whole number from {min} to {max}"),
                )
                .label("out of range")
                .help(format!("e.g. `{key}={}`", min.max(1)));
                None
            }
        }
    }

    fn duration_prop(&mut self, p: &Props, key: &str) -> Option<u64> {
        let s = self.string_prop(p, key)?;
        match parse_duration(&s.value) {
            Some(d) => Some(d),
            None => {
                self.err(
                    "stir::invalid_value",
                    s.span,
                    format!("`{}` is not a duration", s.value),
                )
                .label("invalid duration")
                .help("write a number and a unit: `30s`, `90m`, `6h`, `1d` (or `1h30m`)");
                None
            }
        }
    }

    fn time_prop(&mut self, p: &Props, key: &str, allow_24: bool) -> Option<u16> {
        let s = self.string_prop(p, key)?;
        match parse_time(&s.value, allow_24) {
            Some(t) => Some(t),
            None => {
                self.err(
                    "stir::invalid_value",
                    s.span,
                    format!("`{}` is not a time of day", s.value),
                )
                .label("invalid time")
                .help("write times as HH:MM from 00:00 to 23:59, e.g. \"19:00\"");
                None
            }
        }
    }
}

fn args(node: &KdlNode) -> Vec<&KdlEntry> {
    node.entries()
        .iter()
        .filter(|e| e.name().is_none())
        .collect()
}

fn children(node: &KdlNode) -> impl Iterator<Item = &KdlNode> {
    node.children().into_iter().flat_map(|d| d.nodes().iter())
}

fn name_span(node: &KdlNode) -> Span {
    let s = node.name().span();
    s.offset()..s.offset() + s.len()
}

/// The node's first line: name and entries, not its children block.
fn node_span(node: &KdlNode) -> Span {
    let start = name_span(node).start;
    let end = node
        .entries()
        .iter()
        .map(|e| entry_span(e).end)
        .max()
        .unwrap_or(name_span(node).end);
    start..end
}

fn entry_span(e: &KdlEntry) -> Span {
    let s = e.span();
    s.offset()..s.offset() + s.len()
}

/// Span of a property's value (after `key=`), so labels and inner spans point at the text.
fn entry_value_span(e: &KdlEntry) -> Span {
    let span = entry_span(e);
    match e.name() {
        Some(k) => {
            let fmt = e.format();
            let skip = k.repr().map_or(k.value().len(), |r| r.len())
                + fmt.map_or(0, |f| f.after_key.len() + f.after_eq.len())
                + 1;
            (span.start + skip).min(span.end)..span.end
        }
        None => span,
    }
}

/// Map a byte range inside a string value back into the file, allowing for a leading quote.
fn inner_span(value_span: &Span, value: &str, start: usize, len: usize) -> Span {
    let quoted = value_span.end - value_span.start >= value.len() + 2;
    let base = value_span.start + usize::from(quoted);
    // Escapes make the file text longer than the value; fall back to the whole value then.
    if value_span.end - value_span.start > value.len() + 2 {
        return value_span.clone();
    }
    base + start..base + start + len
}

/// Whitespace-separated words with their byte offsets (the cron parser's splitter).
fn words(s: &str) -> Vec<(usize, &str)> {
    crate::cron::split_fields(s)
}

fn char_span_to_bytes(text: &str, offset: usize, len: usize) -> Span {
    // kdl reports diagnostic offsets in bytes for v2 documents; clamp to a char boundary anyway.
    let mut start = offset.min(text.len());
    while start > 0 && !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (offset + len).min(text.len()).max(start);
    while end < text.len() && !text.is_char_boundary(end) {
        end += 1;
    }
    start..end
}

fn lowercase_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str().trim_end_matches('.'),
        None => String::new(),
    }
}

/// `30s`, `90m`, `6h`, `1d`, `1h30m` into seconds.
pub fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    let mut last_unit = u64::MAX;
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return None,
        };
        // Units must shrink left to right (`1h30m`, not `30m1h`), and each needs a number.
        if num.is_empty() || unit >= last_unit {
            return None;
        }
        last_unit = unit;
        let n: u64 = num.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        num.clear();
    }
    if !num.is_empty() || total > 366 * 86400 {
        return None;
    }
    Some(total)
}

/// `HH:MM` into minutes of day; `24:00` only where an end of day is allowed.
pub fn parse_time(s: &str, allow_24: bool) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: u16 = h.parse().ok()?;
    let m: u16 = m.parse().ok()?;
    if m > 59 || h > 24 || (h == 24 && (m != 0 || !allow_24)) {
        return None;
    }
    Some(h * 60 + m)
}

// One definition with the plan crate's selectors.
pub use crate::plan::select::{is_name, is_sql_ident, normalize_path};

fn join_path(dir: &str, file: &str) -> String {
    let file = normalize_path(file);
    if dir.is_empty() || file.starts_with('/') {
        file
    } else {
        format!("{dir}/{file}")
    }
}

/// Why a known PostgreSQL type cannot be a sync column: PostgreSQL would refuse it, or stir
/// cannot export into it without losing or corrupting values.
pub struct TypeProblem {
    pub message: String,
    pub label: &'static str,
    pub help: String,
}

/// The problem of a normalized type (see [`normalize_pg_type`]), if any.
pub fn pg_type_problem(ty: &str) -> Option<TypeProblem> {
    let problem = |message: String, label: &'static str, help: String| {
        Some(TypeProblem {
            message,
            label,
            help,
        })
    };
    if let Some(elem) = ty.strip_suffix("[]") {
        // Array elements are exported as ClickHouse text (`toString`), not in bytea's hex
        // form: a value starting with `\x` or holding a backslash would arrive altered.
        return match elem {
            "bytea" => problem(
                format!("stir cannot export into `{ty}`: array elements are exported as text, so some byte strings would arrive altered"),
                "array of bytea",
                "declare `bytea` for one value per row, or `text[]` with the elements as hex text: `expr=\"arrayMap(x -> hex(x), COL)\"`".into(),
            ),
            _ => pg_type_problem(elem),
        };
    }
    let (base, args) = ty.split_once('(')?;
    let nums: Vec<u32> = args
        .trim_end_matches(')')
        .split(',')
        .filter_map(|a| a.parse().ok())
        .collect();
    match (base, nums.as_slice()) {
        ("numeric", [p, ..]) if !(1..=1000).contains(p) => problem(
            format!("`{ty}` has a precision of {p}; PostgreSQL allows 1 to 1000"),
            "invalid precision",
            "write numeric(p,s) with p the digits in all (1 to 1000) and s those after the point, e.g. numeric(12,2)".into(),
        ),
        ("numeric", [p, s]) if s > p => problem(
            format!("`{ty}` has more digits after the point ({s}) than in all ({p})"),
            "scale above precision",
            format!("numeric(p,s) holds p digits, s of them after the point: did you mean numeric({s},{p})?"),
        ),
        ("varchar" | "char", [0]) => problem(
            format!("`{ty}` holds no characters; PostgreSQL wants a length of at least 1"),
            "zero length",
            format!("give a length, e.g. `{base}(64)`, or use `text`"),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kdl_reader::testing::parsed;

    /// Pieces parse to the whole parse's nodes and spans, or (when a piece fails) to the
    /// whole parse's errors: for every manifest in the repository and for texts made to
    /// tempt a wrong cut (line continuations, slash-dashes, multi-line strings and comments).
    #[test]
    fn a_manifest_parsed_in_pieces_is_the_whole_parse() {
        let mut texts: Vec<String> = crate::load::repository_files(".kdl")
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect();
        assert!(texts.len() > 20);
        let tricky = [
            "a 1\nb \\\nc 2\nd 3\n",
            "a 1\nb \\ // more\nc 2\nd 3\n",
            "a 1\nb \\ /* more */\nc 2\nd 3\n",
            "a 1\n/-\nb 2\nc 3\nd 4\n",
            "a 1\n/- \nb 2\nc 3\nd 4\n",
            "a \"\"\"\nb 2\nc 3\n\"\"\"\nd 4\ne 5\n",
            "a #\"\"\"\nb 2\nc 3\n\"\"\"#\nd 4\ne 5\n",
            "a 1 /*\nb 2\nc 3 */\nd 4\ne 5\n",
            "a {\nb 2\nc 3\n}\nd 4\ne 5\n",
            "a 1\n(t)\nb 2\nc 3\nd 4\n",
            "a 1\r\nb 2\r\nc \"é\"\r\nd 4\r\n",
            "a 1\nb {\nc 2\nd 3\ne 4\n",
            "a 1\nb 2\nc }\nd 3\ne 4\n",
        ];
        texts.extend(tricky.iter().map(|t| t.repeat(3)));
        // What `stir check` parses: within the limits, on the parser's stack.
        texts.retain(|t| crate::load::kdl_limits(t).is_none());
        std::thread::Builder::new()
            .stack_size(crate::load::PARSE_STACK_BYTES)
            .spawn(move || compare_pieces(&texts))
            .unwrap()
            .join()
            .unwrap();
    }

    fn compare_pieces(texts: &[String]) {
        for text in texts {
            let whole = parsed(&KdlDocument::parse_v2(text));
            for pieces in 2..=12 {
                let in_pieces = parsed(&parse_in_pieces(text, pieces));
                assert!(
                    in_pieces == whole,
                    "{pieces} pieces of\n{text}\n{}",
                    similar::TextDiff::from_lines(&whole, &in_pieces).unified_diff()
                );
            }
        }
    }

    #[test]
    fn impossible_column_types() {
        for ok in [
            "numeric(12,2)",
            "numeric(1000)",
            "numeric(5,5)",
            "varchar(1)",
            "text[]",
            "timestamptz[]",
            "jsonb[]",
        ] {
            assert!(pg_type_problem(ok).is_none(), "{ok}");
        }
        for bad in [
            "numeric(2,5)",
            "numeric(0)",
            "numeric(1001,2)",
            "varchar(0)",
            "char(0)",
            "bytea[]",
            "numeric(2,5)[]",
        ] {
            assert!(pg_type_problem(bad).is_some(), "{bad}");
        }
        assert!(pg_type_problem("numeric(2,5)")
            .unwrap()
            .help
            .contains("numeric(5,2)"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90m"), Some(5400));
        assert_eq!(parse_duration("6h"), Some(21600));
        assert_eq!(parse_duration("1d"), Some(86400));
        assert_eq!(parse_duration("30s"), Some(30));
        assert_eq!(parse_duration("1h30m"), Some(5400));
        for bad in [
            "",
            "m",
            "90",
            "1.5h",
            "30m1h",
            "-1m",
            "1w",
            "99999999999999999999d",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("19:00", false), Some(1140));
        assert_eq!(parse_time("00:00", false), Some(0));
        assert_eq!(parse_time("24:00", true), Some(1440));
        for bad in ["24:00", "7:00", "19:60", "25:00", "1900", "ab:cd"] {
            assert_eq!(parse_time(bad, false), None, "{bad}");
        }
    }

    /// `to="24:00"` is midnight (minute 0, a window that wraps to it); from 00:00 it would
    /// be the whole day, refused with a fix.
    #[test]
    fn a_blackout_to_24_00_ends_at_midnight() {
        let mut out = Vec::new();
        let text = "project p\nblackout late from=\"22:30\" to=\"24:00\"\nblackout day from=\"00:00\" to=\"24:00\"\n";
        let m = parse(text, FileId(0), &mut out);
        assert_eq!(m.blackouts.len(), 1);
        assert_eq!((m.blackouts[0].from, m.blackouts[0].to), (1350, 0));
        let w = crate::schedule::DailyWindow { from: 1350, to: 0 };
        assert!(w.contains(1439) && w.contains(1350) && !w.contains(0) && !w.contains(1349));
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].message.contains("whole day"), "{}", out[0].message);
        assert!(out[0].help.as_deref().unwrap().contains("enabled=#false"));
    }

    /// A manifest of a project line and `staging`, compiled with no files around.
    fn compile_staging(staging: &str) -> crate::Compiled {
        let text = format!("project \"p\"\n{staging}\n");
        crate::compile_bytes(
            "stir.kdl",
            text.as_bytes(),
            std::path::Path::new("."),
            &|_| Err(std::io::Error::other("no files")),
        )
    }

    /// The sync guard properties: defaults, explicit values and opt-outs.
    #[test]
    fn sync_guards_defaults_and_opt_outs() {
        let sync = |body: &str| {
            let c = compile_staging(&format!("sync s from=m to=t {body}"));
            let errors: Vec<String> = c
                .findings
                .iter()
                .filter(|f| f.code == "stir::invalid_value")
                .map(|f| f.message.clone())
                .collect();
            (c.manifest.syncs.into_iter().next().unwrap(), errors)
        };
        let (s, e) = sync("{ column id type=int8; }");
        assert_eq!(
            (s.max_shrink_pct, s.allow_empty, s.lock_timeout_secs),
            (Some(50.0), false, 5)
        );
        assert!(e.is_empty(), "{e:?}");
        let (s, e) = sync("allow-empty=#true lock-timeout=\"2m\" { max-shrink none; }");
        assert_eq!(
            (s.max_shrink_pct, s.allow_empty, s.lock_timeout_secs),
            (None, true, 120)
        );
        assert!(e.is_empty(), "{e:?}");
        let (s, _) = sync("{ max-shrink \"none\"; }");
        assert_eq!(s.max_shrink_pct, None);
        let (s, _) = sync("{ max-shrink \"10%\"; }");
        assert_eq!(s.max_shrink_pct, Some(10.0));
        for bad in [
            "lock-timeout=\"0s\"",
            "lock-timeout=\"2h\"",
            "lock-timeout=5",
            "{ max-shrink nothing; }",
            "{ max-shrink \"101%\"; }",
            "allow-empty=yes",
        ] {
            let (_, e) = sync(bad);
            assert_eq!(e.len(), 1, "{bad}: {e:?}");
        }
    }

    #[test]
    fn staging_compression() {
        let compile = compile_staging;
        let c = compile("staging s3 bucket=b");
        assert_eq!(
            c.manifest.staging.unwrap().compression,
            StagingCompression::Lz4
        );
        let c = compile("staging s3 bucket=b compression=none");
        assert_eq!(
            c.manifest.staging.unwrap().compression,
            StagingCompression::None
        );
        let c = compile("staging s3 bucket=b compression=lz5");
        let f = c
            .findings
            .iter()
            .find(|f| f.code == "stir::invalid_value")
            .expect("an invalid_value finding");
        assert!(
            f.message.contains("`lz5` is not a staging compression"),
            "{}",
            f.message
        );
        assert!(format!("{:?}", f).contains("lz4"), "did you mean: {f:?}");
    }

    #[test]
    fn staging_keep() {
        let compile = compile_staging;
        let keep = |staging: &str| compile(staging).manifest.staging.unwrap().keep;
        assert_eq!(keep("staging s3 bucket=b"), Some(DEFAULT_STAGING_KEEP));
        assert_eq!(keep("staging s3 bucket=b keep=1"), Some(1));
        assert_eq!(keep("staging s3 bucket=b keep=all"), None);
        for bad in ["keep=0", "keep=-2", "keep=some", "keep=1.5", "keep=#true"] {
            let c = compile(&format!("staging s3 bucket=b {bad}"));
            let f = c
                .findings
                .iter()
                .find(|f| f.code == "stir::invalid_value")
                .unwrap_or_else(|| panic!("{bad}: an invalid_value finding"));
            assert!(f.message.contains("`keep`"), "{bad}: {}", f.message);
        }
    }
}
