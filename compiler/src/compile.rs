//! The pipeline driver: read files, then manifest -> names -> templates -> graph -> schedules ->
//! checks. Only this file (and the CLI) touches the file system.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::check;
use crate::diagnostic::{self, did_you_mean, FileId, Files, Finding};
use crate::graph::ModelGraph;
use crate::load::{self, ReadError, MAX_SOURCE_BYTES};
use crate::manifest::{self, Manifest, Materialized, StepKind};
use crate::parallel::{parallel_map, Spread};
use crate::project::{load_text, Unread};
pub use crate::project::{
    Compiled, CompiledModel, CompiledRequest, Keep, Owner, ReadFile, ResolvedStep,
};
use crate::render::{self, Renderer};
use crate::resolve::{Names, SelectCx, Selector};
use crate::sqlscan;

/// Failures that stop stir before it can check anything (exit code 2).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LoadError {
    #[error("manifest `{path}` does not exist")]
    #[diagnostic(code(stir::no_manifest), help("run stir in the folder that holds stir.kdl, or pass its path: `stir check path/to/stir.kdl`"))]
    Missing { path: String },
    #[error("`{path}` is a directory, not a manifest")]
    #[diagnostic(
        code(stir::no_manifest),
        help("pass the manifest file itself, e.g. `{path}/stir.kdl`")
    )]
    Directory { path: String },
    #[error("cannot read manifest `{path}`: {reason}")]
    #[diagnostic(code(stir::unreadable), help("check the file's permissions"))]
    Unreadable { path: String, reason: String },
    #[error("manifest `{path}` {why}")]
    #[diagnostic(
        code(stir::unreadable),
        help("pass the manifest file itself: stir reads only regular files of at most 16 MiB, so a FIFO, a device or an endless file cannot stall a check")
    )]
    Refused { path: String, why: load::ReadError },
}

/// Read and check a manifest and every file it names.
pub fn compile_path(path: &Path) -> Result<Compiled, LoadError> {
    compile_path_keeping(path, Keep::Everything)
}

/// [`compile_path`], keeping only what `keep` says.
pub fn compile_path_keeping(path: &Path, keep: Keep) -> Result<Compiled, LoadError> {
    let shown = path.display().to_string();
    let bytes = load::read_file(path, MAX_SOURCE_BYTES).map_err(|e| match e {
        ReadError::NotFound => LoadError::Missing {
            path: shown.clone(),
        },
        ReadError::Directory => LoadError::Directory {
            path: shown.clone(),
        },
        ReadError::Io(e) => LoadError::Unreadable {
            path: shown.clone(),
            reason: e.to_string(),
        },
        why => LoadError::Refused {
            path: shown.clone(),
            why,
        },
    })?;
    let root = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let read = |p: &Path| load::read_file(p, MAX_SOURCE_BYTES).map_err(std::io::Error::from);
    Ok(compile_bytes_keeping(&shown, &bytes, &root, &read, keep))
}

pub fn compile_bytes(name: &str, bytes: &[u8], root: &Path, read: &ReadFile) -> Compiled {
    compile_bytes_keeping(name, bytes, root, read, Keep::Everything)
}

fn compile_bytes_keeping(
    name: &str,
    bytes: &[u8],
    root: &Path,
    read: &ReadFile,
    keep: Keep,
) -> Compiled {
    let mut files = Files::default();
    let mut findings = Vec::new();
    let (text, bad_utf8) = match std::str::from_utf8(bytes) {
        Ok(t) => (t.to_string(), None),
        Err(e) => (
            String::from_utf8_lossy(bytes).into_owned(),
            Some(e.valid_up_to()),
        ),
    };
    let file = files.add(name.to_string(), text);
    let manifest = if let Some(at) = bad_utf8 {
        findings.push(
            Finding::error(
                "stir::syntax",
                file,
                at..at + 1,
                "the manifest is not valid UTF-8",
            )
            .label("invalid byte")
            .help("save stir.kdl as UTF-8"),
        );
        Manifest {
            file: Some(file),
            ..Manifest::default()
        }
    } else {
        let text = files.text(file).to_string();
        parse_bounded(&text, file, &mut findings)
    };
    let names = Names::build(&manifest, file, &mut findings);
    let mut c = Compiled {
        root: root.to_path_buf(),
        files,
        manifest_file: file,
        manifest,
        names,
        models: Vec::new(),
        requests: Vec::new(),
        graph: ModelGraph::default(),
        steps: Vec::new(),
        owners: BTreeMap::new(),
        findings,
        macros: render::Macros::default(),
    };
    check_tags(&mut c);
    crate::macros::load(&mut c, read);
    render_models(&mut c, read, keep);
    build_graph(&mut c);
    resolve_schedules(&mut c);
    check::run(&mut c, read);
    diagnostic::sort(&mut c.findings, &c.files);
    c.findings.dedup();
    c
}

