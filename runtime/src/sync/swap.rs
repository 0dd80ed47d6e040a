//! The swap transaction and what it carries to the new table (grants, comments, views).

use super::*;

impl Job<'_> {
    /// The swap transaction: the plan's renames, grants and views carried over.
    pub(super) async fn swap(&mut self) -> Result<(), Fail> {
        let load = &self.sync.postgres;
        let live = self.live();
        let new = format!("{}.{}", pg_ident(&load.schema), pg_ident(&load.new_table));
        let pg = self
            .pg
            .as_mut()
            .ok_or_else(|| other("no PostgreSQL connection"))?;
        let tx = pg
            .transaction()
            .await
            .map_err(|e| pg_err("begin the swap", &e))?;
        // Lock the live table first, so the views and grants read below cannot change before
        // the renames.
        tx.batch_execute(&format!(
            "DO $$ BEGIN IF to_regclass({0}) IS NOT NULL THEN EXECUTE 'LOCK TABLE ' || {0} || ' IN ACCESS EXCLUSIVE MODE'; END IF; END $$",
            pg_literal(&live)
        ))
        .await
        .map_err(|e| pg_err("lock the live table", &e))?;
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
        // Materialized views on the live table would keep reading the old table (and block
        // its drop), so they are dropped and built again on the new table, filled from it.
        // Every view and materialized view downstream of them goes and comes back with them,
        // in dependency order, with options, indexes, grants and comments.
        let rebuilt = tx
            .query(REBUILT_SQL, &[&live])
            .await
            .map_err(|e| pg_err("list the materialized views on the live table", &e))?;
        let mut rebuilt_names = HashSet::new();
        let mut recreate: Vec<String> = Vec::new();
        let mut drops: Vec<String> = Vec::new();
        for r in &rebuilt {
            let name: String = r.get(0);
            let kind = if r.get::<_, String>(1) == "m" {
                "MATERIALIZED VIEW"
            } else {
                "VIEW"
            };
            recreate.push(format!(
                "CREATE {kind} {name}{} AS {}",
                with_options(r.get(3)),
                r.get::<_, String>(2).trim().trim_end_matches(';')
            ));
            recreate.extend(r.get::<_, Vec<String>>(4));
            recreate.extend(grants_on(&tx, &name).await?);
            if let Some(comment) = r.get::<_, Option<String>>(5) {
                recreate.push(format!(
                    "COMMENT ON {kind} {name} IS {}",
                    pg_literal(&comment)
                ));
            }
            drops.push(format!("DROP {kind} {name}"));
            rebuilt_names.insert(name);
        }
        for sql in drops.iter().rev() {
            tx.batch_execute(sql)
                .await
                .map_err(|e| pg_err(&format!("`{sql}` to build it again on the new table"), &e))?;
        }
        // Plain views on the live table follow its rename to the backup; they are pointed
        // back at the live name after the renames, keeping their OIDs (so views on them hold).
        let views = tx
            .query(VIEWS_SQL, &[&live])
            .await
            .map_err(|e| pg_err("list the views on the live table", &e))?;
        let views: Vec<(String, String, String)> = views
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1), r.get(2)))
            .filter(|(name, _, _)| !rebuilt_names.contains(name))
            .collect();
        let grants = grants_on(&tx, &live).await?;
        for sql in &load.swap {
            tx.batch_execute(sql)
                .await
                .map_err(|e| pg_err(&format!("swap `{}`", first_line(sql)), &e))?;
        }
        for g in grants.iter().chain(&comments) {
            tx.batch_execute(g)
                .await
                .map_err(|e| pg_err(&format!("carry over `{}`", first_line(g)), &e))?;
        }
        for (view, def, options) in &views {
            let def = def.trim().trim_end_matches(';');
            tx.batch_execute(&format!(
                "CREATE OR REPLACE VIEW {view}{} AS {def}",
                with_options(options.clone())
            ))
            .await
            .map_err(|e| pg_err(&format!("recreate view {view} on the new table"), &e))?;
        }
        for sql in &recreate {
            tx.batch_execute(sql).await.map_err(|e| {
                pg_err(
                    &format!("recreate `{}` on the new table", first_line(sql)),
                    &e,
                )
            })?;
        }
        tx.commit()
            .await
            .map_err(|e| pg_err("commit the swap", &e))?;
        info!(sync = %self.sync.name, table = %live, views = views.len(), rebuilt = rebuilt.len(), grants = grants.len(), "swapped");
        Ok(())
    }
}

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

/// Views (not materialized) that read `$1` (a qualified table name): name, definition, options.
const VIEWS_SQL: &str =
    "SELECT DISTINCT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name, \
    pg_get_viewdef(c.oid) AS def, coalesce(array_to_string(c.reloptions, ', '), '') AS options, \
    c.oid::int8 AS oid \
    FROM pg_depend d \
    JOIN pg_rewrite r ON r.oid = d.objid \
    JOIN pg_class c ON c.oid = r.ev_class \
    JOIN pg_namespace n ON n.oid = c.relnamespace \
    WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass \
      AND d.refobjid = to_regclass($1) AND c.relkind = 'v' AND c.oid <> d.refobjid \
    ORDER BY oid";

/// The materialized views that read `$1` directly, and every view or materialized view that
/// reads those, transitively: name, kind (`m` or `v`), definition, options, index definitions,
/// comment. Ordered so that each comes after everything it reads (its longest path from `$1`).
const REBUILT_SQL: &str = "WITH RECURSIVE dep(oid, depth) AS ( \
      SELECT c.oid, 1 FROM pg_depend d \
      JOIN pg_rewrite r ON r.oid = d.objid \
      JOIN pg_class c ON c.oid = r.ev_class \
      WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass \
        AND d.refobjid = to_regclass($1) AND c.relkind = 'm' \
    UNION \
      SELECT c.oid, dep.depth + 1 FROM dep \
      JOIN pg_depend d ON d.refobjid = dep.oid \
      JOIN pg_rewrite r ON r.oid = d.objid \
      JOIN pg_class c ON c.oid = r.ev_class \
      WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass \
        AND c.oid <> dep.oid AND c.relkind IN ('v', 'm')) \
    SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name, \
      c.relkind::text AS kind, pg_get_viewdef(c.oid) AS def, \
      coalesce(array_to_string(c.reloptions, ', '), '') AS options, \
      ARRAY(SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = c.oid ORDER BY i.indexrelid) AS indexes, \
      obj_description(c.oid, 'pg_class') AS comment, max(dep.depth) AS depth \
    FROM dep JOIN pg_class c ON c.oid = dep.oid JOIN pg_namespace n ON n.oid = c.relnamespace \
    GROUP BY c.oid, n.nspname, c.relname, c.relkind, c.reloptions \
    ORDER BY depth, c.oid";

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
