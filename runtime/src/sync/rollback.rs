//! `stir-runtime plan.json rollback SYNC`: the backup a sync kept (`T__stir_old`, one
//! generation, kept unless `keep-backup=#false`) takes the live table's place again, and the
//! live table becomes the backup, so a rollback is itself undone by another rollback.
//!
//! It is a swap like a sync's (`swap.rs`), with the same discipline: the target's advisory lock
//! for the whole rollback (never beside a run of the sync), a swap a killed run left half done
//! finished first, one short transaction whose locks wait at most `lock-timeout` (retried with
//! backoff), views re-pointed and grants and comments carried, materialized views rebuilt on
//! the restored rows. Guards: the backup must be a plain table with everything the live table
//! has (columns, indexes, constraints: else the app would lose them), and the sync's
//! `max-shrink` and empty guards hold unless `--allow-shrink` says the loss is wanted.

use super::swap::Incoming;
use super::*;

impl Syncer {
    /// Roll sync `name` back to its backup; answers the rows now live. `allow_shrink` lifts
    /// the `max-shrink` and empty guards (the rows the live table has are kept as the backup).
    pub async fn rollback(
        &self,
        ctx: &StepCtx,
        name: &str,
        run_id: &str,
        allow_shrink: bool,
    ) -> Result<StepOutcome, StepError> {
        let plan = ctx.plan.clone();
        let Some(sync) = plan.syncs.iter().find(|s| s.name == name) else {
            return Err(StepError::Other(format!("no sync `{name}` in the plan")));
        };
        let started = Instant::now();
        let mut job = self.job(ctx, &plan, sync, run_id).await?;
        let result = job.roll_back(allow_shrink).await;
        if let Some(c) = job.cancel.as_mut() {
            c.disarm();
        }
        let rows = result.map_err(|e| step_error(&format!("rollback of sync `{name}`"), e))?;
        info!(
            sync = name,
            rows,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "rolled back to the backup"
        );
        Ok(StepOutcome {
            rows: Some(rows),
            phases: vec![("swap", started.elapsed())],
            ..Default::default()
        })
    }
}

impl Job<'_> {
    async fn roll_back(&mut self, allow_shrink: bool) -> Result<u64, Fail> {
        let load = &self.sync.postgres;
        if load.rollback.is_empty() {
            return Err(other(
                "the plan has no rollback statements for it (a plan of format 5 or older)\n\
                 help: write the plan again with this stir (`stir plan -o plan.json`) and roll back with that plan",
            ));
        }
        self.take_target().await?;
        let load = &self.sync.postgres;
        let (live, old) = (self.live(), pg_qualified(&load.schema, &load.old_table));
        let found = self
            .pg()?
            .query_opt(
                "SELECT c.oid, c.relkind::text FROM pg_class c WHERE c.oid = to_regclass($1)",
                &[&old],
            )
            .await
            .map_err(|e| pg_err("look for the backup", &e))?;
        let Some(found) = found else {
            return Err(other(format!(
                "there is no backup to roll back to: {old} does not exist; nothing changed\n\
                 help: a sync keeps the table it replaces as {old} until its next run, unless the sync says `keep-backup=#false`; \
                 after the first sync of a table, or with `keep-backup=#false`, there is nothing to go back to"
            )));
        };
        let (oid, kind): (u32, String) = (found.get(0), found.get(1));
        if kind != "r" {
            return Err(other(format!(
                "{old} is not a table (relkind `{kind}`), so it is not a backup stir kept; refusing the rollback, nothing changed"
            )));
        }
        catalog::backup_lacks(self.pg()?, &live, &old).await?;
        let rows = self.count(&format!("SELECT count(*) FROM {old}")).await?;
        if !allow_shrink && self.bool(&load.live_exists).await? {
            let live_rows = self.count(&load.count_live).await?;
            check_shrink(self.sync, rows, live_rows).map_err(|m| {
                other(format!(
                    "{} (the backup is the table to swap in); nothing changed\n\
                     help: if the backup is what the table should hold, pass --allow-shrink: the rows live now are kept as the backup",
                    m.replace("the new table", "the backup")
                ))
            })?;
        }
        self.swap(Incoming::Backup { oid, rows }).await?;
        Ok(rows)
    }
}
