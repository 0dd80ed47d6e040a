//! One handler per console page: read the plan and the history, shape what the template shows.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Datelike, Duration as TimeDelta, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use stir_plan::timeline::{Actual, Blackout};
use stir_plan::Step as PlanStep;

use super::reads::{Cell, Reads};
use super::words::{cron_words, duration};
use super::{fmt_time, short_hash, url_segment, Console};
use crate::history::HistoryError;
use crate::scheduler;

/// How many fires the grid shows per schedule, and the sparklines.
const GRID_FIRES: i64 = 30;
const SPARK_FIRES: i64 = 20;
/// A run that used this share of its timeout came close to its window.
const CLOSE: f64 = 0.8;

#[derive(Deserialize, Default)]
pub struct Filter {
    #[serde(default)]
    status: String,
    #[serde(default)]
    tag: String,
}

#[derive(Serialize)]
struct CellView {
    id: String,
    href: String,
    status: String,
    title: String,
    /// Sparkline bar height in pixels.
    h: u32,
}

fn cell_title(schedule: &str, c: &Cell) -> String {
    let took = c.seconds().map(duration).unwrap_or_else(|| "-".into());
    let retry = if c.attempt > 1 {
        format!(", attempt {}", c.attempt)
    } else {
        String::new()
    };
    format!(
        "{schedule} {} UTC: {} ({took}{retry})",
        fmt_time(c.fire_time),
        c.status
    )
}

/// Cells oldest first; bar heights relative to the longest run shown.
fn cells(schedule: &str, newest_first: &[Cell]) -> Vec<CellView> {
    let longest = newest_first
        .iter()
        .filter_map(Cell::seconds)
        .fold(0.0f64, f64::max)
        .max(0.001);
    newest_first
        .iter()
        .rev()
        .map(|c| CellView {
            id: c.id.clone(),
            href: format!("/runs/{}", url_segment(&c.id)),
            status: c.status.clone(),
            title: cell_title(schedule, c),
            h: c.seconds().map_or(3, |s| {
                ((s / longest) * 20.0).round().clamp(3.0, 20.0) as u32
            }),
        })
        .collect()
}

impl Console {
    fn history_down(&self, headers: &HeaderMap, e: HistoryError) -> Response {
        self.message(
            StatusCode::SERVICE_UNAVAILABLE,
            headers,
            "History unreachable",
            &format!(
                "cannot read the run history: {}",
                self.shown(&e.to_string())
            ),
        )
    }

    /// Run `id` of the history, or the page that says why not.
    pub(super) async fn find_run(
        &self,
        headers: &HeaderMap,
        id: &str,
    ) -> Result<super::reads::Run, Response> {
        match Reads(&self.0.history).run(id).await {
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err(self.message(
                StatusCode::NOT_FOUND,
                headers,
                "No such run",
                &format!("The history has no run `{id}`."),
            )),
            Err(e) => Err(self.history_down(headers, e)),
        }
    }

    /// The next real fire of `tier` after `now` (blackout fires are skipped).
    fn next_fire(&self, tier: &scheduler::Tier, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut at = now;
        for _ in 0..10_000 {
            let (t, blackout) = scheduler::next_event(&self.0.zone, tier, at)?;
            if !blackout {
                return Some(t);
            }
            at = t;
        }
        None
    }

    /// The schedules that pass `f`, with their newest fires.
    async fn filtered(
        &self,
        f: &Filter,
        fires: i64,
    ) -> Result<Vec<(&stir_plan::Schedule, Vec<Cell>)>, HistoryError> {
        let c = &self.0;
        let names: Vec<String> = c.plan.schedules.iter().map(|s| s.name.clone()).collect();
        let mut recent = Reads(&c.history).recent_fires(&names, fires).await?;
        Ok(c.plan
            .schedules
            .iter()
            .map(|s| (s, recent.remove(&s.name).unwrap_or_default()))
            .filter(|(s, cells)| {
                (f.tag.is_empty() || c.tags.get(&s.name).is_some_and(|t| t.contains(&f.tag)))
                    && (f.status.is_empty()
                        || cells.first().map_or("never", |x| x.status.as_str()) == f.status)
            })
            .collect())
    }

