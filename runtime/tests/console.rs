//! The operations console in a real browser: Debian's Chromium, headless, driven over
//! WebDriver (chromedriver) against a leader runtime on the test servers with a seeded
//! history. The pages render, links work, "Run now" with the token starts a run that then
//! shows on the grid, a busy schedule's refusal shows on the page, and without the token (or
//! from another site) a write is refused. With UPDATE_GOLDEN=1 it writes the screenshots of
//! docs/console.md (docs/console/*.png).

#[path = "support/servers.rs"]
mod servers;

#[path = "../../compiler/tests/support/golden.rs"]
mod golden;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, Duration as TimeDelta, DurationRound, Utc};
use fantoccini::{Client, ClientBuilder, Locator};
use servers::{start_runtime, World};

const TOKEN: &str = "console-test-token-0123456789abcdef";

/// chromedriver on a free loopback port, killed (by its own handle) when dropped, with the
/// browser's profile in a directory of its own that goes with it (a failed test leaves none).
struct Driver {
    child: Child,
    port: u16,
    profile: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn driver() -> Driver {
    let bin = std::env::var("STIR_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
    let port = free_port();
    // Everything the driver and the browser write (profile, sockets) goes in here.
    let profile = std::env::temp_dir().join(format!(
        "stir-console-chromium-{}-{port}",
        std::process::id()
    ));
    std::fs::create_dir_all(&profile).unwrap();
    let child = Command::new(&bin)
        .arg(format!("--port={port}"))
        .env("TMPDIR", &profile)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start `{bin}` ({e}): this test needs Debian's chromium and chromium-driver \
                 (scripts/test.sh installs them: apt-get install chromium chromium-driver)"
            )
        });
    let d = Driver {
        child,
        port,
        profile,
    };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not listen on {port}");
}

async fn browser(d: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--hide-scrollbars", "--window-size=1400,1000", "--force-device-scale-factor=1",
                     format!("--user-data-dir={}", d.profile.join("profile").display())],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", d.port))
        .await
        .expect("a Chromium session through chromedriver")
}

