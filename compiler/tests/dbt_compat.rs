//! Same SQL as dbt: each project under tests/dbt/ is compiled by real dbt (dbt-core and
//! dbt-clickhouse from PyPI, in the venv scripts/dbt-venv.sh makes) and imported and planned
//! by stir; every model's SQL must be what dbt compiled, whitespace and identifier backticks
//! aside (ClickHouse reads `db`.`t` and db.t alike). Incremental models are compared both ways:
//! dbt compiles `is_incremental()` true once their tables exist in ClickHouse, so the test makes
//! them (empty) in a database of its own on the test server, and drops it after.
//!
//! Nothing is skipped: without the venv or the test servers' environment the test fails and
//! says how to get them (scripts/test.sh makes both).

#[path = "support/files.rs"]
mod files;
use files::copy_dir;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn dbt_bin() -> PathBuf {
    let venv = std::env::var_os("STIR_DBT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/stir-dbt-venv"));
    let dbt = venv.join("bin/dbt");
    assert!(
        dbt.is_file(),
        "no dbt at {}: run scripts/dbt-venv.sh (scripts/test.sh does) and set STIR_DBT_VENV to the path it prints",
        dbt.display()
    );
    dbt
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the test servers and load their environment: scripts/servers.sh up; eval \"$(scripts/servers.sh env)\"")
    })
}

/// The test ClickHouse: (http base URL, host, port, user, password).
struct ClickHouse {
    url: String,
    host: String,
    port: String,
    user: String,
    password: String,
}

impl ClickHouse {
    fn from_env() -> ClickHouse {
        let url = env("STIR_CLICKHOUSE_URL");
        let hostport = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let (host, port) = hostport
            .rsplit_once(':')
            .map(|(h, p)| (h.to_string(), p.to_string()))
            .unwrap_or((hostport.clone(), "8123".into()));
        ClickHouse {
            url,
            host,
            port,
            user: env("STIR_CLICKHOUSE_USER"),
            password: env("STIR_CLICKHOUSE_PASSWORD"),
        }
    }

    /// Run one statement; the credentials go to curl on stdin, never on a command line.
    fn exec(&self, sql: &str) {
        let mut child = Command::new("curl")
            .args([
                "-sS",
                "--fail-with-body",
                "-K",
                "-",
                "--data-binary",
                sql,
                &self.url,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("curl (used to reach the test ClickHouse)");
        use std::io::Write;
        let cfg = format!(
            "header = \"X-ClickHouse-User: {}\"\nheader = \"X-ClickHouse-Key: {}\"\n",
            self.user, self.password
        );
        child
            .stdin
            .take()
            .unwrap()
            .write_all(cfg.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ClickHouse refused `{sql}`: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Drops the test's database however the test ends.
struct Database<'a> {
    ch: &'a ClickHouse,
    name: String,
}

impl Drop for Database<'_> {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.ch
                .exec(&format!("DROP DATABASE IF EXISTS {}", self.name))
        }));
    }
}

/// `dbt compile` of `project` into `target`; returns compiled SQL by model file (relative to
/// the project, e.g. `models/staging/a.sql`).
fn dbt_compile(
    ch: &ClickHouse,
    project: &Path,
    schema: &str,
    target: &Path,
) -> BTreeMap<String, String> {
    // The profile is copied beside the project: dbt writes files into its profiles dir.
    let profiles = project.parent().unwrap().join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::copy(
        repo().join("tests/dbt/profiles.yml"),
        profiles.join("profiles.yml"),
    )
    .unwrap();
    let out = Command::new(dbt_bin())
        .args(["compile", "--profiles-dir"])
        .arg(&profiles)
        .arg("--project-dir")
        .arg(project)
        .arg("--target-path")
        .arg(target)
        .current_dir(project)
        .env("STIR_DBT_CH_HOST", &ch.host)
        .env("STIR_DBT_CH_PORT", &ch.port)
        .env("STIR_DBT_SCHEMA", schema)
        .env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        .env("DO_NOT_TRACK", "1")
        .output()
        .expect("run dbt");
    assert!(
        out.status.success(),
        "dbt compile failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let name = project.file_name().unwrap().to_str().unwrap();
    let root = target.join("compiled").join(name);
    let mut files = BTreeMap::new();
    collect(&root, &root, &mut files);
    assert!(
        !files.is_empty(),
        "dbt compiled nothing into {}",
        root.display()
    );
    files
}

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect(root, &p, out);
        } else {
            let rel = p.strip_prefix(root).unwrap().to_str().unwrap().to_string();
            out.insert(rel, std::fs::read_to_string(&p).unwrap());
        }
    }
}

