//! Value edges of a sync on the real test servers: which ClickHouse types reach which
//! PostgreSQL columns whole, which are converted (Bool into integers), which are refused
//! before PostgreSQL is touched (values that would be rounded), and the export's pinned
//! settings against a session that would cut or reformat the answer.
//!
//! Needs `scripts/servers.sh up` and `eval "$(scripts/servers.sh env)"`.

#[path = "fixtures/sync/harness.rs"]
mod harness;

use harness::Case;
use stir_runtime::s3::{S3Config, S3};
use stir_runtime::step::StepRunner;

const EDGES_DDL: &str = "(id UInt64, flag Bool, maybe Nullable(Bool), big Int64, \
    amount Decimal(18, 6), ratio Float64, note Nullable(String), at DateTime) \
    ENGINE = MergeTree ORDER BY id";

/// The source rows, made by ClickHouse from `numbers(n)`; [`expected`] computes the same.
const EDGES_SELECT: &str = "SELECT number, number % 2 = 0, if(number % 3 = 0, NULL, number % 3 = 1), \
    multiIf(number = 1, 9223372036854775807, number = 2, -9223372036854775808, \
            toInt64(number) * 1000003 + 9007199254740993), \
    toDecimal64(concat(toString(toInt64(number) - 70000), '.', leftPad(toString(number * 7919 % 1000000), 6, '0')), 6), \
    number / 7, if(number % 5 = 0, NULL, concat('n', toString(number))), toDateTime(number * 37, 'UTC')";

/// A case with `edges_src` holding `n` rows and the model built.
async fn edges(name: &str, n: u64) -> Case {
    let c = Case::with_fixture(name, "values").await;
    c.ch(&format!("CREATE TABLE {}.edges_src {EDGES_DDL}", c.src))
        .await;
    c.ch(&format!(
        "INSERT INTO {}.edges_src {EDGES_SELECT} FROM numbers({n})",
        c.src
    ))
    .await;
    c.build_models().await;
    c
}

fn big(i: u64) -> i64 {
    match i {
        1 => i64::MAX,
        2 => i64::MIN,
        _ => i as i64 * 1_000_003 + 9_007_199_254_740_993,
    }
}

/// `edge_ints` as PostgreSQL should hold it, one line per row in id order.
fn expected(n: u64) -> Vec<String> {
    (0..n)
        .map(|i| {
            let flag = i64::from(i % 2 == 0);
            let maybe = match i % 3 {
                0 => "None".to_string(),
                1 => "Some(1)".to_string(),
                _ => "Some(0)".to_string(),
            };
            let amount = format!("{}.{:06}", i as i64 - 70000, i * 7919 % 1_000_000);
            let ratio = i as f64 / 7.0;
            let note = (i % 5 != 0).then(|| format!("n{i}"));
            line(
                i as i64,
                flag,
                &maybe,
                flag,
                i % 2 == 0,
                big(i),
                &amount,
                ratio,
                note.as_deref(),
                i as i64 * 37,
            )
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn line(
    id: i64,
    flag: i64,
    maybe: &str,
    flag_copy: i64,
    yes: bool,
    big: i64,
    amount: &str,
    ratio: f64,
    note: Option<&str>,
    at: i64,
) -> String {
    format!(
        "id={id} flag={flag} maybe={maybe} flag_copy={flag_copy} yes={yes} big={big} amount={amount} ratio_bits={:x} note={note:?} at={at}",
        ratio.to_bits()
    )
}

async fn actual(c: &Case) -> Vec<String> {
    let rows =
        c.pg.query(
            &format!(
                "SELECT id, flag, maybe, flag_copy, yes, big, amount::text, ratio::text, note, \
                 extract(epoch from at)::int8 FROM {} ORDER BY id",
                c.table("edge_ints")
            ),
            &[],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            let maybe: Option<i16> = r.get(2);
            let ratio: String = r.get(7);
            line(
                r.get(0),
                r.get(1),
                &format!("{:?}", maybe.map(i64::from)),
                i64::from(r.get::<_, i32>(3)),
                r.get(4),
                r.get(5),
                &r.get::<_, String>(6),
                ratio.parse().unwrap(),
                r.get::<_, Option<String>>(8).as_deref(),
                r.get(9),
            )
        })
        .collect()
}

/// Sync `edge_ints` and check PostgreSQL holds the `n` source rows exactly.
async fn loads_exactly(c: &Case, run_id: &str, n: u64) {
    let out = c
        .sync(&c.runner(|_| {}), "edge_ints", run_id)
        .await
        .unwrap();
    assert_eq!(out.rows, Some(n));
    assert_same(&actual(c).await, &expected(n));
}

fn assert_same(got: &[String], want: &[String]) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "row {i} differs (left: PostgreSQL, right: expected)");
    }
    assert_eq!(got.len(), want.len(), "row counts differ");
}

