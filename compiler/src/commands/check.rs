//! `stir check [MANIFEST]`: findings to stderr (human) or stdout (JSON, GitHub annotations).

use std::io::Write;
use std::path::Path;

use super::{load, Exit, Failure, Format, WIDTH};
use crate::diagnostic::{self, Severity};

pub fn run(path: &Path, format: Format, deny_warnings: bool, color: bool) -> Result<Exit, Failure> {
    let c = load(path)?;
    let mut out = std::io::stdout().lock();
    match format {
        Format::Human => {
            let mut err = std::io::stderr().lock();
            err.write_all(
                diagnostic::render_human(&c.findings, &c.files, color, WIDTH).as_bytes(),
            )?;
            if c.findings.is_empty() {
                writeln!(
                    err,
                    "ok: {} checked: {} models, {} schedules, {} syncs, no findings",
                    path.display(),
                    c.manifest.models.len(),
                    c.manifest.schedules.len(),
                    c.manifest.syncs.len()
                )?;
            } else {
                let level = if c.has_errors() { "error" } else { "warning" };
                writeln!(err, "{level}: {}", diagnostic::summary(&c.findings))?;
            }
        }
        Format::Json => out.write_all(diagnostic::render_json(&c.findings, &c.files).as_bytes())?,
        Format::Github => {
            out.write_all(diagnostic::render_github(&c.findings, &c.files).as_bytes())?
        }
    }
    let failed = c.has_errors()
        || (deny_warnings && c.findings.iter().any(|f| f.severity == Severity::Warning));
    Ok(if failed {
        Exit::Findings
    } else {
        Exit::Success
    })
}
