//! Sync steps against the real test servers (ClickHouse, PostgreSQL, S3): the happy path with
//! every value class, and faults that must leave the live table intact.
//!
//! Needs `scripts/servers.sh up` and `eval "$(scripts/servers.sh env)"`; without that
//! environment every test here fails and says so.

#[path = "fixtures/sync/harness.rs"]
mod harness;
#[path = "fixtures/tagless_proxy.rs"]
mod tagless_proxy;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate};
use harness::Case;
use stir_runtime::executor::RunStatus;
use stir_runtime::s3::{S3Config, S3};
use stir_runtime::sync::Failpoint;

// ---------------------------------------------------------------------------------------------
// Data: every value class, generated here, written to ClickHouse as TabSeparated, and the
// expected PostgreSQL content computed from the same rows.

#[derive(Debug, Clone)]
struct Row {
    id: u64,
    i64: i64,
    u64: u64,
    f64: Option<f64>,
    s: Option<String>,
    lc: String,
    /// Days since 1970-01-01.
    d: i32,
    /// Seconds since the epoch (UTC).
    dt: i64,
    /// Milliseconds since the epoch (UTC).
    dt64: i64,
    arr: Vec<String>,
    arr_i: Vec<i64>,
    m: Vec<(String, u64)>,
    b: bool,
    /// Scaled by 10^4.
    dec: i64,
}

const STRINGS: &[&str] = &[
    "",
    "\\",
    "\\\\",
    "a\tb",
    "line1\nline2",
    "cr\r\nlf",
    "it's \"quoted\"",
    "\\N",
    "N",
    "NULL",
    "back\\slash\\n not a newline",
    "unicode ✓ 日本語 émoji 🎉",
    "ctrl \u{1}\u{2}\u{7}\u{8}\u{b}\u{c}\u{1b}\u{1f}\u{7f}",
    "{\"json\": [1, 2]}",
    "trailing space ",
    "comma,semi;colon:",
];

const FLOATS: &[f64] = &[
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    -0.0,
    0.0,
    1e300,
    -1e-300,
    5e-324,
    f64::MAX,
    f64::MIN_POSITIVE,
    0.1,
    1.0 / 3.0,
    123456789.125,
];

fn array_values(i: u64) -> Vec<String> {
    let all = [
        "with,comma",
        "with \"quote\"",
        "back\\slash",
        "it's",
        "{brace}",
        "NULL",
        "",
        "tab\there",
        "new\nline",
        "ünï ✓",
    ];
    match i % 4 {
        0 => vec![],
        1 => vec![format!("a{i}")],
        2 => all.iter().map(|s| s.to_string()).collect(),
        _ => vec![format!("x{i}"), all[(i as usize) % all.len()].to_string()],
    }
}

/// Pseudo-random hex (LZ4 finds no repeats in it) with escapes every 100 characters.
fn long_text(seed: u64) -> String {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut s = format!("long {seed} ");
    while s.len() < 1_200_000 {
        for _ in 0..6 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            s.push_str(&format!("{:016x}", x >> 1));
        }
        s.push_str("ab\\c\td\n");
    }
    s
}

fn rows(from: u64, to: u64) -> Vec<Row> {
    (from..to)
        .map(|i| {
            let edge = i % 17 == 0;
            Row {
                id: i,
                i64: match i % 5 {
                    0 => i64::MIN,
                    1 => i64::MAX,
                    _ => (i as i64) * 7919 * if i % 2 == 0 { 1 } else { -1 },
                },
                u64: match i % 4 {
                    0 => u64::MAX,
                    1 => 1 << 63,
                    2 => (1 << 63) - 1,
                    _ => i * 1_000_003,
                },
                f64: if i % 13 == 12 {
                    None
                } else if edge || i < 40 {
                    Some(FLOATS[(i as usize) % FLOATS.len()])
                } else {
                    Some(i as f64 / 7.0)
                },
                s: if i % 500 == 250 {
                    // ~1.4 MB once escaped, and not compressible: a few of these make the
                    // export span several parts whether or not staging compresses.
                    Some(long_text(i))
                } else if i % 11 == 10 {
                    None
                } else if i % 3 == 0 {
                    Some(STRINGS[(i as usize / 3) % STRINGS.len()].to_string())
                } else {
                    Some(format!("row {i} ✓"))
                },
                lc: ["alpha", "beta", "gamma"][(i % 3) as usize].to_string(),
                d: match i % 7 {
                    0 => 0,
                    1 => 65535,
                    2 => 11016, // 2000-02-29
                    _ => 19000 + (i % 400) as i32,
                },
                dt: match i % 6 {
                    0 => 0,
                    1 => 4_102_444_799, // 2099-12-31 23:59:59
                    _ => 1_700_000_000 + i as i64 * 37,
                },
                dt64: match i % 5 {
                    0 => -2_208_988_800_000, // 1900-01-01
                    1 => 1_700_000_000_123,
                    _ => 1_600_000_000_000 + i as i64 * 1001,
                },
                arr: array_values(i),
                arr_i: match i % 3 {
                    0 => vec![],
                    1 => vec![i64::MIN, i64::MAX, 0],
                    _ => vec![i as i64, -(i as i64)],
                },
                m: match i % 3 {
                    0 => vec![],
                    1 => vec![("k".into(), u64::MAX), ("quote\"key".into(), 1)],
                    _ => vec![(format!("n{i}"), i)],
                },
                b: i % 2 == 0,
                dec: ((i as i64 * 123_457) % 100_000_000_000) * if i % 3 == 0 { -1 } else { 1 },
            }
        })
        .collect()
}

fn tsv_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

fn ch_quoted(s: &str) -> String {
    format!(
        "'{}'",
        s.replace('\\', "\\\\")
            .replace('\'', "\\'")
            .replace('\t', "\\t")
            .replace('\n', "\\n")
            .replace('\r', "\\r")
    )
}

fn dec_text(v: i64) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    format!("{sign}{}.{:04}", a / 10_000, a % 10_000)
}

fn tsv(rows: &[Row]) -> String {
    let mut out = String::new();
    for r in rows {
        let f = match r.f64 {
            None => "\\N".to_string(),
            Some(v) if v.is_nan() => "nan".into(),
            Some(v) if v == f64::INFINITY => "inf".into(),
            Some(v) if v == f64::NEG_INFINITY => "-inf".into(),
            Some(v) => format!("{v:?}"),
        };
        let s = r.s.as_deref().map_or("\\N".to_string(), tsv_escape);
        let d = (NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Days::new(r.d as u64))
            .format("%Y-%m-%d");
        let dt = DateTime::from_timestamp(r.dt, 0)
            .unwrap()
            .format("%Y-%m-%d %H:%M:%S");
        let dt64 = DateTime::from_timestamp_millis(r.dt64)
            .unwrap()
            .format("%Y-%m-%d %H:%M:%S%.3f");
        let arr: Vec<String> = r.arr.iter().map(|x| ch_quoted(x)).collect();
        let arr_i: Vec<String> = r.arr_i.iter().map(|x| x.to_string()).collect();
        let m: Vec<String> =
            r.m.iter()
                .map(|(k, v)| format!("{}:{v}", ch_quoted(k)))
                .collect();
        out.push_str(&format!(
            "{}\t{}\t{}\t{f}\t{s}\t{}\t{d}\t{dt}\t{dt64}\t[{}]\t[{}]\t{{{}}}\t{}\t{}\n",
            r.id,
            r.i64,
            r.u64,
            r.lc,
            arr.join(","),
            arr_i.join(","),
            m.join(","),
            r.b,
            dec_text(r.dec)
        ));
    }
    out
}

const VALUES_DDL: &str = "(id UInt64, i64 Int64, u64 UInt64, f64 Nullable(Float64), s Nullable(String), \
    lc LowCardinality(String), d Date, dt DateTime('UTC'), dt64 DateTime64(3, 'UTC'), arr Array(String), \
    arr_i Array(Int64), m Map(String, UInt64), b Bool, dec Decimal(12, 4)) ENGINE = MergeTree ORDER BY id";

/// Create the source tables (values from `rows`, an empty overflow table) and build the models.
async fn seed(c: &Case, rows: &[Row]) {
    c.ch(&format!("CREATE TABLE {}.values_src {VALUES_DDL}", c.src))
        .await;
    c.ch(&format!(
        "CREATE TABLE {}.overflow_src (id UInt64, big UInt64) ENGINE = MergeTree ORDER BY id",
        c.src
    ))
    .await;
    insert(c, rows).await;
    c.build_models().await;
}

