//! `stir plan [MANIFEST] -o plan.json [--diff OLD.json] [--sign]`: check, then write the plan.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{print_review, read_plan, Exit, Failure, ManifestArg, WIDTH};
use crate::compile::compile_path;
use crate::diagnostic;
use crate::planner;
use crate::review::ReviewFormat;
use crate::signature;

/// `stir plan [MANIFEST] -o plan.json [--diff OLD.json]`
#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    /// The manifest (default: ./stir.kdl).
    #[arg(value_name = "MANIFEST")]
    pub manifest_arg: Option<PathBuf>,
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// Where to write the plan (`-` for stdout). Without `-o` and `--diff`, the plan goes to stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Review the new plan against a previous one.
    #[arg(long, value_name = "OLD.json")]
    pub diff: Option<PathBuf>,
    /// Format of the review.
    #[arg(long, value_enum, default_value_t = ReviewFormat::Human)]
    pub format: ReviewFormat,
    /// Exit 0 when the plan matches the previous one, 2 when it changed, 1 on any error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Sign the plan with the secret key in `STIR_PLAN_KEY`: writes `<output>.sig` beside it.
    #[arg(long)]
    pub sign: bool,
}

pub fn run(args: &PlanArgs, color: bool) -> Result<Exit, Failure> {
    let path = args.manifest.or(args.manifest_arg.as_ref())?;
    let c = compile_path(&path).map_err(|e| Failure::Report(e.into()))?;
    let mut err = std::io::stderr().lock();
    if !c.findings.is_empty() {
        err.write_all(diagnostic::render_human(&c.findings, &c.files, color, WIDTH).as_bytes())?;
    }
    if c.has_errors() {
        writeln!(
            err,
            "error: {}; no plan written",
            diagnostic::summary(&c.findings)
        )?;
        return Ok(Exit::Findings);
    }
    // The key before anything is written: a bad key leaves no unsigned plan behind.
    let key = if args.sign {
        Some(signing_key(args.output.as_deref())?)
    } else {
        None
    };
    // Read the previous plan before writing anything: `--diff plan.json -o plan.json` is common.
    let previous = match &args.diff {
        Some(p) => Some(read_plan(p)?),
        None => None,
    };
    let plan = planner::build(&c).map_err(|e| Failure::Message(format!("error: {e}")))?;
    let json = plan.to_json();
    too_big_to_run(&plan, json.len())?;
    match args.output.as_deref() {
        Some(p) if p == Path::new("-") => std::io::stdout().lock().write_all(json.as_bytes())?,
        Some(p) => {
            write_atomic(p, json.as_bytes()).map_err(|e| {
                Failure::Message(format!("error: cannot write `{}`: {e}", p.display()))
            })?;
            let count =
                |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
            writeln!(
                err,
                "wrote {}: {}, {}, {}, {} (plan_hash {})",
                p.display(),
                count(plan.schedules.len(), "schedule"),
                count(plan.models.len(), "model"),
                count(plan.syncs.len(), "sync"),
                count(plan.requests.len(), "request"),
                &plan.plan_hash[..12]
            )?;
            err.write_all(critical_paths(&plan).as_bytes())?;
            if let Some(key) = &key {
                let sig = signature::signature_path(p);
                write_atomic(&sig, key.sign(json.as_bytes()).as_bytes()).map_err(|e| {
                    Failure::Message(format!("error: cannot write `{}`: {e}", sig.display()))
                })?;
                writeln!(err, "signed: {} (key {})", sig.display(), key.public())?;
            }
        }
        None if previous.is_none() => std::io::stdout().lock().write_all(json.as_bytes())?,
        None => {}
    }
    match (previous, &args.diff) {
        (Some(old), Some(old_path)) => print_review(&old, &plan, old_path, args.format),
        _ => Ok(Exit::Success),
    }
}

/// A plan no runtime would read is not written: `stir-runtime` (and `--diff`) refuse plans
/// over [`MAX_PLAN_BYTES`](crate::load::MAX_PLAN_BYTES) as hostile input, so a bigger one would
/// only fail at deploy time.
fn too_big_to_run(plan: &crate::plan::Plan, bytes: usize) -> Result<(), Failure> {
    let limit = crate::load::MAX_PLAN_BYTES;
    if bytes as u64 <= limit {
        return Ok(());
    }
    let mib = |n: u64| n as f64 / (1024.0 * 1024.0);
    let mut biggest: Vec<(usize, &str)> = plan
        .models
        .iter()
        .map(|m| (m.sql.len(), m.name.as_str()))
        .collect();
    biggest.sort_by(|a, b| b.cmp(a));
    let names: Vec<String> = biggest
        .iter()
        .take(3)
        .map(|(n, m)| format!("`{m}` ({:.1} MiB of SQL)", mib(*n as u64)))
        .collect();
    Err(Failure::Message(format!(
        "error: the plan would be {:.0} MiB, over the {} MiB a runtime reads; no plan written
         help: each model's SQL is in the plan three times (its SELECT, CREATE .. AS and INSERT);          the largest models are {}; split the project into manifests of their own (one plan and          runtime each, `STIR_PROJECT`), or shorten the largest models",
        mib(bytes as u64),
        limit / (1024 * 1024),
        names.join(", ")
    )))
}

/// `--sign`: the key from `STIR_PLAN_KEY`, and a file to put the signature beside.
/// Per schedule that builds models, its model count against its longest chain (what
/// `threads` can buy: a run takes at least the chain however many build at once), in the
/// plan's schedule order.
pub fn critical_paths(plan: &crate::plan::Plan) -> String {
    plan.schedules
        .iter()
        .filter_map(|s| {
            crate::plan::select::critical_path(plan, s).map(|c| format!("  {}: {c}\n", s.name))
        })
        .collect()
}

fn signing_key(output: Option<&Path>) -> Result<signature::SecretKey, Failure> {
    if output.is_none_or(|p| p == Path::new("-")) {
        return Err(Failure::Message(
            "error: --sign needs -o FILE: the signature is written beside the plan, as FILE.sig\n\
             help: stir plan --sign -o plan.json"
                .into(),
        ));
    }
    let value = std::env::var_os(signature::SECRET_VAR).map(|v| v.to_string_lossy().into_owned());
    signature::SecretKey::from_var(value.as_deref()).map_err(|e| {
        Failure::Message(format!(
            "error: cannot sign the plan: {e}; no plan written\nhelp: {}",
            e.help()
        ))
    })
}

/// Write through a temporary file in the same folder and rename, so a reader never sees half a plan.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "plan.json".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
