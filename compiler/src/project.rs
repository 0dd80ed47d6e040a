//! The project: everything the compiler knows about a manifest once its stages have run (the
//! declarations, the files read, rendered models, the graph, resolved schedules, owners), and
//! the reading of the files a manifest names. Checks, the planner and `stir graph` read it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::path::PathBuf;

use crate::diagnostic::{FileId, Files, Finding, Severity};
use crate::graph::ModelGraph;
use crate::load::{ReadError, MAX_SOURCE_BYTES};
use crate::manifest::{self, Manifest};
use crate::render::{self, Renderer};
use crate::resolve::{Names, SelectCx};

#[derive(Debug, Clone, Default)]
pub struct CompiledModel {
    pub file: Option<FileId>,
    /// Rendered SQL (for incremental models: the first-build variant, `is_incremental()` false);
    /// `None` after a failed render, or when the compile keeps only findings ([`Keep`]).
    pub sql: Option<String>,
    /// For incremental models: the variant with `is_incremental()` true.
    pub sql_incremental: Option<String>,
    pub deps: BTreeSet<usize>,
    /// The declared source tables it reads, as `(source, table)`.
    pub sources: BTreeSet<(String, String)>,
    /// Carries a disabled tag: never built.
    pub disabled: bool,
    /// The bytes its rendered SQL takes in a plan at least
    /// ([`sql_bytes_in_plan`](crate::planner::sql_bytes_in_plan)), kept when the SQL is not.
    pub plan_sql_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolvedStep {
    /// Models in build order.
    Run(Vec<usize>),
    Sql(String),
    Sync(usize),
    Request(usize),
}

#[derive(Debug, Clone, Default)]
pub struct CompiledRequest {
    pub file: Option<FileId>,
    pub sql: Option<String>,
    /// The models its query reads, sorted; `None` when a model is named without `ref`.
    pub reads: Option<Vec<String>>,
}

/// Everything the compiler knows about a manifest, with every finding.
pub struct Compiled {
    pub root: PathBuf,
    pub files: Files,
    pub manifest_file: FileId,
    pub manifest: Manifest,
    pub names: Names,
    pub models: Vec<CompiledModel>,
    pub requests: Vec<CompiledRequest>,
    pub graph: ModelGraph,
    /// Per schedule, its steps resolved (same index as `manifest.schedules`).
    pub steps: Vec<Vec<ResolvedStep>>,
    /// For each model, the schedules that build it (with the selector that pulled it in).
    pub owners: BTreeMap<usize, Vec<Owner>>,
    pub findings: Vec<Finding>,
    /// The macros of the `macros` folders, for every template.
    pub macros: render::Macros,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub schedule: usize,
    pub step: usize,
    pub selector: manifest::Name,
}

impl Compiled {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
    pub fn model_names(&self) -> Vec<&str> {
        self.manifest
            .models
            .iter()
            .map(|m| m.name.text.as_str())
            .collect()
    }
    /// The template environment of the manifest (database, vars, macros), as every stage
    /// that renders builds it.
    pub fn renderer(&self) -> Renderer {
        Renderer::new(
            &self.manifest.warehouse.database,
            self.vars(),
            &self.macros,
            self.source_databases(),
        )
    }
    pub(crate) fn source_databases(&self) -> BTreeMap<String, String> {
        self.manifest
            .sources
            .iter()
            .filter_map(|s| {
                Some((
                    s.database.text.clone(),
                    s.in_database.as_ref()?.text.clone(),
                ))
            })
            .collect()
    }
    pub(crate) fn vars(&self) -> BTreeMap<String, serde_json::Value> {
        self.manifest
            .vars
            .iter()
            .map(|v| (v.name.text.clone(), v.value.clone()))
            .collect()
    }
    pub fn select_cx(&self) -> SelectCx<'_> {
        SelectCx {
            names: &self.names,
            manifest: &self.manifest,
            graph: &self.graph,
        }
    }
}

/// What a compile keeps besides the findings, the names, the graph and the schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The rendered SQL of every model too: what `stir plan` writes.
    Everything,
    /// No rendered SQL (`CompiledModel::sql` stays `None`): `stir check`, `ls` and `timeline`
    /// only report, and the SQL of 10,000 models is tens of MB.
    Findings,
}

/// Reads a file relative to the manifest's folder; injectable so tests can fuzz without disk.
/// A [`ReadError`] inside the `io::Error` keeps its meaning (see `load::ReadError::from`).
/// Model files are read from several threads at once.
pub type ReadFile<'a> = dyn Fn(&Path) -> std::io::Result<Vec<u8>> + Sync + 'a;

