//! A request's query that fails after ClickHouse has started its 200 answer, on the real test
//! servers: ClickHouse writes its exception into the body (docs/servers.md), and the runtime
//! must fail the step with that message and POST nothing. (The sync export's case is
//! `fault_clickhouse_fails_in_the_middle_of_the_export` in sync.rs.)
//!
//! Needs `scripts/servers.sh up` and `eval "$(scripts/servers.sh env)"`.

#[path = "fixtures/sync/harness.rs"]
mod harness;
#[path = "fixtures/tagless_proxy.rs"]
mod tagless_proxy;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use harness::Case;
use stir_runtime::step::StepRunner;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// An endpoint that counts the connections made to it (and answers 200).
async fn counting_endpoint() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            s.fetch_add(1, Ordering::SeqCst);
            let _ = sock
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .await;
        }
    });
    (format!("http://{addr}/"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_query_failing_midway_fails_the_step_and_posts_nothing() {
    let mut c = Case::new("reqcut").await;
    let req = Arc::make_mut(&mut c.plan)
        .requests
        .iter_mut()
        .find(|r| r.name == "ping")
        .unwrap();
    // One-row blocks streamed before row 90 throws: the 200 and the first rows are sent.
    req.sql = "SELECT toString(number) AS code, number AS n FROM numbers(200) \
               WHERE throwIf(number = 90, 'cut short') = 0 \
               SETTINGS max_block_size = 1, max_threads = 1"
        .into();
    let (url, seen) = counting_endpoint().await;
    let proxied = tagless_proxy::start(&c.config.clickhouse_url, false).await;
    let reframed = tagless_proxy::start(&c.config.clickhouse_url, true).await;
    let direct = c.config.clickhouse_url.clone();
    for (label, ch_url, lz4) in [
        ("direct", &direct, false),
        ("direct, LZ4-compressed answers", &direct, true),
        ("through a proxy that drops the tag header", &proxied, false),
        ("through that proxy, LZ4-compressed answers", &proxied, true),
        (
            "through a proxy that also ends the cut body cleanly",
            &reframed,
            false,
        ),
    ] {
        let runner = c.runner(|o| {
            let base = o.env.clone();
            let url = url.clone();
            o.env = Arc::new(move |k: &str| {
                if k == "STIR_ENDPOINT_SINK" {
                    Some(url.clone())
                } else {
                    base(k)
                }
            });
        });
        let mut config = c.config.clone();
        config.clickhouse_url = ch_url.clone();
        config.clickhouse_lz4 = lz4;
        let ctx = c.ctx(config);
        let err = runner
            .run_request(&ctx, "ping", "reqcut-1")
            .await
            .unwrap_err()
            .to_string();
        eprintln!("expected failure ({label}): {err}");
        assert!(
            err.contains("ClickHouse failed after the answer had started")
                && err.contains("Code: 395")
                && err.contains("cut short")
                && err.contains(&format!(
                    "query_id `{}",
                    stir_runtime::run::query_prefix(&c.plan.warehouse.database, "reqcut-1")
                )),
            "{label}: the error names ClickHouse's message and the query: {err}"
        );
        assert!(!err.contains("__exception__"), "{label}: {err}");
        assert_eq!(
            seen.load(Ordering::SeqCst),
            0,
            "{label}: nothing was POSTed"
        );
    }
    c.finish().await;
}
