//! Stage 4: names and selectors. Every name in the manifest resolves to a declaration here,
//! or gets a finding with a "did you mean".

use std::collections::{BTreeMap, BTreeSet};

use crate::diagnostic::{did_you_mean, FileId, Finding};
use crate::graph::ModelGraph;
use crate::manifest::{Manifest, Name};

/// Lookup tables from names to declaration indices (first declaration wins).
#[derive(Debug, Default)]
pub struct Names {
    pub models: BTreeMap<String, usize>,
    pub tags: BTreeMap<String, usize>,
    pub blackouts: BTreeMap<String, usize>,
    pub schedules: BTreeMap<String, usize>,
    pub syncs: BTreeMap<String, usize>,
    pub requests: BTreeMap<String, usize>,
    pub endpoints: BTreeMap<String, usize>,
    /// database -> tables
    pub sources: BTreeMap<String, BTreeSet<String>>,
    pub vars: BTreeMap<String, usize>,
    /// tag -> the models (first declarations only) that carry it, in declaration order:
    /// `tag:X` selectors read this instead of scanning every model for every schedule.
    pub models_by_tag: BTreeMap<String, Vec<usize>>,
}

impl Names {
    pub fn build(m: &Manifest, file: FileId, out: &mut Vec<Finding>) -> Names {
        let mut n = Names::default();
        fn add<'a>(
            map: &mut BTreeMap<String, usize>,
            kind: &str,
            items: impl Iterator<Item = &'a Name>,
            file: FileId,
            out: &mut Vec<Finding>,
        ) {
            let mut first: BTreeMap<String, std::ops::Range<usize>> = BTreeMap::new();
            for (i, name) in items.enumerate() {
                if let Some(prev) = first.get(&name.text) {
                    out.push(
                        Finding::error(
                            "stir::duplicate",
                            file,
                            name.span.clone(),
                            format!("{kind} `{}` is declared twice", name.text),
                        )
                        .label("second declaration")
                        .note(prev.clone(), "first declared here")
                        .help(format!("rename one of them or remove the duplicate {kind}")),
                    );
                } else {
                    first.insert(name.text.clone(), name.span.clone());
                    map.insert(name.text.clone(), i);
                }
            }
        }
        add(
            &mut n.models,
            "model",
            m.models.iter().map(|x| &x.name),
            file,
            out,
        );
        add(
            &mut n.tags,
            "tag",
            m.tags.iter().map(|x| &x.name),
            file,
            out,
        );
        add(
            &mut n.blackouts,
            "blackout",
            m.blackouts.iter().map(|x| &x.name),
            file,
            out,
        );
        add(
            &mut n.schedules,
            "schedule",
            m.schedules.iter().map(|x| &x.name),
            file,
            out,
        );
        add(
            &mut n.syncs,
            "sync",
            m.syncs.iter().map(|x| &x.name),
            file,
            out,
        );
        add(
            &mut n.requests,
            "request",
            m.requests.iter().map(|x| &x.name),
            file,
            out,
        );
        add(&mut n.endpoints, "endpoint", m.endpoints.iter(), file, out);
        add(
            &mut n.vars,
            "var",
            m.vars.iter().map(|x| &x.name),
            file,
            out,
        );
        for (i, model) in m.models.iter().enumerate() {
            if n.models.get(&model.name.text) != Some(&i) {
                continue;
            }
            for t in &model.tags {
                let list = n.models_by_tag.entry(t.text.clone()).or_default();
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
        }
        let mut dbs: BTreeMap<String, usize> = BTreeMap::new();
        add(
            &mut dbs,
            "source",
            m.sources.iter().map(|s| &s.database),
            file,
            out,
        );
        for s in &m.sources {
            let tables = n.sources.entry(s.database.text.clone()).or_default();
            for t in &s.tables {
                if !tables.insert(t.text.clone()) {
                    out.push(
                        Finding::error(
                            "stir::duplicate",
                            file,
                            t.span.clone(),
                            format!(
                                "table `{}` is declared twice in source `{}`",
                                t.text, s.database.text
                            ),
                        )
                        .label("second declaration")
                        .help("remove the duplicate `table` line"),
                    );
                }
            }
        }
        n
    }

