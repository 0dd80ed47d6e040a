//! Slack-compatible webhook alerts (`POST {"text": ...}`). Sending never blocks scheduling:
//! alerts go through a bounded queue to one task that retries each POST a few times. Each alert
//! goes to its webhook: `STIR_SLACK_WEBHOOK`, or `STIR_SLACK_WEBHOOK_<NAME>` for a schedule
//! whose `notify` names one (which alerts a run gets is `notify.rs`'s).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    Failure,
    Timeout,
    SkippedHeavy,
    /// A fire that found a run of its own schedule active (a long previous run, a manual
    /// `run` or `--once`, a run another runtime started) and did not start.
    SkippedRunning,
    Cancelled,
    /// A run still marked running long past its deadline: its end was never recorded.
    Lost,
    /// A fire that did not run and should have (its start could not be confirmed).
    Missed,
    /// A model whose last successful build is older than its `freshness`.
    Stale,
    /// Only with `notify slack on=always`.
    Success,
    /// `rollback SYNC` swapped the backup back in (`step` names the sync).
    RolledBack,
    /// `rollback SYNC` failed or was refused (`step` names the sync).
    RollbackFailed,
    /// A schedule alerted as failing failed again, `repeat` after its last alert (`runs`).
    StillFailing,
    /// A schedule alerted as failing succeeded (`runs`: the failed runs before).
    Recovered,
    /// A plan reload (SIGHUP) was refused; `run_id` holds the plan hash still running.
    ReloadRefused,
    /// Live replicas run different plans; `run_id` holds this runtime's plan hash, `error`
    /// names the others.
    PlansDiffer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub kind: AlertKind,
    pub schedule: String,
    pub run_id: String,
    pub fire: DateTime<Utc>,
    pub step: Option<String>,
    pub error: Option<String>,
    /// The named webhook it goes to (`STIR_SLACK_WEBHOOK_<NAME>`); `None`: the default one.
    pub webhook: Option<String>,
    /// A link to the run, shown at the end.
    pub link: Option<String>,
    /// Failed runs in a row (still failing, recovered).
    pub runs: Option<u64>,
}

impl Alert {
    pub fn new(kind: AlertKind, schedule: &str, run_id: &str, fire: DateTime<Utc>) -> Alert {
        Alert {
            kind,
            schedule: schedule.into(),
            run_id: run_id.into(),
            fire,
            step: None,
            error: None,
            webhook: None,
            link: None,
            runs: None,
        }
    }
    pub fn step(mut self, step: &str) -> Alert {
        self.step = Some(step.into());
        self
    }
    pub fn error(mut self, error: &str) -> Alert {
        self.error = Some(error.into());
        self
    }

    /// The message text (Slack mrkdwn).
    pub fn text(&self) -> String {
        if matches!(self.kind, AlertKind::RolledBack | AlertKind::RollbackFailed) {
            return self.rollback_text();
        }
        if self.kind == AlertKind::PlansDiffer {
            return format!(
                ":warning: stir: the replicas run different plans; the leader runs plan `{}`\n{}{}",
                slack_escape(&self.run_id),
                self.fire.format("%Y-%m-%d %H:%M UTC"),
                self.error_block()
            );
        }
        if self.kind == AlertKind::ReloadRefused {
            return format!(
                ":red_circle: stir: plan reload refused; the runtime goes on with plan `{}`\n{}{}",
                slack_escape(&self.run_id),
                self.fire.format("%Y-%m-%d %H:%M UTC"),
                self.error_block()
            );
        }
        let what = match self.kind {
            AlertKind::Failure => "failed",
            AlertKind::Timeout => "timed out",
            AlertKind::SkippedHeavy => "skipped: another heavy schedule is running",
            AlertKind::SkippedRunning => "skipped: a run of it is still active",
            AlertKind::Cancelled => "cancelled at shutdown",
            AlertKind::Lost => "lost: its end was never recorded",
            AlertKind::Missed => "missed: the run did not start",
            AlertKind::Stale => "stale: a model is older than its freshness",
            AlertKind::Success => "succeeded",
            AlertKind::StillFailing => "still failing",
            AlertKind::Recovered => "recovered",
            AlertKind::RolledBack
            | AlertKind::RollbackFailed
            | AlertKind::ReloadRefused
            | AlertKind::PlansDiffer => {
                unreachable!("rollback_text, reload, replicas")
            }
        };
        let what = match (self.kind, self.runs) {
            (AlertKind::StillFailing, Some(n)) => format!("{what} ({n} runs)"),
            (AlertKind::Recovered, Some(n)) => {
                format!(
                    "{what} after {n} failed run{}",
                    if n == 1 { "" } else { "s" }
                )
            }
            _ => what.to_string(),
        };
        let icon = match self.kind {
            AlertKind::Success | AlertKind::Recovered => ":white_check_mark:",
            AlertKind::SkippedHeavy | AlertKind::SkippedRunning | AlertKind::Stale => ":warning:",
            _ => ":red_circle:",
        };
        let mut t = format!(
            "{icon} stir: schedule `{}` {what}",
            slack_escape(&self.schedule)
        );
        if let Some(step) = &self.step {
            t.push_str(&format!(" at step `{}`", slack_escape(step)));
        }
        t.push_str(&format!(
            "\nrun `{}`, fired {}",
            slack_escape(&self.run_id),
            self.fire.format("%Y-%m-%d %H:%M UTC")
        ));
        t.push_str(&self.error_block());
        if let Some(link) = &self.link {
            t.push_str(&format!("\n<{}|open the run>", slack_escape(link)));
        }
        t
    }
}

