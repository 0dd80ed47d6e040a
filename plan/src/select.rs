//! Selectors (`tag:x`, `m`, `+m`, `m+`, `path:dir`): how they are written, and what they pick
//! among a plan's models, for `stir-runtime plan.json run SELECTOR…`. The compiler parses the
//! manifest's selectors and `stir ls`'s with the same [`Selector::parse`]; it evaluates them on
//! its own tables (declared tags, the manifest's models), and `compiler/tests/plan.rs` checks
//! that this evaluation over the plan picks what `stir ls` picks on the shipped stir.kdl.
//! Also: the build order of a set of models and a schedule's critical path.

use std::collections::{BTreeMap, BTreeSet};

use crate::{Plan, Schedule, Step};

/// One selector as written: `tag:daily`, `mart_x`, `+mart_x`, `mart_x+`, `path:models/marts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Tag(String),
    Model {
        name: String,
        ancestors: bool,
        descendants: bool,
    },
    Path(String),
}

/// A tag, schedule or other manifest name: a letter or `_`, then letters, digits, `_`, `-`.
pub fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && s.len() <= 128
}

/// A model name: a SQL identifier ClickHouse and PostgreSQL take unquoted.
pub fn is_sql_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 63
}

/// A relative path with `/` separators, no leading `./` and no trailing `/`.
pub fn normalize_path(p: &str) -> String {
    let p = p.trim().replace('\\', "/");
    let p = p.trim_start_matches("./");
    p.trim_end_matches('/').to_string()
}

impl Selector {
    pub fn parse(text: &str) -> Result<Selector, String> {
        if let Some(tag) = text.strip_prefix("tag:") {
            return if is_name(tag) {
                Ok(Selector::Tag(tag.to_string()))
            } else {
                Err(format!("`{text}` is not a valid tag selector"))
            };
        }
        if let Some(path) = text.strip_prefix("path:") {
            let p = normalize_path(path);
            return if p.is_empty() {
                Err("`path:` needs a folder, e.g. \"path:models/marts\"".into())
            } else {
                Ok(Selector::Path(p))
            };
        }
        let ancestors = text.starts_with('+');
        let descendants = text.len() > 1 && text.ends_with('+');
        let name = text.trim_start_matches('+').trim_end_matches('+');
        if is_sql_ident(name)
            && text.len() - name.len() == usize::from(ancestors) + usize::from(descendants)
        {
            Ok(Selector::Model {
                name: name.to_string(),
                ancestors,
                descendants,
            })
        } else {
            Err(format!("`{text}` is not a selector"))
        }
    }
}

/// A selection that picks nothing, or a selector that is not one: what, and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}\nhelp: {help}")]
pub struct SelectError {
    pub message: String,
    pub help: String,
}

/// Every selector that picks nothing, not one at a time: what `run` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectErrors(pub Vec<SelectError>);

impl std::fmt::Display for SelectErrors {
    /// One `message\nhelp: …` per error, the later ones after `error: `, as the runtime's
    /// other refusals print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let all: Vec<String> = self.0.iter().map(|e| format!("run: {e}")).collect();
        f.write_str(&all.join("\nerror: "))
    }
}

impl std::error::Error for SelectErrors {}

/// The plan's models as a graph: names, what each reads and what reads it.
pub struct Models<'p> {
    plan: &'p Plan,
    readers: BTreeMap<&'p str, Vec<&'p str>>,
    rank: BTreeMap<&'p str, usize>,
}

