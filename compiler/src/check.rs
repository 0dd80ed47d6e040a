//! Stage 5: whole-project checks: ownership, conflicts, syncs, requests and time.

use std::collections::BTreeMap;

use crate::compile::{read_text, Compiled, CompiledRequest, ReadFile, ResolvedStep};
use crate::diagnostic::{did_you_mean, Finding};

pub fn run(c: &mut Compiled, read: &ReadFile) {
    ownership(c);
    disabled_dependencies(c);
    write_conflicts(c);
    syncs(c);
    requests(c, read);
}

/// One owner per model; every enabled model built by someone.
fn ownership(c: &mut Compiled) {
    let file = c.manifest_file;
    let mut out = Vec::new();
    for (i, m) in c.manifest.models.iter().enumerate() {
        if c.names.models.get(&m.name.text) != Some(&i) || c.models[i].disabled {
            continue;
        }
        let owners = c.owners.get(&i).map(Vec::as_slice).unwrap_or_default();
        let unknown_tag = m.tags.iter().any(|t| !c.names.tags.contains_key(&t.text));
        match owners {
            [] if unknown_tag => {}
            [] => out.push(
                Finding::warning("stir::unscheduled", file, m.name.span.clone(), format!("model `{}` is built by no schedule", m.name.text))
                    .label("never built")
                    .help(match m.tags.first() {
                        Some(t) => format!("add `run tag:{}` to a schedule, or tag the model with a tag that a schedule runs", t.text),
                        None => format!("add `run {}` to a schedule, or give it a tag that a schedule runs", m.name.text),
                    }),
            ),
            [_] => {}
            [first, rest @ ..] => {
                let sname = |o: &crate::compile::Owner| c.manifest.schedules[o.schedule].name.text.clone();
                let listed = owners
                    .iter()
                    .map(|o| format!("`{}` (via `{}`)", sname(o), o.selector.text))
                    .collect::<Vec<_>>();
                let listed = match listed.len() {
                    2 => format!("{} and {}", listed[0], listed[1]),
                    _ => listed.join(", "),
                };
                let second = &rest[0];
                let mut f = Finding::error(
                    "stir::tag_conflict",
                    file,
                    m.name.span.clone(),
                    format!("model `{}` is built by {} schedules: {listed}", m.name.text, owners.len()),
                )
                .label("two owners")
                .help(format!(
                    "keep one owner: add `exclude=\"{}\"` to the run step of `{}`{}",
                    m.name.text,
                    sname(second),
                    if first.selector.text.starts_with("tag:") && first.selector.text != second.selector.text {
                        format!(" (or exclude `{}` there, as the copied Airflow exclude lists did)", first.selector.text)
                    } else {
                        String::new()
                    }
                ));
                for o in owners {
                    f = f.note(o.selector.span.clone(), format!("selected by `{}`", sname(o)));
                }
                out.push(f);
            }
        }
    }
    c.findings.extend(out);
}

fn disabled_dependencies(c: &mut Compiled) {
    let mut out = Vec::new();
    for (i, m) in c.models.iter().enumerate() {
        if m.disabled || c.names.models.get(&c.manifest.models[i].name.text) != Some(&i) {
            continue;
        }
        for &d in &m.deps {
            if !c.models[d].disabled {
                continue;
            }
            let dname = &c.manifest.models[d].name.text;
            let file = m.file.unwrap_or(c.manifest_file);
            let span = m
                .file
                .map(|f| c.files.text(f))
                .and_then(|text| {
                    crate::render::call_spans(text, "ref")
                        .into_iter()
                        .find(|(a, _)| a.first() == Some(dname))
                        .map(|(_, s)| s)
                })
                .unwrap_or_else(|| c.manifest.models[i].name.span.clone());
            let tag = c.manifest.models[d]
                .tags
                .iter()
                .find(|t| {
                    c.names
                        .tags
                        .get(&t.text)
                        .is_some_and(|&ti| c.manifest.tags[ti].disabled)
                })
                .map(|t| t.text.clone())
                .unwrap_or_default();
            out.push(
                Finding::error(
                    "stir::disabled_dependency",
                    file,
                    span,
                    format!("model `{}` reads `{dname}`, which is never built (tag `{tag}` is disabled)", c.manifest.models[i].name.text),
                )
                .label("disabled model")
                .help(format!("stop reading `{dname}`, or remove the `{tag}` tag from it")),
            );
        }
    }
    c.findings.extend(out);
}

