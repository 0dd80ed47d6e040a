//! The invariants docs/ARCHITECTURE.md states about the code's shape, checked on the source:
//! the runtime builds on the plan crate and never on the compiler's front end, and no crate has
//! modules that import each other in a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The names under `[dependencies]` of a crate's Cargo.toml (not dev- or build-dependencies).
fn normal_dependencies(manifest: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let mut out = BTreeSet::new();
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == "[dependencies]";
        } else if inside && !line.starts_with('#') {
            if let Some((name, _)) = line.split_once('=') {
                out.insert(name.trim().trim_end_matches(".workspace").to_string());
            }
        }
    }
    out
}

/// Every package `roots` pull in, through Cargo.lock (whose entries list what a registry
/// package needs to build: its dev-dependencies are not there).
fn closure(roots: &BTreeSet<String>) -> BTreeSet<String> {
    let lock = std::fs::read_to_string(workspace().join("Cargo.lock")).unwrap();
    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for block in lock.split("[[package]]").skip(1) {
        let name = block
            .lines()
            .find_map(|l| l.strip_prefix("name = "))
            .unwrap()
            .trim_matches('"')
            .to_string();
        let list: Vec<String> = match block.split_once("dependencies = [") {
            Some((_, rest)) => rest
                .split(']')
                .next()
                .unwrap()
                .split(',')
                .map(|d| d.trim().trim_matches('"'))
                .filter(|d| !d.is_empty())
                // `name version` when two versions are locked.
                .map(|d| d.split(' ').next().unwrap().to_string())
                .collect(),
            None => Vec::new(),
        };
        deps.entry(name).or_default().extend(list);
    }
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = roots.iter().cloned().collect();
    while let Some(p) = todo.pop() {
        if seen.insert(p.clone()) {
            todo.extend(deps.get(&p).cloned().unwrap_or_default());
        }
    }
    seen
}

#[test]
fn the_runtime_builds_on_the_plan_crate_not_on_the_compiler_front_end() {
    let direct = normal_dependencies(&workspace().join("runtime/Cargo.toml"));
    assert!(direct.contains("stir-plan"), "{direct:?}");
    let all = closure(&direct);
    for front_end in ["stir", "kdl", "sqlparser", "petgraph", "similar"] {
        assert!(
            !all.contains(front_end),
            "stir-runtime depends on `{front_end}`: the runtime must need the plan crate only"
        );
    }
    // The plan crate is the contract: none of the front end either.
    let plan = closure(&normal_dependencies(&workspace().join("plan/Cargo.toml")));
    for front_end in ["stir", "kdl", "sqlparser", "petgraph", "minijinja"] {
        assert!(
            !plan.contains(front_end),
            "stir-plan depends on `{front_end}`"
        );
    }
    // The closure walk itself works: the compiler reaches kdl through its own manifest.
    let compiler = closure(&normal_dependencies(
        &workspace().join("compiler/Cargo.toml"),
    ));
    assert!(compiler.contains("kdl") && compiler.contains("stir-plan"));
}

/// Top-level module -> the top-level modules it names through `crate::`, outside comments and
/// unit tests.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = p.strip_prefix(src).unwrap();
            let top = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string();
            if top == "lib" || top == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            let code: String = text
                .split("#[cfg(test)]\nmod tests")
                .next()
                .unwrap()
                .lines()
                .map(|l| l.split("//").next().unwrap())
                .collect::<Vec<_>>()
                .join("\n");
            let entry = g.entry(top.clone()).or_default();
            for (i, _) in code.match_indices("crate::") {
                let rest = &code[i + "crate::".len()..];
                let names: Vec<&str> = match rest.strip_prefix('{') {
                    Some(group) => group
                        .split('}')
                        .next()
                        .unwrap()
                        .split(',')
                        .map(|s| s.trim().split("::").next().unwrap())
                        .collect(),
                    None => vec![rest
                        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .next()
                        .unwrap()],
                };
                for n in names {
                    if !n.is_empty()
                        && n != top
                        && n.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    {
                        entry.insert(n.to_string());
                    }
                }
            }
        }
    }
    g
}

/// A circle of modules, if any (depth-first search for a back edge).
fn find_circle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        v: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(v.to_string(), 1);
        path.push(v.to_string());
        for w in g
            .get(v)
            .into_iter()
            .flatten()
            .filter(|w| g.contains_key(*w))
        {
            match state.get(w) {
                Some(1) => {
                    let from = path.iter().position(|p| p == w).unwrap();
                    let mut circle = path[from..].to_vec();
                    circle.push(w.clone());
                    return Some(circle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(w, g, state, path) {
                        return Some(c);
                    }
                }
            }
        }
        path.pop();
        state.insert(v.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for v in g.keys() {
        if !state.contains_key(v) {
            if let Some(c) = visit(v, g, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn no_crate_has_modules_that_import_each_other_in_a_circle() {
    for krate in ["plan", "compiler", "runtime"] {
        let g = module_graph(&workspace().join(krate).join("src"));
        assert!(g.len() > 5, "{krate}: only {} modules found", g.len());
        if let Some(circle) = find_circle(&g) {
            panic!(
                "{krate}: modules import each other in a circle: {}",
                circle.join(" -> ")
            );
        }
    }
    // The search finds a circle where there is one.
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    assert!(find_circle(&g).is_some());
}
