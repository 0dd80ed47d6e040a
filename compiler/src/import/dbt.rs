//! A dbt project, read from its files only: dbt_project.yml, the model files with their
//! `config()` headers, properties and sources YAML, the macro files, packages.yml.

use std::collections::BTreeMap;
use std::path::Path;

use marked_yaml::types::{MarkedMappingNode, Node};
use serde_json::Value;

use super::config::{self, At, Config};
use super::yaml;
use super::Note;
use crate::load::{self, MAX_SOURCE_BYTES};
use crate::macros::list_files;

#[derive(Debug, Default)]
pub struct Project {
    pub name: String,
    pub vars: Vec<(String, Value, At)>,
    pub models: Vec<Model>,
    /// Macro folders (relative to the project) and their files: (path relative to the project,
    /// text).
    pub macro_dirs: Vec<String>,
    pub macro_files: Vec<(String, String)>,
    pub sources: Vec<Source>,
    pub notes: Vec<Note>,
}

#[derive(Debug)]
pub struct Model {
    pub name: String,
    /// Its file relative to the project, e.g. `models/staging/a.sql`.
    pub file: String,
    /// The file as dbt has it (for file:line), and without its config headers.
    pub original: String,
    pub sql: String,
    pub config: Config,
}

#[derive(Debug)]
pub struct Source {
    pub name: String,
    /// The ClickHouse database (dbt's `schema`, else the name).
    pub schema: String,
    pub tables: Vec<String>,
    pub at: At,
}

/// What a folder level of dbt_project.yml's `models:` says: its path under the model folder,
/// the key, the value, where.
struct FolderConfig {
    path: Vec<String>,
    key: String,
    value: Value,
    at: At,
}

pub const PROJECT_FILE: &str = "dbt_project.yml";

/// Configs stir reads; the rest are reported (or, for documentation only, ignored).
pub const KNOWN: &[&str] = &[
    "materialized",
    "tags",
    "enabled",
    "order_by",
    "engine",
    "partition_by",
    "query_settings",
    "unique_key",
    "incremental_strategy",
];
const DOCS_ONLY: &[&str] = &[
    "description",
    "docs",
    "meta",
    "persist_docs",
    "columns",
    "contract",
    "access",
    "group",
    "labels",
];

fn read(root: &Path, rel: &str) -> Result<String, String> {
    let bytes = load::read_file(&root.join(rel), MAX_SOURCE_BYTES)
        .map_err(|e| format!("cannot read `{rel}`: {e}"))?;
    String::from_utf8(bytes).map_err(|_| format!("`{rel}` is not UTF-8"))
}

fn at(file: &str, line: usize) -> At {
    At {
        file: file.to_string(),
        line,
    }
}

fn strings(v: Option<&Node>) -> Option<Vec<String>> {
    match v? {
        Node::Scalar(s) => Some(vec![s.as_str().to_string()]),
        Node::Sequence(seq) => Some(
            seq.iter()
                .filter_map(|n| yaml::text(n).map(str::to_string))
                .collect(),
        ),
        Node::Mapping(_) => None,
    }
}

