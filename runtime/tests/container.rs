//! The runtime's container image, for real: `deploy/Containerfile` built with podman around
//! this build's binary (scripts/container.sh installs podman and makes the Debian base image),
//! then what an operator checks: it runs as a non-root user, and a schedule run inside it
//! (`--once`) reaches the real test servers the way production does, ClickHouse over https
//! trusting a mounted CA and PostgreSQL with `sslmode=verify-full`, from the environment and
//! the plan mounted at /etc/stir, and lands in the history.
//!
//! Needs `scripts/servers.sh up`, `scripts/container.sh up` and both `env`s evaluated.

#[path = "support/servers.rs"]
mod servers;

use std::path::Path;
use std::process::{Command, Output};

use servers::*;

fn workspace() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn var(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| {
        panic!("{k} is not set: run `scripts/servers.sh up`, `scripts/container.sh up` and eval both `env`s")
    })
}

fn podman(args: &[&str], env: &[(&str, String)]) -> Output {
    var("CONTAINERS_CONF");
    let o = Command::new("podman")
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .output()
        .unwrap_or_else(|e| panic!("podman: {e}: run `scripts/container.sh up`"));
    eprintln!(
        "podman {}: {:?}\n{}{}",
        args.first().unwrap_or(&""),
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_runs_a_schedule_as_a_non_root_user_over_tls() {
    let w = World::new("ctr").await;
    w.seed(0, 20).await;
    let tag = format!("localhost/stir-runtime-test:{}", std::process::id());

    // The image, from the Containerfile as shipped, around this build's binary.
    let ctx = w.dir.join("image");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_stir-runtime"), ctx.join("stir-runtime")).unwrap();
    let file = workspace().join("deploy/Containerfile");
    let built = podman(
        &[
            "build",
            "--pull=never",
            "--network=host",
            "-f",
            file.to_str().unwrap(),
            "-t",
            &tag,
            ctx.to_str().unwrap(),
        ],
        &[],
    );
    assert!(built.status.success(), "the image builds");
    let user = podman(
        &["image", "inspect", "--format", "{{.Config.User}}", &tag],
        &[],
    );
    assert_eq!(String::from_utf8_lossy(&user.stdout).trim(), "10001");

    // The plan and the servers' CA, mounted read-only as deploy/README.md says; secrets only
    // in the environment (passed by name, so they are not on podman's command line).
    std::fs::copy(var("STIR_TEST_CA"), w.dir.join("ca.crt")).unwrap();
    let pg = var("STIR_POSTGRES_URL");
    let sep = if pg.contains('?') { '&' } else { '?' };
    let env: Vec<(&str, String)> = vec![
        ("STIR_CLICKHOUSE_URL", var("STIR_TEST_CLICKHOUSE_HTTPS_URL")),
        ("STIR_CLICKHOUSE_USER", var("STIR_CLICKHOUSE_USER")),
        ("STIR_CLICKHOUSE_PASSWORD", var("STIR_CLICKHOUSE_PASSWORD")),
        ("STIR_CLICKHOUSE_CA", "/etc/stir/ca.crt".into()),
        (
            "STIR_POSTGRES_URL",
            format!("{pg}{sep}sslmode=verify-full&sslrootcert=/etc/stir/ca.crt"),
        ),
        ("STIR_HISTORY_SCHEMA", w.config.history_schema.clone()),
    ];
    let mount = format!("{}:/etc/stir:ro", w.dir.display());
    let mut args = vec!["run", "--rm", "--network=host", "-v", mount.as_str()];
    for (k, _) in &env {
        args.extend(["--env", k]);
    }
    args.extend([tag.as_str(), "/etc/stir/plan.json", "--once", "core"]);
    let ran = podman(&args, &env);
    assert!(ran.status.success(), "the schedule ran in the container");

    let s = &w.config.history_schema;
    let runs: Vec<(String, String)> = w
        .pg()
        .await
        .query(&format!("SELECT schedule, status FROM {s}.runs"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(runs, [("core".to_string(), "ok".to_string())]);
    let tables = w.table_names().await;
    for t in ["stg_events", "events_daily", "events_totals"] {
        assert!(tables.contains(&t.to_string()), "{t} built: {tables:?}");
    }
    // The secrets were not baked in: the image's environment names none of them.
    let baked = podman(
        &["image", "inspect", "--format", "{{.Config.Env}}", &tag],
        &[],
    );
    let baked = String::from_utf8_lossy(&baked.stdout);
    assert!(!baked.contains("STIR_"), "{baked}");
    let _ = podman(&["rmi", "-f", &tag], &[]);
    w.drop_all().await;
}
