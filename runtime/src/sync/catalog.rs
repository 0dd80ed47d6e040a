//! The live table against the table a sync swaps in. Whatever the live table has that the new
//! one would lack is either carried to the staging table ([`Carry`]) or refused before the
//! export ([`inspect`]), every problem in one message; under the swap's lock [`uncarried`]
//! compares the two tables again and refuses any difference that appeared meanwhile.
//!
//! **Choice**, per kind:
//! - carried: NOT NULL and CHECK constraints (added after the `finish` statements, so a
//!   violating row fails the sync before the swap and no scan runs under its lock), column
//!   grants, reloptions (set after the load: `fillfactor` applies to later writes), the
//!   replica identity (FULL, NOTHING, or USING INDEX when the sync builds the same index:
//!   logical replication and CDC tools read it), the CLUSTER mark, per-column storage,
//!   compression and statistics targets, and the owner when the runtime's role may
//!   `ALTER TABLE … OWNER TO` it; the tablespace, by making the new table and its indexes
//!   there ([`follow_tablespace`]);
//! - refused: indexes the plan does not build (the sync declares its indexes), PRIMARY KEY,
//!   UNIQUE and EXCLUDE constraints (their names are taken by the live table until the swap,
//!   and `ON CONFLICT ON CONSTRAINT` in the app would break on a plain index), extended
//!   statistics (same name clash, and they would be empty until the next ANALYZE), partitions
//!   and inheritance, columns the sync does not declare (never dropped silently), defaults
//!   other than the declared one (one on a sequence owned by the live table would break the
//!   backup's drop), identity and generated columns, a column collation (the sync cannot
//!   declare one), and what cannot follow a table replaced wholesale: triggers, foreign keys,
//!   row security, rules, publications (named, or through the schema or all tables: the
//!   catalog's `pg_publication_tables` lists every kind).
//!
//! The table's grants, comments, views and materialized views are carried by the swap itself.

use super::*;

/// What to apply to the staging table so that it has what the live table has.
#[derive(Debug, Default)]
pub(super) struct Carry {
    /// `ALTER TABLE` actions, applied in one statement: one scan validates them all.
    alter: Vec<String>,
    /// Column grants: (privilege and column, `TO` clause).
    grants: Vec<(String, String)>,
    /// The live table's owner (quoted), set last: the runtime's role keeps acting through it.
    owner: Option<String>,
}

impl Carry {
    /// Apply it to `staging` (a qualified name). A new row that breaks a carried NOT NULL or
    /// CHECK fails here, before the swap.
    pub(super) async fn apply(&self, pg: &Client, staging: &str) -> Result<(), Fail> {
        if !self.alter.is_empty() {
            let sql = format!("ALTER TABLE {staging} {}", self.alter.join(", "));
            pg.batch_execute(&sql).await.map_err(|e| {
                // Class 23 (integrity constraint violation): a row. Anything else is the
                // statement itself, which the rows cannot fix.
                let rows = e.code().is_some_and(|c| c.code().starts_with("23"));
                if rows {
                    other(format!(
                        "{CODE}: the new rows break what the live table requires ({}): {}; refusing the swap (the live table stays)\n\
                         help: fix the rows in ClickHouse, or fill them with the column's `default=` or remove them with `delete-where` in the sync, or drop the constraint from the live table",
                        self.alter.join(", "),
                        pg_message(&e)
                    ))
                } else {
                    other(format!(
                        "{CODE}: PostgreSQL refused what the sync carries from the live table to the new one, `{sql}`: {}; refusing the swap (the live table stays)\n\
                         help: the live table has something this server or the runtime's role cannot give a new table: give the role what the message says it lacks, or remove that from the live table",
                        pg_message(&e)
                    ))
                }
            })?;
        }
        let grants = self
            .grants
            .iter()
            .map(|(what, to)| format!("GRANT {what} ON {staging} {to}"));
        let owner = self
            .owner
            .iter()
            .map(|o| format!("ALTER TABLE {staging} OWNER TO {o}"));
        for sql in grants.chain(owner) {
            pg.batch_execute(&sql)
                .await
                .map_err(|e| pg_err(&format!("carry `{sql}` from the live table"), &e))?;
        }
        Ok(())
    }
}

