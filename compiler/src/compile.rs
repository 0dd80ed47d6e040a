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
    let parsed = std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("stir-parse".into())
            .stack_size(load::PARSE_STACK_BYTES)
            .spawn_scoped(s, || {
                let mut found = Vec::new();
                let m = manifest::parse(text, file, &mut found);
                (m, found)
            })
            .ok()
            .map(|h| h.join())
    });
    match parsed {
        Some(Ok((m, found))) => {
            findings.extend(found);
            m
        }
        // No thread (resource limits): parse here; the limits still hold on a main thread.
        None => manifest::parse(text, file, findings),
        Some(Err(panic)) => std::panic::resume_unwind(panic),
    }
}