/// SQL with whitespace runs made one space and backticks around plain identifiers removed.
fn normal(sql: &str) -> String {
    let mut unquoted = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(i) = rest.find('`') {
        unquoted.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.find('`') {
            Some(j)
                if !after[..j].is_empty()
                    && after[..j]
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                unquoted.push_str(&after[..j]);
                rest = &after[j + 1..];
            }
            _ => {
                unquoted.push('`');
                rest = after;
            }
        }
    }
    unquoted.push_str(rest);
    unquoted.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// stir's plan of the imported project: (model file -> (name, sql, sql_incremental, disabled)).
fn stir_import_and_plan(
    project: &Path,
    schema: &str,
    scratch: &Path,
) -> BTreeMap<String, (String, String, Option<String>)> {
    let out_dir = scratch.join("stir");
    let stir = env!("CARGO_BIN_EXE_stir");
    let import = Command::new(stir)
        .args(["import", "--dbt"])
        .arg(project)
        .arg("-o")
        .arg(&out_dir)
        .args(["--database", schema])
        .output()
        .unwrap();
    assert!(
        import.status.success(),
        "stir import failed: {}",
        String::from_utf8_lossy(&import.stderr)
    );
    let check = Command::new(stir)
        .arg("check")
        .arg(out_dir.join("stir.kdl"))
        .args(["--color", "never"])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "the imported manifest does not pass stir check:\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let plan = Command::new(stir)
        .arg("plan")
        .arg(out_dir.join("stir.kdl"))
        .args(["--color", "never"])
        .output()
        .unwrap();
    assert!(
        plan.status.success(),
        "stir plan failed: {}",
        String::from_utf8_lossy(&plan.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    plan["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["file"].as_str().unwrap().to_string(),
                (
                    m["name"].as_str().unwrap().to_string(),
                    m["sql"].as_str().unwrap().to_string(),
                    m["sql_incremental"].as_str().map(str::to_string),
                ),
            )
        })
        .collect()
}

fn same_sql_as_dbt(project: &str) {
    let ch = ClickHouse::from_env();
    let scratch =
        std::env::temp_dir().join(format!("stir-dbt-compat-{}-{project}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let proj = scratch.join(project);
    copy_dir(&repo().join("tests/dbt").join(project), &proj);
    let schema = format!("stir_dbt_{project}_{}", std::process::id());
    let db = Database {
        ch: &ch,
        name: schema.clone(),
    };
    db.ch.exec(&format!("DROP DATABASE IF EXISTS {schema}"));

    let planned = stir_import_and_plan(&proj, &schema, &scratch);
    let compiled = dbt_compile(&ch, &proj, &schema, &scratch.join("target-first"));
    // dbt compiles exactly the enabled models; stir plans exactly those (disabled ones carry
    // the `dbt_disabled` tag and are never built).
    assert_eq!(
        compiled.keys().collect::<Vec<_>>(),
        planned.keys().collect::<Vec<_>>(),
        "dbt compiled other models than stir planned"
    );
    let mut incremental = Vec::new();
    for (file, (name, sql, sql_inc)) in &planned {
        assert_eq!(
            normal(sql),
            normal(&compiled[file]),
            "model `{name}` ({file}): stir's SQL (left) differs from dbt's (right)"
        );
        if let Some(inc) = sql_inc {
            incremental.push((file.clone(), name.clone(), inc.clone()));
        }
    }
    // The other branch of is_incremental(): dbt takes it once the tables exist.
    if !incremental.is_empty() {
        ch.exec(&format!("CREATE DATABASE IF NOT EXISTS {schema}"));
        for (_, name, _) in &incremental {
            ch.exec(&format!(
                "CREATE TABLE {schema}.{name} (x UInt8) ENGINE = Memory"
            ));
        }
        let again = dbt_compile(&ch, &proj, &schema, &scratch.join("target-incremental"));
        for (file, name, inc) in &incremental {
            assert_eq!(
                normal(inc),
                normal(&again[file]),
                "incremental model `{name}` ({file}), is_incremental() true: stir's SQL (left) differs from dbt's (right)"
            );
        }
    }
    drop(db);
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn shop_renders_the_sql_dbt_compiles() {
    same_sql_as_dbt("shop");
}

#[test]
fn events_renders_the_sql_dbt_compiles() {
    same_sql_as_dbt("events");
}

#[test]
fn jinja_renders_the_sql_dbt_compiles() {
    same_sql_as_dbt("jinja");
}

#[test]
fn normal_form_drops_only_whitespace_and_identifier_backticks() {
    assert_eq!(
        normal("select\n  `a`.`b_1`  from `x`"),
        "select a.b_1 from x"
    );
    assert_eq!(normal("select '`a b`'"), "select '`a b`'");
    assert_ne!(normal("select a"), normal("select b"));
}