impl Alert {
    /// The error, redacted, cut to 2500 characters, in a code block; or nothing.
    fn error_block(&self) -> String {
        let Some(e) = &self.error else {
            return String::new();
        };
        let e: String = e.chars().take(2500).collect();
        format!("\n```{}```", slack_escape(&crate::config::redact_text(&e)))
    }

    /// A rollback is an operator's act on a sync, not a schedule's run: said so.
    fn rollback_text(&self) -> String {
        let sync = slack_escape(self.step.as_deref().unwrap_or("?"));
        let mut t = match self.kind {
            AlertKind::RolledBack => format!(
                ":rewind: stir: sync `{sync}` rolled back: its backup is live again, and the table it replaced is the backup"
            ),
            _ => format!(":red_circle: stir: rollback of sync `{sync}` failed; the live table is unchanged unless the error says otherwise"),
        };
        t.push_str(&format!(
            "\nrun `{}`, {}",
            slack_escape(&self.run_id),
            self.fire.format("%Y-%m-%d %H:%M UTC")
        ));
        t.push_str(&self.error_block());
        t
    }
}

/// Text that Slack shows as written: `&`, `<` and `>` escaped as Slack asks, so a value from
/// the data cannot become a mention (`<!channel>`) or a link; backticks turned into a look-alike,
/// so it cannot close the code block around an error and format what follows.
pub fn slack_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '`' => out.push('\u{2018}'),
            c => out.push(c),
        }
    }
    out
}

enum Msg {
    Alert(Alert),
    Flush(oneshot::Sender<()>),
}

/// Sets an alert's webhook and link before it is queued (`notify.rs`).
pub type Route = Arc<dyn Fn(Alert) -> Alert + Send + Sync>;

/// Cheap to clone; every clone feeds the same queue.
#[derive(Clone, Default)]
pub struct Alerter {
    tx: Option<mpsc::Sender<Msg>>,
    memory: Option<Arc<Mutex<Vec<Alert>>>>,
    route: Option<Route>,
}

/// Alerts waiting to be posted; when full, new alerts are logged and dropped.
const QUEUE: usize = 256;
const TRIES: u32 = 4;

impl Alerter {
    /// Alerts are only logged.
    pub fn log_only() -> Alerter {
        Alerter::default()
    }

    /// Alerts are kept in memory (tests).
    pub fn memory() -> (Alerter, Arc<Mutex<Vec<Alert>>>) {
        let m = Arc::new(Mutex::new(Vec::new()));
        (
            Alerter {
                tx: None,
                memory: Some(m.clone()),
                route: None,
            },
            m,
        )
    }

    /// Alerts are POSTed to `url` by a spawned task.
    pub fn webhook(url: String, first_backoff: Duration) -> Alerter {
        Alerter::webhooks(Some(url), Default::default(), first_backoff)
    }