/// Read the live table `live` once, against the staging table the plan's `prepare` and the
/// index statements of its `finish` would build at `staging` (built in a transaction that is
/// rolled back): refuse with every problem named, or answer what to carry. From here on the
/// session makes its tables in the live table's tablespace.
pub(super) async fn inspect(
    pg: &Client,
    live: &str,
    staging: &str,
    prepare: &[String],
    finish: &[String],
) -> Result<Carry, Fail> {
    // For the rest of the session (outside the transaction below, which is rolled back).
    follow_tablespace(pg, live).await?;
    pg.batch_execute("BEGIN")
        .await
        .map_err(|e| pg_err("begin reading the live table", &e))?;
    // The live table's indexes are matched against what PostgreSQL makes of the plan's own
    // statements, not against index names.
    let indexes = finish
        .iter()
        .filter(|s| s.starts_with("CREATE INDEX ") || s.starts_with("CREATE UNIQUE INDEX "));
    let read = async {
        for sql in prepare.iter().chain(indexes) {
            pg.batch_execute(sql)
                .await
                .map_err(|e| pg_err(&format!("`{}`", first_line(sql)), &e))?;
        }
        differences(pg, live, staging).await
    }
    .await;
    let rolled_back = pg.batch_execute("ROLLBACK").await;
    let found = read?;
    rolled_back.map_err(|e| pg_err("end reading the live table", &e))?;
    let mut carry = Carry::default();
    let mut refused = Vec::new();
    for d in found {
        match d.action {
            Some(Action::Alter(a)) => carry.alter.push(a),
            Some(Action::Grant(what, to)) => carry.grants.push((what, to)),
            Some(Action::Owner(o)) => carry.owner = Some(o),
            None => refused.push(d),
        }
    }
    if refused.is_empty() {
        return Ok(carry);
    }
    Err(other(refusal(
        &format!("the live table {live} has what the sync would lose when it swaps in the new table; refusing before the export"),
        &refused,
    )))
}

/// Under the swap's lock: refuse when the live table has anything the staging table lacks
/// (something appeared since [`inspect`], or could never be carried).
pub(super) async fn uncarried(
    pg: &impl tokio_postgres::GenericClient,
    live: &str,
    staging: &str,
) -> Result<(), Fail> {
    let mut found = differences(pg, live, staging).await?;
    if found.is_empty() {
        return Ok(());
    }
    for d in &mut found {
        if d.action.is_some() {
            d.help =
                "it appeared after the sync read the live table; the next run carries it".into();
        }
    }
    Err(other(refusal(
        &format!("the live table {live} changed while the sync ran: the new table would lose what follows; refusing the swap (the live table stays)"),
        &found,
    )))
}

/// Before a rollback: refuse when the live table has anything the backup lacks (a column,
/// an index, a constraint added since the backup was live), every difference in one message.
pub(super) async fn backup_lacks(pg: &Client, live: &str, backup: &str) -> Result<(), Fail> {
    let mut found = differences(pg, live, backup).await?;
    if found.is_empty() {
        return Ok(());
    }
    for d in &mut found {
        d.help = format!(
            "the backup is the table as it was before the last sync: give it the same by hand, or drop it from {live}, then roll back"
        );
    }
    Err(other(refusal(
        &format!("the backup {backup} lacks what the live table {live} has, which the app would lose; refusing the rollback, nothing changed"),
        &found,
    )))
}