/// Read the project at `root`. Fails only when dbt_project.yml cannot be read; every other
/// problem becomes a note.
pub fn read_project(root: &Path) -> Result<Project, String> {
    let text = read(root, PROJECT_FILE)?;
    let top = yaml::parse(PROJECT_FILE, &text)?;
    let mut p = Project {
        name: top
            .get_scalar("name")
            .map(|s| s.as_str().to_string())
            .ok_or_else(|| format!("`{PROJECT_FILE}` has no `name`"))?,
        ..Project::default()
    };
    let model_paths = strings(
        top.get_node("model-paths")
            .or_else(|| top.get_node("source-paths")),
    )
    .unwrap_or_else(|| vec!["models".into()]);
    let macro_paths = strings(top.get_node("macro-paths")).unwrap_or_else(|| vec!["macros".into()]);
    read_vars(&mut p, &top);
    let mut folders = Vec::new();
    if let Some(models) = top.get_mapping("models") {
        for (k, v) in models.iter() {
            match v {
                Node::Mapping(m) if k.as_str() == p.name => {
                    folder_configs(&mut p.notes, m, &mut Vec::new(), &mut folders);
                }
                _ => p.notes.push(Note::new(
                    at(PROJECT_FILE, yaml::line(v)),
                    format!("`models: {}:` configures another package's models", k.as_str()),
                    "packages are not imported; configure the models you copy into the project in stir.kdl",
                )),
            }
        }
    }
    for key in [
        "on-run-start",
        "on-run-end",
        "seeds",
        "snapshots",
        "tests",
        "data_tests",
    ] {
        if let Some(n) = top.get_node(key) {
            p.notes.push(Note::new(
                at(PROJECT_FILE, yaml::line(n)),
                format!("`{key}:` is not translated"),
                match key {
                    "on-run-start" | "on-run-end" => {
                        "write the statements as `sql` steps of the schedules that need them"
                    }
                    "seeds" => {
                        "load seed CSVs into a source table yourself and declare it with `source`"
                    }
                    "snapshots" => "stir has no snapshots: keep history with an incremental model",
                    _ => "stir does not run dbt tests: keep them in dbt or as a check query",
                },
            ));
        }
    }
    packages(root, &mut p.notes);
    // Properties YAML first: model configs, sources.
    let mut props: BTreeMap<String, Vec<(String, Value, At)>> = BTreeMap::new();
    for mp in &model_paths {
        let Ok(files) = list_files(&root.join(mp), &[".yml", ".yaml"]) else {
            continue;
        };
        for f in files {
            let rel = format!("{mp}/{f}");
            match read(root, &rel).and_then(|t| yaml::parse(&rel, &t)) {
                Ok(doc) => properties(&mut p, &rel, &doc, &mut props),
                Err(e) => p.notes.push(Note::new(
                    at(&rel, 1),
                    e,
                    "fix the YAML (stir reads no anchors or aliases) and import again",
                )),
            }
        }
    }
    let vars: BTreeMap<String, Value> = p
        .vars
        .iter()
        .map(|(k, v, _)| (k.clone(), v.clone()))
        .collect();
    for mp in &model_paths {
        for f in list_files(&root.join(mp), &[".py"]).unwrap_or_default() {
            p.notes.push(Note::new(
                at(&format!("{mp}/{f}"), 1),
                "a dbt Python model is not translated",
                "stir models are ClickHouse SELECTs: rewrite it in SQL, or keep it outside stir",
            ));
        }
        let files = match list_files(&root.join(mp), &[".sql"]) {
            Ok(f) => f,
            Err(why) => {
                p.notes.push(Note::new(
                    at(PROJECT_FILE, 1),
                    format!("model folder `{mp}` {why}"),
                    "point `model-paths` at the folders that hold the models",
                ));
                continue;
            }
        };
        for f in files {
            let rel = format!("{mp}/{f}");
            let sql = match read(root, &rel) {
                Ok(t) => t,
                Err(e) => {
                    p.notes.push(Note::new(
                        at(&rel, 1),
                        e,
                        "make the file a readable UTF-8 file",
                    ));
                    continue;
                }
            };
            let mut path: Vec<String> = f.split('/').map(str::to_string).collect();
            let name = path
                .pop()
                .unwrap_or_default()
                .trim_end_matches(".sql")
                .to_string();
            path.push(name.clone());
            let mut cfg = Config::default();
            let mut levels: Vec<&FolderConfig> = folders
                .iter()
                .filter(|fc| path.starts_with(&fc.path))
                .collect();
            levels.sort_by_key(|fc| fc.path.len());
            for fc in levels {
                cfg.set(&fc.key, fc.value.clone(), fc.at.clone());
            }
            for (k, v, a) in props.get(&name).into_iter().flatten() {
                cfg.set(k, v.clone(), a.clone());
            }
            let headers = config::headers(&sql, &vars);
            for h in &headers {
                match &h.args {
                    Ok(args) => {
                        for (k, v) in args {
                            cfg.set(k, v.clone(), at(&rel, h.line));
                        }
                    }
                    Err(e) => p.notes.push(Note::new(
                        at(&rel, h.line),
                        format!(
                            "the `config()` header could not be read without running code ({e})"
                        ),
                        "write the model's settings on its `model` node in stir.kdl",
                    )),
                }
            }
            p.models.push(Model {
                name,
                file: rel,
                sql: config::strip(&sql, &headers),
                original: sql.clone(),
                config: cfg,
            });
        }
    }
    for mp in &macro_paths {
        let Ok(files) = list_files(&root.join(mp), &[".sql"]) else {
            continue;
        };
        p.macro_dirs.push(mp.clone());
        for f in files {
            let rel = format!("{mp}/{f}");
            match read(root, &rel) {
                Ok(t) => p.macro_files.push((rel, t)),
                Err(e) => p.notes.push(Note::new(
                    at(&rel, 1),
                    e,
                    "make the file a readable UTF-8 file",
                )),
            }
        }
    }
    Ok(p)
}

