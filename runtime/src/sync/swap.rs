//! The swap. The new table takes the live table's place in one short transaction; then each
//! materialized view downstream of it is built anew beside the old one, outside any lock that
//! readers wait on, and swapped in the same short way. Every lock is asked for with
//! `lock-timeout`: a swap that cannot have its locks soon gives up without blocking anyone
//! and tries again, with backoff, while the run's window allows.
//!
//! Between the two phases the table serves the new rows and the materialized views the
//! previous ones. The views still to rebuild are written into the backup table's comment in
//! the first transaction, so a run killed in between is finished by the next run.

use serde::{Deserialize, Serialize};

use super::*;

/// Marks a backup table whose downstream materialized views are still to rebuild.
const PENDING: &str = "stir: materialized views to rebuild: ";

/// What takes the live table's place, with the rows this run counted in it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Incoming {
    /// This run's staging table (a sync).
    Staging { rows: u64 },
    /// The backup, by the OID the rollback checked (a rollback).
    Backup { oid: u32, rows: u64 },
}

/// A view or materialized view downstream of the live table, as the catalog had it before
/// the swap (definitions name the live table, so they read the new one once it is swapped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Dependent {
    /// `quote_ident(schema).quote_ident(name)`, as `reads` names it.
    key: String,
    schema: String,
    name: String,
    materialized: bool,
    def: String,
    options: String,
    /// Index name, UNIQUE, and its definition from ` USING ` on.
    indexes: Vec<(String, bool, String)>,
    grants: Vec<String>,
    comment: Option<String>,
    /// The keys of what it reads directly; `""` is the live table.
    reads: Vec<String>,
}

impl Dependent {
    fn qualified(&self) -> String {
        pg_qualified(&self.schema, &self.name)
    }
}

/// A name derived from `base` that fits PostgreSQL's 63 bytes (a long one keeps a prefix
/// and a hash of the whole, so two long bases never meet).
fn fitted(base: &str) -> String {
    if base.len() <= 63 {
        return base.to_string();
    }
    let mut cut = 54;
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}_{}",
        &base[..cut],
        &stir_plan::sha256_hex(base.as_bytes())[..8]
    )
}

/// Lock errors that mean "not now": the lock was not granted in time, or a deadlock with a
/// reader was broken by failing this transaction.
fn lock_err(what: &str, e: &tokio_postgres::Error) -> Fail {
    use tokio_postgres::error::SqlState;
    match e.code() {
        Some(c) if *c == SqlState::LOCK_NOT_AVAILABLE || *c == SqlState::T_R_DEADLOCK_DETECTED => {
            Fail::Busy(format!("{what}: {}", pg_message(e)))
        }
        _ => pg_err(what, e),
    }
}

