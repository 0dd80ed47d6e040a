//! Which alerts a run's end sends, and where: each schedule's `notify` (its own, else the
//! plan's top one, else failures to `STIR_SLACK_WEBHOOK`), a link to the run, and no alert
//! storm. A schedule that fails run after run sends one alert, then a "still failing (N runs)"
//! follow-up at most every `repeat`, then one "recovered" when a run succeeds.
//!
//! The state behind that (failed runs in a row, when the last alert went out) is a row per
//! schedule in the history's `alert_state` table, updated by one statement per run end, so it
//! survives restarts and leader changes and is shared with `--once` runs. When the history
//! cannot be reached the alert is sent anyway: a duplicate is better than a silent failure.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use stir_plan::{Notify, NotifyOn, Plan};
use tracing::warn;

use crate::alert::{Alert, AlertKind, Alerter};
use crate::history::PgHistory;

/// How a run ended, for its alerts.
pub enum Ended {
    Ok,
    /// Failed or timed out: its alert as it would go out alone.
    Failed(Alert),
}

/// The decisions and state of run alerts; see the module's doc.
pub struct Notifier {
    plan: Option<Arc<Plan>>,
    state: Option<Arc<PgHistory>>,
}

/// What `notify` a schedule without one (and a plan without a top one) gets: failures, to
/// the default webhook, with the default repeat.
fn fallback() -> Notify {
    Notify {
        on: NotifyOn::Failure,
        webhook: None,
        link: None,
        repeat_secs: stir_plan::DEFAULT_REPEAT_SECS,
    }
}

/// What the state says to do about a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// The first failure after a success (or ever): alert.
    First,
    /// Failing since the last alert, which is `repeat` old: "still failing (N runs)".
    Still(u64),
    /// Failing, alerted recently: nothing.
    Quiet,
}

impl Notifier {
    /// `state`: the history holding the alert state; `None` (tests without PostgreSQL):
    /// every failure alerts, no "recovered".
    pub fn new(plan: Arc<Plan>, state: Option<Arc<PgHistory>>) -> Notifier {
        Notifier {
            plan: Some(plan),
            state,
        }
    }

    /// Every failure alerts, to the default webhook, nothing else (tests of the scheduler).
    pub fn failures_only() -> Notifier {
        Notifier {
            plan: None,
            state: None,
        }
    }

    /// The schedule's `notify`, as the plan resolved it.
    pub fn policy(&self, schedule: &str) -> Notify {
        let Some(plan) = &self.plan else {
            return fallback();
        };
        plan.schedule(schedule)
            .and_then(|s| s.notify.clone())
            .or_else(|| plan.notify.clone())
            .unwrap_or_else(fallback)
    }

    /// Route `alert` as `schedule`'s `notify` says (webhook and link); for alerts outside
    /// run ends too (skipped heavy, lost, missed, cancelled).
    pub fn route(&self, mut alert: Alert) -> Alert {
        let policy = self.policy(&alert.schedule);
        alert.webhook = policy.webhook.clone();
        alert.link = policy
            .link
            .as_deref()
            .map(|l| link(l, &alert.schedule, &alert.run_id));
        alert
    }

    /// Whether `schedule`'s alerts are wanted at all (`on=never` silences them).
    pub fn silenced(&self, schedule: &str) -> bool {
        self.policy(schedule).on == NotifyOn::Never
    }

    /// A run of `schedule` ended: update the state and send what its `notify` asks for.
    pub async fn run_ended(
        &self,
        alerts: &Alerter,
        schedule: &str,
        run_id: &str,
        fire: DateTime<Utc>,
        ended: Ended,
    ) {
        let policy = self.policy(schedule);
        let now = Utc::now();
        match ended {
            Ended::Ok => {
                let recovered = match &self.state {
                    Some(h) => match recover(h, schedule).await {
                        Ok(n) => n,
                        Err(e) => {
                            warn!(schedule, error = %e, "cannot read the alert state; no `recovered` alert");
                            0
                        }
                    },
                    None => 0,
                };
                if policy.on == NotifyOn::Never {
                    return;
                }
                if recovered > 0 {
                    let mut a = Alert::new(AlertKind::Recovered, schedule, run_id, fire);
                    a.runs = Some(recovered);
                    alerts.send(self.route(a));
                }
                if policy.on == NotifyOn::Always {
                    alerts.send(self.route(Alert::new(AlertKind::Success, schedule, run_id, fire)));
                }
            }
            Ended::Failed(alert) => {
                let repeat = Duration::from_secs(policy.repeat_secs);
                let decision = match &self.state {
                    Some(h) => match failed(h, schedule, now, repeat).await {
                        Ok(d) => d,
                        Err(e) => {
                            warn!(schedule, error = %e, "cannot read the alert state; alerting anyway");
                            Decision::First
                        }
                    },
                    None => Decision::First,
                };
                if policy.on == NotifyOn::Never {
                    return;
                }
                match decision {
                    Decision::First => alerts.send(self.route(alert)),
                    Decision::Still(n) => {
                        let mut a = alert;
                        a.kind = AlertKind::StillFailing;
                        a.runs = Some(n);
                        alerts.send(self.route(a));
                    }
                    Decision::Quiet => {
                        tracing::info!(
                            schedule,
                            run_id,
                            "still failing; alerted recently, so no alert (repeat)"
                        );
                    }
                }
            }
        }
    }
}

/// `template` with `{run_id}` and `{schedule}` filled in, percent-encoded.
fn link(template: &str, schedule: &str, run_id: &str) -> String {
    const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, UNRESERVED).to_string();
    template
        .replace("{run_id}", &enc(run_id))
        .replace("{schedule}", &enc(schedule))
}