    fn filter_choices(&self, f: &Filter) -> minijinja::Value {
        let mut tags: Vec<&String> = self.0.tags.values().flatten().collect();
        tags.sort();
        tags.dedup();
        minijinja::context! {
            tags => tags,
            statuses => ["ok", "failed", "timeout", "lost", "running", "cancelled", "skipped_running", "skipped_heavy", "skipped_blackout", "missed", "never"],
            status => f.status.clone(),
            tag => f.tag.clone(),
        }
    }
}

#[derive(Serialize)]
struct ScheduleRow {
    name: String,
    cron: String,
    words: String,
    timeout: String,
    heavy: bool,
    enabled: bool,
    retries: u32,
    skips: Vec<String>,
    tags: Vec<String>,
    next: String,
    last_status: String,
    last_took: String,
    last_href: String,
    spark: Vec<CellView>,
}

pub async fn schedules(
    State(c): State<Console>,
    headers: HeaderMap,
    Query(f): Query<Filter>,
) -> Response {
    let rows = match c.filtered(&f, SPARK_FIRES).await {
        Ok(r) => r,
        Err(e) => return c.history_down(&headers, e),
    };
    let now = Utc::now();
    let view: Vec<ScheduleRow> = rows
        .iter()
        .map(|(s, recent)| {
            let tier = c.0.tiers.iter().find(|t| t.name == s.name);
            let next = match tier {
                Some(t) if t.enabled => c.next_fire(t, now).map_or("never".into(), |n| {
                    format!(
                        "{} UTC (in {})",
                        fmt_time(n),
                        duration((n - now).num_seconds() as f64)
                    )
                }),
                _ => "disabled".into(),
            };
            let last = recent.first();
            ScheduleRow {
                name: s.name.clone(),
                cron: s.cron.clone(),
                words: cron_words(&s.cron),
                timeout: duration(s.timeout_secs as f64),
                heavy: s.heavy,
                enabled: s.enabled,
                retries: s.retries,
                skips: s
                    .skip
                    .iter()
                    .map(|w| {
                        format!(
                            "{} {:02}:{:02}–{:02}:{:02}",
                            w.name,
                            w.from / 60,
                            w.from % 60,
                            w.to / 60,
                            w.to % 60
                        )
                    })
                    .collect(),
                tags: c.0.tags.get(&s.name).cloned().unwrap_or_default(),
                next,
                last_status: last.map_or("never".into(), |l| l.status.clone()),
                last_took: last
                    .and_then(Cell::seconds)
                    .map(duration)
                    .unwrap_or_default(),
                last_href: last
                    .map(|l| format!("/runs/{}", url_segment(&l.id)))
                    .unwrap_or_default(),
                spark: cells(&s.name, recent),
            }
        })
        .collect();
    c.page(
        StatusCode::OK,
        "schedules.html",
        &headers,
        minijinja::context! { rows => view, filter => c.filter_choices(&f), total => c.0.plan.schedules.len() },
    )
}

#[derive(Serialize)]
struct GridRow {
    name: String,
    heavy: bool,
    /// Empty cells first, so the newest fire of every schedule is in the last column.
    pad: usize,
    cells: Vec<CellView>,
}

pub async fn grid(
    State(c): State<Console>,
    headers: HeaderMap,
    Query(f): Query<Filter>,
) -> Response {
    let rows = match c.filtered(&f, GRID_FIRES).await {
        Ok(r) => r,
        Err(e) => return c.history_down(&headers, e),
    };
    let view: Vec<GridRow> = rows
        .iter()
        .map(|(s, cs)| GridRow {
            name: s.name.clone(),
            heavy: s.heavy,
            pad: GRID_FIRES as usize - cs.len().min(GRID_FIRES as usize),
            cells: cells(&s.name, cs),
        })
        .collect();
    c.page(
        StatusCode::OK,
        "grid.html",
        &headers,
        minijinja::context! { rows => view, filter => c.filter_choices(&f), fires => GRID_FIRES },
    )
}

#[derive(Serialize)]
struct StepView {
    idx: i32,
    kind: String,
    name: String,
    href: Option<String>,
    status: String,
    took: String,
    error: Option<String>,
    rows: Option<String>,
    query_ids: Option<String>,
    /// The Gantt bar: start and width in percent of the run.
    left: f64,
    width: f64,
}

#[derive(Serialize)]
struct AttemptView {
    id: String,
    href: String,
    attempt: i32,
    status: String,
    took: String,
    current: bool,
}

