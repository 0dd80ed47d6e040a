//! The model lineage as a value: sources, models and syncs with the edges between them, and
//! which schedule builds each model. `stir graph` writes it as Graphviz dot, as JSON, or as an
//! SVG laid out here (no Graphviz needed): the picture a dbt user gets from `dbt docs`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use serde::Serialize;

use crate::project::Compiled;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Source,
    Model,
    Sync,
}

#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// `source:db.table`, `model:name` or `sync:name`: unique across kinds.
    pub id: String,
    pub kind: Kind,
    pub name: String,
    /// Models: table, view or incremental; syncs: the PostgreSQL table they load.
    pub detail: String,
    /// A model's SQL file, relative to the manifest's folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The schedules that build a model (sorted); empty for sources and syncs.
    pub owners: Vec<String>,
    /// Longest path from a node without inputs: the column it is drawn in.
    pub depth: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Lineage {
    pub nodes: Vec<Node>,
    /// `(from id, to id)`, sorted.
    pub edges: Vec<(String, String)>,
    /// Every owning schedule, in the order its colour is given.
    pub schedules: Vec<String>,
}

impl Lineage {
    /// The lineage of `models` (indices into the manifest), with the sources they read and the
    /// syncs that read them.
    pub fn of(c: &Compiled, models: &[usize]) -> Lineage {
        let picked: BTreeSet<usize> = models.iter().copied().collect();
        let model_id = |m: usize| format!("model:{}", c.manifest.models[m].name.text);
        let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
        let mut edges: BTreeSet<(String, String)> = BTreeSet::new();
        let mut schedules: BTreeSet<String> = BTreeSet::new();
        for &m in &picked {
            let model = &c.manifest.models[m];
            let mut owners: Vec<String> = c
                .owners
                .get(&m)
                .into_iter()
                .flatten()
                .map(|o| c.manifest.schedules[o.schedule].name.text.clone())
                .collect();
            owners.sort();
            owners.dedup();
            schedules.extend(owners.iter().cloned());
            nodes.insert(
                model_id(m),
                Node {
                    id: model_id(m),
                    kind: Kind::Model,
                    name: model.name.text.clone(),
                    detail: format!("{:?}", model.materialized).to_lowercase(),
                    file: Some(model.file.clone()),
                    owners,
                    depth: 0,
                },
            );
            for &d in c.models[m].deps.iter().filter(|d| picked.contains(d)) {
                edges.insert((model_id(d), model_id(m)));
            }
            for (db, table) in &c.models[m].sources {
                let id = format!("source:{db}.{table}");
                nodes.entry(id.clone()).or_insert_with(|| Node {
                    id: id.clone(),
                    kind: Kind::Source,
                    name: format!("{db}.{table}"),
                    detail: "source".into(),
                    file: None,
                    owners: Vec::new(),
                    depth: 0,
                });
                edges.insert((id, model_id(m)));
            }
        }
        for sync in &c.manifest.syncs {
            let Some(&from) = sync.from.as_ref().and_then(|f| c.names.models.get(&f.text)) else {
                continue;
            };
            if !picked.contains(&from) {
                continue;
            }
            let id = format!("sync:{}", sync.name.text);
            nodes.insert(
                id.clone(),
                Node {
                    id: id.clone(),
                    kind: Kind::Sync,
                    name: sync.name.text.clone(),
                    detail: sync.to.as_ref().map_or(String::new(), |t| t.text.clone()),
                    file: None,
                    owners: Vec::new(),
                    depth: 0,
                },
            );
            edges.insert((model_id(from), id));
        }
        // Depth by longest path: edges only go forward in build order, so relaxing them in
        // topological order of their targets settles every node once.
        let mut depth: BTreeMap<String, usize> = BTreeMap::new();
        let mut order: Vec<usize> = picked.iter().copied().collect();
        c.graph.sort(&mut order);
        let rank = |id: &str| -> usize {
            match id.strip_prefix("model:") {
                Some(name) => order
                    .iter()
                    .position(|&m| c.manifest.models[m].name.text == name)
                    .map_or(0, |p| p + 1),
                None if id.starts_with("sync:") => usize::MAX,
                None => 0,
            }
        };
        let mut by_target: Vec<&(String, String)> = edges.iter().collect();
        by_target.sort_by_key(|(_, to)| rank(to));
        for (from, to) in by_target {
            let d = depth.get(from).copied().unwrap_or(0) + 1;
            let e = depth.entry(to.clone()).or_insert(0);
            *e = (*e).max(d);
        }
        for n in nodes.values_mut() {
            n.depth = depth.get(&n.id).copied().unwrap_or(0);
        }
        Lineage {
            nodes: nodes.into_values().collect(),
            edges: edges.into_iter().collect(),
            schedules: schedules.into_iter().collect(),
        }
    }

