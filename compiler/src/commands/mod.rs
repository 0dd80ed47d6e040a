//! Command-line interface: arguments in, exit status out. One file per command; each calls
//! the library and prints, and ends in an [`Exit`], which [`main`] maps to a code in one place.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::compile::{compile_path_keeping, Compiled, Keep};

mod check;
mod diff;
mod graph;
mod keygen;
mod ls;
mod plan;
mod timeline;

pub use diff::DiffArgs;
pub use graph::GraphArgs;
pub use plan::PlanArgs;

#[derive(Parser, Debug)]
#[command(
    name = "stir",
    version,
    about = "One KDL manifest for ClickHouse models, schedules and PostgreSQL syncs"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// When to colour diagnostics.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Type-check the manifest, its SQL templates and its schedules.
    Check {
        /// The manifest (default: ./stir.kdl).
        #[arg(value_name = "MANIFEST")]
        manifest_arg: Option<PathBuf>,
        #[command(flatten)]
        manifest: ManifestArg,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Fail (exit 1) on warnings too.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// List the models a selector picks, one per line in build order, like `dbt ls`.
    Ls {
        /// Selectors: tag:NAME, MODEL, +MODEL, MODEL+, path:DIR.
        selectors: Vec<String>,
        #[arg(long, num_args = 1.., value_delimiter = ' ')]
        exclude: Vec<String>,
        /// Print the schedule that builds MODEL instead.
        #[arg(long, value_name = "MODEL")]
        owner: Option<String>,
        #[command(flatten)]
        manifest: ManifestArg,
    },
    /// Draw each schedule's worst-case windows over a week: SVG for a browser, or text.
    Timeline {
        /// The manifest (default: ./stir.kdl).
        #[arg(value_name = "MANIFEST")]
        manifest_arg: Option<PathBuf>,
        #[command(flatten)]
        manifest: ManifestArg,
        #[arg(long, default_value_t = 7)]
        days: u32,
        /// First day drawn (default: 2026-01-01, where the analysis starts).
        #[arg(long)]
        start: Option<chrono::NaiveDate>,
        /// Write SVG here; without it, print the text picture.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Width of the text picture in columns.
        #[arg(long, default_value_t = 120)]
        width: usize,
    },
    /// Draw the model lineage (sources, models, syncs; owners by colour), like `dbt docs`.
    Graph(GraphArgs),
    /// Check the manifest, then write the frozen, hashed plan the runtime runs.
    Plan(PlanArgs),
    /// Review the changes between two plans, like `terraform plan`.
    Diff(DiffArgs),
    /// Move a dbt project into a new folder: stir.kdl, the models, the macros, and IMPORT.md
    /// (what was not translated, with file:line and what to write instead).
    Import(crate::import::ImportArgs),
    /// Make a key pair for signing plans: the secret key into a new file (mode 600), the
    /// public key (for the runtimes' `STIR_PLAN_PUBLIC_KEY`) to stdout.
    Keygen {
        /// The new secret key file (never overwritten).
        #[arg(long, short)]
        output: PathBuf,
    },
}

/// `--manifest FILE` (`-m`), accepted by every command that reads a manifest, beside the
/// positional path most of them also take.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ManifestArg {
    /// The manifest (default: ./stir.kdl).
    #[arg(long = "manifest", short = 'm', value_name = "MANIFEST")]
    pub path: Option<PathBuf>,
}

impl ManifestArg {
    /// The positional path, else `--manifest`, else `./stir.kdl`.
    pub fn or(&self, positional: Option<&PathBuf>) -> Result<PathBuf, Failure> {
        match (positional, &self.path) {
            (Some(a), Some(b)) if a != b => Err(Failure::Message(format!(
                "error: two manifests given: `{}` and --manifest `{}`; give one",
                a.display(),
                b.display()
            ))),
            (Some(p), _) | (None, Some(p)) => Ok(p.clone()),
            (None, None) => Ok(PathBuf::from("stir.kdl")),
        }
    }
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
    Github,
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
pub enum Color {
    Auto,
    Always,
    Never,
}

/// Width of rendered diagnostics: fixed, so output does not depend on the terminal.
pub const WIDTH: usize = 100;

/// How a command ended. [`Exit::code`] is the one place these become exit codes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Done: no findings (a plan written, a list printed, no changes).
    Success,
    /// The check found errors (or warnings with `--deny-warnings`).
    Findings,
    /// A review found changes.
    Changes,
    /// Could not run: a missing manifest, an unreadable plan, a bad argument.
    CouldNotRun,
}