pub async fn run(State(c): State<Console>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let reads = Reads(&c.0.history);
    let run = match c.find_run(&headers, &id).await {
        Ok(r) => r,
        Err(page) => return page,
    };
    let (steps, attempts) = match tokio::try_join!(
        reads.steps(&run.id),
        reads.attempts(&run.schedule, run.fire_time)
    ) {
        Ok(x) => x,
        Err(e) => return c.history_down(&headers, e),
    };
    let start = run.started_at.or(steps.first().map(|s| s.started_at));
    let end = run
        .ended_at
        .or(steps.iter().filter_map(|s| s.ended_at).max())
        .unwrap_or_else(Utc::now);
    let span = start.map_or(1.0, |s| ((end - s).num_milliseconds() as f64).max(1.0));
    let pct = |t: DateTime<Utc>| {
        start.map_or(0.0, |s| {
            ((t - s).num_milliseconds() as f64 / span * 100.0).clamp(0.0, 100.0)
        })
    };
    let step_views: Vec<StepView> = steps
        .iter()
        .map(|s| {
            let left = pct(s.started_at);
            let right = pct(s.ended_at.unwrap_or(end));
            let rows = s.rows.map(|n| match s.kind.as_str() {
                "sync" => format!("{n} rows exported and loaded"),
                "request" => format!("{n} POSTs sent"),
                _ => format!("{n} rows"),
            });
            StepView {
                idx: s.idx,
                kind: s.kind.clone(),
                href: (s.kind == "model" && c.0.plan.model(&s.name).is_some())
                    .then(|| format!("/models/{}", url_segment(&s.name))),
                name: s.name.clone(),
                status: s.status.clone(),
                took: s
                    .ended_at
                    .map(|e| duration((e - s.started_at).num_milliseconds() as f64 / 1000.0))
                    .unwrap_or_else(|| "running".into()),
                error: s.error.as_deref().map(|e| c.shown(e)),
                rows,
                // Every ClickHouse statement of a step has a query id with this prefix.
                query_ids: (s.kind != "request").then(|| {
                    let prefix = crate::run::query_prefix(&c.0.plan.warehouse.database, &run.id);
                    format!("{prefix}{}-*", s.idx)
                }),
                left,
                width: (right - left).max(0.5),
            }
        })
        .collect();
    let attempt_views: Vec<AttemptView> = attempts
        .iter()
        .map(|a| AttemptView {
            id: a.id.clone(),
            href: format!("/runs/{}", url_segment(&a.id)),
            attempt: a.attempt,
            status: a.status.clone(),
            took: a.seconds().map(duration).unwrap_or_default(),
            current: a.id == run.id,
        })
        .collect();
    let timeout = c.0.plan.schedule(&run.schedule).map(|s| s.timeout_secs);
    let took = run.seconds();
    let view = minijinja::context! {
        id => run.id.clone(),
        schedule => run.schedule.clone(),
        in_plan => timeout.is_some(),
        fire => fmt_time(run.fire_time),
        started => run.started_at.map(fmt_time),
        ended => run.ended_at.map(fmt_time),
        status => run.status.clone(),
        took => took.map(duration),
        timeout => timeout.map(|t| duration(t as f64)),
        used => match (took, timeout) {
            (Some(d), Some(t)) if t > 0 => Some(format!("{:.0}%", d / t as f64 * 100.0)),
            _ => None,
        },
        error => run.error.as_deref().map(|e| c.shown(e)),
        plan_hash => short_hash(&run.plan_hash),
        plan_current => run.plan_hash == c.0.plan.plan_hash,
        attempt => run.attempt,
        trigger => if run.by_leader { "scheduler (leader)" } else { "manual (--once, --bootstrap or the console)" },
        runtime => run.runtime.clone(),
        steps => step_views,
        attempts => attempt_views,
        again => timeout.is_some() && matches!(run.status.as_str(), "failed" | "timeout" | "lost" | "cancelled"),
        again_href => format!("/runs/{}/again", url_segment(&run.id)),
    };
    c.page(StatusCode::OK, "run.html", &headers, view)
}

#[derive(Deserialize, Default)]
pub struct Week {
    #[serde(default)]
    week: String,
}

#[derive(Serialize)]
struct CloseRun {
    id: String,
    href: String,
    schedule: String,
    fire: String,
    status: String,
    took: String,
    used: String,
}