/// Parse the manifest unless it is too big or too deep for the KDL parser, which recurses per
/// block, per comment piece and per top-level error. The parse runs on a thread with a known
/// stack, so the limits hold whatever thread calls (tests run on 2 MiB stacks).
fn parse_bounded(text: &str, file: FileId, findings: &mut Vec<Finding>) -> Manifest {
    let empty = Manifest {
        file: Some(file),
        ..Manifest::default()
    };
    if text.len() as u64 > MAX_SOURCE_BYTES {
        findings.push(
            Finding::error(
                "stir::unreadable",
                file,
                0..0,
                "the manifest is larger than 16 MiB",
            )
            .label("refused")
            .help("a stir manifest is a few hundred KB at most: check that this is the right file"),
        );
        return empty;
    }
    if let Some(r) = load::kdl_limits(text) {
        findings.push(
            Finding::error("stir::syntax", file, r.span, r.message)
                .label(r.label)
                .help(r.help),
        );
        return empty;
    }
    let parsed = std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("stir-parse".into())
            .stack_size(load::PARSE_STACK_BYTES)
            .spawn_scoped(s, || {
                let mut found = Vec::new();
                let m = manifest::parse(text, file, &mut found);
                (m, found)
            })
            .ok()
            .map(|h| h.join())
    });
    match parsed {
        Some(Ok((m, found))) => {
            findings.extend(found);
            m
        }
        // No thread (resource limits): parse here; the limits still hold on a main thread.
        None => manifest::parse(text, file, findings),
        Some(Err(panic)) => std::panic::resume_unwind(panic),
    }
}

fn check_tags(c: &mut Compiled) {
    let file = c.manifest_file;
    for m in &c.manifest.models {
        for t in &m.tags {
            if !c.names.tags.contains_key(&t.text) {
                c.findings.push(c.names.unknown("tag", t, file));
            }
        }
    }
}

/// What reading, rendering and scanning one model file gives; made on any thread.
struct ModelWork {
    /// The file's shown name and text.
    file: Result<(String, String), Unread>,
    /// Per variant (`is_incremental()` false, then true), up to the first that fails.
    renders: Vec<(bool, render::Rendered)>,
    hidden: Vec<sqlscan::Mention>,
}

