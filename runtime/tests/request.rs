//! Request steps against real ClickHouse and a local HTTP receiver (127.0.0.1:0).
//!
//! Needs `scripts/servers.sh up` and `eval "$(scripts/servers.sh env)"`.

#[path = "fixtures/sync/harness.rs"]
mod harness;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::Case;
use stir_runtime::request::RequestOptions;
use stir_runtime::step::{StepError, StepOutcome, StepRunner};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// What the receiver saw: (path, body) in arrival order.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// A minimal HTTP/1.1 receiver (keep-alive aware). `code` "retry-me" gets a 503 the first
/// time, "reject-once" a 422 the first time (a 4xx: not retried within the step),
/// "always-fail" always a 500, "slow" waits 3 s; paths under `/moved` a 302 to
/// `/elsewhere?token=…`; everything else 200.
async fn receiver() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let s = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let seen = s.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut r = BufReader::new(r);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    let mut len = 0usize;
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if h == "\r\n" {
                            break;
                        }
                        let lower = h.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let body = String::from_utf8(body).unwrap();
                    let code = serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["code"].as_str().map(str::to_string))
                        .unwrap_or_default();
                    if path.starts_with("/moved") {
                        seen.lock().unwrap().push((path, body));
                        let resp = "HTTP/1.1 302 Found\r\nlocation: /elsewhere?token=Qz7secret\r\ncontent-length: 0\r\n\r\n";
                        if w.write_all(resp.as_bytes()).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    let status = {
                        let mut g = seen.lock().unwrap();
                        let earlier = g.iter().filter(|(_, b)| b == &body).count();
                        g.push((path, body.clone()));
                        match code.as_str() {
                            "retry-me" if earlier == 0 => "503 Service Unavailable",
                            "reject-once" if earlier == 0 => "422 Unprocessable Entity",
                            "always-fail" => "500 Internal Server Error",
                            _ => "200 OK",
                        }
                    };
                    if code == "slow" {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                    }
                    let resp = format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\n\r\nok");
                    if w.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{addr}/base/"), seen)
}

async fn seed(c: &Case, codes: &[&str]) {
    c.ch(&format!(
        "CREATE TABLE {}.ping_src (code String, n UInt64) ENGINE = MergeTree ORDER BY n",
        c.src
    ))
    .await;
    let values: Vec<String> = codes
        .iter()
        .enumerate()
        .map(|(i, code)| {
            format!(
                "('{}', {})",
                code.replace('\\', "\\\\").replace('\'', "\\'"),
                i + 1
            )
        })
        .collect();
    c.ch(&format!(
        "INSERT INTO {}.ping_src VALUES {}",
        c.src,
        values.join(", ")
    ))
    .await;
}

async fn run(c: &Case, name: &str, endpoint: Option<&str>) -> Result<StepOutcome, StepError> {
    run_with(c, name, endpoint, c.config.clone()).await
}

async fn run_with(
    c: &Case,
    name: &str,
    endpoint: Option<&str>,
    config: stir_runtime::Config,
) -> Result<StepOutcome, StepError> {
    let endpoint = endpoint.map(str::to_string);
    let runner = c.runner(|o| {
        let base = o.env.clone();
        o.env = Arc::new(move |k: &str| {
            if k == "STIR_ENDPOINT_SINK" {
                endpoint.clone()
            } else {
                base(k)
            }
        });
        o.request = RequestOptions {
            attempts: 3,
            timeout: Duration::from_secs(1),
            backoff: Duration::from_millis(20),
        };
    });
    let ctx = c.ctx(config);
    runner.run_request(&ctx, name, "req-test").await
}

