//! `--dry-run`: the next fires of each schedule and the statements each would run, computed
//! from the plan alone (no server is touched).

use std::fmt::Write;

use chrono::{DateTime, Duration, Utc};
use stir_plan::{Materialized, Plan, Step};

use crate::run::humanize;
use crate::scheduler::{next_event, prepare, PlanCheckError};

/// Fires listed per schedule, within [`HORIZON_H`] hours (at least one, if it ever fires).
pub const FIRES: usize = 5;
pub const HORIZON_H: i64 = 24;

pub fn render(plan: &Plan, now: DateTime<Utc>) -> Result<String, PlanCheckError> {
    let (zone, tiers) = prepare(plan)?;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "plan {} (project `{}`, timezone {}, warehouse database `{}`)",
        plan.plan_hash.get(..12).unwrap_or(&plan.plan_hash),
        plan.project,
        zone,
        plan.warehouse.database
    );
    let _ = writeln!(o, "now {}", now.format("%Y-%m-%d %H:%M:%S UTC"));
    for (tier, schedule) in tiers.iter().zip(&plan.schedules) {
        let _ = writeln!(o);
        let mut flags = vec![format!("timeout {}", humanize(tier.timeout))];
        if tier.heavy {
            flags.push("heavy".into());
        }
        if tier.retries > 0 {
            flags.push(format!("retries {}", tier.retries));
        }
        if !schedule.skip.is_empty() {
            let names: Vec<&str> = schedule.skip.iter().map(|w| w.name.as_str()).collect();
            flags.push(format!("skip {}", names.join(" ")));
        }
        let _ = writeln!(
            o,
            "schedule {}  cron \"{}\"  {}",
            tier.name,
            schedule.cron,
            flags.join(", ")
        );
        if !tier.enabled {
            let _ = writeln!(o, "  disabled: never fires");
        } else {
            let _ = writeln!(o, "  next fires (UTC -> {zone}):");
            let mut after = now;
            let mut shown = 0;
            while shown < FIRES {
                let Some((t, blackout)) = next_event(&zone, tier, after) else {
                    if shown == 0 {
                        let _ = writeln!(o, "    never");
                    }
                    break;
                };
                after = t;
                if blackout {
                    continue;
                }
                if shown > 0 && t > now + Duration::hours(HORIZON_H) {
                    break;
                }
                let _ = writeln!(
                    o,
                    "    {}  ({})",
                    t.format("%Y-%m-%d %H:%M"),
                    zone.to_local(t).format("%Y-%m-%d %H:%M")
                );
                shown += 1;
            }
        }
        let _ = writeln!(o, "  steps:");
        for (i, step) in schedule.steps.iter().enumerate() {
            match step {
                Step::Sql { sql } => {
                    let _ = writeln!(o, "    {}. sql", i + 1);
                    statement(&mut o, sql);
                }
                Step::Run { models } => {
                    let _ = writeln!(
                        o,
                        "    {}. run {} model{}",
                        i + 1,
                        models.len(),
                        if models.len() == 1 { "" } else { "s" }
                    );
                    for name in models {
                        let Some(m) = plan.model(name) else { continue };
                        let kind = match m.materialized {
                            Materialized::Table => "table",
                            Materialized::View => "view",
                            Materialized::Incremental => "incremental",
                        };
                        let _ = writeln!(o, "       model {name} ({kind} {})", m.table);
                        if m.materialized == Materialized::Incremental {
                            if let Some(e) = &m.exists {
                                let _ = writeln!(o, "         exists:");
                                statement(&mut o, e);
                            }
                            let _ = writeln!(o, "         first build:");
                            for s in &m.first_build {
                                statement(&mut o, s);
                            }
                            let _ = writeln!(o, "         incremental:");
                            for s in &m.incremental {
                                statement(&mut o, s);
                            }
                        } else {
                            for s in &m.build {
                                statement(&mut o, s);
                            }
                        }
                    }
                }
                Step::Sync { sync } => {
                    let _ = writeln!(o, "    {}. sync {sync}", i + 1);
                    if let Some(s) = plan.syncs.iter().find(|s| &s.name == sync) {
                        let _ = writeln!(o, "         export ({}):", s.clickhouse.format);
                        statement(&mut o, &s.clickhouse.select);
                        let _ = writeln!(
                            o,
                            "         load into {}.{}:",
                            s.postgres.schema, s.postgres.table
                        );
                        for q in s
                            .postgres
                            .prepare
                            .iter()
                            .chain([&s.postgres.copy])
                            .chain(&s.postgres.transform)
                            .chain(&s.postgres.finish)
                            .chain(&s.postgres.swap)
                        {
                            statement(&mut o, q);
                        }
                    }
                }
                Step::Request { request } => {
                    let _ = writeln!(o, "    {}. request {request}", i + 1);
                    if let Some(r) = plan.requests.iter().find(|r| &r.name == request) {
                        statement(&mut o, &r.sql);
                        let _ = writeln!(o, "         POST {} {} per row", r.endpoint, r.path);
                    }
                }
            }
        }
    }
    Ok(o)
}

fn statement(o: &mut String, sql: &str) {
    let lines: Vec<&str> = sql
        .trim()
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    for (i, line) in lines.iter().enumerate() {
        let end = if i + 1 == lines.len() { ";" } else { "" };
        let _ = writeln!(o, "           {line}{end}");
    }
}