impl Job<'_> {
    /// The sync's `lock-timeout`; never 0, which PostgreSQL reads as "wait forever".
    fn lock_timeout_ms(&self) -> u64 {
        match self.sync.lock_timeout_ms {
            0 => 5000,
            ms => ms,
        }
    }

    /// After a `Busy`: wait with backoff, or give up when another try would not fit the
    /// run's window (five tries without a window).
    async fn wait_to_retry(&self, tries: &mut u32, why: &str) -> Result<(), Fail> {
        let backoff = Duration::from_millis(250)
            .saturating_mul(1 << (*tries).min(7))
            .min(Duration::from_secs(30));
        let lock = Duration::from_millis(self.lock_timeout_ms());
        let fits = match self.remaining() {
            Some(left) => backoff + lock + lock < left,
            None => *tries < 4,
        };
        *tries += 1;
        if !fits {
            return Err(other(format!(
                "gave up after {} tries, each waiting at most {}ms for its locks: {why}; the live table is unchanged\n\
                 help: a long query on the table (or a view on it) held it; the next run tries again, or raise `lock-timeout`",
                *tries,
                self.lock_timeout_ms()
            )));
        }
        warn!(sync = %self.sync.name, tries = *tries, backoff_ms = backoff.as_millis() as u64, reason = %why, "swap postponed: its lock is busy");
        tokio::time::sleep(backoff).await;
        Ok(())
    }

    /// The swap of the table, then the rebuild of what reads it through materialized views.
    pub(super) async fn swap(&mut self, incoming: Incoming) -> Result<(), Fail> {
        let mut tries = 0;
        let pending = loop {
            match self.swap_table(incoming).await {
                Err(Fail::Busy(why)) => self.wait_to_retry(&mut tries, &why).await?,
                r => break r?,
            }
        };
        if !pending.is_empty() {
            self.runner.failpoint(Failpoint::BeforeRebuild).await?;
        }
        self.rebuild(pending).await.map_err(|e| match e {
            Fail::Step(e) => other(format!(
                "the new table is live, but a materialized view on it could not be rebuilt and \
                 still holds the previous rows (the next run tries again): {e}"
            )),
            e => e,
        })
    }

    /// Finish what a killed run left between the two phases of its swap.
    pub(super) async fn finish_interrupted_swap(&mut self) -> Result<(), Fail> {
        let load = &self.sync.postgres;
        let old = pg_qualified(&load.schema, &load.old_table);
        let comment: Option<String> = self
            .pg()?
            .query_one(
                "SELECT obj_description(to_regclass($1), 'pg_class')",
                &[&old],
            )
            .await
            .map_err(|e| pg_err("read the backup table's comment", &e))?
            .get(0);
        let Some(json) = comment.as_deref().and_then(|c| c.strip_prefix(PENDING)) else {
            return Ok(());
        };
        let pending: Vec<Dependent> = serde_json::from_str(json).map_err(|e| {
            other(format!(
                "the comment on {old} names materialized views to rebuild but cannot be read ({e}); \
                 rebuild them by hand and drop the comment"
            ))
        })?;
        // The note names the views as they were at the swap; someone may have fixed one by
        // hand since (dropped it, or made it anew on the live table). What still reads the
        // backup is rebuilt, and so is a view still defined as noted: one over a plain view
        // reads the live table through it (the swap re-pointed the plain view) but holds the
        // rows of before. A view dropped or defined anew is left as it is now.
        let still: std::collections::BTreeSet<(String, String)> = self
            .pg()?
            .query(DEPENDENTS_SQL, &[&old])
            .await
            .map_err(|e| pg_err("list the views on the backup table", &e))?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let reads_backup = |m: &Dependent| {
            let retired = fitted(&format!("{}__stir_old", m.name));
            still.contains(&(m.schema.clone(), m.name.clone()))
                || still.contains(&(m.schema.clone(), retired))
        };
        let mut as_noted = std::collections::BTreeSet::new();
        for m in pending
            .iter()
            .filter(|m| m.materialized && !reads_backup(m))
        {
            let def: Option<String> = self
                .pg()?
                .query_opt(
                    "SELECT pg_get_viewdef(c.oid) FROM pg_class c \
                     WHERE c.oid = to_regclass($1) AND c.relkind = 'm'",
                    &[&m.qualified()],
                )
                .await
                .map_err(|e| pg_err("read a materialized view's definition", &e))?
                .map(|r| r.get(0));
            if def.as_deref() == Some(m.def.as_str()) {
                as_noted.insert(m.key.clone());
            }
        }
        let pending: Vec<Dependent> = pending
            .into_iter()
            .filter(|m| !m.materialized || reads_backup(m) || as_noted.contains(&m.key))
            .collect();
        warn!(sync = %self.sync.name, views = pending.len(), "an earlier run was stopped before it rebuilt the materialized views on the table; rebuilding them now");
        self.rebuild(pending).await.map_err(|e| match e {
            Fail::Step(e) => other(format!(
                "an earlier run swapped the table in but could not rebuild the materialized views \
                 on it, which still hold the previous rows; this sync goes on once they rebuild: {e}\n\
                 help: fix the view's definition (or drop the view) so that it builds on the live table; \
                 the live table stays as it is until then"
            )),
            e => e,
        })
    }

    /// The first phase: one transaction, its locks asked for with `lock-timeout`. Answers the
    /// views and materialized views downstream, when there are materialized views among them.
    async fn swap_table(&mut self, incoming: Incoming) -> Result<Vec<Dependent>, Fail> {
        self.bound().await?;
        let load = &self.sync.postgres;
        let live = self.live();
        let staging = pg_qualified(&load.schema, &load.new_table);
        let old = pg_qualified(&load.schema, &load.old_table);
        let (new, statements) = match incoming {
            Incoming::Staging { .. } => (staging, &load.swap),
            Incoming::Backup { .. } => (old.clone(), &load.rollback),
        };
        let lock_ms = self.lock_timeout_ms();
        let staging_oid = self.staging_oid;
        let pg = self
            .pg
            .as_mut()
            .ok_or_else(|| other("no PostgreSQL connection"))?;
        let tx = locked_tx(pg, lock_ms).await?;
        // The incoming table, whole: locked first, so nothing can change it before the
        // commit, and counted before the live table is locked, so no reader waits on the scan.
        tx.batch_execute(&format!("LOCK TABLE {new} IN ACCESS EXCLUSIVE MODE"))
            .await
            .map_err(|e| lock_err(&format!("lock {new}"), &e))?;
        let oid: Option<u32> = tx
            .query_one("SELECT to_regclass($1)::oid", &[&new])
            .await
            .map_err(|e| pg_err("find the table to swap in", &e))?
            .get(0);
        let expected = match incoming {
            Incoming::Staging { .. } => staging_oid,
            Incoming::Backup { oid, .. } => Some(oid),
        };
        let what = match incoming {
            Incoming::Staging { .. } => "the staging table",
            Incoming::Backup { .. } => "the backup",
        };
        if oid.is_none() || oid != expected {
            return Err(other(format!(
                "{what} {new} is not the one this run loaded (oid {oid:?}, loaded {expected:?}); refusing the swap"
            )));
        }
        let rows: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {new}"), &[])
            .await
            .map_err(|e| pg_err("count the table to swap in", &e))?
            .get(0);
        let counted = match incoming {
            Incoming::Staging { rows } | Incoming::Backup { rows, .. } => rows,
        };
        if rows as u64 != counted {
            return Err(other(format!(
                "{what} {new} holds {rows} rows, but this run counted {counted}; refusing the swap"
            )));
        }
        let deps = dependents(&tx, &live).await?;
        // Views that read the table, then the table: the order a reader of a view takes them.
        let direct: Vec<Dependent> = deps
            .iter()
            .filter(|d| !d.materialized && d.reads.iter().any(|r| r.is_empty()))
            .cloned()
            .collect();
        let live_exists: bool = tx
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&live])
            .await
            .map_err(|e| pg_err("find the live table", &e))?
            .get(0);
        let mut locked: Vec<String> = direct.iter().map(|d| d.qualified()).collect();
        if live_exists {
            locked.push(live.clone());
        }
        if !locked.is_empty() {
            tx.batch_execute(&format!(
                "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
                locked.join(", ")
            ))
            .await
            .map_err(|e| lock_err(&format!("lock {live}"), &e))?;
            if dependents(&tx, &live).await? != deps {
                return Err(Fail::Busy(format!(
                    "the views on {live} changed while the swap waited for its lock"
                )));
            }
        }
        uncarried(&tx, &live, &new).await?;
        // Comments on the table and on the columns the new table has too.
        let comments: Vec<String> = tx
            .query(COMMENTS_SQL, &[&live, &new])
            .await
            .map_err(|e| pg_err("read the comments on the live table", &e))?
            .iter()
            .map(|r| {
                let comment = pg_literal(&r.get::<_, String>(1));
                match r.get::<_, Option<String>>(0) {
                    Some(col) => format!("COMMENT ON COLUMN {live}.{col} IS {comment}"),
                    None => format!("COMMENT ON TABLE {live} IS {comment}"),
                }
            })
            .collect();
        let grants = grants_on(&tx, &live).await?;
        // The staging mark goes before the table becomes live: a live table must never look
        // like a killed run's leftover.
        if matches!(incoming, Incoming::Staging { .. }) {
            tx.batch_execute(&format!("COMMENT ON TABLE {new} IS NULL"))
                .await
                .map_err(|e| pg_err("clear the staging mark", &e))?;
        }
        for sql in statements {
            tx.batch_execute(sql)
                .await
                .map_err(|e| lock_err(&format!("swap `{}`", first_line(sql)), &e))?;
        }
        for g in grants.iter().chain(&comments) {
            tx.batch_execute(g)
                .await
                .map_err(|e| pg_err(&format!("carry over `{}`", first_line(g)), &e))?;
        }
        // Views on the live table followed its rename to the backup; they are pointed back at
        // the live name, keeping their OIDs (so what reads them holds).
        for v in &direct {
            replace_view(&tx, v).await?;
        }
        self.runner.failpoint(Failpoint::InSwap).await?;
        let pending = if deps.iter().any(|d| d.materialized) {
            let json = serde_json::to_string(&deps)
                .map_err(|e| other(format!("cannot note the views to rebuild: {e}")))?;
            tx.batch_execute(&format!(
                "COMMENT ON TABLE {old} IS {}",
                pg_literal(&format!("{PENDING}{json}"))
            ))
            .await
            .map_err(|e| pg_err("note the materialized views to rebuild", &e))?;
            deps
        } else {
            Vec::new()
        };
        tx.commit()
            .await
            .map_err(|e| pg_err("commit the swap", &e))?;
        info!(sync = %self.sync.name, table = %live, views = direct.len(), grants = grants.len(), "swapped");
        Ok(pending)
    }

    /// The second phase: each materialized view in `deps` (upstream first) is built under a
    /// new name from its definition, which now reads the new rows, then swapped in; the old
    /// ones are dropped at the end, and the backup's note with them.
    async fn rebuild(&mut self, deps: Vec<Dependent>) -> Result<(), Fail> {
        let mut retired = Vec::new();
        for m in deps.iter().filter(|d| d.materialized) {
            let retired_name = pg_qualified(&m.schema, &fitted(&format!("{}__stir_old", m.name)));
            let swapped: bool = self
                .pg()?
                .query_one("SELECT to_regclass($1) IS NOT NULL", &[&retired_name])
                .await
                .map_err(|e| pg_err("look for a retired materialized view", &e))?
                .get(0);
            if !swapped {
                self.build_beside(m).await?;
                let mut tries = 0;
                loop {
                    match self.swap_matview(m, &deps).await {
                        Err(Fail::Busy(why)) => self.wait_to_retry(&mut tries, &why).await?,
                        r => break r?,
                    }
                }
            }
            retired.push(retired_name);
        }
        for r in retired.iter().rev() {
            self.exec(
                &format!("DROP MATERIALIZED VIEW IF EXISTS {r}"),
                "drop the previous materialized view",
            )
            .await?;
        }
        if !deps.is_empty() {
            let load = &self.sync.postgres;
            let old = pg_qualified(&load.schema, &load.old_table);
            self.exec(
                &format!("DO $$ BEGIN IF to_regclass({0}) IS NOT NULL THEN EXECUTE 'COMMENT ON TABLE ' || {0} || ' IS NULL'; END IF; END $$", pg_literal(&old)),
                "clear the backup's note",
            )
            .await?;
        }
        Ok(())
    }

    /// `<name>__stir_new` with the indexes of `m`, filled from its definition.
    async fn build_beside(&self, m: &Dependent) -> Result<(), Fail> {
        let fresh = pg_qualified(&m.schema, &fitted(&format!("{}__stir_new", m.name)));
        self.exec(
            &format!("DROP MATERIALIZED VIEW IF EXISTS {fresh}"),
            "drop a leftover",
        )
        .await?;
        self.exec(
            &format!(
                "CREATE MATERIALIZED VIEW {fresh}{} AS {}",
                with_options(m.options.clone()),
                m.def.trim().trim_end_matches(';')
            ),
            &format!("rebuild {}", m.qualified()),
        )
        .await?;
        for (name, unique, using) in &m.indexes {
            self.exec(
                &format!(
                    "CREATE {}INDEX {} ON {fresh}{using}",
                    if *unique { "UNIQUE " } else { "" },
                    pg_ident(&fitted(&format!("{name}__stir_new")))
                ),
                &format!("index the new {}", m.qualified()),
            )
            .await?;
        }
        Ok(())
    }

    /// One short transaction: the new materialized view and its indexes take the names of
    /// the old ones, which are kept under `__stir_old` names until the end of the rebuild.
    async fn swap_matview(&mut self, m: &Dependent, deps: &[Dependent]) -> Result<(), Fail> {
        self.bound().await?;
        let lock_ms = self.lock_timeout_ms();
        let target = m.qualified();
        let fresh = fitted(&format!("{}__stir_new", m.name));
        let direct: Vec<&Dependent> = deps
            .iter()
            .filter(|d| !d.materialized && d.reads.contains(&m.key))
            .collect();
        // The views that read it, then the materialized view itself through its rename
        // (LOCK TABLE does not take materialized views).
        let locked: Vec<String> = direct.iter().map(|d| d.qualified()).collect();
        let mut statements = Vec::new();
        if !locked.is_empty() {
            statements.push(format!(
                "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
                locked.join(", ")
            ));
        }
        for (name, _, _) in &m.indexes {
            statements.push(format!(
                "ALTER INDEX {} RENAME TO {}",
                pg_qualified(&m.schema, name),
                pg_ident(&fitted(&format!("{name}__stir_old")))
            ));
        }
        statements.push(format!(
            "ALTER MATERIALIZED VIEW {target} RENAME TO {}",
            pg_ident(&fitted(&format!("{}__stir_old", m.name)))
        ));
        statements.push(format!(
            "ALTER MATERIALIZED VIEW {} RENAME TO {}",
            pg_qualified(&m.schema, &fresh),
            pg_ident(&m.name)
        ));
        for (name, _, _) in &m.indexes {
            statements.push(format!(
                "ALTER INDEX {} RENAME TO {}",
                pg_qualified(&m.schema, &fitted(&format!("{name}__stir_new"))),
                pg_ident(name)
            ));
        }
        statements.extend(m.grants.iter().cloned());
        if let Some(c) = &m.comment {
            statements.push(format!(
                "COMMENT ON MATERIALIZED VIEW {target} IS {}",
                pg_literal(c)
            ));
        }
        let pg = self
            .pg
            .as_mut()
            .ok_or_else(|| other("no PostgreSQL connection"))?;
        let tx = locked_tx(pg, lock_ms).await?;
        for sql in &statements {
            tx.batch_execute(sql)
                .await
                .map_err(|e| lock_err(&format!("`{}`", first_line(sql)), &e))?;
        }
        for v in &direct {
            replace_view(&tx, v).await?;
        }
        tx.commit()
            .await
            .map_err(|e| pg_err("commit the swap of a materialized view", &e))?;
        info!(sync = %self.sync.name, view = %target, "materialized view rebuilt on the new table");
        Ok(())
    }
}