fn render_models(c: &mut Compiled, read: &ReadFile, keep: Keep) {
    let vars = c.vars();
    let database = c.manifest.warehouse.database.clone();
    let macros = c.macros.clone();
    let source_dbs = c.source_databases();
    let mfile = c.manifest_file;
    let mut models = vec![CompiledModel::default(); c.manifest.models.len()];
    // Reading, rendering and the hidden-ref scan touch nothing shared: on every core. What
    // they give is turned into files and findings below, in model order, as one thread would.
    let mut work = {
        let (manifest, names, root) = (&c.manifest, &c.names, &c.root);
        let is_model = |n: &str| names.models.contains_key(n);
        // Model rendering recurses with the template: a helper gets a main thread's stack.
        let spread = Spread {
            batch: 16,
            stack_bytes: 8 << 20,
        };
        parallel_map(
            manifest.models.len(),
            spread,
            || Renderer::new(&database, vars.clone(), &macros, source_dbs.clone()),
            |renderer, i| {
                let m = &manifest.models[i];
                if names.models.get(&m.name.text) != Some(&i) {
                    return None; // a duplicate, reported by `Names`
                }
                let file = load_text(root, &m.file, read);
                let Ok((_, source)) = &file else {
                    return Some(ModelWork {
                        file,
                        renders: Vec::new(),
                        hidden: Vec::new(),
                    });
                };
                let variants: &[bool] = if m.materialized == Materialized::Incremental {
                    &[false, true]
                } else {
                    &[false]
                };
                let mut renders = Vec::new();
                for &incremental in variants {
                    let mut r =
                        renderer.render(&m.name.text, Some(&m.name.text), source, incremental);
                    // Kept for the plan, without the spare half of a doubling buffer (a
                    // shrink in place, no copy); not kept at all when only findings are.
                    if let Ok((sql, _)) = &mut r {
                        match keep {
                            Keep::Everything => sql.shrink_to_fit(),
                            Keep::Findings => *sql = String::new(),
                        }
                    }
                    let failed = r.is_err();
                    renders.push((incremental, r));
                    if failed {
                        break;
                    }
                }
                let hidden = sqlscan::hidden_refs(source, &database, &is_model);
                Some(ModelWork {
                    file,
                    renders,
                    hidden,
                })
            },
        )
    };
    for i in 0..c.manifest.models.len() {
        let m = &c.manifest.models[i];
        models[i].disabled = m.tags.iter().any(|t| {
            c.names
                .tags
                .get(&t.text)
                .is_some_and(|&ti| c.manifest.tags[ti].disabled)
        });
        let Some(done) = work[i].take() else {
            continue;
        };
        let fid = match done.file {
            Ok((name, text)) => c.files.add(name, text),
            Err(u) => {
                let help = u.help.unwrap_or_else(|| {
                    format!(
                        "create `{}` with the model's SELECT, or set `file=\"...\"` on the model",
                        m.file
                    )
                });
                c.findings.push(
                    Finding::error(
                        u.code,
                        mfile,
                        m.file_span.clone(),
                        format!("model `{}`: {}", m.name.text, u.why),
                    )
                    .label("SQL file expected here")
                    .help(help),
                );
                continue;
            }
        };
        models[i].file = Some(fid);
        let source = c.files.get(fid).text.clone();
        let mut all_reads = render::Reads::default();
        for (incremental, rendered) in done.renders {
            match rendered {
                Ok((sql, reads)) => {
                    let sql = (keep == Keep::Everything).then_some(sql);
                    if incremental {
                        models[i].sql_incremental = sql;
                    } else {
                        models[i].sql = sql;
                    }
                    for r in reads.refs {
                        if !all_reads.refs.contains(&r) {
                            all_reads.refs.push(r);
                        }
                    }
                    for s in reads.sources {
                        if !all_reads.sources.contains(&s) {
                            all_reads.sources.push(s);
                        }
                    }
                }
                Err(e) => {
                    c.findings.push(
                        Finding::error("stir::template", fid, e.span, format!("model `{}`: {}", m.name.text, e.message))
                            .label("here")
                            .help("models see `ref('model')`, `source('db', 'table')`, `this`, `var('name')`, `is_incremental()` and the macros of the `macros` folders"),
                    );
                }
            }
        }
        // Where a call stands is looked up only for a finding: most files have none.
        let span_of = |name: &str| {
            render::call_spans(&source, "ref")
                .into_iter()
                .find(|(args, _)| args.first().map(String::as_str) == Some(name))
                .map_or(0..0, |(_, s)| s)
        };
        for r in &all_reads.refs {
            match c.names.models.get(r) {
                Some(&d) => {
                    models[i].deps.insert(d);
                }
                None => {
                    let help = did_you_mean(r, c.names.models.keys().map(String::as_str))
                        .unwrap_or_else(|| {
                            "declare the model in a `models` group of the manifest".into()
                        });
                    c.findings.push(
                        Finding::error(
                            "stir::unknown_ref",
                            fid,
                            span_of(r),
                            format!("`ref('{r}')` in model `{}` names no model", m.name.text),
                        )
                        .label("unknown model")
                        .help(help),
                    );
                }
            }
        }
        for (db, table) in &all_reads.sources {
            if c.names.sources.get(db).is_some_and(|t| t.contains(table)) {
                models[i].sources.insert((db.clone(), table.clone()));
            }
            let span = || {
                render::call_spans(&source, "source")
                    .into_iter()
                    .find(|(a, _)| a.len() == 2 && &a[0] == db && &a[1] == table)
                    .map_or(0..0, |(_, s)| s)
            };
            let known = c.names.sources.get(db);
            let problem = match known {
                None => Some((
                    format!("`source('{db}', '{table}')` in model `{}`: no source `{db}`", m.name.text),
                    did_you_mean(db, c.names.sources.keys().map(String::as_str))
                        .unwrap_or_else(|| format!("declare it: `source {db} {{ table {table} }}`")),
                )),
                Some(tables) if !tables.contains(table) => Some((
                    format!("`source('{db}', '{table}')` in model `{}`: source `{db}` has no table `{table}`", m.name.text),
                    did_you_mean(table, tables.iter().map(String::as_str))
                        .unwrap_or_else(|| format!("add `table {table}` to `source {db}`")),
                )),
                _ => None,
            };
            if let Some((message, help)) = problem {
                c.findings.push(
                    Finding::error("stir::unknown_source", fid, span(), message)
                        .label("unknown source table")
                        .help(help),
                );
            }
        }
        // Hidden references: still an edge, so the build order stays right.
        for mention in done.hidden {
            let Some(&d) = c.names.models.get(&mention.model) else {
                continue;
            };
            if d == i {
                continue;
            }
            models[i].deps.insert(d);
            c.findings.push(mention.finding(
                fid,
                mention.span.clone(),
                &format!("model `{}`", m.name.text),
            ));
        }
    }
    c.models = models;
}