pub async fn timeline(
    State(c): State<Console>,
    headers: HeaderMap,
    Query(w): Query<Week>,
) -> Response {
    let zone = &c.0.zone;
    let today = zone.to_local(Utc::now()).date();
    let start = NaiveDate::parse_from_str(w.week.trim(), "%Y-%m-%d").unwrap_or(today);
    // Weeks start on Monday, like `stir timeline`'s pictures read best.
    let start = start - TimeDelta::days(start.weekday().num_days_from_monday() as i64);
    let days = 7;
    let plan = &c.0.plan;
    let tiers: Vec<stir_plan::schedule::Tier> =
        c.0.tiers
            .iter()
            .filter(|t| t.enabled)
            .map(|t| {
                stir_plan::schedule::Tier::new(
                    &t.name,
                    t.cron.clone(),
                    t.timeout.as_secs(),
                    t.heavy,
                    t.skip.clone(),
                )
            })
            .collect();
    let blackouts: Vec<Blackout> = plan
        .blackouts
        .iter()
        .map(|b| Blackout {
            name: b.name.clone(),
            window: stir_plan::schedule::DailyWindow {
                from: b.from,
                to: b.to,
            },
        })
        .collect();
    let from = zone.to_utc(start.and_time(chrono::NaiveTime::MIN));
    let to = zone.to_utc((start + TimeDelta::days(days)).and_time(chrono::NaiveTime::MIN));
    let runs = match Reads(&c.0.history).fired_between(from, to, 20_000).await {
        Ok(r) => r,
        Err(e) => return c.history_down(&headers, e),
    };
    let index: BTreeMap<&str, usize> = tiers
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    let now = Utc::now();
    let mut actual = Vec::new();
    let mut close = Vec::new();
    for r in &runs {
        let Some(&i) = index.get(r.schedule.as_str()) else {
            continue;
        };
        let began = r.started_at.unwrap_or(r.fire_time);
        // Skipped fires have no length; a running one lasts until now.
        let ended = if r.status.starts_with("skipped") || r.status == "missed" {
            began
        } else {
            r.ended_at.unwrap_or(now)
        };
        // Measured from the fire: the window is fire + timeout.
        let used = (ended - r.fire_time).num_milliseconds() as f64
            / (tiers[i].timeout_min as f64 * 60_000.0).max(1.0);
        let near = used >= CLOSE && began != ended;
        let took = duration((ended - began).num_milliseconds() as f64 / 1000.0);
        actual.push(Actual {
            tier: i,
            from: zone.to_local(began),
            to: zone.to_local(ended),
            status: r.status.clone(),
            close: near,
            title: format!(
                "{}: {} ({took}, {:.0}% of its window)",
                r.id,
                r.status,
                used * 100.0
            ),
        });
        if near {
            close.push((used, r, took));
        }
    }
    close.sort_by(|a, b| b.0.total_cmp(&a.0));
    let close: Vec<CloseRun> = close
        .iter()
        .take(15)
        .map(|(used, r, took)| CloseRun {
            id: r.id.clone(),
            href: format!("/runs/{}", url_segment(&r.id)),
            schedule: r.schedule.clone(),
            fire: fmt_time(r.fire_time),
            status: r.status.clone(),
            took: took.clone(),
            used: format!("{:.0}%", used * 100.0),
        })
        .collect();
    let svg = stir_plan::timeline::svg_with(&tiers, &blackouts, zone, start, days as u32, &actual);
    let view = minijinja::context! {
        svg => svg,
        start => start.to_string(),
        zone => zone.to_string(),
        prev => (start - TimeDelta::days(7)).to_string(),
        next => (start + TimeDelta::days(7)).to_string(),
        runs => actual.len(),
        truncated => runs.len() >= 20_000,
        close => close,
        close_pct => format!("{:.0}%", CLOSE * 100.0),
    };
    c.page(StatusCode::OK, "timeline.html", &headers, view)
}

/// The schedules whose `run` steps build model `name`.
fn owners<'a>(plan: &'a stir_plan::Plan, name: &str) -> Vec<&'a stir_plan::Schedule> {
    plan.schedules
        .iter()
        .filter(|s| {
            s.steps.iter().any(
                |st| matches!(st, PlanStep::Run { models } if models.iter().any(|m| m == name)),
            )
        })
        .collect()
}