/// A transaction whose lock waits end after `lock_ms`.
async fn locked_tx(
    pg: &mut tokio_postgres::Client,
    lock_ms: u64,
) -> Result<tokio_postgres::Transaction<'_>, Fail> {
    let tx = pg
        .transaction()
        .await
        .map_err(|e| pg_err("begin the swap", &e))?;
    tx.batch_execute(&format!("SET LOCAL lock_timeout = {lock_ms}"))
        .await
        .map_err(|e| pg_err("set lock_timeout", &e))?;
    Ok(tx)
}

/// Point a plain view back at the names it was defined on, keeping its OID and options.
async fn replace_view(tx: &tokio_postgres::Transaction<'_>, v: &Dependent) -> Result<(), Fail> {
    let name = v.qualified();
    tx.batch_execute(&format!(
        "CREATE OR REPLACE VIEW {name}{} AS {}",
        with_options(v.options.clone()),
        v.def.trim().trim_end_matches(';')
    ))
    .await
    .map_err(|e| pg_err(&format!("recreate view {name} on the new table"), &e))
}

/// Everything downstream of `live` through views and materialized views, upstream first.
async fn dependents(
    tx: &tokio_postgres::Transaction<'_>,
    live: &str,
) -> Result<Vec<Dependent>, Fail> {
    let rows = tx
        .query(DEPENDENTS_SQL, &[&live])
        .await
        .map_err(|e| pg_err("list the views on the live table", &e))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let schema: String = r.get(0);
        let name: String = r.get(1);
        let names: Vec<String> = r.get(5);
        let unique: Vec<bool> = r.get(6);
        let using: Vec<String> = r.get(7);
        let grants = grants_on(tx, &pg_qualified(&schema, &name)).await?;
        out.push(Dependent {
            key: r.get(9),
            schema,
            name,
            materialized: r.get(2),
            def: r.get(3),
            options: r.get(4),
            indexes: names
                .into_iter()
                .zip(unique)
                .zip(using)
                .map(|((n, u), s)| (n, u, s))
                .collect(),
            grants,
            comment: r.get(8),
            reads: r.get(10),
        });
    }
    Ok(out)
}

