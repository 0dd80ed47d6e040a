//! What the live PostgreSQL table has besides the sync's columns (issue 12, item 5), on the real
//! test servers: each kind is either found on the table the sync swapped in, or the sync is
//! refused before it exports anything, naming it with a `help:`.

#[path = "fixtures/sync/harness.rs"]
mod harness;

use std::time::Duration;

use harness::Case;
use stir_runtime::s3::{S3Config, S3};
use stir_runtime::sync::Failpoint;
use tokio_postgres::Client;

/// Rows of the `cat` sync's source: `(id, s, d)`, `s` NULL when `None`.
fn rows(n: u64, null_s: bool) -> String {
    (0..n)
        .map(|i| {
            let s = if null_s && i == n / 2 {
                "\\N".to_string()
            } else {
                format!("s{i}")
            };
            format!("{i}\t{s}\t2026-01-{:02}\n", 1 + i % 28)
        })
        .collect()
}

/// A case whose ClickHouse model feeds sync `cat`, with `n` rows; synced once unless `fresh`.
async fn cat_case(name: &str, n: u64, null_s: bool, fresh: bool) -> Case {
    let c = Case::new(name).await;
    c.ch(&format!(
        "CREATE TABLE {}.values_src (id UInt64, s Nullable(String), d Date) ENGINE = MergeTree ORDER BY id",
        c.src
    ))
    .await;
    load(&c, &rows(n, null_s)).await;
    if !fresh {
        c.sync(&c.runner(|_| {}), "cat", &format!("{name}-setup"))
            .await
            .unwrap();
    }
    c
}

/// Replace the source rows with `tsv` and build the model the sync exports.
async fn load(c: &Case, tsv: &str) {
    c.ch(&format!("TRUNCATE TABLE {}.values_src", c.src)).await;
    c.ch(&format!(
        "INSERT INTO {}.values_src FORMAT TabSeparated\n{tsv}",
        c.src
    ))
    .await;
    for m in c.plan.models.iter().filter(|m| m.name == "mart_values") {
        for sql in &m.build {
            c.ch(sql).await;
        }
    }
}