/// A small deterministic generator for the seeded history.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Three days of `core` (every 5 minutes) and `fragile` (03:00) in the history, as a leader
/// would have written them: mostly ok, some failed (with a ClickHouse error that quotes a row
/// value and names a URL with a password), a timeout, retries.
async fn seed_history(w: &World, now: DateTime<Utc>) -> usize {
    let pg = w.pg().await;
    let s = &w.config.history_schema;
    let mut rng = Lcg(7);
    let mut rows = 0;
    let end = now.duration_trunc(TimeDelta::minutes(5)).unwrap() - TimeDelta::minutes(5);
    let insert = |sched: &str, fire: DateTime<Utc>, status: &str, secs: i64, attempt: i32| {
        let id = format!("{sched}-{}-a{attempt}", fire.format("%Y%m%dT%H%M%S%3fZ"));
        let started = fire + TimeDelta::seconds(2 + 40 * (attempt as i64 - 1));
        let ended = started + TimeDelta::seconds(secs);
        let error = match status {
            "failed" => "step `stg_events` failed: Code: 6. DB::Exception: Cannot parse string 'jane.doe@example.com' as UInt64 (reading from postgres://etl:hunter2@db.internal:5432/raw). (CANNOT_PARSE_TEXT) (version 25.3.1)".to_string(),
            "timeout" => "run cancelled at its timeout (10m) in step `events_daily`; its queries were killed".to_string(),
            _ => String::new(),
        };
        format!(
            "('{id}', '{sched}', '{}', '{}', '{}', '{status}', {}, 'seededplanhash0', {attempt}, true, 'stir-replica-a')",
            fire.to_rfc3339(),
            started.to_rfc3339(),
            ended.to_rfc3339(),
            if error.is_empty() { "NULL".to_string() } else { format!("'{}'", error.replace('\'', "''")) }
        )
    };
    let mut values = Vec::new();
    let mut fire = end - TimeDelta::days(3);
    while fire <= end {
        let roll = rng.next() % 100;
        let secs = 20 + (rng.next() % 50) as i64;
        // Fixed ones, so the grid and the timeline always have them.
        if fire == end - TimeDelta::minutes(15) {
            values.push(insert("core", fire, "failed", secs, 1));
        } else if fire == end - TimeDelta::minutes(60) {
            values.push(insert("core", fire, "timeout", 598, 1));
        } else if roll < 4 {
            values.push(insert("core", fire, "failed", secs, 1));
            values.push(insert("core", fire, "ok", secs, 2));
        } else if roll < 6 {
            values.push(insert("core", fire, "failed", secs, 1));
        } else if roll == 6 {
            values.push(insert("core", fire, "timeout", 598, 1));
        } else {
            values.push(insert("core", fire, "ok", secs, 1));
        }
        fire += TimeDelta::minutes(5);
    }
    let today3 = now.duration_trunc(TimeDelta::days(1)).unwrap() + TimeDelta::hours(3);
    let last3 = if today3 <= now {
        today3
    } else {
        today3 - TimeDelta::days(1)
    };
    for d in 0..3 {
        let f = last3 - TimeDelta::days(2 - d);
        let (status, secs) = [("ok", 410), ("ok", 505), ("failed", 47)][d as usize];
        values.push(insert("fragile", f, status, secs, 1));
    }
    rows += values.len();
    for chunk in values.chunks(500) {
        pg.batch_execute(&format!(
            "INSERT INTO {s}.runs (id, schedule, fire_time, started_at, ended_at, status, error, plan_hash, attempt, by_leader, runtime) VALUES {}",
            chunk.join(",")
        ))
        .await
        .unwrap();
    }
    rows
}

