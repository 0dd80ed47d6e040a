//! Serving targets: the PostgreSQL databases syncs write. `serving postgres schema=..` is the
//! unnamed target (URL `STIR_POSTGRES_URL`); `serving postgres NAME schema=..` a named one (URL
//! `STIR_POSTGRES_URL_<NAME>`, upper-cased, `-` as `_`). URLs are read by the runtime, never
//! written into the plan.
//!
//! A sync writes its `target=NAME`, or the default: the unnamed target when there is one, else
//! the only named one. Several named targets and no unnamed one leave no default: each sync
//! then says its target.

use crate::diagnostic::FileId;
use crate::diagnostic::{did_you_mean, Finding};
use crate::manifest::{Manifest, Sync};

/// Where a sync writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'m> {
    /// `None`: the unnamed target.
    pub name: Option<&'m str>,
    pub schema: &'m str,
}

/// The target a sync without `target=` writes, if the manifest has one.
pub fn default_target(m: &Manifest) -> Option<Target<'_>> {
    match (&m.serving, m.targets.as_slice()) {
        (Some(s), _) => Some(Target {
            name: None,
            schema: &s.schema,
        }),
        (None, [only]) => Some(Target {
            name: Some(&only.name.text),
            schema: &only.schema,
        }),
        _ => None,
    }
}

/// The target sync `s` writes; `None` when it names no declared target or has no default
/// (reported by [`check`]).
pub fn of<'m>(m: &'m Manifest, s: &Sync) -> Option<Target<'m>> {
    match &s.target {
        None => default_target(m),
        Some(n) => m
            .targets
            .iter()
            .find(|t| t.name.text == n.text)
            .map(|t| Target {
                name: Some(&t.name.text),
                schema: &t.schema,
            }),
    }
}

pub use crate::plan::target_url_var as url_var;

/// Duplicate target names (or two that would read one variable), syncs naming an unknown
/// target (with the closest declared one), and syncs without a target where there is no default.
pub fn check(m: &Manifest, file: FileId) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, t) in m.targets.iter().enumerate() {
        let var = url_var(Some(&t.name.text));
        if let Some(first) = m.targets[..i]
            .iter()
            .find(|p| url_var(Some(&p.name.text)) == var)
        {
            out.push(
                Finding::error(
                    "stir::duplicate",
                    file,
                    t.name.span.clone(),
                    format!(
                        "serving targets `{}` and `{}` both read their URL from `{var}`",
                        first.name.text, t.name.text
                    ),
                )
                .label("second target")
                .note(first.name.span.clone(), "first target")
                .help("give each serving target a name of its own"),
            );
        }
    }
    let names: Vec<&str> = m.targets.iter().map(|t| t.name.text.as_str()).collect();
    for s in &m.syncs {
        match &s.target {
            Some(n) if !names.contains(&n.text.as_str()) => {
                let help = did_you_mean(&n.text, names.iter().copied()).unwrap_or_else(|| {
                    if names.is_empty() {
                        format!("declare it with `serving postgres {} schema=public`, or drop `target=` to write the default target", n.text)
                    } else {
                        format!("the serving targets are {}", names.join(", "))
                    }
                });
                out.push(
                    Finding::error(
                        "stir::unknown_target",
                        file,
                        n.span.clone(),
                        format!("unknown serving target `{}`", n.text),
                    )
                    .label("no such target")
                    .help(help),
                );
            }
            None if default_target(m).is_none() && !m.targets.is_empty() => {
                out.push(
                    Finding::error(
                        "stir::missing_property",
                        file,
                        s.name.span.clone(),
                        format!(
                            "sync `{}` does not say which serving target it writes, and there is no default",
                            s.name.text
                        ),
                    )
                    .label("no target")
                    .help(format!(
                        "add `target=NAME` ({}), or declare an unnamed `serving postgres schema=..` as the default",
                        names.join(", ")
                    )),
                );
            }
            _ => {}
        }
    }
    out
}