/// A superuser session over the servers' socket, for roles and ownership.
async fn superuser(c: &Case) -> Client {
    let url: tokio_postgres::Config = c.env["STIR_POSTGRES_URL"].parse().unwrap();
    // servers.sh env names the socket's directory (older ones did not: their default).
    let sock = std::env::var("STIR_TEST_PG_SOCKET").unwrap_or_else(|_| {
        let dir =
            std::env::var("STIR_SERVERS_DIR").unwrap_or_else(|_| "/var/tmp/stir-servers".into());
        format!("{dir}/pg/sock")
    });
    let port = url.get_ports().first().copied().unwrap_or(5432);
    let conn = format!("host={sock} port={port} user=postgres dbname=stir");
    // A Unix socket: PostgreSQL has no TLS there.
    let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("a superuser session over {sock}: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Roles are global to the server and shared by parallel tests: created once, never dropped.
async fn role(su: &Client, name: &str) {
    su.batch_execute(&format!(
        "DO $$ BEGIN CREATE ROLE {name} NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    ))
    .await
    .unwrap();
}

async fn one<T: for<'a> tokio_postgres::types::FromSql<'a>>(c: &Case, sql: &str) -> T {
    c.pg.query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// The live table's OID (a swap replaces it).
async fn oid(c: &Case) -> i64 {
    one(
        c,
        &format!("SELECT '{}.cat'::regclass::oid::int8", c.schema),
    )
    .await
}

/// Run sync `cat` as `run`, which must be refused before the export: no staged file of the run,
/// and what [`failed_before_the_swap`] checks. Answers the refusal.
async fn refused(c: &Case, run: &str) -> String {
    let err = failed_before_the_swap(c, run).await;
    let s3 = S3::new(
        S3Config::from_env_with(c.config.s3_endpoint.as_deref(), &|k: &str| {
            c.env.get(k).cloned()
        }),
        "stir-test",
    )
    .await;
    let staged = s3
        .list_objects(&format!("{}/cat/", c.prefix))
        .await
        .unwrap();
    assert!(
        staged.iter().all(|o| !o.key.contains(run)),
        "nothing exported: {staged:?}"
    );
    err
}

/// Wait until the staging table of `cat` exists: the sync has read the live table.
async fn staged(c: &Case) {
    for _ in 0..1200 {
        if !c.staging_tables("cat").await.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no staging table of `cat` within a minute");
}

/// Run sync `cat` as `run`, which must fail before the swap (after the load): no staging table
/// is left, and the live table is the same table with the same rows. Answers the error.
async fn failed_before_the_swap(c: &Case, run: &str) -> String {
    let (oid_before, digest_before) = (oid(c).await, c.pg_digest("cat").await);
    let err = c
        .sync(&c.runner(|_| {}), "cat", run)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        c.staging_tables("cat").await.is_empty(),
        "no staging table left"
    );
    assert_eq!(oid(c).await, oid_before, "the live table is not replaced");
    assert_eq!(
        c.pg_digest("cat").await,
        digest_before,
        "the live rows unchanged"
    );
    err
}

/// NOT NULL, CHECK, column grants, storage parameters and the owner of the live table are on
/// the table the sync swaps in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constraints_column_grants_options_and_owner_are_carried() {
    let c = cat_case("carry", 300, false, false).await;
    let su = superuser(&c).await;
    let s = &c.schema;
    role(&su, "stir_test_cat_reader").await;
    role(&su, "stir_test_cat_owner").await;
    su.batch_execute(&format!(
        "GRANT stir_test_cat_owner TO stir; GRANT CREATE, USAGE ON SCHEMA {s} TO stir_test_cat_owner; \
         ALTER TABLE {s}.cat ALTER COLUMN s SET NOT NULL, ADD CONSTRAINT cat_s_short CHECK (length(s) < 100), \
           SET (fillfactor = 70, autovacuum_enabled = false, toast.autovacuum_enabled = false); \
         GRANT SELECT (s) ON {s}.cat TO stir_test_cat_reader; GRANT INSERT ON {s}.cat TO stir_test_cat_reader; \
         GRANT UPDATE (d) ON {s}.cat TO stir_test_cat_reader WITH GRANT OPTION; \
         ALTER TABLE {s}.cat OWNER TO stir_test_cat_owner"
    ))
    .await
    .unwrap();
    let before = oid(&c).await;
    c.sync(&c.runner(|_| {}), "cat", "carry-1").await.unwrap();
    assert_ne!(oid(&c).await, before, "a new table was swapped in");
    let t = format!("'{s}.cat'::regclass");
    let not_null: Vec<String> = one(
        &c,
        &format!("SELECT ARRAY(SELECT attname::text FROM pg_attribute WHERE attrelid = {t} AND attnum > 0 AND attnotnull ORDER BY 1)"),
    )
    .await;
    assert_eq!(not_null, ["s"]);
    let check: String = one(
        &c,
        &format!("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = {t} AND conname = 'cat_s_short'"),
    )
    .await;
    assert_eq!(check, "CHECK ((length(s) < 100))");
    let grants: Vec<String> = one(
        &c,
        &format!(
            "SELECT ARRAY(SELECT a.attname || ' ' || g.privilege_type || ' ' || pg_get_userbyid(g.grantee) || ' ' || g.is_grantable \
             FROM pg_attribute a, aclexplode(a.attacl) g WHERE a.attrelid = {t} ORDER BY 1)"
        ),
    )
    .await;
    assert_eq!(
        grants,
        [
            "d UPDATE stir_test_cat_reader true",
            "s SELECT stir_test_cat_reader false"
        ]
    );
    let options: Vec<String> = one(&c, &format!("SELECT ARRAY(SELECT unnest(reloptions) ORDER BY 1)::text[] FROM pg_class WHERE oid = {t}")).await;
    assert_eq!(options, ["autovacuum_enabled=false", "fillfactor=70"]);
    let toast: Vec<String> = one(
        &c,
        &format!("SELECT t.reloptions::text[] FROM pg_class c JOIN pg_class t ON t.oid = c.reltoastrelid WHERE c.oid = {t}"),
    )
    .await;
    assert_eq!(toast, ["autovacuum_enabled=false"]);
    let owner: String = one(
        &c,
        &format!("SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE oid = {t}"),
    )
    .await;
    assert_eq!(owner, "stir_test_cat_owner");
    // The swap's own table grants still follow onto a table the runtime's role does not own.
    let table_grants: Vec<String> = one(
        &c,
        &format!("SELECT ARRAY(SELECT g.privilege_type || ' ' || pg_get_userbyid(g.grantee) FROM pg_class, aclexplode(relacl) g WHERE oid = {t} AND g.grantee <> relowner)"),
    )
    .await;
    assert_eq!(table_grants, ["INSERT stir_test_cat_reader"]);
    // And it holds the synced rows.
    assert_eq!(c.pg_count("cat").await, 300);
    c.finish().await;
}

/// The replica identity (logical replication and CDC tools read it), the CLUSTER mark and the
/// columns' storage, compression and statistics targets of the live table are on the table
/// the sync swaps in; a replica identity on an index the sync does not build is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_identity_cluster_mark_and_column_storage_are_carried() {
    let c = cat_case("replident", 200, false, false).await;
    let s = &c.schema;
    let d_index: String = one(
        &c,
        &format!(
            "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE i.indrelid = '{s}.cat'::regclass AND NOT i.indisunique"
        ),
    )
    .await;
    c.pg.batch_execute(&format!(
        "ALTER TABLE {s}.cat REPLICA IDENTITY FULL, CLUSTER ON \"{d_index}\", \
           ALTER COLUMN s SET STORAGE EXTERNAL, ALTER COLUMN s SET COMPRESSION pglz, \
           ALTER COLUMN d SET STATISTICS 500"
    ))
    .await
    .unwrap();
    let t = format!("'{s}.cat'::regclass");
    let state = || async {
        let replident: String = one(
            &c,
            &format!("SELECT relreplident::text FROM pg_class WHERE oid = {t}"),
        )
        .await;
        let clustered: Vec<String> = one(
            &c,
            &format!("SELECT ARRAY(SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = {t} AND indisclustered)"),
        )
        .await;
        let columns: Vec<String> = one(
            &c,
            &format!(
                "SELECT ARRAY(SELECT attname::text || ' ' || attstorage::text || ' ' || attcompression::text \
                 || ' ' || coalesce(attstattarget::int, -1)::text FROM pg_attribute WHERE attrelid = {t} AND attnum > 0 \
                 AND NOT attisdropped ORDER BY attnum)"
            ),
        )
        .await;
        (replident, clustered, columns)
    };
    let before = state().await;
    assert_eq!(before.0, "f");
    let live = oid(&c).await;
    c.sync(&c.runner(|_| {}), "cat", "replident-1")
        .await
        .unwrap();
    assert_ne!(oid(&c).await, live, "a new table was swapped in");
    let after = state().await;
    assert_eq!(after.0, before.0, "replica identity");
    assert_eq!(after.1.len(), 1, "{after:?}");
    assert!(after.1[0].ends_with("USING btree (d)"), "{after:?}");
    assert_eq!(after.2, before.2, "storage, compression, statistics");
    assert_eq!(
        after.2,
        ["id p  -1", "s e p -1", "d p  500"],
        "what was set on the live table"
    );
    assert_eq!(c.pg_count("cat").await, 200);

    // Using the key's unique index (its column NOT NULL, as PostgreSQL requires): the new
    // table's own key index becomes the replica identity.
    let key_index_now: String = one(
        &c,
        &format!(
            "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE i.indrelid = {t} AND i.indisunique"
        ),
    )
    .await;
    c.pg.batch_execute(&format!(
        "ALTER TABLE {s}.cat ALTER COLUMN id SET NOT NULL, REPLICA IDENTITY USING INDEX \"{key_index_now}\""
    ))
    .await
    .unwrap();
    c.sync(&c.runner(|_| {}), "cat", "replident-2")
        .await
        .unwrap();
    let identity: String = one(
        &c,
        &format!("SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = {t} AND indisreplident"),
    )
    .await;
    assert!(
        identity.contains("UNIQUE INDEX") && identity.ends_with("USING btree (id)"),
        "{identity}"
    );

    // On an index the sync does not build: refused before the export, saying what to do.
    c.pg.batch_execute(&format!(
        "CREATE UNIQUE INDEX cat_id_d ON {s}.cat (id, d); \
         ALTER TABLE {s}.cat ALTER COLUMN d SET NOT NULL, REPLICA IDENTITY USING INDEX cat_id_d"
    ))
    .await
    .unwrap();
    let err = refused(&c, "replident-3").await;
    assert!(
        err.contains("replica identity using index cat_id_d, which the sync does not build"),
        "{err}"
    );
    c.finish().await;
}

/// A carried NOT NULL that a new row breaks fails the sync before the swap: the live table
/// keeps its rows and its constraint, and no staging table is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_that_breaks_a_carried_constraint_fails_the_sync_before_the_swap() {
    let c = cat_case("violate", 200, false, false).await;
    let s = &c.schema;
    c.pg.batch_execute(&format!("ALTER TABLE {s}.cat ALTER COLUMN s SET NOT NULL"))
        .await
        .unwrap();
    load(&c, &rows(200, true)).await;
    let err = failed_before_the_swap(&c, "violate-1").await;
    assert!(
        err.contains("stir::sync_live_table: the new rows break what the live table requires")
            && err.contains("contains null values")
            && err.contains("help: "),
        "{err}"
    );
    let not_null: bool = one(
        &c,
        &format!("SELECT attnotnull FROM pg_attribute WHERE attrelid = '{s}.cat'::regclass AND attname = 's'"),
    )
    .await;
    assert!(not_null);
    c.finish().await;
}

/// A carried constraint that PostgreSQL refuses for a reason the rows cannot fix (here a CHECK
/// calling a function the runtime's role may not execute) fails the sync before the swap with
/// PostgreSQL's reason and the statement, not as rows that break the table; once the role may
/// run it, the sync carries the constraint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carried_constraint_refused_for_another_reason_than_the_rows_names_the_statement() {
    let c = cat_case("refusedcarry", 100, false, false).await;
    let su = superuser(&c).await;
    let s = &c.schema;
    su.batch_execute(&format!(
        "CREATE FUNCTION {s}.s_ok(text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE \
           AS $$ BEGIN RETURN $1 IS NOT NULL; END $$; \
         REVOKE EXECUTE ON FUNCTION {s}.s_ok(text) FROM PUBLIC; \
         ALTER TABLE {s}.cat ADD CONSTRAINT cat_s_ok CHECK ({s}.s_ok(s))"
    ))
    .await
    .unwrap();
    let before = oid(&c).await;
    let err = failed_before_the_swap(&c, "refusedcarry-1").await;
    assert!(
        err.contains("PostgreSQL refused what the sync carries from the live table")
            && err.contains("ADD CONSTRAINT \"cat_s_ok\" CHECK")
            && err.contains("permission denied for function s_ok")
            && err.contains("help: ")
            && !err.contains("the new rows break"),
        "{err}"
    );
    su.batch_execute(&format!("GRANT EXECUTE ON FUNCTION {s}.s_ok(text) TO stir"))
        .await
        .unwrap();
    c.sync(&c.runner(|_| {}), "cat", "refusedcarry-2")
        .await
        .unwrap();
    assert_ne!(oid(&c).await, before, "swapped");
    let checks: i64 = one(
        &c,
        &format!("SELECT count(*) FROM pg_constraint WHERE conrelid = '{s}.cat'::regclass AND contype = 'c'"),
    )
    .await;
    assert_eq!(checks, 1, "the new table has the CHECK");
    c.finish().await;
}

/// What cannot follow a table replaced wholesale, besides the triggers and foreign keys of
/// `sync::fault_what_the_swap_cannot_carry_is_refused_before_the_export`: publications that
/// cover the live table, by name or through its schema (a schema's publication would also
/// publish the staging table's rows under its own name), row-level security with its policy,
/// and a rule. All are refused before the export, each named; once they are gone the sync
/// runs. (`FOR ALL TABLES` is listed by the same catalog view; it is not created here, where it
/// would cover every test's tables on the shared server.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publications_row_security_and_rules_are_refused_before_the_export() {
    let c = cat_case("pubs", 100, false, false).await;
    let su = superuser(&c).await;
    let s = &c.schema;
    let (named, schema) = (format!("{s}_named"), format!("{s}_schema"));
    su.batch_execute(&format!(
        "SET client_min_messages = error; \
         CREATE PUBLICATION {named} FOR TABLE {s}.cat; \
         CREATE PUBLICATION {schema} FOR TABLES IN SCHEMA {s}"
    ))
    .await
    .unwrap();
    c.pg.batch_execute(&format!(
        "ALTER TABLE {s}.cat ENABLE ROW LEVEL SECURITY; \
         CREATE POLICY cat_mine ON {s}.cat USING (s IS NOT NULL); \
         CREATE RULE cat_keep AS ON DELETE TO {s}.cat DO INSTEAD NOTHING"
    ))
    .await
    .unwrap();
    let err = refused(&c, "pubs-1").await;
    for what in [
        format!("publication {named}"),
        format!("publication {schema}"),
        "row-level security policy cat_mine".to_string(),
        "row-level security\n".to_string(),
        "rule cat_keep".to_string(),
    ] {
        assert!(err.contains(&what), "{what:?} not named: {err}");
    }
    su.batch_execute(&format!("DROP PUBLICATION {named}, {schema}"))
        .await
        .unwrap();
    c.pg.batch_execute(&format!(
        "DROP POLICY cat_mine ON {s}.cat; ALTER TABLE {s}.cat DISABLE ROW LEVEL SECURITY; \
         DROP RULE cat_keep ON {s}.cat"
    ))
    .await
    .unwrap();
    let before = oid(&c).await;
    c.sync(&c.runner(|_| {}), "cat", "pubs-2").await.unwrap();
    assert_ne!(oid(&c).await, before, "swapped once they are gone");
    c.finish().await;
}

