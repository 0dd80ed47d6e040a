//! What a swap cannot carry: refused before the export and again under the swap's lock.

use super::*;

/// Refuse a live table that has what a swap cannot carry to the new table: it would be lost
/// (triggers, policies, rules, foreign keys from or to it) or silently wrong (publication
/// membership: logical replication does not see a table replaced wholesale).
pub(super) async fn uncarried(
    pg: &impl tokio_postgres::GenericClient,
    live: &str,
) -> Result<(), Fail> {
    let found: Vec<String> = pg
        .query(UNCARRIED_SQL, &[&live])
        .await
        .map_err(|e| pg_err("read what depends on the live table", &e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if found.is_empty() {
        return Ok(());
    }
    Err(other(format!(
        "the live table {live} has what a sync cannot carry to the table it swaps in: {}; refusing before touching it\n\
         help: a sync replaces its table wholesale on every run; drop these from {live}, or sync \
         into a table of its own and point them there (views, materialized views, grants and \
         comments are carried over)",
        found.join(", ")
    )))
}

/// What a swap cannot carry, one line each (no rows when `$1` does not exist).
const UNCARRIED_SQL: &str = "\
    SELECT format('foreign key %I of %I.%I', k.conname, n.nspname, c.relname) FROM pg_constraint k \
      JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
      WHERE k.contype = 'f' AND (k.confrelid = to_regclass($1) OR k.conrelid = to_regclass($1)) \
    UNION ALL SELECT format('trigger %I', tgname) FROM pg_trigger \
      WHERE tgrelid = to_regclass($1) AND NOT tgisinternal \
    UNION ALL SELECT format('row-level security policy %I', polname) FROM pg_policy \
      WHERE polrelid = to_regclass($1) \
    UNION ALL SELECT 'row-level security' FROM pg_class \
      WHERE oid = to_regclass($1) AND relrowsecurity \
    UNION ALL SELECT format('rule %I', rulename) FROM pg_rewrite \
      WHERE ev_class = to_regclass($1) AND rulename <> '_RETURN' \
    UNION ALL SELECT format('publication %I', p.pubname) FROM pg_publication_rel pr \
      JOIN pg_publication p ON p.oid = pr.prpubid WHERE pr.prrelid = to_regclass($1) \
    ORDER BY 1";