impl<'p> Models<'p> {
    pub fn new(plan: &'p Plan) -> Models<'p> {
        let mut readers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for m in &plan.models {
            for d in &m.deps {
                readers.entry(d.as_str()).or_default().push(m.name.as_str());
            }
        }
        let rank = build_ranks(plan);
        Models {
            plan,
            readers,
            rank,
        }
    }

    /// The models `include` picks less those `exclude` picks, in build order. Each argument
    /// may hold several selectors separated by spaces. A selector that picks nothing, or a
    /// selection left empty by `exclude`, is an error with the likely fix.
    pub fn select(
        &self,
        include: &[String],
        exclude: &[String],
    ) -> Result<Vec<&'p str>, SelectErrors> {
        let words = |list: &[String]| -> Vec<String> {
            list.iter()
                .flat_map(|s| s.split_whitespace().map(str::to_string))
                .collect()
        };
        let (include, exclude) = (words(include), words(exclude));
        if include.is_empty() {
            return Err(SelectErrors(vec![SelectError {
                message: "no selector given".into(),
                help: "name models as `stir ls` does: `mart_x`, `+mart_x`, `mart_x+`, `tag:daily`, `path:models/marts`".into(),
            }]));
        }
        let mut errors = Vec::new();
        let mut pick = |s: &String| match parse(s).and_then(|sel| self.eval(&sel)) {
            Ok(set) => set,
            Err(e) => {
                errors.push(e);
                BTreeSet::new()
            }
        };
        let mut picked = BTreeSet::new();
        for s in &include {
            picked.extend(pick(s));
        }
        for s in &exclude {
            for m in pick(s) {
                picked.remove(m);
            }
        }
        if !errors.is_empty() {
            return Err(SelectErrors(errors));
        }
        if picked.is_empty() {
            return Err(SelectErrors(vec![SelectError {
                message: format!(
                    "`{}` less `--exclude {}` selects no model",
                    include.join(" "),
                    exclude.join(" ")
                ),
                help: "exclude fewer models".into(),
            }]));
        }
        Ok(self.in_build_order(picked))
    }

    /// `names` in the plan's build order: what a model reads first, ties by name.
    pub fn in_build_order(&self, names: impl IntoIterator<Item = &'p str>) -> Vec<&'p str> {
        let mut v: Vec<&str> = names.into_iter().collect();
        v.sort_by_key(|n| (self.rank.get(n).copied().unwrap_or(usize::MAX), *n));
        v.dedup();
        v
    }

    /// The models one selector picks (never empty: an empty pick is an error).
    pub fn eval(&self, sel: &Selector) -> Result<BTreeSet<&'p str>, SelectError> {
        let all = || self.plan.models.iter();
        let set: BTreeSet<&str> = match sel {
            Selector::Tag(t) => all()
                .filter(|m| m.tags.iter().any(|x| x == t))
                .map(|m| m.name.as_str())
                .collect(),
            Selector::Model {
                name,
                ancestors,
                descendants,
            } => {
                let Some(m) = self.plan.model(name) else {
                    let names = all().map(|m| m.name.as_str());
                    return Err(SelectError {
                        message: format!("the plan has no model `{name}`"),
                        help: crate::did_you_mean(name, names).unwrap_or_else(|| {
                            "list the plan's models with `stir ls` on its manifest".into()
                        }),
                    });
                };
                let mut set = BTreeSet::from([m.name.as_str()]);
                if *ancestors {
                    set.extend(self.walk(&m.name, true));
                }
                if *descendants {
                    set.extend(self.walk(&m.name, false));
                }
                set
            }
            Selector::Path(p) => {
                let prefix = format!("{p}/");
                all()
                    .filter(|m| m.file.starts_with(&prefix) || m.file == *p)
                    .map(|m| m.name.as_str())
                    .collect()
            }
        };
        if !set.is_empty() {
            return Ok(set);
        }
        Err(match sel {
            Selector::Tag(t) => {
                let tags: BTreeSet<&str> = all()
                    .flat_map(|m| m.tags.iter())
                    .map(String::as_str)
                    .collect();
                SelectError {
                    message: format!("no model of the plan has tag `{t}`"),
                    help: crate::suggest(t, tags.iter().copied())
                        .map(|s| format!("did you mean `tag:{s}`?"))
                        .unwrap_or_else(|| "models with a disabled tag are not in the plan".into()),
                }
            }
            Selector::Path(p) => {
                // Every folder that holds a model, however deep.
                let dirs: BTreeSet<&str> = all()
                    .flat_map(|m| m.file.match_indices('/').map(|(i, _)| &m.file[..i]))
                    .collect();
                SelectError {
                    message: format!("no model of the plan lives under `{p}`"),
                    help: crate::suggest(p, dirs.iter().copied())
                        .map(|s| format!("did you mean `path:{s}`?"))
                        .unwrap_or_else(|| {
                            "paths are relative to the manifest's folder, e.g. `path:models/marts`"
                                .into()
                        }),
                }
            }
            Selector::Model { .. } => unreachable!("a known model selects itself"),
        })
    }

