//! The review of a plan against a previous one, read like `terraform plan`: what is added (+),
//! removed (-) and changed (~), what changed in each, SQL as unified diffs, and the downstream
//! models each changed model rebuilds with the schedules that run them.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::plan::{Plan, Step};

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReviewFormat {
    Human,
    Json,
    /// A pull-request comment (GitHub-flavoured markdown), at most [`COMMENT_LIMIT`] characters.
    Markdown,
}

/// GitHub refuses comments longer than 65,536 characters; the rest is headroom for the
/// workflow's own lines.
pub const COMMENT_LIMIT: usize = 60_000;

/// The first line of every review comment, so a workflow finds and updates its own comment.
pub const COMMENT_MARKER: &str = "<!-- stir plan review -->";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Add,
    Change,
    Remove,
}

impl Action {
    fn sign(self) -> char {
        match self {
            Action::Add => '+',
            Action::Change => '~',
            Action::Remove => '-',
        }
    }
}

/// One changed field: its old and new value, and a unified diff when the value is text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Value,
    pub new: Value,
    pub diff: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Downstream {
    pub model: String,
    pub schedules: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// `project`, `schedule`, `model`, `sync` or `request`.
    pub kind: &'static str,
    pub name: String,
    pub action: Action,
    /// For a change: each field that differs. For an addition: a short description.
    pub fields: Vec<FieldChange>,
    /// Models: the schedules that build it (in the new plan; the old one for a removal).
    pub built_by: Vec<String>,
    /// Changed models: every descendant, with the schedules that build it.
    pub downstream: Vec<Downstream>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub remove: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Review {
    pub previous: String,
    pub changed: bool,
    pub changes: Vec<Change>,
    pub summary: Summary,
}

/// Compare `new` against `old`; `previous` names the old plan in the text.
pub fn review(old: &Plan, new: &Plan, previous: &str) -> Review {
    let mut changes = Vec::new();
    let project_fields = [
        "project",
        "timezone",
        "warehouse",
        "serving",
        "targets",
        "staging",
        "notify",
        "endpoints",
        "blackouts",
    ];
    let (ov, nv) = (to_value(old), to_value(new));
    let pick = |v: &Value| -> Value {
        Value::Object(
            project_fields
                .iter()
                .filter_map(|k| v.get(*k).map(|x| (k.to_string(), x.clone())))
                .collect(),
        )
    };
    let fields = diff_fields(&pick(&ov), &pick(&nv), &project_fields);
    if !fields.is_empty() {
        changes.push(Change {
            kind: "project",
            name: new.project.clone(),
            action: Action::Change,
            fields,
            built_by: vec![],
            downstream: vec![],
        });
    }
    let old_builders = builders(old);
    let new_builders = builders(new);
    let new_children = children(new);

    entities(
        &mut changes,
        "schedule",
        &ov,
        &nv,
        &[
            "cron",
            "timeout_secs",
            "heavy",
            "enabled",
            "retries",
            "retry_all",
            "on_missed",
            "threads",
            "notify",
            "skip",
            "steps",
        ],
        |_, _| (vec![], vec![]),
    );
    entities(
        &mut changes,
        "model",
        &ov,
        &nv,
        &[
            "materialized",
            "tags",
            "deps",
            "file",
            "table",
            "sql",
            "sql_incremental",
            "exists",
            "build",
            "first_build",
            "incremental",
            "full_refresh",
            "cleanup",
        ],
        |name, action| {
            let by = if action == Action::Remove {
                &old_builders
            } else {
                &new_builders
            };
            let built_by = by
                .get(name)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            let downstream = if action == Action::Change {
                descendants(name, &new_children)
                    .into_iter()
                    .map(|m| Downstream {
                        schedules: new_builders
                            .get(&m)
                            .map(|s| s.iter().cloned().collect())
                            .unwrap_or_default(),
                        model: m,
                    })
                    .collect()
            } else {
                vec![]
            };
            (built_by, downstream)
        },
    );
    entities(
        &mut changes,
        "sync",
        &ov,
        &nv,
        &[
            "from",
            "postgres.schema",
            "postgres.table",
            "max_shrink_pct",
            "allow_empty",
            "lock_timeout_ms",
            "keep_backup",
            "target",
            "s3_prefix",
            "clickhouse.select",
            "clickhouse.columns",
            "postgres.prepare",
            "postgres.copy",
            "postgres.transform",
            "postgres.finish",
            "postgres.swap",
            "postgres.drop_old",
            "postgres.rollback",
        ],
        |_, _| (vec![], vec![]),
    );
    entities(
        &mut changes,
        "request",
        &ov,
        &nv,
        &[
            "endpoint",
            "path",
            "limit",
            "concurrency",
            "rate_per_sec",
            "max_failures_pct",
            "file",
            "sql",
            "body",
        ],
        |_, _| (vec![], vec![]),
    );
    let mut summary = Summary::default();
    for c in &changes {
        match c.action {
            Action::Add => summary.add += 1,
            Action::Change => summary.change += 1,
            Action::Remove => summary.remove += 1,
        }
    }
    Review {
        previous: previous.to_string(),
        changed: !changes.is_empty(),
        changes,
        summary,
    }
}

fn to_value(p: &Plan) -> Value {
    serde_json::to_value(p).expect("plan types always serialize")
}

/// Compare the lists `<kind>s` of both plans by name.
fn entities(
    out: &mut Vec<Change>,
    kind: &'static str,
    old: &Value,
    new: &Value,
    order: &[&str],
    extra: impl Fn(&str, Action) -> (Vec<String>, Vec<Downstream>),
) {
    let list = |v: &Value| -> BTreeMap<String, Value> {
        v.get(format!("{kind}s"))
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| Some((i.get("name")?.as_str()?.to_string(), i.clone())))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (o, n) = (list(old), list(new));
    let names: BTreeSet<&String> = o.keys().chain(n.keys()).collect();
    for name in names {
        let (action, fields) = match (o.get(name), n.get(name)) {
            (None, Some(nv)) => (Action::Add, describe(kind, nv)),
            (Some(_), None) => (Action::Remove, vec![]),
            (Some(ov), Some(nv)) => {
                let mut fields = diff_fields(ov, nv, order);
                if kind == "model"
                    && fields
                        .iter()
                        .any(|f| f.field == "sql" || f.field == "sql_incremental")
                {
                    // The statements embed the SQL: its diff already says what changed.
                    fields.retain(|f| {
                        !matches!(
                            f.field.as_str(),
                            "build" | "first_build" | "incremental" | "cleanup" | "exists"
                        )
                    });
                }
                if fields.is_empty() {
                    continue;
                }
                (Action::Change, fields)
            }
            (None, None) => continue,
        };
        let (built_by, downstream) = extra(name, action);
        out.push(Change {
            kind,
            name: name.clone(),
            action,
            fields,
            built_by,
            downstream,
        });
    }
}

/// What an added thing is, as pseudo field changes from null.
fn describe(kind: &str, v: &Value) -> Vec<FieldChange> {
    let keys: &[&str] = match kind {
        "schedule" => &["cron", "timeout_secs", "heavy", "enabled", "steps"],
        "model" => &["materialized", "tags", "deps", "file"],
        "sync" => &["from", "postgres.schema", "postgres.table"],
        "request" => &["endpoint", "path", "limit"],
        _ => &[],
    };
    let flat = flatten(v);
    keys.iter()
        .filter_map(|k| {
            let value = flat.get(*k)?.clone();
            Some(FieldChange {
                field: k.to_string(),
                old: Value::Null,
                new: value,
                diff: None,
            })
        })
        .collect()
}

/// Objects flattened to dotted paths; arrays and scalars are leaves.
fn flatten(v: &Value) -> BTreeMap<String, Value> {
    fn walk(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
        match v {
            Value::Object(map) => {
                for (k, x) in map {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&path, x, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", v, &mut out);
    out
}

/// The fields that differ, in `order` first, then the rest by name (`name` is never compared).
fn diff_fields(old: &Value, new: &Value, order: &[&str]) -> Vec<FieldChange> {
    let (o, n) = (flatten(old), flatten(new));
    let mut keys: Vec<String> = order.iter().map(|s| s.to_string()).collect();
    let rest: BTreeSet<&String> = o
        .keys()
        .chain(n.keys())
        .filter(|k| !order.contains(&k.as_str()) && k.as_str() != "name")
        .collect();
    keys.extend(rest.into_iter().cloned());
    let mut out = Vec::new();
    for k in keys {
        let (ov, nv) = (
            o.get(&k).cloned().unwrap_or(Value::Null),
            n.get(&k).cloned().unwrap_or(Value::Null),
        );
        if ov == nv {
            continue;
        }
        let (ot, nt) = (text_of(&k, &ov), text_of(&k, &nv));
        let diff = (ot.contains('\n') || nt.contains('\n') || ot.len() + nt.len() > 100)
            .then(|| unified(&ot, &nt));
        out.push(FieldChange {
            field: k,
            old: ov,
            new: nv,
            diff,
        });
    }
    out
}

/// A value as text for diffing: strings as themselves, lists one item per line, steps as
/// `run a, b` lines, anything else as compact JSON.
fn text_of(field: &str, v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) if field == "steps" => items
            .iter()
            .map(|i| match serde_json::from_value::<Step>(i.clone()) {
                // One model per line: adding a model to a long run is a one-line diff.
                Ok(Step::Run { models }) => models
                    .iter()
                    .fold("run".to_string(), |acc, m| format!("{acc}\n    {m}")),
                Ok(s) => step_line(&s),
                Err(_) => i.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Array(items)
            if items.iter().all(Value::is_string)
                && items
                    .iter()
                    .any(|i| i.as_str().is_some_and(|s| s.contains(' '))) =>
        {
            items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n")
        }
        Value::Array(items) if items.iter().any(|i| i.is_object()) => items
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

pub fn step_line(s: &Step) -> String {
    match s {
        Step::Run { models } => format!("run {}", models.join(" ")),
        Step::Sql { sql } => format!("sql {sql:?}"),
        Step::Sync { sync } => format!("sync {sync}"),
        Step::Request { request } => format!("request {request}"),
    }
}

fn unified(old: &str, new: &str) -> String {
    let (mut o, mut n) = (old.to_string(), new.to_string());
    for t in [&mut o, &mut n] {
        if !t.is_empty() && !t.ends_with('\n') {
            t.push('\n');
        }
    }
    similar::TextDiff::from_lines(&o, &n)
        .unified_diff()
        .context_radius(3)
        .header("previous", "plan")
        .to_string()
}

/// Model -> schedules whose `run` steps build it.
fn builders(p: &Plan) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in &p.schedules {
        for step in &s.steps {
            if let Step::Run { models } = step {
                for m in models {
                    out.entry(m.clone()).or_default().insert(s.name.clone());
                }
            }
        }
    }
    out
}

/// Model -> models that read it directly.
fn children(p: &Plan) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in &p.models {
        for d in &m.deps {
            out.entry(d.clone()).or_default().insert(m.name.clone());
        }
    }
    out
}

fn descendants(name: &str, children: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![name.to_string()];
    while let Some(m) = stack.pop() {
        for c in children.get(&m).into_iter().flatten() {
            if seen.insert(c.clone()) {
                stack.push(c.clone());
            }
        }
    }
    seen.remove(name);
    seen
}

// ---------------------------------------------------------------------------------------------
// Rendering

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn short(v: &Value) -> String {
    match v {
        Value::Array(items) if items.iter().all(Value::is_string) => {
            let names: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            format!("[{}]", names.join(", "))
        }
        Value::Array(items) if items.iter().any(|i| i.get("kind").is_some()) => {
            let steps: Vec<String> = items
                .iter()
                .map(|i| {
                    serde_json::from_value::<Step>(i.clone())
                        .map_or_else(|_| i.to_string(), |s| step_line(&s))
                })
                .collect();
            format!("[{}]", steps.join("; "))
        }
        other => other.to_string(),
    }
}

/// Seconds as the manifest writes durations: `90m`, `6h`, `1h30m`.
fn duration(v: &Value) -> String {
    let Some(mut secs) = v.as_u64() else {
        return v.to_string();
    };
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// The review as text: one block per change, then the terraform-style summary line.
pub fn render_human(r: &Review) -> String {
    let mut s = String::new();
    if !r.changed {
        s.push_str(&format!("No changes. The plan matches {}.\n", r.previous));
        return s;
    }
    for c in &r.changes {
        s.push_str(&format!("{} {} {}\n", c.action.sign(), c.kind, c.name));
        for f in &c.fields {
            if c.action == Action::Add {
                s.push_str(&format!("    {}: {}\n", f.field, short(&f.new)));
                continue;
            }
            match &f.diff {
                Some(d) => {
                    s.push_str(&format!("    {}:\n", f.field));
                    for line in d.lines() {
                        s.push_str(&format!("      {line}\n").replace(" \n", "\n"));
                    }
                }
                None if f.field == "timeout_secs" => s.push_str(&format!(
                    "    timeout: {} -> {}\n",
                    duration(&f.old),
                    duration(&f.new)
                )),
                None => s.push_str(&format!(
                    "    {}: {} -> {}\n",
                    f.field,
                    short(&f.old),
                    short(&f.new)
                )),
            }
        }
        if c.kind == "model" && c.action != Action::Remove {
            if c.built_by.is_empty() {
                s.push_str("    built by: no schedule\n");
            } else {
                s.push_str(&format!("    built by: {}\n", c.built_by.join(", ")));
            }
        }
        if !c.downstream.is_empty() {
            s.push_str(&format!(
                "    rebuilds downstream ({}):\n",
                plural(c.downstream.len(), "model", "models")
            ));
            for d in &c.downstream {
                let by = if d.schedules.is_empty() {
                    "no schedule".to_string()
                } else {
                    d.schedules.join(", ")
                };
                s.push_str(&format!("      {} (built by {by})\n", d.model));
            }
        }
        s.push('\n');
    }
    s.push_str(&format!(
        "Plan: {} to add, {} to change, {} to remove.\n",
        r.summary.add, r.summary.change, r.summary.remove
    ));
    let new_models = r
        .changes
        .iter()
        .filter(|c| c.kind == "model" && c.action == Action::Add)
        .count();
    if new_models > 0 {
        // A schedule that reads a new model may fire before the model's owner first does.
        s.push_str(&format!(
            "After deploying, `stir-runtime plan.json --bootstrap` builds the new {} before any schedule reads {}.\n",
            if new_models == 1 { "model" } else { "models" },
            if new_models == 1 { "it" } else { "them" },
        ));
    }
    s
}

pub fn render_json(r: &Review) -> String {
    let mut s = serde_json::to_string_pretty(r).expect("a review always serializes");
    s.push('\n');
    s
}

/// The review as a pull-request comment: the summary line, one collapsible section per change
/// (SQL as ```diff blocks, the schedules that build a model, what it rebuilds downstream), and
/// the new plan's hash. Longer than [`COMMENT_LIMIT`]: the largest sections that fit stay whole,
/// the others shrink to their heading line, and the comment says how many were cut.
pub fn render_markdown(r: &Review, old_hash: &str, new_hash: &str) -> String {
    let short_hash = |h: &str| h.get(..12).unwrap_or(h).to_string();
    let mut head = format!("{COMMENT_MARKER}\n### stir plan\n\n");
    if !r.changed {
        head.push_str(&format!(
            "**No changes.** The plan matches {} (`{}`).\n",
            r.previous,
            short_hash(old_hash)
        ));
        return head;
    }
    head.push_str(&format!(
        "**Plan: {} to add, {} to change, {} to remove.** New plan `{}` against {} (`{}`).\n\n",
        r.summary.add,
        r.summary.change,
        r.summary.remove,
        short_hash(new_hash),
        r.previous,
        short_hash(old_hash)
    ));
    let mut foot = String::new();
    let new_models = r
        .changes
        .iter()
        .filter(|c| c.kind == "model" && c.action == Action::Add)
        .count();
    if new_models > 0 {
        foot.push_str(&format!(
            "\nAfter deploying, `stir-runtime plan.json --bootstrap` builds the new {}.\n",
            plural(new_models, "model", "models")
        ));
    }
    let sections: Vec<String> = r.changes.iter().map(markdown_section).collect();
    let lines: Vec<String> = r.changes.iter().map(markdown_line).collect();
    // Every change keeps at least its line; whole sections go to the largest that still fit.
    let mut budget = COMMENT_LIMIT
        .saturating_sub(head.len() + foot.len() + 200)
        .saturating_sub(lines.iter().map(|l| l.len()).sum::<usize>());
    let mut by_size: Vec<usize> = (0..sections.len()).collect();
    by_size.sort_by_key(|&i| std::cmp::Reverse(sections[i].len()));
    let mut whole = vec![false; sections.len()];
    for i in by_size {
        let extra = sections[i].len().saturating_sub(lines[i].len());
        if extra <= budget {
            budget -= extra;
            whole[i] = true;
        }
    }
    let mut s = head;
    // So many changes that even their lines pass the limit: list what fits, count the rest.
    let room = COMMENT_LIMIT.saturating_sub(foot.len() + 400);
    let mut unlisted = 0;
    for (i, w) in whole.iter().enumerate() {
        let text = if *w { &sections[i] } else { &lines[i] };
        if unlisted > 0 || s.len() + text.len() > room {
            unlisted += 1;
            continue;
        }
        s.push_str(text);
    }
    let cut = whole.iter().filter(|w| !**w).count() - unlisted;
    if cut > 0 {
        s.push_str(&format!(
            "\n_{} shown as one line to keep this comment under GitHub's size limit: run `stir plan --diff` for the whole review._\n",
            plural(cut, "change is", "changes are")
        ));
    }
    if unlisted > 0 {
        s.push_str(&format!(
            "\n_{} not listed at all: the comment would pass GitHub's size limit. Run `stir plan --diff` for the whole review._\n",
            plural(unlisted, "more change is", "more changes are")
        ));
    }
    s.push_str(&foot);
    s
}

fn markdown_title(c: &Change) -> String {
    let mut t = format!(
        "{} {} <code>{}</code>",
        c.action.sign(),
        c.kind,
        html(&c.name)
    );
    if c.kind == "model" && c.action != Action::Remove {
        match c.built_by.is_empty() {
            true => t.push_str(" · built by no schedule"),
            false => t.push_str(&format!(" · built by {}", html(&c.built_by.join(", ")))),
        }
    }
    if !c.downstream.is_empty() {
        t.push_str(&format!(
            " · rebuilds {} downstream",
            plural(c.downstream.len(), "model", "models")
        ));
    }
    t
}

fn markdown_line(c: &Change) -> String {
    format!("- {}\n", markdown_title(c))
}

fn markdown_section(c: &Change) -> String {
    let mut s = format!("<details><summary>{}</summary>\n\n", markdown_title(c));
    for f in &c.fields {
        if c.action == Action::Add {
            s.push_str(&format!("- {}: {}\n", f.field, code(&short(&f.new))));
            continue;
        }
        match &f.diff {
            Some(d) => {
                let fence = "`".repeat(longest_run(d, '`').max(2) + 1);
                s.push_str(&format!("- {}:\n\n{fence}diff\n{}", f.field, d));
                if !d.ends_with('\n') {
                    s.push('\n');
                }
                s.push_str(&format!("{fence}\n"));
            }
            None if f.field == "timeout_secs" => s.push_str(&format!(
                "- timeout: {} → {}\n",
                code(&duration(&f.old)),
                code(&duration(&f.new))
            )),
            None => s.push_str(&format!(
                "- {}: {} → {}\n",
                f.field,
                code(&short(&f.old)),
                code(&short(&f.new))
            )),
        }
    }
    if !c.downstream.is_empty() {
        s.push_str("\nRebuilds downstream:\n\n");
        for d in &c.downstream {
            let by = match d.schedules.is_empty() {
                true => "no schedule".to_string(),
                false => d.schedules.join(", "),
            };
            s.push_str(&format!("- {} (built by {})\n", code(&d.model), html(&by)));
        }
    }
    s.push_str("\n</details>\n");
    s
}

/// Inline code that survives backticks in the text.
fn code(text: &str) -> String {
    let fence = "`".repeat(longest_run(text, '`') + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

fn longest_run(text: &str, c: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for ch in text.chars() {
        run = if ch == c { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_review_of_thousands_of_changes_stays_under_the_comment_limit_and_counts_the_rest() {
        let changes: Vec<Change> = (0..3000)
            .map(|i| Change {
                kind: "model",
                name: format!("mart_model_with_a_long_descriptive_name_{i:05}"),
                action: Action::Change,
                fields: vec![],
                built_by: vec!["dbt_daily".into(), "dbt_hourly".into()],
                downstream: vec![],
            })
            .collect();
        let r = Review {
            previous: "base.json".into(),
            changed: true,
            summary: Summary {
                add: 0,
                change: changes.len(),
                remove: 0,
            },
            changes,
        };
        let md = render_markdown(&r, "a".repeat(64).as_str(), "b".repeat(64).as_str());
        assert!(md.len() <= 65_536, "{} characters", md.len());
        assert!(md.contains("**Plan: 0 to add, 3000 to change, 0 to remove.**"));
        let listed = md.matches("mart_model_with_a_long").count();
        let unlisted: usize = md
            .split("_")
            .find_map(|p| p.strip_suffix(" more changes are not listed at all: the comment would pass GitHub's size limit. Run `stir plan --diff` for the whole review."))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no count of the unlisted changes in {}", &md[md.len() - 400..]));
        assert_eq!(listed + unlisted, 3000);
        assert!(listed > 100, "{listed}");
    }
}
