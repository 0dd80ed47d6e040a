//! Sync throughput against the test servers, side by side with the raw limit.
//!
//! ```sh
//! scripts/servers.sh up && eval "$(scripts/servers.sh env)"
//! cargo bench -p stir-runtime --bench sync   # STIR_BENCH_ROWS=1000000, STIR_BENCH_REPS=5
//! ```
//!
//! 1. Seeds `STIR_BENCH_ROWS` platform-shaped rows in ClickHouse (fixtures/sync/bench).
//! 2. Then `STIR_BENCH_REPS` rounds, each running, in turn:
//!    - the raw limit: the same TSV, exported once to a local file, loaded with `psql \copy`
//!      into a fresh UNLOGGED table (what COPY alone costs on this PostgreSQL);
//!    - stir's sync step in the one-pass mode with LZ4 staging (the default), with plain
//!      staging, and in the upload-then-load mode.
//!
//!    Interleaving the rounds spreads whatever else the machine does over every contender;
//!    the report gives medians. "load" is the step's export + S3 + COPY phase (what the raw
//!    limit does); "step" adds SET LOGGED, indexes, VACUUM (ANALYZE) and the swap.
//! 3. While each contender runs, a sampler reads /proc every 100 ms and sums the CPU time of
//!    PostgreSQL, SeaweedFS, the chdb front end, psql and this process: on one machine the
//!    servers share its cores, which is what the rig measures and production does not.
//!
//! Prints a Markdown report and writes it to docs/bench-sync.md.

#[path = "../tests/fixtures/sync/harness.rs"]
mod harness;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stir::manifest::StagingCompression;
use stir_runtime::step::StepRunner;
use stir_runtime::sync::{clickhouse_client, LoadMode};