fn build_graph(c: &mut Compiled) {
    let deps: Vec<BTreeSet<usize>> = c.models.iter().map(|m| m.deps.clone()).collect();
    let names: Vec<String> = c.model_names().into_iter().map(String::from).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let graph = ModelGraph::new(&deps, &names);
    let cycles = graph.cycles(&names);
    for cycle in cycles {
        let path = cycle
            .iter()
            .map(|&m| format!("`{}`", names[m]))
            .collect::<Vec<_>>()
            .join(" -> ");
        let first = cycle[0];
        let second = cycle.get(1).copied().unwrap_or(first);
        c.findings.push(
            Finding::error(
                "stir::cycle",
                c.manifest_file,
                c.manifest.models[first].name.span.clone(),
                format!("models form a cycle: {path}"),
            )
            .label("on a cycle")
            .help(format!(
                "each model in the path refs the next; remove one ref, e.g. the ref from `{}` to `{}`",
                names[first], names[second]
            )),
        );
    }
    c.graph = graph;
}

fn resolve_schedules(c: &mut Compiled) {
    let file = c.manifest_file;
    let renderer = c.renderer();
    let mut all_steps = Vec::new();
    let mut owners: BTreeMap<usize, Vec<Owner>> = BTreeMap::new();
    let mut findings = Vec::new();
    {
        let cx = c.select_cx();
        for (si, s) in c.manifest.schedules.iter().enumerate() {
            let mut steps = Vec::new();
            for b in &s.skip {
                if !c.names.blackouts.contains_key(&b.text) {
                    findings.push(c.names.unknown("blackout", b, file));
                }
            }
            for (step_i, step) in s.steps.iter().enumerate() {
                match &step.kind {
                    StepKind::Run { select, exclude } => {
                        let mut picked: BTreeMap<usize, &manifest::Name> = BTreeMap::new();
                        let mut failed = false;
                        for sel in select {
                            match eval(&cx, sel, file, &mut findings) {
                                Some(set) => {
                                    for m in set {
                                        picked.entry(m).or_insert(sel);
                                    }
                                }
                                None => failed = true,
                            }
                        }
                        for sel in exclude {
                            if let Some(set) = eval(&cx, sel, file, &mut findings) {
                                for m in set {
                                    picked.remove(&m);
                                }
                            }
                        }
                        picked.retain(|&m, _| !c.models.get(m).is_some_and(|cm| cm.disabled));
                        if picked.is_empty() && !failed {
                            let sel_text = select
                                .iter()
                                .map(|n| n.text.as_str())
                                .collect::<Vec<_>>()
                                .join(" ");
                            findings.push(
                                Finding::error("stir::empty_selection", file, step.span.clone(), format!("`run {sel_text}` in schedule `{}` selects no model", s.name.text))
                                    .label("selects nothing")
                                    .help("check the tags and exclusions: models with a disabled tag are never selected"),
                            );
                        }
                        // A duplicate schedule is already an error; it owns nothing.
                        if s.enabled && c.names.schedules.get(&s.name.text) == Some(&si) {
                            for (&m, sel) in &picked {
                                let list = owners.entry(m).or_default();
                                if !list.iter().any(|o| o.schedule == si) {
                                    list.push(Owner {
                                        schedule: si,
                                        step: step_i,
                                        selector: (*sel).clone(),
                                    });
                                }
                            }
                        }
                        let mut ms: Vec<usize> = picked.into_keys().collect();
                        c.graph.sort(&mut ms);
                        steps.push(ResolvedStep::Run(ms));
                    }
                    StepKind::Sql(sql) => {
                        let rendered = sql_step(
                            c,
                            &renderer,
                            &s.name.text,
                            sql,
                            step.span.clone(),
                            &mut findings,
                        );
                        steps.push(ResolvedStep::Sql(rendered));
                    }
                    StepKind::Sync(n) => match c.names.syncs.get(&n.text) {
                        Some(&i) => steps.push(ResolvedStep::Sync(i)),
                        None => findings.push(c.names.unknown("sync", n, file)),
                    },
                    StepKind::Request(n) => match c.names.requests.get(&n.text) {
                        Some(&i) => steps.push(ResolvedStep::Request(i)),
                        None => findings.push(c.names.unknown("request", n, file)),
                    },
                }
            }
            all_steps.push(steps);
        }
    }
    c.findings.extend(findings);
    c.steps = all_steps;
    c.owners = owners;
}

