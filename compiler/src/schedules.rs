//! The schedules stage: each schedule's steps resolved against the names and the graph (run
//! selectors to dependency-ordered models, `sql` steps rendered), and every model's owners,
//! which the ownership checks read.

use std::collections::{BTreeMap, BTreeSet};

use crate::diagnostic::{did_you_mean, FileId, Finding};
use crate::manifest::{self, StepKind};
use crate::project::{Compiled, Owner, ResolvedStep};
use crate::render::Renderer;
use crate::resolve::{SelectCx, Selector};
use crate::sqlscan;

/// What the stage gives.
pub struct Schedules {
    /// Per schedule, its resolved steps.
    pub steps: Vec<Vec<ResolvedStep>>,
    /// Per model index, the schedules (and steps) that build it.
    pub owners: BTreeMap<usize, Vec<Owner>>,
    pub findings: Vec<Finding>,
}

/// Each schedule's steps resolved: run steps to dependency-ordered models, `sql` steps
/// rendered; and every model's owners.
pub fn resolve(c: &Compiled) -> Schedules {
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
    Schedules {
        steps: all_steps,
        owners,
        findings,
    }
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