async fn insert(c: &Case, rows: &[Row]) {
    for chunk in rows.chunks(2000) {
        c.ch(&format!(
            "INSERT INTO {}.values_src FORMAT TabSeparated\n{}",
            c.src,
            tsv(chunk)
        ))
        .await;
    }
}

/// Rows as PostgreSQL holds them: one comparable line per row.
fn expected(rows: &[Row]) -> Vec<String> {
    let mut out: Vec<(u64, String)> = rows
        .iter()
        .filter(|r| r.id % 1000 != 999)
        .map(|r| {
            let arr_json = serde_json::json!(r.arr_i);
            let m: serde_json::Map<String, serde_json::Value> =
                r.m.iter()
                    .map(|(k, v)| (k.clone(), serde_json::json!(v)))
                    .collect();
            let profile = (r.id % 2 == 0).then(|| format!("p{}", r.id));
            (
                r.id,
                canonical(
                    r.id as i64,
                    r.i64,
                    &r.u64.to_string(),
                    r.f64,
                    r.s.as_deref(),
                    r.s.as_deref().unwrap_or("none"),
                    &r.lc,
                    r.d,
                    r.dt,
                    r.dt64,
                    &r.arr,
                    &arr_json,
                    &serde_json::Value::Object(m),
                    r.b,
                    &dec_text(r.dec),
                    profile.as_deref(),
                ),
            )
        })
        .collect();
    out.sort_by_key(|(id, _)| *id);
    out.into_iter().map(|(_, s)| s).collect()
}

#[allow(clippy::too_many_arguments)]
fn canonical(
    id: i64,
    i64: i64,
    u64: &str,
    f64: Option<f64>,
    s: Option<&str>,
    s_def: &str,
    lc: &str,
    d: i32,
    dt: i64,
    dt64: i64,
    arr: &[String],
    arr_json: &serde_json::Value,
    m: &serde_json::Value,
    b: bool,
    dec: &str,
    profile: Option<&str>,
) -> String {
    let f = match f64 {
        None => "NULL".to_string(),
        Some(v) if v.is_nan() => "NaN".to_string(),
        Some(v) => format!("{v:?} bits={:x}", v.to_bits()),
    };
    format!(
        "id={id} i64={i64} u64={u64} f64={f} s={s:?} s_def={s_def:?} lc={lc} d={d} dt={dt} dt64={dt64} arr={arr:?} arr_json={arr_json} m={m} b={b} dec={dec} profile={profile:?}"
    )
}

/// The PostgreSQL table, canonicalised like [`expected`].
async fn actual(c: &Case, table: &str) -> Vec<String> {
    let rows = c
        .pg
        .query(
            &format!(
                "SELECT id, i64, u64::text, f64::text, s, s_def, lc, (d - date '1970-01-01')::int4, \
                 extract(epoch from dt)::int8, round(extract(epoch from dt64) * 1000)::int8, arr, \
                 arr_json::text, m::text, b, dec::text, profile FROM {} ORDER BY id",
                c.table(table)
            ),
            &[],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            let f: Option<String> = r.get(3);
            let f = f.map(|t| t.parse::<f64>().unwrap_or_else(|_| panic!("float {t}")));
            let arr: Vec<String> = r.get(10);
            let aj: String = r.get(11);
            let m: String = r.get(12);
            canonical(
                r.get(0),
                r.get(1),
                &r.get::<_, String>(2),
                f,
                r.get::<_, Option<String>>(4).as_deref(),
                &r.get::<_, String>(5),
                &r.get::<_, String>(6),
                r.get(7),
                r.get(8),
                r.get(9),
                &arr,
                &serde_json::from_str(&aj).unwrap(),
                &serde_json::from_str(&m).unwrap(),
                r.get(13),
                &r.get::<_, String>(14),
                r.get::<_, Option<String>>(15).as_deref(),
            )
        })
        .collect()
}

async fn assert_matches(c: &Case, rows: &[Row]) {
    let want = expected(rows);
    let got = actual(c, "vals").await;
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(g, w, "row {i} differs (left: PostgreSQL, right: expected)");
    }
    assert_eq!(got.len(), want.len(), "row counts differ");
}

async fn s3(c: &Case) -> S3 {
    let cfg = S3Config::from_env_with(c.config.s3_endpoint.as_deref(), &|k: &str| {
        c.env.get(k).cloned()
    });
    S3::new(cfg, "stir-test").await
}

async fn staging_leftovers(c: &Case, table: &str) -> bool {
    !c.staging_tables(table).await.is_empty()
}

// ---------------------------------------------------------------------------------------------
// Happy path