/// The new table is made where the live table is: a live table in a tablespace of its own
/// (another disk) stays there across the swap, with its indexes. A runtime role that may not
/// create there fails before the export with PostgreSQL's reason; a live table moved while the
/// sync runs is refused under the swap's lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_new_table_is_made_in_the_live_tables_tablespace() {
    let c = cat_case("tblspc", 100, false, false).await;
    let su = superuser(&c).await;
    let s = c.schema.clone();
    let (ts, dir) = (format!("{s}_ts"), format!("/tmp/stir_ts_{s}"));
    // The directory must belong to the server's user: the server makes it.
    su.batch_execute(&format!("COPY (SELECT 1) TO PROGRAM 'mkdir -p {dir}'"))
        .await
        .unwrap();
    su.batch_execute(&format!("CREATE TABLESPACE {ts} LOCATION '{dir}'"))
        .await
        .unwrap();
    su.batch_execute(&format!("ALTER TABLE {s}.cat SET TABLESPACE {ts}"))
        .await
        .unwrap();
    let err = refused(&c, "tblspc-1").await;
    assert!(
        err.contains(&format!("permission denied for tablespace {ts}")),
        "{err}"
    );
    su.batch_execute(&format!("GRANT CREATE ON TABLESPACE {ts} TO stir"))
        .await
        .unwrap();
    let before = oid(&c).await;
    c.sync(&c.runner(|_| {}), "cat", "tblspc-2").await.unwrap();
    assert_ne!(oid(&c).await, before, "swapped");
    let elsewhere: i64 = one(
        &c,
        &format!(
            "SELECT count(*) FROM pg_class r WHERE (r.oid = '{s}.cat'::regclass \
               OR r.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = '{s}.cat'::regclass)) \
             AND r.reltablespace IS DISTINCT FROM (SELECT oid FROM pg_tablespace WHERE spcname = '{ts}')"
        ),
    )
    .await;
    assert_eq!(elsewhere, 0, "the new table and its indexes are in {ts}");
    // Moved back while a sync runs: refused under the lock, the live table kept.
    let (before, digest) = (oid(&c).await, c.pg_digest("cat").await);
    let runner =
        c.runner(|o| o.sync.failpoint = Some(Failpoint::PauseBeforeSwap(Duration::from_secs(3))));
    let sync = c.sync(&runner, "cat", "tblspc-3");
    let meddle = async {
        staged(&c).await;
        c.pg.batch_execute(&format!("ALTER TABLE {s}.cat SET TABLESPACE pg_default"))
            .await
            .unwrap();
    };
    let (result, ()) = tokio::join!(sync, meddle);
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("changed while the sync ran") && err.contains("tablespace pg_default"),
        "{err}"
    );
    assert_eq!(oid(&c).await, before, "the live table is not replaced");
    assert_eq!(c.pg_digest("cat").await, digest);
    c.finish().await;
    su.batch_execute(&format!("DROP TABLESPACE {ts}"))
        .await
        .unwrap();
    su.batch_execute(&format!("COPY (SELECT 1) TO PROGRAM 'rm -rf {dir}'"))
        .await
        .unwrap();
}

