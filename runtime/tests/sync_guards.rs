//! The sync's row-count guards and generated PostgreSQL names, against the real test servers:
//! a result that lost too much of the live table, or an empty one, is refused and the live table
//! stays as it was; a target name near PostgreSQL's 63-byte limit still swaps.
//!
//! Needs `scripts/servers.sh up` and `eval "$(scripts/servers.sh env)"`; without that
//! environment every test here fails and says so.

#[path = "fixtures/sync/harness.rs"]
mod harness;

use harness::Case;

const LONG: &str = "guard_long_target_name_to_test_the_identifier_limit_xxxxxxxx";

/// A case whose `to` table is live with `n` rows, synced once by `sync`.
async fn live(name: &str, sync: &str, n: u64) -> Case {
    let c = Case::new(name).await;
    c.overflow_rows(n, 1).await;
    c.sync(&c.runner(|_| {}), sync, &format!("{name}-setup"))
        .await
        .unwrap();
    c
}

/// Run `sync` and answer its error, which it must have.
async fn refusal(c: &Case, sync: &str, run_id: &str) -> String {
    let err = c
        .sync(&c.runner(|_| {}), sync, run_id)
        .await
        .expect_err("the sync must be refused")
        .to_string();
    eprintln!("expected failure: {err}");
    err
}

/// The live table's row count and `sum(big)`, as a reader of the app would check it.
async fn content(c: &Case, to: &str) -> (i64, String) {
    c.rows_and_sum(to).await
}

