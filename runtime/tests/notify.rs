//! Alert routing against real ClickHouse, PostgreSQL and a local HTTP receiver (127.0.0.1:0)
//! that plays both the scraping endpoint a schedule's request posts to (failing on demand)
//! and the Slack webhooks: a team's schedule alerts its own webhook
//! (`STIR_SLACK_WEBHOOK_TEAM_GROWTH`) with a link to the run, once per failing streak, again
//! ("still failing (N runs)") at most every `repeat`, then once "recovered"; a schedule with
//! `on=never` alerts nothing. Every run is a fresh runtime (`run_once_with`), so what carries
//! the streak from run to run is the state in the history.
//!
//! Needs `scripts/servers.sh up` and `eval "$(scripts/servers.sh env)"`.

#[path = "fixtures/sync/harness.rs"]
mod harness;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Path;
use harness::Case;
use stir_runtime::executor::RunStatus;

/// What the receiver saw: (webhook name, alert text) in arrival order.
type Posted = Arc<Mutex<Vec<(String, String)>>>;

/// `/hook/*` answers 500 while `failing`, else 200; `/slack/{name}` records the alert.
async fn receiver(failing: Arc<AtomicBool>) -> (String, Posted) {
    let posted: Posted = Arc::default();
    let p = posted.clone();
    let app = axum::Router::new()
        .route(
            "/slack/{name}",
            axum::routing::post(move |Path(name): Path<String>, body: String| {
                let p = p.clone();
                async move {
                    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                    p.lock()
                        .unwrap()
                        .push((name, v["text"].as_str().unwrap().to_string()));
                    "ok"
                }
            }),
        )
        .fallback(move || {
            let failing = failing.clone();
            async move {
                if failing.load(Ordering::SeqCst) {
                    (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "down")
                } else {
                    (axum::http::StatusCode::OK, "ok")
                }
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), posted)
}

/// One run of `schedule`, as a fresh runtime would run it.
async fn run(c: &Case, base: &str, schedule: &str) -> RunStatus {
    let mut config = c.config.clone();
    config.history_schema = format!("h_{}", c.id);
    config.slack_webhook = Some(format!("{base}/slack/default"));
    let team = format!("{base}/slack/team");
    config
        .read_webhooks(&c.plan, |k| {
            (k == "STIR_SLACK_WEBHOOK_TEAM_GROWTH").then(|| team.clone())
        })
        .unwrap();
    let runner = c.runner_posting_to(&format!("{base}/"));
    stir_runtime::run_once_with(
        (*c.plan).clone(),
        config,
        schedule,
        stir_runtime::Options {
            runner: Some(Arc::new(runner)),
            force: true,
            ..Default::default()
        },
        std::future::pending(),
    )
    .await
    .unwrap()
}

fn take(posted: &Posted) -> Vec<(String, String)> {
    std::mem::take(&mut *posted.lock().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_schedule_alerts_its_team_once_then_still_failing_then_recovered() {
    let c = Case::with_fixture("notify", "notify").await;
    c.ch(&format!(
        "CREATE TABLE {}.ping_src (code String, n UInt64) ENGINE = MergeTree ORDER BY n",
        c.src
    ))
    .await;
    c.ch(&format!("INSERT INTO {}.ping_src VALUES ('a', 1)", c.src))
        .await;
    let failing = Arc::new(AtomicBool::new(true));
    let (base, posted) = receiver(failing.clone()).await;

    // The first failure: one alert, to the team's webhook, with a link to the run.
    assert_eq!(run(&c, &base, "team_pings").await, RunStatus::Failed);
    let got = take(&posted);
    assert_eq!(got.len(), 1, "{got:#?}");
    let (hook, text) = &got[0];
    assert_eq!(hook, "team", "the team's webhook, not the default one");
    assert!(text.contains("`team_pings` failed"), "{text}");
    assert!(
        text.contains("<https://stir.example.com/runs/team_pings-")
            && text.contains("-a1|open the run>"),
        "{text}"
    );
    // Failing again right away: nothing (alerted less than `repeat` ago).
    assert_eq!(run(&c, &base, "team_pings").await, RunStatus::Failed);
    assert_eq!(take(&posted), vec![]);
    // Failing still, `repeat` (5 s) after the alert: one follow-up with the count.
    tokio::time::sleep(Duration::from_millis(5200)).await;
    assert_eq!(run(&c, &base, "team_pings").await, RunStatus::Failed);
    let got = take(&posted);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].0, "team");
    assert!(
        got[0].1.contains("`team_pings` still failing (3 runs)"),
        "{}",
        got[0].1
    );
    // The endpoint is back: one "recovered", then nothing for further successes.
    failing.store(false, Ordering::SeqCst);
    assert_eq!(run(&c, &base, "team_pings").await, RunStatus::Ok);
    let got = take(&posted);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].0, "team");
    assert!(
        got[0]
            .1
            .contains("`team_pings` recovered after 3 failed runs"),
        "{}",
        got[0].1
    );
    assert_eq!(run(&c, &base, "team_pings").await, RunStatus::Ok);
    assert_eq!(take(&posted), vec![]);
    // A new streak alerts again at once.
    failing.store(true, Ordering::SeqCst);
    assert_eq!(run(&c, &base, "team_pings").await, RunStatus::Failed);
    let got = take(&posted);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(got[0].1.contains("`team_pings` failed"), "{}", got[0].1);

    // `on=never`: a failing schedule alerts nobody.
    assert_eq!(run(&c, &base, "quiet_pings").await, RunStatus::Failed);
    assert_eq!(take(&posted), vec![]);

    // The streaks are in the history, where the next runtime (or leader) finds them.
    let rows: Vec<(String, i64)> =
        c.pg.query(
            &format!(
                "SELECT schedule, failures FROM h_{}.alert_state ORDER BY schedule",
                c.id
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        rows,
        [
            ("quiet_pings".to_string(), 1),
            ("team_pings".to_string(), 1)
        ]
    );
    c.finish().await;
}