/// Before the export: refuse when something outside stir depends on the kept backup (a view
/// someone built on `T__stir_old`, a foreign key to it). The swap drops the backup to make
/// room for the next one, PostgreSQL refuses that drop, and the export would be wasted; so
/// the sync stops here, naming each object, with the live table as it was.
pub(super) async fn backup_depended_on(pg: &Client, backup: &str, live: &str) -> Result<(), Fail> {
    // Views and materialized views through their rewrite rule; anything else by
    // PostgreSQL's own description. The backup's own parts (indexes, its constraints, its
    // row type) are not dependents that block its drop.
    let rows = pg
        .query(
            "SELECT DISTINCT CASE WHEN d.classid = 'pg_rewrite'::regclass                  THEN (SELECT CASE v.relkind WHEN 'm' THEN 'materialized view ' ELSE 'view ' END || v.oid::regclass::text                        FROM pg_rewrite r JOIN pg_class v ON v.oid = r.ev_class WHERE r.oid = d.objid)                  ELSE pg_describe_object(d.classid, d.objid, d.objsubid) END              FROM pg_depend d              WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = to_regclass($1) AND d.deptype = 'n'                AND NOT (d.classid = 'pg_rewrite'::regclass AND EXISTS                    (SELECT 1 FROM pg_rewrite r WHERE r.oid = d.objid AND r.ev_class = d.refobjid))                AND NOT (d.classid = 'pg_constraint'::regclass AND EXISTS                    (SELECT 1 FROM pg_constraint c WHERE c.oid = d.objid AND c.conrelid = d.refobjid))              ORDER BY 1",
            &[&backup],
        )
        .await
        .map_err(|e| pg_err("look for what depends on the backup", &e))?;
    let found: Vec<String> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
    if found.is_empty() {
        return Ok(());
    }
    Err(other(format!(
        "{CODE}: the backup {backup} (the table the last sync replaced) has objects depending on it, so this sync could not replace it: {}; refusing before the export (the live table stays)\n\
         help: point them at the live table {live}, or keep those rows in a table of your own \
         (`CREATE TABLE … AS TABLE {backup}`) and point them there; the next sync goes on once nothing depends on the backup",
        found.join(", ")
    )))
}

/// Make this session's new tables and indexes in the live table's tablespace (the database's
/// default when it has none, or when there is no live table yet): a table swapped in must not
/// move the rows to another disk. A role without CREATE on that tablespace then fails at the
/// staging table, before the export, with PostgreSQL's reason.
async fn follow_tablespace(pg: &Client, live: &str) -> Result<(), Fail> {
    pg.query_one(
        "SELECT set_config('default_tablespace', coalesce((SELECT t.spcname::text FROM pg_class c \
           JOIN pg_tablespace t ON t.oid = c.reltablespace WHERE c.oid = to_regclass($1)), ''), false)",
        &[&live],
    )
    .await
    .map_err(|e| pg_err("read the live table's tablespace", &e))?;
    Ok(())
}

/// The runtime's code for a live table the swap would lose something of.
const CODE: &str = "stir::sync_live_table";

fn refusal(what: &str, found: &[Difference]) -> String {
    let mut m = format!("{CODE}: {what}:");
    for d in found {
        m.push_str(&format!("\n  - {}\n    help: {}", d.what, d.help));
    }
    m
}

/// How a difference is carried to the staging table.
#[derive(Debug, Clone, PartialEq)]
enum Action {
    Alter(String),
    Grant(String, String),
    Owner(String),
}

/// One thing the live table has and the staging table lacks.
#[derive(Debug)]
struct Difference {
    what: String,
    help: String,
    /// `None`: it cannot be carried.
    action: Option<Action>,
}

