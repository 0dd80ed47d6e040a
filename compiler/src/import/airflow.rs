//! Airflow DAG files, read statically (the Python is tokenized, never run): each DAG becomes a
//! `schedule`; `dbt run` tasks become `run` steps, simple ClickHouse statements `sql` steps,
//! the `check_hour` ShortCircuit pattern a `blackout` and `skip=`, Slack failure callbacks
//! `notify slack`. Everything else is a note for IMPORT.md.

use std::collections::BTreeMap;
use std::path::Path;

use super::config::At;
use super::python::{tokens, Call, Expr, Parser, Tok, Token};
use super::Note;
use crate::load::{self, MAX_SOURCE_BYTES};
use crate::macros::list_files;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Run {
        select: Vec<String>,
        exclude: Vec<String>,
    },
    Sql(String),
}

#[derive(Debug, Clone)]
pub struct Dag {
    pub id: String,
    pub at: At,
    pub cron: String,
    pub timeout_minutes: u64,
    pub retries: Option<u64>,
    /// Hours `[from, to)` the DAG skips itself (its ShortCircuit).
    pub skip: Option<(u32, u32)>,
    pub steps: Vec<Step>,
}

/// What the DAG files give: the DAGs, whether any alerts to Slack, and the notes.
#[derive(Debug, Default)]
pub struct Dags {
    pub dags: Vec<Dag>,
    pub slack: bool,
    pub notes: Vec<Note>,
}

/// Schedules whose timeout is at least this long are listed as `heavy` candidates.
pub const HEAVY_CANDIDATE_MINUTES: u64 = 240;

/// Read every `.py` file under `dir` (shown as `shown`).
pub fn read_dags(dir: &Path, shown: &str) -> Result<Dags, String> {
    let files = list_files(dir, &[".py"]).map_err(|e| format!("`{shown}` {e}"))?;
    let mut out = Dags::default();
    for rel in files {
        let file = format!("{}/{rel}", shown.trim_end_matches('/'));
        let text = load::read_file(&dir.join(&rel), MAX_SOURCE_BYTES)
            .map_err(|e| e.to_string())
            .and_then(|b| String::from_utf8(b).map_err(|_| "not UTF-8".to_string()));
        match text {
            Ok(t) => read_file(&file, &t, &mut out),
            Err(e) => out.notes.push(Note::new(
                At { file, line: 1 },
                format!("the DAG file could not be read: {e}"),
                "make it a readable UTF-8 file",
            )),
        }
    }
    Ok(out)
}

struct Task {
    var: Option<String>,
    call: Call,
}

fn at(file: &str, line: usize) -> At {
    At {
        file: file.to_string(),
        line,
    }
}

