//! The real test servers: a per-test ClickHouse database pair, PostgreSQL history schema, and
//! the fixture manifest compiled into a plan. Nothing is skipped: without the servers' env the
//! tests fail and say how to start them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use stir::plan::Plan;
use stir_runtime::warehouse::Warehouse;
use stir_runtime::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// The servers' environment, or a failing test that says how to get it.
pub fn require_servers() -> Config {
    let missing: Vec<&str> = ["STIR_CLICKHOUSE_URL", "STIR_POSTGRES_URL"]
        .into_iter()
        .filter(|k| std::env::var(k).map(|v| v.is_empty()).unwrap_or(true))
        .collect();
    assert!(
        missing.is_empty(),
        "{} not set: these tests need the real servers. Run `scripts/servers.sh up` and \
         `eval \"$(scripts/servers.sh env)\"`, then run the tests again",
        missing.join(" and ")
    );
    let mut c = Config::from_env().expect("servers' environment");
    c.slack_webhook = None;
    c.retry_backoff = Duration::from_millis(100);
    c.leader_poll = Duration::from_millis(200);
    c
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// One test's world: its databases, history schema and plan.
pub struct World {
    pub config: Config,
    pub wh: String,
    pub raw: String,
    pub dir: PathBuf,
    pub plan: Plan,
    pub plan_path: PathBuf,
    pub warehouse: Warehouse,
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/e2e")
}

fn copy_dir(from: &Path, to: &Path, edit: &dyn Fn(String) -> String) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target, edit);
        } else {
            let text = std::fs::read_to_string(e.path()).unwrap();
            std::fs::write(target, edit(text)).unwrap();
        }
    }
}

impl World {
    /// Copy the fixture with unique database names, compile it, create the databases and the
    /// raw table.
    pub async fn new(tag: &str) -> World {
        let mut config = require_servers();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let suffix = format!("{tag}_{}_{n}_{}", std::process::id(), nanos % 100_000);
        let wh = format!("rt_wh_{suffix}");
        let raw = format!("rt_raw_{suffix}");
        config.history_schema = format!("rt_hist_{suffix}");
        let dir = std::env::temp_dir().join(format!("stir-runtime-{suffix}"));
        let _ = std::fs::remove_dir_all(&dir);
        let (w, r) = (wh.clone(), raw.clone());
        copy_dir(&fixture(), &dir, &move |t: String| {
            t.replace("e2e_raw", &r).replace("e2e_wh", &w)
        });
        let plan = compile(&dir.join("stir.kdl"));
        let plan_path = dir.join("plan.json");
        std::fs::write(&plan_path, plan.to_json()).unwrap();
        let plan = stir_runtime::load_plan(&plan_path, &config).expect("the compiled plan loads");
        let warehouse = Warehouse::new(&config);
        let world = World {
            config,
            wh,
            raw,
            dir,
            plan,
            plan_path,
            warehouse,
        };
        world
            .sql(&format!("CREATE DATABASE {} ENGINE = Atomic", world.wh))
            .await;
        world
            .sql(&format!("CREATE DATABASE {} ENGINE = Atomic", world.raw))
            .await;
        world
            .sql(&format!(
                "CREATE TABLE {}.events (id UInt64, ts DateTime, value Int64) ENGINE = MergeTree ORDER BY id",
                world.raw
            ))
            .await;
        world
    }

    pub async fn sql(&self, sql: &str) {
        self.warehouse
            .execute(sql, &next_id("test"))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub async fn number(&self, sql: &str) -> u64 {
        self.warehouse
            .number(sql, &next_id("test"))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Insert events with ids `from..to`, spread over three days, value = id.
    /// Add model `slow_core` to the `core` schedule (about 3 s in ClickHouse: six rows, half a
    /// second each) and compile the plan again.
    pub fn add_slow_core(&mut self) {
        let path = self.dir.join("stir.kdl");
        let text = std::fs::read_to_string(&path).unwrap().replace(
            "    model fragile_events tags=fragile order-by=id\n",
            "    model fragile_events tags=fragile order-by=id\n    model slow_core tags=core\n",
        );
        std::fs::write(&path, text).unwrap();
        std::fs::write(
            self.dir.join("models/slow_core.sql"),
            "select number as x, sleepEachRow(0.5) as s from numbers(6) settings max_block_size = 1",
        )
        .unwrap();
        self.plan = compile(&path);
    }

    pub async fn seed(&self, from: u64, to: u64) {
        self.sql(&format!(
            "INSERT INTO {}.events SELECT number, toDateTime('2026-01-01 00:00:00') + (number % 3) * 86400, toInt64(number) FROM numbers({from}, {})",
            self.raw,
            to - from
        ))
        .await;
    }

    pub async fn table_names(&self) -> Vec<String> {
        let text = self
            .warehouse
            .text(
                &format!(
                    "SELECT name FROM system.tables WHERE database = '{}' ORDER BY name",
                    self.wh
                ),
                &next_id("test"),
            )
            .await
            .unwrap();
        text.lines().map(str::to_string).collect()
    }

    pub async fn pg(&self) -> tokio_postgres::Client {
        stir_runtime::history::connect(self.config.postgres_url.as_deref().unwrap())
            .await
            .unwrap()
    }

    /// End the PostgreSQL session that holds the leader lock of this world's history (its
    /// backend terminated, as a failover or a network cut does); how many sessions held it.
    pub async fn kill_leader_session(&self) -> i64 {
        let key = stir_runtime::leader::lock_key(&self.config.history_schema);
        self.pg()
            .await
            .query_one(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted \
                 AND ((classid::bigint << 32) | objid::bigint) = $1) t",
                &[&key],
            )
            .await
            .unwrap()
            .get(0)
    }

    pub async fn drop_all(&self) {
        for db in [&self.wh, &self.raw] {
            let _ = self
                .warehouse
                .execute(&format!("DROP DATABASE IF EXISTS {db}"), &next_id("test"))
                .await;
        }
        let pg = self.pg().await;
        let _ = pg
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                self.config.history_schema
            ))
            .await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn next_id(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Compile a manifest with the compiler's library (the same code as `stir plan`).
pub fn compile(manifest: &Path) -> Plan {
    let compiled = stir::compile_path(manifest).expect("fixture manifest loads");
    assert!(
        !compiled.has_errors(),
        "fixture manifest has errors: {:?}",
        compiled.findings
    );
    stir::planner::build(&compiled).expect("plan builds")
}

/// A local Slack-compatible webhook: every POST body arrives on the channel.
pub async fn webhook() -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/services/T000/B000/secret",
        listener.local_addr().unwrap()
    );
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            let body =
                                String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                            let _ = tx.send(body);
                            let _ = sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, rx)
}