/// Everything `live` has that `staging` lacks, one catalog query (nothing when `live` does not
/// exist).
async fn differences(
    pg: &impl tokio_postgres::GenericClient,
    live: &str,
    staging: &str,
) -> Result<Vec<Difference>, Fail> {
    let rows = pg
        .query(DIFFERENCES_SQL, &[&live, &staging])
        .await
        .map_err(|e| pg_err("read the live table's catalog", &e))?;
    let wholesale = format!(
        "a sync replaces its table wholesale on every run: drop it from {live}, or sync into a \
         table of its own and point it there (views, materialized views, grants and comments \
         are carried over)"
    );
    let mut out = Vec::new();
    for r in &rows {
        let kind: &str = r.get(0);
        let name: Option<String> = r.get(1);
        let name = name.unwrap_or_default();
        let detail: Option<String> = r.get(2);
        let detail = detail.unwrap_or_default();
        let extra: Option<String> = r.get(3);
        let cols: Option<Vec<String>> = r.get(4);
        let flag: Option<bool> = r.get(5);
        let (what, help, action) = match kind {
            "fkey" => (
                format!("foreign key {name} of {detail}"),
                wholesale.clone(),
                None,
            ),
            "trigger" => (format!("trigger {name}"), wholesale.clone(), None),
            "policy" => (
                format!("row-level security policy {name}"),
                wholesale.clone(),
                None,
            ),
            "rls" => ("row-level security".into(), wholesale.clone(), None),
            "rule" => (format!("rule {name}"), wholesale.clone(), None),
            "publication" => (format!("publication {name}"), wholesale.clone(), None),
            "partitioned" => (
                "it is a partitioned table".into(),
                format!("a sync swaps in a plain table: sync into a table of its own and attach or copy it into the partitions yourself, or make {live} a plain table"),
                None,
            ),
            "partition" | "inherits" => (
                format!(
                    "it is a {} of {name}",
                    if kind == "partition" { "partition" } else { "child table (inheritance)" }
                ),
                format!("a sync swaps in a plain table, which would leave {name}: sync into a table of its own, or detach {live} (`ALTER TABLE {name} {} {live}`)", if kind == "partition" { "DETACH PARTITION" } else { "NO INHERIT" }),
                None,
            ),
            "inherited" => (
                format!("table {name} inherits from it"),
                format!("a sync swaps in a plain table, which would leave {name} without its parent: `ALTER TABLE {name} NO INHERIT {live}`, or sync into a table of its own"),
                None,
            ),
            "column" => (
                format!("column {name} ({detail}), which the sync does not declare"),
                declare_column(&name, &detail, live),
                None,
            ),
            "default" => (
                format!("default {detail} of column {name}, which the sync {}", match &extra {
                    Some(declared) => format!("declares as {declared}"),
                    None => "does not declare".into(),
                }),
                format!("declare it on the column in the sync (`default=\"{}\"`, which also fills the NULLs ClickHouse sends), or drop it (`ALTER TABLE {live} ALTER COLUMN {} DROP DEFAULT`): a default that is not the declared one is lost at the swap, and one on a sequence of the live table would break when the backup is dropped", detail.replace('"', "\\\""), pg_ident(&name)),
                None,
            ),
            "identity" | "generated" => (
                format!("column {name} is {}", if kind == "identity" { "an identity column" } else { "generated" }),
                format!("a sync loads every column from ClickHouse or from its declared default: drop the {} (`ALTER TABLE {live} ALTER COLUMN {} DROP {}`)", if kind == "identity" { "identity" } else { "generation expression" }, pg_ident(&name), if kind == "identity" { "IDENTITY" } else { "EXPRESSION" }),
                None,
            ),
            "collation" => (
                format!("collation {detail} of column {name}"),
                format!("the sync creates its columns with the database's default collation, so sorting and comparing {name} would change: drop the collation from {live} (`ALTER TABLE {live} ALTER COLUMN {} TYPE … COLLATE \"default\"`), or sync into a table of its own", pg_ident(&name)),
                None,
            ),
            "index" => {
                let help = match cols {
                    Some(cols) if flag == Some(true) && !cols.is_empty() => format!(
                        "declare `index {} unique=#true` (or `key {0}`) in the sync, or drop the index: the sync builds only the indexes it declares",
                        kdl_list(&cols)
                    ),
                    Some(cols) if !cols.is_empty() => format!(
                        "declare `index {}` in the sync, or drop the index: the sync builds only the indexes it declares",
                        kdl_list(&cols)
                    ),
                    _ => format!("a sync declares plain indexes on columns only: drop the index from {live}, or keep it on a table of your own filled from the synced one"),
                };
                (format!("index {name} ({detail}), which the sync does not build"), help, None)
            }
            "constraint" => {
                let cols = cols.unwrap_or_default();
                let declare = if cols.is_empty() || detail.starts_with("EXCLUDE") {
                    String::new()
                } else {
                    format!(" and declare `key {}` in the sync, which builds a unique index on them", kdl_list(&cols))
                };
                (
                    format!("constraint {name} ({detail})"),
                    format!("a sync does not rebuild PRIMARY KEY, UNIQUE or EXCLUDE constraints: drop it (`ALTER TABLE {live} DROP CONSTRAINT {}`){declare}", pg_ident(&name)),
                    None,
                )
            }
            "statistics" => (
                format!("extended statistics {name} ({detail})"),
                format!("a sync does not carry extended statistics to the table it swaps in: drop them (`DROP STATISTICS {name}`)"),
                None,
            ),
            "tablespace" => (
                format!("tablespace {name}, where the new table is not"),
                format!("a sync makes the new table where the live table is when the sync starts: {live} moved meanwhile; the next run follows it"),
                None,
            ),
            "owner" => {
                let action = (flag == Some(true)).then(|| Action::Owner(pg_ident(&name)));
                (
                    format!("owner {name}"),
                    format!("the runtime's role {detail} cannot make {name} the owner of the new table: `GRANT {} TO {}` (with CREATE on the schema for {0}), or make the runtime's role the owner (`ALTER TABLE {live} OWNER TO {1}`)", pg_ident(&name), pg_ident(&detail)),
                    action,
                )
            }
            "notnull" => (
                format!("NOT NULL on column {name}"),
                String::new(),
                Some(Action::Alter(format!("ALTER COLUMN {} SET NOT NULL", pg_ident(&name)))),
            ),
            "check" => (
                format!("constraint {name} ({detail})"),
                String::new(),
                Some(Action::Alter(format!("ADD CONSTRAINT {} {detail}", pg_ident(&name)))),
            ),
            "reloption" => {
                let (k, v) = name.split_once('=').unwrap_or((&name, ""));
                (
                    format!("storage parameter {name}"),
                    String::new(),
                    Some(Action::Alter(format!("SET ({k} = {})", pg_literal(v)))),
                )
            }
            "grant" => (
                format!("grant of {detail} on column {name} to {}", extra.clone().unwrap_or_default()),
                String::new(),
                Some(Action::Grant(
                    format!("{detail} ({})", pg_ident(&name)),
                    format!(
                        "TO {}{}",
                        extra.unwrap_or_default(),
                        if flag == Some(true) { " WITH GRANT OPTION" } else { "" }
                    ),
                )),
            ),
            "replident" => {
                let live_index = extra.unwrap_or_default();
                match name.as_str() {
                    "f" | "n" => {
                        let mode = if name == "f" { "FULL" } else { "NOTHING" };
                        (
                            format!("replica identity {mode}"),
                            String::new(),
                            Some(Action::Alter(format!("REPLICA IDENTITY {mode}"))),
                        )
                    }
                    "i" if !detail.is_empty() => (
                        format!("replica identity using index {live_index}"),
                        String::new(),
                        Some(Action::Alter(format!(
                            "REPLICA IDENTITY USING INDEX {}",
                            pg_ident(&detail)
                        ))),
                    ),
                    "i" => (
                        format!("replica identity using index {live_index}, which the sync does not build"),
                        format!("declare the index's columns as the sync's `key` (a unique index the replica identity can use), or set another replica identity on {live} (`ALTER TABLE {live} REPLICA IDENTITY FULL`)"),
                        None,
                    ),
                    // The live table's is the default: the new table's is set only by the plan.
                    _ => (
                        "replica identity DEFAULT".into(),
                        String::new(),
                        Some(Action::Alter("REPLICA IDENTITY DEFAULT".into())),
                    ),
                }
            }
            "cluster" => (
                format!("CLUSTER mark on index {detail}"),
                String::new(),
                Some(Action::Alter(format!("CLUSTER ON {}", pg_ident(&name)))),
            ),
            "storage" => (
                format!("storage {detail} of column {name}"),
                String::new(),
                Some(Action::Alter(format!(
                    "ALTER COLUMN {} SET STORAGE {detail}",
                    pg_ident(&name)
                ))),
            ),
            "compression" => (
                format!("compression {detail} of column {name}"),
                String::new(),
                Some(Action::Alter(format!(
                    "ALTER COLUMN {} SET COMPRESSION {detail}",
                    pg_ident(&name)
                ))),
            ),
            "stattarget" => (
                format!("statistics target {detail} of column {name}"),
                String::new(),
                Some(Action::Alter(format!(
                    "ALTER COLUMN {} SET STATISTICS {detail}",
                    pg_ident(&name)
                ))),
            ),
            other => (format!("{other} {name}"), wholesale.clone(), None),
        };
        out.push(Difference { what, help, action });
    }
    Ok(out)
}

