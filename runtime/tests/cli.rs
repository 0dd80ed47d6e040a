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

/// Run the binary; a runtime that should have refused but went on running is killed after
/// a minute, so the test fails instead of hanging.
fn bounded(cmd: &mut Command) -> Output {
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Signing the plan of a world: `plan.json.sig` beside it, by `key`.
fn sign(plan: &std::path::Path, key: &stir::signature::SecretKey) {
    let bytes = std::fs::read(plan).unwrap();
    std::fs::write(stir::signature::signature_path(plan), key.sign(&bytes)).unwrap();
}

/// A listener standing in for ClickHouse and PostgreSQL: a refused plan must never reach it.
struct Sentinel(std::net::TcpListener);

impl Sentinel {
    fn new() -> Sentinel {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        Sentinel(l)
    }
    /// The binary with both servers pointed here, and no key unless the test adds one.
    fn runtime(&self, plan: &std::path::Path) -> Command {
        let addr = self.0.local_addr().unwrap();
        let mut c = bin();
        c.arg(plan)
            .env_remove("STIR_PLAN_PUBLIC_KEY")
            .env_remove("STIR_PLAN_KEY")
            .env_remove("STIR_PROJECT")
            .env("STIR_CLICKHOUSE_URL", format!("http://{addr}"))
            .env("STIR_POSTGRES_URL", format!("postgres://stir@{addr}/stir"));
        c
    }
    fn touched(&self) -> bool {
        self.0.accept().is_ok()
    }
}

/// issue #13: with `STIR_PLAN_PUBLIC_KEY` set the runtime runs only plans signed by a trusted
/// key over their exact bytes. An unsigned plan, a plan changed after signing (the appended
/// GRANT with its plan_hash recomputed, which passes the hash check), a plan signed by another
/// key and a plan of another project are each refused with exit 2 and a `help:` line, with
/// `--dry-run` and without, before anything connects. Keys are made at run time.
#[tokio::test]
async fn a_runtime_with_a_public_key_refuses_unsigned_changed_foreign_and_other_project_plans() {
    use stir::signature::SecretKey;
    let w = World::new("cli_sign").await;
    let trusted = SecretKey::generate().unwrap();
    let other = SecretKey::generate().unwrap();
    let sentinel = Sentinel::new();
    let refused = |plan: &std::path::Path, env: &[(&str, String)], args: &[&str], want: &str| {
        for dry in [true, false] {
            let mut cmd = sentinel.runtime(plan);
            cmd.env("STIR_PLAN_PUBLIC_KEY", trusted.public().to_string())
                .args(args)
                .envs(env.iter().map(|(k, v)| (k, v)));
            if dry {
                cmd.arg("--dry-run");
            }
            let o = bounded(&mut cmd);
            let (out, err) = text(&o);
            assert_eq!(o.status.code(), Some(2), "dry-run {dry}: {out}{err}");
            assert!(
                err.contains(want) && err.contains("\nhelp: "),
                "dry-run {dry}: want {want:?} and a help line in\n{err}"
            );
            assert!(out.is_empty(), "nothing printed for a refused plan: {out}");
            assert!(!sentinel.touched(), "a refused plan connected to a server");
        }
    };

    // Unsigned.
    refused(&w.plan_path, &[], &[], "the plan is not signed");

    // Signed, then changed: a GRANT appended to a schedule, plan_hash recomputed.
    sign(&w.plan_path, &trusted);
    let mut grant: stir::plan::Plan =
        serde_json::from_str(&std::fs::read_to_string(&w.plan_path).unwrap()).unwrap();
    grant.schedules[0].steps.push(stir::plan::Step::Sql {
        sql: "GRANT ALL ON *.* TO PUBLIC".into(),
    });
    let grant = grant.seal();
    let changed = w.dir.join("changed.json");
    std::fs::write(&changed, grant.to_json()).unwrap();
    std::fs::copy(
        stir::signature::signature_path(&w.plan_path),
        stir::signature::signature_path(&changed),
    )
    .unwrap();
    // Without a key this is the attack the issue describes: the hash check passes.
    let o = bounded(sentinel.runtime(&changed).arg("--dry-run"));
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(out.contains("GRANT ALL ON *.* TO PUBLIC;"), "{out}");
    assert_eq!(
        err.matches("plans are not verified").count(),
        1,
        "logged once: {err}"
    );
    refused(
        &changed,
        &[],
        &[],
        "the plan's bytes changed after it was signed",
    );

    // Signed by a key the runtime does not trust.
    let foreign = w.dir.join("foreign.json");
    std::fs::copy(&w.plan_path, &foreign).unwrap();
    sign(&foreign, &other);
    refused(
        &foreign,
        &[],
        &[],
        &format!(
            "signed by {}, a key this runtime does not trust",
            other.public()
        ),
    );

    // Signed properly, but this runtime runs another project.
    refused(
        &w.plan_path,
        &[("STIR_PROJECT", "billing".to_string())],
        &[],
        "it is the plan of project `e2e`, and this runtime runs only project `billing`",
    );
    refused(
        &w.plan_path,
        &[],
        &["--project", "billing"],
        "runs only project `billing`",
    );
    // A key that is not one is a refusal too, never "unverified".
    for bad in ["", "stir-pk-ed25519-abcd", &trusted.to_text()] {
        let o = bounded(
            sentinel
                .runtime(&w.plan_path)
                .env("STIR_PLAN_PUBLIC_KEY", bad)
                .arg("--dry-run"),
        );
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {err}");
        assert!(
            err.contains("`STIR_PLAN_PUBLIC_KEY` is") && err.contains("\nhelp: "),
            "{err}"
        );
        assert!(!err.contains(&trusted.to_text()[20..]), "the key is shown");
    }
    w.drop_all().await;
}

/// The signed plan of the right project runs: `--dry-run`, and a real `--once` against the
/// test servers. A runtime given the secret key itself verifies with its public half and
/// warns, and never prints the key.
#[tokio::test]
async fn a_signed_plan_of_the_pinned_project_runs() {
    let w = World::new("cli_signed_ok").await;
    w.seed(0, 20).await;
    let key = stir::signature::SecretKey::generate().unwrap();
    sign(&w.plan_path, &key);
    let run = |extra: &[&str], env: (&str, String)| {
        bounded(
            bin()
                .arg(&w.plan_path)
                .args(extra)
                .env_remove("STIR_PLAN_PUBLIC_KEY")
                .env_remove("STIR_PLAN_KEY")
                .env("STIR_PROJECT", "e2e")
                .env(env.0, env.1)
                .env("STIR_HISTORY_SCHEMA", &w.config.history_schema)
                .env("STIR_RETRY_BACKOFF", "10ms"),
        )
    };
    let public = ("STIR_PLAN_PUBLIC_KEY", key.public().to_string());
    let o = run(&["--dry-run"], public.clone());
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(out.contains("project `e2e`"), "{out}");
    assert!(err.contains("plan signature verified"), "{err}");
    assert!(!err.contains("not verified"), "{err}");
    let o = run(&["--once", "core", "--project", "e2e"], public);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o).1);
    assert_eq!(
        w.number(&format!("SELECT count() FROM {}.stg_events", w.wh))
            .await,
        20
    );
    let o = run(&["--dry-run"], ("STIR_PLAN_KEY", key.to_text()));
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("STIR_PLAN_KEY, a key that can sign plans"),
        "{err}"
    );
    let secret = key.to_text();
    assert!(!out.contains(&secret[16..]) && !err.contains(&secret[16..]));
    w.drop_all().await;
}