    /// Every model `name` reads (`up`), or that reads it, directly or through others.
    fn walk(&self, name: &str, up: bool) -> BTreeSet<&'p str> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![name.to_string()];
        while let Some(x) = stack.pop() {
            let next: Vec<&'p str> = if up {
                self.plan
                    .model(&x)
                    .map(|m| m.deps.iter().map(String::as_str).collect())
                    .unwrap_or_default()
            } else {
                self.readers.get(x.as_str()).cloned().unwrap_or_default()
            };
            for n in next {
                if seen.insert(n) {
                    stack.push(n.to_string());
                }
            }
        }
        seen.remove(name);
        seen
    }
}

fn parse(s: &str) -> Result<Selector, SelectError> {
    Selector::parse(s).map_err(|message| SelectError {
        message,
        help:
            "selectors look like `tag:daily`, `mart_x`, `+mart_x`, `mart_x+` or `path:models/marts`"
                .into(),
    })
}

/// Each model's place in the build order: Kahn's algorithm, smallest name first (the order
/// the compiler gives each `run` step); models on a cycle (none in a checked plan) go last.
fn build_ranks(plan: &Plan) -> BTreeMap<&str, usize> {
    let names: BTreeSet<&str> = plan.models.iter().map(|m| m.name.as_str()).collect();
    let mut waiting: BTreeMap<&str, usize> = BTreeMap::new();
    let mut readers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for m in &plan.models {
        let deps: BTreeSet<&str> = m
            .deps
            .iter()
            .map(String::as_str)
            .filter(|d| names.contains(d))
            .collect();
        waiting.insert(m.name.as_str(), deps.len());
        for d in deps {
            readers.entry(d).or_default().push(m.name.as_str());
        }
    }
    let mut ready: BTreeSet<&str> = waiting
        .iter()
        .filter(|(_, &n)| n == 0)
        .map(|(&m, _)| m)
        .collect();
    let mut rank = BTreeMap::new();
    while let Some(m) = ready.pop_first() {
        rank.insert(m, rank.len());
        for &r in readers.get(m).map(Vec::as_slice).unwrap_or_default() {
            if let Some(n) = waiting.get_mut(r) {
                *n -= 1;
                if *n == 0 {
                    ready.insert(r);
                }
            }
        }
    }
    for m in names {
        let next = rank.len();
        rank.entry(m).or_insert(next);
    }
    rank
}

/// The longest chain of models a schedule's run steps build, each reading the one before
/// (only dependencies among the schedule's own models count: the others are already built),
/// against how many models it builds: with `threads` at once a run takes at least the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriticalPath {
    pub models: usize,
    /// Upstream first; ties go to the smallest names, so the answer is the same on every run.
    pub chain: Vec<String>,
}

/// The models a schedule's `run` steps build.
pub fn schedule_models(schedule: &Schedule) -> BTreeSet<&str> {
    schedule
        .steps
        .iter()
        .flat_map(|s| match s {
            Step::Run { models } => models.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        })
        .collect()
}