fn read_file(file: &str, src: &str, out: &mut Dags) {
    let toks = tokens(src);
    let windows = hour_windows(&toks);
    let mut dag_call: Option<Call> = None;
    let mut tasks: Vec<Task> = Vec::new();
    let mut assigned: BTreeMap<String, Expr> = BTreeMap::new();
    let mut p = Parser::new(&toks);
    let is = |k: usize, t: &Tok| toks.get(k).map(|x| &x.tok) == Some(t);
    while p.pos < toks.len() {
        let i = p.pos;
        let Tok::Name(name) = &toks[i].tok else {
            p.pos += 1;
            continue;
        };
        let after_dot = i > 0 && is(i - 1, &Tok::Op(".".into()));
        if after_dot || name == "def" || name == "class" || name == "import" {
            p.pos += 1;
            continue;
        }
        // `NAME = value`: remember the value (default_args dicts, tasks by variable).
        let var = is(i + 1, &Tok::Op("=".into())).then(|| name.clone());
        if var.is_some() {
            p.pos = i + 2;
        } else {
            // A call: a dotted name followed by `(`.
            let mut k = i + 1;
            while is(k, &Tok::Op(".".into()))
                && matches!(toks.get(k + 1).map(|t| &t.tok), Some(Tok::Name(_)))
            {
                k += 2;
            }
            if !is(k, &Tok::Op("(".into())) {
                p.pos += 1;
                continue;
            }
        }
        let start = p.pos;
        let e = p.postfix();
        if p.pos == start {
            p.pos += 1;
        }
        if let Some(v) = &var {
            assigned.insert(v.clone(), e.clone());
        }
        let Expr::Call(call) = e else { continue };
        let short = Expr::short(&call.func);
        if short == "DAG" {
            if dag_call.is_some() {
                out.notes.push(Note::new(
                    at(file, call.line),
                    "a second DAG in one file",
                    "only the first DAG of a file is imported: write the others' schedules by hand",
                ));
            } else {
                dag_call = Some(call);
            }
        } else if short.ends_with("Operator") || short.ends_with("Sensor") {
            tasks.push(Task { var, call });
        }
    }
    let taskflow = toks
        .windows(2)
        .find(|w| w[0].tok == Tok::Op("@".into()) && w[1].tok == Tok::Name("dag".into()));
    let Some(dag) = dag_call else {
        if let Some(w) = taskflow {
            out.notes.push(Note::new(
                at(file, w[0].line),
                "a TaskFlow DAG (`@dag`)",
                "this reader reads `DAG(...)` and operators: write its schedule by hand",
            ));
        } else if !tasks.is_empty() {
            out.notes.push(Note::new(
                at(file, 1),
                "tasks without a `DAG(...)` this reader can see",
                "write the schedule by hand",
            ));
        }
        return;
    };
    let order = task_order(&toks, &tasks);
    // A module-level string constant (`dag_id=DAG_ID`) reads as its value.
    let constant = |e: Option<&Expr>| -> Option<Expr> {
        match e? {
            Expr::Name(n) => match assigned.get(n) {
                Some(Expr::Str(s)) => Some(Expr::Str(s.clone())),
                _ => Some(Expr::Name(n.clone())),
            },
            other => Some(other.clone()),
        }
    };
    let id = match constant(dag.kw("dag_id").or(dag.args.first())) {
        Some(Expr::Str(s)) => s,
        _ => {
            out.notes.push(Note::new(
                at(file, dag.line),
                "a DAG whose `dag_id` is not a plain string",
                "write its schedule by hand",
            ));
            return;
        }
    };
    let note = |out: &mut Dags, line: usize, what: String, instead: &str| {
        out.notes.push(Note::new(at(file, line), what, instead));
    };
    let cron = match constant(dag.kw("schedule").or(dag.kw("schedule_interval"))).as_ref() {
        Some(Expr::Str(s)) => s.clone(),
        other => {
            let what = match other {
                None | Some(Expr::Name(_)) => "no schedule (triggered by hand or by another DAG)",
                _ => "a schedule that is not a cron string or preset",
            };
            note(
                out,
                dag.line,
                format!("DAG `{id}` has {what}"),
                "stir runs schedules by cron: give it one, or run its models from another schedule",
            );
            return;
        }
    };
    let default_args = match dag.kw("default_args") {
        Some(Expr::Name(n)) => assigned.get(n).cloned(),
        other => other.cloned(),
    };
    let from_args = |key: &str| -> Option<Expr> {
        match &default_args {
            Some(Expr::Dict(items)) => items
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v.clone()),
            Some(Expr::Call(c)) if c.func == "dict" => c.kw(key).cloned(),
            _ => None,
        }
    };
    let timeout_minutes =
        match dag.kw("dagrun_timeout").and_then(minutes) {
            Some(m) if m > 0 => m,
            _ => {
                note(out, dag.line, format!("DAG `{id}` has no `dagrun_timeout` stir can read"),
                "stir requires a timeout: the schedule got `timeout=\"1h\"`; set the real bound");
                60
            }
        };
    let retries = match dag.kw("retries").cloned().or_else(|| from_args("retries")) {
        Some(Expr::Num(n)) => n.parse().ok(),
        _ => None,
    };
    if let Some(Expr::Num(n)) = dag.kw("max_active_runs") {
        if n != "1" {
            note(
                out,
                dag.line,
                format!("DAG `{id}` allows {n} runs at once"),
                "a stir schedule never overlaps itself (a fire that finds it running is skipped)",
            );
        }
    }
    if dag.kw("catchup").or(from_args("catchup").as_ref()) == Some(&Expr::Name("True".into())) {
        note(out, dag.line, format!("DAG `{id}` catches up missed intervals"),
            "stir runs a missed fire once (`on-missed \"run-once\"`) and never backfills: run the backfill by hand");
    }
    for key in [
        "on_failure_callback",
        "on_success_callback",
        "on_retry_callback",
        "sla_miss_callback",
    ] {
        let Some(cb) = dag.kw(key).cloned().or_else(|| from_args(key)) else {
            continue;
        };
        let text = format!("{cb:?}").to_lowercase();
        if key == "on_failure_callback" && text.contains("slack") {
            out.slack = true;
        } else if key == "on_success_callback" && text.contains("slack") {
            // Today's notifier returns at once on success: failures are all it sends.
        } else {
            note(out, dag.line, format!("`{key}` of DAG `{id}`"),
                "stir alerts Slack on failures, timeouts and skipped heavy runs (`notify slack`); other callbacks are not run");
        }
    }
    let mut steps = Vec::new();
    let mut skip = None;
    // A ShortCircuit this reader cannot read matters only if no other one gave the window
    // (a file may show the same task twice, as the write-up's excerpts do).
    let mut unread_short_circuit = Vec::new();
    for &ti in &order {
        let t = &tasks[ti].call;
        // Without a task_id (an excerpt), the variable names the task.
        let task_id = t
            .kw("task_id")
            .and_then(Expr::as_str)
            .or(tasks[ti].var.as_deref())
            .unwrap_or("?")
            .to_string();
        let short = Expr::short(&t.func);
        match short {
            "DbtRunOperator" | "DbtBuildOperator" => {
                let list = |k: &str| -> Vec<String> {
                    match t.kw(k) {
                        Some(Expr::List(items)) => items.iter().filter_map(|e| e.as_str().map(str::to_string)).collect(),
                        Some(Expr::Str(s)) => s.split_whitespace().map(str::to_string).collect(),
                        _ => Vec::new(),
                    }
                };
                let mut select = list("select");
                select.extend(list("models"));
                let exclude = list("exclude");
                if t.kw("full_refresh").is_some_and(|v| *v == Expr::Name("True".into())) {
                    note(out, t.line, format!("task `{task_id}` runs with a full refresh"),
                        FULL_REFRESH_HELP);
                }
                push_run(out, file, t.line, &task_id, select, exclude, &mut steps);
            }
            "BashOperator" => match t.kw("bash_command") {
                Some(Expr::Str(cmd)) => bash(out, file, t.line, &task_id, cmd, &mut steps),
                _ => note(out, t.line, format!("task `{task_id}`: a bash command built at run time"),
                    "write its `run` step by hand"),
            },
            "ShortCircuitOperator" => {
                let window = match t.kw("python_callable") {
                    Some(Expr::Name(f)) => windows.get(f.as_str()).copied(),
                    _ => None,
                };
                match window {
                    Some(w) => skip = Some(w),
                    None => unread_short_circuit.push(Note::new(at(file, t.line), format!("task `{task_id}`: a ShortCircuit stir cannot read"),
                        "stir skips fires inside a `blackout` window (`skip=`): declare one if this is a time window")),
                }

            }
            "ClickHouseOperator" => match t.kw("sql") {
                Some(Expr::Str(sql)) if !sql.contains("s3(") && !sql.trim().trim_end_matches(';').contains(';') => {
                    steps.push(Step::Sql(sql.trim().trim_end_matches(';').trim().to_string()));
                }
                Some(Expr::Str(sql)) if sql.contains("s3(") => note(out, t.line,
                    format!("task `{task_id}` exports from ClickHouse to S3"),
                    &format!("this is the first half of today's sync pattern: write a `sync` from the model it reads{} and put `sync NAME` in this schedule", from_model(sql).map(|m| format!(" (`from={m}`)")).unwrap_or_default())),
                _ => note(out, t.line, format!("task `{task_id}`: ClickHouse SQL stir cannot carry as one statement"),
                    "write it as `sql` steps, one statement each"),
            },
            "PostgresOperator" | "SQLExecuteQueryOperator" => {
                let sql = t.kw("sql").and_then(|e| match e { Expr::Str(s) | Expr::FStr(s) => Some(s.as_str()), _ => None }).unwrap_or("");
                let lower = sql.to_lowercase();
                let instead = if lower.contains("unlogged") || lower.contains("rename to") {
                    format!("this is today's sync pattern (UNLOGGED load, rename swap): write `sync NAME from=MODEL to={}` with its `column`s, `key`, `index`es and `enrich`/`delete-where` statements, and `sync NAME` in this schedule", swapped_table(sql).unwrap_or_else(|| "TABLE".into()))
                } else if lower.trim_start().starts_with("vacuum") {
                    "a stir sync runs VACUUM (ANALYZE) itself before its swap: drop it".to_string()
                } else {
                    "stir runs PostgreSQL statements only inside a `sync` (`enrich`, `delete-where`)".to_string()
                };
                note(out, t.line, format!("task `{task_id}` ({short})"), &instead);
            }
            "SSHOperator" => note(out, t.line, format!("task `{task_id}` (SSHOperator)"),
                "a stir sync streams ClickHouse → S3 → PostgreSQL itself: no download step is needed"),
            "PythonOperator" => note(out, t.line, format!("task `{task_id}` runs Python"),
                "if it reads rows and POSTs each to a service, write a `request` (query, post, body); otherwise keep it outside stir"),
            _ => note(out, t.line, format!("task `{task_id}` ({short})"),
                "stir has no such step: keep it outside stir, or express it as `run`, `sql`, `sync` or `request`"),
        }
    }
    if skip.is_none() {
        out.notes.extend(unread_short_circuit);
    }
    if steps.is_empty() {
        note(
            out,
            dag.line,
            format!("DAG `{id}` has no step stir can run"),
            "its schedule is left out: write it by hand once its syncs or requests are declared",
        );
        return;
    }
    out.dags.push(Dag {
        id,
        at: at(file, dag.line),
        cron,
        timeout_minutes,
        retries,
        skip,
        steps,
    });
}

