//! The pipeline driver: the manifest's bytes -> `manifest` (declarations) -> `resolve` (names)
//! -> `macros` -> `models` (read, render, scan) -> `requests` -> `graph` -> `schedules` ->
//! `check`. Every file is read through the one `ReadFile` this driver is given.

use std::collections::BTreeMap;
use std::path::Path;

use crate::diagnostic::{self, FileId, Files, Finding};
use crate::graph::{self, ModelGraph};
use crate::load::{self, ReadError, MAX_SOURCE_BYTES};
use crate::manifest::{self, Manifest};
pub use crate::project::{
    Compiled, CompiledModel, CompiledRequest, Keep, Owner, ReadFile, ResolvedStep,
};
use crate::render;
use crate::resolve::Names;
use crate::{check, models, requests, schedules};

/// Failures that stop stir before it can check anything (exit code 2).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LoadError {
    #[error("manifest `{path}` does not exist")]
    #[diagnostic(code(stir::no_manifest), help("run stir in the folder that holds stir.kdl, or pass its path: `stir check path/to/stir.kdl`"))]
    Missing { path: String },
    #[error("`{path}` is a directory, not a manifest")]
    #[diagnostic(
        code(stir::no_manifest),
        help("pass the manifest file itself, e.g. `{path}/stir.kdl`")
    )]
    Directory { path: String },
    #[error("cannot read manifest `{path}`: {reason}")]
    #[diagnostic(code(stir::unreadable), help("check the file's permissions"))]
    Unreadable { path: String, reason: String },
    #[error("manifest `{path}` {why}")]
    #[diagnostic(
        code(stir::unreadable),
        help("pass the manifest file itself: stir reads only regular files of at most 16 MiB, so a FIFO, a device or an endless file cannot stall a check")
    )]
    Refused { path: String, why: load::ReadError },
}

/// Read and check a manifest and every file it names.
pub fn compile_path(path: &Path) -> Result<Compiled, LoadError> {
    compile_path_keeping(path, Keep::Everything)
}

/// [`compile_path`], keeping only what `keep` says.
pub fn compile_path_keeping(path: &Path, keep: Keep) -> Result<Compiled, LoadError> {
    let shown = path.display().to_string();
    let bytes = load::read_file(path, MAX_SOURCE_BYTES).map_err(|e| match e {
        ReadError::NotFound => LoadError::Missing {
            path: shown.clone(),
        },
        ReadError::Directory => LoadError::Directory {
            path: shown.clone(),
        },
        ReadError::Io(e) => LoadError::Unreadable {
            path: shown.clone(),
            reason: e.to_string(),
        },
        why => LoadError::Refused {
            path: shown.clone(),
            why,
        },
    })?;
    let root = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let read = |p: &Path| load::read_file(p, MAX_SOURCE_BYTES).map_err(std::io::Error::from);
    Ok(compile_bytes_keeping(&shown, &bytes, &root, &read, keep))
}

pub fn compile_bytes(name: &str, bytes: &[u8], root: &Path, read: &ReadFile) -> Compiled {
    compile_bytes_keeping(name, bytes, root, read, Keep::Everything)
}

fn compile_bytes_keeping(
    name: &str,
    bytes: &[u8],
    root: &Path,
    read: &ReadFile,
    keep: Keep,
) -> Compiled {
    let mut files = Files::default();
    let mut findings = Vec::new();
    let (text, bad_utf8) = match std::str::from_utf8(bytes) {
        Ok(t) => (t.to_string(), None),
        Err(e) => (
            String::from_utf8_lossy(bytes).into_owned(),
            Some(e.valid_up_to()),
        ),
    };
    let file = files.add(name.to_string(), text);
    let manifest = if let Some(at) = bad_utf8 {
        findings.push(
            Finding::error(
                "stir::syntax",
                file,
                at..at + 1,
                "the manifest is not valid UTF-8",
            )
            .label("invalid byte")
            .help("save stir.kdl as UTF-8"),
        );
        Manifest {
            file: Some(file),
            ..Manifest::default()
        }
    } else {
        let text = files.text(file).to_string();
        parse_bounded(&text, file, &mut findings)
    };
    let names = Names::build(&manifest, file, &mut findings);
    let mut c = Compiled {
        root: root.to_path_buf(),
        files,
        manifest_file: file,
        manifest,
        names,
        models: Vec::new(),
        requests: Vec::new(),
        graph: ModelGraph::default(),
        steps: Vec::new(),
        owners: BTreeMap::new(),
        findings,
        macros: render::Macros::default(),
    };
    // Stages that read files register them in `c.files` (so any finding can point into
    // them); the others take the project as it is and give values.
    crate::macros::load(&mut c, read);
    models::render(&mut c, read, keep);
    requests::render(&mut c, read);
    let deps: Vec<_> = c.models.iter().map(|m| m.deps.clone()).collect();
    let spans: Vec<_> = c
        .manifest
        .models
        .iter()
        .map(|m| m.name.span.clone())
        .collect();
    let (graph, found) = graph::build(&deps, &c.model_names(), c.manifest_file, &spans);
    c.graph = graph;
    c.findings.extend(found);
    let s = schedules::resolve(&c);
    (c.steps, c.owners) = (s.steps, s.owners);
    c.findings.extend(s.findings);
    let found = check::run(&c);
    c.findings.extend(found);
    diagnostic::sort(&mut c.findings, &c.files);
    c.findings.dedup();
    c
}