/// Undeclared columns, defaults the sync does not declare, identity columns, a collation,
/// indexes the sync does not build, UNIQUE constraints, extended statistics and an owner the
/// runtime cannot take: all refused in one message before the export, each named with its
/// help; once they are gone the sync runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_carried_is_refused_before_the_export_in_one_message() {
    let c = cat_case("refuse", 300, false, false).await;
    let su = superuser(&c).await;
    let s = &c.schema;
    role(&su, "stir_test_cat_stranger").await;
    c.pg.batch_execute(&format!(
        "ALTER TABLE {s}.cat ADD COLUMN legacy integer, ADD CONSTRAINT cat_s_uniq UNIQUE (s), \
           ALTER COLUMN d SET DEFAULT current_date, ALTER COLUMN id SET NOT NULL, \
           ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY, ALTER COLUMN s TYPE text COLLATE \"C\"; \
         CREATE INDEX cat_by_s ON {s}.cat (s, id); \
         CREATE INDEX cat_lower ON {s}.cat (lower(s)); \
         CREATE STATISTICS {s}.cat_stats (ndistinct) ON s, d FROM {s}.cat"
    ))
    .await
    .unwrap();
    // The runtime's role keeps reading it, as the app's role would.
    su.batch_execute(&format!(
        "ALTER TABLE {s}.cat OWNER TO stir_test_cat_stranger; GRANT SELECT ON {s}.cat TO stir"
    ))
    .await
    .unwrap();
    let before = oid(&c).await;
    let err = refused(&c, "refuse-1").await;
    for want in [
        "stir::sync_live_table",
        "refusing before the export",
        "column legacy (integer), which the sync does not declare",
        "help: declare `column legacy type=int4` in the sync (with `export=#false` if ClickHouse does not have it), or drop the column",
        "index cat_by_s (",
        "help: declare `index s id` in the sync",
        "index cat_lower (",
        "a sync declares plain indexes on columns only",
        "constraint cat_s_uniq (UNIQUE (s))",
        "declare `key s`",
        &format!("extended statistics {s}.cat_stats"),
        &format!("`DROP STATISTICS {s}.cat_stats`"),
        "default CURRENT_DATE of column d, which the sync does not declare",
        "help: declare it on the column in the sync (`default=\"CURRENT_DATE\"`",
        "column id is an identity column",
        "DROP IDENTITY`)",
        "collation pg_catalog.\"C\" of column s",
        "owner stir_test_cat_stranger",
        "`GRANT \"stir_test_cat_stranger\" TO \"stir\"`",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    su.batch_execute(&format!(
        "ALTER TABLE {s}.cat OWNER TO stir; ALTER TABLE {s}.cat DROP COLUMN legacy, DROP CONSTRAINT cat_s_uniq, \
           ALTER COLUMN d DROP DEFAULT, ALTER COLUMN id DROP IDENTITY, \
           ALTER COLUMN s TYPE text COLLATE \"default\"; \
         DROP INDEX {s}.cat_by_s, {s}.cat_lower; DROP STATISTICS {s}.cat_stats"
    ))
    .await
    .unwrap();
    c.sync(&c.runner(|_| {}), "cat", "refuse-2").await.unwrap();
    assert_ne!(oid(&c).await, before);
    c.finish().await;
}

