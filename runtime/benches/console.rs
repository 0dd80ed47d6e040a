//! The console's pages with a long history, side by side with the indexes they rely on removed.
//!
//! ```sh
//! scripts/servers.sh up && eval "$(scripts/servers.sh env)"
//! cargo bench -p stir-runtime --bench console   # STIR_BENCH_RUNS=100000, STIR_BENCH_REPS=30
//! ```
//!
//! 1. Compiles the shipped platform (`stir.kdl`: 74 schedules, 112 models) into a plan.
//! 2. Seeds `STIR_BENCH_RUNS` runs into a fresh history schema in PostgreSQL, spread over the
//!    schedules (one fire every 5 to 60 minutes each, about 6% failed), with three steps each,
//!    then ANALYZE, as autovacuum would have done.
//! 3. Serves the console on loopback (the runtime's own axum server) and times
//!    `STIR_BENCH_REPS` GETs of each page end to end (HTTP, queries, template), after a
//!    warm-up; then the grid in 5 interleaved rounds: with the indexes as the runtime makes
//!    them, without the console's covering index `runs_grid` (only `runs_schedule_fire`, the
//!    history's own), and with neither (what the grid would cost without an index on
//!    `schedule`).
//!
//! Prints a Markdown report and writes it to docs/bench-console.md.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stir_runtime::history::PgHistory;
use stir_runtime::Config;

fn main() {
    let runs = env_num("STIR_BENCH_RUNS", 100_000);
    let reps = env_num("STIR_BENCH_REPS", 30).max(3) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bench(runs, reps));
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Timing {
    median: Duration,
    p95: Duration,
    max: Duration,
}

