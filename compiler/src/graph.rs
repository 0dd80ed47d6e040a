//! Stage 3: the model dependency DAG (petgraph), its cycles and a stable build order.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;

use std::ops::Range;

use crate::diagnostic::{FileId, Finding};

/// Models are numbered as in the manifest; an edge `a -> b` means `b` reads `a`.
#[derive(Debug, Clone, Default)]
pub struct ModelGraph {
    graph: DiGraph<usize, ()>,
    /// Position of each model in the stable build order (ties broken by name).
    rank: Vec<usize>,
}

impl ModelGraph {
    /// `deps[m]` are the models `m` reads; `names` break ties so the order never depends on
    /// declaration order.
    pub fn new(deps: &[BTreeSet<usize>], names: &[&str]) -> ModelGraph {
        let mut graph = DiGraph::with_capacity(deps.len(), deps.iter().map(BTreeSet::len).sum());
        for m in 0..deps.len() {
            graph.add_node(m);
        }
        for (m, ds) in deps.iter().enumerate() {
            for &d in ds {
                graph.add_edge(NodeIndex::new(d), NodeIndex::new(m), ());
            }
        }
        let mut g = ModelGraph {
            graph,
            rank: Vec::new(),
        };
        g.rank = g.order_ranks(names);
        g
    }

    /// Kahn's algorithm, smallest name first; models on a cycle go last, by name.
    fn order_ranks(&self, names: &[&str]) -> Vec<usize> {
        let n = self.graph.node_count();
        let mut indegree: Vec<usize> = (0..n)
            .map(|m| {
                self.graph
                    .neighbors_directed(NodeIndex::new(m), Direction::Incoming)
                    .count()
            })
            .collect();
        let mut ready: BinaryHeap<Reverse<(&str, usize)>> = (0..n)
            .filter(|&m| indegree[m] == 0)
            .map(|m| Reverse((names[m], m)))
            .collect();
        let mut rank = vec![usize::MAX; n];
        let mut next = 0;
        while let Some(Reverse((_, m))) = ready.pop() {
            rank[m] = next;
            next += 1;
            for s in self
                .graph
                .neighbors_directed(NodeIndex::new(m), Direction::Outgoing)
            {
                let s = s.index();
                indegree[s] -= 1;
                if indegree[s] == 0 {
                    ready.push(Reverse((names[s], s)));
                }
            }
        }
        let mut rest: Vec<usize> = (0..n).filter(|&m| rank[m] == usize::MAX).collect();
        rest.sort_by_key(|&m| names[m]);
        for m in rest {
            rank[m] = next;
            next += 1;
        }
        rank
    }

    /// Sort models into build order.
    pub fn sort(&self, models: &mut [usize]) {
        models.sort_by_key(|&m| self.rank[m]);
    }

    /// Every cycle as a path `a -> b -> ... -> a`, each starting at its smallest name.
    pub fn cycles(&self, names: &[&str]) -> Vec<Vec<usize>> {
        let mut out = Vec::new();
        for scc in tarjan_scc(&self.graph) {
            let members: BTreeSet<usize> = scc.iter().map(|n| n.index()).collect();
            let self_loop = scc.len() == 1 && self.graph.contains_edge(scc[0], scc[0]);
            if scc.len() < 2 && !self_loop {
                continue;
            }
            let Some(&start) = members.iter().min_by_key(|&&m| names[m]) else {
                continue;
            };
            out.push(self.cycle_through(start, &members, names));
        }
        out.sort_by(|a, b| names[a[0]].cmp(names[b[0]]));
        out
    }

    /// A shortest cycle from `start` back to itself inside one strongly connected component,
    /// in "refs" order: each model reads the next.
    fn cycle_through(&self, start: usize, members: &BTreeSet<usize>, names: &[&str]) -> Vec<usize> {
        let mut prev = vec![usize::MAX; self.graph.node_count()];
        let mut queue = std::collections::VecDeque::from([start]);
        let mut seen = BTreeSet::from([start]);
        while let Some(m) = queue.pop_front() {
            let mut next: Vec<usize> = self
                .graph
                .neighbors_directed(NodeIndex::new(m), Direction::Outgoing)
                .map(|n| n.index())
                .filter(|n| members.contains(n))
                .collect();
            next.sort_by_key(|&n| names[n]);
            for n in next {
                if n == start {
                    let mut path = vec![start];
                    let mut cur = m;
                    while cur != start {
                        path.push(cur);
                        cur = prev[cur];
                    }
                    // Walking back from `m` gives the path in "refs" order: each reads the next.
                    path.push(start);
                    return path;
                }
                if seen.insert(n) {
                    prev[n] = m;
                    queue.push_back(n);
                }
            }
        }
        vec![start, start]
    }

    pub fn ancestors(&self, m: usize) -> BTreeSet<usize> {
        self.walk(m, Direction::Incoming)
    }

    pub fn descendants(&self, m: usize) -> BTreeSet<usize> {
        self.walk(m, Direction::Outgoing)
    }

    fn walk(&self, m: usize, dir: Direction) -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![m];
        while let Some(x) = stack.pop() {
            for n in self.graph.neighbors_directed(NodeIndex::new(x), dir) {
                if seen.insert(n.index()) {
                    stack.push(n.index());
                }
            }
        }
        seen.remove(&m);
        seen
    }
}

/// The graph of the models' `ref`s (`deps[m]`: what model `m` reads), with a finding for
/// each cycle at the `spans` of the models' names in `file`.
pub fn build(
    deps: &[BTreeSet<usize>],
    names: &[&str],
    file: FileId,
    spans: &[Range<usize>],
) -> (ModelGraph, Vec<Finding>) {
    let mut findings = Vec::new();
    let graph = ModelGraph::new(deps, names);
    let cycles = graph.cycles(names);
    for cycle in cycles {
        let path = cycle
            .iter()
            .map(|&m| format!("`{}`", names[m]))
            .collect::<Vec<_>>()
            .join(" -> ");
        let first = cycle[0];
        let second = cycle.get(1).copied().unwrap_or(first);
        findings.push(
            Finding::error(
                "stir::cycle",
                file,
                spans[first].clone(),
                format!("models form a cycle: {path}"),
            )
            .label("on a cycle")
            .help(format!(
                "each model in the path refs the next; remove one ref, e.g. the ref from `{}` to `{}`",
                names[first], names[second]
            )),
        );
    }
    (graph, findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_cycles() {
        // c reads b, b reads a; d reads e, e reads d.
        let names = ["c", "b", "a", "d", "e"];
        let deps = vec![
            BTreeSet::from([1]),
            BTreeSet::from([2]),
            BTreeSet::new(),
            BTreeSet::from([4]),
            BTreeSet::from([3]),
        ];
        let g = ModelGraph::new(&deps, &names);
        let mut all = vec![0, 1, 2];
        g.sort(&mut all);
        assert_eq!(all, vec![2, 1, 0]);
        let cycles = g.cycles(&names);
        assert_eq!(cycles.len(), 1);
        let text: Vec<&str> = cycles[0].iter().map(|&m| names[m]).collect();
        assert_eq!(text, vec!["d", "e", "d"]);
        assert_eq!(g.ancestors(0), BTreeSet::from([1, 2]));
        assert_eq!(g.descendants(2), BTreeSet::from([0, 1]));
    }
}