impl Exit {
    /// Normally 0 success (changes too), 1 findings, 2 could not run. With
    /// `--detailed-exitcode` (terraform's convention): 0 no changes, 2 changes, 1 any error.
    pub fn code(self, detailed: bool) -> u8 {
        match (self, detailed) {
            (Exit::Success, _) | (Exit::Changes, false) => 0,
            (Exit::Findings, _) | (Exit::CouldNotRun, true) => 1,
            (Exit::Changes, true) | (Exit::CouldNotRun, false) => 2,
        }
    }
}

/// Why a command stopped early.
#[derive(Debug)]
pub enum Failure {
    /// Stdout closed (e.g. piped into `head`): exit quietly.
    Broken,
    /// Could not run: a message for stderr.
    Message(String),
    /// Could not run: a diagnostic, rendered by miette at the edge.
    Report(miette::Report),
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Failure::Broken
        } else {
            Failure::Message(format!("error: {e}"))
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = match cli.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => {
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none()
        }
    };
    let detailed = match &cli.command {
        Command::Plan(a) => a.detailed_exitcode,
        Command::Diff(a) => a.detailed_exitcode,
        _ => false,
    };
    let result = match cli.command {
        Command::Check {
            manifest_arg,
            manifest,
            format,
            deny_warnings,
        } => manifest
            .or(manifest_arg.as_ref())
            .and_then(|path| check::run(&path, format, deny_warnings, color)),
        Command::Timeline {
            manifest_arg,
            manifest,
            days,
            start,
            output,
            width,
        } => manifest
            .or(manifest_arg.as_ref())
            .and_then(|path| timeline::run(&path, days, start, output.as_deref(), width)),
        Command::Ls {
            selectors,
            exclude,
            owner,
            manifest,
        } => manifest
            .or(None)
            .and_then(|path| ls::run(&path, &selectors, &exclude, owner.as_deref())),
        Command::Graph(args) => graph::run(&args),
        Command::Plan(args) => plan::run(&args, color),
        Command::Diff(args) => diff::run(&args),
        Command::Import(args) => crate::import::command(&args)
            .map(|()| Exit::Success)
            .map_err(|m| Failure::Message(format!("error: {m}"))),
        Command::Keygen { output } => keygen::run(&output),
    };
    let exit = match result {
        Ok(exit) => exit,
        Err(Failure::Broken) => Exit::Success,
        Err(Failure::Message(m)) => {
            eprintln!("{m}");
            Exit::CouldNotRun
        }
        Err(Failure::Report(r)) => {
            eprintln!("{r:?}");
            Exit::CouldNotRun
        }
    };
    ExitCode::from(exit.code(detailed))
}

/// For commands that report and never plan: no rendered SQL kept.
fn load(path: &Path) -> Result<Compiled, Failure> {
    compile_path_keeping(path, Keep::Findings).map_err(|e| Failure::Report(e.into()))
}

/// Read a plan from disk for a review; any problem is a message (could not run), never a panic.
fn read_plan(path: &Path) -> Result<crate::plan::Plan, Failure> {
    let text = crate::load::read_file(path, crate::load::MAX_PLAN_BYTES).map_err(|e| {
        Failure::Message(format!(
            "error: cannot read plan `{}`: it {e}",
            path.display()
        ))
    })?;
    let text = String::from_utf8(text).map_err(|_| {
        Failure::Message(format!(
            "error: `{}` is not a stir plan: not UTF-8 text",
            path.display()
        ))
    })?;
    crate::plan::Plan::from_json_for_review(&text).map_err(|e| {
        let help = miette::Diagnostic::help(&e)
            .map(|h| format!("\nhelp: {h}"))
            .unwrap_or_default();
        Failure::Message(format!("error: `{}`: {e}{help}", path.display()))
    })
}

/// Print the review of `new` against `old` to stdout.
fn print_review(
    old: &crate::plan::Plan,
    new: &crate::plan::Plan,
    previous: &Path,
    format: crate::review::ReviewFormat,
) -> Result<Exit, Failure> {
    use std::io::Write;
    let name = previous.file_name().map_or_else(
        || previous.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let r = crate::review::review(old, new, &name);
    let text = match format {
        crate::review::ReviewFormat::Human => crate::review::render_human(&r),
        crate::review::ReviewFormat::Json => crate::review::render_json(&r),
        crate::review::ReviewFormat::Markdown => {
            crate::review::render_markdown(&r, &old.plan_hash, &new.plan_hash)
        }
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(if r.changed {
        Exit::Changes
    } else {
        Exit::Success
    })
}