/// Nothing of stir's is left beside the live table `to` but the backup a sync keeps by
/// default: no staging table (this run's or another's); the case's schema holds only `to`
/// and perhaps its backup.
async fn assert_no_leftovers(c: &Case, to: &str) {
    let backup = stir::planner::sync_names(to, &[]).backup;
    let others: Vec<String> =
        c.pg.query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND c.relname::text NOT IN ($2, $3) ORDER BY 1",
            &[&c.schema, &to, &backup],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(others.is_empty(), "left beside `{to}`: {others:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_empty_export_over_a_live_table_with_rows_is_refused() {
    let c = live("gempty", "guard_default", 100).await;
    let before = c.pg_digest("guard_default").await;
    c.overflow_rows(0, 1).await;
    let err = refusal(&c, "guard_default", "gempty-1").await;
    assert!(
        err.contains("the new table has 0 rows")
            && err.contains(&format!("`{}.guard_default` has 100", c.schema))
            && err.contains("allow-empty=#true"),
        "the refusal names both counts, the table and the fix: {err}"
    );
    assert_eq!(c.pg_digest("guard_default").await, before, "live unchanged");
    assert_no_leftovers(&c, "guard_default").await;
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_allow_empty_lets_an_empty_export_replace_the_table() {
    let c = live("gallow", "guard_allow_empty", 100).await;
    assert_eq!(content(&c, "guard_allow_empty").await.0, 100);
    c.overflow_rows(0, 1).await;
    c.sync(&c.runner(|_| {}), "guard_allow_empty", "gallow-1")
        .await
        .unwrap();
    assert_eq!(content(&c, "guard_allow_empty").await.0, 0);
    assert_no_leftovers(&c, "guard_allow_empty").await;
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_max_shrink_none_lets_a_shrink_through_but_not_an_empty_result() {
    let c = live("gnone", "guard_no_shrink", 100).await;
    // 95% fewer rows: no limit on the loss.
    c.overflow_rows(5, 3).await;
    c.sync(&c.runner(|_| {}), "guard_no_shrink", "gnone-1")
        .await
        .unwrap();
    assert_eq!(
        content(&c, "guard_no_shrink").await,
        (5, (3 * (1 + 2 + 3 + 4)).to_string())
    );
    // But not to empty.
    let before = c.pg_digest("guard_no_shrink").await;
    c.overflow_rows(0, 1).await;
    let err = refusal(&c, "guard_no_shrink", "gnone-2").await;
    assert!(
        err.contains("0 rows") && err.contains("has 5") && err.contains("allow-empty=#true"),
        "{err}"
    );
    assert_eq!(
        c.pg_digest("guard_no_shrink").await,
        before,
        "live unchanged"
    );
    assert_no_leftovers(&c, "guard_no_shrink").await;
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_default_max_shrink_refuses_a_60_percent_shrink() {
    let c = live("gshrink", "guard_default", 100).await;
    let before = c.pg_digest("guard_default").await;
    c.overflow_rows(40, 2).await;
    let err = refusal(&c, "guard_default", "gshrink-1").await;
    assert!(
        err.contains("the new table has 40 rows")
            && err.contains(&format!("`{}.guard_default` has 100", c.schema))
            && err.contains("60.0% fewer; max-shrink is 50%")
            && err.contains("max-shrink \"60%\""),
        "the refusal names both counts, the table and the fix: {err}"
    );
    assert_eq!(c.pg_digest("guard_default").await, before, "live unchanged");
    assert_no_leftovers(&c, "guard_default").await;
    // Half the rows is within the default: swapped in.
    c.overflow_rows(50, 2).await;
    c.sync(&c.runner(|_| {}), "guard_default", "gshrink-2")
        .await
        .unwrap();
    assert_eq!(
        content(&c, "guard_default").await,
        (50, (2 * 49 * 50 / 2).to_string())
    );
    c.finish().await;
}

/// A 60-byte `to`: `<to>__stir_new` and `<to>__stir_old` were both cut by PostgreSQL to the
/// same 63 bytes, so the swap dropped the new table and every sync was a silent no-op.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_a_60_byte_target_name_swaps_in_the_new_rows() {
    assert_eq!(LONG.len(), 60);
    let c = live("glong", "guard_long_name", 100).await;
    assert_eq!(content(&c, LONG).await, (100, (99 * 100 / 2).to_string()));
    c.overflow_rows(120, 7).await;
    let out = c
        .sync(&c.runner(|_| {}), "guard_long_name", "glong-1")
        .await
        .unwrap();
    assert_eq!(out.rows, Some(120));
    assert_eq!(
        content(&c, LONG).await,
        (120, (7 * 119 * 120 / 2).to_string()),
        "the new rows are live"
    );
    // The live table has its key and index, and nothing of stir's is left beside it.
    let indexes: Vec<String> =
        c.pg.query(
            "SELECT indexname::text FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 ORDER BY 1",
            &[&c.schema, &LONG],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(indexes.len(), 2, "{indexes:?}");
    assert_no_leftovers(&c, LONG).await;
    c.finish().await;
}

/// Each run loads its own staging table, `<to>__stir_new_<run_tag(run id)>`, and the next run
/// drops what a killed one left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_staging_table_is_named_per_run_and_a_killed_ones_is_dropped() {
    use stir_runtime::sync::Failpoint;
    let c = live("gperrun", "guard_default", 100).await;
    c.overflow_rows(90, 1).await;
    let killed = c.runner(|o| o.sync.failpoint = Some(Failpoint::BeforeSwap));
    let err = c
        .sync(&killed, "guard_default", "gperrun-1")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("failpoint"), "{err}");
    let tag = stir::plan::run_tag("gperrun-1");
    assert_eq!(
        c.staging_tables("guard_default").await,
        [format!("guard_default__stir_new_{tag}")],
        "the killed run left its own staging table"
    );
    c.sync(&c.runner(|_| {}), "guard_default", "gperrun-2")
        .await
        .unwrap();
    assert_eq!(content(&c, "guard_default").await.0, 90);
    assert_no_leftovers(&c, "guard_default").await;
    c.finish().await;
}

/// Without a run window (as `rollback SYNC` swaps), a swap that meets a reader's lock tries
/// five times with backoff before it gives up, leaving the live table as it was; a reader that
/// lets go while it retries does not stop the swap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_a_busy_swap_without_a_window_tries_five_times() {
    use std::time::{Duration, Instant};
    let mut c = live("gbusy", "guard_default", 100).await;
    c.plan_sync_mut("guard_default").lock_timeout_ms = 300;
    let (url, table) = (c.env["STIR_POSTGRES_URL"].clone(), c.table("guard_default"));
    let reader = |hold: Duration| harness::hold_table(url.clone(), table.clone(), hold);
    let before = c.pg_digest("guard_default").await;
    c.overflow_rows(120, 1).await;
    let held = tokio::spawn(reader(Duration::from_secs(30)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let err = refusal(&c, "guard_default", "gbusy-1").await;
    assert!(err.contains("gave up after 5 tries"), "{err}");
    assert_eq!(c.pg_digest("guard_default").await, before, "live unchanged");
    held.abort();

    let held = tokio::spawn(reader(Duration::from_secs(3)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    c.sync(&c.runner(|_| {}), "guard_default", "gbusy-2")
        .await
        .unwrap();
    held.await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(2500));
    assert_eq!(content(&c, "guard_default").await.0, 120);
    assert_no_leftovers(&c, "guard_default").await;
    c.finish().await;
}

/// A swap waits for a reader up to the sync's lock timeout (5 s unless `lock-timeout` says
/// otherwise) before it backs off: a reader holding the table for 6 s, longer than five short
/// tries with their backoff would wait (under 4 s), still lets the sync through, on its
/// second try.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_a_swap_waits_its_lock_timeout_for_a_reader() {
    use std::time::{Duration, Instant};
    let c = live("gwait", "guard_default", 100).await;
    c.overflow_rows(120, 1).await;
    let (url, table) = (c.env["STIR_POSTGRES_URL"].clone(), c.table("guard_default"));
    let held = tokio::spawn(harness::hold_table(url, table, Duration::from_secs(6)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    c.sync(&c.runner(|_| {}), "guard_default", "gwait-1")
        .await
        .expect("the swap waited for the reader");
    held.await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(5500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(content(&c, "guard_default").await.0, 120);
    assert_no_leftovers(&c, "guard_default").await;
    c.finish().await;
}

/// Only a lock not granted in time (or a deadlock broken by PostgreSQL) makes a swap wait and
/// try again; any other error in the swap fails it at once, with PostgreSQL's reason. Here a
/// view on the backup table, made while the sync runs, keeps the swap from dropping the
/// backup: the error names it, and the live table stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_a_swap_error_that_is_not_a_busy_lock_fails_at_once() {
    use std::time::Duration;
    use stir_runtime::sync::Failpoint;
    let c = live("gnotbusy", "guard_default", 100).await;
    c.overflow_rows(110, 1).await;
    c.sync(&c.runner(|_| {}), "guard_default", "gnotbusy-1")
        .await
        .unwrap();
    let backup = c.table(&stir::planner::sync_names("guard_default", &[]).backup);
    c.overflow_rows(120, 1).await;
    let before = c.pg_digest("guard_default").await;
    let paused =
        c.runner(|o| o.sync.failpoint = Some(Failpoint::PauseBeforeSwap(Duration::from_secs(3))));
    let sync = c.sync(&paused, "guard_default", "gnotbusy-2");
    let meddle = async {
        for _ in 0..1200 {
            if c.staging_tables("guard_default").await.len() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        c.pg.batch_execute(&format!(
            "CREATE VIEW {}.reads_backup AS SELECT * FROM {backup}",
            c.schema
        ))
        .await
        .unwrap();
    };
    let (result, ()) = tokio::join!(sync, meddle);
    let err = result.expect_err("the swap fails").to_string();
    assert!(
        err.contains("depend") && !err.contains("gave up after"),
        "fails at once, naming the dependency: {err}"
    );
    assert_eq!(c.pg_digest("guard_default").await, before, "live unchanged");
    c.finish().await;
}

/// A materialized view on the live table whose name is long and not ASCII (61 bytes, a
/// Cyrillic name after one Latin letter) is rebuilt under a derived name that must be cut to
/// PostgreSQL's 63 bytes on a character boundary: the sync swaps, and the view holds the new
/// rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_a_long_non_ascii_view_name_is_cut_on_a_character_boundary() {
    let c = live("gcyr", "guard_default", 100).await;
    let view = format!("m{}", "п".repeat(30));
    assert_eq!(view.len(), 61);
    c.pg.batch_execute(&format!(
        "CREATE MATERIALIZED VIEW {}.\"{view}\" AS SELECT count(*) AS n FROM {}",
        c.schema,
        c.table("guard_default")
    ))
    .await
    .unwrap();
    c.overflow_rows(130, 1).await;
    c.sync(&c.runner(|_| {}), "guard_default", "gcyr-1")
        .await
        .unwrap();
    let n: i64 =
        c.pg.query_one(&format!("SELECT n FROM {}.\"{view}\"", c.schema), &[])
            .await
            .unwrap()
            .get(0);
    assert_eq!(n, 130, "the view was rebuilt on the new rows");
    c.finish().await;
}
