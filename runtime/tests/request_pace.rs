//! Requests at today's pace, against real ClickHouse and a local HTTP receiver (127.0.0.1:0)
//! that counts the POSTs in flight and notes when each arrives: one at a time by default, at
//! most `concurrency` with it, and no more than `rate` a second.
//!
//! Needs `scripts/servers.sh up` and `eval "$(scripts/servers.sh env)"`.

#[path = "fixtures/sync/harness.rs"]
mod harness;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::Case;
use stir_runtime::step::StepRunner;

/// What the receiver saw.
#[derive(Default)]
struct Seen {
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    arrivals: Mutex<Vec<Instant>>,
}

/// An HTTP receiver that holds each POST for `hold` before its 200.
async fn receiver(hold: Duration) -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    let app = axum::Router::new().fallback(move |_body: String| {
        let s = s.clone();
        async move {
            s.arrivals.lock().unwrap().push(Instant::now());
            let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            s.most_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(hold).await;
            s.in_flight.fetch_sub(1, Ordering::SeqCst);
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/"), seen)
}

async fn seed(c: &Case, n: usize) {
    c.ch(&format!(
        "CREATE TABLE {}.ping_src (code String, n UInt64) ENGINE = MergeTree ORDER BY n",
        c.src
    ))
    .await;
    c.ch(&format!(
        "INSERT INTO {}.ping_src SELECT concat('c', toString(number)), number FROM numbers({n})",
        c.src
    ))
    .await;
}

/// Run request `name` against `base`; answers the POSTs sent.
async fn run(c: &Case, name: &str, base: &str) -> u64 {
    let runner = c.runner_posting_to(base);
    let out = runner
        .run_request(&c.ctx(c.config.clone()), name, "pace-test")
        .await
        .unwrap_or_else(|e| panic!("request {name}: {e}"));
    out.rows.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_go_one_at_a_time_by_default_and_at_most_concurrency_with_it() {
    let c = Case::new("pace").await;
    seed(&c, 12).await;
    // Each POST is held 100 ms: POSTs sent together would overlap at the receiver.
    let (base, seen) = receiver(Duration::from_millis(100)).await;
    assert_eq!(run(&c, "pace_default", &base).await, 12);
    assert_eq!(seen.arrivals.lock().unwrap().len(), 12);
    assert_eq!(
        seen.most_in_flight.load(Ordering::SeqCst),
        1,
        "a request without `concurrency` posts one at a time, as today's DAGs do"
    );
    let (base, seen) = receiver(Duration::from_millis(100)).await;
    assert_eq!(run(&c, "pace_four", &base).await, 12);
    let most = seen.most_in_flight.load(Ordering::SeqCst);
    assert!(most <= 4, "concurrency=4, but {most} POSTs were in flight");
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_spaces_the_posts_even_with_concurrency() {
    let c = Case::new("rate").await;
    seed(&c, 8).await;
    // The receiver answers at once: only the rate (10 a second) keeps the POSTs apart.
    let (base, seen) = receiver(Duration::ZERO).await;
    assert_eq!(run(&c, "pace_rate", &base).await, 8);
    let arrivals = seen.arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), 8);
    // Starts are 100 ms apart; arrivals may bunch by the network's jitter, a few ms here.
    for w in arrivals.windows(2) {
        let gap = w[1].duration_since(w[0]);
        assert!(
            gap >= Duration::from_millis(80),
            "two POSTs {gap:?} apart with rate=10: {arrivals:?}"
        );
    }
    c.finish().await;
}