    pub fn json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a lineage always serializes");
        s.push('\n');
        s
    }

    /// Graphviz dot, left to right; models filled with their owner's colour.
    pub fn dot(&self) -> String {
        let mut s = String::from(
            "digraph lineage {\n  rankdir=LR;\n  node [fontname=\"DejaVu Sans\", fontsize=10];\n",
        );
        for n in &self.nodes {
            let (shape, fill) = match n.kind {
                Kind::Source => ("ellipse", "#eeeeee".to_string()),
                Kind::Sync => ("cylinder", "#ffffff".to_string()),
                Kind::Model => ("box", self.fill(n).to_string()),
            };
            let _ = writeln!(
                s,
                "  {} [label={}, shape={shape}, style=filled, fillcolor=\"{fill}\", tooltip={}];",
                dot_quote(&n.id),
                dot_lines(&[&n.name, &n.detail]),
                dot_quote(&tooltip(n)),
            );
        }
        for (from, to) in &self.edges {
            let _ = writeln!(s, "  {} -> {};", dot_quote(from), dot_quote(to));
        }
        s.push_str("}\n");
        s
    }

    /// A standalone SVG: one column per depth, nodes sorted by name within a column, a legend
    /// of the schedules' colours.
    pub fn svg(&self) -> String {
        const W: usize = 200;
        const H: usize = 30;
        const GAP_X: usize = 60;
        const GAP_Y: usize = 10;
        const TOP: usize = 40;
        let mut columns: BTreeMap<usize, Vec<&Node>> = BTreeMap::new();
        for n in &self.nodes {
            columns.entry(n.depth).or_default().push(n);
        }
        let mut at: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        let mut height = TOP;
        for (col, nodes) in &columns {
            let mut nodes = nodes.clone();
            nodes.sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
            for (row, n) in nodes.iter().enumerate() {
                let xy = (10 + col * (W + GAP_X), TOP + row * (H + GAP_Y));
                height = height.max(xy.1 + H + 10);
                at.insert(n.id.as_str(), xy);
            }
        }
        let legend_top = height + 10;
        let height = legend_top + 20 * (self.schedules.len() + 1) + 10;
        let width = (10 + columns.len() * (W + GAP_X)).max(400);
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
             viewBox=\"0 0 {width} {height}\" font-family=\"DejaVu Sans, sans-serif\" font-size=\"11\">\n\
             <title>stir lineage</title>\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n\
             <text x=\"10\" y=\"22\" font-size=\"14\">Lineage: {} models, {} sources, {} syncs</text>\n",
            self.count(Kind::Model),
            self.count(Kind::Source),
            self.count(Kind::Sync),
        );
        for (from, to) in &self.edges {
            let (Some(&(x1, y1)), Some(&(x2, y2))) = (at.get(from.as_str()), at.get(to.as_str()))
            else {
                continue;
            };
            let (x1, y1, x2, y2) = (x1 + W, y1 + H / 2, x2, y2 + H / 2);
            let mid = (x1 + x2) / 2;
            let _ = writeln!(
                s,
                "<path d=\"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}\" fill=\"none\" stroke=\"#999999\"/>"
            );
        }
        for n in &self.nodes {
            let (x, y) = at[n.id.as_str()];
            let (fill, rx) = match n.kind {
                Kind::Source => ("#eeeeee", 15),
                Kind::Sync => ("#ffffff", 8),
                Kind::Model => (self.fill(n), 3),
            };
            let _ = writeln!(
                s,
                "<g class=\"{kind:?}\"><title>{tip}</title><rect x=\"{x}\" y=\"{y}\" width=\"{W}\" height=\"{H}\" rx=\"{rx}\" fill=\"{fill}\" stroke=\"#333333\"/>\
                 <text x=\"{tx}\" y=\"{ty}\">{name}</text></g>",
                kind = n.kind,
                tip = xml(&tooltip(n)),
                tx = x + 6,
                ty = y + H / 2 + 4,
                name = xml(&clip(&n.name, 30)),
            );
        }
        for (i, name) in self
            .schedules
            .iter()
            .map(String::as_str)
            .chain(["no schedule"])
            .enumerate()
        {
            let y = legend_top + i * 20;
            let fill = self
                .schedules
                .iter()
                .position(|s| s == name)
                .map_or(UNOWNED, palette);
            let _ = writeln!(
                s,
                "<rect x=\"10\" y=\"{y}\" width=\"14\" height=\"14\" fill=\"{fill}\" stroke=\"#333333\"/>\
                 <text x=\"30\" y=\"{}\">{}</text>",
                y + 11,
                xml(name)
            );
        }
        s.push_str("</svg>\n");
        s
    }

    fn count(&self, kind: Kind) -> usize {
        self.nodes.iter().filter(|n| n.kind == kind).count()
    }

    /// A model's colour: its first owner's; a model built by no schedule is grey.
    fn fill(&self, n: &Node) -> &'static str {
        n.owners
            .first()
            .and_then(|o| self.schedules.iter().position(|s| s == o))
            .map_or(UNOWNED, palette)
    }
}

const UNOWNED: &str = "#dddddd";

/// Light colours that keep black text readable; they repeat past twelve schedules.
fn palette(i: usize) -> &'static str {
    const P: [&str; 12] = [
        "#a6cee3", "#b2df8a", "#fb9a99", "#fdbf6f", "#cab2d6", "#ffff99", "#8dd3c7", "#bebada",
        "#80b1d3", "#fccde5", "#ccebc5", "#ffed6f",
    ];
    P[i % P.len()]
}

fn tooltip(n: &Node) -> String {
    match n.kind {
        Kind::Model if n.owners.is_empty() => {
            format!("{} ({}), built by no schedule", n.name, n.detail)
        }
        Kind::Model => format!(
            "{} ({}), built by {}",
            n.name,
            n.detail,
            n.owners.join(", ")
        ),
        Kind::Source => format!("source {}", n.name),
        Kind::Sync => format!("sync {} into PostgreSQL {}", n.name, n.detail),
    }
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

fn dot_quote(s: &str) -> String {
    format!("\"{}\"", dot_escape(s))
}

/// A label of several lines (dot's `\n`).
fn dot_lines(lines: &[&str]) -> String {
    let lines: Vec<String> = lines.iter().map(|l| dot_escape(l)).collect();
    format!("\"{}\"", lines.join("\\n"))
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