/// The views and materialized views that read `$1`, transitively, each with the relations it
/// reads directly (`''` for `$1`), ordered so each comes after everything it reads.
const DEPENDENTS_SQL: &str = "WITH RECURSIVE dep(oid, parent, depth) AS ( \
      SELECT c.oid, d.refobjid, 1 FROM pg_depend d \
      JOIN pg_rewrite r ON r.oid = d.objid \
      JOIN pg_class c ON c.oid = r.ev_class \
      WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass \
        AND d.refobjid = to_regclass($1) AND c.relkind IN ('v', 'm') AND c.oid <> d.refobjid \
    UNION \
      SELECT c.oid, d.refobjid, dep.depth + 1 FROM dep \
      JOIN pg_depend d ON d.refobjid = dep.oid \
      JOIN pg_rewrite r ON r.oid = d.objid \
      JOIN pg_class c ON c.oid = r.ev_class \
      WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass \
        AND c.oid <> dep.oid AND c.relkind IN ('v', 'm') AND dep.depth < 64) \
    SELECT n.nspname::text, c.relname::text, c.relkind = 'm', pg_get_viewdef(c.oid), \
      coalesce(array_to_string(c.reloptions, ', '), ''), \
      ARRAY(SELECT ic.relname::text FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
            WHERE i.indrelid = c.oid ORDER BY i.indexrelid), \
      ARRAY(SELECT i.indisunique FROM pg_index i WHERE i.indrelid = c.oid ORDER BY i.indexrelid), \
      ARRAY(SELECT substring(pg_get_indexdef(i.indexrelid) FROM ' USING .*$') FROM pg_index i \
            WHERE i.indrelid = c.oid ORDER BY i.indexrelid), \
      obj_description(c.oid, 'pg_class'), \
      quote_ident(n.nspname) || '.' || quote_ident(c.relname), \
      ARRAY(SELECT DISTINCT CASE WHEN p.parent = to_regclass($1) THEN '' \
              ELSE quote_ident(pn.nspname) || '.' || quote_ident(pc.relname) END \
            FROM dep p JOIN pg_class pc ON pc.oid = p.parent \
            JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE p.oid = c.oid ORDER BY 1) \
    FROM dep JOIN pg_class c ON c.oid = dep.oid JOIN pg_namespace n ON n.oid = c.relnamespace \
    GROUP BY c.oid, n.nspname, c.relname, c.relkind, c.reloptions \
    ORDER BY max(dep.depth), c.oid";