/// One writer per PostgreSQL table; a sync or request runs in one schedule only.
fn write_conflicts(c: &mut Compiled) {
    let file = c.manifest_file;
    let schema = c
        .manifest
        .serving
        .as_ref()
        .map_or("public", |s| s.schema.as_str());
    let mut tables: BTreeMap<&str, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for (i, s) in c.manifest.syncs.iter().enumerate() {
        let Some(to) = &s.to else { continue };
        if let Some(&prev) = tables.get(to.text.as_str()) {
            let p = &c.manifest.syncs[prev];
            out.push(
                Finding::error(
                    "stir::write_conflict",
                    file,
                    to.span.clone(),
                    format!("syncs `{}` and `{}` both write PostgreSQL table `{schema}.{}`", p.name.text, s.name.text, to.text),
                )
                .label("second writer")
                .note(p.to.as_ref().map_or(p.name.span.clone(), |t| t.span.clone()), "first writer")
                .help("each table has one sync; write to another table (e.g. `leaderboard_staging`) or merge the syncs"),
            );
        } else {
            tables.insert(&to.text, i);
        }
    }
    let mut used: BTreeMap<(bool, usize), (usize, std::ops::Range<usize>)> = BTreeMap::new();
    for (si, steps) in c.steps.iter().enumerate() {
        let sched = &c.manifest.schedules[si];
        for (k, step) in steps.iter().enumerate() {
            let key = match step {
                ResolvedStep::Sync(i) => (true, *i),
                ResolvedStep::Request(i) => (false, *i),
                _ => continue,
            };
            // Steps resolve one to one with declared steps, minus unresolvable ones.
            let span = sched
                .steps
                .get(k)
                .map_or(sched.name.span.clone(), |s| s.span.clone());
            let span = sched
                .steps
                .iter()
                .find(|s| matches!(&s.kind, crate::manifest::StepKind::Sync(n) if key.0 && n.text == c.manifest.syncs[key.1].name.text)
                    || matches!(&s.kind, crate::manifest::StepKind::Request(n) if !key.0 && n.text == c.manifest.requests[key.1].name.text))
                .map_or(span, |s| s.span.clone());
            if let Some((prev_s, prev_span)) = used.get(&key) {
                let (kind, name) = if key.0 {
                    ("sync", &c.manifest.syncs[key.1].name.text)
                } else {
                    ("request", &c.manifest.requests[key.1].name.text)
                };
                if *prev_s == si {
                    continue;
                }
                out.push(
                    Finding::error(
                        "stir::write_conflict",
                        file,
                        span,
                        format!(
                            "{kind} `{name}` runs in two schedules: `{}` and `{}`",
                            c.manifest.schedules[*prev_s].name.text, sched.name.text
                        ),
                    )
                    .label("second schedule")
                    .note(prev_span.clone(), "first schedule")
                    .help(format!(
                        "run `{name}` from one schedule only; two writers race on the same table"
                    )),
                );
            } else {
                used.insert(key, (si, span));
            }
        }
    }
    c.findings.extend(out);
}