fn push_run(
    out: &mut Dags,
    file: &str,
    line: usize,
    task_id: &str,
    select: Vec<String>,
    exclude: Vec<String>,
    steps: &mut Vec<Step>,
) {
    let keep = |sels: Vec<String>, out: &mut Dags| -> Vec<String> {
        sels.into_iter()
            .filter_map(|s| match selector(&s) {
                Some(t) => Some(t),
                None => {
                    out.notes.push(Note::new(
                        at(file, line),
                        format!("task `{task_id}`: selector `{s}` is not one stir has"),
                        "stir selects with `tag:NAME`, `MODEL`, `+MODEL`, `MODEL+` and `path:DIR`: rewrite it with those",
                    ));
                    None
                }
            })
            .collect()
    };
    let select = keep(select, out);
    let exclude = keep(exclude, out);
    if select.is_empty() {
        out.notes.push(Note::new(
            at(file, line),
            format!("task `{task_id}` selects nothing stir can read"),
            "write its `run` step by hand",
        ));
        return;
    }
    steps.push(Step::Run { select, exclude });
}

/// A dbt selector as stir writes it, or `None` when stir has no such selector.
fn selector(s: &str) -> Option<String> {
    let plain = |m: &str| !m.is_empty() && m.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if let Some(t) = s.strip_prefix("tag:") {
        return (!t.is_empty() && !t.contains(',')).then(|| s.to_string());
    }
    if let Some(p) = s.strip_prefix("path:") {
        return (!p.is_empty()).then(|| s.to_string());
    }
    if s.contains('/') && !s.contains(':') {
        return Some(format!("path:{}", s.trim_end_matches(".sql")));
    }
    let m = s.strip_prefix('+').unwrap_or(s);
    let m = m.strip_suffix('+').unwrap_or(m);
    plain(m).then(|| s.to_string())
}

