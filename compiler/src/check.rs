//! The checks: whole-project rules over the compiled project (tags, ownership, conflicts,
//! syncs and time), each a function from the project to its findings.

use std::collections::BTreeMap;

use crate::diagnostic::{did_you_mean, Finding};
use crate::project::{Compiled, ResolvedStep};

/// Every check over the compiled project; none changes it.
pub fn run(c: &Compiled) -> Vec<Finding> {
    let checks: [fn(&Compiled) -> Vec<Finding>; 7] = [
        unknown_tags,
        ownership,
        disabled_dependencies,
        write_conflicts,
        syncs,
        time,
        plan_size,
    ];
    checks.iter().flat_map(|check| check(c)).collect()
}

/// A plan no runtime would read: the rendered SQL alone, each statement counted once per place
/// the plan holds it, passes the limit `stir-runtime` and `stir plan` keep (an error), or comes
/// within a tenth of it (a warning: names and DDL add more, so `stir plan` may refuse).
fn plan_size(c: &Compiled) -> Vec<Finding> {
    let limit = crate::load::MAX_PLAN_BYTES;
    let mut sizes: Vec<(u64, usize)> = c
        .models
        .iter()
        .enumerate()
        .filter(|(_, m)| !m.disabled)
        .map(|(i, m)| (m.plan_sql_bytes, i))
        .collect();
    let total: u64 = sizes.iter().map(|(b, _)| b).sum();
    if total * 10 <= limit * 9 {
        return Vec::new();
    }
    sizes.sort_by(|a, b| b.cmp(a));
    let mib = |n: u64| n as f64 / (1024.0 * 1024.0);
    let size = |n: u64| match n {
        n if n >= 1024 * 1024 => format!("{:.1} MiB", mib(n)),
        n => format!("{} KiB", n.div_ceil(1024)),
    };
    let name = |i: usize| &c.manifest.models[i].name;
    let largest: Vec<String> = sizes
        .iter()
        .take(3)
        .map(|&(b, i)| format!("`{}` ({})", name(i).text, size(b)))
        .collect();
    let help = format!(
        "each model's SQL is in the plan two to five times (its SELECT and the statements that build it); split the project into manifests of their own (one plan and runtime each, `STIR_PROJECT`), or shorten the largest models: {}",
        largest.join(", ")
    );
    let file = c.manifest_file;
    let span = name(sizes[0].1).span.clone();
    let finding = if total > limit {
        Finding::error(
            "stir::plan_too_big",
            file,
            span,
            format!(
                "the plan would be at least {:.0} MiB, over the {} MiB a runtime reads",
                mib(total),
                limit / (1024 * 1024)
            ),
        )
    } else {
        Finding::warning(
            "stir::plan_too_big",
            file,
            span,
            format!(
                "the plan will be at least {:.0} MiB, close to the {} MiB a runtime reads",
                mib(total),
                limit / (1024 * 1024)
            ),
        )
    };
    vec![finding.label("the largest model").help(help)]
}

/// Every tag a model names is declared.
fn unknown_tags(c: &Compiled) -> Vec<Finding> {
    let file = c.manifest_file;
    let mut out = Vec::new();
    for m in &c.manifest.models {
        for t in &m.tags {
            if !c.names.tags.contains_key(&t.text) {
                out.push(c.names.unknown("tag", t, file));
            }
        }
    }
    out
}

/// One owner per model; every enabled model built by someone.
fn ownership(c: &Compiled) -> Vec<Finding> {
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
                let sname = |o: &crate::project::Owner| c.manifest.schedules[o.schedule].name.text.clone();
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
    out
}

fn disabled_dependencies(c: &Compiled) -> Vec<Finding> {
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
    out
}