/// How to keep an undeclared live column: declare it, when a sync can hold its type.
fn declare_column(name: &str, pg_type: &str, live: &str) -> String {
    match stir_plan::pgtype::normalize_pg_type(pg_type) {
        Some(t) => format!(
            "declare `column {} type={}` in the sync (with `export=#false` if ClickHouse does not have it), or drop the column from {live}",
            kdl(name),
            kdl(&t)
        ),
        None => format!(
            "a sync cannot declare a column of type {pg_type}: drop the column from {live}, or keep it in a table of its own joined on the key"
        ),
    }
}

/// A name or value as KDL writes it: bare when it can be, quoted otherwise.
fn kdl(s: &str) -> String {
    let bare = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if bare {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

fn kdl_list(cols: &[String]) -> String {
    cols.iter().map(|c| kdl(c)).collect::<Vec<_>>().join(" ")
}

/// What `$1` (the live table) has and `$2` (the staging table) lacks: kind, name, detail,
/// extra, columns, flag (see [`differences`]). No rows when `$1` does not exist.
const DIFFERENCES_SQL: &str = "\
WITH t AS (SELECT to_regclass($1::text) AS live, to_regclass($2::text) AS new), \
ix AS ( \
  SELECT i.indrelid AS rel, i.indexrelid AS idx, d.def, \
    CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END || \
    CASE WHEN starts_with(d.def, d.prefix) THEN substr(d.def, length(d.prefix) + 1) ELSE d.def END AS sig \
  FROM t, pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
  JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace, \
  LATERAL (SELECT pg_get_indexdef(i.indexrelid) AS def, 'CREATE ' || \
    CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX ' || quote_ident(ic.relname) || \
    ' ON ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ' ' AS prefix) d \
  WHERE i.indrelid IN (t.live, t.new)) \
SELECT 'fkey' AS kind, k.conname::text AS name, format('%I.%I', n.nspname, c.relname) AS detail, \
  NULL::text AS extra, NULL::text[] AS cols, NULL::bool AS flag \
  FROM t, pg_constraint k JOIN pg_class c ON c.oid = k.conrelid \
  JOIN pg_namespace n ON n.oid = c.relnamespace \
  WHERE k.contype = 'f' AND (k.confrelid = t.live OR k.conrelid = t.live) \
UNION ALL SELECT 'trigger', tgname::text, NULL, NULL, NULL, NULL FROM t, pg_trigger \
  WHERE tgrelid = t.live AND NOT tgisinternal \
UNION ALL SELECT 'policy', polname::text, NULL, NULL, NULL, NULL FROM t, pg_policy \
  WHERE polrelid = t.live \
UNION ALL SELECT 'rls', NULL, NULL, NULL, NULL, NULL FROM t, pg_class \
  WHERE oid = t.live AND relrowsecurity \
UNION ALL SELECT 'rule', rulename::text, NULL, NULL, NULL, NULL FROM t, pg_rewrite \
  WHERE ev_class = t.live AND rulename <> '_RETURN' \
UNION ALL SELECT 'publication', pt.pubname::text, NULL, NULL, NULL, NULL FROM t, pg_class c \
  JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_publication_tables pt \
    ON pt.schemaname = n.nspname AND pt.tablename = c.relname WHERE c.oid = t.live \
UNION ALL SELECT 'tablespace', coalesce((SELECT spcname::text FROM pg_tablespace WHERE oid = l.reltablespace), \
    'pg_default'), NULL, NULL, NULL, NULL FROM t, pg_class l, pg_class w \
  WHERE l.oid = t.live AND w.oid = t.new AND l.reltablespace <> w.reltablespace \
UNION ALL SELECT 'partitioned', NULL, NULL, NULL, NULL, NULL FROM t, pg_class \
  WHERE oid = t.live AND relkind = 'p' \
UNION ALL SELECT CASE WHEN l.relispartition THEN 'partition' ELSE 'inherits' END, \
  format('%I.%I', n.nspname, c.relname), NULL, NULL, NULL, NULL \
  FROM t, pg_inherits i JOIN pg_class l ON l.oid = i.inhrelid JOIN pg_class c ON c.oid = i.inhparent \
  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE i.inhrelid = t.live \
UNION ALL SELECT 'inherited', format('%I.%I', n.nspname, c.relname), NULL, NULL, NULL, NULL \
  FROM t, pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
  WHERE i.inhparent = t.live AND NOT c.relispartition \
UNION ALL SELECT 'column', a.attname::text, format_type(a.atttypid, a.atttypmod), NULL, NULL, NULL \
  FROM t, pg_attribute a WHERE a.attrelid = t.live AND a.attnum > 0 AND NOT a.attisdropped \
  AND NOT EXISTS (SELECT 1 FROM pg_attribute b WHERE b.attrelid = t.new AND b.attname = a.attname \
                  AND b.attnum > 0 AND NOT b.attisdropped) \
UNION ALL SELECT CASE WHEN a.attidentity <> '' THEN 'identity' WHEN a.attgenerated <> '' \
    THEN 'generated' ELSE 'default' END, a.attname::text, \
  coalesce(pg_get_expr(d.adbin, d.adrelid), ''), \
  (SELECT pg_get_expr(e.adbin, e.adrelid) FROM pg_attrdef e WHERE e.adrelid = b.attrelid AND e.adnum = b.attnum), \
  NULL, NULL \
  FROM t, pg_attribute a JOIN pg_attribute b ON b.attname = a.attname \
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
  WHERE a.attrelid = t.live AND b.attrelid = t.new AND a.attnum > 0 AND NOT a.attisdropped \
    AND b.attnum > 0 AND NOT b.attisdropped \
    AND (a.attidentity <> '' OR a.attgenerated <> '' OR (d.oid IS NOT NULL AND pg_get_expr(d.adbin, d.adrelid) \
         IS DISTINCT FROM (SELECT pg_get_expr(e.adbin, e.adrelid) FROM pg_attrdef e \
                           WHERE e.adrelid = b.attrelid AND e.adnum = b.attnum))) \
UNION ALL SELECT 'collation', a.attname::text, \
  (SELECT format('%I.%I', n.nspname, co.collname) FROM pg_collation co \
   JOIN pg_namespace n ON n.oid = co.collnamespace WHERE co.oid = a.attcollation), NULL, NULL, NULL \
  FROM t, pg_attribute a JOIN pg_attribute b ON b.attname = a.attname \
  WHERE a.attrelid = t.live AND b.attrelid = t.new AND a.attnum > 0 AND NOT a.attisdropped \
    AND b.attnum > 0 AND NOT b.attisdropped AND a.attcollation <> b.attcollation \
UNION ALL SELECT 'index', ic.relname::text, x.def, NULL, \
  CASE WHEN x.sig = CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END \
         || 'USING btree (' || array_to_string(c.quoted, ', ') || ')' THEN c.names END, \
  i.indisunique \
  FROM t, ix x JOIN pg_index i ON i.indexrelid = x.idx JOIN pg_class ic ON ic.oid = x.idx, \
  LATERAL (SELECT array_agg(a.attname::text ORDER BY k.n) AS names, \
                  array_agg(quote_ident(a.attname) ORDER BY k.n) AS quoted \
           FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, n) \
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum) c \
  WHERE x.rel = t.live \
    AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.idx AND k.conrelid = t.live) \
    AND NOT EXISTS (SELECT 1 FROM ix y WHERE y.rel = t.new AND y.sig = x.sig) \