fn read_vars(p: &mut Project, top: &MarkedMappingNode) {
    let Some(vars) = top.get_mapping("vars") else {
        return;
    };
    for (k, v) in vars.iter() {
        // `vars: {project: {...}}` scopes vars to a project; this project's are its vars.
        match v {
            Node::Mapping(m) if k.as_str() == p.name => {
                for (k2, v2) in m.iter() {
                    p.vars.push((
                        k2.as_str().to_string(),
                        yaml::to_json(v2),
                        at(PROJECT_FILE, yaml::line(v2)),
                    ));
                }
            }
            _ => p.vars.push((
                k.as_str().to_string(),
                yaml::to_json(v),
                at(PROJECT_FILE, yaml::line(v)),
            )),
        }
    }
}

fn folder_configs(
    notes: &mut Vec<Note>,
    m: &MarkedMappingNode,
    path: &mut Vec<String>,
    out: &mut Vec<FolderConfig>,
) {
    for (k, v) in m.iter() {
        let key = k.as_str();
        let line = yaml::line(v);
        if let Some(cfg) = key.strip_prefix('+') {
            out.push(FolderConfig {
                path: path.clone(),
                key: cfg.to_string(),
                value: yaml::to_json(v),
                at: at(PROJECT_FILE, line),
            });
        } else if let Node::Mapping(child) = v {
            path.push(key.to_string());
            folder_configs(notes, child, path, out);
            path.pop();
        } else if KNOWN.contains(&key) || DOCS_ONLY.contains(&key) {
            // dbt reads a known config without `+` as a config too.
            out.push(FolderConfig {
                path: path.clone(),
                key: key.to_string(),
                value: yaml::to_json(v),
                at: at(PROJECT_FILE, line),
            });
        } else {
            notes.push(Note::new(
                at(PROJECT_FILE, line),
                format!("`{key}` under `models:` is neither a folder nor a `+config`"),
                "write configs with a `+` (`+materialized: table`)",
            ));
        }
    }
}