/// What a dbt full refresh becomes in stir.
const FULL_REFRESH_HELP: &str = "stir rebuilds tables in full every run; rebuild incremental models from scratch by hand with `stir-runtime plan.json run SELECTOR --full-refresh` (or `--once SCHEDULE --full-refresh`)";

/// `dbt run` commands in a bash command (`cd x && dbt run -s a --exclude b`).
fn bash(out: &mut Dags, file: &str, line: usize, task_id: &str, cmd: &str, steps: &mut Vec<Step>) {
    let mut found = false;
    for part in cmd
        .split("&&")
        .flat_map(|p| p.split(';'))
        .flat_map(|p| p.split("||"))
    {
        let words = shell_words(part);
        // The command word: the first that is not an environment assignment (`X=1 dbt run`).
        let d = words
            .iter()
            .position(|w| !w.contains('=') || w.starts_with('-'));
        let Some(d) = d.filter(|&d| words[d] == "dbt" || words[d].ends_with("/dbt")) else {
            let w0 = words.first().map(String::as_str).unwrap_or("");
            if !w0.is_empty() && w0 != "cd" && w0 != "export" {
                out.notes.push(Note::new(
                    at(file, line),
                    format!("task `{task_id}` runs `{}`", part.trim()),
                    "stir runs no shell commands: keep it outside stir",
                ));
            }
            continue;
        };
        found = true;
        let verb = words.get(d + 1).map(String::as_str).unwrap_or("");
        if verb != "run" && verb != "build" {
            out.notes.push(Note::new(
                at(file, line),
                format!("task `{task_id}` runs `dbt {verb}`"),
                "stir builds models (`dbt run`); other dbt commands stay outside stir",
            ));
            continue;
        }
        if verb == "build" {
            out.notes.push(Note::new(
                at(file, line),
                format!("task `{task_id}` runs `dbt build` (tests, seeds, snapshots too)"),
                "stir builds the models (`run`); keep the rest in dbt",
            ));
        }
        let (mut select, mut exclude) = (Vec::new(), Vec::new());
        let mut into: Option<bool> = None;
        for w in &words[d + 2..] {
            match w.as_str() {
                "-s" | "--select" | "-m" | "--models" | "--model" => into = Some(true),
                "--exclude" => into = Some(false),
                "--full-refresh" => {
                    into = None;
                    out.notes.push(Note::new(
                        at(file, line),
                        format!("task `{task_id}` runs with `--full-refresh`"),
                        FULL_REFRESH_HELP,
                    ));
                }
                "--vars" | "--threads" => {
                    into = None;
                    let instead = if w == "--vars" {
                        "stir vars are the manifest's, the same for every run: declare them with `var`, or give this run its own models"
                    } else {
                        "set `threads=` on the schedule (at most the warehouse's)"
                    };
                    out.notes.push(Note::new(
                        at(file, line),
                        format!("task `{task_id}` runs dbt with `{w}`"),
                        instead,
                    ));
                }
                f if f.starts_with('-') => into = None,
                v => match into {
                    Some(true) => select.push(v.to_string()),
                    Some(false) => exclude.push(v.to_string()),
                    None => {}
                },
            }
        }
        push_run(out, file, line, task_id, select, exclude, steps);
    }
    if !found && steps.is_empty() {
        out.notes.push(Note::new(
            at(file, line),
            format!("task `{task_id}` runs no dbt command"),
            "stir runs no shell commands: keep it outside stir",
        ));
    }
}

fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() || any {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            (None, c) => cur.push(c),
        }
    }
    if !cur.is_empty() || any {
        out.push(cur);
    }
    out
}

/// `timedelta(hours=1, minutes=30)` in minutes.
fn minutes(e: &Expr) -> Option<u64> {
    let Expr::Call(c) = e else { return None };
    if Expr::short(&c.func) != "timedelta" {
        return None;
    }
    let mut total = 0f64;
    for (k, v) in &c.kwargs {
        let Expr::Num(n) = v else { return None };
        let n: f64 = n.parse().ok()?;
        total += n * match k.as_str() {
            "weeks" => 7.0 * 1440.0,
            "days" => 1440.0,
            "hours" => 60.0,
            "minutes" => 1.0,
            "seconds" => 1.0 / 60.0,
            _ => return None,
        };
    }
    Some(total.ceil() as u64)
}

/// Functions that return False for `A <= hour < B` (today's `check_hour`): name -> (A, B).
fn hour_windows(toks: &[Token]) -> BTreeMap<&str, (u32, u32)> {
    let mut out = BTreeMap::new();
    let mut i = 0;
    while i + 1 < toks.len() {
        if toks[i].tok == Tok::Name("def".into()) {
            if let Tok::Name(name) = &toks[i + 1].tok {
                let indent = toks[i].indent;
                let mut j = i + 2;
                // The body: tokens on later lines indented deeper than the `def`.
                while j < toks.len() && (toks[j].line == toks[i].line || toks[j].indent > indent) {
                    j += 1;
                }
                let body = &toks[i + 2..j];
                let returns_false = body.windows(2).any(|w| {
                    w[0].tok == Tok::Name("return".into()) && w[1].tok == Tok::Name("False".into())
                });
                if returns_false {
                    if let Some(w) = window(body) {
                        out.insert(name.as_str(), w);
                    }
                }
                i = j;
                continue;
            }
        }
        i += 1;
    }
    out
}