/// ClickHouse writes a Bool as `true`/`false`, which COPY refuses for an integer column: the
/// sync converts it, so it lands as 0/1 (plain and computed columns, NULLs kept), and a Bool
/// into a boolean column is still a boolean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bool_into_integer_columns_lands_as_0_and_1() {
    let c = edges("boolint", 300).await;
    loads_exactly(&c, "boolint-1", 300).await;
    c.finish().await;
}

/// Int64 into float8 (2^53 + 1 would arrive as 2^53) and Decimal(18,6) into numeric(10,2)
/// (rounded to cents) are refused before anything is exported or created: the live table is
/// as it was, the schema holds nothing new and S3 nothing at all. The message names each
/// column, why, and the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossy_columns_are_refused_before_postgres_is_touched() {
    let c = edges("lossy", 50).await;
    let s = &c.schema;
    c.pg.batch_execute(&format!(
        "CREATE TABLE {s}.edge_lossy (id int8 PRIMARY KEY, big float8, amount numeric(10,2)); \
         INSERT INTO {s}.edge_lossy VALUES (1, 1.5, 2.25), (2, 3, 4)"
    ))
    .await
    .unwrap();
    let before = c.pg_digest("edge_lossy").await;
    let err = c.sync_err("edge_lossy", "lossy-1").await;
    for want in [
        "sync `edge_lossy`: 2 columns would not arrive",
        "refusing before touching PostgreSQL",
        "[stir::lossy_column] column `big` is Int64 in ClickHouse (`big`) but float8 in PostgreSQL",
        "2^53",
        "help: declare `type=int8`",
        "toFloat64(big)",
        "[stir::lossy_column] column `amount` is Decimal(18, 6) in ClickHouse (`amount`) but numeric(10,2) in PostgreSQL",
        "keeps 2 digits after the point",
        "help: declare `type=\"numeric(18,6)\"`",
        "CAST(round(amount, 2) AS Decimal(10, 2))",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert_eq!(
        c.pg_digest("edge_lossy").await,
        before,
        "live table untouched"
    );
    // The table and its primary key's index, nothing else: no staging table was created.
    let relations = c.pg_relations().await;
    assert_eq!(
        relations,
        ["edge_lossy", "edge_lossy_pkey"],
        "PostgreSQL was not touched"
    );
    let s3 = S3::new(
        S3Config::from_env_with(c.config.s3_endpoint.as_deref(), &|k: &str| {
            c.env.get(k).cloned()
        }),
        "stir-test",
    )
    .await;
    assert!(
        s3.list_objects(&format!("{}/", c.prefix))
            .await
            .unwrap()
            .is_empty(),
        "nothing exported"
    );
    c.finish().await;
}

/// A session (or a user profile) that would cut the answer short after its first block
/// (`max_result_rows` with `result_overflow_mode='break'`, `limit`) or silently reformat it
/// (NULL and Bool spellings, 3-digit floats, another time zone, extremes rows) changes
/// nothing: the export pins its settings, so every row arrives exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_settings_neither_cut_nor_reformat_the_export() {
    // More rows than one block (65 409), so `break` would stop mid-answer.
    let n = 150_000;
    let c = edges("pinned", n).await;
    let sessions: [(&str, &[(&str, &str)]); 2] = [
        (
            "cut",
            &[
                ("max_result_rows", "10"),
                ("result_overflow_mode", "break"),
                ("limit", "70000"),
            ],
        ),
        (
            "reformat",
            &[
                ("output_format_float_precision", "3"),
                ("session_timezone", "Asia/Kolkata"),
                ("bool_true_representation", "yes"),
                ("format_tsv_null_representation", "NULL"),
                ("extremes", "1"),
            ],
        ),
    ];
    let runner = c.runner(|_| {});
    for (what, settings) in sessions {
        let mut config = c.config.clone();
        config.clickhouse_settings = settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let out = runner
            .run_sync(&c.ctx(config), "edge_ints", &format!("pinned-{what}"))
            .await
            .unwrap_or_else(|e| panic!("a session that would {what} the export: {e}"));
        assert_eq!(out.rows, Some(n), "{what}");
        assert_same(&actual(&c).await, &expected(n));
    }
    c.finish().await;
}

/// A pinned setting this server does not have (as on a ClickHouse older than the setting)
/// is left out rather than failing every export: no profile on that server can set it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_setting_the_server_lacks_is_left_out() {
    let mut c = edges("oldserver", 200).await;
    let sync = c.plan_sync_mut("edge_ints");
    assert!(sync.clickhouse.select.contains("\nSETTINGS "));
    sync.clickhouse.select = sync.clickhouse.select.replace(
        "\nSETTINGS ",
        "\nSETTINGS output_format_from_a_future_release = 1, ",
    );
    loads_exactly(&c, "oldserver-1", 200).await;
    c.finish().await;
}