const CODES: &[&str] = &[
    "a",
    "quote\"d",
    "retry-me",
    "back\\slash ✓",
    "always-fail",
    "f",
    "g",
    "h",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_posts_rendered_bodies_retries_503_and_keeps_the_limit() {
    let c = Case::new("req").await;
    seed(&c, CODES).await;
    let (url, seen) = receiver().await;
    let out = run(&c, "ping", Some(&url)).await.unwrap();
    // Five rows (limit=5); "always-fail" fails 3 times (1 of 5 = 20% <= 50%).
    assert_eq!(out.rows, Some(4));
    let seen = seen.lock().unwrap().clone();
    let mut per_code: HashMap<String, usize> = HashMap::new();
    for (path, body) in &seen {
        assert_eq!(path, "/base/hook/ping");
        let v: serde_json::Value =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{body}: {e}"));
        let code = v["code"].as_str().unwrap().to_string();
        let n = v["n"].as_u64().unwrap() as usize;
        assert_eq!(CODES[n - 1], code, "body {body}");
        assert_eq!(v.as_object().unwrap().len(), 2);
        *per_code.entry(code).or_default() += 1;
    }
    let mut counts: Vec<(String, usize)> = per_code.into_iter().collect();
    counts.sort();
    let want: Vec<(String, usize)> = vec![
        ("a".into(), 1),
        ("always-fail".into(), 3),
        ("back\\slash ✓".into(), 1),
        ("quote\"d".into(), 1),
        ("retry-me".into(), 2),
    ];
    assert_eq!(counts, want, "the limit holds and 5xx are retried");
    // The body text is the template's, byte for byte.
    assert!(seen
        .iter()
        .any(|(_, b)| b == r#"{"code": "quote\"d", "n": 2}"#));
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_fails_above_max_failures_and_names_counts() {
    let c = Case::new("reqfail").await;
    seed(&c, &["a", "slow", "always-fail", "b", "c", "d"]).await;
    let (url, seen) = receiver().await;
    let err = run(&c, "ping_strict", Some(&url))
        .await
        .unwrap_err()
        .to_string();
    eprintln!("expected failure: {err}");
    // "slow" times out three times and "always-fail" gets 500s: 2 of 5 = 40% > 10%.
    assert!(err.contains("2 of 5 POSTs"), "{err}");
    assert!(
        err.contains("more than max-failures 10%") && err.contains("3 sent"),
        "{err}"
    );
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .all(|(p, _)| p == "/base/hook/strict"));
    // No endpoint configured: a clear error, nothing sent.
    let err = run(&c, "ping", None).await.unwrap_err().to_string();
    assert!(err.contains("`STIR_ENDPOINT_SINK` is not set"), "{err}");
    c.finish().await;
}

/// A session (or user profile) with `limit`/`offset` would cut the query's rows, so fewer and
/// other requests would go out with no error: the request's query pins those settings, and
/// the plan's own limit (5) still holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_rows_are_not_cut_by_session_settings() {
    let c = Case::new("reqpin").await;
    seed(&c, &["a", "b", "c", "d", "e", "f", "g"]).await;
    let (url, seen) = receiver().await;
    let mut config = c.config.clone();
    config.clickhouse_settings = vec![
        ("limit".to_string(), "2".to_string()),
        ("offset".to_string(), "1".to_string()),
    ];
    let out = run_with(&c, "ping", Some(&url), config).await.unwrap();
    assert_eq!(out.rows, Some(5));
    let mut bodies: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b)| b.clone())
        .collect();
    bodies.sort();
    let want: Vec<String> = ["a", "b", "c", "d", "e"]
        .iter()
        .zip(1..)
        .map(|(code, n)| format!(r#"{{"code": "{code}", "n": {n}}}"#))
        .collect();
    assert_eq!(bodies, want);
    c.finish().await;
}

/// A 302 is a failure that names where the endpoint went (its token hidden), never a GET to
/// the new place counted as sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_failures_naming_the_location_never_followed() {
    let c = Case::new("reqmoved").await;
    seed(&c, &["a", "b"]).await;
    let (base, seen) = receiver().await;
    let moved = base.replace("/base/", "/moved/");
    let err = run(&c, "ping", Some(&moved)).await.unwrap_err().to_string();
    eprintln!("expected failure: {err}");
    assert!(
        err.contains("HTTP 302") && err.contains("redirects to /elsewhere?token=***"),
        "{err}"
    );
    assert!(!err.contains("Qz7secret"), "{err}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "one POST a row, no retry: {seen:?}");
    assert!(
        seen.iter()
            .all(|(p, b)| p.starts_with("/moved") && !b.is_empty()),
        "{seen:?}"
    );
    c.finish().await;
}

/// issue #13: a retry of the run posts only the rows not yet accepted. The endpoint rejects
/// one of five rows the first time (a 422, so the step fails: 20% > max-failures 10%); the
/// schedule's retry posts that row alone, and the endpoint accepted every row exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_posts_only_the_rows_not_yet_accepted() {
    let c = Case::new("reqretry").await;
    seed(&c, &["a", "b", "reject-once", "c", "d"]).await;
    let (url, seen) = receiver().await;
    let mut config = c.config.clone();
    config.history_schema = format!("h_{}", c.id);
    config.retry_backoff = Duration::from_millis(50);
    let runner = c.runner(|o| {
        let base = o.env.clone();
        o.env = Arc::new(move |k: &str| {
            if k == "STIR_ENDPOINT_SINK" {
                Some(url.clone())
            } else {
                base(k)
            }
        });
    });
    let status = stir_runtime::run_once_with(
        (*c.plan).clone(),
        config.clone(),
        "pings",
        stir_runtime::Options {
            runner: Some(Arc::new(runner)),
            ..Default::default()
        },
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(status, stir_runtime::executor::RunStatus::Ok);
    let seen = seen.lock().unwrap().clone();
    let codes: Vec<String> = seen
        .iter()
        .map(|(_, b)| serde_json::from_str::<serde_json::Value>(b).unwrap()["code"].to_string())
        .collect();
    assert_eq!(
        seen.len(),
        6,
        "five POSTs, then the rejected row alone: {codes:?}"
    );
    assert_eq!(
        codes[5], "\"reject-once\"",
        "the retry posted only that row: {codes:?}"
    );
    // The receiver accepts every POST but the first of "reject-once": each row once.
    let mut accepted: HashMap<&str, usize> = HashMap::new();
    for (_, body) in &seen {
        *accepted.entry(body.as_str()).or_default() += 1;
    }
    *accepted
        .iter_mut()
        .find(|(b, _)| b.contains("reject-once"))
        .expect("the rejected row was posted")
        .1 -= 1;
    assert_eq!(
        accepted.len(),
        5,
        "every row reached the endpoint: {codes:?}"
    );
    assert!(accepted.values().all(|&n| n == 1), "{accepted:?}");
    // The history: attempt 1 failed at the request, attempt 2 delivered one row.
    let h = harness::pg_connect(&c.env["STIR_POSTGRES_URL"]).await;
    let rows = h
        .query(
            &format!(
                "SELECT r.attempt, r.status, s.rows FROM {0}.runs r JOIN {0}.steps s ON s.run_id = r.id \
                 WHERE r.schedule = 'pings' ORDER BY r.attempt",
                config.history_schema
            ),
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(i32, String, Option<i64>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, "failed".to_string(), None),
            (2, "ok".to_string(), Some(1))
        ]
    );
    c.finish().await;
}