fn window(body: &[Token]) -> Option<(u32, u32)> {
    let num = |t: &Token| match &t.tok {
        Tok::Num(n) => n.parse::<u32>().ok().filter(|h| *h <= 24),
        _ => None,
    };
    let is_hour = |t: &Token| matches!(&t.tok, Tok::Name(n) if n.contains("hour"));
    let op = |t: &Token, o: &str| t.tok == Tok::Op(o.into());
    for w in body.windows(5) {
        // A <= hour < B
        if op(&w[1], "<=") && is_hour(&w[2]) && op(&w[3], "<") {
            if let (Some(a), Some(b)) = (num(&w[0]), num(&w[4])) {
                return (a < b).then_some((a, b));
            }
        }
    }
    for (k, t) in body.iter().enumerate() {
        // hour >= A and hour < B
        if is_hour(t) && body.get(k + 1).is_some_and(|t| op(t, ">=")) {
            let a = body.get(k + 2).and_then(num)?;
            let rest = &body[k + 3..];
            let b = rest.windows(3).find_map(|w| {
                (is_hour(&w[0]) && op(&w[1], "<"))
                    .then(|| num(&w[2]))
                    .flatten()
            })?;
            return (a < b).then_some((a, b));
        }
    }
    None
}

/// Tasks in the order their `>>` chains give (a task before everything downstream of it),
/// ties in the order they are written.
fn task_order(toks: &[Token], tasks: &[Task]) -> Vec<usize> {
    let index: BTreeMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .filter_map(|(i, t)| Some((t.var.as_deref()?, i)))
        .collect();
    let mut edges: Vec<(usize, usize)> = Vec::new();
    let operand = |mut k: usize| -> (Vec<usize>, usize) {
        let mut found = Vec::new();
        if toks.get(k).map(|t| &t.tok) == Some(&Tok::Op("[".into())) {
            k += 1;
            while let Some(t) = toks.get(k) {
                match &t.tok {
                    Tok::Op(o) if o == "]" => {
                        k += 1;
                        break;
                    }
                    Tok::Name(n) => {
                        if let Some(&i) = index.get(n.as_str()) {
                            found.push(i);
                        }
                    }
                    _ => {}
                }
                k += 1;
            }
        } else if let Some(Tok::Name(n)) = toks.get(k).map(|t| &t.tok) {
            if let Some(&i) = index.get(n.as_str()) {
                found.push(i);
            }
            k += 1;
        }
        (found, k)
    };
    for (k, t) in toks.iter().enumerate() {
        let Tok::Op(o) = &t.tok else { continue };
        if o != ">>" && o != "<<" {
            continue;
        }
        // The operand before: a name, or a `[...]` list ending just before.
        let left: Vec<usize> = match toks.get(k.wrapping_sub(1)).map(|t| &t.tok) {
            Some(Tok::Name(n)) => index.get(n.as_str()).copied().into_iter().collect(),
            Some(Tok::Op(c)) if c == "]" => {
                let mut s = k - 1;
                while s > 0 && toks[s].tok != Tok::Op("[".into()) {
                    s -= 1;
                }
                operand(s).0
            }
            _ => Vec::new(),
        };
        let (right, _) = operand(k + 1);
        for &a in &left {
            for &b in &right {
                edges.push(if o == ">>" { (a, b) } else { (b, a) });
            }
        }
    }
    // Kahn's order, smallest index first among the ready.
    let n = tasks.len();
    let mut indeg = vec![0usize; n];
    for &(_, b) in &edges {
        indeg[b] += 1;
    }
    let mut done = vec![false; n];
    let mut order = Vec::with_capacity(n);
    while order.len() < n {
        let Some(next) = (0..n).find(|&i| !done[i] && indeg[i] == 0) else {
            // A cycle: the rest in written order.
            order.extend((0..n).filter(|&i| !done[i]));
            break;
        };
        done[next] = true;
        order.push(next);
        for &(a, b) in &edges {
            if a == next {
                indeg[b] -= 1;
            }
        }
    }
    order
}

