//! `stir graph [SELECTOR...] [--format dot|svg|json] [-o FILE]`: the model lineage.

use std::io::Write;
use std::path::PathBuf;

use clap::ValueEnum;

use super::{load, ls, Exit, Failure, ManifestArg};
use crate::lineage::Lineage;

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
pub enum GraphFormat {
    /// Graphviz (`dot -Tsvg`), for larger graphs or other layouts.
    Dot,
    /// A standalone picture for a browser, laid out by stir (no Graphviz needed).
    Svg,
    /// Nodes and edges, for other tools.
    Json,
}

#[derive(clap::Args, Debug)]
pub struct GraphArgs {
    /// Selectors as in `stir ls` (tag:NAME, MODEL, +MODEL, MODEL+, path:DIR); default: every model.
    pub selectors: Vec<String>,
    #[arg(long, num_args = 1.., value_delimiter = ' ')]
    pub exclude: Vec<String>,
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,
    /// Write here instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub manifest: ManifestArg,
}

pub fn run(args: &GraphArgs) -> Result<Exit, Failure> {
    let path = args.manifest.or(None)?;
    let c = load(&path)?;
    if c.has_errors() {
        return Err(Failure::Message(format!(
            "error: `{}` has errors; run `stir check {0}` first",
            path.display()
        )));
    }
    let models = ls::select(&c, &args.selectors, &args.exclude)?;
    let lineage = Lineage::of(&c, &models);
    let text = match args.format {
        GraphFormat::Dot => lineage.dot(),
        GraphFormat::Svg => lineage.svg(),
        GraphFormat::Json => lineage.json(),
    };
    match &args.output {
        Some(out) => {
            std::fs::write(out, text).map_err(|e| {
                Failure::Message(format!("error: cannot write `{}`: {e}", out.display()))
            })?;
            eprintln!("wrote {} ({} nodes)", out.display(), lineage.nodes.len());
        }
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(Exit::Success)
}
