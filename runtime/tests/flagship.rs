//! The shipped platform, for real: the raw tables of `examples/seed/raw.sql`, the plan of the
//! shipped `stir.kdl` (warehouse database, serving schema and S3 prefix renamed to this test's
//! own), and EVERY enabled schedule run once through the runtime, upstream schedules first.
//! Then what a user would check: every run ok, every model's table in ClickHouse, the key marts
//! non-empty, every sync's PostgreSQL table holding the model's rows (in the production database
//! or the staging app's, as its target says), the scrape requests POSTed
//! to beat (a local receiver), and the history in PostgreSQL.
//!
//! Needs `scripts/servers.sh up` and `eval "$(scripts/servers.sh env)"`. It recreates the raw
//! databases `beat_replica`, `coffee`, `_e` and `vidooly` (the manifest's source names), like
//! `scripts/run.sh` does.

#[path = "support/servers.rs"]
mod servers;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use servers::*;
use stir::plan::{Plan, Step};
use stir_runtime::executor::RunStatus;
use stir_runtime::runner::{Runner, RunnerOptions};
use stir_runtime::warehouse::Warehouse;
use stir_runtime::Options;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The seed's statements: `;` + newline separated, `--` comment lines dropped.
fn seed_statements() -> Vec<String> {
    let text = std::fs::read_to_string(workspace().join("examples/seed/raw.sql")).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    text.split(";\n")
        .map(|s| s.trim().trim_end_matches(';').trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Replace `from` in the manifest, insisting it is there (the test must notice a renamed key).
fn edit(text: String, from: &str, to: &str) -> String {
    assert!(text.contains(from), "stir.kdl no longer contains `{from}`");
    text.replace(from, to)
}

/// Models a SQL text reads, as `db.model` mentions.
fn mentioned(sql: &str, db: &str, models: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let prefix = format!("{db}.");
    let mut rest = sql;
    while let Some(i) = rest.find(&prefix) {
        let before_ok = i == 0
            || !rest[..i]
                .chars()
                .last()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let tail = &rest[i + prefix.len()..];
        let name: String = tail
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if before_ok && models.contains(&name) {
            out.insert(name.clone());
        }
        rest = &tail[name.len()..];
    }
    out
}

/// The schedule graph of a plan: for each enabled schedule, the schedules owning the models it
/// reads (its run steps' dependencies, its syncs' models, its requests' and sql steps' tables).
struct Graph {
    owner: HashMap<String, String>,
    /// schedule -> (upstream schedule -> models read from it)
    reads: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
}

fn graph(plan: &Plan) -> Graph {
    let db = &plan.warehouse.database;
    let names: BTreeSet<String> = plan.models.iter().map(|m| m.name.clone()).collect();
    let model = |n: &str| plan.models.iter().find(|m| m.name == n).unwrap();
    let mut owner = HashMap::new();
    for s in &plan.schedules {
        for st in &s.steps {
            if let Step::Run { models } = st {
                for m in models {
                    owner.insert(m.clone(), s.name.clone());
                }
            }
        }
    }
    let mut reads = BTreeMap::new();
    for s in plan.schedules.iter().filter(|s| s.enabled) {
        let mut r: BTreeSet<String> = BTreeSet::new();
        for st in &s.steps {
            match st {
                Step::Run { models } => {
                    for m in models {
                        r.extend(model(m).deps.iter().cloned());
                    }
                }
                Step::Sync { sync } => {
                    r.insert(
                        plan.syncs
                            .iter()
                            .find(|x| &x.name == sync)
                            .unwrap()
                            .from
                            .clone(),
                    );
                }
                Step::Request { request } => {
                    let q = plan.requests.iter().find(|x| &x.name == request).unwrap();
                    r.extend(mentioned(&q.sql, db, &names));
                }
                Step::Sql { sql } => r.extend(mentioned(sql, db, &names)),
            }
        }
        let mut up: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for m in r {
            if let Some(o) = owner.get(&m) {
                if o != &s.name {
                    up.entry(o.clone()).or_default().insert(m);
                }
            }
        }
        reads.insert(s.name.clone(), up);
    }
    Graph { owner, reads }
}

/// Strongly connected components of the schedule graph, upstream components first (Tarjan
/// emits a component after every component it reads from); members sorted by name.
fn components(g: &Graph) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a Graph,
        index: HashMap<String, usize>,
        low: HashMap<String, usize>,
        stack: Vec<String>,
        on: BTreeSet<String>,
        out: Vec<Vec<String>>,
    }
    fn visit(t: &mut T, v: &str) {
        let i = t.index.len();
        t.index.insert(v.into(), i);
        t.low.insert(v.into(), i);
        t.stack.push(v.into());
        t.on.insert(v.into());
        let ups: Vec<String> = t.g.reads[v].keys().cloned().collect();
        for w in ups {
            if !t.g.reads.contains_key(&w) {
                continue; // a disabled schedule
            }
            if !t.index.contains_key(&w) {
                visit(t, &w);
                let l = t.low[&w].min(t.low[v]);
                t.low.insert(v.into(), l);
            } else if t.on.contains(&w) {
                let l = t.index[&w].min(t.low[v]);
                t.low.insert(v.into(), l);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = t.stack.pop().unwrap();
                t.on.remove(&w);
                comp.push(w.clone());
                if w == v {
                    break;
                }
            }
            comp.sort();
            t.out.push(comp);
        }
    }
    let mut t = T {
        g,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.reads.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

struct Flagship {
    wh: Warehouse,
}

impl Flagship {
    async fn sql(&self, sql: &str) {
        self.wh
            .execute(sql, &next_id("flagship"))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    async fn number(&self, sql: &str) -> u64 {
        self.wh
            .number(sql, &next_id("flagship"))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_platform_runs_every_schedule_for_real() {
    let started = Instant::now();
    let mut config = require_servers();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let id = format!("{}_{}", std::process::id(), nanos % 1_000_000);
    let db = format!("fl_wh_{id}");
    let schema = format!("fl_app_{id}");
    config.history_schema = format!("fl_hist_{id}");
    let bucket = std::env::var("STIR_S3_BUCKET").unwrap_or_else(|_| "stir-test".into());

    // 1. The raw tables.
    let wh = Warehouse::new(&config);
    for s in seed_statements() {
        wh.execute(&s, &next_id("seed"))
            .await
            .unwrap_or_else(|e| panic!("examples/seed/raw.sql: {s}: {e}"));
    }

    // 2. The shipped manifest under this test's names, and its plan.
    let dir = std::env::temp_dir().join(format!("stir-flagship-{id}"));
    let _ = std::fs::remove_dir_all(&dir);
    copy_tree(&workspace().join("models"), &dir.join("models"));
    let kdl = std::fs::read_to_string(workspace().join("stir.kdl")).unwrap();
    let kdl = edit(
        kdl,
        "warehouse clickhouse database=dbt\n",
        &format!("warehouse clickhouse database={db}\n"),
    );
    // `sql` steps name tables with ref(), so they follow the renamed warehouse database.
    assert!(kdl.contains("sql \"truncate table if exists {{ ref('mart_fake_events') }}\""));
    let kdl = edit(
        kdl,
        "serving postgres schema=public\n",
        &format!("serving postgres schema={schema}\n"),
    );
    let kdl = edit(
        kdl,
        "serving postgres staging schema=public\n",
        &format!("serving postgres staging schema={schema}\n"),
    );
    let kdl = edit(
        kdl,
        "staging s3 bucket=gcc-social-data prefix=\"data-pipeline/tmp\"",
        &format!("staging s3 bucket={bucket} prefix=\"stir-tests/flagship-{id}\""),
    );
    std::fs::write(dir.join("stir.kdl"), kdl).unwrap();
    let plan = compile(&dir.join("stir.kdl"));
    assert_eq!(plan.schedules.len(), 74);
    let fl = Flagship { wh: wh.clone() };
    fl.sql(&format!("CREATE DATABASE {db} ENGINE = Atomic"))
        .await;

    // 3. PostgreSQL: the serving schema with the app tables the enrich statements join, in
    //    the production database and in the staging app's (`STIR_POSTGRES_URL_STAGING`).
    config
        .read_targets(&plan, |k| std::env::var(k).ok())
        .unwrap_or_else(|e| panic!("{e}: run `eval \"$(scripts/servers.sh env)\"` again"));
    assert_eq!(
        plan.targets.iter().map(|t| &t.name).collect::<Vec<_>>(),
        ["staging"]
    );
    let pg = stir_runtime::history::connect(config.postgres_url.as_deref().unwrap())
        .await
        .unwrap();
    let pg_staging = stir_runtime::history::connect(&config.target_urls["staging"])
        .await
        .unwrap();
    for pg in [&pg, &pg_staging] {
        pg.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};
         CREATE TABLE {schema}.instagram_account (id int8 PRIMARY KEY, ig_id text, handle text,
             thumbnail text, followers int8, audience_gender jsonb, search_phrase text);
         INSERT INTO {schema}.instagram_account
             SELECT i, (1000000 + i)::text, 'creator_' || i, 'https://app.example.com/' || i || '.jpg',
                    2000 + i * i * 20, '{{\"male\": 0.5}}'::jsonb, 'creator ' || i
             FROM generate_series(1, 400) i;
         CREATE TABLE {schema}.post_collection (id int8 PRIMARY KEY, share_id text);
         INSERT INTO {schema}.post_collection SELECT c, 'app-share-' || c FROM generate_series(1, 30) c;"
        ))
        .await
        .unwrap();
    }

    // 4. beat: a local receiver for every POST of the requests.
    let (hook, mut posts) = webhook().await;
    let base = hook
        .trim_end_matches("/services/T000/B000/secret")
        .to_string();
    let mut env: HashMap<String, String> = std::env::vars().collect();
    for e in &plan.endpoints {
        env.insert(
            format!("STIR_ENDPOINT_{}", e.to_uppercase().replace('-', "_")),
            base.clone(),
        );
    }
    let runner = Runner::new(RunnerOptions {
        env: Arc::new(move |k: &str| env.get(k).cloned()),
        ..RunnerOptions::default()
    });
    let options = Options {
        runner: Some(Arc::new(runner)),
        ..Options::default()
    };

    // 5. A new warehouse: --bootstrap builds every model, dependencies first (the schedule
    // cycle dbt_hourly <-> dbt_daily could not start otherwise: each would fail on the other's
    // missing table). Then every enabled schedule once, upstream first.
    let boot = stir_runtime::bootstrap_with(
        plan.clone(),
        config.clone(),
        options.clone(),
        Duration::from_secs(1800),
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(boot.status, Some(RunStatus::Ok));
    assert_eq!(
        boot.models.len(),
        plan.models.len(),
        "a new warehouse lacks every model"
    );
    let g = graph(&plan);
    let comps = components(&g);
    let mut timings: Vec<(String, RunStatus, f64)> = Vec::new();
    for comp in &comps {
        for s in comp {
            let t = Instant::now();
            let status = stir_runtime::run_once_with(
                plan.clone(),
                config.clone(),
                s,
                options.clone(),
                std::future::pending(),
            )
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
            timings.push((s.clone(), status, t.elapsed().as_secs_f64()));
        }
    }
    let cycles: Vec<&Vec<String>> = comps.iter().filter(|c| c.len() > 1).collect();
    eprintln!(
        "flagship: {} schedules in {:.1}s; cycles {cycles:?}",
        timings.len(),
        started.elapsed().as_secs_f64()
    );
    for (s, st, secs) in &timings {
        eprintln!("  {s:40} {st:?} {secs:.2}s");
    }
    let enabled = plan.schedules.iter().filter(|s| s.enabled).count();
    assert_eq!(timings.len(), enabled, "every enabled schedule ran once");
    let failed: Vec<&(String, RunStatus, f64)> =
        timings.iter().filter(|t| t.1 != RunStatus::Ok).collect();
    if !failed.is_empty() {
        let table = stir_runtime::history_table(&config, 200, None)
            .await
            .unwrap();
        let errors: Vec<String> = table
            .lines()
            .filter(|l| !l.contains(" ok "))
            .map(str::to_string)
            .collect();
        panic!(
            "schedules did not succeed: {failed:?}\n{}",
            errors.join("\n")
        );
    }

    // 6. Every model's table, and the marts a user opens first, non-empty.
    let tables: BTreeSet<String> = wh
        .text(
            &format!("SELECT name FROM system.tables WHERE database = '{db}'"),
            &next_id("flagship"),
        )
        .await
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    for m in &plan.models {
        assert!(
            tables.contains(&m.name),
            "model {} (built by {:?}) has no table",
            m.name,
            g.owner.get(&m.name)
        );
    }
    assert!(
        !tables.iter().any(|t| t.ends_with("__stir_new")),
        "no staging leftovers: {tables:?}"
    );
    for m in [
        "mart_instagram_account",
        "mart_leaderboard",
        "mart_time_series",
        "mart_collection_post",
        "mart_instagram_account_summary",
    ] {
        let n = fl.number(&format!("SELECT count() FROM {db}.{m}")).await;
        assert!(n > 0, "{m} is empty");
    }

    // 7. Every sync's PostgreSQL table holds the model's rows (minus its delete-where rows).
    for s in &plan.syncs {
        let deleted: Vec<String> = s
            .postgres
            .transform
            .iter()
            .filter_map(|t| {
                t.split_once(" WHERE ")
                    .filter(|_| t.starts_with("DELETE FROM"))
            })
            .map(|(_, cond)| cond.to_string())
            .collect();
        let mut q = "SELECT count()".to_string();
        for c in &deleted {
            q.push_str(&format!(" - countIf({c})"));
        }
        q.push_str(&format!(" FROM {db}.{}", s.from));
        let want = fl.number(&q).await;
        let db = match s.target.as_deref() {
            None => &pg,
            Some("staging") => &pg_staging,
            Some(other) => panic!("sync {}: unexpected target {other}", s.name),
        };
        let got: i64 = db
            .query_one(
                &format!("SELECT count(*) FROM \"{schema}\".\"{}\"", s.postgres.table),
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("sync {}: {e}", s.name))
            .get(0);
        assert_eq!(got as u64, want, "sync {} -> {}", s.name, s.postgres.table);
        assert!(want > 0, "sync {}: {} is empty", s.name, s.from);
    }
    // the enrich statements joined the app tables
    for (name, db) in [("production", &pg), ("staging", &pg_staging)] {
        let enriched: i64 = db
            .query_one(
                &format!(
                    "SELECT count(*) FROM {schema}.leaderboard WHERE platform_profile_id IS NOT NULL"
                ),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(
            enriched > 0,
            "{name} leaderboard enrich matched no instagram_account"
        );
    }

    // 8. The requests: the receiver got one POST per row each request's query returns (up to
    //    its limit), to the request's flow. (Bodies may repeat: the queries return rows that
    //    differ only in columns the bodies do not carry.)
    let mut by_flow: BTreeMap<String, u64> = BTreeMap::new();
    let mut posts_received = 0usize;
    while let Ok(body) = posts.try_recv() {
        let v: serde_json::Value = serde_json::from_str(&body).expect("request bodies are JSON");
        *by_flow
            .entry(v["flow"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
        posts_received += 1;
    }
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for r in &plan.requests {
        let rows = fl.number(&format!("SELECT count() FROM ({})", r.sql)).await;
        let rows = r.limit.map_or(rows, |l| rows.min(l));
        let flow = r
            .body
            .split("\"flow\": \"")
            .nth(1)
            .and_then(|x| x.split('"').next())
            .unwrap();
        if rows > 0 {
            *want.entry(flow.to_string()).or_default() += rows;
        }
    }
    assert!(
        !want.is_empty(),
        "no request has rows: the seed is too small to test them"
    );
    assert_eq!(
        by_flow, want,
        "POSTs received per flow vs rows of the requests' queries"
    );
    // and the history says as much
    let hist = &config.history_schema;
    let sent: i64 = pg
        .query_one(
            &format!(
                "SELECT coalesce(sum(rows), 0)::int8 FROM {hist}.steps WHERE kind = 'request'"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(sent as usize, posts_received, "rows recorded as sent");
    eprintln!("flagship: POSTs by flow {by_flow:?}");

    // 9. The next day: the daily batch again (its incremental snapshot models append the last
    //    weeks again) and a sync of one of them; the leaderboards and syncs see no duplicates.
    for s in ["dbt_daily", "sync_insta_account_weekly"] {
        let status = stir_runtime::run_once_with(
            plan.clone(),
            config.clone(),
            s,
            options.clone(),
            std::future::pending(),
        )
        .await
        .unwrap();
        assert_eq!(status, RunStatus::Ok, "second run of {s}");
    }
    // Duplicates counted by each sync's key (from the manifest, not the plan's SQL): in
    // PostgreSQL for every sync, and in ClickHouse for the models the second runs rebuilt.
    let compiled = stir::compile_path(&dir.join("stir.kdl")).expect("the manifest loads");
    let mut keyed = 0;
    for s in &compiled.manifest.syncs {
        let (Some(to), Some(from)) = (&s.to, &s.from) else {
            continue;
        };
        if s.key.is_empty() {
            continue;
        }
        keyed += 1;
        let key: Vec<String> = s.key.iter().map(|k| format!("\"{}\"", k.text)).collect();
        let key = key.join(", ");
        let serving = if s.target.is_some() { &pg_staging } else { &pg };
        let dups: i64 = serving
            .query_one(
                &format!(
                    "SELECT count(*) - (SELECT count(*) FROM (SELECT DISTINCT {key} FROM \"{schema}\".\"{t}\") d) FROM \"{schema}\".\"{t}\"",
                    t = to.text
                ),
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("sync {}: {e}", s.name.text))
            .get(0);
        assert_eq!(
            dups, 0,
            "sync {}: rows of {} with the same key ({key})",
            s.name.text, to.text
        );
        if ["mart_leaderboard", "mart_insta_account_weekly"].contains(&from.text.as_str()) {
            let key: Vec<String> = s.key.iter().map(|k| format!("`{}`", k.text)).collect();
            let dups = fl
                .number(&format!(
                    "SELECT count() - uniqExact(tuple({})) FROM {db}.{}",
                    key.join(", "),
                    from.text
                ))
                .await;
            assert_eq!(
                dups, 0,
                "model {}: rows with the same key after its second run",
                from.text
            );
        }
    }
    assert!(keyed > 10, "{keyed} syncs with a key");
    // The re-run sync holds exactly the rebuilt model's rows.
    let weekly = plan
        .syncs
        .iter()
        .find(|s| s.name == "insta_account_weekly")
        .unwrap();
    let got: i64 = pg
        .query_one(
            &format!(
                "SELECT count(*) FROM \"{schema}\".\"{}\"",
                weekly.postgres.table
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let want = fl
        .number(&format!("SELECT count() FROM {db}.{}", weekly.from))
        .await;
    assert_eq!(
        got as u64, want,
        "insta_account_weekly after its second sync"
    );

    // 10. The history.
    let runs: i64 = pg
        .query_one(
            &format!("SELECT count(*) FROM {hist}.runs WHERE status = 'ok'"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        runs as usize,
        enabled + 2 + 1,
        "every schedule, two again, the bootstrap"
    );
    let table = stir_runtime::history_table(&config, 5, None).await.unwrap();
    assert!(table.starts_with("FIRE (UTC)"), "{table}");

    // Clean up (only on success: a failure leaves everything for a look).
    let _ = wh
        .execute(
            &format!("DROP DATABASE IF EXISTS {db}"),
            &next_id("flagship"),
        )
        .await;
    let _ = pg
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; DROP SCHEMA IF EXISTS {hist} CASCADE"
        ))
        .await;
    let _ = pg_staging
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await;
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("flagship: done in {:.1}s", started.elapsed().as_secs_f64());
}
