//! Plan reloads with the real binary, real servers and real signals: SIGHUP with a new plan
//! fires the new plan from its next fire while the old plan's run finishes (and keeps the heavy
//! slot), the history names each run's plan, and a refused plan leaves the old one firing with
//! an alert, `/healthz` and the metrics saying so. (Fine timing: `reload.rs`, paused clock.)

#[path = "support/servers.rs"]
mod servers;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use servers::*;
use stir::plan::{Plan, Step};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stir-runtime"))
}

/// A running `stir-runtime plan.json --listen`, its log collected.
struct Runtime {
    child: Child,
    log: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
    base: String,
}

impl Runtime {
    fn start(w: &World, env: &[(&str, String)]) -> Runtime {
        Runtime::start_at(w, &w.plan_path, env)
    }

    /// On the plan at `plan` (another host's copy).
    fn start_at(w: &World, plan: &std::path::Path, env: &[(&str, String)]) -> Runtime {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = bin();
        cmd.arg(plan)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--grace", "5s"])
            .env("STIR_HISTORY_SCHEMA", &w.config.history_schema)
            .env("STIR_LEADER_POLL", "1s")
            .env_remove("STIR_PLAN_PUBLIC_KEY")
            .env_remove("STIR_PLAN_KEY")
            .env_remove("STIR_SLACK_WEBHOOK")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let (log, reader) = collect_stderr(&mut child);
        let rt = Runtime {
            child,
            log,
            reader: Some(reader),
            base: format!("http://127.0.0.1:{port}"),
        };
        rt.wait_log("runtime instance", 1);
        rt
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Wait until `what` is in the log `n` times.
    fn wait_log(&self, what: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.log().matches(what).count() < n {
            assert!(
                Instant::now() < deadline,
                "no {n}x `{what}` in:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name}");
    }

    async fn get(&self, path: &str) -> String {
        reqwest::get(format!("{}{path}", self.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// SIGTERM; the exit code.
    fn stop(mut self) -> (Option<i32>, String) {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(150);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("SIGTERM did not stop the runtime:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        (status.code(), self.log())
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Replace the plan file as a deploy does (a new file renamed over the old one).
fn deploy(w: &World, text: &str) {
    deploy_at(&w.plan_path, text);
}

fn deploy_at(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("json.new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// One row of the history: (schedule, status, plan_hash, fire_time, error).
type Row = (
    String,
    String,
    String,
    chrono::DateTime<chrono::Utc>,
    Option<String>,
);

async fn runs(w: &World) -> Vec<Row> {
    let pg = w.pg().await;
    let rows = pg
        .query(
            &format!(
                "SELECT schedule, status, plan_hash, fire_time, error FROM {}.runs ORDER BY fire_time, id",
                w.config.history_schema
            ),
            &[],
        )
        .await
        .unwrap_or_default();
    rows.iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect()
}

/// Wait (at most `limit`) until the history has a row `pick` accepts.
async fn wait_row(w: &World, limit: Duration, what: &str, pick: impl Fn(&Row) -> bool) -> Row {
    let deadline = Instant::now() + limit;
    loop {
        let rows = runs(w).await;
        if let Some(r) = rows.iter().find(|r| pick(r)) {
            return r.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no {what} in the history: {rows:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `plan` with `schedules` only, sealed.
fn with_schedules(w: &World, schedules: Vec<stir::plan::Schedule>) -> Plan {
    let mut plan = w.plan.clone();
    plan.schedules = schedules;
    plan.seal()
}

/// A schedule of `w`'s plan renamed, firing every minute.
fn every_minute(w: &World, from: &str, name: &str) -> stir::plan::Schedule {
    let mut s = w.plan.schedule(from).unwrap().clone();
    s.name = name.into();
    s.cron = "* * * * *".into();
    s.retries = 0;
    s
}

fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// `/healthz` and `/metrics` say the runtime runs plan `hash` (and not `other`), and how the
/// last reload went (`ok`, `refused`).
async fn assert_plan(rt: &Runtime, hash: &str, last_reload: &str, other: &str) {
    let health = rt.get("/healthz").await;
    assert!(
        health.contains(&format!("\"plan_hash\":\"{hash}\""))
            && health.contains(&format!("\"last_reload\":\"{last_reload}\"")),
        "{health}"
    );
    let metrics = rt.get("/metrics").await;
    let failed = if last_reload == "refused" { 1.0 } else { 0.0 };
    assert_eq!(
        sample(&metrics, "stir_plan_reload_failed"),
        Some(failed),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, &format!("stir_plan_info{{plan_hash=\"{hash}\"}}")),
        Some(1.0),
        "{metrics}"
    );
    assert!(!metrics.contains(other), "{metrics}");
}

/// SIGHUP with a good plan: the heavy run of the old plan in flight finishes under it (ok,
/// not cancelled, its plan hash in the history) and holds the heavy slot: the new plan's heavy
/// schedule is skipped while it drains, then fires from the new plan; the old schedule, gone
/// from the new plan, never fires again; `history` shows each run's plan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_fires_the_new_plan_while_the_old_heavy_run_finishes_and_keeps_the_slot() {
    let w = World::new("reload_ok").await;
    w.seed(0, 30).await;
    w.sql(&format!(
        "CREATE TABLE {}.sink (x UInt8) ENGINE = MergeTree ORDER BY tuple()",
        w.wh
    ))
    .await;
    // Old plan: heavy `slow`, every minute, running ~70 s: it spans the next fire.
    let mut slow = every_minute(&w, "core", "slow");
    slow.heavy = true;
    slow.timeout_secs = 300;
    slow.steps = vec![Step::Sql {
        sql: format!(
            "INSERT INTO {}.sink SELECT sleepEachRow(0.1) FROM numbers(700) \
             SETTINGS max_block_size = 1, max_threads = 1",
            w.wh
        ),
    }];
    let old = with_schedules(&w, vec![slow]);
    // New plan: `slow` removed; heavy `fresh` builds the core models every minute.
    let mut fresh = every_minute(&w, "core", "fresh");
    fresh.heavy = true;
    let new = with_schedules(&w, vec![fresh]);
    deploy(&w, &old.to_json());
    let rt = Runtime::start(&w, &[]);

    let running = wait_row(&w, Duration::from_secs(90), "running `slow`", |r| {
        r.0 == "slow" && r.1 == "running"
    })
    .await;
    assert_eq!(running.2, old.plan_hash);
    deploy(&w, &new.to_json());
    rt.signal("HUP");
    rt.wait_log("plan reloaded: the next fires are the new plan's", 1);
    assert_plan(&rt, &new.plan_hash, "ok", &old.plan_hash).await;
    // The console serves the new plan.
    let page = rt.get("/plan").await;
    assert!(page.contains(&new.plan_hash), "{page}");
    assert!(!page.contains(&old.plan_hash), "{page}");

    // The old run finishes, whole, under the old plan.
    let slow_end = wait_row(&w, Duration::from_secs(150), "`slow` ended", |r| {
        r.0 == "slow" && r.1 != "running"
    })
    .await;
    assert_eq!(
        (slow_end.1.as_str(), slow_end.2.as_str()),
        ("ok", old.plan_hash.as_str()),
        "{slow_end:?}\n{}",
        rt.log()
    );
    assert_eq!(
        w.number(&format!("SELECT count() FROM {}.sink", w.wh))
            .await,
        700
    );
    // The new plan's heavy schedule waited for it, then ran from the new plan.
    let fresh_ok = wait_row(&w, Duration::from_secs(150), "`fresh` ok", |r| {
        r.0 == "fresh" && r.1 == "ok"
    })
    .await;
    assert_eq!(fresh_ok.2, new.plan_hash);
    assert_eq!(
        w.number(&format!("SELECT count() FROM {}.stg_events", w.wh))
            .await,
        30
    );
    let rows = runs(&w).await;
    let skipped: Vec<&Row> = rows
        .iter()
        .filter(|r| r.0 == "fresh" && r.1 == "skipped_heavy")
        .collect();
    assert_eq!(skipped.len(), 1, "{rows:#?}");
    assert!(
        skipped[0].4.as_deref().unwrap_or("").contains("`slow`"),
        "{rows:#?}"
    );
    assert!(skipped[0].3 < fresh_ok.3, "{rows:#?}");
    // Nothing of `slow` after the reload: one run, the one in flight.
    let slows: Vec<&Row> = rows.iter().filter(|r| r.0 == "slow").collect();
    assert_eq!(slows.len(), 1, "{rows:#?}");
    // No two heavy runs overlapped: `fresh` ran only after `slow` ended.
    let pg = w.pg().await;
    let overlap: i64 = pg
        .query_one(
            &format!(
                "SELECT count(*) FROM {0}.runs a JOIN {0}.runs b ON a.id < b.id
                 WHERE a.started_at < b.ended_at AND b.started_at < a.ended_at AND a.attempt > 0 AND b.attempt > 0",
                w.config.history_schema
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(overlap, 0, "{rows:#?}");

    let (code, log) = rt.stop();
    assert_eq!(code, Some(0), "{log}");
    let o = bin()
        .args(["history", "--limit", "20"])
        .env("STIR_HISTORY_SCHEMA", &w.config.history_schema)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(table.lines().next().unwrap().contains("PLAN"), "{table}");
    for (schedule, plan) in [("slow", &old), ("fresh", &new)] {
        assert!(
            table
                .lines()
                .any(|l| l.contains(schedule) && l.contains(&plan.plan_hash[..12])),
            "{schedule} with plan {} in\n{table}",
            &plan.plan_hash[..12]
        );
    }
    w.drop_all().await;
}

/// SIGHUP with plans a start would refuse (bytes changed after signing, no signature, an
/// unknown format version, not JSON, a serving target without its variable): each is refused with an error in the log and an alert to the webhook; the old plan
/// keeps firing; `/healthz` and the metrics say the last reload failed, until a good one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_a_refused_plan_keeps_the_old_plan_firing_and_alerts() {
    let w = World::new("reload_refused").await;
    w.seed(0, 10).await;
    let key = stir::signature::SecretKey::generate().unwrap();
    let sign = |text: &str| {
        let sig = key.sign(text.as_bytes());
        std::fs::write(stir::signature::signature_path(&w.plan_path), sig).unwrap();
    };
    let old = with_schedules(&w, vec![every_minute(&w, "core", "core")]);
    deploy(&w, &old.to_json());
    sign(&old.to_json());
    let (hook, mut alerts) = webhook().await;
    let rt = Runtime::start(
        &w,
        &[
            ("STIR_PLAN_PUBLIC_KEY", key.public().to_string()),
            ("STIR_SLACK_WEBHOOK", hook),
        ],
    );
    let mut next = w.plan.schedule("core").unwrap().clone();
    next.cron = "*/2 * * * *".into();
    let new = with_schedules(&w, vec![next]);

    // 1. A new plan whose signature is the old plan's: changed after signing.
    deploy(&w, &new.to_json());
    rt.signal("HUP");
    rt.wait_log("plan reload refused", 1);
    // 2. No signature at all.
    std::fs::remove_file(stir::signature::signature_path(&w.plan_path)).unwrap();
    rt.signal("HUP");
    rt.wait_log("plan reload refused", 2);
    // 3. A format version this binary does not know; 4. not JSON (both signed, so that
    // reading the plan is what refuses them).
    let current = format!("\"format_version\": {}", stir::plan::FORMAT_VERSION);
    let newer = new.to_json().replace(&current, "\"format_version\": 99");
    assert_ne!(newer, new.to_json());
    // 5. A well-formed, signed plan naming a serving target whose URL variable this runtime
    // does not have: refused as at start, not when a sync first needs it.
    let mut targeted = new.clone();
    targeted.targets.push(stir::plan::Target {
        name: "nowhere".into(),
        schema: "public".into(),
    });
    let targeted = targeted.seal().to_json();
    for (n, text) in [
        (3, newer.as_str()),
        (4, "{\"format_version\": 1"),
        (5, targeted.as_str()),
    ] {
        deploy(&w, text);
        sign(text);
        rt.signal("HUP");
        rt.wait_log("plan reload refused", n);
    }
    let log = rt.log();
    for why in [
        "the plan's bytes changed after it was signed",
        "the plan is not signed",
        "plan format version 99 is newer than this stir-runtime",
        "not a stir plan",
        "STIR_POSTGRES_URL_NOWHERE` is not set",
    ] {
        assert!(log.contains(why), "`{why}` in:\n{log}");
    }
    let mut texts = Vec::new();
    while texts.len() < 5 {
        let t = tokio::time::timeout(Duration::from_secs(30), alerts.recv())
            .await
            .unwrap_or_else(|_| panic!("5 alerts, got {texts:#?}"))
            .unwrap();
        texts.push(t);
    }
    for t in &texts {
        assert!(
            t.contains("plan reload refused")
                && t.contains(&format!("goes on with plan `{}`", old.plan_hash)),
            "{t}"
        );
    }
    assert!(
        texts[0].contains("changed after it was signed"),
        "{texts:#?}"
    );
    assert_plan(&rt, &old.plan_hash, "refused", &new.plan_hash).await;
    let metrics = rt.get("/metrics").await;
    assert_eq!(
        sample(&metrics, "stir_plan_reloads_total{result=\"refused\"}"),
        Some(5.0),
        "{metrics}"
    );

    // The old plan still fires (every minute; the refused one said every 2).
    let refused_at = chrono::Utc::now();
    let fired = wait_row(
        &w,
        Duration::from_secs(90),
        "a `core` run after the refusals",
        |r| r.0 == "core" && r.1 == "ok" && r.3 > refused_at,
    )
    .await;
    assert_eq!(fired.2, old.plan_hash, "{fired:?}");

    // A good, signed plan after the refusals is taken and clears the failure.
    deploy(&w, &new.to_json());
    sign(&new.to_json());
    rt.signal("HUP");
    rt.wait_log("plan reloaded: the next fires are the new plan's", 1);
    assert_plan(&rt, &new.plan_hash, "ok", &old.plan_hash).await;
    let (code, log) = rt.stop();
    assert_eq!(code, Some(0), "{log}");
    w.drop_all().await;
}

/// A follower reloaded while another runtime leads takes the new plan, and leads with it when
/// the leader stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_reloaded_while_another_leads_leads_with_the_new_plan() {
    let w = World::new("reload_follower").await;
    w.seed(0, 10).await;
    let mut never = w.plan.schedule("core").unwrap().clone();
    never.cron = "0 0 1 1 *".into();
    let old = with_schedules(&w, vec![never]);
    let new = with_schedules(&w, vec![every_minute(&w, "core", "fresh")]);
    deploy(&w, &old.to_json());
    let leader = Runtime::start(&w, &[]);
    leader.wait_log("leader: holding the lock", 1);
    let b_plan = w.dir.join("b").join("plan.json");
    std::fs::create_dir_all(b_plan.parent().unwrap()).unwrap();
    deploy_at(&b_plan, &old.to_json());
    let follower = Runtime::start_at(&w, &b_plan, &[]);
    follower.wait_log("follower: another runtime holds the lock", 1);

    deploy_at(&b_plan, &new.to_json());
    follower.signal("HUP");
    follower.wait_log("plan reloaded: the next fires are the new plan's", 1);
    assert_plan(&follower, &new.plan_hash, "ok", &old.plan_hash).await;
    assert!(
        !follower.log().contains("leader: holding the lock"),
        "{}",
        follower.log()
    );
    let (code, log) = leader.stop();
    assert_eq!(code, Some(0), "{log}");
    follower.wait_log("leader: holding the lock", 1);
    let fresh = wait_row(&w, Duration::from_secs(90), "`fresh` ok", |r| {
        r.0 == "fresh" && r.1 == "ok"
    })
    .await;
    assert_eq!(fresh.2, new.plan_hash);
    let (code, log) = follower.stop();
    assert_eq!(code, Some(0), "{log}");
    w.drop_all().await;
}
