//! A wide schedule on the test servers: `threads` 1 against 4, and a retry after one failed
//! model against a full rerun, side by side in one run.
//!
//! ```sh
//! scripts/servers.sh up && eval "$(scripts/servers.sh env)"
//! cargo bench -p stir-runtime --bench runs     # STIR_BENCH_REPS=3
//! ```
//!
//! The schedule builds 40 models in 4 levels of 10; each model of a level reads two of the
//! level before. Each model's cost is a server-side sleep (`sleepEachRow`, 0.5 s): the test
//! ClickHouse is one chdb process on a 2-core machine, so real queries would measure its CPU,
//! not the scheduling. The figures therefore show what stir's scheduling buys when the
//! warehouse has room for more queries at once, which is what `threads` is for.
//!
//! "retry" is the second attempt of a fire whose first attempt failed on one model of the
//! first level (its readers were skipped); it rebuilds only that model and what reads it,
//! and keeps the rest. "full rerun" builds all 40 again.
//!
//! Prints a Markdown report and writes it to docs/bench-runs.md.

#[path = "../tests/support/servers.rs"]
mod servers;

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

const LEVELS: usize = 4;
const WIDTH: usize = 10;
const SLEEP_ROWS: u32 = 5; // 0.1 s each

fn main() {
    let reps = std::env::var("STIR_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3usize)
        .max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bench(reps));
}

fn name(level: usize, i: usize) -> String {
    format!("l{level}_m{i:02}")
}

/// The project: 40 models, schedule `wide` (threads as given, one retry), and the first
/// model of level 1 failing until `gate` (a wall-clock instant).
fn write_project(dir: &Path, db: &str, threads: u32, gate: Option<DateTime<Utc>>) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("models")).unwrap();
    let mut kdl = format!(
        "project bench timezone=UTC\nwarehouse clickhouse database={db} threads={threads}\ntag wide\nmodels dir=\"models\" {{\n"
    );
    for level in 1..=LEVELS {
        for i in 0..WIDTH {
            let n = name(level, i);
            kdl.push_str(&format!("    model {n} tags=wide\n"));
            let reads = if level == 1 {
                String::new()
            } else {
                format!(
                    ", (select count() from {{{{ ref('{}') }}}}) + (select count() from {{{{ ref('{}') }}}}) as up",
                    name(level - 1, i),
                    name(level - 1, (i + 1) % WIDTH)
                )
            };
            let fail = match (level, i, gate) {
                (1, 0, Some(g)) => format!(
                    ", throwIf(now() < toDateTime('{}'), 'bench: failing until the gate') as gate",
                    g.format("%Y-%m-%d %H:%M:%S")
                ),
                _ => String::new(),
            };
            std::fs::write(
                dir.join(format!("models/{n}.sql")),
                format!(
                    "select number as x, sleepEachRow(0.1) as s{reads}{fail} from numbers({SLEEP_ROWS}) settings max_block_size = 1"
                ),
            )
            .unwrap();
        }
    }
    kdl.push_str(
        "}\nschedule wide cron=\"0 3 * * *\" timeout=\"30m\" retries=1 {\n    run tag:wide\n}\n",
    );
    std::fs::write(dir.join("stir.kdl"), kdl).unwrap();
}