/// Parse the manifest unless it is too big or too deep for the KDL parser, which recurses per
/// block, per comment piece and per top-level error. The parse runs on a thread with a known
/// stack, so the limits hold whatever thread calls (tests run on 2 MiB stacks).
fn parse_bounded(text: &str, file: FileId, findings: &mut Vec<Finding>) -> Manifest {
    let empty = Manifest {
        file: Some(file),
        ..Manifest::default()
    };
    if text.len() as u64 > MAX_SOURCE_BYTES {
        findings.push(
            Finding::error(
                "stir::unreadable",
                file,
                0..0,
                "the manifest is larger than 16 MiB",
            )
            .label("refused")
            .help("a stir manifest is a few hundred KB at most: check that this is the right file"),
        );
        return empty;
    }
    if let Some(r) = load::kdl_limits(text) {
        findings.push(
            Finding::error("stir::syntax", file, r.span, r.message)
                .label(r.label)
                .help(r.help),
        );
        return empty;
    }
    parse_within(text, file, findings, load::parse_time_limit(text.len()))
}

/// Parse on a thread of its own with a big stack, for at most `limit`. Not a scoped thread: a
/// parse past its limit is left behind (the kdl crate's time doubles with some nestings,
/// kdl-rs issue 177, and `kdl_limits` cannot see every way to spell them), and the check goes
/// on with a finding; in `stir check` the process's end stops it.
fn parse_within(
    text: &str,
    file: FileId,
    findings: &mut Vec<Finding>,
    limit: std::time::Duration,
) -> Manifest {
    let empty = Manifest {
        file: Some(file),
        ..Manifest::default()
    };
    let owned: std::sync::Arc<str> = text.into();
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("stir-parse".into())
        .stack_size(load::PARSE_STACK_BYTES)
        .spawn(move || {
            let mut found = Vec::new();
            let m = manifest::parse(&owned, file, &mut found);
            let _ = tx.send((m, found));
        });
    let Ok(handle) = spawned else {
        // No thread (resource limits): parse here; the limits still hold on a main thread.
        return manifest::parse(text, file, findings);
    };
    match rx.recv_timeout(limit) {
        Ok((m, found)) => {
            let _ = handle.join();
            findings.extend(found);
            m
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            findings.push(
                Finding::error(
                    "stir::syntax",
                    file,
                    0..0,
                    format!(
                        "the manifest could not be parsed within {} s",
                        limit.as_secs()
                    ),
                )
                .label("here")
                .help("the KDL parser takes exponential time on some nestings of slashdashed (`/-`) blocks and broken comments or strings: delete the commented-out blocks, and check the file's comments and quotes"),
            );
            empty
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => empty,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A parse past its time limit ends in a finding, and the check goes on without it. The
    /// parser gets 15 nested slashdashed blocks here (`kdl_limits` refuses them before it in a
    /// real check), which take it seconds to minutes.
    #[test]
    fn a_parse_past_its_time_limit_is_a_finding() {
        let text = format!("project p\n{}", "a /-{".repeat(15));
        let mut findings = Vec::new();
        let limit = std::time::Duration::from_millis(100);
        let m = parse_within(&text, FileId(0), &mut findings, limit);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].code, "stir::syntax");
        assert!(
            findings[0].message.contains("could not be parsed within"),
            "{findings:?}"
        );
        assert!(m.project.is_none() && m.models.is_empty());
    }
}