/// One writer per PostgreSQL table; a sync or request runs in one schedule only.
fn write_conflicts(c: &Compiled) -> Vec<Finding> {
    let file = c.manifest_file;
    // One table per database: two targets may each have a table of the same name.
    let mut tables: BTreeMap<(Option<&str>, &str, &str), usize> = BTreeMap::new();
    let mut out = Vec::new();
    for (i, s) in c.manifest.syncs.iter().enumerate() {
        let Some(to) = &s.to else { continue };
        // Without a target (reported elsewhere): the schema a plain `serving` would have.
        let (target, schema) =
            crate::target::of(&c.manifest, s).map_or((None, "public"), |t| (t.name, t.schema));
        let key = (target, schema, to.text.as_str());
        if let Some(&prev) = tables.get(&key) {
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
            tables.insert(key, i);
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
    out
}

fn syncs(c: &Compiled) -> Vec<Finding> {
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
        if c.manifest.serving.is_none() && c.manifest.targets.is_empty() {
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
    out.extend(crate::target::check(&c.manifest, file));
    let renderer = c.renderer();
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
        sync_statements(c, &renderer, s, &mut out);
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
    out
}

/// The template environment of the manifest, as `stir plan` builds it.
/// A sync's `enrich` and `delete-where` templates, rendered exactly as `stir plan` renders
/// them (`planner::sync_statements`): template errors and unknown refs, pointed into the
/// manifest string.
fn sync_statements(
    c: &Compiled,
    renderer: &crate::render::Renderer,
    s: &crate::manifest::Sync,
    out: &mut Vec<Finding>,
) {
    let file = c.manifest_file;
    let text = c.files.text(file);
    // Without `serving` or `to` (both reported elsewhere) the table name is a stand-in; the
    // templates are checked all the same.
    let schema = crate::target::of(&c.manifest, s).map_or("public", |t| t.schema);
    let to = s.to.as_ref().map_or(&s.name.text, |t| &t.text);
    let target = crate::planner::sync_target(schema, to);
    for (kind, stmt, rendered) in crate::planner::sync_statements(renderer, s, &target) {
        let at = |inner: std::ops::Range<usize>| inside(text, &stmt.span, &stmt.value, inner);
        match rendered {
            Err(e) => out.push(
                Finding::error(
                    "stir::template",
                    file,
                    at(e.span),
                    format!("sync `{}` {}: {}", s.name.text, kind.keyword(), e.message),
                )
                .label("here")
                .help(format!(
                    "`{}` is a PostgreSQL statement over `{{{{ target }}}}` (the table being built); it also sees `var('name')`",
                    kind.keyword()
                )),
            ),
            Ok((_, reads)) => {
                let spans = crate::render::call_spans(&stmt.value, "ref");
                for name in reads.refs.iter().filter(|r| !c.names.models.contains_key(*r)) {
                    let span = spans
                        .iter()
                        .find(|(a, _)| a.first() == Some(name))
                        .map_or(0..stmt.value.len(), |(_, s)| s.clone());
                    out.push(
                        Finding::error(
                            "stir::unknown_ref",
                            file,
                            at(span),
                            format!(
                                "`ref('{name}')` in a `{}` of sync `{}` names no model",
                                kind.keyword(),
                                s.name.text
                            ),
                        )
                        .label("unknown model")
                        .help(
                            did_you_mean(name, c.names.models.keys().map(String::as_str))
                                .unwrap_or_else(|| "declare the model in a `models` group".into()),
                        ),
                    );
                }
            }
        }
    }
}

/// A byte range inside a string value, mapped back into the manifest text: through the
/// escapes of `"..."`, past the quotes of `#"..."#`, or in a bare value. When the text does not
/// decode to the value (a multi-line string), the whole value's span.
fn inside(
    text: &str,
    value_span: &std::ops::Range<usize>,
    value: &str,
    inner: std::ops::Range<usize>,
) -> std::ops::Range<usize> {
    let whole = value_span.clone();
    let Some(raw) = text.get(whole.clone()) else {
        return whole;
    };
    let hashes = raw.len() - raw.trim_start_matches('#').len();
    let quoted = raw[hashes..].starts_with('"') && !raw[hashes..].starts_with("\"\"\"");
    let (body_at, map) = match (quoted, hashes) {
        (false, 0) => (0, (raw == value).then(|| (0..=value.len()).collect())),
        (false, _) => return whole,
        (true, 0) => (
            1,
            raw.get(1..raw.len() - 1)
                .and_then(|b| unescape_map(b, value)),
        ),
        (true, n) => {
            let body = raw.get(n + 1..raw.len().saturating_sub(n + 1));
            (
                n + 1,
                (body == Some(value)).then(|| (0..=value.len()).collect()),
            )
        }
    };
    let Some(map): Option<Vec<usize>> = map else {
        return whole;
    };
    let at = |i: usize| whole.start + body_at + map[i.min(value.len())];
    at(inner.start)..at(inner.end.max(inner.start))
}

/// For a KDL quoted string's text between the quotes, where each byte of its decoded value
/// (and the end) stands; None unless it decodes to `value`.
fn unescape_map(body: &str, value: &str) -> Option<Vec<usize>> {
    let mut map = Vec::with_capacity(value.len() + 1);
    let mut decoded = String::with_capacity(value.len());
    let mut chars = body.char_indices().peekable();
    while let Some((i, ch)) = chars.next() {
        let out = if ch == '\\' {
            match chars.next()?.1 {
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                '\\' => '\\',
                '"' => '"',
                'b' => '\u{8}',
                'f' => '\u{c}',
                's' => ' ',
                'u' => {
                    if chars.next()?.1 != '{' {
                        return None;
                    }
                    let mut hex = String::new();
                    loop {
                        match chars.next()?.1 {
                            '}' => break,
                            h => hex.push(h),
                        }
                    }
                    char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
                }
                w if w.is_whitespace() => {
                    while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
                        chars.next();
                    }
                    continue;
                }
                _ => return None,
            }
        } else {
            ch
        };
        map.extend(std::iter::repeat_n(i, out.len_utf8()));
        decoded.push(out);
    }
    map.push(body.len());
    (decoded == value).then_some(map)
}

fn when(t: chrono::NaiveDateTime, reference: chrono::NaiveDateTime) -> String {
    if t.date() == reference.date() {
        t.format("%H:%M").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M").to_string()
    }
}

/// The time checks: cron and timezone values, heavy overlaps, blackout overruns, stale reads,
/// irregular crons. Semantics in docs/schedules.md; the analysis itself is `schedule.rs`.
fn time(c: &Compiled) -> Vec<Finding> {
    use crate::schedule::{self, Tier, Zone};
    let file = c.manifest_file;
    let mut out = Vec::new();
    let zone = match &c.manifest.project {
        Some(p) => match Zone::parse(&p.timezone.value) {
            Some(z) => z,
            None => {
                out.push(
                    Finding::error("stir::invalid_value", file, p.timezone.span.clone(), format!("`{}` is not a timezone", p.timezone.value))
                        .label("unknown timezone")
                        .help("use an IANA name like \"Asia/Kolkata\", \"UTC\", or a fixed offset like \"+05:30\""),
                );
                Zone::Fixed(0)
            }
        },
        None => Zone::Fixed(0),
    };
    // Tiers of enabled, first-declared schedules that have a valid cron and timeout.
    let mut tiers: Vec<(usize, Tier)> = Vec::new();
    for (si, s) in c.manifest.schedules.iter().enumerate() {
        let Some(cron_v) = &s.cron else { continue };
        let cron = match crate::cron::Cron::parse(&cron_v.value) {
            Ok(cr) => cr,
            Err(e) => {
                out.push(
                    Finding::error("stir::invalid_value", file, inside(c.files.text(file), &cron_v.span, &cron_v.value, e.span.clone()), format!("invalid cron `{}`: {}", cron_v.value, e.message))
                        .label("here")
                        .help(e.help.clone().unwrap_or_else(|| "cron has 5 fields: minute hour day-of-month month day-of-week, e.g. \"0 19 * * *\"".into())),
                );
                continue;
            }
        };
        if !s.enabled || c.names.schedules.get(&s.name.text) != Some(&si) {
            continue;
        }
        for irr in cron.irregular_steps() {
            out.push(
                Finding::warning(
                    "stir::irregular_cron",
                    file,
                    inside(
                        c.files.text(file),
                        &cron_v.span,
                        &cron_v.value,
                        irr.span.clone(),
                    ),
                    format!("schedule `{}`: {}", s.name.text, irr.message),
                )
                .label(format!("uneven {}", irr.field))
                .help(irr.help.clone()),
            );
        }
        if !cron.fires_ever() {
            out.push(
                Finding::warning(
                    "stir::irregular_cron",
                    file,
                    cron_v.span.clone(),
                    format!(
                        "schedule `{}` never fires: `{}` matches no date",
                        s.name.text, cron_v.value
                    ),
                )
                .label("never fires")
                .help("check the day-of-month and month fields (e.g. February has no 30th)"),
            );
        }
        let Some(timeout) = s.timeout_secs.filter(|&t| t > 0) else {
            continue;
        };
        tiers.push((si, tier(c, s, cron, timeout)));
    }
    let sched = |si: usize| &c.manifest.schedules[si];
    let cron_span = |si: usize| {
        sched(si)
            .cron
            .as_ref()
            .map_or(sched(si).name.span.clone(), |v| v.span.clone())
    };

    // Heavy overlaps.
    let heavy: Vec<(usize, Tier)> = tiers.iter().filter(|(_, t)| t.heavy).cloned().collect();
    let heavy_tiers: Vec<Tier> = heavy.iter().map(|(_, t)| t.clone()).collect();
    for (i, j, o) in schedule::heavy_overlaps(&heavy_tiers, &zone) {
        let (si, sj) = (heavy[i].0, heavy[j].0);
        let (a, b) = (&heavy_tiers[i], &heavy_tiers[j]);
        out.push(
            Finding::error(
                "stir::schedule_overlap",
                file,
                sched(sj).name.span.clone(),
                format!(
                    "heavy schedules `{}` (fired {}, runs to {}) and `{}` (fired {}, runs to {}) can both run at {}",
                    a.name,
                    when(o.a_fire, o.instant),
                    when(o.a_end, o.instant),
                    b.name,
                    when(o.b_fire, o.instant),
                    when(o.b_end, o.instant),
                    o.instant.format("%Y-%m-%d %H:%M"),
                ),
            )
            .label("overlaps")
            .note(sched(si).name.span.clone(), "the other heavy schedule")
            .help(schedule::suggest_fix(a, b, &o)),
        );
    }

    // Blackout overruns.
    for (si, t) in &tiers {
        let s = sched(*si);
        for b in &s.skip {
            let Some(&bi) = c.names.blackouts.get(&b.text) else {
                continue;
            };
            let bo = &c.manifest.blackouts[bi];
            let w = blackout_window(c, bi);
            if let Some(o) = schedule::blackout_overrun(t, &w, &zone) {
                // The timeout that fits is the shortest gap from any fire to the blackout's start.
                let gap = t
                    .fire_times()
                    .iter()
                    .filter(|&&f| !w.contains(f))
                    .map(|&f| (bo.from as i64 - f as i64).rem_euclid(1440))
                    .filter(|&g| g > 0)
                    .min()
                    .unwrap_or((o.blackout_start - o.fire).num_minutes());
                out.push(
                    Finding::warning(
                        "stir::blackout_overrun",
                        file,
                        b.span.clone(),
                        format!(
                            "schedule `{}` skips blackout `{}` ({}-{}) but its run fired at {} may last until {}, into the blackout",
                            s.name.text,
                            b.text,
                            hhmm(bo.from),
                            hhmm(bo.to),
                            o.fire.format("%H:%M"),
                            when(o.end, o.fire),
                        ),
                    )
                    .label("overrun into this blackout")
                    .note(cron_span(*si), format!("fires at {}", o.fire.format("%H:%M")))
                    .help(format!(
                        "lower the timeout to timeout=\"{gap}m\" (the last fire before {} is {gap}m before it), or skip fires that start less than {} before {} (a blackout from {} to {})",
                        hhmm(bo.from),
                        fmt_minutes(t.timeout_min as i64),
                        hhmm(bo.from),
                        hhmm(((bo.from as i64 - t.timeout_min as i64 + 1).rem_euclid(1440)) as u16),
                        hhmm(bo.to),
                    )),
                );
            }
        }
    }

    // Stale reads: a sync exporting a model that another schedule may still be rebuilding.
    let tier_of = |si: usize| tiers.iter().find(|(x, _)| *x == si).map(|(_, t)| t);
    for (ri, steps) in c.steps.iter().enumerate() {
        let Some(reader) = tier_of(ri) else { continue };
        for step in steps {
            let ResolvedStep::Sync(sync_i) = step else {
                continue;
            };
            let sync = &c.manifest.syncs[*sync_i];
            let Some(m) = sync.from.as_ref().and_then(|f| c.names.models.get(&f.text)) else {
                continue;
            };
            for owner in c.owners.get(m).map(Vec::as_slice).unwrap_or_default() {
                if owner.schedule == ri {
                    continue;
                }
                let Some(ot) = tier_of(owner.schedule) else {
                    continue;
                };
                if let Some(o) = schedule::may_run_during_fire(ot, reader, &zone) {
                    let span = sched(ri)
                        .steps
                        .iter()
                        .find(|st| matches!(&st.kind, crate::manifest::StepKind::Sync(n) if n.text == sync.name.text))
                        .map_or(sched(ri).name.span.clone(), |st| st.span.clone());
                    out.push(
                        Finding::warning(
                            "stir::stale_read",
                            file,
                            span,
                            format!(
                                "sync `{}` in `{}` (fired {}) exports `{}` while `{}` (fired {}, runs to {}) may still be rebuilding it, first at {}",
                                sync.name.text,
                                reader.name,
                                when(o.b_fire, o.instant),
                                c.manifest.models[*m].name.text,
                                ot.name,
                                when(o.a_fire, o.instant),
                                when(o.a_end, o.instant),
                                o.instant.format("%Y-%m-%d %H:%M"),
                            ),
                        )
                        .label("may export a half-finished rebuild")
                        .help(format!(
                            "move `sync {}` into `{}` after its `run` step, so it exports the table the run just built",
                            sync.name.text, ot.name
                        )),
                    );
                }
            }
        }
    }
    out
}

fn hhmm(m: u16) -> String {
    format!("{:02}:{:02}", m / 60 % 24, m % 60)
}

fn fmt_minutes(m: i64) -> String {
    if m % 60 == 0 {
        format!("{}h", m / 60)
    } else {
        format!("{m}m")
    }
}

/// The enabled schedules as analysis tiers, with the project zone and blackouts: what
/// `stir timeline` draws. Schedules with an invalid cron or timeout are left out (check reports them).
pub fn tiers(
    c: &Compiled,
) -> (
    crate::schedule::Zone,
    Vec<crate::schedule::Tier>,
    Vec<crate::timeline::Blackout>,
) {
    use crate::schedule::Zone;
    let zone = c
        .manifest
        .project
        .as_ref()
        .and_then(|p| Zone::parse(&p.timezone.value))
        .unwrap_or(Zone::Fixed(0));
    let tiers = c
        .manifest
        .schedules
        .iter()
        .filter(|s| s.enabled)
        .filter_map(|s| {
            let cron = crate::cron::Cron::parse(&s.cron.as_ref()?.value).ok()?;
            let timeout = s.timeout_secs.filter(|&t| t > 0)?;
            Some(tier(c, s, cron, timeout))
        })
        .collect();
    let blackouts = c
        .manifest
        .blackouts
        .iter()
        .enumerate()
        .map(|(i, b)| crate::timeline::Blackout {
            name: b.name.text.clone(),
            window: blackout_window(c, i),
        })
        .collect();
    (zone, tiers, blackouts)
}

/// A schedule as the time analysis sees it: cron, timeout in whole minutes (rounded up), and
/// its skip blackouts as daily windows.
fn tier(
    c: &Compiled,
    s: &crate::manifest::Schedule,
    cron: crate::cron::Cron,
    timeout_secs: u64,
) -> crate::schedule::Tier {
    let skip = s
        .skip
        .iter()
        .filter_map(|b| c.names.blackouts.get(&b.text))
        .map(|&bi| blackout_window(c, bi))
        .collect();
    crate::schedule::Tier::new(&s.name.text, cron, timeout_secs, s.heavy, skip)
}

fn blackout_window(c: &Compiled, bi: usize) -> crate::schedule::DailyWindow {
    crate::schedule::DailyWindow {
        from: c.manifest.blackouts[bi].from,
        to: c.manifest.blackouts[bi].to,
    }
}