fn eval(
    cx: &SelectCx,
    sel: &manifest::Name,
    file: FileId,
    out: &mut Vec<Finding>,
) -> Option<BTreeSet<usize>> {
    let parsed = match Selector::parse(&sel.text) {
        Ok(p) => p,
        Err(msg) => {
            out.push(
                Finding::error("stir::invalid_value", file, sel.span.clone(), msg)
                    .label("invalid selector")
                    .help("selectors look like `tag:daily`, `mart_x`, `+mart_x`, `mart_x+` or \"path:models/marts\""),
            );
            return None;
        }
    };
    match cx.eval(&parsed) {
        Ok(set) => Some(set),
        Err(e) => {
            out.push(
                Finding::error(e.code, file, sel.span.clone(), e.message)
                    .label(e.label)
                    .help(e.help),
            );
            None
        }
    }
}

/// A `sql` step is a template like a model (`ref`, `source`, `var`; no `this`), so it follows
/// the warehouse database; a model's table named directly is a hidden reference here too.
fn sql_step(
    c: &Compiled,
    renderer: &Renderer,
    schedule: &str,
    sql: &str,
    span: std::ops::Range<usize>,
    out: &mut Vec<Finding>,
) -> String {
    let file = c.manifest_file;
    for mention in sqlscan::hidden_refs(sql, &c.manifest.warehouse.database, &|n| {
        c.names.models.contains_key(n)
    }) {
        out.push(mention.finding(
            file,
            span.clone(),
            &format!("a `sql` step of schedule `{schedule}`"),
        ));
    }
    match renderer.render(schedule, None, sql, false) {
        Ok((text, reads)) => {
            for r in reads
                .refs
                .iter()
                .filter(|r| !c.names.models.contains_key(*r))
            {
                out.push(
                    Finding::error(
                        "stir::unknown_ref",
                        file,
                        span.clone(),
                        format!(
                            "`ref('{r}')` in a `sql` step of schedule `{schedule}` names no model"
                        ),
                    )
                    .label("unknown model")
                    .help(
                        did_you_mean(r, c.names.models.keys().map(String::as_str))
                            .unwrap_or_else(|| "declare the model in a `models` group".into()),
                    ),
                );
            }
            text
        }
        Err(e) => {
            out.push(
                Finding::error(
                    "stir::template",
                    file,
                    span,
                    format!("`sql` step of schedule `{schedule}`: {}", e.message),
                )
                .label("in this statement")
                .help("`sql` steps see `ref('model')`, `source('db', 'table')`, `var('name')` and the macros of the `macros` folders"),
            );
            sql.to_string()
        }
    }
}
