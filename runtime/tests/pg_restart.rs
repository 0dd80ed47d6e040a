//! The history's PostgreSQL restarts, or is down, while a run is under way: the run goes on
//! and its end is recorded once the server is back. The shared test server is never
//! restarted, so each test starts a PostgreSQL of its own (the binaries scripts/servers.sh
//! installed, run as the `postgres` user) and restarts or stops it under the run.
//!
//! Needs `scripts/servers.sh up` and `eval "$(scripts/servers.sh env)"`, as root.

#[path = "support/servers.rs"]
mod servers;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use servers::*;
use stir_runtime::executor::RunStatus;

/// A PostgreSQL server of this test's own, on a free port, trusting local connections.
struct OwnPg {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl OwnPg {
    fn start(tag: &str) -> OwnPg {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's binaries (scripts/servers.sh installs them)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("pg_ctl").exists())
            .max()
            .expect("a PostgreSQL version with pg_ctl");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("stir-own-pg-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let pg = OwnPg { bin, dir, port };
        pg.run(
            &["chown", "-R", "postgres:postgres", pg.dir.to_str().unwrap()],
            false,
        );
        let data = pg.data();
        pg.run(
            &[
                "initdb", "-D", &data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
            ],
            true,
        );
        pg.ctl("start");
        pg
    }

    fn data(&self) -> String {
        self.dir.join("data").to_str().unwrap().to_string()
    }

    fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    /// `pg_ctl ACTION`, waiting for it; a fast shutdown ends every session with SQLSTATE
    /// 57P01, as a restart by an operator or a failover does.
    fn ctl(&self, action: &str) {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log").to_str().unwrap().to_string();
        let data = self.data();
        let mut args = vec!["pg_ctl", "-D", &data, "-w", "-t", "60", "-m", "fast"];
        if action != "stop" {
            args.extend(["-o", &opts, "-l", &log]);
        }
        args.push(action);
        self.run(&args, true);
    }

    fn run(&self, args: &[&str], as_postgres: bool) {
        let mut cmd = if as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"])
                .arg(self.bin.join(args[0]))
                .args(&args[1..]);
            c
        } else {
            let mut c = Command::new(args[0]);
            c.args(&args[1..]);
            c
        };
        let out = cmd.output().expect("runs (these tests run as root)");
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for OwnPg {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", &self.data(), "-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A world whose `core` schedule takes about 3 s (a model sleeping in ClickHouse), with its
/// history on `pg`.
async fn slow_world(tag: &str, pg: &OwnPg) -> World {
    let mut w = World::new(tag).await;
    w.add_slow_core();
    w.config.state_url = Some(pg.url());
    w.seed(0, 10).await;
    w
}

/// The history's rows of `core`: (status, whether its end is recorded); none before the
/// runtime made the history's tables.
async fn core_runs(pg: &OwnPg, schema: &str) -> Vec<(String, bool)> {
    let c = stir_runtime::history::connect(&pg.url()).await.unwrap();
    let rows = c
        .query(
            &format!(
                "SELECT status, ended_at IS NOT NULL FROM {schema}.runs WHERE schedule = 'core' ORDER BY started_at"
            ),
            &[],
        )
        .await;
    match rows {
        Ok(rows) => rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => Vec::new(),
        Err(e) => panic!("{e}"),
    }
}

async fn wait_running(pg: &OwnPg, schema: &str) {
    for _ in 0..400 {
        if core_runs(pg, schema)
            .await
            .iter()
            .any(|(s, _)| s == "running")
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the run of `core` never showed as running");
}

/// PostgreSQL restarts (a fast shutdown: every session ends with 57P01) in the middle of a
/// run: the run is not disturbed, and its end and its steps are recorded on the new server
/// process through new connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_outlives_a_restart_of_the_history_and_its_end_is_recorded() {
    let pg = OwnPg::start("restart");
    let w = slow_world("pgrestart", &pg).await;
    let schema = w.config.history_schema.clone();
    let run = tokio::spawn(stir_runtime::run_once(
        w.plan.clone(),
        w.config.clone(),
        "core",
    ));
    wait_running(&pg, &schema).await;
    pg.ctl("restart");
    let status = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("the run ends")
        .unwrap()
        .unwrap();
    assert_eq!(status, RunStatus::Ok);
    assert_eq!(core_runs(&pg, &schema).await, [("ok".to_string(), true)]);
    let c = stir_runtime::history::connect(&pg.url()).await.unwrap();
    let steps: i64 = c
        .query_one(
            &format!("SELECT count(*) FROM {schema}.steps WHERE status = 'ok'"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(steps >= 1, "the steps' ends are recorded too");
    w.drop_all().await;
}

/// PostgreSQL is down when the run ends and comes back 8 s later: the end is written by the
/// retry (with backoff, for up to a minute), not lost, and the run's result does not change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_ending_while_the_history_is_down_records_its_end_when_it_is_back() {
    let pg = OwnPg::start("down");
    let w = slow_world("pgdown", &pg).await;
    let schema = w.config.history_schema.clone();
    let run = tokio::spawn(stir_runtime::run_once(
        w.plan.clone(),
        w.config.clone(),
        "core",
    ));
    wait_running(&pg, &schema).await;
    pg.ctl("stop");
    // The run (about 3 s) ends while the server is down.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(!run.is_finished(), "the run's end waits for the history");
    pg.ctl("start");
    let status = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("the run ends once the history is back")
        .unwrap()
        .unwrap();
    assert_eq!(status, RunStatus::Ok);
    assert_eq!(core_runs(&pg, &schema).await, [("ok".to_string(), true)]);
    w.drop_all().await;
}