/// The schedule's [`CriticalPath`], or `None` when it builds no model.
pub fn critical_path(plan: &Plan, schedule: &Schedule) -> Option<CriticalPath> {
    let set = schedule_models(schedule);
    if set.is_empty() {
        return None;
    }
    let graph = Models::new(plan);
    // Longest chain ending at each model, computed in build order.
    let mut best: BTreeMap<&str, (usize, Option<&str>)> = BTreeMap::new();
    for m in graph.in_build_order(set.iter().copied()) {
        let deps = plan.model(m).map(|x| x.deps.as_slice()).unwrap_or_default();
        let prev = deps
            .iter()
            .filter_map(|d| best.get(d.as_str()).map(|&(n, _)| (n, d.as_str())))
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(a.1)));
        best.insert(m, (prev.map_or(1, |(n, _)| n + 1), prev.map(|(_, d)| d)));
    }
    let (mut at, _) = best
        .iter()
        .max_by(|a, b| a.1 .0.cmp(&b.1 .0).then(b.0.cmp(a.0)))
        .map(|(&m, &v)| (m, v))?;
    let mut chain = vec![at.to_string()];
    while let Some(Some(p)) = best.get(at).map(|&(_, p)| p) {
        chain.push(p.to_string());
        at = p;
    }
    chain.reverse();
    Some(CriticalPath {
        models: set.len(),
        chain,
    })
}

