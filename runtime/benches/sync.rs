//! Sync throughput against the test servers, side by side with the raw limit.
//!
//! ```sh
//! scripts/servers.sh up && eval "$(scripts/servers.sh env)"
//! cargo bench -p stir-runtime --bench sync            # STIR_BENCH_ROWS=1000000 by default
//! ```
//!
//! 1. Seeds `STIR_BENCH_ROWS` platform-shaped rows in ClickHouse (fixtures/sync/bench).
//! 2. Raw limit: the same TSV, exported once to a local file, loaded with `psql \copy` into
//!    an UNLOGGED table (what COPY alone costs on this PostgreSQL).
//! 3. ClickHouse alone: the export streamed to nowhere.
//! 4. stir: the whole sync step (export + S3 + COPY + SET LOGGED + ANALYZE + swap), in the
//!    one-pass mode and in the upload-then-load mode, with the peak RSS of this process
//!    (VmHWM, reset before each run).
//!
//! Prints a Markdown table for docs/performance.md.

#[path = "../tests/fixtures/sync/harness.rs"]
mod harness;

use std::time::Instant;

use stir_runtime::step::StepRunner;
use stir_runtime::sync::{clickhouse_client, LoadMode};

fn vm_hwm_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn reset_hwm() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn main() {
    let rows: u64 = std::env::var("STIR_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("stir_runtime=info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bench(rows));
}

async fn bench(rows: u64) {
    let c = harness::Case::with_fixture("bench", "bench").await;
    let t = Instant::now();
    c.ch(&format!(
        "CREATE TABLE {}.bench_src (id UInt64, profile_id Int64, followers Int64, engagement_rate Float64, \
         avg_likes Float64, handle String, full_name String, category LowCardinality(String), day Date, \
         hashtags Array(String)) ENGINE = MergeTree ORDER BY id",
        c.src
    ))
    .await;
    c.ch(&format!(
        "INSERT INTO {}.bench_src SELECT number, number * 7 + 1000000000, (number * 7919) % 50000000, \
         (number % 1000) / 3.7, (number % 100000) * 1.25, concat('handle_', toString(number)), \
         concat('Full Name ', toString(number % 77777), if(number % 10 = 0, ' \\\\ ✓ \\t tab', '')), \
         ['fashion', 'food', 'travel', 'tech'][number % 4 + 1], toDate('2024-01-01') + number % 365, \
         arrayMap(x -> concat('#tag', toString(x)), range(number % 6)) FROM numbers({rows})",
        c.src
    ))
    .await;
    c.build_models().await;
    eprintln!("seeded {rows} rows in {:.1}s", t.elapsed().as_secs_f64());
    let sync = c.plan.syncs[0].clone();

    // ClickHouse alone: the export streamed and dropped.
    let ch = clickhouse_client(&c.config);
    let t = Instant::now();
    let mut cursor = ch
        .query_raw(&sync.clickhouse.select)
        .fetch_bytes("TabSeparated")
        .unwrap();
    let path = c.dir.join("bench.tsv");
    let mut file = Vec::new();
    while let Some(chunk) = cursor.next().await.unwrap() {
        file.extend_from_slice(&chunk);
    }
    let ch_secs = t.elapsed().as_secs_f64();
    let bytes = file.len();
    std::fs::write(&path, &file).unwrap();
    drop(file);

    // Raw limit: psql \copy of the same TSV into an UNLOGGED table.
    let create = sync.postgres.prepare[1]
        .replace(&format!("\"{}\"", sync.postgres.new_table), "\"bench_raw\"");
    c.pg.batch_execute(&create).await.unwrap();
    let cols: Vec<String> = sync
        .clickhouse
        .columns
        .iter()
        .map(|k| k.name.clone())
        .collect();
    let t = Instant::now();
    let status = std::process::Command::new("psql")
        .arg(&c.env["STIR_POSTGRES_URL"])
        .arg("-q")
        .arg("-v")
        .arg("ON_ERROR_STOP=1")
        .arg("-c")
        .arg(format!(
            "\\copy {}.bench_raw ({}) FROM '{}'",
            c.schema,
            cols.join(", "),
            path.display()
        ))
        .status()
        .expect("psql on PATH");
    let psql_secs = t.elapsed().as_secs_f64();
    assert!(status.success());
    let _ = std::fs::remove_file(&path);
    assert_eq!(c.pg_count("bench_raw").await as u64, rows);

    let mut results = Vec::new();
    for mode in [LoadMode::Tee, LoadMode::FromS3] {
        let runner = c.runner(|o| o.load = mode);
        let ctx = c.ctx(c.config.clone());
        reset_hwm();
        let t = Instant::now();
        let out = runner
            .run_sync(&ctx, "bench", &format!("bench-{mode:?}"))
            .await
            .unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(out.rows, Some(rows));
        results.push((mode, secs, vm_hwm_mib()));
    }

    let rate = |s: f64| rows as f64 / s;
    println!(
        "rows: {rows}, TSV: {:.1} MiB, machine: {} cores, {}",
        bytes as f64 / 1048576.0,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/cpuinfo")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .unwrap_or("?")
            .trim()
    );
    println!();
    println!("| what | seconds | rows/s | vs psql \\copy | peak RSS of the process |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| ClickHouse export alone (chdb front end, to memory) | {ch_secs:.2} | {:.0} | | |",
        rate(ch_secs)
    );
    println!(
        "| raw limit: `psql \\copy` of the TSV file into an UNLOGGED table | {psql_secs:.2} | {:.0} | 100% | |",
        rate(psql_secs)
    );
    for (mode, secs, hwm) in &results {
        let what = match mode {
            LoadMode::Tee => {
                "stir sync, one pass (export -> S3 + COPY), then SET LOGGED, ANALYZE, swap"
            }
            LoadMode::FromS3 => {
                "stir sync, upload then load from S3, then SET LOGGED, ANALYZE, swap"
            }
        };
        println!(
            "| {what} | {secs:.2} | {:.0} | {:.0}% | {hwm:.0} MiB |",
            rate(*secs),
            psql_secs / secs * 100.0
        );
    }
    c.finish().await;
}