/// Comments on `$1` (column NULL) and on its columns that `$2` also has: quoted column, text.
const COMMENTS_SQL: &str = "\
    SELECT NULL::text, obj_description(to_regclass($1), 'pg_class') \
      WHERE obj_description(to_regclass($1), 'pg_class') IS NOT NULL \
    UNION ALL SELECT quote_ident(a.attname::text), col_description(a.attrelid, a.attnum) \
      FROM pg_attribute a \
      WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped \
        AND col_description(a.attrelid, a.attnum) IS NOT NULL \
        AND EXISTS (SELECT 1 FROM pg_attribute b WHERE b.attrelid = to_regclass($2) \
                    AND b.attname = a.attname AND b.attnum > 0 AND NOT b.attisdropped)";

/// ` WITH (...)` for a view's storage options (`security_barrier`, ...), or nothing.
fn with_options(options: String) -> String {
    if options.is_empty() {
        options
    } else {
        format!(" WITH ({options})")
    }
}

/// `GRANT` statements that restore the explicit grants on `object` (a qualified name).
async fn grants_on(
    tx: &tokio_postgres::Transaction<'_>,
    object: &str,
) -> Result<Vec<String>, Fail> {
    let rows = tx
        .query(GRANTS_SQL, &[&object])
        .await
        .map_err(|e| pg_err(&format!("read the grants on {object}"), &e))?;
    Ok(rows
        .iter()
        .map(|r| {
            let privilege: String = r.get(0);
            let grantee: String = r.get(1);
            let grantable: bool = r.get(2);
            format!(
                "GRANT {privilege} ON {object} TO {grantee}{}",
                if grantable { " WITH GRANT OPTION" } else { "" }
            )
        })
        .collect())
}