/// A file the manifest names that could not be read: the finding's code and the reason.
pub(crate) struct Unread {
    pub code: &'static str,
    pub why: String,
    /// The fix, when it is not the caller's "create the file".
    pub help: Option<String>,
}

impl Unread {
    /// The finding at the manifest's `span` that names the file: "`whose`: why", with
    /// `create` as the help unless the reason brings its own.
    pub fn finding(
        self,
        file: FileId,
        span: std::ops::Range<usize>,
        whose: &str,
        label: &str,
        create: impl FnOnce() -> String,
    ) -> Finding {
        Finding::error(self.code, file, span, format!("{whose}: {}", self.why))
            .label(label)
            .help(self.help.unwrap_or_else(create))
    }
}

pub(crate) fn read_text(c: &mut Compiled, rel: &str, read: &ReadFile) -> Result<FileId, Unread> {
    let (name, text) = load_text(&c.root, rel, read)?;
    Ok(c.files.add(name, text))
}

/// A file the manifest names, as its shown name and its text; touches nothing shared, so
/// model files are read on several threads.
pub(crate) fn load_text(
    root: &Path,
    rel: &str,
    read: &ReadFile,
) -> Result<(String, String), Unread> {
    let path = root.join(rel);
    if let Some(why) = outside(root, rel) {
        return Err(Unread {
            code: "stir::outside_project",
            why,
            help: Some(OUTSIDE_HELP.into()),
        });
    }
    // In-memory readers (tests) get the same size rule as the disk one.
    let bytes = read(&path).map_err(ReadError::from).and_then(|b| {
        if b.len() as u64 > MAX_SOURCE_BYTES {
            Err(ReadError::TooLarge {
                limit: MAX_SOURCE_BYTES,
            })
        } else {
            Ok(b)
        }
    });
    let why = match bytes {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => return Ok((display_path(&path), text)),
            Err(_) => {
                return Err(Unread {
                    code: "stir::missing_file",
                    why: format!("`{rel}` is not valid UTF-8"),
                    help: None,
                })
            }
        },
        Err(why) => why,
    };
    let help = match &why {
        ReadError::NotFound => None,
        ReadError::Io(_) => Some("check the file's permissions".to_string()),
        ReadError::TooLarge { .. } => Some(format!(
            "a SQL file holds one query: check that `{rel}` is the right file (stir reads at most 16 MiB)"
        )),
        _ => Some(format!(
            "point the path at a regular SQL file: stir does not read `{rel}`, so a FIFO, device or directory cannot stall a check"
        )),
    };
    Err(Unread {
        code: why.code(),
        why: format!("`{rel}` {why}"),
        help,
    })
}

/// The help of `stir::outside_project`.
pub(crate) const OUTSIDE_HELP: &str = "the project is the repository that holds the manifest (the manifest's folder outside a repository): move the file into it, naming it relative to the manifest; a link that points out of it is refused too, so copy the file in";

/// Where a project's files may be: the nearest folder up from the manifest's that holds `.git`
/// (a repository's files: `examples/today` reads the repository's `models/`), else the
/// manifest's own folder. `None` when `root` is not on disk (an in-memory reader's).
fn boundary(root: &Path) -> Option<std::path::PathBuf> {
    let root = std::fs::canonicalize(root).ok()?;
    let repo = root.ancestors().find(|a| a.join(".git").exists());
    Some(repo.unwrap_or(&root).to_path_buf())
}

/// Why the file or folder `rel` the manifest names may not be read: an absolute path, or one
/// that resolves, links followed, outside the project's [`boundary`]. `stir check` runs on
/// pull requests: a file from elsewhere on the machine (a key, `/proc/self/environ`) would be
/// printed in its findings or written into the plan.
pub(crate) fn outside(root: &Path, rel: &str) -> Option<String> {
    if Path::new(rel).has_root() {
        return Some(format!(
            "`{rel}` is an absolute path: a project names its files relative to the manifest"
        ));
    }
    let bound = boundary(root)?;
    // A path that does not exist is left to the read, which says so.
    let real = std::fs::canonicalize(root.join(rel)).ok()?;
    (!real.starts_with(&bound))
        .then(|| format!("`{rel}` is outside the project: stir reads only the project's files"))
}

fn display_path(p: &Path) -> String {
    let s = p.display().to_string();
    s.strip_prefix("./").unwrap_or(&s).to_string()
}