/// The model a ClickHouse export reads (`... from dbt.mart_x ...`).
fn from_model(sql: &str) -> Option<String> {
    let lower = sql.to_lowercase();
    let at = lower.rfind(" from ")?;
    let rest = sql[at + 6..].trim_start();
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
        .collect();
    let model = name.rsplit('.').next()?.to_string();
    (!model.is_empty()).then_some(model)
}

/// The table a rename swap installs (`ALTER TABLE "x_tmp" RENAME TO "x"`).
fn swapped_table(sql: &str) -> Option<String> {
    let lower = sql.to_lowercase();
    let mut found = None;
    let mut from = 0;
    while let Some(i) = lower[from..].find("rename to") {
        let start = from + i + "rename to".len();
        let name: String = sql[start..]
            .trim_start()
            .trim_start_matches('"')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.ends_with("_bkp") && !name.ends_with("_old") && !name.is_empty() {
            found = Some(name);
        }
        from = start;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_dbt_commands_become_run_steps() {
        let mut out = Dags::default();
        let mut steps = Vec::new();
        bash(
            &mut out,
            "d.py",
            3,
            "t",
            "cd /gcc/dbt && dbt run --select tag:a 'tag:b' -m m+ --exclude tag:c --target prod --vars '{x: 1}' && dbt test -s tag:a",
            &mut steps,
        );
        assert_eq!(
            steps,
            vec![Step::Run {
                select: vec!["tag:a".into(), "tag:b".into(), "m+".into()],
                exclude: vec!["tag:c".into()],
            }]
        );
        let what: Vec<&str> = out.notes.iter().map(|n| n.what.as_str()).collect();
        assert_eq!(
            what,
            [
                "task `t` runs dbt with `--vars`",
                "task `t` runs `dbt test`"
            ]
        );
    }

    #[test]
    fn constants_and_taskflow_dags() {
        let mut out = Dags::default();
        let src = "DAG_ID = 'nightly'\nCRON = '0 2 * * *'\ndag = DAG(DAG_ID, schedule=CRON, dagrun_timeout=timedelta(hours=2))\nrun = BashOperator(task_id='r', bash_command='dbt run -s tag:nightly', dag=dag)\n";
        read_file("a.py", src, &mut out);
        assert_eq!(out.dags.len(), 1, "{:?}", out.notes);
        assert_eq!(
            (
                out.dags[0].id.as_str(),
                out.dags[0].cron.as_str(),
                out.dags[0].timeout_minutes
            ),
            ("nightly", "0 2 * * *", 120)
        );
        let mut out = Dags::default();
        read_file(
            "b.py",
            "@dag(schedule='@daily')\ndef nightly():\n    pass\n",
            &mut out,
        );
        assert_eq!(out.notes[0].what, "a TaskFlow DAG (`@dag`)");
    }

    #[test]
    fn selectors_translate_or_are_refused() {
        assert_eq!(selector("tag:daily").as_deref(), Some("tag:daily"));
        assert_eq!(selector("+mart_x").as_deref(), Some("+mart_x"));
        assert_eq!(
            selector("models/marts").as_deref(),
            Some("path:models/marts")
        );
        assert_eq!(selector("config.materialized:table"), None);
        assert_eq!(selector("tag:a,tag:b"), None);
        assert_eq!(selector("2+mart_x"), None);
    }

    #[test]
    fn the_check_hour_pattern_is_a_window() {
        let src = "def check_hour():\n    hour = dt.datetime.now().hour\n    if 19 <= hour < 22:\n        return False\n    return True\n\ndef other():\n    return True\n";
        let toks = tokens(src);
        let w = hour_windows(&toks);
        assert_eq!(w.get("check_hour"), Some(&(19, 22)));
        assert_eq!(w.get("other"), None);
    }
}