UNION ALL SELECT 'constraint', k.conname::text, pg_get_constraintdef(k.oid), NULL, \
  ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(attnum, n) \
        JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum ORDER BY u.n), NULL \
  FROM t, pg_constraint k WHERE k.conrelid = t.live AND k.contype IN ('p', 'u', 'x') \
UNION ALL SELECT 'statistics', format('%I.%I', n.nspname, s.stxname), pg_get_statisticsobjdef(s.oid), \
  NULL, NULL, NULL \
  FROM t, pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace WHERE s.stxrelid = t.live \
UNION ALL SELECT 'owner', pg_get_userbyid(l.relowner)::text, current_user::text, NULL, NULL, \
  (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) \
  OR (pg_has_role(l.relowner, 'USAGE') AND has_schema_privilege(l.relowner, l.relnamespace, 'CREATE')) \
  FROM t, pg_class l, pg_class s WHERE l.oid = t.live AND s.oid = t.new AND l.relowner <> s.relowner \
UNION ALL SELECT 'notnull', a.attname::text, NULL, NULL, NULL, NULL \
  FROM t, pg_attribute a JOIN pg_attribute b ON b.attname = a.attname \
  WHERE a.attrelid = t.live AND b.attrelid = t.new AND a.attnum > 0 AND NOT a.attisdropped \
    AND b.attnum > 0 AND NOT b.attisdropped AND a.attnotnull AND NOT b.attnotnull \
