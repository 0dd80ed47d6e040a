//! TLS on the real test servers (scripts/servers.sh: a private CA in STIR_TEST_CA, ClickHouse's
//! https port in STIR_TEST_CLICKHOUSE_HTTPS_URL, PostgreSQL with ssl=on): a run with a sync
//! over `https://` ClickHouse and `sslmode=verify-full` PostgreSQL, proof that the sessions are
//! TLS, and the refusals: wrong host name, untrusted CA, a server without TLS.

#[path = "fixtures/sync/harness.rs"]
mod harness;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use harness::Case;
use stir_runtime::warehouse::Warehouse;
use stir_runtime::Config;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run `scripts/servers.sh up` and `eval \"$(scripts/servers.sh env)\"` \
             (a servers.sh from before TLS needs `scripts/servers.sh restart`)"
        )
    })
}

fn ca() -> String {
    var("STIR_TEST_CA")
}

fn https_url() -> String {
    var("STIR_TEST_CLICKHOUSE_HTTPS_URL")
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

/// `url` (the servers' PostgreSQL URL) with query parameters added.
fn pg_url_with(url: &str, params: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

fn verify_full(url: &str) -> String {
    pg_url_with(url, &format!("sslmode=verify-full&sslrootcert={}", ca()))
}

/// The password of a `scheme://user:password@host` URL.
fn password_of(url: &str) -> String {
    url.split("://")
        .nth(1)
        .and_then(|r| r.split('@').next())
        .and_then(|u| u.split(':').nth(1))
        .unwrap_or_default()
        .to_string()
}

fn secrets() -> Vec<String> {
    let mut s = vec![password_of(&var("STIR_POSTGRES_URL"))];
    if let Ok(p) = std::env::var("STIR_CLICKHOUSE_PASSWORD") {
        s.push(p);
    }
    s.retain(|p| !p.is_empty());
    s
}

fn assert_no_secret(text: &str) {
    for s in secrets() {
        assert!(!text.contains(&s), "a password is in: {text}");
    }
}

/// A CA of its own, which signed nothing the servers hold.
fn other_ca() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stir-tls-other-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let crt = dir.join("ca.crt");
    if !crt.exists() {
        let st = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-days", "2", "-subj", "/CN=not the stir test CA"])
            .arg("-keyout")
            .arg(dir.join("ca.key"))
            .arg("-out")
            .arg(&crt)
            .output()
            .expect("openssl (scripts/servers.sh installs it)");
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
    }
    crt
}

/// A TCP forwarder on 127.0.0.2 (a name the servers' certificate does not hold) to `port`.
async fn forwarder(port: u16) -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let local = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut a, _)) = l.accept().await {
            tokio::spawn(async move {
                if let Ok(mut b) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                    let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
                }
            });
        }
    });
    local
}

/// The runtime's config from the servers' environment with `vars` replaced.
fn config_with(vars: &[(&str, &str)]) -> Result<Config, stir_runtime::config::ConfigError> {
    let over: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_env_with(|k| over.get(k).cloned().or_else(|| std::env::var(k).ok()))
}

async fn ch_error(config: &Config) -> String {
    let e = Warehouse::new(config)
        .number("SELECT 1", "tls-refusal")
        .await
        .expect_err("the query must be refused");
    let m = e.to_string();
    eprintln!("refused as expected: {m}");
    m
}

async fn pg_error(url: &str) -> String {
    let m = match stir_runtime::history::connect(url).await {
        Ok(_) => panic!(
            "the connection must be refused: {}",
            stir_runtime::config::redact_url(url)
        ),
        Err(e) => e.to_string(),
    };
    eprintln!("refused as expected: {m}");
    m
}

/// `ssl` and `version` of the session's own row of pg_stat_ssl.
async fn ssl_of(client: &tokio_postgres::Client) -> (bool, Option<String>) {
    let r = client
        .query_one(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1))
}

