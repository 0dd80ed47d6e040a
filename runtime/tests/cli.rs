//! The `stir-runtime` binary: exit codes, `--dry-run`, `--once`, `history`, JSON logs, and no
//! secret in any output.

#[path = "support/servers.rs"]
mod servers;

use std::process::{Command, Output};

use servers::*;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stir-runtime"))
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[tokio::test]
async fn refuses_an_edited_plan_or_an_unknown_version_with_exit_2() {
    let w = World::new("cli_refuse").await;
    let original = std::fs::read_to_string(&w.plan_path).unwrap();
    let edited = w.dir.join("edited.json");
    std::fs::write(&edited, original.replace("*/5 * * * *", "*/1 * * * *")).unwrap();
    let o = bin().arg(&edited).arg("--dry-run").output().unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("hash mismatch") && err.contains("help: never edit plan.json"),
        "{err}"
    );

    let newer = w.dir.join("newer.json");
    let current = format!("\"format_version\": {}", stir::plan::FORMAT_VERSION);
    assert!(original.contains(&current), "{current} in the plan");
    std::fs::write(&newer, original.replace(&current, "\"format_version\": 9")).unwrap();
    // --dry-run: were the plan accepted, the binary would exit instead of running forever.
    let o = bin().arg(&newer).arg("--dry-run").output().unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains("plan format version 9 is newer than this stir-runtime"),
        "{err}"
    );
    w.drop_all().await;
}

#[tokio::test]
async fn dry_run_prints_next_fires_and_statements_touching_no_server() {
    let w = World::new("cli_dry").await;
    let o = bin()
        .arg(&w.plan_path)
        .arg("--dry-run")
        .env_clear()
        .env("STIR_CLICKHOUSE_URL", "http://127.0.0.1:1")
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        out.contains("schedule core  cron \"*/5 * * * *\"  timeout 10m"),
        "{out}"
    );
    assert!(
        out.contains("schedule fragile  cron \"0 3 * * *\"  timeout 10m, retries 1"),
        "{out}"
    );
    let core = out.split("schedule fragile").next().unwrap();
    let fires = core.lines().filter(|l| l.starts_with("    20")).count();
    assert_eq!(fires, 5, "{out}");
    assert!(
        out.contains(&format!(
            "EXCHANGE TABLES {0}.stg_events__stir_new AND {0}.stg_events;",
            w.wh
        )),
        "{out}"
    );
    assert!(out.contains("incremental:"), "{out}");
    w.drop_all().await;
}

#[tokio::test]
async fn once_exits_0_or_1_history_prints_runs_and_logs_are_json_without_secrets() {
    let w = World::new("cli_once").await;
    w.seed(0, 30).await;
    let run = |schedule: &str| {
        bin()
            .arg(&w.plan_path)
            .args(["--once", schedule, "--log-format", "json"])
            .env("STIR_HISTORY_SCHEMA", &w.config.history_schema)
            .env("STIR_RETRY_BACKOFF", "10ms")
            .output()
            .unwrap()
    };
    let o = run("core");
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let step_log = lines
        .iter()
        .find(|v| v["fields"]["message"] == "step ok" && v["span"]["step"] == "stg_events")
        .unwrap_or_else(|| panic!("no step log with a span: {err}"));
    assert_eq!(step_log["span"]["schedule"], "core");
    for secret in [
        w.config.clickhouse_password.clone().unwrap_or_default(),
        pg_password(&w),
    ] {
        if !secret.is_empty() {
            assert!(!err.contains(&secret), "a secret is in the logs");
        }
    }

    w.sql(&format!(
        "INSERT INTO {}.events VALUES (99, '2026-01-02 00:00:00', -1)",
        w.raw
    ))
    .await;
    let o = run("fragile");
    assert_eq!(o.status.code(), Some(1), "a failed run exits 1");
    let o = run("nope");
    assert_eq!(o.status.code(), Some(2), "an unknown schedule cannot run");
    assert!(text(&o).1.contains("no schedule `nope` in the plan"));

    let o = bin()
        .args(["history", "--limit", "5"])
        .env("STIR_HISTORY_SCHEMA", &w.config.history_schema)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let rows: Vec<&str> = out.lines().collect();
    assert!(
        rows[0].starts_with("FIRE (UTC)") && rows[0].contains("SCHEDULE  STATUS"),
        "{out}"
    );
    assert_eq!(rows.len(), 4, "header + core ok + fragile failed x2: {out}");
    assert!(
        rows.iter()
            .any(|r| r.contains("core") && r.contains(" ok ")),
        "{out}"
    );
    assert!(
        rows.iter().any(|r| r.contains("fragile")
            && r.contains("failed")
            && r.contains("fragile_events")
            && r.contains("negative value")),
        "{out}"
    );
    let o = bin()
        .args(["history", "--schedule", "core"])
        .env("STIR_HISTORY_SCHEMA", &w.config.history_schema)
        .output()
        .unwrap();
    assert_eq!(text(&o).0.lines().count(), 2);
    w.drop_all().await;
}

fn pg_password(w: &World) -> String {
    let url = w.config.postgres_url.clone().unwrap_or_default();
    url.split("://")
        .nth(1)
        .and_then(|r| r.split('@').next())
        .and_then(|u| u.split(':').nth(1))
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn once_refuses_a_second_run_of_a_schedule_the_history_shows_running() {
    let w = World::new("cli_once_busy").await;
    w.seed(0, 10).await;
    // A runtime (the leader) started `core` a minute ago and has not finished it.
    let run_once = |extra: &[&str]| {
        bin()
            .arg(&w.plan_path)
            .args(["--once", "core"])
            .args(extra)
            .env("STIR_HISTORY_SCHEMA", &w.config.history_schema)
            .env("STIR_RETRY_BACKOFF", "10ms")
            .output()
            .unwrap()
    };
    // First run creates the history tables.
    assert_eq!(run_once(&[]).status.code(), Some(0));
    let pg = w.pg().await;
    pg.batch_execute(&format!(
        "INSERT INTO {}.runs (id, schedule, fire_time, started_at, status, plan_hash, attempt)
         VALUES ('core-leader-a1', 'core', now() - interval '1 minute', now() - interval '1 minute', 'running', 'x', 1)",
        w.config.history_schema
    ))
    .await
    .unwrap();
    let o = run_once(&[]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("schedule `core` is running now (run `core-leader-a1`")
            && err.contains("--force"),
        "{err}"
    );
    let o = run_once(&["--force"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o).1);
    w.drop_all().await;
}