fn properties(
    p: &mut Project,
    rel: &str,
    doc: &MarkedMappingNode,
    props: &mut BTreeMap<String, Vec<(String, Value, At)>>,
) {
    if let Some(models) = doc.get_sequence("models") {
        for m in models.iter() {
            let Some(m) = m.as_mapping() else { continue };
            let Some(name) = m.get_scalar("name").map(|s| s.as_str().to_string()) else {
                continue;
            };
            let entry = props.entry(name.clone()).or_default();
            if let Some(cfg) = m.get_mapping("config") {
                for (k, v) in cfg.iter() {
                    entry.push((
                        k.as_str().to_string(),
                        yaml::to_json(v),
                        at(rel, yaml::line(v)),
                    ));
                }
            }
            for key in ["tests", "data_tests"] {
                let tested = m.get_node(key).is_some()
                    || m.get_sequence("columns").is_some_and(|cols| {
                        cols.iter()
                            .any(|c| c.as_mapping().is_some_and(|c| c.get_node(key).is_some()))
                    });
                if tested {
                    p.notes.push(Note::new(
                        at(rel, yaml::line(&Node::Mapping(m.clone()))),
                        format!("the {key} of model `{name}` are not translated"),
                        "stir does not run dbt tests: keep them in dbt, or write each as a check query",
                    ));
                }
            }
        }
    }
    if let Some(sources) = doc.get_sequence("sources") {
        for s in sources.iter() {
            let Some(s) = s.as_mapping() else { continue };
            let Some(name) = s.get_scalar("name").map(|n| n.as_str().to_string()) else {
                continue;
            };
            let line = s.span().start().map_or(1, |m| m.line());
            let schema = s
                .get_scalar("schema")
                .map(|n| n.as_str().to_string())
                .unwrap_or_else(|| name.clone());
            if let Some(db) = s.get_scalar("database") {
                p.notes.push(Note::new(
                    at(rel, line),
                    format!("source `{name}` sets `database: {}`", db.as_str()),
                    "in ClickHouse a source's database is its `schema`: stir reads `schema` (or the name)",
                ));
            }
            let mut tables = Vec::new();
            for t in s
                .get_sequence("tables")
                .map(|t| t.iter())
                .into_iter()
                .flatten()
            {
                let Some(t) = t.as_mapping() else { continue };
                let Some(tn) = t.get_scalar("name") else {
                    continue;
                };
                if let Some(id) = t.get_scalar("identifier") {
                    p.notes.push(Note::new(
                        at(rel, t.span().start().map_or(line, |m| m.line())),
                        format!(
                            "table `{}` of source `{name}` is read from `{}` (`identifier`)",
                            tn.as_str(),
                            id.as_str()
                        ),
                        "stir reads a source table under its own name: use the real table name in `source()`",
                    ));
                }
                tables.push(tn.as_str().to_string());
            }
            p.sources.push(Source {
                name,
                schema,
                tables,
                at: at(rel, line),
            });
        }
    }
}

/// The packages of packages.yml / dependencies.yml: where each is listed and its name.
fn read_packages(root: &Path) -> Vec<(At, String)> {
    let mut out = Vec::new();
    for file in ["packages.yml", "dependencies.yml"] {
        let Ok(text) = read(root, file) else { continue };
        let Ok(doc) = yaml::parse(file, &text) else {
            continue;
        };
        for pkg in doc
            .get_sequence("packages")
            .map(|s| s.iter())
            .into_iter()
            .flatten()
        {
            let Some(m) = pkg.as_mapping() else { continue };
            if let Some(name) = ["package", "git", "local"]
                .iter()
                .find_map(|k| m.get_scalar(k))
            {
                out.push((at(file, yaml::line(pkg)), name.as_str().to_string()));
            }
        }
    }
    out
}

/// Packages are listed, never fetched.
fn packages(root: &Path, notes: &mut Vec<Note>) {
    for (at, name) in read_packages(root) {
        notes.push(Note::new(
            at,
            format!("package `{name}` is not fetched"),
            "copy the macros the project calls into `macros/` (calls into the package are listed below), or inline their SQL",
        ));
    }
}

/// The short names packages are called by (`dbt-labs/dbt_utils` -> `dbt_utils`).
pub fn package_names(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (_, name) in read_packages(root) {
        let short = name
            .trim_end_matches(".git")
            .rsplit(['/', ':'])
            .next()
            .unwrap_or("")
            .replace('-', "_");
        if !short.is_empty() && !out.contains(&short) {
            out.push(short);
        }
    }
    out
}