/// SIGHUP's default action would end the runtime without draining; it reloads the plan
/// instead (the same bytes: nothing changes; `cli_reload.rs` has new plans), and SIGTERM still
/// stops it cleanly.
#[tokio::test]
async fn sighup_reloads_instead_of_ending_the_runtime_and_sigterm_still_stops_cleanly() {
    use std::process::Stdio;
    let w = World::new("cli_hup").await;
    let mut child = bin()
        .arg(&w.plan_path)
        .env("STIR_HISTORY_SCHEMA", &w.config.history_schema)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (log, reader) = collect_stderr(&mut child);
    let signal = |name: &str, pid: u32| {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name}");
    };
    let wait_for = |what: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !log.lock().unwrap().contains(what) {
            assert!(
                std::time::Instant::now() < deadline,
                "no `{what}` in:\n{}",
                log.lock().unwrap()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    // The signal handlers are in place once the runtime names its instance.
    wait_for("runtime instance");
    signal("HUP", child.id());
    wait_for("plan reloaded: unchanged");
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP ended the runtime"
    );
    signal("TERM", child.id());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("SIGTERM did not stop the runtime:\n{}", log.lock().unwrap());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    reader.join().unwrap();
    assert_eq!(status.code(), Some(0), "{}", log.lock().unwrap());
    assert!(log.lock().unwrap().contains("stir-runtime stopped"));
    w.drop_all().await;
}
