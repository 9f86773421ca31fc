//! The version graph: every version of an artifact, in its collection and in every project
//! it is deployed to, joined by parent links into one DAG. Pure functions over the
//! versions' ids, parents and times: ancestry, the merge base (`git merge-base`), the
//! connected line of one artifact, and an order where children come before parents.
//!
//! Built by [`super::History::graph`]; used by the merge (which base, fast-forward or not),
//! by the operations that record where content came from (never a cycle), and by
//! `smctl log --graph`.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::model::{Version, VersionId};

/// One node: its parents and its time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    parents: Vec<VersionId>,
    time_ms: i64,
}

/// Parent links of a set of versions.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    nodes: HashMap<VersionId, Node>,
}

impl Graph {
    /// The graph of `versions`. Parents outside the set are ignored.
    pub fn new<'a>(versions: impl IntoIterator<Item = &'a Version>) -> Graph {
        let nodes = versions
            .into_iter()
            .map(|v| {
                (
                    v.id,
                    Node {
                        parents: v.parents.clone(),
                        time_ms: v.time_ms,
                    },
                )
            })
            .collect();
        Graph { nodes }
    }

    /// Adds or replaces one node (tests and callers building a graph by hand).
    pub fn insert(&mut self, id: VersionId, parents: Vec<VersionId>, time_ms: i64) {
        self.nodes.insert(id, Node { parents, time_ms });
    }

    pub fn contains(&self, id: VersionId) -> bool {
        self.nodes.contains_key(&id)
    }

    fn parents(&self, id: VersionId) -> impl Iterator<Item = VersionId> + '_ {
        self.nodes
            .get(&id)
            .into_iter()
            .flat_map(|n| n.parents.iter().copied())
            .filter(|p| self.nodes.contains_key(p))
    }

    fn rank(&self, id: VersionId) -> (i64, VersionId) {
        (self.nodes.get(&id).map_or(i64::MIN, |n| n.time_ms), id)
    }

    /// `id` and every version it descends from.
    pub fn ancestors(&self, id: VersionId) -> HashSet<VersionId> {
        let mut seen = HashSet::new();
        let mut todo = vec![id];
        while let Some(v) = todo.pop() {
            if self.nodes.contains_key(&v) && seen.insert(v) {
                todo.extend(self.parents(v));
            }
        }
        seen
    }

    /// Whether `a` is `b` or one of its ancestors.
    pub fn is_ancestor(&self, a: VersionId, b: VersionId) -> bool {
        self.ancestors(b).contains(&a)
    }

    /// The nearest common ancestor of `a` and `b`, like `git merge-base`: among the common
    /// ancestors, those that are not an ancestor of another one; of several (criss-cross
    /// merges), the newest.
    pub fn merge_base(&self, a: VersionId, b: VersionId) -> Option<VersionId> {
        let of_a = self.ancestors(a);
        let common: HashSet<VersionId> = self
            .ancestors(b)
            .into_iter()
            .filter(|v| of_a.contains(v))
            .collect();
        // A common ancestor reachable from another common ancestor (not itself) is not
        // nearest.
        let mut below = HashSet::new();
        for &c in &common {
            for p in self.parents(c) {
                below.extend(self.ancestors(p));
            }
        }
        common
            .into_iter()
            .filter(|c| !below.contains(c))
            .max_by_key(|&c| self.rank(c))
    }

    /// Every version linked to one of `start` by parent links in either direction.
    pub fn component(&self, start: &[VersionId]) -> BTreeSet<VersionId> {
        let mut children: HashMap<VersionId, Vec<VersionId>> = HashMap::new();
        for (&id, n) in &self.nodes {
            for &p in &n.parents {
                children.entry(p).or_default().push(id);
            }
        }
        let mut seen = BTreeSet::new();
        let mut todo: Vec<VersionId> = start.to_vec();
        while let Some(v) = todo.pop() {
            if !self.nodes.contains_key(&v) || !seen.insert(v) {
                continue;
            }
            todo.extend(self.parents(v));
            todo.extend(children.get(&v).into_iter().flatten().copied());
        }
        seen
    }

    /// `ids` ordered newest first with every child before its parents (a topological order
    /// that follows time where it can, like `git log --graph`).
    pub fn newest_first(&self, ids: &BTreeSet<VersionId>) -> Vec<VersionId> {
        let mut pending_children: HashMap<VersionId, usize> = ids.iter().map(|&i| (i, 0)).collect();
        for &id in ids {
            for p in self.parents(id) {
                if let Some(n) = pending_children.get_mut(&p) {
                    *n += 1;
                }
            }
        }
        let mut ready: BTreeSet<(i64, VersionId)> = pending_children
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(&id, _)| self.rank(id))
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        while let Some(top) = ready.pop_last() {
            let id = top.1;
            out.push(id);
            for p in self.parents(id) {
                if let Some(n) = pending_children.get_mut(&p) {
                    *n -= 1;
                    if *n == 0 {
                        ready.insert(self.rank(p));
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(n: u64) -> VersionId {
        VersionId(n)
    }

    /// ```text
    /// collection: 1 ── 2 ─────────── 5
    ///              \                  \
    /// project:      3 ── 4 ─────────── 6 (merge of 4 and 5)
    /// ```
    fn forked() -> Graph {
        let mut g = Graph::default();
        g.insert(v(1), vec![], 10);
        g.insert(v(2), vec![v(1)], 20);
        g.insert(v(3), vec![v(1)], 15);
        g.insert(v(4), vec![v(3)], 30);
        g.insert(v(5), vec![v(2)], 40);
        g.insert(v(6), vec![v(4), v(5)], 50);
        g
    }

    #[test]
    fn the_merge_base_is_the_nearest_common_ancestor() {
        let g = forked();
        assert_eq!(g.merge_base(v(4), v(2)), Some(v(1)));
        assert_eq!(g.merge_base(v(4), v(5)), Some(v(1)));
        // After the merge, merging the collection again starts from what was merged in.
        assert_eq!(g.merge_base(v(6), v(5)), Some(v(5)));
        let mut g2 = g.clone();
        g2.insert(v(7), vec![v(5)], 60);
        assert_eq!(g2.merge_base(v(6), v(7)), Some(v(5)));
        assert_eq!(g.merge_base(v(1), v(1)), Some(v(1)));
        let mut lone = g.clone();
        lone.insert(v(9), vec![], 5);
        assert_eq!(lone.merge_base(v(9), v(6)), None);
    }

    #[test]
    fn criss_cross_merges_pick_the_newest_best_base() {
        // 1 → 2, 1 → 3; 4 = merge(2, 3); 5 = merge(3, 2): both 2 and 3 are best bases.
        let mut g = Graph::default();
        g.insert(v(1), vec![], 1);
        g.insert(v(2), vec![v(1)], 2);
        g.insert(v(3), vec![v(1)], 3);
        g.insert(v(4), vec![v(2), v(3)], 4);
        g.insert(v(5), vec![v(3), v(2)], 5);
        assert_eq!(g.merge_base(v(4), v(5)), Some(v(3)));
    }

    #[test]
    fn ancestry_and_components_follow_every_parent() {
        let mut g = forked();
        assert!(g.is_ancestor(v(5), v(6)));
        assert!(g.is_ancestor(v(3), v(6)));
        assert!(!g.is_ancestor(v(6), v(5)));
        assert!(g.is_ancestor(v(4), v(4)));
        g.insert(v(20), vec![], 1);
        g.insert(v(21), vec![v(20), v(404)], 2);
        assert_eq!(g.component(&[v(3)]), (1..=6).map(v).collect());
        assert_eq!(g.component(&[v(21)]), [v(20), v(21)].into());
    }

    #[test]
    fn newest_first_puts_children_before_parents_even_against_the_clock() {
        let mut g = forked();
        // A child whose clock is behind its parent's still comes first.
        g.insert(v(7), vec![v(6)], 0);
        let all = g.component(&[v(1)]);
        let order = g.newest_first(&all);
        assert_eq!(order.len(), 7);
        let pos = |x| order.iter().position(|&o| o == v(x)).unwrap();
        for (child, parent) in [(7, 6), (6, 4), (6, 5), (5, 2), (4, 3), (3, 1), (2, 1)] {
            assert!(pos(child) < pos(parent), "{order:?}");
        }
        assert_eq!(order[0], v(7));
    }
}
