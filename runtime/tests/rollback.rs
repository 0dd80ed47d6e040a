//! `stir-runtime plan.json rollback SYNC` against the real test servers: a sync keeps the
//! table it replaces by default; a rollback swaps it back in (views, grants, comments and
//! indexes as a sync carries them), records itself in the history and alerts; it is refused,
//! with nothing changed, when there is no backup, the sync is unknown, another run holds the
//! table, or the backup would lose too many rows.
//!
//! Needs `scripts/servers.sh up` and `eval "$(scripts/servers.sh env)"`; without that
//! environment every test here fails and says so.

#[path = "fixtures/sync/harness.rs"]
mod harness;

use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use harness::Case;
use stir_runtime::alert::{AlertKind, Alerter};

/// The live table's row count and `sum(big)`, read through the app's view.
async fn app_reads(c: &Case, view: &str) -> (i64, String) {
    let row =
        c.pg.query_one(
            &format!("SELECT n, total FROM {}.\"{view}\"", c.schema),
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// The app reads `rb_kept` through a view (`rb_app`), a report through a materialized view
/// (`rb_report`): row count and `sum(big)` as text.
async fn app_views(c: &Case) {
    let s = &c.schema;
    c.pg.batch_execute(&format!(
        "CREATE VIEW {s}.rb_app AS SELECT count(*) AS n, coalesce(sum(big), 0)::text AS total FROM {s}.rb_kept; \
         CREATE MATERIALIZED VIEW {s}.rb_report AS SELECT count(*) AS n, coalesce(sum(big), 0)::text AS total FROM {s}.rb_kept"
    ))
    .await
    .unwrap();
}

/// Row count and `sum(big)` of a table of the case's schema.
async fn content(c: &Case, table: &str) -> (i64, String) {
    c.rows_and_sum(table).await
}

/// Index names of a table of the case's schema, sorted.
async fn indexes(c: &Case, table: &str) -> Vec<String> {
    c.pg.query(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 ORDER BY 1",
        &[&c.schema, &table],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

async fn sync_ok(c: &Case, sync: &str, run_id: &str) {
    c.sync(&c.runner(|_| {}), sync, run_id)
        .await
        .unwrap_or_else(|e| panic!("sync {sync} ({run_id}): {e}"));
}

/// A case whose `rb_kept` was synced once, from 1000 rows with `big` = `id`; and its schema.
async fn synced_once(name: &str) -> (Case, String) {
    let c = Case::new(name).await;
    let s = c.schema.clone();
    c.overflow_rows(1000, 1).await;
    sync_ok(&c, "rb_kept", &format!("{name}-1")).await;
    (c, s)
}

fn run_bin(c: &Case, args: &[&str]) -> Output {
    let plan = c.dir.join("plan.json");
    std::fs::write(&plan, c.plan.to_json()).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_stir-runtime"))
        .arg(&plan)
        .args(args)
        .envs(&c.env)
        .env("STIR_HISTORY_SCHEMA", format!("h_{}", c.id))
        .output()
        .unwrap();
    eprintln!(
        "stir-runtime {args:?}: {:?}\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The history's rows of rollbacks: (status, error, step kind, step name, rows).
async fn rollbacks(c: &Case) -> Vec<(String, Option<String>, String, String, Option<i64>)> {
    c.pg.query(
        &format!(
            "SELECT r.status, r.error, s.kind, s.name, s.rows FROM h_{0}.runs r \
             JOIN h_{0}.steps s ON s.run_id = r.id WHERE r.schedule = '@rollback' ORDER BY r.started_at",
            c.id
        ),
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_after_a_bad_sync_gives_the_app_the_first_data_again() {
    let (c, s) = synced_once("rb_flow").await;
    // The app reads the table through a view, and a report through a materialized view.
    app_views(&c).await;
    let good = app_reads(&c, "rb_app").await;
    assert_eq!(good, (1000, "499500".into()));

    // A bad load that passes every guard: the same rows, `big` seven times too large.
    c.overflow_rows(1000, 7).await;
    sync_ok(&c, "rb_kept", "rb-bad").await;
    let bad = app_reads(&c, "rb_app").await;
    assert_eq!(bad, (1000, "3496500".into()));
    // The table it replaced is kept by default, whole.
    assert_eq!(content(&c, "rb_kept__stir_old").await, good);
    // Granted and commented since: the rollback must carry both to the table it restores.
    c.pg.batch_execute(&format!(
        "GRANT SELECT ON {s}.rb_kept TO PUBLIC; COMMENT ON TABLE {s}.rb_kept IS 'the app reads it'"
    ))
    .await
    .unwrap();

    let mut config = c.config.clone();
    config.history_schema = format!("h_{}", c.id);
    let (alerts, sent) = Alerter::memory();
    let rollback = |config: stir_runtime::Config| {
        let (plan, runner, alerts) = ((*c.plan).clone(), c.runner(|_| {}), alerts.clone());
        async move {
            stir_runtime::rollback_with(
                plan,
                config,
                "rb_kept",
                false,
                Duration::from_secs(600),
                stir_runtime::Options {
                    runner: Some(Arc::new(runner)),
                    alerts: Some(alerts),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
        }
    };
    assert_eq!(app_reads(&c, "rb_report").await, bad);
    assert_eq!(rollback(config.clone()).await, Ok(1000));
    // The app reads the first data again, through its view, with its grant and comment; the
    // materialized view is rebuilt on the restored rows.
    assert_eq!(app_reads(&c, "rb_app").await, good);
    assert_eq!(app_reads(&c, "rb_report").await, good);
    let (select, comment): (bool, Option<String>) = {
        let r =
            c.pg.query_one(
                "SELECT has_table_privilege('public', $1, 'SELECT'), obj_description(to_regclass($1), 'pg_class')",
                &[&c.table("rb_kept")],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert!(select, "the grant followed the rollback");
    assert_eq!(comment.as_deref(), Some("the app reads it"));
    // Live indexes under their live names; the bad load is the backup now, with its own.
    assert_eq!(
        indexes(&c, "rb_kept").await,
        ["rb_kept__big_idx", "rb_kept__key"]
    );
    assert_eq!(
        indexes(&c, "rb_kept__stir_old").await,
        ["rb_kept__big_idx__stir_old", "rb_kept__key__stir_old"]
    );
    assert_eq!(content(&c, "rb_kept__stir_old").await, bad);
    // Recorded and alerted.
    let h = rollbacks(&c).await;
    assert_eq!(
        h,
        [(
            "ok".into(),
            None,
            "rollback".into(),
            "rb_kept".into(),
            Some(1000)
        )]
    );
    let sent = sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].kind, AlertKind::RolledBack);
    assert!(sent[0].text().contains("sync `rb_kept` rolled back"));

    // A rollback undoes a rollback: the two tables exchange places again.
    assert_eq!(rollback(config.clone()).await, Ok(1000));
    assert_eq!(app_reads(&c, "rb_app").await, bad);
    assert_eq!(rollback(config).await, Ok(1000));
    assert_eq!(app_reads(&c, "rb_app").await, good);

    // The next sync replaces the live table as always and keeps it as the backup.
    c.overflow_rows(1000, 3).await;
    sync_ok(&c, "rb_kept", "rb-next").await;
    assert_eq!(app_reads(&c, "rb_app").await, (1000, "1498500".into()));
    assert_eq!(content(&c, "rb_kept__stir_old").await, good);
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_refusals_say_why_and_change_nothing() {
    let c = Case::new("rb_refuse").await;
    let s = c.schema.clone();
    c.overflow_rows(1000, 1).await;

    // Unknown sync: exit 2, with the likely name.
    let o = run_bin(&c, &["rollback", "rb_kep"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("the plan has no sync `rb_kep`") && e.contains("did you mean `rb_kept`?"),
        "{e}"
    );

    // The first sync of a table leaves nothing to go back to: exit 1, recorded as failed.
    sync_ok(&c, "rb_kept", "rb-first").await;
    let first = content(&c, "rb_kept").await;
    let o = run_bin(&c, &["rollback", "rb_kept"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("there is no backup to roll back to") && e.contains("nothing changed"),
        "{e}"
    );
    assert_eq!(content(&c, "rb_kept").await, first);
    let h = rollbacks(&c).await;
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].0, "failed");
    assert!(h[0].1.as_deref().unwrap().contains("no backup"), "{h:?}");

    // A sync that opts out keeps no backup.
    sync_ok(&c, "rb_none", "rb-none-1").await;
    c.overflow_rows(1000, 2).await;
    sync_ok(&c, "rb_none", "rb-none-2").await;
    assert!(!c.pg_exists("rb_none__stir_old").await);
    let o = run_bin(&c, &["rollback", "rb_none"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("keep-backup=#false"));
    assert_eq!(content(&c, "rb_none").await, (1000, "999000".into()));

    // A run holding the table (here: its lock, as a running sync holds it) refuses the
    // rollback, naming the holder.
    c.overflow_rows(3000, 1).await;
    sync_ok(&c, "rb_kept", "rb-grown").await;
    let holder = harness::pg_connect(&c.env["STIR_POSTGRES_URL"]).await;
    holder
        .batch_execute("SET application_name = 'stir sync rb_kept other-run'")
        .await
        .unwrap();
    holder
        .query_one(
            "SELECT pg_advisory_lock(1398032722, hashtext($1))",
            &[&format!("\"{s}\".\"rb_kept\"")],
        )
        .await
        .unwrap();
    let o = run_bin(&c, &["rollback", "rb_kept"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("other-run"), "{}", stderr(&o));
    drop(holder);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The backup has a third of the live rows: the sync's max-shrink guard holds, unless the
    // operator says the loss is wanted.
    let grown = content(&c, "rb_kept").await;
    assert_eq!(grown.0, 3000);
    let o = run_bin(&c, &["rollback", "rb_kept"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("the backup has 1000 rows") && e.contains("--allow-shrink"),
        "{e}"
    );
    assert_eq!(content(&c, "rb_kept").await, grown);
    let o = run_bin(&c, &["rollback", "rb_kept", "--allow-shrink"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("1000 rows live"));
    assert_eq!(content(&c, "rb_kept").await, first);
    assert_eq!(content(&c, "rb_kept__stir_old").await, grown);

    // A backup that lacks what the live table has now (a column added since) is refused.
    c.pg.batch_execute(&format!(
        "ALTER TABLE {s}.rb_kept__stir_old DROP COLUMN big"
    ))
    .await
    .unwrap();
    let o = run_bin(&c, &["rollback", "rb_kept", "--allow-shrink"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("lacks what the live table") && e.contains("big"),
        "{e}"
    );
    assert_eq!(content(&c, "rb_kept").await, first);
    c.finish().await;
}

/// The sync's error, as the history and the alert would show it.
async fn sync_err(c: &Case, sync: &str, run_id: &str) -> String {
    match c.sync(&c.runner(|_| {}), sync, run_id).await {
        Ok(o) => panic!("sync {sync} ({run_id}) succeeded: {o:?}"),
        Err(e) => e.to_string(),
    }
}

/// Someone builds a view on the kept backup: the next sync cannot drop the backup, so it fails
/// closed (the live table and what the app reads stay as they were, the alert names the view
/// and says what to do); once the view is gone the sync works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_on_the_kept_backup_fails_the_next_sync_closed_and_names_it() {
    let (c, s) = synced_once("rb_bkview").await;
    c.overflow_rows(1000, 2).await;
    sync_ok(&c, "rb_kept", "bkv-2").await;
    c.pg.batch_execute(&format!(
        "CREATE VIEW {s}.rb_app AS SELECT count(*) AS n, coalesce(sum(big), 0)::text AS total FROM {s}.rb_kept; \
         CREATE VIEW {s}.yesterday AS SELECT * FROM {s}.rb_kept__stir_old"
    ))
    .await
    .unwrap();
    let live = app_reads(&c, "rb_app").await;
    assert_eq!(live, (1000, "999000".into()));

    c.overflow_rows(1000, 3).await;
    let e = sync_err(&c, "rb_kept", "bkv-3").await;
    assert!(e.contains("yesterday"), "the error names the view: {e}");
    assert!(
        e.contains("help:") && e.contains("rb_kept__stir_old"),
        "the error says what to do: {e}"
    );
    assert_eq!(app_reads(&c, "rb_app").await, live, "the live table stays");
    assert_eq!(
        content(&c, "rb_kept__stir_old").await,
        (1000, "499500".into()),
        "the backup, and the view on it, stay"
    );

    c.pg.batch_execute(&format!("DROP VIEW {s}.yesterday"))
        .await
        .unwrap();
    sync_ok(&c, "rb_kept", "bkv-4").await;
    assert_eq!(app_reads(&c, "rb_app").await, (1000, "1498500".into()));
    assert_eq!(content(&c, "rb_kept__stir_old").await, live);
    c.finish().await;
}

/// A materialized view whose definition no longer builds on the new rows: the swap is
/// committed, the view keeps the previous rows and the step fails saying so; every later run
/// fails the same way (the table stays at the first failing run's rows, never half a table)
/// until the view is fixed, and then the next run rebuilds it and syncs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_materialized_view_that_no_longer_builds_fails_each_run_until_fixed() {
    let (c, s) = synced_once("rb_mvbreak").await;
    // Builds while every `big` is below 10,000; the next load breaks it.
    c.pg.batch_execute(&format!(
        "CREATE MATERIALIZED VIEW {s}.rb_report AS \
           SELECT count(*) AS n, sum(big::int2)::text AS total FROM {s}.rb_kept"
    ))
    .await
    .unwrap();
    assert_eq!(app_reads(&c, "rb_report").await, (1000, "499500".into()));

    c.overflow_rows(1000, 50).await;
    let e = sync_err(&c, "rb_kept", "mvb-2").await;
    assert!(
        e.contains("materialized view") && e.contains("previous rows"),
        "{e}"
    );
    assert_eq!(content(&c, "rb_kept").await, (1000, "24975000".into()));
    assert_eq!(
        app_reads(&c, "rb_report").await,
        (1000, "499500".into()),
        "the report keeps the previous rows"
    );

    // The next run tries the rebuild first and fails the same way; the table is not touched.
    c.overflow_rows(1000, 60).await;
    let e = sync_err(&c, "rb_kept", "mvb-3").await;
    assert!(e.contains("materialized view"), "{e}");
    assert_eq!(content(&c, "rb_kept").await, (1000, "24975000".into()));

    // Fixed by hand (the definition no longer narrows the column): the next run rebuilds it
    // on the live rows first, then syncs and rebuilds it again on the new ones.
    c.pg.batch_execute(&format!(
        "DROP MATERIALIZED VIEW {s}.rb_report; \
         CREATE MATERIALIZED VIEW {s}.rb_report AS \
           SELECT count(*) AS n, sum(big)::text AS total FROM {s}.rb_kept"
    ))
    .await
    .unwrap();
    sync_ok(&c, "rb_kept", "mvb-4").await;
    assert_eq!(content(&c, "rb_kept").await, (1000, "29970000".into()));
    assert_eq!(app_reads(&c, "rb_report").await, (1000, "29970000".into()));
    c.finish().await;
}

/// A rollback killed between its table exchange and the rebuild of the materialized views
/// on the table: the app already reads the restored rows, the materialized view the previous
/// ones (readable, never empty), and the next sync finishes the rebuild before anything else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_inside_a_rollbacks_rebuild_is_finished_by_the_next_sync() {
    let (c, s) = synced_once("rb_kill").await;
    app_views(&c).await;
    let good = app_reads(&c, "rb_app").await;
    c.overflow_rows(1000, 7).await;
    sync_ok(&c, "rb_kept", "rbk-bad").await;
    let bad = app_reads(&c, "rb_report").await;
    assert_eq!(bad, (1000, "3496500".into()));

    let (mut child, _) = harness::binary_paused_at(
        &c,
        &["rollback", "rb_kept"],
        "sync:pause_before_rebuild",
        "BeforeRebuild",
    )
    .await;
    child.kill().await.unwrap();

    assert_eq!(
        app_reads(&c, "rb_app").await,
        good,
        "the exchange is committed"
    );
    assert_eq!(
        app_reads(&c, "rb_report").await,
        bad,
        "the materialized view still holds the rows it had, readable"
    );

    // The next sync (new rows) first finishes the rebuild, then syncs and rebuilds again.
    c.overflow_rows(1000, 3).await;
    sync_ok(&c, "rb_kept", "rbk-next").await;
    let now = (1000, "1498500".to_string());
    assert_eq!(app_reads(&c, "rb_app").await, now);
    assert_eq!(app_reads(&c, "rb_report").await, now);
    let leftovers: i64 =
        c.pg.query_one(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind = 'm' AND c.relname <> 'rb_report'",
            &[&s],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(leftovers, 0, "no retired materialized view left behind");
    assert_eq!(
        content(&c, "rb_kept__stir_old").await,
        good,
        "the restored rows are the backup now"
    );
    c.finish().await;
}
