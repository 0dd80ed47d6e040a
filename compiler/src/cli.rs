//! Command-line interface: arguments in, exit code out. Commands call the library and print.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::compile::{compile_path_keeping, Compiled, Keep};
use crate::diagnostic::{self, Severity};
use crate::resolve::Selector;

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
        manifest: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Fail (exit 1) on warnings too.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// List the models a selector picks, one per line in build order, like `dbt ls`.
    /// Draw each schedule's worst-case windows over a week: SVG for a browser, or text.
    Timeline {
        /// The manifest (default: ./stir.kdl).
        manifest: Option<PathBuf>,
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
    Ls {
        /// Selectors: tag:NAME, MODEL, +MODEL, MODEL+, path:DIR.
        selectors: Vec<String>,
        #[arg(long, num_args = 1.., value_delimiter = ' ')]
        exclude: Vec<String>,
        /// Print the schedule that builds MODEL instead.
        #[arg(long, value_name = "MODEL")]
        owner: Option<String>,
        #[arg(long, short, default_value = "stir.kdl")]
        manifest: PathBuf,
    },
    /// Check the manifest, then write the frozen, hashed plan the runtime runs.
    Plan(crate::planner::PlanArgs),
    /// Review the changes between two plans, like `terraform plan`.
    Diff(crate::review::DiffArgs),
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
    let result = match cli.command {
        Command::Check {
            manifest,
            format,
            deny_warnings,
        } => check(&manifest_path(manifest), format, deny_warnings, color),
        Command::Timeline {
            manifest,
            days,
            start,
            output,
            width,
        } => timeline(
            &manifest_path(manifest),
            days,
            start,
            output.as_deref(),
            width,
        ),
        Command::Ls {
            selectors,
            exclude,
            owner,
            manifest,
        } => ls(&manifest, &selectors, &exclude, owner.as_deref()),
        Command::Plan(args) => crate::planner::plan_command(&args, color),
        Command::Diff(args) => crate::review::diff_command(&args),
        Command::Import(args) => crate::import::command(&args),
        Command::Keygen { output } => keygen(&output),
    };
    match result {
        Ok(code) => code,
        Err(Failure::Broken) => ExitCode::SUCCESS,
        Err(Failure::Message(m)) => {
            eprintln!("{m}");
            ExitCode::from(2)
        }
    }
}

fn manifest_path(p: Option<PathBuf>) -> PathBuf {
    p.unwrap_or_else(|| PathBuf::from("stir.kdl"))
}

pub enum Failure {
    /// Stdout closed (e.g. piped into `head`): exit quietly.
    Broken,
    /// Could not run: message for stderr, exit 2.
    Message(String),
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

/// For `check`, `ls` and `timeline`, which report and never plan: no rendered SQL kept.
fn load(path: &Path) -> Result<Compiled, Failure> {
    compile_path_keeping(path, Keep::Findings).map_err(|e| {
        let report = miette::Report::new(e);
        Failure::Message(format!("{report:?}"))
    })
}

fn check(
    path: &Path,
    format: Format,
    deny_warnings: bool,
    color: bool,
) -> Result<ExitCode, Failure> {
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
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn ls(
    path: &Path,
    selectors: &[String],
    exclude: &[String],
    owner: Option<&str>,
) -> Result<ExitCode, Failure> {
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
        return Ok(ExitCode::SUCCESS);
    }
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
    for m in ms {
        writeln!(out, "{}", c.manifest.models[m].name.text)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The secret key goes only into a file that did not exist, readable by its owner alone; the
/// terminal (and a CI log) sees the public key.
fn keygen(output: &Path) -> Result<ExitCode, Failure> {
    let key = crate::signature::SecretKey::generate()
        .map_err(|e| Failure::Message(format!("error: cannot make a key: {e}")))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let cannot = |e: std::io::Error| {
        let why = if e.kind() == std::io::ErrorKind::AlreadyExists {
            "it exists; a key is never overwritten (remove it first, or pick another name)"
                .to_string()
        } else {
            e.to_string()
        };
        Failure::Message(format!("error: cannot write `{}`: {why}", output.display()))
    };
    let mut file = options.open(output).map_err(cannot)?;
    file.write_all(format!("{}\n", key.to_text()).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(cannot)?;
    writeln!(std::io::stdout().lock(), "{}", key.public())?;
    eprintln!(
        "wrote the secret key to {}: give its content to `stir plan --sign` as {} where plans \
         are signed; give the public key above to every stir-runtime as {}",
        output.display(),
        crate::signature::SECRET_VAR,
        crate::signature::PUBLIC_VAR
    );
    Ok(ExitCode::SUCCESS)
}

fn timeline(
    path: &Path,
    days: u32,
    start: Option<chrono::NaiveDate>,
    output: Option<&Path>,
    width: usize,
) -> Result<ExitCode, Failure> {
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
    Ok(ExitCode::SUCCESS)
}