/// A leader-electing runtime on `plan` (with `alerts`, if given), stopped by sending on the
/// answered channel.
pub fn start_runtime(
    plan: Plan,
    config: Config,
    metrics: stir_runtime::metrics::Metrics,
    alerts: Option<stir_runtime::alert::Alerter>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), stir_runtime::RuntimeError>>,
) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    log_to_test_output();
    // Two runtimes in one test log apart: `rt{n=0}` is the first started in this process.
    static RT: AtomicU32 = AtomicU32::new(0);
    let span = tracing::info_span!("rt", n = RT.fetch_add(1, Ordering::Relaxed));
    let task = tokio::spawn(tracing::Instrument::instrument(
        async move {
            let opts = stir_runtime::Options {
                metrics: Some(metrics),
                alerts,
                ..stir_runtime::Options::default()
            };
            stir_runtime::run_with(
                plan,
                config,
                async move {
                    let _ = rx.await;
                },
                opts,
            )
            .await
        },
        span,
    ));
    (tx, task)
}

/// The runtimes' logs go to the output of the test that started them, which the harness
/// prints only when that test fails (the runtime's worker threads inherit the test thread's
/// capture): a failure that happens once in CI comes with what each runtime did. `RUST_LOG`
/// sets the level (default `info`).
fn log_to_test_output() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .with_ansi(false)
        .try_init();
}

/// Collect a child's stderr, line by line, as it comes (the child must pipe it).
pub fn collect_stderr(
    child: &mut std::process::Child,
) -> (
    std::sync::Arc<std::sync::Mutex<String>>,
    std::thread::JoinHandle<()>,
) {
    use std::io::BufRead;
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let stderr = child.stderr.take().expect("stderr piped");
    let reader = {
        let log = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        })
    };
    (log, reader)
}

/// Where the PostgreSQL of `url` listens (`host:port`; TCP only).
pub fn pg_target(url: &str) -> String {
    let c: tokio_postgres::Config = url.parse().unwrap();
    match &c.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => format!("{h}:{}", c.get_ports()[0]),
        tokio_postgres::config::Host::Unix(_) => panic!("the test needs PostgreSQL over TCP"),
    }
}

/// The database and credentials of `url`, reached through `127.0.0.1:port` (a proxy).
pub fn pg_url_at(url: &str, port: u16) -> String {
    let c: tokio_postgres::Config = url.parse().unwrap();
    let user = c.get_user().unwrap_or("postgres");
    let password = c
        .get_password()
        .map(|p| format!(" password={}", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    format!(
        "host=127.0.0.1 port={port} dbname={} user={user}{password}",
        c.get_dbname().unwrap_or(user)
    )
}

/// A TCP proxy to the PostgreSQL of `url`, on loopback: the URL through it, and a switch that
/// cuts every connection through it and refuses new ones (PostgreSQL gone, as a client sees it).
pub async fn pg_proxy(url: &str) -> (String, tokio::sync::watch::Sender<bool>) {
    let target = pg_target(url);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (cut, cut_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            let mut cut_rx = cut_rx.clone();
            if *cut_rx.borrow() {
                continue;
            }
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut out) = tokio::net::TcpStream::connect(&target).await {
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut out) => {}
                        _ = cut_rx.wait_for(|c| *c) => {}
                    }
                }
            });
        }
    });
    (pg_url_at(url, port), cut)
}