UNION ALL SELECT 'check', k.conname::text, pg_get_constraintdef(k.oid), NULL, NULL, NULL \
  FROM t, pg_constraint k WHERE k.conrelid = t.live AND k.contype = 'c' \
    AND NOT EXISTS (SELECT 1 FROM pg_constraint m WHERE m.conrelid = t.new AND m.contype = 'c' \
                    AND m.conname = k.conname AND pg_get_constraintdef(m.oid) = pg_get_constraintdef(k.oid)) \
UNION ALL SELECT 'reloption', o.opt, NULL, NULL, NULL, NULL \
  FROM t, pg_class l, pg_class s, \
  LATERAL (SELECT unnest(l.reloptions) AS opt UNION ALL \
           SELECT 'toast.' || unnest(tl.reloptions) FROM pg_class tl WHERE tl.oid = l.reltoastrelid) o \
  WHERE l.oid = t.live AND s.oid = t.new \
    AND o.opt <> ALL (coalesce(s.reloptions, '{}') || ARRAY(SELECT 'toast.' || unnest(ts.reloptions) \
                      FROM pg_class ts WHERE ts.oid = s.reltoastrelid)) \
UNION ALL SELECT 'grant', a.attname::text, g.privilege_type, \
  CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END, NULL, g.is_grantable \
  FROM t, pg_attribute a, aclexplode(a.attacl) g \
  WHERE a.attrelid = t.live AND a.attnum > 0 AND NOT a.attisdropped \
    AND NOT EXISTS (SELECT 1 FROM pg_attribute b, aclexplode(b.attacl) h WHERE b.attrelid = t.new \
                    AND b.attname = a.attname AND h.grantee = g.grantee \
                    AND h.privilege_type = g.privilege_type AND h.is_grantable >= g.is_grantable) \
