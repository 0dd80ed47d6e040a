//! `stir timeline [MANIFEST] [-o week.svg]`: each schedule's worst-case windows over a week.

use std::io::Write;
use std::path::Path;

use super::{load, Exit, Failure};

pub fn run(
    path: &Path,
    days: u32,
    start: Option<chrono::NaiveDate>,
    output: Option<&Path>,
    width: usize,
) -> Result<Exit, Failure> {
    let c = load(path)?;
    if !(1..=62).contains(&days) {
        return Err(Failure::Message("error: --days takes 1 to 62".into()));
    }
    let (zone, tiers, blackouts) = crate::check::tiers(&c);
    let start = start.unwrap_or_else(|| {
        let (y, m, d) = crate::schedule::ANALYSIS_START;
        chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
    });
    match output {
        Some(out) => {
            let svg = crate::timeline::svg(&tiers, &blackouts, &zone, start, days);
            std::fs::write(out, svg).map_err(|e| {
                Failure::Message(format!("error: cannot write `{}`: {e}", out.display()))
            })?;
            eprintln!(
                "wrote {} ({} schedules, {days} days from {start})",
                out.display(),
                tiers.len()
            );
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(
                crate::timeline::text(&tiers, &blackouts, &zone, start, days, width).as_bytes(),
            )?;
            writeln!(out, "# heavy run   = run   ! heavy runs overlap   . blackout   (worst case: every fire, every run to its timeout)")?;
        }
    }
    Ok(Exit::Success)
}