/// A live table that is a partition, or is partitioned, is refused: the table swapped in would
/// leave its parent (or lose its partitions).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_are_refused_before_the_export() {
    let c = cat_case("parts", 50, false, true).await;
    let s = &c.schema;
    c.pg.batch_execute(&format!(
        "CREATE TABLE {s}.cat_all (id int8, s text, d date) PARTITION BY RANGE (id); \
         CREATE TABLE {s}.cat PARTITION OF {s}.cat_all FOR VALUES FROM (0) TO (1000); \
         INSERT INTO {s}.cat_all VALUES (1, 'app', '2026-01-01')"
    ))
    .await
    .unwrap();
    let err = refused(&c, "parts-1").await;
    assert!(
        err.contains(&format!("it is a partition of {s}.cat_all"))
            && err.contains(&format!(
                "help: a sync swaps in a plain table, which would leave {s}.cat_all"
            )),
        "{err}"
    );
    let rows: i64 = one(&c, &format!("SELECT count(*) FROM {s}.cat_all")).await;
    assert_eq!(rows, 1, "the parent still holds its partition's rows");

    // Partitioned: its partitions would be left behind.
    c.pg.batch_execute(&format!(
        "DROP TABLE {s}.cat_all; \
         CREATE TABLE {s}.cat (id int8, s text, d date) PARTITION BY RANGE (id); \
         CREATE TABLE {s}.cat_low PARTITION OF {s}.cat FOR VALUES FROM (0) TO (1000); \
         INSERT INTO {s}.cat VALUES (1, 'app', '2026-01-01')"
    ))
    .await
    .unwrap();
    let err = refused(&c, "parts-2").await;
    assert!(err.contains("it is a partitioned table"), "{err}");
    c.finish().await;
}

