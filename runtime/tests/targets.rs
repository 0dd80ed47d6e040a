//! Named serving targets against the real test servers: two PostgreSQL databases on the test
//! server (the second one created here), each synced by its own sync to a table of the same
//! name, with URLs only in the runtime's environment (`STIR_POSTGRES_URL_<NAME>`) and the
//! runtime's own state (history, leader lock) in `STIR_STATE_URL`.
//!
//! Needs `scripts/servers.sh up` and `eval "$(scripts/servers.sh env)"`; without that
//! environment every test here fails and says so.

#[path = "fixtures/sync/harness.rs"]
mod harness;

use std::process::Output;

use harness::{pg_connect, Case};

/// `url` with its database replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (head, tail) = url.split_at(url.rfind('/').expect("a URL with a database"));
    match tail.find('?') {
        Some(q) => format!("{head}/{db}{}", &tail[q..]),
        None => format!("{head}/{db}"),
    }
}

/// Run the binary on the case's plan with the case's environment but the PostgreSQL URLs,
/// which are `urls` only.
fn run_bin(c: &Case, args: &[&str], urls: &[(&str, &str)]) -> Output {
    let plan = c.dir.join("plan.json");
    std::fs::write(&plan, c.plan.to_json()).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_stir-runtime"));
    cmd.arg(&plan)
        .args(args)
        .envs(
            c.env
                .iter()
                .filter(|(k, _)| !k.starts_with("STIR_POSTGRES_URL")),
        )
        .env("STIR_HISTORY_SCHEMA", format!("h_{}", c.id))
        .env("STIR_RETRY_BACKOFF", "10ms");
    // Not inherited either: the test servers' environment names a staging database too.
    for (k, _) in std::env::vars() {
        if k.starts_with("STIR_POSTGRES_URL") || k == "STIR_STATE_URL" {
            cmd.env_remove(k);
        }
    }
    for (k, v) in urls {
        cmd.env(k, v);
    }
    let o = cmd.output().unwrap();
    eprintln!(
        "stir-runtime {args:?}: {:?}\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

async fn count(pg: &tokio_postgres::Client, sql: &str) -> i64 {
    pg.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_databases_each_get_their_table_and_the_state_goes_to_its_own() {
    let c = Case::with_fixture("tgt", "targets").await;
    let prod_url = c.env["STIR_POSTGRES_URL"].clone();
    // The second database, on the same server.
    let db = format!("stir_{}", c.id);
    for sql in [
        format!("DROP DATABASE IF EXISTS {db}"),
        format!("CREATE DATABASE {db}"),
    ] {
        c.pg.batch_execute(&sql).await.unwrap();
    }
    let staging_url = with_database(&prod_url, &db);
    let staging = pg_connect(&staging_url).await;
    staging
        .batch_execute(&format!("CREATE SCHEMA {}", c.schema))
        .await
        .unwrap();
    c.overflow_rows(1000, 1).await;
    let (s, h) = (c.schema.clone(), format!("h_{}", c.id));

    // The plan names the targets, never a URL.
    let json = c.plan.to_json();
    assert!(json.contains("\"target\": \"staging\"") && json.contains("\"target\": \"prod\""));
    assert!(!json.contains("postgres://"));

    // A target without its URL refuses the start, naming the variable; nothing runs.
    let o = run_bin(
        &c,
        &["--once", "nightly"],
        &[
            ("STIR_POSTGRES_URL_PROD", &prod_url),
            ("STIR_STATE_URL", &staging_url),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("`STIR_POSTGRES_URL_STAGING` is not set") && e.contains("`staging`"),
        "{e}"
    );
    assert_eq!(
        count(
            &c.pg,
            &format!("SELECT count(*) FROM pg_tables WHERE schemaname = '{s}'")
        )
        .await,
        0
    );

    // Both targets, and the state in the staging database (a database of its own here).
    let urls = [
        ("STIR_POSTGRES_URL_PROD", prod_url.as_str()),
        ("STIR_POSTGRES_URL_STAGING", staging_url.as_str()),
        ("STIR_STATE_URL", staging_url.as_str()),
    ];
    let o = run_bin(&c, &["--once", "nightly"], &urls);
    assert_eq!(o.status.code(), Some(0));
    // Each database has its own `board`, synced by its own sync.
    let table = format!("SELECT count(*) FROM {s}.board");
    assert_eq!(count(&c.pg, &table).await, 1000);
    assert_eq!(count(&staging, &table).await, 1000);
    // The history is where STIR_STATE_URL says, not in the prod database.
    let exists = format!("SELECT count(*) FROM pg_namespace WHERE nspname = '{h}'");
    assert_eq!(count(&c.pg, &exists).await, 0, "no history in prod");
    assert_eq!(
        count(
            &staging,
            &format!("SELECT count(*) FROM {h}.runs WHERE schedule = 'nightly' AND status = 'ok'")
        )
        .await,
        1
    );

    // A second load into staging only, then its rollback: prod is not touched.
    c.overflow_rows(1500, 1).await;
    let o = run_bin(&c, &["--once", "nightly"], &urls);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(count(&staging, &table).await, 1500);
    let o = run_bin(&c, &["rollback", "board_staging"], &urls);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(count(&staging, &table).await, 1000);
    assert_eq!(count(&c.pg, &table).await, 1500);

    drop(staging);
    c.pg.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .await
        .unwrap();
    c.finish().await;
}

/// A config made in code (a library caller; the binary reads every target's URL at start)
/// reads a named target's URL from the environment when the sync runs. A blank one is
/// refused, naming the variable, and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_targets_url_is_read_when_the_sync_runs_and_a_blank_one_is_refused() {
    let mut c = Case::new("tgtenv").await;
    c.overflow_rows(10, 1).await;
    c.plan_sync_mut("guard_default").target = Some("late".into());
    let runner_with = |url: &str| {
        let url = url.to_string();
        c.runner(move |o| {
            let env = o.env.clone();
            o.env = std::sync::Arc::new(move |k: &str| {
                if k == "STIR_POSTGRES_URL_LATE" {
                    Some(url.clone())
                } else {
                    env(k)
                }
            });
        })
    };
    let err = c
        .sync(&runner_with("  "), "guard_default", "tgtenv-1")
        .await
        .expect_err("a blank URL is refused")
        .to_string();
    assert!(
        err.contains("`STIR_POSTGRES_URL_LATE` is not set") && err.contains("`late`"),
        "{err}"
    );
    assert!(!c.pg_exists("guard_default").await, "nothing written");
    let url = c.env["STIR_POSTGRES_URL"].clone();
    c.sync(&runner_with(&url), "guard_default", "tgtenv-2")
        .await
        .expect("the URL from the environment is used");
    assert_eq!(c.pg_count("guard_default").await, 10);
    c.finish().await;
}
