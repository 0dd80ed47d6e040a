//! A run past its timeout stops its work on the ClickHouse server, not only in the runtime:
//! the executor sends `KILL QUERY` for the statements it has in flight (issue #13, "Timeouts
//! must stop the work"). On the real test server, whose front end runs queries concurrently
//! and honours `KILL QUERY` and `system.processes` for its own query ids (docs/servers.md).
//!
//! Needs `scripts/servers.sh up` and `eval "$(scripts/servers.sh env)"`.

#[path = "support/servers.rs"]
mod servers;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use servers::*;
use stir::plan::Step;
use stir_runtime::executor::RunStatus;

/// An `INSERT ... SELECT` that would run 20 s on the server (one row per 0.1 s) in a schedule
/// with a 2 s timeout. A client closing its connection does not stop such a statement on a
/// ClickHouse server; only the kill does. The test watches `system.processes` from its own
/// connection while the run goes on, and after the run: the statement must be gone at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_run_s_statement_is_killed_on_the_server() {
    let mut w = World::new("kill").await;
    w.sql(&format!(
        "CREATE TABLE {}.sink (x UInt8) ENGINE = MergeTree ORDER BY tuple()",
        w.wh
    ))
    .await;
    // A server lists a running query under its query_id; a front end that does not (the one
    // before concurrency and kills) would hold every other test up for 20 s below.
    let own = next_id("kill-probe");
    let listed = w
        .warehouse
        .number(
            &format!("SELECT count() FROM system.processes WHERE query_id = '{own}'"),
            &own,
        )
        .await
        .unwrap();
    assert_eq!(
        listed, 1,
        "ClickHouse does not list this query under its query_id: if it is the test front end, \
         restart it with the current scripts/chdb_http.py (`scripts/servers.sh down && up`)"
    );
    let marker = next_id("kill-marker");
    let mut plan = w.plan.clone();
    let mut s = plan.schedule("core").unwrap().clone();
    s.name = "killme".into();
    s.timeout_secs = 2;
    s.steps = vec![Step::Sql {
        sql: format!(
            "INSERT INTO {}.sink SELECT sleepEachRow(0.1) FROM numbers(200) WHERE '{marker}' != '' \
             SETTINGS max_block_size = 1, max_threads = 1",
            w.wh
        ),
    }];
    plan.schedules.push(s);
    w.plan = plan.seal();

    // The statement's query ids as the server lists them (the watcher's own query names
    // system.processes, the statement does not).
    let running = format!(
        "SELECT query_id FROM system.processes WHERE position(query, '{marker}') > 0 \
         AND position(query, 'system.processes') = 0"
    );
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (wh, running, seen, done) = (
            w.warehouse.clone(),
            running.clone(),
            seen.clone(),
            done.clone(),
        );
        tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                let t0 = Instant::now();
                let text = wh.text(&running, &next_id("watch")).await.unwrap();
                // The server answers while the statement runs: queries are concurrent.
                assert!(t0.elapsed() < Duration::from_secs(1), "the watcher waited");
                seen.lock()
                    .unwrap()
                    .extend(text.lines().map(str::to_string));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let started = Instant::now();
    let status = stir_runtime::run_once(w.plan.clone(), w.config.clone(), "killme")
        .await
        .unwrap();
    let run_took = started.elapsed();
    done.store(true, Ordering::SeqCst);
    watcher.await.unwrap();
    assert_eq!(status, RunStatus::Timeout);
    let seen = seen.lock().unwrap().clone();
    let prefix = stir_runtime::run::query_prefix(&w.plan.warehouse.database, "killme");
    assert!(
        seen.iter().any(|q| q.starts_with(&prefix)),
        "the statement ran on the server under the run's query id: {seen:?}"
    );

    // ASYNC kill: the statement stops at its next block (0.1 s). Unkilled it runs ~17 s more.
    let mut left = u64::MAX;
    for _ in 0..30 {
        left = w
            .number(&running.replacen("SELECT query_id", "SELECT count()", 1))
            .await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        left,
        0,
        "the timed-out statement still runs on the server {:?} after the run ended",
        started.elapsed() - run_took
    );
    let rows = w
        .number(&format!("SELECT count() FROM {}.sink", w.wh))
        .await;
    assert!(
        rows < 200,
        "the statement did not run to its end ({rows} rows)"
    );
    w.drop_all().await;
}