UNION ALL SELECT 'replident', l.relreplident::text, \
  (SELECT yc.relname::text FROM ix x JOIN pg_index xi ON xi.indexrelid = x.idx, ix y \
     JOIN pg_class yc ON yc.oid = y.idx \
   WHERE x.rel = t.live AND xi.indisreplident AND y.rel = t.new AND y.sig = x.sig LIMIT 1), \
  (SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
   WHERE i.indrelid = t.live AND i.indisreplident), NULL, NULL \
  FROM t, pg_class l, pg_class s WHERE l.oid = t.live AND s.oid = t.new \
    AND (l.relreplident <> s.relreplident OR (l.relreplident = 'i' AND NOT EXISTS \
         (SELECT 1 FROM ix x JOIN pg_index xi ON xi.indexrelid = x.idx, ix y \
            JOIN pg_index yi ON yi.indexrelid = y.idx \
          WHERE x.rel = t.live AND xi.indisreplident AND y.rel = t.new AND yi.indisreplident \
            AND y.sig = x.sig))) \
UNION ALL SELECT 'cluster', yc.relname::text, xc.relname::text, NULL, NULL, NULL \
  FROM t, ix x JOIN pg_index xi ON xi.indexrelid = x.idx JOIN pg_class xc ON xc.oid = x.idx, \
  ix y JOIN pg_index yi ON yi.indexrelid = y.idx JOIN pg_class yc ON yc.oid = y.idx \
  WHERE x.rel = t.live AND xi.indisclustered AND y.rel = t.new AND y.sig = x.sig \
    AND NOT yi.indisclustered \
UNION ALL SELECT o.kind, a.attname::text, o.value, NULL, NULL, NULL \
  FROM t, pg_attribute a JOIN pg_attribute b ON b.attname = a.attname, \
  LATERAL (SELECT 'storage' AS kind, CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL' \
             WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END AS value WHERE a.attstorage <> b.attstorage \
           UNION ALL SELECT 'compression', CASE a.attcompression WHEN 'p' THEN 'pglz' WHEN 'l' THEN 'lz4' \
             ELSE 'default' END WHERE a.attcompression <> b.attcompression \
           UNION ALL SELECT 'stattarget', coalesce(a.attstattarget::int, -1)::text \
             WHERE coalesce(a.attstattarget::int, -1) <> coalesce(b.attstattarget::int, -1)) o \
  WHERE a.attrelid = t.live AND b.attrelid = t.new AND a.attnum > 0 AND NOT a.attisdropped \
    AND b.attnum > 0 AND NOT b.attisdropped AND a.atttypid = b.atttypid \
ORDER BY 1, 2";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_undeclared_column_gets_a_declaration_the_manifest_accepts() {
        let live = "\"s\".\"t\"";
        assert!(declare_column("legacy", "integer", live)
            .starts_with("declare `column legacy type=int4` in the sync"));
        assert!(declare_column("Old Name", "character varying(20)[]", live)
            .starts_with(r#"declare `column "Old Name" type="varchar(20)[]"` in the sync"#));
        assert!(declare_column("ip", "inet", live)
            .starts_with("a sync cannot declare a column of type inet: drop the column"));
        assert_eq!(kdl(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