/// The smallest multipart part S3 (and SeaweedFS) accepts.
const MIN_PART: usize = 5 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_end_to_end_every_value_class_view_and_grants_follow() {
    let c = Case::new("e2e").await;
    let data = rows(0, 3000);
    seed(&c, &data).await;
    // S3's smallest part (5 MiB), so the ~9 MB export is a multipart upload.
    let runner = c.runner(|o| o.sync.part_size = MIN_PART);
    let out = c.sync(&runner, "vals", "e2e-run-1").await.unwrap();
    let want = expected(&data);
    assert_eq!(out.rows, Some(want.len() as u64));
    assert_matches(&c, &data).await;

    // Indexes under their stable names; nothing left behind.
    let idx: Vec<String> = c
        .pg
        .query(
            "SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'vals' ORDER BY 1",
            &[&c.schema],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(idx, ["vals__d_idx", "vals__key", "vals__lc_b_idx"]);
    assert!(c.staging_tables("vals").await.is_empty());
    assert!(!c.pg_exists("vals__stir_old").await);
    let logged: String =
        c.pg.query_one(
            "SELECT relpersistence::text FROM pg_class WHERE oid = to_regclass($1)",
            &[&c.table("vals")],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(logged, "p", "the live table is LOGGED");
    // Vacuumed and analyzed before the swap, as today's DAGs do. (Whether VACUUM can mark the
    // pages all-visible depends on other open transactions, such as the tests running beside
    // this one, so the test asserts that it ran.)
    let (vacuums, analyzed): (i64, bool) = {
        let r =
            c.pg.query_one(
                "SELECT vacuum_count, EXISTS (SELECT 1 FROM pg_stats WHERE schemaname = $2 AND tablename = 'vals') \
                 FROM pg_stat_user_tables WHERE relid = to_regclass($1)",
                &[&c.table("vals"), &c.schema],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(vacuums, 1, "VACUUM ran on the new table");
    assert!(analyzed, "ANALYZE ran");

    // The staged object is in S3, one line per exported row, and no upload is left open.
    let s3 = s3(&c).await;
    // Staged as one LZ4 frame (the default `compression=lz4`).
    let key = format!("{}/vals/e2e-run-1.tsv.lz4", c.prefix);
    let size = s3.head_object(&key).await.unwrap().expect("object exists");
    assert!(size > MIN_PART as u64, "{size} bytes: several parts");
    let mut resp = s3.get_object(&key).await.unwrap();
    let mut object = Vec::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        object.extend_from_slice(&chunk);
    }
    let mut tsv = Vec::new();
    std::io::Read::read_to_end(
        &mut lz4_flex::frame::FrameDecoder::new(&object[..]),
        &mut tsv,
    )
    .expect("an LZ4 frame");
    assert!(tsv.len() > object.len(), "compressed");
    let lines = tsv.iter().filter(|&&b| b == b'\n').count();
    assert_eq!(lines, data.len());
    // What the runtime put in S3, not a key built here: no credential in any object's key.
    let listed = s3.list_objects(&format!("{}/", c.prefix)).await.unwrap();
    assert!(listed.iter().any(|o| o.key == key), "{listed:?}");
    let secret = &c.env["AWS_SECRET_ACCESS_KEY"];
    assert!(
        !listed.iter().any(|o| o.key.contains(secret)),
        "a secret in a key"
    );
    assert!(s3
        .list_multipart(&format!("{}/", c.prefix))
        .await
        .unwrap()
        .is_empty());

    // A view chain and a grant on the live table, then more rows and a run through the
    // runtime's executor (models rebuilt, then the sync).
    c.pg.batch_execute(&format!(
        "CREATE VIEW {s}.vals_view AS SELECT id, s FROM {s}.vals WHERE id >= 0; \
         CREATE VIEW {s}.vals_view_count AS SELECT count(*) AS n FROM {s}.vals_view; \
         GRANT SELECT ON {s}.vals TO PUBLIC; GRANT SELECT ON {s}.vals_view TO PUBLIC; \
         CREATE MATERIALIZED VIEW {s}.vals_mv AS SELECT lc, count(*) AS n FROM {s}.vals GROUP BY lc; \
         CREATE UNIQUE INDEX vals_mv_lc ON {s}.vals_mv (lc); GRANT SELECT ON {s}.vals_mv TO PUBLIC; \
         CREATE VIEW {s}.vals_mv_total AS SELECT sum(n)::int8 AS n FROM {s}.vals_mv; \
         CREATE MATERIALIZED VIEW {s}.vals_mv_top AS SELECT lc, n FROM {s}.vals_mv ORDER BY n DESC LIMIT 3; \
         COMMENT ON MATERIALIZED VIEW {s}.vals_mv_top IS 'the three busiest'; \
         CREATE VIEW {s}.vals_both AS SELECT (SELECT count(*) FROM {s}.vals) - (SELECT n FROM {s}.vals_mv_total) AS diff; \
         CREATE VIEW {s}.vals_safe WITH (security_barrier) AS SELECT id FROM {s}.vals; \
         COMMENT ON TABLE {s}.vals IS 'values, synced'; COMMENT ON COLUMN {s}.vals.s IS 'a string'",
        s = c.schema
    ))
    .await
    .unwrap();
    let more = rows(3000, 3500);
    insert(&c, &more).await;
    let all: Vec<Row> = data.iter().chain(&more).cloned().collect();
    let mut config = c.config.clone();
    config.history_schema = format!("h_{}", c.id);
    let status = stir_runtime::run_once_with(
        (*c.plan).clone(),
        config,
        "nightly",
        stir_runtime::Options {
            runner: Some(Arc::new(c.runner(|_| {}))),
            ..Default::default()
        },
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(status, RunStatus::Ok);
    assert_matches(&c, &all).await;
    let n: i64 =
        c.pg.query_one(&format!("SELECT n FROM {}.vals_view_count", c.schema), &[])
            .await
            .unwrap()
            .get(0);
    assert_eq!(
        n as usize,
        expected(&all).len(),
        "the views read the new table"
    );
    let public_select: bool =
        c.pg.query_one(
            "SELECT has_table_privilege('public', $1, 'SELECT')",
            &[&c.table("vals")],
        )
        .await
        .unwrap()
        .get(0);
    assert!(public_select, "the grant followed the swap");
    // The materialized view was built again on the new table, with its index and grant, and
    // did not keep the old table alive.
    let mv: i64 =
        c.pg.query_one(
            &format!("SELECT sum(n)::int8 FROM {}.vals_mv", c.schema),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        mv as usize,
        expected(&all).len(),
        "the materialized view reads the new table"
    );
    let mv_index: i64 =
        c.pg.query_one(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexname = 'vals_mv_lc'",
            &[&c.schema],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(mv_index, 1, "its index was recreated");
    let mv_select: bool =
        c.pg.query_one(
            "SELECT has_table_privilege('public', $1, 'SELECT')",
            &[&format!("{}.vals_mv", c.schema)],
        )
        .await
        .unwrap()
        .get(0);
    assert!(mv_select, "its grant was recreated");
    // What reads the materialized view came back with it, in order, reading the new rows.
    let (total, diff, top_comment, barrier): (i64, i64, Option<String>, bool) = {
        let r =
            c.pg.query_one(
                &format!(
                    "SELECT (SELECT n FROM {s}.vals_mv_total), (SELECT diff FROM {s}.vals_both)::int8, \
                     obj_description('{s}.vals_mv_top'::regclass, 'pg_class'), \
                     (SELECT coalesce('security_barrier=true' = ANY(reloptions), false) FROM pg_class WHERE oid = '{s}.vals_safe'::regclass)",
                    s = c.schema
                ),
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1), r.get(2), r.get(3))
    };
    assert_eq!(
        total as usize,
        expected(&all).len(),
        "a view on the materialized view reads the new table"
    );
    assert_eq!(
        diff, 0,
        "a view on both the table and the materialized view agrees"
    );
    assert_eq!(
        top_comment.as_deref(),
        Some("the three busiest"),
        "the comment came back"
    );
    assert!(barrier, "the view kept its security_barrier option");
    let (table_comment, column_comment): (Option<String>, Option<String>) = {
        let r =
            c.pg.query_one(
                "SELECT obj_description(to_regclass($1), 'pg_class'), \
                 col_description(to_regclass($1), (SELECT attnum FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 's'))",
                &[&c.table("vals")],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(table_comment.as_deref(), Some("values, synced"));
    assert_eq!(column_comment.as_deref(), Some("a string"));
    // The table it replaced is kept as the backup (one generation, the default).
    assert!(c.pg_exists("vals__stir_old").await);
    c.finish().await;
}

/// DateTimes rendered in Asia/Kolkata and America/New_York arrive in timestamptz columns (and
/// timestamptz[] elements) as the same instants, with PostgreSQL's session in yet another zone;
/// a Date is midnight UTC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamptz_keeps_the_instant_whatever_the_time_zones() {
    let c = Case::new("tz").await;
    let data = rows(0, 500);
    seed(&c, &data).await;
    // The sync's sessions read timestamps without an offset in this zone.
    let mut config = c.config.clone();
    let url = config.postgres_url.clone().unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    config.postgres_url = Some(format!(
        "{url}{sep}options=-c%20TimeZone%3DPacific%2FAuckland"
    ));
    let ctx = c.ctx(config);
    {
        use stir_runtime::step::StepRunner;
        c.runner(|_| {})
            .run_sync(&ctx, "vals_tz", "tz-1")
            .await
            .unwrap();
    }
    let got = c
        .pg
        .query(
            &format!(
                "SELECT id, round(extract(epoch from at_ms) * 1000)::int8, extract(epoch from at_s)::int8, \
                 extract(epoch from on_day)::int8, extract(epoch from at_list[1])::int8, \
                 extract(epoch from day_list[1])::int8 FROM {} ORDER BY id",
                c.table("vals_tz")
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(got.len(), data.len());
    for (r, want) in got.iter().zip(&data) {
        let (id, ms, s, day): (i64, i64, i64, i64) = (r.get(0), r.get(1), r.get(2), r.get(3));
        assert_eq!(id as u64, want.id);
        assert_eq!(ms, want.dt64, "row {id}: DateTime64 in Asia/Kolkata");
        assert_eq!(s, want.dt, "row {id}: DateTime in America/New_York");
        assert_eq!(day, i64::from(want.d) * 86400, "row {id}: Date");
        let (listed, listed_day): (i64, i64) = (r.get(4), r.get(5));
        assert_eq!(listed, want.dt, "row {id}: DateTime in a timestamptz[]");
        assert_eq!(
            listed_day,
            i64::from(want.d) * 86400,
            "row {id}: Date in a timestamptz[]"
        );
    }
    c.finish().await;
}

/// Strings into bytea arrive byte for byte, whatever they hold (backslashes, tabs, newlines,
/// unicode, NUL, bytes that are not UTF-8); NULL stays NULL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytea_keeps_every_byte() {
    let c = Case::new("bytea").await;
    let data = rows(0, 300);
    seed(&c, &data).await;
    c.sync(&c.runner(|_| {}), "vals_bytes", "bytea-1")
        .await
        .unwrap();
    let got =
        c.pg.query(
            &format!("SELECT id, raw FROM {} ORDER BY id", c.table("vals_bytes")),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(got.len(), data.len());
    for (r, want) in got.iter().zip(&data) {
        let raw: Option<Vec<u8>> = r.get(1);
        let want_raw = want.s.as_ref().map(|s| {
            let mut b = s.as_bytes().to_vec();
            b.extend([0u8, 92, 255]);
            b
        });
        assert_eq!(raw, want_raw, "row {}", want.id);
    }
    c.finish().await;
}

/// Upload first, then load from S3, with the staged object LZ4-framed and plain: the object
/// has the format's name and size, and the table matches ClickHouse either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_from_s3_in_both_staging_formats() {
    use stir::manifest::StagingCompression;
    use stir_runtime::sync::LoadMode;
    let mut c = Case::new("froms3").await;
    let data = rows(0, 1800);
    seed(&c, &data).await;
    let s3 = s3(&c).await;
    let mut sizes = Vec::new();
    for (i, compression) in [StagingCompression::Lz4, StagingCompression::None]
        .into_iter()
        .enumerate()
    {
        Arc::make_mut(&mut c.plan)
            .staging
            .as_mut()
            .unwrap()
            .compression = compression;
        // And once with LZ4 on ClickHouse's answers (`STIR_CLICKHOUSE_COMPRESSION=lz4`).
        c.config.clickhouse_lz4 = i == 0;
        let runner = c.runner(|o| {
            o.sync.load = LoadMode::FromS3;
            o.sync.part_size = MIN_PART;
        });
        let run = format!("froms3-{i}");
        let out = c.sync(&runner, "vals", &run).await.unwrap();
        assert_eq!(out.rows, Some(expected(&data).len() as u64));
        assert_matches(&c, &data).await;
        let key = format!(
            "{}/vals/{run}{}",
            c.prefix,
            stir_runtime::staging::suffix(compression)
        );
        let size = s3.head_object(&key).await.unwrap();
        assert!(size.is_some(), "{key} exists");
        sizes.push(size.unwrap());
    }
    assert!(sizes[0] < sizes[1], "LZ4 {} < plain {}", sizes[0], sizes[1]);
    assert!(sizes[1] > MIN_PART as u64, "several parts: {}", sizes[1]);
    c.finish().await;
}

/// `staging s3 keep=2`: after each successful sync only the two newest staged files of the
/// sync stay (this run's among them); a file stir did not write is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_staged_files_beyond_keep_are_deleted() {
    let mut c = Case::new("keep").await;
    let data = rows(0, 300);
    seed(&c, &data).await;
    Arc::make_mut(&mut c.plan).staging.as_mut().unwrap().keep = Some(2);
    let s3 = s3(&c).await;
    let dir = format!("{}/vals/", c.prefix);
    s3.put_object(&format!("{dir}README.txt"), "not stir's".into())
        .await
        .unwrap();
    let runner = c.runner(|_| {});
    let mut keys = Vec::new();
    for i in 0..4 {
        let run = format!("keep-{i}");
        c.sync(&runner, "vals", &run).await.unwrap();
        keys.push(format!("{dir}{run}.tsv.lz4"));
        let mut listed: Vec<String> = s3
            .list_objects(&dir)
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        listed.sort();
        let mut want: Vec<String> = keys.iter().rev().take(2).cloned().collect();
        want.push(format!("{dir}README.txt"));
        want.sort();
        assert_eq!(listed, want, "after run {i}");
    }
    assert_matches(&c, &data).await;
    let prefix = format!("{}/", c.prefix);
    c.finish().await;
    assert!(
        s3.list_objects(&prefix).await.unwrap().is_empty(),
        "the harness cleans its prefix"
    );
}

// ---------------------------------------------------------------------------------------------
// Faults: each leaves the live table as it was, and the next run succeeds.

/// A case with a live `vals` table of `n` rows, already synced once.
async fn live_case(name: &str, n: u64) -> (Case, Vec<Row>) {
    let c = Case::new(name).await;
    let data = rows(0, n);
    seed(&c, &data).await;
    c.sync(&c.runner(|_| {}), "vals", &format!("{name}-setup"))
        .await
        .unwrap();
    (c, data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_postgres_backend_killed_during_copy() {
    let (c, data) = live_case("pgkill", 1500).await;
    let before = c.pg_digest("vals").await;
    insert(&c, &rows(1500, 1700)).await;
    c.build_models().await;
    let runner =
        c.runner(|o| o.sync.failpoint = Some(Failpoint::PauseDuringCopy(Duration::from_secs(5))));
    let sync = c.sync(&runner, "vals", "pgkill-1");
    let killer = async {
        for _ in 0..100 {
            let killed: i64 =
                c.pg.query_one(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                     WHERE application_name = 'stir sync vals pgkill-1' AND query LIKE $1",
                    &[&format!("COPY \"{}\".%", c.schema)],
                )
                .await
                .unwrap()
                .get(0);
            if killed > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the COPY never showed up in pg_stat_activity");
    };
    let (result, ()) = tokio::join!(sync, killer);
    let err = result.unwrap_err().to_string();
    eprintln!("expected failure: {err}");
    assert!(err.contains("sync `vals`") && err.contains("COPY"), "{err}");
    assert!(!err.contains(&c.env["STIR_CLICKHOUSE_PASSWORD"]));
    assert_eq!(c.pg_digest("vals").await, before, "live table untouched");
    assert!(
        !staging_leftovers(&c, "vals").await,
        "cleanup dropped the staging table"
    );
    let out = c.sync(&c.runner(|_| {}), "vals", "pgkill-2").await.unwrap();
    let all: Vec<Row> = data.into_iter().chain(rows(1500, 1700)).collect();
    assert_eq!(out.rows, Some(expected(&all).len() as u64));
    assert_matches(&c, &all).await;
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_bad_row_fails_copy_uint64_above_int8() {
    let c = Case::new("badrow").await;
    seed(&c, &rows(0, 10)).await;
    c.ch(&format!(
        "INSERT INTO {}.overflow_src SELECT number, number * 1000 FROM numbers(500)",
        c.src
    ))
    .await;
    c.build_models().await;
    let runner = c.runner(|_| {});
    c.sync(&runner, "overflow", "badrow-1").await.unwrap();
    let before = c.pg_digest("overflow").await;
    c.ch(&format!(
        "INSERT INTO {}.overflow_src VALUES (1000, 18446744073709551615)",
        c.src
    ))
    .await;
    c.build_models().await;
    let err = c
        .sync(&runner, "overflow", "badrow-2")
        .await
        .unwrap_err()
        .to_string();
    eprintln!("expected failure: {err}");
    assert!(err.contains("out of range"), "{err}");
    // The COPY context names the line and column, not the value.
    assert!(err.contains("line 501, column big]"), "{err}");
    assert_eq!(c.pg_digest("overflow").await, before);
    assert!(!staging_leftovers(&c, "overflow").await);
    c.ch(&format!("TRUNCATE TABLE {}.overflow_src", c.src))
        .await;
    c.ch(&format!(
        "INSERT INTO {}.overflow_src SELECT number, 9223372036854775807 - number FROM numbers(600)",
        c.src
    ))
    .await;
    c.build_models().await;
    let out = c.sync(&runner, "overflow", "badrow-3").await.unwrap();
    assert_eq!(out.rows, Some(600));
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_s3_unreachable_retries_then_fails_cleanly() {
    let (c, data) = live_case("s3down", 300).await;
    let before = c.pg_digest("vals").await;
    let mut config = c.config.clone();
    // A closed loopback port.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    config.s3_endpoint = Some(format!("http://127.0.0.1:{port}"));
    let runner = c.runner(|o| o.sync.s3_attempts = 3);
    let t0 = std::time::Instant::now();
    let err = runner_sync(&c, &runner, config, "s3down-1")
        .await
        .unwrap_err()
        .to_string();
    eprintln!("expected failure: {err}");
    assert!(err.contains("after 3 attempts"), "{err}");
    assert!(!err.contains(&c.env["AWS_SECRET_ACCESS_KEY"]), "{err}");
    assert!(
        t0.elapsed() >= Duration::from_millis(150),
        "it retried with a backoff"
    );
    assert_eq!(c.pg_digest("vals").await, before);
    assert!(!staging_leftovers(&c, "vals").await);
    c.sync(&runner, "vals", "s3down-2").await.unwrap();
    assert_matches(&c, &data).await;
    c.finish().await;
}

/// ClickHouse fails after part of the answer was sent: it writes its exception into the 200
/// answer's body and cuts the answer (docs/servers.md). The sync fails with ClickHouse's
/// message and the query_id; nothing of the answer is loaded into PostgreSQL or left in S3 as
/// an object, the live table is untouched, and the next run succeeds. Three times: straight to the
/// server; through a proxy that drops the `X-ClickHouse-Exception-Tag` header, where the
/// `clickhouse` crate cannot see the block and only the runtime's own reading finds it; and
/// through one that also ends the cut body cleanly, where nothing but that reading tells the
/// answer from a complete one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_clickhouse_fails_in_the_middle_of_the_export() {
    let (mut c, data) = live_case("chcut", 3000).await;
    let before = c.pg_digest("vals").await;
    let good = c.plan.clone();
    let sync = Arc::make_mut(&mut c.plan)
        .syncs
        .iter_mut()
        .find(|s| s.name == "vals")
        .unwrap();
    assert!(sync.clickhouse.select.contains("\nSETTINGS "));
    // Small blocks and an error on a late row, when the first blocks are sent (and loaded).
    // ARRAY JOIN keeps ClickHouse from evaluating the condition on the primary key's index
    // ranges up front (it would fail before sending anything).
    sync.clickhouse.select = sync.clickhouse.select.replace(
        "\nSETTINGS ",
        "\nARRAY JOIN range(2) AS stir_k WHERE throwIf(stir_k = 1 AND id >= 2900, 'cut short') = 0\n\
         SETTINGS max_block_size = 50, max_threads = 1, ",
    );
    let mut proxied = c.config.clone();
    proxied.clickhouse_url = tagless_proxy::start(&c.config.clickhouse_url, false).await;
    let mut reframed = c.config.clone();
    reframed.clickhouse_url = tagless_proxy::start(&c.config.clickhouse_url, true).await;
    for (run, config) in [
        ("chcut-1", c.config.clone()),
        ("chcut-2", proxied),
        ("chcut-3", reframed),
    ] {
        let err = runner_sync(&c, &c.runner(|_| {}), config, run)
            .await
            .unwrap_err()
            .to_string();
        eprintln!("expected failure ({run}): {err}");
        assert!(
            err.contains("ClickHouse failed after sending")
                && !err.contains("after sending 0 rows")
                && err.contains("Code: 395")
                && err.contains("cut short")
                && err.contains(&format!(
                    "query_id `{}",
                    stir_runtime::run::query_prefix(&c.plan.warehouse.database, run)
                )),
            "{run}: the error names ClickHouse's message and the query: {err}"
        );
        assert!(!err.contains("__exception__"), "{err}");
        assert_eq!(
            c.pg_digest("vals").await,
            before,
            "{run}: live table untouched"
        );
        assert!(!staging_leftovers(&c, "vals").await, "{run}");
        let s3 = s3(&c).await;
        let objects = s3.list_objects(&format!("{}/", c.prefix)).await.unwrap();
        assert!(
            !objects.iter().any(|o| o.key.contains(run)),
            "{run}: no staged object: {:?}",
            objects.iter().map(|o| &o.key).collect::<Vec<_>>()
        );
        assert!(s3
            .list_multipart(&format!("{}/", c.prefix))
            .await
            .unwrap()
            .is_empty());
    }
    c.plan = good;
    c.sync(&c.runner(|_| {}), "vals", "chcut-4").await.unwrap();
    assert_matches(&c, &data).await;
    c.finish().await;
}

/// A trigger on the live table and a foreign key from another table would be lost (or left
/// pointing at the backup) by the swap: the sync refuses before exporting anything and names
/// them; once they are gone the next run succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_what_the_swap_cannot_carry_is_refused_before_the_export() {
    let (c, data) = live_case("uncarried", 400).await;
    let s = &c.schema;
    c.pg.batch_execute(&format!(
        "CREATE FUNCTION {s}.noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$; \
         CREATE TRIGGER vals_audit BEFORE UPDATE ON {s}.vals FOR EACH ROW EXECUTE FUNCTION {s}.noop(); \
         CREATE TABLE {s}.child (vals_id int8 REFERENCES {s}.vals (id))"
    ))
    .await
    .unwrap();
    let before = c.pg_digest("vals").await;
    let err = c
        .sync(&c.runner(|_| {}), "vals", "uncarried-1")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("trigger vals_audit")
            && err.contains(&format!("foreign key child_vals_id_fkey of {s}.child"))
            && err.contains("help:"),
        "{err}"
    );
    assert_eq!(c.pg_digest("vals").await, before, "live table untouched");
    assert!(!staging_leftovers(&c, "vals").await);
    let key = format!("{}/vals/uncarried-1.tsv.lz4", c.prefix);
    assert_eq!(
        s3(&c).await.head_object(&key).await.unwrap(),
        None,
        "nothing exported"
    );
    c.pg.batch_execute(&format!(
        "DROP TRIGGER vals_audit ON {s}.vals; DROP TABLE {s}.child"
    ))
    .await
    .unwrap();
    c.sync(&c.runner(|_| {}), "vals", "uncarried-2")
        .await
        .unwrap();
    assert_matches(&c, &data).await;
    c.finish().await;
}

async fn runner_sync(
    c: &Case,
    runner: &stir_runtime::runner::Runner,
    config: stir_runtime::Config,
    run_id: &str,
) -> Result<stir_runtime::step::StepOutcome, stir_runtime::step::StepError> {
    use stir_runtime::step::StepRunner;
    let ctx = c.ctx(config);
    runner.run_sync(&ctx, "vals", run_id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_max_shrink_refuses_the_swap() {
    let (c, _) = live_case("shrink", 1000).await;
    let before = c.pg_digest("vals").await;
    c.ch(&format!("TRUNCATE TABLE {}.values_src", c.src)).await;
    let few = rows(0, 300);
    insert(&c, &few).await;
    c.build_models().await;
    let runner = c.runner(|_| {});
    let err = c
        .sync(&runner, "vals", "shrink-1")
        .await
        .unwrap_err()
        .to_string();
    eprintln!("expected failure: {err}");
    // 1000 rows minus the deleted id 999 live, 300 new: 70% fewer, more than 50%.
    assert!(
        err.contains("the new table has 300 rows")
            && err.contains("has 999")
            && err.contains("max-shrink is 50%"),
        "{err}"
    );
    assert_eq!(c.pg_digest("vals").await, before);
    assert!(!staging_leftovers(&c, "vals").await);
    // Back to a normal size: the next run swaps.
    let ok = rows(0, 900);
    c.ch(&format!("TRUNCATE TABLE {}.values_src", c.src)).await;
    insert(&c, &ok).await;
    c.build_models().await;
    c.sync(&runner, "vals", "shrink-2").await.unwrap();
    assert_matches(&c, &ok).await;
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_type_mismatch_refused_before_postgres() {
    use stir_runtime::step::StepRunner;
    let c = Case::new("types").await;
    seed(&c, &rows(0, 50)).await;
    c.pg.batch_execute(&format!(
        "CREATE TABLE {s}.vals_typed (id int8, s int8); INSERT INTO {s}.vals_typed VALUES (1, 1), (2, 2)",
        s = c.schema
    ))
    .await
    .unwrap();
    let before = c.pg_digest("vals_typed").await;
    let err = c
        .sync(&c.runner(|_| {}), "vals_typed", "types-1")
        .await
        .unwrap_err()
        .to_string();
    eprintln!("expected failure: {err}");
    assert!(
        err.contains("column `s`") && err.contains("int8") && err.contains("Nullable(String)"),
        "{err}"
    );
    assert!(err.contains("before touching PostgreSQL"), "{err}");
    assert_eq!(c.pg_digest("vals_typed").await, before);
    assert!(!staging_leftovers(&c, "vals_typed").await);
    // Nothing was staged: no object and no open upload under the case's prefix.
    let s3 = s3(&c).await;
    let prefix = format!("{}/", c.prefix);
    assert!(s3.list_objects(&prefix).await.unwrap().is_empty());
    assert!(s3.list_multipart(&prefix).await.unwrap().is_empty());
    // And neither server was needed for the refusal: with PostgreSQL and S3 on a port where
    // nothing listens, the same refusal comes, so no statement (no DDL, no lock, no table
    // created and dropped) and no upload can have come before it.
    let mut unreachable = c.config.clone();
    unreachable.postgres_url = Some("postgres://stir@127.0.0.1:9/stir?connect_timeout=2".into());
    unreachable.s3_endpoint = Some("http://127.0.0.1:9".into());
    let runner = c.runner(|o| o.sync.s3_attempts = 1);
    let offline = runner
        .run_sync(&c.ctx(unreachable), "vals_typed", "types-2")
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(offline.replace("types-2", "types-1"), err);
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_simulated_kills_then_next_run_cleans_and_succeeds() {
    let (c, data) = live_case("kills", 2000).await;
    let s3 = s3(&c).await;
    let prefix = format!("{}/vals/", c.prefix);
    let more = rows(2000, 2300);
    insert(&c, &more).await;
    c.build_models().await;
    let all: Vec<Row> = data.iter().chain(&more).cloned().collect();
    let mut live = c.pg_digest("vals").await;
    for (i, fp) in [
        Failpoint::AfterExport,
        Failpoint::DuringCopy,
        Failpoint::BeforeSwap,
    ]
    .into_iter()
    .enumerate()
    {
        let runner = c.runner(|o| {
            o.sync.failpoint = Some(fp);
            o.sync.part_size = MIN_PART;
        });
        let err = c
            .sync(&runner, "vals", &format!("kills-{i}"))
            .await
            .unwrap_err()
            .to_string();
        eprintln!("expected failure: {err}");
        assert!(err.contains("failpoint"), "{err}");
        assert_eq!(
            c.pg_digest("vals").await,
            live,
            "{fp:?}: live table untouched"
        );
        // What a killed process leaves behind.
        match fp {
            Failpoint::DuringCopy => {
                let open = s3.list_multipart(&prefix).await.unwrap();
                assert!(!open.is_empty(), "an unfinished multipart upload is left");
                assert!(staging_leftovers(&c, "vals").await);
            }
            Failpoint::BeforeSwap => assert!(staging_leftovers(&c, "vals").await),
            _ => {}
        }
        let out = c
            .sync(
                &c.runner(|o| o.sync.part_size = MIN_PART),
                "vals",
                &format!("kills-{i}-next"),
            )
            .await
            .unwrap();
        assert_eq!(out.rows, Some(expected(&all).len() as u64), "{fp:?}");
        assert!(!staging_leftovers(&c, "vals").await);
        assert!(
            s3.list_multipart(&prefix).await.unwrap().is_empty(),
            "{fp:?}: stale upload aborted"
        );
        assert_matches(&c, &all).await;
        live = c.pg_digest("vals").await;
    }
    c.finish().await;
}

/// A real SIGKILL of `stir-runtime --once` paused just before the swap (debug builds read
/// `STIR_FAILPOINT`), then a new run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_sigkill_of_the_binary_before_the_swap() {
    let (c, _) = live_case("sigkill", 500).await;
    let before = c.pg_digest("vals").await;
    let more = rows(500, 800);
    insert(&c, &more).await;
    let (mut child, seen) = binary_paused_at(&c, "sync:pause_before_swap", "BeforeSwap").await;
    assert!(!seen
        .iter()
        .any(|l| l.contains(&c.env["AWS_SECRET_ACCESS_KEY"])));
    child.kill().await.unwrap(); // SIGKILL
    assert!(
        staging_leftovers(&c, "vals").await,
        "the killed run left its staging table"
    );
    assert_eq!(c.pg_digest("vals").await, before);
    let out = c
        .sync(&c.runner(|_| {}), "vals", "sigkill-next")
        .await
        .unwrap();
    let all: Vec<Row> = rows(0, 800);
    assert_eq!(out.rows, Some(expected(&all).len() as u64));
    assert!(!staging_leftovers(&c, "vals").await);
    c.finish().await;
}

// ---------------------------------------------------------------------------------------------
// One writer per target, the staging table re-checked in the swap, and real kills at every
// point where a sync holds something.

/// Run `sync` on a task; answers its handle.
fn spawn_sync(
    c: &Arc<Case>,
    runner: stir_runtime::runner::Runner,
    run_id: &str,
) -> tokio::task::JoinHandle<Result<stir_runtime::step::StepOutcome, stir_runtime::step::StepError>>
{
    let c = c.clone();
    let run_id = run_id.to_string();
    tokio::spawn(async move { c.sync(&runner, "vals", &run_id).await })
}

/// Wait until a run's staging table is LOGGED (the run is past SET LOGGED).
async fn wait_for_logged_staging(c: &Case) -> String {
    for _ in 0..600 {
        for t in c.staging_tables("vals").await {
            if c.pg_persistence(&t).await == "p" {
                return t;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no run reached its finished staging table");
}

/// Two runs of one sync: while the first is paused before its swap, a second (whose export
/// would fail half way) is refused before it touches anything, naming the other; the first
/// then swaps, and the live table is its result, whole and LOGGED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_of_one_sync_never_interleave() {
    let (c, data) = live_case("onewriter", 600).await;
    let before = c.pg_digest("vals").await;
    insert(&c, &rows(600, 900)).await;
    c.build_models().await;
    let mut c = c;
    let mut failing = (*c.plan).clone();
    let good = c.plan.clone();
    failing
        .syncs
        .iter_mut()
        .find(|s| s.name == "vals")
        .unwrap()
        .clickhouse
        .select = good
        .syncs
        .iter()
        .find(|s| s.name == "vals")
        .unwrap()
        .clickhouse
        .select
        .replace(
            "\nSETTINGS ",
            "\nWHERE throwIf(id >= 800, 'cut short') = 0\nSETTINGS max_block_size = 50, ",
        );
    let c = Arc::new({
        c.plan = good;
        c
    });
    let first = spawn_sync(
        &c,
        c.runner(|o| o.sync.failpoint = Some(Failpoint::PauseBeforeSwap(Duration::from_secs(6)))),
        "onewriter-a",
    );
    let staging = wait_for_logged_staging(&c).await;
    let ctx = {
        let mut ctx = c.ctx(c.config.clone());
        ctx.plan = Arc::new(failing);
        ctx
    };
    use stir_runtime::step::StepRunner;
    let err = c
        .runner(|_| {})
        .run_sync(&ctx, "vals", "onewriter-b")
        .await
        .unwrap_err()
        .to_string();
    eprintln!("expected refusal: {err}");
    assert!(err.contains("another run is syncing"), "{err}");
    assert!(err.contains("stir sync vals"), "names the holder: {err}");
    assert_eq!(c.pg_digest("vals").await, before, "live table untouched");
    assert_eq!(
        c.staging_tables("vals").await,
        [staging],
        "only the first run's staging"
    );
    assert!(
        s3(&c)
            .await
            .head_object(&format!("{}/vals/onewriter-b.tsv.lz4", c.prefix))
            .await
            .unwrap()
            .is_none(),
        "the refused run exported nothing"
    );
    first.await.unwrap().unwrap();
    let all: Vec<Row> = data.iter().cloned().chain(rows(600, 900)).collect();
    assert_matches(&c, &all).await;
    assert_eq!(
        c.pg_persistence("vals").await,
        "p",
        "the live table is LOGGED"
    );
    assert!(c.staging_tables("vals").await.is_empty());
    Arc::try_unwrap(c).ok().unwrap().finish().await;
}

/// The swap takes the staging table only if it is the one this run loaded, with the rows it
/// counted: rows deleted from it, or a table put in its place, while the run waited before
/// its swap, make the swap refuse, and the live table stays as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_swap_refuses_a_staging_table_changed_under_it() {
    let (c, _) = live_case("restage", 500).await;
    let before = c.pg_digest("vals").await;
    insert(&c, &rows(500, 700)).await;
    c.build_models().await;
    let c = Arc::new(c);
    for (i, tamper) in [
        "DELETE FROM {t} WHERE id < 10",
        "DROP TABLE {t}; CREATE TABLE {t} (LIKE {live})",
    ]
    .into_iter()
    .enumerate()
    {
        let paused = Arc::new(tokio::sync::Notify::new());
        let run = spawn_sync(
            &c,
            c.runner(|o| {
                o.sync.failpoint = Some(Failpoint::PauseBeforeSwap(Duration::from_secs(3)));
                o.sync.paused = Some(paused.clone());
            }),
            &format!("restage-{i}"),
        );
        paused.notified().await;
        let staging = wait_for_logged_staging(&c).await;
        c.pg.batch_execute(
            &tamper
                .replace("{t}", &c.table(&format!("\"{staging}\"")))
                .replace("{live}", &c.table("vals")),
        )
        .await
        .unwrap();
        let err = run.await.unwrap().unwrap_err().to_string();
        eprintln!("expected refusal: {err}");
        assert!(
            err.contains("refusing the swap")
                && (err.contains("but this run counted")
                    || err.contains("is not the one this run loaded")),
            "{err}"
        );
        assert_eq!(c.pg_digest("vals").await, before, "live table untouched");
        assert_eq!(c.pg_persistence("vals").await, "p");
    }
    Arc::try_unwrap(c).ok().unwrap().finish().await;
}

/// Start `stir-runtime plan.json --once nightly` paused at `failpoint` (a debug build reads
/// STIR_FAILPOINT) and answer it, with its log so far, once it says it is there.
async fn binary_paused_at(
    c: &Case,
    failpoint: &str,
    point: &str,
) -> (tokio::process::Child, Vec<String>) {
    // --force: an earlier killed run of the case is still `running` in the history.
    harness::binary_paused_at(c, &["--once", "nightly", "--force"], failpoint, point).await
}

/// Sessions holding the case's target lock, and sessions waiting for a lock on its live table.
async fn sync_backends(c: &Case) -> (i64, i64) {
    let live = format!("\"{}\".\"vals\"", c.schema);
    let row =
        c.pg.query_one(
            "SELECT count(*) FILTER (WHERE locktype = 'advisory' AND classid = 1398032722 \
               AND objid = hashtext($1)::oid AND objsubid = 2), \
             count(*) FILTER (WHERE NOT granted AND relation = to_regclass($1)) FROM pg_locks",
            &[&live],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// A real SIGKILL of the binary during enrich, between SET LOGGED and the indexes, and inside
/// the swap's transaction (its locks held): each time the live table stays whole, LOGGED and
/// readable at once, no session of the killed run stays behind, and the next run succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_enrich_finish_and_inside_the_swap_leaves_the_live_table_whole() {
    let (c, data) = live_case("killpoints", 500).await;
    let mut all = data;
    for (i, (fp, point)) in [
        ("sync:pause_in_transform", "InTransform"),
        ("sync:pause_in_finish", "InFinish"),
        ("sync:pause_in_swap", "InSwap"),
    ]
    .into_iter()
    .enumerate()
    {
        let before = c.pg_digest("vals").await;
        let more = rows(500 + 100 * i as u64, 600 + 100 * i as u64);
        insert(&c, &more).await;
        let (mut child, _) = binary_paused_at(&c, fp, point).await;
        assert_eq!(
            sync_backends(&c).await,
            (1, 0),
            "{point}: the paused run holds the target"
        );
        child.kill().await.unwrap(); // SIGKILL
        let t = std::time::Instant::now();
        // Readable at once: the killed session's transaction is rolled back when its
        // connection drops, releasing the lock.
        c.pg.batch_execute("SET statement_timeout = 10000")
            .await
            .unwrap();
        assert_eq!(
            c.pg_digest("vals").await,
            before,
            "{point}: live table whole"
        );
        c.pg.batch_execute("SET statement_timeout = 0")
            .await
            .unwrap();
        eprintln!("{point}: live table read {:?} after the kill", t.elapsed());
        assert_eq!(c.pg_persistence("vals").await, "p", "{point}: LOGGED");
        let mut left = (1, 1);
        for _ in 0..50 {
            left = sync_backends(&c).await;
            if left == (0, 0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            left,
            (0, 0),
            "{point}: no session of the killed run is left"
        );
        all.extend(more);
        c.sync(&c.runner(|_| {}), "vals", &format!("killpoints-next-{i}"))
            .await
            .unwrap();
        assert_matches(&c, &all).await;
        assert!(
            c.staging_tables("vals").await.is_empty(),
            "{point}: leftover dropped"
        );
    }
    c.finish().await;
}

/// A live case of 500 rows with `views` made on it (`{s}` stands for the schema), 300 rows
/// more in the model, and a real run SIGKILLed between the table's swap and the rebuild of the
/// materialized views. Answers the case, every row now live, and the row count before.
async fn killed_before_the_rebuild(name: &str, views: &str) -> (Case, Vec<Row>, i64) {
    let (c, data) = live_case(name, 500).await;
    c.pg.batch_execute(&views.replace("{s}", &c.schema))
        .await
        .unwrap();
    let more = rows(500, 800);
    insert(&c, &more).await;
    let (mut child, _) = binary_paused_at(&c, "sync:pause_before_rebuild", "BeforeRebuild").await;
    child.kill().await.unwrap();
    let old = expected(&data).len() as i64;
    (c, data.into_iter().chain(more).collect(), old)
}

/// The one `int8` that `sql` answers.
async fn pg_i64(c: &Case, sql: String) -> i64 {
    c.pg.query_one(&sql, &[]).await.unwrap().get(0)
}

/// Materialized views (one directly on the table, one over a plain view over it, one over
/// another) are rebuilt after the table's swap. A SIGKILL between the two leaves the table new
/// and the views readable with the previous rows; the next run finishes the rebuild first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_before_the_materialized_views_are_rebuilt_is_finished_by_the_next_run() {
    let (c, all, old) = killed_before_the_rebuild(
        "mvkill",
        "CREATE MATERIALIZED VIEW {s}.mv_direct AS SELECT count(*) AS n FROM {s}.vals; \
         CREATE VIEW {s}.v_plain AS SELECT id FROM {s}.vals; \
         CREATE MATERIALIZED VIEW {s}.mv_over_view AS SELECT count(*) AS n FROM {s}.v_plain; \
         CREATE UNIQUE INDEX mv_over_view_n ON {s}.mv_over_view (n); \
         CREATE MATERIALIZED VIEW {s}.mv_over_mv AS SELECT n FROM {s}.mv_direct; \
         CREATE VIEW {s}.v_over_mv AS SELECT n FROM {s}.mv_over_mv",
    )
    .await;
    let s = c.schema.clone();
    let n = |sql: String| pg_i64(&c, sql);
    let new = expected(&all).len() as i64;
    assert_matches(&c, &all).await;
    for v in ["mv_direct", "mv_over_view", "v_over_mv"] {
        assert_eq!(
            n(format!("SELECT n FROM {s}.{v}")).await,
            old,
            "{v}: the previous rows, readable"
        );
    }
    let note: String =
        c.pg.query_one(
            &format!("SELECT obj_description('{s}.vals__stir_old'::regclass, 'pg_class')"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        note.starts_with("stir: materialized views to rebuild"),
        "{note}"
    );
    // The next run: no new rows, but it must first finish the killed run's rebuild.
    c.sync(&c.runner(|_| {}), "vals", "mvkill-next")
        .await
        .unwrap();
    for v in ["mv_direct", "mv_over_view", "mv_over_mv", "v_over_mv"] {
        assert_eq!(
            n(format!("SELECT n FROM {s}.{v}")).await,
            new,
            "{v}: rebuilt on the new rows"
        );
    }
    let leftovers: i64 = n(format!(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = '{s}' AND ((c.relkind = 'm' AND c.relname LIKE '%\\_\\_stir\\_old') OR c.relname LIKE '%\\_\\_stir\\_new%')"
    ))
    .await;
    assert_eq!(
        leftovers, 0,
        "the old materialized views and the staging tables are gone"
    );
    // The backup is kept (one generation, the default), its note cleared.
    let note: Option<String> =
        c.pg.query_one(
            &format!("SELECT obj_description('{s}.vals__stir_old'::regclass, 'pg_class')"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(note, None, "the backup's note is cleared");
    let idx: i64 = n(format!(
        "SELECT count(*) FROM pg_indexes WHERE schemaname = '{s}' AND indexname = 'mv_over_view_n'"
    ))
    .await;
    assert_eq!(idx, 1, "the index kept its name");
    c.finish().await;
}

/// What a person fixed by hand between a killed run and the next is left as they made it: the
/// next run rebuilds only the materialized views still on the backup (`mv_direct`), not one
/// dropped by hand (`mv_gone`, which stays dropped) nor one made anew on the live table
/// (`mv_fixed`, whose new definition stays), and succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_kill_before_the_rebuild_views_fixed_by_hand_are_left_as_they_are() {
    let (c, all, _) = killed_before_the_rebuild(
        "mvhand",
        "CREATE MATERIALIZED VIEW {s}.mv_direct AS SELECT count(*) AS n FROM {s}.vals; \
         CREATE MATERIALIZED VIEW {s}.mv_gone AS SELECT count(*) AS n FROM {s}.vals; \
         CREATE MATERIALIZED VIEW {s}.mv_fixed AS SELECT count(*) AS n FROM {s}.vals",
    )
    .await;
    let s = c.schema.clone();
    let n = |sql: String| pg_i64(&c, sql);
    let new = expected(&all).len() as i64;
    c.pg.batch_execute(&format!(
        "DROP MATERIALIZED VIEW {s}.mv_gone; DROP MATERIALIZED VIEW {s}.mv_fixed; \
         CREATE MATERIALIZED VIEW {s}.mv_fixed AS SELECT count(*) AS n, 1 AS by_hand FROM {s}.vals"
    ))
    .await
    .unwrap();
    c.sync(&c.runner(|_| {}), "vals", "mvhand-next")
        .await
        .unwrap();
    assert_eq!(
        n(format!("SELECT n FROM {s}.mv_direct")).await,
        new,
        "rebuilt on the new rows"
    );
    assert_eq!(
        n(format!(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                   WHERE n.nspname = '{s}' AND c.relname LIKE 'mv\\_gone%'"
        ))
        .await,
        0,
        "mv_gone stays dropped"
    );
    assert_eq!(
        n(format!("SELECT by_hand::int8 FROM {s}.mv_fixed")).await,
        1,
        "mv_fixed keeps the definition made by hand"
    );
    assert_eq!(n(format!("SELECT n FROM {s}.mv_fixed")).await, new);
    c.finish().await;
}

/// A materialized view over a plain view over the table, left with the previous rows by a
/// kill before the rebuild: the next run rebuilds it before anything else, though it no longer
/// reads the backup (the swap re-pointed the plain view), so a next run that fails before its
/// own swap leaves it current, and the note gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_kill_before_the_rebuild_a_view_over_a_plain_view_is_rebuilt_first() {
    let (c, all, old) = killed_before_the_rebuild(
        "mvplain",
        "CREATE MATERIALIZED VIEW {s}.mv_direct AS SELECT count(*) AS n FROM {s}.vals; \
         CREATE VIEW {s}.v_plain AS SELECT id FROM {s}.vals; \
         CREATE MATERIALIZED VIEW {s}.mv_over_view AS SELECT count(*) AS n FROM {s}.v_plain",
    )
    .await;
    let s = c.schema.clone();
    let n = |sql: String| pg_i64(&c, sql);
    let new = expected(&all).len() as i64;
    assert_eq!(n(format!("SELECT n FROM {s}.mv_over_view")).await, old);
    // The next run finishes the rebuild, then stops before its own swap.
    let stopped = c.runner(|o| o.sync.failpoint = Some(Failpoint::BeforeSwap));
    let err = c
        .sync(&stopped, "vals", "mvplain-next")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("failpoint"), "{err}");
    for v in ["mv_direct", "mv_over_view"] {
        assert_eq!(
            n(format!("SELECT n FROM {s}.{v}")).await,
            new,
            "{v}: rebuilt on the live rows"
        );
    }
    let note: Option<String> =
        c.pg.query_one(
            &format!("SELECT obj_description(to_regclass('{s}.vals__stir_old'), 'pg_class')"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        note.is_none_or(|n| !n.starts_with("stir: materialized views to rebuild")),
        "the note is gone"
    );
    c.finish().await;
}

// ---------------------------------------------------------------------------------------------
// No statement outlives its run on the server.

/// The `vals` sync of `c`'s plan with a slow statement (a 60 s sleep) among its transforms.
fn with_slow_transform(c: &Case) -> Arc<stir::plan::Plan> {
    let mut plan = (*c.plan).clone();
    let sync = plan.syncs.iter_mut().find(|s| s.name == "vals").unwrap();
    sync.postgres
        .transform
        .insert(0, "SELECT pg_sleep(60)".to_string());
    Arc::new(plan)
}

/// Sessions of the sync run `run_id` running the slow statement now.
async fn sync_statements_running(c: &Case, run_id: &str) -> i64 {
    c.pg.query_one(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' \
         AND query = 'SELECT pg_sleep(60)'",
        &[&format!("stir sync vals {run_id}")],
    )
    .await
    .unwrap()
    .get(0)
}

async fn wait_for_sync_statements(c: &Case, run_id: &str, n: i64, within: Duration) -> bool {
    let t = std::time::Instant::now();
    while t.elapsed() < within {
        if sync_statements_running(c, run_id).await == n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// A run's window bounds every PostgreSQL statement of its syncs: a 60 s statement in a run
/// with 4 s left is stopped by the server at the deadline, and the sync fails cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_end_at_the_runs_deadline_on_the_server() {
    let (c, _) = live_case("stmtdeadline", 300).await;
    let before = c.pg_digest("vals").await;
    let mut ctx = c.ctx(c.config.clone());
    ctx.plan = with_slow_transform(&c);
    ctx.deadline = Some(tokio::time::Instant::now() + Duration::from_secs(4));
    use stir_runtime::step::StepRunner;
    let t = std::time::Instant::now();
    let err = tokio::time::timeout(
        Duration::from_secs(30),
        c.runner(|_| {}).run_sync(&ctx, "vals", "stmtdeadline-1"),
    )
    .await
    .expect("the sync ended at its deadline, not after the 60 s statement")
    .unwrap_err()
    .to_string();
    eprintln!("expected failure after {:?}: {err}", t.elapsed());
    assert!(err.contains("statement timeout"), "{err}");
    assert!(wait_for_sync_statements(&c, "stmtdeadline-1", 0, Duration::from_secs(2)).await);
    assert_eq!(c.pg_digest("vals").await, before);
    assert!(c.staging_tables("vals").await.is_empty(), "cleaned up");
    c.finish().await;
}

/// A run dropped at its timeout (the executor drops the step's future) cancels the statement
/// its sync's session is running on the server; without the cancel the server would run the
/// 60 s statement on, holding the target's lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_sync_cancels_its_statement_on_the_server() {
    let (c, _) = live_case("stmtdrop", 300).await;
    let before = c.pg_digest("vals").await;
    let mut ctx = c.ctx(c.config.clone());
    ctx.plan = with_slow_transform(&c);
    use stir_runtime::step::StepRunner;
    let runner = c.runner(|_| {});
    let sync = runner.run_sync(&ctx, "vals", "stmtdrop-1");
    let watch = async {
        assert!(
            wait_for_sync_statements(&c, "stmtdrop-1", 1, Duration::from_secs(60)).await,
            "the slow statement started"
        );
    };
    tokio::select! {
        _ = sync => panic!("the sync cannot finish before its 60 s statement"),
        _ = watch => {}
    }
    // The sync's future is dropped here, as at a run's timeout.
    assert!(
        wait_for_sync_statements(&c, "stmtdrop-1", 0, Duration::from_secs(5)).await,
        "the statement was cancelled on the server"
    );
    assert_eq!(c.pg_digest("vals").await, before);
    // Its lock went with its session: the next run is not refused.
    let mut left = (1, 1);
    for _ in 0..50 {
        left = sync_backends(&c).await;
        if left == (0, 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, (0, 0), "no target lock is left");
    c.sync(&c.runner(|_| {}), "vals", "stmtdrop-2")
        .await
        .unwrap();
    c.finish().await;
}

/// A 30 s analyst query on the live table never freezes the app: the swap asks for its lock
/// with `lock-timeout` (300 ms here), gives up without blocking anyone and tries again with
/// backoff. Readers answer within 1 s throughout; a run whose window ends first fails cleanly
/// with the table unchanged, one whose window allows swaps after the long query ends; no
/// session of stir is left waiting afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_reader_never_freezes_other_readers_during_a_sync() {
    let (mut c, data) = live_case("longread", 1000).await;
    Arc::make_mut(&mut c.plan)
        .syncs
        .iter_mut()
        .find(|s| s.name == "vals")
        .unwrap()
        .lock_timeout_ms = 300;
    let live = c.table("vals");
    let url = c.env["STIR_POSTGRES_URL"].clone();
    // App readers: one query every 100 ms, each timed, until told to stop.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers = {
        let (stop, url, live) = (stop.clone(), url.clone(), live.clone());
        tokio::spawn(async move {
            let pg = harness::pg_connect(&url).await;
            let mut worst = Duration::ZERO;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = std::time::Instant::now();
                pg.query_one(&format!("SELECT count(*) FROM {live}"), &[])
                    .await
                    .unwrap();
                worst = worst.max(t.elapsed());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            worst
        })
    };
    // A long reader: its transaction holds the table for `hold`.
    let long_reader = |hold: Duration| harness::hold_table(url.clone(), live.clone(), hold);
    use stir_runtime::step::StepRunner;
    let runner = c.runner(|_| {});

    // A window that ends while the long reader still holds the table: a clean failure.
    let before = c.pg_digest("vals").await;
    insert(&c, &rows(1000, 1200)).await;
    c.build_models().await;
    let held = tokio::spawn(long_reader(Duration::from_secs(12)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut ctx = c.ctx(c.config.clone());
    ctx.deadline = Some(tokio::time::Instant::now() + Duration::from_secs(8));
    let err = runner
        .run_sync(&ctx, "vals", "longread-1")
        .await
        .unwrap_err()
        .to_string();
    eprintln!("expected failure: {err}");
    assert!(err.contains("gave up after"), "{err}");
    assert_eq!(
        c.pg_digest("vals").await,
        before,
        "the live table is unchanged"
    );
    held.await.unwrap();

    // A window that outlasts a 30 s reader: the swap happens after it ends.
    let held = tokio::spawn(long_reader(Duration::from_secs(30)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    ctx.deadline = Some(tokio::time::Instant::now() + Duration::from_secs(90));
    runner.run_sync(&ctx, "vals", "longread-2").await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(25),
        "the swap waited for the long reader ({:?})",
        started.elapsed()
    );
    held.await.unwrap();
    let all: Vec<Row> = data.iter().cloned().chain(rows(1000, 1200)).collect();
    assert_matches(&c, &all).await;

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let worst = readers.await.unwrap();
    eprintln!("slowest app read during the syncs: {worst:?}");
    assert!(
        worst < Duration::from_secs(1),
        "an app read waited {worst:?}"
    );
    assert_eq!(
        sync_backends(&c).await,
        (0, 0),
        "no session of stir is left"
    );
    c.finish().await;
}