fn shots_dir() -> Option<PathBuf> {
    golden::update().then(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/console"))
}

async fn shot(b: &Client, name: &str) {
    if let Some(dir) = shots_dir() {
        std::fs::create_dir_all(&dir).unwrap();
        let png = b.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

/// The page's text, once a page has loaded (a form's POST may still be navigating).
async fn text(b: &Client) -> String {
    for _ in 0..100 {
        if let Ok(body) = b.find(Locator::Css("body")).await {
            if let Ok(t) = body.text().await {
                return t;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no page loaded at {:?}", b.current_url().await);
}

/// Click what leads to another page, and wait until that page replaced this one (a form's
/// POST answers after the click returns).
/// Type `token` into the login form on the page and send it.
async fn give_token(b: &Client, token: &str) {
    b.find(Locator::Css("input[name=token]"))
        .await
        .unwrap()
        .send_keys(token)
        .await
        .unwrap();
    click(b, Locator::Id("login")).await;
}

async fn click(b: &Client, at: Locator<'_>) {
    let before = b.find(Locator::Css("html")).await.unwrap();
    b.find(at)
        .await
        .unwrap_or_else(|e| panic!("{at:?} on the page: {e}"))
        .click()
        .await
        .unwrap();
    for _ in 0..300 {
        // The old document's element goes stale once the new page is in.
        if before.attr("lang").await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("clicking {at:?} led nowhere in 30 s");
}

/// Poll the page at `url` until `pred` holds on its text.
async fn wait_page(b: &Client, url: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
    for _ in 0..120 {
        b.goto(url).await.unwrap();
        let t = text(b).await;
        if pred(&t) {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!(
        "{what}: {url} never showed it; last page:\n{}",
        text(b).await
    );
}

/// Until no run of `schedule` is running.
async fn wait_idle(w: &World, schedule: &str) {
    let pg = w.pg().await;
    for _ in 0..120 {
        let running: i64 = pg
            .query_one(
                &format!(
                    "SELECT count(*) FROM {}.runs WHERE schedule = $1 AND status = 'running'",
                    w.config.history_schema
                ),
                &[&schedule],
            )
            .await
            .unwrap()
            .get(0);
        if running == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("`{schedule}` still running after 30 s");
}

/// Manual fires of `schedule` (a retry is another row of the same fire).
async fn run_count(w: &World, schedule: &str) -> i64 {
    w.pg()
        .await
        .query_one(
            &format!(
                "SELECT count(DISTINCT fire_time) FROM {}.runs WHERE schedule = $1 AND NOT by_leader",
                w.config.history_schema
            ),
            &[&schedule],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_console_in_a_browser_shows_the_history_and_runs_a_schedule_only_with_the_token() {
    let w = World::new("console").await;
    w.seed(0, 200).await;
    // A negative value: `fragile` fails, with ClickHouse's error text.
    w.sql(&format!(
        "INSERT INTO {}.events VALUES (999, '2026-01-01 00:00:00', -5)",
        w.raw
    ))
    .await;
    let now = Utc::now();
    stir_runtime::history::PgHistory::open(
        w.config.postgres_url.as_deref().unwrap(),
        &w.config.history_schema,
    )
    .await
    .unwrap();
    let seeded = seed_history(&w, now).await;
    assert!(seeded > 800);
    // The models exist, as after `--bootstrap`, so the real runs have something to build on.
    stir_runtime::run_once(w.plan.clone(), w.config.clone(), "core")
        .await
        .unwrap();

    let (base, metrics, stop, task) = console_runtime(&w, Some(TOKEN)).await;
    for _ in 0..100 {
        if metrics.is_leader() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(metrics.is_leader(), "the runtime became leader");

    let d = driver().await;
    let b = browser(&d).await;

    // Schedules: every schedule, its cron in words, its last run; Run now needs a login.
    b.goto(&format!("{base}/")).await.unwrap();
    let page = text(&b).await;
    for want in [
        "core",
        "fragile",
        "every 5 minutes, every day",
        "at 03:00, every day",
        "10m 00s",
    ] {
        assert!(
            page.contains(want),
            "`{want}` on the schedules page:\n{page}"
        );
    }
    let buttons = b.find_all(Locator::Css("button.run-now")).await.unwrap();
    assert_eq!(buttons.len(), 2);
    assert!(
        !buttons[0].is_enabled().await.unwrap(),
        "Run now is disabled until login"
    );
    shot(&b, "schedules").await;

    // Grid: a cell per fire, coloured by status, each a link to its run.
    b.goto(&format!("{base}/grid")).await.unwrap();
    let cells = b.find_all(Locator::Css("a.cell")).await.unwrap();
    assert!(cells.len() >= 31, "cells: {}", cells.len());
    let failed = b
        .find(Locator::Css("a.cell[data-status=\"failed\"]"))
        .await
        .expect("a failed cell on the grid");
    shot(&b, "grid").await;
    failed.click().await.unwrap();
    let page = text(&b).await;
    assert!(
        page.contains("Run core-") && page.contains("failed"),
        "{page}"
    );
    // The error shows, without the row value or the URL's password.
    assert!(page.contains("Cannot parse string '…' as UInt64"), "{page}");
    for leak in ["jane.doe@example.com", "hunter2"] {
        assert!(!page.contains(leak), "`{leak}` reached the page:\n{page}");
    }

    // The real run: steps, durations, query ids; a model links to its page.
    let real: String = w
        .pg()
        .await
        .query_one(
            &format!(
                "SELECT id FROM {}.runs WHERE schedule = 'core' AND NOT by_leader ORDER BY started_at DESC LIMIT 1",
                w.config.history_schema
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    b.goto(&format!("{base}/runs/{real}")).await.unwrap();
    let page = text(&b).await;
    for want in [
        "stg_events",
        "events_daily",
        "events_totals",
        &format!(
            "{}0-*",
            stir_runtime::run::query_prefix(&w.plan.warehouse.database, &real)
        ),
        "manual",
    ] {
        assert!(page.contains(want), "`{want}` on the run page:\n{page}");
    }
    assert_eq!(
        b.find_all(Locator::Css(".gantt span")).await.unwrap().len(),
        3
    );
    shot(&b, "run").await;
    click(&b, Locator::LinkText("events_daily")).await;
    let page = text(&b).await;
    for want in ["Model events_daily", "stg_events", "core", "built"] {
        assert!(page.contains(want), "`{want}` on the model page:\n{page}");
    }
    shot(&b, "model").await;
    b.goto(&format!("{base}/models")).await.unwrap();
    let page = text(&b).await;
    for want in [
        "stg_events",
        "events_daily",
        "events_totals",
        "fragile_events",
        "never",
    ] {
        assert!(page.contains(want), "`{want}` on the models page:\n{page}");
    }
    shot(&b, "models").await;

    // Timeline: the proved windows with the real runs laid over them.
    let week = (now.duration_trunc(TimeDelta::minutes(5)).unwrap() - TimeDelta::minutes(65))
        .format("%Y-%m-%d");
    b.goto(&format!("{base}/timeline?week={week}"))
        .await
        .unwrap();
    let runs = b.find_all(Locator::Css("svg rect.run")).await.unwrap();
    assert!(!runs.is_empty(), "real runs drawn over the week");
    let page = text(&b).await;
    assert!(page.contains("Closest to their window"), "{page}");
    assert!(
        page.contains("core-"),
        "the timed-out run is close to its window:\n{page}"
    );
    shot(&b, "timeline").await;

    // Plan: hash, and the replicas seen in the history.
    b.goto(&format!("{base}/plan")).await.unwrap();
    let page = text(&b).await;
    assert!(page.contains(&w.plan.plan_hash), "{page}");
    assert!(
        page.contains("stir-replica-a") && page.contains("leader (this runtime)"),
        "{page}"
    );
    shot(&b, "plan").await;

    // Without the token: a POST is refused and starts nothing; so is a cross-site one.
    let before = run_count(&w, "fragile").await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let anon = http
        .post(format!("{base}/schedules/fragile/run"))
        .form(&[("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status().as_u16(), 401);
    let evil = http
        .post(format!("{base}/schedules/fragile/run"))
        .header("origin", "https://evil.example")
        .header("authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(evil.status().as_u16(), 403);
    assert!(evil
        .text()
        .await
        .unwrap()
        .contains("cross-site request refused"));
    // A wrong token at the login.
    b.goto(&format!("{base}/login")).await.unwrap();
    give_token(&b, "not-the-token-at-all").await;
    assert!(text(&b).await.contains("That is not the console token"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(run_count(&w, "fragile").await, before, "nothing started");

    // Log in, then Run now: the run starts, its page opens, and it shows on the grid.
    give_token(&b, TOKEN).await;
    assert!(text(&b).await.contains("operator"), "logged in");
    // A run of `fragile` another process holds: the refusal `--once` prints shows on the page.
    let pg = w.pg().await;
    let s = &w.config.history_schema;
    pg.batch_execute(&format!(
        "INSERT INTO {s}.runs (id, schedule, fire_time, started_at, status, plan_hash, attempt, by_leader, runtime)
         VALUES ('fragile-held-a1', 'fragile', now(), now(), 'running', 'x', 1, false, 'another-process')"
    ))
    .await
    .unwrap();
    b.goto(&format!("{base}/#fragile")).await.unwrap();
    click(&b, Locator::Css("tr#fragile button.run-now")).await;
    let page = text(&b).await;
    assert!(
        page.contains("Refused")
            && page.contains("schedule `fragile` is running now (run `fragile-held-a1`"),
        "{page}"
    );
    shot(&b, "refused").await;
    pg.batch_execute(&format!(
        "DELETE FROM {s}.runs WHERE id = 'fragile-held-a1'"
    ))
    .await
    .unwrap();
    assert_eq!(
        run_count(&w, "fragile").await,
        before,
        "the refused run did not start"
    );

    b.goto(&format!("{base}/#fragile")).await.unwrap();
    click(&b, Locator::Css("tr#fragile button.run-now")).await;
    let url = b.current_url().await.unwrap();
    let path = url.path().to_string();
    assert!(path.starts_with("/runs/fragile-"), "Run now opened {url}");
    let run_id = path.trim_start_matches("/runs/").to_string();
    let page = wait_page(&b, url.as_str(), "the run's end", |t| {
        t.contains("Run again")
    })
    .await;
    // The fixture's negative value fails it, with ClickHouse's error.
    assert!(
        page.contains("failed") && page.contains("fragile_events"),
        "{page}"
    );
    let by_leader: bool = pg
        .query_one(
            &format!("SELECT by_leader FROM {s}.runs WHERE id = $1"),
            &[&run_id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!by_leader, "a console run is a manual run");
    shot(&b, "run-failed").await;
    b.goto(&format!("{base}/grid")).await.unwrap();
    // The grid's cell is the fire's newest attempt (`fragile` retries once).
    let fire_prefix = run_id.trim_end_matches(char::is_numeric);
    b.find(Locator::Css(&format!(
        "a.cell[href^=\"/runs/{fire_prefix}\"]"
    )))
    .await
    .expect("the new run on the grid");
    // Run again on the failed run: another manual run of the schedule, once its retry (the
    // second attempt of the same fire) has ended too.
    wait_idle(&w, "fragile").await;
    b.goto(url.as_str()).await.unwrap();
    click(&b, Locator::Css("button.run-again")).await;
    let again = b.current_url().await.unwrap();
    assert!(
        again.path().starts_with("/runs/fragile-") && again.path() != path,
        "Run again opened {again}"
    );
    wait_page(&b, again.as_str(), "the second run's end", |t| {
        t.contains("Run again")
    })
    .await;
    assert_eq!(run_count(&w, "fragile").await, before + 2);

    // Guessing: after ten wrong tokens within a minute (the browser's one above counts), every
    // token is refused unread, the right one too, in the browser and from a script.
    let mut wrong = 0;
    loop {
        let r = http
            .post(format!("{base}/login"))
            .form(&[("token", "a-guess-at-the-token")])
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            401 => wrong += 1,
            429 => break,
            other => panic!("a wrong token answered {other}"),
        }
        assert!(
            wrong < 10,
            "still taking tokens after {wrong} more wrong ones"
        );
    }
    assert_eq!(
        wrong, 9,
        "the tenth wrong token locks; the eleventh is refused"
    );
    b.goto(&format!("{base}/login")).await.unwrap();
    give_token(&b, TOKEN).await;
    let page = text(&b).await;
    assert!(
        page.contains("Too many wrong tokens")
            && page.contains("the console takes no token for the next"),
        "{page}"
    );
    let script = http
        .post(format!("{base}/schedules/fragile/run"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status().as_u16(), 429);
    assert_eq!(
        run_count(&w, "fragile").await,
        before + 2,
        "nothing started"
    );

    let _ = b.close().await;
    drop(d);
    let _ = stop.send(());
    let _ = task.await;
    w.drop_all().await;
}

/// A leader runtime with its console on a free port; its token if given.
async fn console_runtime(
    w: &World,
    token: Option<&str>,
) -> (
    String,
    stir_runtime::metrics::Metrics,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), stir_runtime::RuntimeError>>,
) {
    let port = free_port();
    let mut config = w.config.clone();
    config.listen = Some(format!("127.0.0.1:{port}").parse().unwrap());
    config.console_token = token.map(str::to_string);
    let metrics = stir_runtime::metrics::Metrics::new(&w.plan.plan_hash);
    let (stop, task) = start_runtime(w.plan.clone(), config, metrics.clone(), None);
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if reqwest::get(format!("{base}/healthz")).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (base, metrics, stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_or_a_console_without_a_token_starts_no_run() {
    let w = World::new("console_ro").await;
    let (leader, lm, stop_a, task_a) = console_runtime(&w, Some(TOKEN)).await;
    for _ in 0..100 {
        if lm.is_leader() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(lm.is_leader());
    // A second replica with the token: a follower, whose pages read but whose writes refuse.
    let (follower, fm, stop_b, task_b) = console_runtime(&w, Some(TOKEN)).await;
    // And one without a token (it follows too): read-only.
    let (readonly, _rm, stop_c, task_c) = console_runtime(&w, None).await;
    assert!(!fm.is_leader());
    let http = reqwest::Client::new();
    let health = http
        .get(format!("{follower}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        health.text().await.unwrap(),
        format!(
            "{{\"status\":\"ok\",\"leader\":false,\"plan_hash\":\"{}\",\"last_reload\":\"none\"}}\n",
            w.plan.plan_hash
        )
    );
    let page = http.get(format!("{follower}/")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    // No other site may frame the console (a hidden "Run now" under a decoy).
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert!(page.text().await.unwrap().contains("fragile"));
    let post = |base: String| {
        let http = http.clone();
        async move {
            let r = http
                .post(format!("{base}/schedules/fragile/run"))
                .header("authorization", format!("Bearer {TOKEN}"))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, body) = post(follower.clone()).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("this runtime is a follower"), "{body}");
    let (status, body) = post(readonly.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("the console is read-only"), "{body}");
    let ro_page = http
        .get(format!("{readonly}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !ro_page.contains("run-now"),
        "no Run now button on a read-only console"
    );
    assert_eq!(run_count(&w, "fragile").await, 0, "nothing started");
    // The leader with the bearer token: a run starts, recorded as manual. (`fragile`: it fires
    // at 03:00 only, so the leader's own firing never makes this a refusal.)
    let (status, body) = post(leader.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("Run <code>fragile-"),
        "the run's page:\n{body}"
    );
    assert_eq!(run_count(&w, "fragile").await, 1);
    for (stop, task) in [(stop_c, task_c), (stop_b, task_b), (stop_a, task_a)] {
        let _ = stop.send(());
        let _ = task.await;
    }
    w.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_say_the_history_is_unreachable_without_its_password() {
    let w = World::new("console_down").await;
    let pg = w.config.postgres_url.clone().unwrap();
    let (via, cut) = servers::pg_proxy(&pg).await;
    let history = std::sync::Arc::new(
        stir_runtime::history::PgHistory::open(&via, &w.config.history_schema)
            .await
            .unwrap(),
    );
    let (addr, task) = stir_runtime::server::serve_history(
        "127.0.0.1:0".parse().unwrap(),
        std::sync::Arc::new(w.plan.clone()),
        std::sync::Arc::new(w.config.clone()),
        history,
    )
    .await
    .unwrap();
    let get = |path: &'static str| async move {
        let r = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(get("/grid").await.0, 200);
    let _ = cut.send(true);
    let password = pg
        .parse::<tokio_postgres::Config>()
        .unwrap()
        .get_password()
        .map(|p| String::from_utf8_lossy(p).to_string())
        .unwrap();
    for path in ["/grid", "/", "/timeline", "/models", "/plan", "/runs/x"] {
        let (status, body) = get(path).await;
        assert_eq!(status, 503, "{path}: {body}");
        assert!(
            body.contains("cannot read the run history"),
            "{path}: {body}"
        );
        assert!(!body.contains(&password), "{path} shows the password");
    }
    // The metrics and health answer all the same.
    assert_eq!(get("/healthz").await.0, 200);
    task.abort();
    w.drop_all().await;
}