fn syncs(c: &mut Compiled) {
    let file = c.manifest_file;
    let mut out = Vec::new();
    if !c.manifest.syncs.is_empty() {
        if c.manifest.staging.is_none() {
            out.push(
                Finding::error("stir::missing_node", file, c.manifest.syncs[0].name.span.clone(), "syncs need a `staging s3` node")
                    .label("sync without staging")
                    .help("add `staging s3 bucket=my-bucket prefix=\"stir/tmp\"`: syncs stage their rows in S3"),
            );
        }
        if c.manifest.serving.is_none() {
            out.push(
                Finding::error(
                    "stir::missing_node",
                    file,
                    c.manifest.syncs[0].name.span.clone(),
                    "syncs need a `serving postgres` node",
                )
                .label("sync without serving")
                .help("add `serving postgres schema=public`"),
            );
        }
    }
    for s in &c.manifest.syncs {
        if let Some(from) = &s.from {
            match c.names.models.get(&from.text) {
                None => out.push(c.names.unknown("model", from, file)),
                Some(&m) if c.models[m].disabled => out.push(
                    Finding::error(
                        "stir::disabled_dependency",
                        file,
                        from.span.clone(),
                        format!(
                            "sync `{}` exports `{}`, which is never built",
                            s.name.text, from.text
                        ),
                    )
                    .label("disabled model")
                    .help("export a model that is built, or remove its disabled tag"),
                ),
                _ => {}
            }
        }
        if s.columns.is_empty() {
            out.push(
                Finding::error(
                    "stir::missing_property",
                    file,
                    s.name.span.clone(),
                    format!("sync `{}` declares no columns", s.name.text),
                )
                .label("no columns")
                .help("declare each PostgreSQL column: `column id type=int8`"),
            );
        }
        let mut seen: BTreeMap<&str, &crate::manifest::Name> = BTreeMap::new();
        for col in &s.columns {
            if let Some(prev) = seen.insert(&col.name.text, &col.name) {
                out.push(
                    Finding::error(
                        "stir::duplicate",
                        file,
                        col.name.span.clone(),
                        format!(
                            "column `{}` is declared twice in sync `{}`",
                            col.name.text, s.name.text
                        ),
                    )
                    .label("second declaration")
                    .note(prev.span.clone(), "first declared here")
                    .help("remove one of them"),
                );
            }
        }
        let known: Vec<&str> = s.columns.iter().map(|c| c.name.text.as_str()).collect();
        let refs = s
            .key
            .iter()
            .chain(s.indexes.iter().flat_map(|i| i.columns.iter()));
        for n in refs {
            if !known.contains(&n.text.as_str()) {
                out.push(
                    Finding::error(
                        "stir::unknown_column",
                        file,
                        n.span.clone(),
                        format!("sync `{}` has no column `{}`", s.name.text, n.text),
                    )
                    .label("no such column")
                    .help(
                        did_you_mean(&n.text, known.iter().copied())
                            .unwrap_or_else(|| format!("declare it: `column {} type=...`", n.text)),
                    ),
                );
            }
        }
    }
    c.findings.extend(out);
}

fn requests(c: &mut Compiled, read: &ReadFile) {
    let file = c.manifest_file;
    let mut compiled = vec![CompiledRequest::default(); c.manifest.requests.len()];
    let renderer = crate::render::Renderer::new(
        &c.manifest.warehouse.database,
        c.manifest
            .vars
            .iter()
            .map(|v| (v.name.text.clone(), v.value.clone()))
            .collect(),
    );
    for (i, r) in c.manifest.requests.clone().iter().enumerate() {
        if let Some(ep) = &r.endpoint {
            if !c.names.endpoints.contains_key(&ep.text) {
                let f = c.names.unknown("endpoint", ep, file);
                c.findings.push(f);
            }
        }
        if let Some(body) = &r.body {
            // Bodies see `row`; any column may be named, so only syntax is checked here.
            let env = minijinja::Environment::new();
            if let Err(e) = env.template_from_str(&body.value) {
                c.findings.push(
                    Finding::error("stir::template", file, body.span.clone(), format!("request `{}` body: {e}", r.name.text))
                        .label("invalid template")
                        .help("the body is a Jinja template over `row`, e.g. {\"shortcode\": \"{{ row.shortcode }}\"}"),
                );
            }
        }
        let Some(q) = &r.query else { continue };
        let fid = match read_text(c, &q.value, read) {
            Ok(f) => f,
            Err(why) => {
                c.findings.push(
                    Finding::error(
                        "stir::missing_file",
                        file,
                        q.span.clone(),
                        format!("request `{}`: {why}", r.name.text),
                    )
                    .label("query file expected here")
                    .help("create the file with the request's SELECT"),
                );
                continue;
            }
        };
        compiled[i].file = Some(fid);
        let source = c.files.text(fid).to_string();
        match renderer.render(&r.name.text, &r.name.text, &source, false) {
            Ok((sql, reads)) => {
                compiled[i].sql = Some(sql);
                for name in reads.refs {
                    if !c.names.models.contains_key(&name) {
                        let span = crate::render::call_spans(&source, "ref")
                            .into_iter()
                            .find(|(a, _)| a.first() == Some(&name))
                            .map_or(0..0, |(_, s)| s);
                        c.findings.push(
                            Finding::error(
                                "stir::unknown_ref",
                                fid,
                                span,
                                format!(
                                    "`ref('{name}')` in request `{}` names no model",
                                    r.name.text
                                ),
                            )
                            .label("unknown model")
                            .help(
                                did_you_mean(&name, c.names.models.keys().map(String::as_str))
                                    .unwrap_or_else(|| "declare the model".into()),
                            ),
                        );
                    }
                }
            }
            Err(e) => c.findings.push(
                Finding::error(
                    "stir::template",
                    fid,
                    e.span,
                    format!("request `{}`: {}", r.name.text, e.message),
                )
                .label("here")
                .help("queries see `ref()`, `source()` and `var()`"),
            ),
        }
    }
    c.requests = compiled;
}
