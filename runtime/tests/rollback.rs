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
    let c = Case::new("rb_flow").await;
    let s = c.schema.clone();
    c.overflow_rows(1000, 1).await;
    sync_ok(&c, "rb_kept", "rb-good").await;
    // The app reads the table through a view, and a report through a materialized view.
    c.pg.batch_execute(&format!(
        "CREATE VIEW {s}.rb_app AS SELECT count(*) AS n, coalesce(sum(big), 0)::text AS total FROM {s}.rb_kept; \
         CREATE MATERIALIZED VIEW {s}.rb_report AS SELECT count(*) AS n, coalesce(sum(big), 0)::text AS total FROM {s}.rb_kept"
    ))
    .await
    .unwrap();
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
