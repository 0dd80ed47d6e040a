//! stir-plan: the contract between `stir` (which writes a plan) and `stir-runtime` (which runs
//! it). Everything both sides must agree on lives here, and nothing of the compiler's front end
//! (KDL, SQL scanning, templates): the plan types and their JSON, cron in Airflow's dialect,
//! zones and fire times, the schedule analysis and its week picture (the runtime's console draws
//! the same picture `stir timeline` does), signatures, SQL quoting, PostgreSQL column types, and
//! the bounded file reader.

pub mod cron;
pub mod file;
pub mod pgtype;
pub mod quote;
pub mod schedule;
pub mod select;
pub mod signature;
pub mod timeline;
mod types;

pub use types::*;

/// The closest known name, for "did you mean" help (just's `suggestion.rs`).
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = strsim::osa_distance(name, c);
        let limit = (name.chars().count().max(c.chars().count()) / 3).max(1);
        if d <= limit && best.is_none_or(|(bd, bc)| (d, c) < (bd, bc)) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// "did you mean `x`?" for the closest known name, if one is close.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    suggest(name, candidates).map(|c| format!("did you mean `{c}`?"))
}