    pub fn unknown(&self, kind: &str, name: &Name, file: FileId) -> Finding {
        let candidates: Vec<&str> = match kind {
            "model" => self.models.keys().map(String::as_str).collect(),
            "tag" => self.tags.keys().map(String::as_str).collect(),
            "blackout" => self.blackouts.keys().map(String::as_str).collect(),
            "sync" => self.syncs.keys().map(String::as_str).collect(),
            "request" => self.requests.keys().map(String::as_str).collect(),
            "endpoint" => self.endpoints.keys().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        let code = match kind {
            "model" => "stir::unknown_model",
            "tag" => "stir::unknown_tag",
            "blackout" => "stir::unknown_blackout",
            "sync" => "stir::unknown_sync",
            "request" => "stir::unknown_request",
            _ => "stir::unknown_endpoint",
        };
        let help = did_you_mean(&name.text, candidates.iter().copied())
            .unwrap_or_else(|| format!("declare it with `{kind} {}`", name.text));
        Finding::error(
            code,
            file,
            name.span.clone(),
            format!("unknown {kind} `{}`", name.text),
        )
        .label(format!("no such {kind}"))
        .help(help)
    }
}

/// Selectors are written and parsed as the runtime's `run` reads them (`stir_plan::select`).
pub use crate::plan::select::Selector;

/// What a selector needs to know about the project.
pub struct SelectCx<'a> {
    pub names: &'a Names,
    pub manifest: &'a Manifest,
    pub graph: &'a ModelGraph,
}

#[derive(Debug)]
pub struct SelectError {
    pub code: &'static str,
    pub message: String,
    pub label: String,
    pub help: String,
}

impl SelectCx<'_> {
    pub fn eval(&self, sel: &Selector) -> Result<BTreeSet<usize>, SelectError> {
        match sel {
            Selector::Tag(t) => {
                if !self.names.tags.contains_key(t) {
                    let help =
                        crate::diagnostic::suggest(t, self.names.tags.keys().map(String::as_str))
                            .map(|s| format!("did you mean `tag:{s}`?"))
                            .unwrap_or_else(|| format!("declare it with `tag {t}`"));
                    return Err(SelectError {
                        code: "stir::unknown_tag",
                        message: format!("unknown tag `{t}`"),
                        label: "no such tag".into(),
                        help,
                    });
                }
                Ok(self
                    .names
                    .models_by_tag
                    .get(t)
                    .map(|v| v.iter().copied().collect())
                    .unwrap_or_default())
            }
            Selector::Model {
                name,
                ancestors,
                descendants,
            } => {
                let Some(&m) = self.names.models.get(name) else {
                    let help = did_you_mean(name, self.names.models.keys().map(String::as_str))
                        .unwrap_or_else(|| "declare the model in a `models` group".into());
                    return Err(SelectError {
                        code: "stir::unknown_model",
                        message: format!("unknown model `{name}`"),
                        label: "no such model".into(),
                        help,
                    });
                };
                let mut set = BTreeSet::from([m]);
                if *ancestors {
                    set.extend(self.graph.ancestors(m));
                }
                if *descendants {
                    set.extend(self.graph.descendants(m));
                }
                Ok(set)
            }
            Selector::Path(p) => {
                let prefix = format!("{p}/");
                let set: BTreeSet<usize> = self
                    .manifest
                    .models
                    .iter()
                    .enumerate()
                    .filter(|(i, m)| {
                        self.names.models.get(&m.name.text) == Some(i)
                            && (m.file.starts_with(&prefix) || m.file == *p)
                    })
                    .map(|(i, _)| i)
                    .collect();
                if set.is_empty() {
                    return Err(SelectError {
                        code: "stir::empty_selection",
                        message: format!("no model lives under `{p}`"),
                        label: "empty folder".into(),
                        help: "paths are relative to the manifest's folder, e.g. \"path:models/marts/collection\"".into(),
                    });
                }
                Ok(set)
            }
        }
    }
}