/// What appears on the live table after the sync read it (an index, a NOT NULL) is refused
/// under the swap's lock: the live table stays, with both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_appears_during_the_sync_is_refused_under_the_swaps_lock() {
    let c = cat_case("drift", 200, false, false).await;
    let s = c.schema.clone();
    let (before, digest) = (oid(&c).await, c.pg_digest("cat").await);
    let runner =
        c.runner(|o| o.sync.failpoint = Some(Failpoint::PauseBeforeSwap(Duration::from_secs(3))));
    let sync = c.sync(&runner, "cat", "drift-1");
    let meddle = async {
        staged(&c).await;
        c.pg.batch_execute(&format!(
            "CREATE INDEX cat_late ON {s}.cat (s); ALTER TABLE {s}.cat ALTER COLUMN s SET NOT NULL"
        ))
        .await
        .unwrap();
    };
    let (result, ()) = tokio::join!(sync, meddle);
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("changed while the sync ran")
            && err.contains("index cat_late (")
            && err.contains("NOT NULL on column s")
            && err.contains("help: it appeared after the sync read the live table"),
        "{err}"
    );
    assert_eq!(oid(&c).await, before, "the live table is not replaced");
    assert_eq!(c.pg_digest("cat").await, digest);
    assert!(c.pg_exists("cat_late").await, "the index is still there");
    c.finish().await;
}