async fn ensure_table(h: &PgHistory) -> Result<Arc<tokio_postgres::Client>, String> {
    let c = h.client().await.map_err(|e| e.to_string())?;
    c.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {}.alert_state (
             schedule      text PRIMARY KEY,
             failures      bigint NOT NULL,
             failing_since timestamptz,
             last_alert_at timestamptz,
             decision      text NOT NULL
         )",
        h.schema()
    ))
    .await
    .map_err(|e| crate::history::pg_message(&e))?;
    Ok(c)
}

/// Count one more failure of `schedule` and decide, in one statement (its row lock keeps two
/// processes from both alerting), whether it alerts.
async fn failed(
    h: &PgHistory,
    schedule: &str,
    now: DateTime<Utc>,
    repeat: Duration,
) -> Result<Decision, String> {
    let c = ensure_table(h).await?;
    let repeat_secs = repeat.as_secs_f64();
    let row = c
        .query_one(
            &format!(
                "INSERT INTO {0}.alert_state AS a (schedule, failures, failing_since, last_alert_at, decision)
                 VALUES ($1, 1, $2, $2, 'first')
                 ON CONFLICT (schedule) DO UPDATE SET
                   failures = a.failures + 1,
                   failing_since = CASE WHEN a.failures = 0 THEN $2 ELSE a.failing_since END,
                   decision = CASE
                     WHEN a.failures = 0 THEN 'first'
                     WHEN a.last_alert_at IS NULL OR a.last_alert_at <= $2 - make_interval(secs => $3) THEN 'still'
                     ELSE 'quiet' END,
                   last_alert_at = CASE
                     WHEN a.failures = 0 OR a.last_alert_at IS NULL
                       OR a.last_alert_at <= $2 - make_interval(secs => $3) THEN $2
                     ELSE a.last_alert_at END
                 RETURNING decision, failures",
                h.schema()
            ),
            &[&schedule, &now, &repeat_secs],
        )
        .await
        .map_err(|e| crate::history::pg_message(&e))?;
    let decision: String = row.get(0);
    let failures: i64 = row.get(1);
    Ok(match decision.as_str() {
        "first" => Decision::First,
        "still" => Decision::Still(failures as u64),
        _ => Decision::Quiet,
    })
}

/// A success of `schedule`: answers the failed runs in a row before it (0: it was not
/// failing), and resets the count.
async fn recover(h: &PgHistory, schedule: &str) -> Result<u64, String> {
    let c = ensure_table(h).await?;
    let row = c
        .query_opt(
            &format!(
                "UPDATE {0}.alert_state a SET failures = 0, failing_since = NULL, last_alert_at = NULL, decision = 'ok'
                 FROM (SELECT schedule, failures FROM {0}.alert_state WHERE schedule = $1 FOR UPDATE) old
                 WHERE a.schedule = old.schedule AND old.failures > 0
                 RETURNING old.failures",
                h.schema()
            ),
            &[&schedule],
        )
        .await
        .map_err(|e| crate::history::pg_message(&e))?;
    Ok(row.map_or(0, |r| r.get::<_, i64>(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every alert through a routed alerter goes to its schedule's webhook with its link,
    /// whoever sends it (here a lost run, which the leader's sweep sends); others keep the
    /// default webhook.
    #[test]
    fn alerts_about_a_schedule_follow_its_notify() {
        let plan: Plan = serde_json::from_value(serde_json::json!({
            "format_version": 6, "manifest_hash": "", "project": "p", "timezone": "UTC",
            "warehouse": {"database": "d", "cluster": null, "threads": 1},
            "serving": null, "staging": null, "endpoints": [], "blackouts": [],
            "notify": {"on": "failure", "webhook": null, "link": null, "repeat_secs": 3600},
            "schedules": [{
                "name": "team", "cron": "0 6 * * *", "timeout_secs": 60, "heavy": false,
                "enabled": true, "retries": 0, "on_missed": "skip", "threads": null,
                "notify": {"on": "failure", "webhook": "team-growth",
                           "link": "https://stir.example.com/runs/{run_id}", "repeat_secs": 60},
                "skip": [], "steps": []
            }],
            "models": [], "syncs": [], "requests": [], "plan_hash": ""
        }))
        .unwrap();
        let n = Arc::new(Notifier::new(Arc::new(plan), None));
        let (alerts, sent) = Alerter::memory();
        let alerts = alerts.routed(Arc::new(move |a| n.route(a)));
        let fire = Utc::now();
        alerts.send(Alert::new(AlertKind::Lost, "team", "team-1-a1", fire));
        alerts.send(Alert::new(AlertKind::Lost, "other", "other-1-a1", fire));
        let sent = sent.lock().unwrap().clone();
        assert_eq!(sent[0].webhook.as_deref(), Some("team-growth"));
        assert_eq!(
            sent[0].link.as_deref(),
            Some("https://stir.example.com/runs/team-1-a1")
        );
        assert!(sent[0]
            .text()
            .ends_with("<https://stir.example.com/runs/team-1-a1|open the run>"));
        assert_eq!(
            (sent[1].webhook.as_deref(), sent[1].link.as_deref()),
            (None, None)
        );
    }

    #[test]
    fn links_fill_in_the_run_and_schedule_encoded() {
        assert_eq!(
            link(
                "https://stir.example.com/runs/{run_id}?s={schedule}",
                "dbt_core",
                "dbt_core-20261201T001500000Z-a1"
            ),
            "https://stir.example.com/runs/dbt_core-20261201T001500000Z-a1?s=dbt_core"
        );
        assert_eq!(
            link("https://x/{run_id}", "s", "@r&x"),
            "https://x/%40r%26x"
        );
    }
}