/// Explicit grants on `$1` other than the owner's own.
const GRANTS_SQL: &str = "SELECT a.privilege_type, \
    CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, \
    a.is_grantable \
    FROM pg_class c, aclexplode(c.relacl) a \
    WHERE c.oid = to_regclass($1) AND a.grantee <> c.relowner \
    ORDER BY 2, 1";

#[cfg(test)]
mod tests {
    use super::fitted;

    /// Names of rebuilt views fit PostgreSQL's 63 bytes (it would cut a longer one silently,
    /// and two long names could meet): a short one is kept, a long one is a prefix cut at a
    /// character boundary at or before byte 54, `_` and 8 hex characters of the whole's hash.
    #[test]
    fn derived_names_fit_63_bytes_and_long_ones_stay_apart() {
        assert_eq!(fitted("v__stir_new"), "v__stir_new");
        let exact = "v".repeat(63);
        assert_eq!(fitted(&exact), exact);
        for base in [
            format!("{}__stir_new", "v".repeat(60)),
            // A two-byte character across byte 54: the cut moves back before it.
            format!("{}é{}__stir_new", "v".repeat(53), "w".repeat(20)),
            format!("{}ü{}__stir_old", "v".repeat(52), "w".repeat(20)),
        ] {
            let f = fitted(&base);
            assert!(f.len() <= 63, "{f} is {} bytes", f.len());
            let (prefix, hash) = f.rsplit_once('_').unwrap();
            assert!(base.starts_with(prefix) && prefix.len() <= 54, "{f}");
            assert!(prefix.len() >= 53, "the cut keeps as much as fits: {f}");
            assert_eq!(hash, &stir_plan::sha256_hex(base.as_bytes())[..8]);
        }
        let (a, b) = (
            format!("{}_a__stir_new", "v".repeat(60)),
            format!("{}_b__stir_new", "v".repeat(60)),
        );
        assert_ne!(fitted(&a), fitted(&b));
    }
}
