//! The models stage: every model file read, rendered (both ways when incremental) and
//! scanned for hidden references, on every core; what that gives becomes files, findings and
//! [`CompiledModel`]s in model order, as one thread would make them.

use crate::diagnostic::{did_you_mean, Finding};
use crate::manifest::Materialized;
use crate::parallel::{parallel_map, Spread};
use crate::project::{load_text, Compiled, CompiledModel, Keep, ReadFile, Unread};
use crate::render::{self, Renderer};
use crate::sqlscan;

/// What reading, rendering and scanning one model file gives; made on any thread.
struct ModelWork {
    /// The file's shown name and text.
    file: Result<(String, String), Unread>,
    /// Per variant (`is_incremental()` false, then true), up to the first that fails.
    renders: Vec<(bool, render::Rendered)>,
    hidden: Vec<sqlscan::Mention>,
    /// What the renders take in a plan at least (counted here: a check keeps no SQL).
    plan_bytes: u64,
}

/// Read, render and scan every model file; the models' files, findings and rendered SQL go
/// into `c`.
pub fn render(c: &mut Compiled, read: &ReadFile, keep: Keep) {
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
                        plan_bytes: 0,
                    });
                };
                let variants: &[bool] = if m.materialized == Materialized::Incremental {
                    &[false, true]
                } else {
                    &[false]
                };
                let mut renders = Vec::new();
                let mut plan_bytes = 0;
                for &incremental in variants {
                    let mut r =
                        renderer.render(&m.name.text, Some(&m.name.text), source, incremental);
                    // Kept for the plan, without the spare half of a doubling buffer (a
                    // shrink in place, no copy); not kept at all when only findings are.
                    if let Ok((sql, _)) = &mut r {
                        plan_bytes +=
                            crate::planner::sql_bytes_in_plan(m.materialized, incremental, sql);
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
                    plan_bytes,
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
                c.findings.push(u.finding(
                    mfile,
                    m.file_span.clone(),
                    &format!("model `{}`", m.name.text),
                    "SQL file expected here",
                    || {
                        format!(
                            "create `{}` with the model's SELECT, or set `file=\"...\"` on the model",
                            m.file
                        )
                    },
                ));
                continue;
            }
        };
        models[i].file = Some(fid);
        models[i].plan_sql_bytes = done.plan_bytes;
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