#[derive(Serialize)]
struct ModelRow {
    name: String,
    materialized: String,
    tags: Vec<String>,
    owners: Vec<String>,
    built: String,
    age: String,
    run_href: String,
}

fn materialized(m: &stir_plan::Model) -> String {
    serde_json::to_value(m.materialized)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub async fn models(State(c): State<Console>, headers: HeaderMap) -> Response {
    let plan = &c.0.plan;
    let names: Vec<String> = plan.models.iter().map(|m| m.name.clone()).collect();
    let builds = match Reads(&c.0.history).last_builds(&names).await {
        Ok(b) => b,
        Err(e) => return c.history_down(&headers, e),
    };
    let now = Utc::now();
    let rows: Vec<ModelRow> = plan
        .models
        .iter()
        .map(|m| {
            let b = builds.get(&m.name);
            ModelRow {
                name: m.name.clone(),
                materialized: materialized(m),
                tags: m.tags.clone(),
                owners: owners(plan, &m.name)
                    .iter()
                    .map(|s| s.name.clone())
                    .collect(),
                built: b
                    .map(|b| format!("{} UTC", fmt_time(b.ended_at)))
                    .unwrap_or_else(|| "never".into()),
                age: b
                    .map(|b| duration((now - b.ended_at).num_seconds() as f64))
                    .unwrap_or_default(),
                run_href: b
                    .map(|b| format!("/runs/{}", url_segment(&b.run_id)))
                    .unwrap_or_default(),
            }
        })
        .collect();
    c.page(
        StatusCode::OK,
        "models.html",
        &headers,
        minijinja::context! { rows => rows },
    )
}

#[derive(Serialize)]
struct Link {
    name: String,
    href: Option<String>,
    note: String,
}

pub async fn model(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let plan = &c.0.plan;
    let Some(m) = plan.model(&name) else {
        return c.message(
            StatusCode::NOT_FOUND,
            &headers,
            "No such model",
            &format!("The plan this runtime runs has no model `{name}`."),
        );
    };
    let build = match Reads(&c.0.history)
        .last_builds(std::slice::from_ref(&name))
        .await
    {
        Ok(mut b) => b.remove(&name),
        Err(e) => return c.history_down(&headers, e),
    };
    let link = |n: &str, note: String| Link {
        name: n.to_string(),
        href: plan.model(n).map(|_| format!("/models/{}", url_segment(n))),
        note,
    };
    let reads: Vec<Link> = m
        .deps
        .iter()
        .map(|d| {
            link(
                d,
                if plan.model(d).is_some() {
                    "model".into()
                } else {
                    "source".into()
                },
            )
        })
        .collect();
    let readers: Vec<Link> = plan
        .models
        .iter()
        .filter(|r| r.deps.contains(&m.name))
        .map(|r| link(&r.name, materialized(r)))
        .collect();
    let owner: Vec<Link> = owners(plan, &m.name)
        .iter()
        .map(|s| Link {
            name: s.name.clone(),
            href: Some(format!("/#{}", url_segment(&s.name))),
            note: format!("{} ({})", cron_words(&s.cron), s.cron),
        })
        .collect();
    let syncs: Vec<Link> = plan
        .syncs
        .iter()
        .filter(|s| s.from == m.name)
        .map(|s| Link {
            name: s.name.clone(),
            href: None,
            note: format!("to PostgreSQL {}.{}", s.postgres.schema, s.postgres.table),
        })
        .collect();
    let now = Utc::now();
    let fresh = freshness(&c, &m.name, build.as_ref().map(|b| b.ended_at), now);
    let view = minijinja::context! {
        fresh => fresh,
        name => m.name.clone(),
        materialized => materialized(m),
        table => m.table.clone(),
        file => m.file.clone(),
        tags => m.tags.clone(),
        reads => reads,
        readers => readers,
        owners => owner,
        syncs => syncs,
        built => build.as_ref().map(|b| fmt_time(b.ended_at)),
        took => build.as_ref().map(|b| duration((b.ended_at - b.started_at).num_milliseconds() as f64 / 1000.0)),
        rows => build.as_ref().and_then(|b| b.rows),
        age => build.as_ref().map(|b| duration((now - b.ended_at).num_seconds() as f64)),
        run_href => build.as_ref().map(|b| format!("/runs/{}", url_segment(&b.run_id))),
    };
    c.page(StatusCode::OK, "model.html", &headers, view)
}

/// Whether a model is fresh: by its `freshness` when it has one (the limit the leader alerts
/// on), otherwise by what its owners' schedules promise: stale when an owner's fire after the
/// last good build has had its whole window (fire + timeout) and did not rebuild it.
fn freshness(c: &Console, model: &str, built: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    if let Some(limit) = c.0.plan.model(model).and_then(|m| m.freshness_secs) {
        let limit_words = duration(limit as f64);
        return match built {
            Some(b) if (now - b).num_seconds() > limit as i64 => {
                format!("stale: older than its freshness of {limit_words}")
            }
            Some(_) => format!("fresh: within its freshness of {limit_words}"),
            None => format!("never built in this history (freshness {limit_words})"),
        };
    }
    let owners = owners(&c.0.plan, model);
    if owners.is_empty() {
        return "no schedule builds it".into();
    }
    let Some(built) = built else {
        return "never built in this history".into();
    };
    for o in owners {
        let Some(tier) = c.0.tiers.iter().find(|t| t.name == o.name && t.enabled) else {
            continue;
        };
        let window = TimeDelta::from_std(tier.timeout).unwrap_or(TimeDelta::MAX);
        // The owner's first real fire after the build, if its window has closed by now.
        if let Some(due) = c.next_fire(tier, built) {
            if due + window < now {
                return format!(
                    "stale: `{}` fired at {} UTC and its window closed without rebuilding it",
                    o.name,
                    fmt_time(due)
                );
            }
        }
    }
    "fresh: no owner's fire since the build has finished its window".into()
}

#[derive(Serialize)]
struct ReplicaView {
    runtime: String,
    this: bool,
    state: String,
    leader_runs: i64,
    manual_runs: i64,
    first: String,
    last: String,
    plans: String,
}

pub async fn plan(State(c): State<Console>, headers: HeaderMap) -> Response {
    let i = &c.0;
    let since = Utc::now() - TimeDelta::days(7);
    let replicas = match Reads(&i.history).replicas(since).await {
        Ok(r) => r,
        Err(e) => return c.history_down(&headers, e),
    };
    let mut views = Vec::new();
    for r in &replicas {
        let this = r.runtime == i.instance;
        let state = if this {
            if i.metrics.is_leader() {
                "leader (this runtime)"
            } else {
                "follower (this runtime)"
            }
            .to_string()
        } else {
            // Alive exactly while it holds its instance lock: while it leads or drains.
            match i.history.runtime_alive(&r.runtime).await {
                Ok(true) => "leader or draining (holds its instance lock)".into(),
                Ok(false) if r.leader_runs == 0 => "manual runs only (--once, --bootstrap)".into(),
                Ok(false) => "not leading (follower, or gone)".into(),
                Err(e) => format!("unknown: {}", c.shown(&e.to_string())),
            }
        };
        views.push(ReplicaView {
            runtime: r.runtime.clone(),
            this,
            state,
            leader_runs: r.leader_runs,
            manual_runs: r.manual_runs,
            first: r.first.map(fmt_time).unwrap_or_default(),
            last: r.last.map(fmt_time).unwrap_or_default(),
            plans: r
                .plan_hashes
                .split(' ')
                .map(short_hash)
                .collect::<Vec<_>>()
                .join(" "),
        });
    }
    if !views.iter().any(|v| v.this) {
        // This runtime has started nothing yet: it is still a replica to show.
        views.insert(
            0,
            ReplicaView {
                runtime: i.instance.clone(),
                this: true,
                state: if i.metrics.is_leader() {
                    "leader (this runtime)"
                } else {
                    "follower (this runtime)"
                }
                .into(),
                leader_runs: 0,
                manual_runs: 0,
                first: String::new(),
                last: String::new(),
                plans: short_hash(&i.plan.plan_hash),
            },
        );
    }
    let p = &i.plan;
    let view = minijinja::context! {
        hash => p.plan_hash.clone(),
        format => p.format_version,
        project => p.project.clone(),
        timezone => p.timezone.clone(),
        loaded => fmt_time(i.loaded_at),
        instance => i.instance.clone(),
        leader => i.metrics.is_leader(),
        schedules => p.schedules.len(),
        models => p.models.len(),
        syncs => p.syncs.len(),
        requests => p.requests.len(),
        replicas => views,
    };
    c.page(StatusCode::OK, "plan.html", &headers, view)
}