fn main() {
    let rows: u64 = env_num("STIR_BENCH_ROWS", 1_000_000);
    let reps = env_num("STIR_BENCH_REPS", 5).max(1) as usize;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("stir_runtime=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bench(rows, reps));
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds per process group while `f` runs (sampled; short-lived processes are caught
/// from their first sample on, so a group's figure is a slight underestimate).
struct CpuSampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<HashMap<&'static str, f64>>,
}

fn group(comm: &str, cmdline: &str) -> Option<&'static str> {
    match comm {
        "postgres" => Some("PostgreSQL"),
        "weed" => Some("SeaweedFS"),
        "psql" => Some("psql"),
        _ if cmdline.contains("chdb_http.py") => Some("ClickHouse (chdb)"),
        _ => None,
    }
}

fn proc_cpu(pid: &str, ticks: f64) -> Option<(String, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((comm, (utime + stime) / ticks))
}

impl CpuSampler {
    fn start() -> CpuSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let me = std::process::id().to_string();
        let handle = std::thread::spawn(move || {
            let ticks = 100.0; // USER_HZ on Linux
                               // pid -> (group, cpu at first sight, cpu now)
            let mut seen: HashMap<String, (&'static str, f64, f64)> = HashMap::new();
            let mut first = true;
            loop {
                let done = flag.load(Ordering::Relaxed);
                for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                    let pid = entry.file_name().to_string_lossy().to_string();
                    if !pid.bytes().all(|b| b.is_ascii_digit()) {
                        continue;
                    }
                    let Some((comm, cpu)) = proc_cpu(&pid, ticks) else {
                        continue;
                    };
                    let g = if pid == me {
                        Some("stir (this process)")
                    } else if let Some(g) = seen.get(&pid).map(|s| s.0) {
                        Some(g)
                    } else {
                        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
                            .map(|b| String::from_utf8_lossy(&b).into_owned())
                            .unwrap_or_default();
                        group(&comm, &cmdline)
                    };
                    let Some(g) = g else { continue };
                    seen.entry(pid)
                        .and_modify(|s| s.2 = cpu)
                        // A process born after the start counts from zero.
                        .or_insert((g, if first { cpu } else { 0.0 }, cpu));
                }
                first = false;
                if done {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let mut out: HashMap<&'static str, f64> = HashMap::new();
            for (g, a, b) in seen.into_values() {
                *out.entry(g).or_default() += (b - a).max(0.0);
            }
            out
        });
        CpuSampler { stop, handle }
    }

    fn stop(self) -> HashMap<&'static str, f64> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

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

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[derive(Default)]
struct Samples {
    load: Vec<f64>,
    step: Vec<f64>,
    rss: f64,
    cpu: Vec<HashMap<&'static str, f64>>,
}

const GROUPS: [&str; 5] = [
    "PostgreSQL",
    "ClickHouse (chdb)",
    "SeaweedFS",
    "stir (this process)",
    "psql",
];

async fn bench(rows: u64, reps: usize) {
    let mut c = harness::Case::with_fixture("bench", "bench").await;
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

    // ClickHouse alone: the export streamed into memory, then written to the file psql reads.
    let ch = clickhouse_client(&c.config);
    let mut export = Samples::default();
    let path = c.dir.join("bench.tsv");
    let mut bytes = 0;
    for _ in 0..reps {
        let cpu = CpuSampler::start();
        let t = Instant::now();
        let mut cursor = ch
            .query_raw(&sync.clickhouse.select)
            .fetch_bytes("TabSeparated")
            .unwrap();
        let mut file = Vec::new();
        while let Some(chunk) = cursor.next().await.unwrap() {
            file.extend_from_slice(&chunk);
        }
        export.load.push(t.elapsed().as_secs_f64());
        export.cpu.push(cpu.stop());
        bytes = file.len();
        std::fs::write(&path, &file).unwrap();
    }

    let create = sync.postgres.prepare[1]
        .replace(&format!("\"{}\"", sync.postgres.new_table), "\"bench_raw\"");
    let cols: Vec<String> = sync
        .clickhouse
        .columns
        .iter()
        .map(|k| k.name.clone())
        .collect();
    let contenders = [
        (
            "one pass, LZ4 staging (default)",
            LoadMode::Tee,
            StagingCompression::Lz4,
        ),
        (
            "one pass, plain staging",
            LoadMode::Tee,
            StagingCompression::None,
        ),
        (
            "upload, then load from S3 (LZ4)",
            LoadMode::FromS3,
            StagingCompression::Lz4,
        ),
    ];
    let mut raw = Samples::default();
    let mut stir: Vec<Samples> = contenders.iter().map(|_| Samples::default()).collect();
    for rep in 0..reps {
        // Raw limit: psql \copy of the same TSV into a fresh UNLOGGED table.
        c.pg.batch_execute(&format!(
            "DROP TABLE IF EXISTS {}.bench_raw; {create}",
            c.schema
        ))
        .await
        .unwrap();
        let cpu = CpuSampler::start();
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
        raw.load.push(t.elapsed().as_secs_f64());
        raw.cpu.push(cpu.stop());
        assert!(status.success());
        assert_eq!(c.pg_count("bench_raw").await as u64, rows);

        for (i, (_, mode, compression)) in contenders.iter().enumerate() {
            std::sync::Arc::make_mut(&mut c.plan)
                .staging
                .as_mut()
                .unwrap()
                .compression = *compression;
            let runner = c.runner(|o| o.sync.load = *mode);
            let ctx = c.ctx(c.config.clone());
            reset_hwm();
            let cpu = CpuSampler::start();
            let t = Instant::now();
            let out = runner
                .run_sync(&ctx, "bench", &format!("bench-{rep}-{i}"))
                .await
                .unwrap();
            let step = t.elapsed().as_secs_f64();
            let usage = cpu.stop();
            assert_eq!(out.rows, Some(rows));
            let load = out
                .phases
                .iter()
                .find(|(p, _)| *p == "load")
                .map(|(_, d)| d.as_secs_f64())
                .expect("a load phase");
            let s = &mut stir[i];
            s.load.push(load);
            s.step.push(step);
            s.rss = s.rss.max(vm_hwm_mib());
            s.cpu.push(usage);
        }
        eprintln!("round {}/{reps} done", rep + 1);
    }
    let _ = std::fs::remove_file(&path);

    let raw_load = median(&raw.load);
    let rate = |s: f64| rows as f64 / s;
    let cpu_cell = |s: &Samples, g: &str| {
        let v: Vec<f64> = s
            .cpu
            .iter()
            .map(|m| m.get(g).copied().unwrap_or(0.0))
            .collect();
        let m = median(&v);
        if m < 0.005 {
            "".to_string()
        } else {
            format!("{m:.2}")
        }
    };
    let mut r = String::new();
    let _ = writeln!(r, "# Sync benchmark\n");
    let _ = writeln!(
        r,
        "Command: `STIR_BENCH_ROWS={rows} STIR_BENCH_REPS={reps} cargo bench -p stir-runtime --bench sync` \
         (runtime/benches/sync.rs), against the test servers of docs/servers.md on one machine: \
         {} cores, {}.\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/cpuinfo")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .unwrap_or("?")
            .trim()
    );
    let _ = writeln!(
        r,
        "{rows} platform-shaped rows, {:.1} MiB of TabSeparated. Medians of {reps} interleaved rounds. \
         **load** = export + S3 + COPY into the UNLOGGED staging table (what `psql \\copy` does); \
         **step** = load + SET LOGGED, indexes, VACUUM (ANALYZE) and the swap. CPU columns: CPU seconds each \
         server spent during the contender (sampled from /proc).\n",
        bytes as f64 / 1048576.0
    );
    let _ = writeln!(
        r,
        "| contender | load s | rows/s | vs psql \\copy | step s | peak RSS | {} |",
        GROUPS.map(|g| format!("CPU {g}")).join(" | ")
    );
    let _ = writeln!(
        r,
        "|---|---:|---:|---:|---:|---:|{}",
        "---:|".repeat(GROUPS.len())
    );
    let _ = writeln!(
        r,
        "| ClickHouse export alone, to memory | {:.2} | {:.0} | | | | {} |",
        median(&export.load),
        rate(median(&export.load)),
        GROUPS.map(|g| cpu_cell(&export, g)).join(" | ")
    );
    let _ = writeln!(
        r,
        "| raw limit: `psql \\copy` of the TSV file into an UNLOGGED table | {raw_load:.2} | {:.0} | 100% | | | {} |",
        rate(raw_load),
        GROUPS.map(|g| cpu_cell(&raw, g)).join(" | ")
    );
    for ((name, _, _), s) in contenders.iter().zip(&stir) {
        let load = median(&s.load);
        let _ = writeln!(
            r,
            "| stir sync: {name} | {load:.2} | {:.0} | {:.0}% | {:.2} | {:.0} MiB | {} |",
            rate(load),
            raw_load / load * 100.0,
            median(&s.step),
            s.rss,
            GROUPS.map(|g| cpu_cell(s, g)).join(" | ")
        );
    }
    let _ = writeln!(r);
    let _ = writeln!(
        r,
        "All rounds, load seconds: psql {:?}; {}",
        raw.load
            .iter()
            .map(|x| (x * 100.0).round() / 100.0)
            .collect::<Vec<_>>(),
        contenders
            .iter()
            .zip(&stir)
            .map(|((n, _, _), s)| format!(
                "{n} {:?}",
                s.load
                    .iter()
                    .map(|x| (x * 100.0).round() / 100.0)
                    .collect::<Vec<_>>()
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
    print!("{r}");
    let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs");
    if std::path::Path::new(docs).is_dir() {
        let path = format!("{docs}/bench-sync.md");
        if let Err(e) = std::fs::write(&path, &r) {
            eprintln!("could not write {path}: {e}");
        }
    }
    c.finish().await;
}
