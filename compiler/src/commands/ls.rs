//! `stir ls [SELECTOR...] [--exclude ...] [--owner MODEL]`: models in build order, like `dbt ls`.

use std::io::Write;
use std::path::Path;

use super::{load, Exit, Failure};
use crate::compile::Compiled;
use crate::diagnostic;
use crate::resolve::Selector;

pub fn run(
    path: &Path,
    selectors: &[String],
    exclude: &[String],
    owner: Option<&str>,
) -> Result<Exit, Failure> {
    let c = load(path)?;
    let mut out = std::io::stdout().lock();
    if let Some(model) = owner {
        let Some(&m) = c.names.models.get(model) else {
            let hint = diagnostic::did_you_mean(model, c.names.models.keys().map(String::as_str))
                .unwrap_or_default();
            return Err(Failure::Message(format!(
                "error: unknown model `{model}` {hint}"
            )));
        };
        let owners = c.owners.get(&m).cloned().unwrap_or_default();
        if owners.is_empty() {
            writeln!(out, "{model}: built by no schedule")?;
        }
        for o in owners {
            let s = &c.manifest.schedules[o.schedule];
            writeln!(
                out,
                "{}\t(cron \"{}\", via {})",
                s.name.text,
                s.cron.as_ref().map_or("", |c| c.value.as_str()),
                o.selector.text
            )?;
        }
        return Ok(Exit::Success);
    }
    let ms = select(&c, selectors, exclude)?;
    for m in ms {
        writeln!(out, "{}", c.manifest.models[m].name.text)?;
    }
    Ok(Exit::Success)
}

/// The enabled models `selectors` pick (every model when none is given) less `exclude`, in
/// build order: `stir ls` and `stir graph` select alike.
pub fn select(
    c: &Compiled,
    selectors: &[String],
    exclude: &[String],
) -> Result<Vec<usize>, Failure> {
    let cx = c.select_cx();
    let mut picked = std::collections::BTreeSet::new();
    let all: Vec<String> = if selectors.is_empty() {
        c.manifest
            .models
            .iter()
            .map(|m| m.name.text.clone())
            .collect()
    } else {
        selectors.to_vec()
    };
    for (list, add) in [(&all, true), (&exclude.to_vec(), false)] {
        for s in list.iter().flat_map(|s| s.split_whitespace()) {
            let sel = Selector::parse(s).map_err(|m| Failure::Message(format!("error: {m}")))?;
            let set = cx
                .eval(&sel)
                .map_err(|e| Failure::Message(format!("error: {}\nhelp: {}", e.message, e.help)))?;
            for m in set {
                if add {
                    picked.insert(m);
                } else {
                    picked.remove(&m);
                }
            }
        }
    }
    let mut ms: Vec<usize> = picked
        .into_iter()
        .filter(|&m| !c.models[m].disabled)
        .collect();
    c.graph.sort(&mut ms);
    Ok(ms)
}