impl std::fmt::Display for CriticalPath {
    /// `52 models, critical path 7 (a → b → … → g)`: the first three and the last of a long
    /// chain.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.chain.len();
        let shown = if n <= 5 {
            self.chain.join(" → ")
        } else {
            format!(
                "{} → … → {}",
                self.chain[..3].join(" → "),
                self.chain[n - 1]
            )
        };
        let s = if self.models == 1 { "" } else { "s" };
        write!(f, "{} model{s}, critical path {n} ({shown})", self.models)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Materialized, Model};

    fn model(name: &str, tags: &[&str], deps: &[&str], file: &str) -> Model {
        Model {
            name: name.into(),
            materialized: Materialized::Table,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            deps: deps.iter().map(|t| t.to_string()).collect(),
            file: file.into(),
            table: format!("db.{name}"),
            sql: "select 1".into(),
            sql_incremental: None,
            build: vec![],
            exists: None,
            first_build: vec![],
            incremental: vec![],
            full_refresh: vec![],
            cleanup: vec![],
            freshness_secs: None,
        }
    }

    /// stg_a, stg_b -> mid (reads both) -> mart; other alone.
    fn plan() -> Plan {
        let mut p = crate::types::tests::tiny();
        p.schedules[0].steps = vec![Step::Run {
            models: ["stg_a", "stg_b", "other", "mid", "mart"]
                .map(String::from)
                .to_vec(),
        }];
        p.models = vec![
            model("mart", &["daily"], &["mid"], "models/marts/mart.sql"),
            model("mid", &["daily"], &["stg_a", "stg_b"], "models/mid.sql"),
            model("other", &["daily", "x"], &[], "models/marts/other.sql"),
            model("stg_a", &["stg"], &[], "models/stg/stg_a.sql"),
            model("stg_b", &["stg"], &[], "models/stg/stg_b.sql"),
        ];
        p
    }

    fn sel(inc: &[&str], exc: &[&str]) -> Result<Vec<String>, SelectError> {
        let p = plan();
        let m = Models::new(&p);
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        m.select(&s(inc), &s(exc))
            .map(|v| v.into_iter().map(String::from).collect())
            .map_err(|mut e| e.0.remove(0))
    }

    #[test]
    fn selectors_pick_in_build_order() {
        assert_eq!(sel(&["mart"], &[]).unwrap(), ["mart"]);
        assert_eq!(
            sel(&["+mart"], &[]).unwrap(),
            ["stg_a", "stg_b", "mid", "mart"]
        );
        assert_eq!(sel(&["stg_a+"], &[]).unwrap(), ["stg_a", "mid", "mart"]);
        assert_eq!(
            sel(&["tag:stg mart"], &[]).unwrap(),
            ["stg_a", "stg_b", "mart"]
        );
        assert_eq!(
            sel(&["path:models/marts/"], &[]).unwrap(),
            ["other", "mart"]
        );
        assert_eq!(sel(&["tag:daily"], &["mid", "tag:x"]).unwrap(), ["mart"]);
    }

    #[test]
    fn an_empty_pick_is_an_error_with_the_likely_fix() {
        let e = sel(&["mrt"], &[]).unwrap_err();
        assert_eq!(e.message, "the plan has no model `mrt`");
        assert_eq!(e.help, "did you mean `mart`?");
        let e = sel(&["tag:dialy"], &[]).unwrap_err();
        assert_eq!(e.help, "did you mean `tag:daily`?");
        let e = sel(&["path:models/mart"], &[]).unwrap_err();
        assert_eq!(e.help, "did you mean `path:models/marts`?");
        assert!(sel(&["mart"], &["mart"])
            .unwrap_err()
            .message
            .contains("selects no model"));
        assert!(sel(&["a/b"], &[])
            .unwrap_err()
            .message
            .contains("not a selector"));
        assert!(sel(&[], &[]).is_err());
    }

    /// Every bad selector is reported, not only the first.
    #[test]
    fn every_bad_selector_is_reported_at_once() {
        let p = plan();
        let e = Models::new(&p)
            .select(&["mrt tag:dialy mid".into()], &["path:nowhere".into()])
            .unwrap_err();
        assert_eq!(e.0.len(), 3, "{e}");
        assert_eq!(
            e.to_string()
                .lines()
                .filter(|l| l.starts_with("help: "))
                .count(),
            3,
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("\nerror: run: no model of the plan has tag `dialy`"),
            "{e}"
        );
    }

    #[test]
    fn the_critical_path_is_the_longest_chain_smallest_names_first() {
        let p = plan();
        let c = critical_path(&p, &p.schedules[0]).unwrap();
        assert_eq!(c.models, 5);
        assert_eq!(c.chain, ["stg_a", "mid", "mart"]);
        assert_eq!(
            c.to_string(),
            "5 models, critical path 3 (stg_a → mid → mart)"
        );
        let long = CriticalPath {
            models: 9,
            chain: ["a", "b", "c", "d", "e", "f"].map(String::from).to_vec(),
        };
        assert_eq!(
            long.to_string(),
            "9 models, critical path 6 (a → b → c → … → f)"
        );
    }

    /// The longest chain wins over a smaller-named model alone (cargo-mutants found the
    /// lengths unchecked: every chain counted 1 and the names alone chose the same path).
    #[test]
    fn the_critical_path_counts_the_chain_not_the_names() {
        let mut p = plan();
        p.schedules[0].steps = vec![Step::Run {
            models: ["aa", "x1", "x2", "x3"].map(String::from).to_vec(),
        }];
        p.models = vec![
            model("aa", &[], &[], "models/aa.sql"),
            model("x1", &[], &[], "models/x1.sql"),
            model("x2", &[], &["x1"], "models/x2.sql"),
            model("x3", &[], &["x2"], "models/x3.sql"),
        ];
        let c = critical_path(&p, &p.schedules[0]).unwrap();
        assert_eq!(c.chain, ["x1", "x2", "x3"]);
        assert_eq!(c.models, 4);
    }

    #[test]
    fn names_and_identifiers_are_what_the_manifest_allows() {
        for ok in ["daily", "_x", "a-b_c9", "A"] {
            assert!(is_name(ok), "{ok}");
        }
        let long = "a".repeat(128);
        assert!(is_name(&long));
        for bad in ["", "9a", "-a", "a b", "a.b", "ä", "a+", &"a".repeat(129)] {
            assert!(!is_name(bad), "{bad}");
        }
        for ok in ["mart_x", "_m", "M9"] {
            assert!(is_sql_ident(ok), "{ok}");
        }
        for bad in ["", "9m", "m-x", "m.x", &"m".repeat(64)] {
            assert!(!is_sql_ident(bad), "{bad}");
        }
        assert!(is_sql_ident(&"m".repeat(63)));
    }
}