    /// Alerts are POSTed by a spawned task to their named webhook (`named`), or to `default`
    /// (an alert for a named webhook the runtime has no URL for goes there too, with a
    /// warning: better the wrong channel than none).
    pub fn webhooks(
        default: Option<String>,
        named: std::collections::BTreeMap<String, String>,
        first_backoff: Duration,
    ) -> Alerter {
        let (tx, mut rx) = mpsc::channel::<Msg>(QUEUE);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                match msg {
                    Msg::Alert(a) => {
                        let url = match a.webhook.as_ref().map(|n| (n, named.get(n))) {
                            Some((_, Some(u))) => Some(u),
                            Some((n, None)) => {
                                warn!(webhook = %n, "no URL for this webhook; the alert goes to STIR_SLACK_WEBHOOK");
                                default.as_ref()
                            }
                            None => default.as_ref(),
                        };
                        match url {
                            Some(url) => post(&client, url, &a, first_backoff).await,
                            None => {
                                warn!(schedule = %a.schedule, "no webhook for this alert; it is only logged")
                            }
                        }
                    }
                    Msg::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        Alerter {
            tx: Some(tx),
            memory: None,
            route: None,
        }
    }

    /// This alerter with every alert routed by `route` first (its schedule's webhook and
    /// link), whoever sends it: run ends, skipped and missed fires, lost runs, stale models.
    pub fn routed(mut self, route: Route) -> Alerter {
        self.route = Some(route);
        self
    }

    /// Queue an alert; never waits.
    pub fn send(&self, alert: Alert) {
        let alert = match &self.route {
            Some(r) => r(alert),
            None => alert,
        };
        info!(schedule = %alert.schedule, kind = ?alert.kind, step = alert.step.as_deref().unwrap_or("-"), "alert");
        if let Some(m) = &self.memory {
            if let Ok(mut g) = m.lock() {
                g.push(alert.clone());
            }
        }
        if let Some(tx) = &self.tx {
            if let Err(e) = tx.try_send(Msg::Alert(alert)) {
                warn!(
                    "alert dropped: {}",
                    match e {
                        mpsc::error::TrySendError::Full(_) => "queue full",
                        mpsc::error::TrySendError::Closed(_) => "sender stopped",
                    }
                );
            }
        }
    }

    /// Wait (at most `limit`) until every alert queued so far has been posted or given up.
    pub async fn flush(&self, limit: Duration) {
        let Some(tx) = &self.tx else { return };
        let (done, wait) = oneshot::channel();
        let _ = tokio::time::timeout(limit, async {
            if tx.send(Msg::Flush(done)).await.is_ok() {
                let _ = wait.await;
            }
        })
        .await;
    }
}

async fn post(client: &reqwest::Client, url: &str, alert: &Alert, first_backoff: Duration) {
    let body = serde_json::json!({ "text": alert.text() });
    let mut backoff = first_backoff;
    for attempt in 1..=TRIES {
        match client.post(url).json(&body).send().await {
            Ok(r) if r.status().is_success() => return,
            Ok(r) => warn!(
                status = r.status().as_u16(),
                attempt, "webhook refused the alert"
            ),
            // reqwest errors can carry the URL (whose path is the secret): print the kind only
            Err(e) => warn!(
                attempt,
                timeout = e.is_timeout(),
                connect = e.is_connect(),
                "webhook unreachable"
            ),
        }
        if attempt < TRIES {
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
    }
    warn!(schedule = %alert.schedule, "alert not delivered after {TRIES} tries");
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn text_names_schedule_step_and_error() {
        let fire = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 1, 1, 19, 0, 0)
            .single()
            .unwrap_or_default();
        let a = Alert::new(AlertKind::Failure, "dbt_daily", "dbt_daily-x-a1", fire)
            .step("mart_leaderboard")
            .error("Code: 241. DB::Exception: Memory limit exceeded");
        assert_eq!(
            a.text(),
            ":red_circle: stir: schedule `dbt_daily` failed at step `mart_leaderboard`\nrun `dbt_daily-x-a1`, fired 2026-01-01 19:00 UTC\n```Code: 241. DB::Exception: Memory limit exceeded```"
        );
    }

    #[test]
    fn data_in_an_error_cannot_mention_link_or_break_out_of_the_code_block() {
        let a = Alert::new(AlertKind::Failure, "s", "r", Utc::now()).error(
            "bad row: <!channel> <https://evil.example|click> ``` *bold* & postgres://u:pw@h/d",
        );
        let t = a.text();
        for bad in ["<!channel>", "<https://", "pw@", "``` *bold*"] {
            assert!(!t.contains(bad), "{bad} in {t}");
        }
        assert!(t.contains("&lt;!channel&gt;") && t.contains("&amp;"), "{t}");
        assert_eq!(t.matches("```").count(), 2, "one code block: {t}");
    }

    #[tokio::test]
    async fn webhook_posts_are_retried_until_accepted() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let (tx, mut rx) = mpsc::unbounded_channel::<u16>();
        tokio::spawn(async move {
            for status in [500u16, 503, 200] {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = [0u8; 8192];
                let _ = sock.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = sock.write_all(reply.as_bytes()).await;
                let _ = tx.send(status);
            }
        });
        let alerter = Alerter::webhook(format!("http://{addr}/hook"), Duration::from_millis(10));
        alerter.send(Alert::new(AlertKind::Timeout, "s", "r", Utc::now()));
        alerter.flush(Duration::from_secs(10)).await;
        let mut seen = Vec::new();
        while let Ok(s) = rx.try_recv() {
            seen.push(s);
        }
        assert_eq!(seen, vec![500, 503, 200]);
    }
}