/// A TCP forwarder to the real PostgreSQL that can be cut: every connection through it is
/// dropped and new ones are refused, as when the database goes away.
struct CutProxy {
    addr: std::net::SocketAddr,
    cut: tokio::sync::watch::Sender<bool>,
}

impl CutProxy {
    async fn start(upstream: String) -> CutProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, cut_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let mut stop = cut_rx.clone();
            loop {
                let (client, _) = tokio::select! {
                    a = listener.accept() => match a { Ok(a) => a, Err(_) => return },
                    _ = stop.changed() => return,
                };
                let (upstream, mut stop) = (upstream.clone(), cut_rx.clone());
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let mut client = client;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = stop.changed() => {}
                    }
                });
            }
        });
        CutProxy { addr, cut }
    }

    fn cut(&self) {
        self.cut.send_replace(true);
    }
}

/// The history (and with it the alert state) goes away between runs: the failing run's alert
/// goes out anyway (a duplicate of the streak's first, not silence), a success sends no
/// "recovered" (the streak cannot be read) and nothing hangs or panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failure_is_alerted_even_when_the_history_is_unreachable_at_the_run_end() {
    use stir_runtime::alert::{Alert, AlertKind, Alerter};
    use stir_runtime::notify::{Ended, Notifier};
    let c = Case::with_fixture("notify_down", "notify").await;
    let url = c.config.postgres_url.clone().unwrap();
    let (before, after) = url.split_once('@').unwrap();
    let (host_port, rest) = after.split_once('/').unwrap();
    let proxy = CutProxy::start(host_port.to_string()).await;
    let through = format!("{before}@{}/{rest}", proxy.addr);
    let history = stir_runtime::history::PgHistory::open(&through, &format!("h_{}", c.id))
        .await
        .unwrap();
    let notifier = Notifier::new(c.plan.clone(), Some(Arc::new(history)));
    let (alerts, sent) = Alerter::memory();
    let fire = chrono::Utc::now();
    let failed = |run: &str| Ended::Failed(Alert::new(AlertKind::Failure, "team_pings", run, fire));
    // The state works: the first failure alerts, the second (within `repeat`) does not.
    notifier
        .run_ended(&alerts, "team_pings", "r1", fire, failed("r1"))
        .await;
    notifier
        .run_ended(&alerts, "team_pings", "r2", fire, failed("r2"))
        .await;
    assert_eq!(
        sent.lock().unwrap().len(),
        1,
        "de-duplicated while the state is there"
    );

    proxy.cut();
    let ended = tokio::time::timeout(Duration::from_secs(60), async {
        notifier
            .run_ended(&alerts, "team_pings", "r3", fire, failed("r3"))
            .await;
        notifier
            .run_ended(&alerts, "team_pings", "r4", fire, Ended::Ok)
            .await;
    })
    .await;
    assert!(ended.is_ok(), "run ends wait for an unreachable history");
    let sent = sent.lock().unwrap().clone();
    let kinds: Vec<(AlertKind, &str)> = sent.iter().map(|a| (a.kind, a.run_id.as_str())).collect();
    assert_eq!(
        kinds,
        [(AlertKind::Failure, "r1"), (AlertKind::Failure, "r3")],
        "the failure alerted again; no `recovered` without the state"
    );
    c.finish().await;
}