fn thousands(n: i64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// `reps` timed GETs of `url` after 3 warm-ups.
async fn samples(client: &reqwest::Client, url: &str, reps: usize) -> Vec<Duration> {
    for _ in 0..3 {
        let r = client.get(url).send().await.unwrap();
        assert!(r.status().is_success(), "{url}: {}", r.status());
        r.bytes().await.unwrap();
    }
    let mut t = Vec::with_capacity(reps);
    for _ in 0..reps {
        let start = Instant::now();
        let r = client.get(url).send().await.unwrap();
        assert!(r.status().is_success(), "{url}: {}", r.status());
        r.bytes().await.unwrap();
        t.push(start.elapsed());
    }
    t
}

fn summary(mut t: Vec<Duration>) -> Timing {
    t.sort();
    Timing {
        median: t[t.len() / 2],
        p95: t[(t.len() * 95 / 100).min(t.len() - 1)],
        max: t[t.len() - 1],
    }
}

async fn time_get(client: &reqwest::Client, url: &str, reps: usize) -> Timing {
    summary(samples(client, url, reps).await)
}

async fn bench(runs: u64, reps: usize) {
    let mut config = Config::from_env().expect("the servers' environment");
    let pg = config.postgres_url.clone().expect(
        "STIR_POSTGRES_URL is not set: run `scripts/servers.sh up` and `eval \"$(scripts/servers.sh env)\"`",
    );
    config.history_schema = format!("bench_console_{}", std::process::id());
    let s = config.history_schema.clone();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let compiled = stir::compile_path(&root.join("stir.kdl")).expect("stir.kdl loads");
    assert!(!compiled.has_errors(), "stir.kdl checks");
    let plan = Arc::new(stir::planner::build(&compiled).expect("a plan"));
    let history = Arc::new(PgHistory::open(&pg, &s).await.expect("history"));
    let c = stir_runtime::history::connect(&pg).await.unwrap();

    let names: Vec<String> = plan.schedules.iter().map(|x| x.name.clone()).collect();
    let steps: Vec<i32> = (0..names.len() as i32).map(|i| 5 * (1 + i % 12)).collect();
    let models: Vec<String> = plan.models.iter().map(|m| m.name.clone()).collect();
    let per = runs.div_ceil(names.len() as u64) as i64;
    let t0 = Instant::now();
    c.execute(
        &format!(
            "INSERT INTO {s}.runs (id, schedule, fire_time, started_at, ended_at, status, error, plan_hash, attempt, by_leader, runtime)
             SELECT n.name || '-' || g || '-a1', n.name,
                    date_trunc('minute', now()) - (g * n.step) * interval '1 minute',
                    date_trunc('minute', now()) - (g * n.step) * interval '1 minute' + interval '2 seconds',
                    date_trunc('minute', now()) - (g * n.step) * interval '1 minute' + (20 + g % 70) * interval '1 second',
                    CASE WHEN g % 17 = 0 THEN 'failed' WHEN g % 101 = 0 THEN 'timeout' ELSE 'ok' END,
                    CASE WHEN g % 17 = 0 THEN 'step failed: Code: 60. DB::Exception: Table x does not exist' END,
                    'benchplan', 1, true, 'bench-runtime'
             FROM unnest($1::text[], $2::int[]) AS n(name, step)
             CROSS JOIN generate_series(1, $3::bigint) AS g
             LIMIT $4"
        ),
        &[&names, &steps, &per, &(runs as i64)],
    )
    .await
    .unwrap();
    c.execute(
        &format!(
            "INSERT INTO {s}.steps (run_id, idx, kind, name, started_at, ended_at, status, rows)
             SELECT r.id, k, 'model', ($1::text[])[1 + ((hashtext(r.schedule) & 1023) + k) % cardinality($1::text[])],
                    r.started_at, r.ended_at, 'ok', 1000
             FROM {s}.runs r CROSS JOIN generate_series(0, 2) AS k"
        ),
        &[&models],
    )
    .await
    .unwrap();
    // One statement each: VACUUM cannot run in the transaction a multi-statement batch is.
    for t in ["runs", "steps"] {
        c.batch_execute(&format!("VACUUM ANALYZE {s}.{t}"))
            .await
            .unwrap();
    }
    let seeded: i64 = c
        .query_one(&format!("SELECT count(*) FROM {s}.runs"), &[])
        .await
        .unwrap()
        .get(0);
    eprintln!("seeded {seeded} runs in {:.1}s", t0.elapsed().as_secs_f64());

    let (addr, task) = stir_runtime::server::serve_history(
        "127.0.0.1:0".parse().unwrap(),
        plan.clone(),
        Arc::new(config.clone()),
        history,
    )
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");
    let mut rows: Vec<(String, Timing)> = Vec::new();
    for (label, path) in [
        ("grid (`/grid`), 74 schedules × 30 fires", "/grid"),
        ("schedules (`/`), with sparklines", "/"),
        ("timeline (`/timeline`), this week's runs", "/timeline"),
        ("models (`/models`), 112 last builds", "/models"),
        (
            "a model (`/models/NAME`), lineage and last build",
            "/models/MODEL",
        ),
    ] {
        let path = path.replace("MODEL", &models[0]);
        rows.push((
            label.into(),
            time_get(&client, &format!("{base}{path}"), reps).await,
        ));
    }
    // The grid side by side with the indexes it relies on removed, in interleaved rounds so
    // whatever else the machine does falls on every contender alike.
    let grid = format!("{base}/grid");
    let grid_index = format!(
        "CREATE INDEX runs_grid ON {s}.runs (schedule, fire_time DESC, attempt DESC) INCLUDE (id, status, started_at, ended_at)"
    );
    let schedule_index =
        format!("CREATE INDEX runs_schedule_fire ON {s}.runs (schedule, fire_time DESC)");
    let contenders: [(&str, Vec<String>, Vec<String>); 3] = [
        (
            "grid, the indexes as the runtime makes them",
            vec![],
            vec![],
        ),
        (
            "grid without `runs_grid` (only `runs_schedule_fire`)",
            vec![format!("DROP INDEX {s}.runs_grid")],
            vec![grid_index.clone()],
        ),
        (
            "grid without an index on `schedule`",
            vec![
                format!("DROP INDEX {s}.runs_grid"),
                format!("DROP INDEX {s}.runs_schedule_fire"),
            ],
            vec![grid_index.clone(), schedule_index.clone()],
        ),
    ];
    let rounds = 5;
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); contenders.len()];
    for _ in 0..rounds {
        for (k, (_, before, after)) in contenders.iter().enumerate() {
            for sql in before {
                c.batch_execute(sql).await.unwrap();
            }
            c.batch_execute(&format!("ANALYZE {s}.runs")).await.unwrap();
            times[k].extend(samples(&client, &grid, reps.div_ceil(rounds)).await);
            for sql in after {
                c.batch_execute(sql).await.unwrap();
            }
        }
    }
    for ((label, _, _), t) in contenders.iter().zip(times) {
        rows.push((label.to_string(), summary(t)));
    }
    task.abort();
    c.batch_execute(&format!("DROP SCHEMA {s} CASCADE"))
        .await
        .unwrap();

    let mut r = String::new();
    let _ = writeln!(r, "# Console pages with a long history\n");
    let _ = writeln!(
        r,
        "`cargo bench -p stir-runtime --bench console` ({} runs, {} steps, {} schedules; \
         {reps} timed GETs of each page after 3 warm-ups, end to end over HTTP on loopback: \
         queries, template, transfer). PostgreSQL of `scripts/servers.sh` on the 2-core dev \
         machine, shared with other work.\n",
        thousands(seeded),
        thousands(seeded * 3),
        names.len()
    );
    let _ = writeln!(r, "| page | median | p95 | max |\n|---|---|---|---|");
    for (label, t) in &rows {
        let _ = writeln!(
            r,
            "| {label} | {} | {} | {} |",
            ms(t.median),
            ms(t.p95),
            ms(t.max)
        );
    }
    print!("{r}");
    let out = root.join("docs/bench-console.md");
    if let Err(e) = std::fs::write(&out, &r) {
        eprintln!("cannot write {}: {e}", out.display());
    }
}