/// Wall seconds of each attempt of the newest fire of `wide`, oldest attempt first.
async fn attempts(pg: &tokio_postgres::Client, schema: &str) -> Vec<f64> {
    let rows = pg
        .query(
            &format!(
                "SELECT extract(epoch FROM ended_at - started_at)::float8 FROM {schema}.runs
                 WHERE fire_time = (SELECT max(fire_time) FROM {schema}.runs) ORDER BY attempt"
            ),
            &[],
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

async fn bench(reps: usize) {
    let mut config = servers::require_servers();
    config.retry_backoff = Duration::from_millis(100);
    let suffix = std::process::id();
    let db = format!("bench_runs_{suffix}");
    config.history_schema = format!("bench_runs_{suffix}");
    let dir = std::env::temp_dir().join(format!("stir-bench-runs-{suffix}"));
    let warehouse = stir_runtime::warehouse::Warehouse::new(&config);
    let pg = stir_runtime::history::connect(config.postgres_url.as_deref().unwrap())
        .await
        .unwrap();
    let (mut one, mut four, mut retry, mut rerun) = (vec![], vec![], vec![], vec![]);
    let mut kept = 0i64;
    for round in 0..reps {
        for (threads, out) in [(1u32, &mut one), (4, &mut four)] {
            write_project(&dir, &db, threads, None);
            let plan = servers::compile(&dir.join("stir.kdl"));
            warehouse
                .execute(
                    &format!("CREATE DATABASE IF NOT EXISTS {db}"),
                    &format!("bench-db-{round}-{threads}"),
                )
                .await
                .unwrap();
            let s = stir_runtime::run_once(plan, config.clone(), "wide")
                .await
                .unwrap();
            assert_eq!(s, stir_runtime::executor::RunStatus::Ok);
            out.push(attempts(&pg, &config.history_schema).await[0]);
        }
        // One model fails in the first attempt (until the gate), the retry resumes.
        let gate = Utc::now() + chrono::TimeDelta::seconds(4);
        write_project(&dir, &db, 4, Some(gate));
        let plan = servers::compile(&dir.join("stir.kdl"));
        let s = stir_runtime::run_once(plan, config.clone(), "wide")
            .await
            .unwrap();
        let a = attempts(&pg, &config.history_schema).await;
        assert_eq!(
            s,
            stir_runtime::executor::RunStatus::Ok,
            "the retry succeeds: {a:?}"
        );
        assert_eq!(a.len(), 2, "two attempts: {a:?}");
        retry.push(a[1]);
        kept = pg
            .query_one(
                &format!(
                    "SELECT count(*) FROM {0}.steps WHERE status = 'kept' AND run_id IN
                     (SELECT id FROM {0}.runs WHERE attempt = 2 AND fire_time = (SELECT max(fire_time) FROM {0}.runs))",
                    config.history_schema
                ),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        rerun.push(four[round]);
        eprintln!("round {}/{reps} done", round + 1);
    }
    let _ = warehouse
        .execute(&format!("DROP DATABASE IF EXISTS {db}"), "bench-drop")
        .await;
    let _ = pg
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            config.history_schema
        ))
        .await;
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (m1, m4, mr, mf) = (
        med(&mut one),
        med(&mut four),
        med(&mut retry),
        med(&mut rerun),
    );
    let mut out = String::new();
    let _ = writeln!(out, "# Runs benchmark\n");
    let _ = writeln!(
        out,
        "Command: `cargo bench -p stir-runtime --bench runs` (runtime/benches/runs.rs), against the test servers of docs/servers.md. {} models in {LEVELS} levels of {WIDTH}, each reading two of the level before; each model costs a server-side sleep of {:.1} s (see the bench's header for why). Medians of {reps} rounds.\n",
        LEVELS * WIDTH,
        f64::from(SLEEP_ROWS) * 0.1
    );
    let _ = writeln!(
        out,
        "| contender | wall s | vs threads=1 |\n|---|---:|---:|"
    );
    let _ = writeln!(
        out,
        "| full run, threads=1 (one model at a time, as before) | {m1:.1} | 100% |"
    );
    let _ = writeln!(
        out,
        "| full run, threads=4 (the default) | {m4:.1} | {:.0}% |",
        100.0 * m4 / m1
    );
    let _ = writeln!(out, "| retry after one failed model (threads=4; keeps the {kept} models the first attempt built) | {mr:.1} | {:.0}% |", 100.0 * mr / m1);
    let _ = writeln!(
        out,
        "| full rerun of the same fire (threads=4) | {mf:.1} | {:.0}% |",
        100.0 * mf / m1
    );
    let _ = writeln!(
        out,
        "\nAll rounds, seconds: threads=1 {one:?}; threads=4 {four:?}; retry {retry:?}.\n"
    );
    print!("{out}");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/bench-runs.md");
    std::fs::write(path, out).unwrap();
}