fn run_bin(c: &Case, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_stir-runtime"))
        .args(args)
        .envs(&c.env)
        .env("STIR_HISTORY_SCHEMA", format!("h_{}", c.id))
        .env("STIR_RETRY_BACKOFF", "10ms")
        .output()
        .unwrap()
}

#[tokio::test]
async fn a_run_with_a_sync_works_over_https_clickhouse_and_verify_full_postgres() {
    let https = https_url();
    let c = Case::with_fixture_env("tls_run", "tls", |env| {
        env.insert("STIR_CLICKHOUSE_URL".into(), https.clone());
        env.insert("STIR_CLICKHOUSE_CA".into(), ca());
        let pg = verify_full(&env["STIR_POSTGRES_URL"]);
        env.insert("STIR_POSTGRES_URL".into(), pg);
    })
    .await;
    // The case's own statements go over https too: the plain port is not in its config.
    assert!(c.config.clickhouse_url.starts_with("https://"));
    c.ch(&format!(
        "CREATE TABLE {}.secure_src (id UInt64, s String) ENGINE = MergeTree ORDER BY id",
        c.src
    ))
    .await;
    c.ch(&format!(
        "INSERT INTO {}.secure_src SELECT number, concat('row ', toString(number)) FROM numbers(1000)",
        c.src
    ))
    .await;
    c.pg.batch_execute(&format!(
        "CREATE TABLE {}.tls_proof (ssl boolean, version text)",
        c.schema
    ))
    .await
    .unwrap();
    let plan = c.dir.join("plan.json");
    std::fs::write(&plan, c.plan.to_json()).unwrap();

    let o = run_bin(&c, &[plan.to_str().unwrap(), "--once", "nightly"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_no_secret(&err);
    assert_eq!(c.pg_count("secure").await, 1000);
    // The sync's own session, seen by the server: TLS.
    let proof =
        c.pg.query(
            &format!("SELECT ssl, version FROM {}.tls_proof", c.schema),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(proof.len(), 1, "the enrich ran once");
    let ssl: bool = proof[0].get(0);
    let version: Option<String> = proof[0].get(1);
    assert!(ssl, "the sync's PostgreSQL session is not TLS");
    assert!(version.is_some_and(|v| v.starts_with("TLS")));

    // The history written by the run, read back over the same TLS settings.
    let o = run_bin(&c, &["history", "--schedule", "nightly"]);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        out.lines()
            .any(|l| l.contains("nightly") && l.contains(" ok ")),
        "{out}"
    );
    c.finish().await;
}

#[tokio::test]
async fn history_and_leader_sessions_are_tls_as_the_sslmode_says() {
    let url = var("STIR_POSTGRES_URL");
    let client = stir_runtime::history::connect(&verify_full(&url))
        .await
        .unwrap();
    let (ssl, version) = ssl_of(&client).await;
    assert!(ssl, "verify-full gave a plain session");
    assert!(version.is_some_and(|v| v.starts_with("TLS")));
    // SCRAM bound to the TLS channel (tls-server-end-point): a relay cannot pass the login on.
    let bound = pg_url_with(&verify_full(&url), "channel_binding=require");
    stir_runtime::history::connect(&bound).await.unwrap();

    // libpq's default, prefer: TLS when the server offers it (it does).
    let prefer = stir_runtime::history::connect(&url).await.unwrap();
    assert!(
        ssl_of(&prefer).await.0,
        "prefer did not take the offered TLS"
    );
    // The check can tell: disable is plain.
    let plain = stir_runtime::history::connect(&pg_url_with(&url, "sslmode=disable"))
        .await
        .unwrap();
    assert!(!ssl_of(&plain).await.0, "sslmode=disable gave TLS");

    // The leader's lock session, found by its advisory lock.
    let key = 7_000_000 + i64::from(std::process::id() % 1_000_000);
    let leader =
        stir_runtime::leader::try_acquire(&verify_full(&url), key, key + 1, Duration::from_secs(5))
            .await
            .unwrap()
            .expect("the test's own lock key is free");
    let row = client
        .query_one(
            "SELECT s.ssl FROM pg_locks l JOIN pg_stat_ssl s USING (pid) \
             WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 \
               AND l.objid = $1::int8::oid AND l.objsubid = 1",
            &[&key],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0), "the leader's session is not TLS");
    leader.release().await;
}

#[tokio::test]
async fn postgres_verify_full_refuses_a_wrong_host_name_or_an_untrusted_ca() {
    let url = var("STIR_POSTGRES_URL");
    let port = port_of(url.split('/').nth(2).unwrap());
    let pw = password_of(&url);
    let kv = |host: &str, extra: &str| {
        format!("host={host} hostaddr=127.0.0.1 port={port} user=stir password={pw} dbname=stir {extra}")
    };
    let ca = ca();

    // The certificate names localhost and 127.0.0.1, not this host.
    let wrong = kv(
        "wrong.invalid",
        &format!("sslmode=verify-full sslrootcert={ca}"),
    );
    let m = pg_error(&wrong).await;
    assert!(
        m.contains("not valid for name") && m.contains("verify-ca"),
        "{m}"
    );
    assert_no_secret(&m);
    // verify-ca checks the CA only: the same server is accepted, over TLS.
    let ca_only = kv(
        "wrong.invalid",
        &format!("sslmode=verify-ca sslrootcert={ca}"),
    );
    let client = stir_runtime::history::connect(&ca_only).await.unwrap();
    assert!(ssl_of(&client).await.0);
    // The right name is accepted.
    let right = kv(
        "localhost",
        &format!("sslmode=verify-full sslrootcert={ca}"),
    );
    stir_runtime::history::connect(&right).await.unwrap();

    // A CA that did not sign the server's certificate.
    let other = other_ca();
    let m = pg_error(&verify_full(&url).replace(&ca, other.to_str().unwrap())).await;
    assert!(
        m.contains("UnknownIssuer") && m.contains("sslrootcert"),
        "{m}"
    );
    assert_no_secret(&m);
    // No sslrootcert: the system's CAs, which do not hold the test CA.
    let m = pg_error(&pg_url_with(&url, "sslmode=verify-full")).await;
    assert!(
        m.contains("UnknownIssuer") || m.contains("no system CA certificates"),
        "{m}"
    );
    assert_no_secret(&m);
    // require with a CA checks it too (as libpq does).
    let m = pg_error(&pg_url_with(
        &url,
        &format!("sslmode=require&sslrootcert={}", other.display()),
    ))
    .await;
    assert!(m.contains("UnknownIssuer"), "{m}");
}

#[tokio::test]
async fn postgres_require_fails_closed_on_a_server_without_tls() {
    // The server's Unix socket: PostgreSQL answers TLS requests there with "no", as a server
    // with ssl = off does on TCP.
    let sock = var("STIR_TEST_PG_SOCKET");
    let url = var("STIR_POSTGRES_URL");
    let port = port_of(url.split('/').nth(2).unwrap());
    let over_socket =
        |mode: &str| format!("host={sock} port={port} user=stir dbname=stir sslmode={mode}");
    for mode in ["require", "verify-ca", "verify-full"] {
        let conn = if mode == "require" {
            over_socket(mode)
        } else {
            format!("{} sslrootcert={}", over_socket(mode), ca())
        };
        let m = pg_error(&conn).await;
        assert!(
            m.contains("server does not support TLS") && m.contains("ssl = off"),
            "{mode}: {m}"
        );
    }
    // The same server with prefer: plain text, so it was the mode that refused.
    let client = stir_runtime::history::connect(&over_socket("prefer"))
        .await
        .unwrap();
    assert!(!ssl_of(&client).await.0);
}

#[tokio::test]
async fn clickhouse_https_checks_the_certificate() {
    let https = https_url();
    let ca = ca();
    let good =
        config_with(&[("STIR_CLICKHOUSE_URL", &https), ("STIR_CLICKHOUSE_CA", &ca)]).unwrap();
    assert_eq!(
        Warehouse::new(&good)
            .number("SELECT 41 + 1", "tls-ok")
            .await
            .unwrap(),
        42
    );

    // The https port speaks only TLS: plain HTTP there is refused, so every query the runtime
    // sent to it went over TLS.
    let plain_to_tls =
        config_with(&[("STIR_CLICKHOUSE_URL", &https.replacen("https", "http", 1))]).unwrap();
    ch_error(&plain_to_tls).await;
    // And https to the plain port fails closed: no fallback to plain text.
    let plain_port = var("STIR_CLICKHOUSE_URL").replacen("http://", "https://", 1);
    let m = ch_error(
        &config_with(&[
            ("STIR_CLICKHOUSE_URL", &plain_port),
            ("STIR_CLICKHOUSE_CA", &ca),
        ])
        .unwrap(),
    )
    .await;
    assert_no_secret(&m);

    // A name the certificate does not hold.
    let fwd = forwarder(port_of(&https)).await;
    let wrong = format!("https://127.0.0.2:{fwd}");
    let m = ch_error(
        &config_with(&[("STIR_CLICKHOUSE_URL", &wrong), ("STIR_CLICKHOUSE_CA", &ca)]).unwrap(),
    )
    .await;
    assert!(m.contains("not valid for name"), "{m}");
    assert_no_secret(&m);
    // An untrusted CA, then the system's CAs (no STIR_CLICKHOUSE_CA).
    let other = other_ca();
    let m = ch_error(
        &config_with(&[
            ("STIR_CLICKHOUSE_URL", &https),
            ("STIR_CLICKHOUSE_CA", other.to_str().unwrap()),
        ])
        .unwrap(),
    )
    .await;
    assert!(m.contains("UnknownIssuer"), "{m}");
    assert_no_secret(&m);
    match config_with(&[("STIR_CLICKHOUSE_URL", &https)]) {
        Ok(system) => {
            let m = ch_error(&system).await;
            assert!(m.contains("UnknownIssuer"), "{m}");
        }
        Err(e) => assert!(e.to_string().contains("no system CA certificates"), "{e}"),
    }
}

#[test]
fn a_ca_with_plain_http_or_an_unreadable_ca_is_refused_at_start() {
    let e = config_with(&[
        ("STIR_CLICKHOUSE_URL", "http://127.0.0.1:8123"),
        ("STIR_CLICKHOUSE_CA", &ca()),
    ])
    .unwrap_err()
    .to_string();
    assert!(e.contains("use https://"), "{e}");
    let e = config_with(&[
        ("STIR_CLICKHOUSE_URL", "https://127.0.0.1:8443"),
        ("STIR_CLICKHOUSE_CA", "/nonexistent/ca.pem"),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("STIR_CLICKHOUSE_CA") && e.contains("cannot read"),
        "{e}"
    );
    let url = var("STIR_POSTGRES_URL");
    let e = config_with(&[(
        "STIR_POSTGRES_URL",
        &pg_url_with(&url, "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"),
    )])
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("sslrootcert") && e.contains("cannot read"),
        "{e}"
    );
    assert_no_secret(&e);
    assert!(Path::new(&ca()).exists());
}

#[tokio::test]
async fn a_cancel_request_goes_over_verified_tls() {
    // As a sync dropped at its run's timeout cancels its statement: the same connector.
    let pg = stir_runtime::tls::postgres(&verify_full(&var("STIR_POSTGRES_URL"))).unwrap();
    let (client, connection) = pg.connect().await.unwrap();
    tokio::spawn(connection);
    let token = client.cancel_token();
    let sleeping = tokio::spawn(async move { client.batch_execute("SELECT pg_sleep(60)").await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    token.cancel_query(pg.tls.clone()).await.unwrap();
    let e = tokio::time::timeout(Duration::from_secs(20), sleeping)
        .await
        .expect("the statement ended on the cancel request")
        .unwrap()
        .expect_err("the statement was cancelled");
    assert_eq!(
        e.code(),
        Some(&tokio_postgres::error::SqlState::QUERY_CANCELED),
        "{e}"
    );
}
