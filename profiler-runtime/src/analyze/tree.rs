//! The merged call tree: every distinct path from a root, with calls on all threads that took the
//! same path merged into one node. It answers "who calls the slow function, and how often".
//!
//! Nodes are kept in a flat list in pre-order (a parent before its children, the heaviest child
//! first), each naming its parent, so that neither building, writing nor reading the tree
//! recurses, however deep the program's recursion went. A recursive call is a node under its own
//! function's node; each node's time is counted once, since calls on one path never nest inside
//! each other.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::collect::profile::Profile;

/// One path from a root, merged over every call that took it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallNode {
    /// Index of the function (in [`Profile::functions`], and in the report's `functions`).
    pub function: u32,
    /// Index of the caller's node in [`CallTree::nodes`], `None` for a root.
    pub parent: Option<u32>,
    /// Depth: 0 for a root.
    pub depth: u32,
    /// Calls along this path that began in the profile (continued spans add only time).
    pub calls: u64,
    /// Inclusive time of those calls, in nanoseconds (`u64::MAX` if they add up past it).
    pub total_ns: u64,
    /// Exclusive time: `total_ns` less the time of the children, in nanoseconds.
    pub self_ns: u64,
}

/// The merged call tree of a profile. Roots are the functions called at the top of any thread.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallTree {
    /// The nodes in pre-order, heaviest sibling (by total time) first.
    pub nodes: Vec<CallNode>,
}

impl CallTree {
    /// Merges the spans of every thread of `profile` by their path from the root.
    ///
    /// # Examples
    ///
    /// ```
    /// use profiler_runtime::analyze::tree::CallTree;
    /// let profile = profiler_runtime::flush();
    /// let tree = CallTree::new(&profile);
    /// for node in tree.roots() {
    ///     println!("{} {} ns", profile.function(tree.nodes[node].function).name, tree.nodes[node].total_ns);
    /// }
    /// ```
    pub fn new(profile: &Profile) -> CallTree {
        // Nodes in creation order, then sorted into pre-order below.
        let mut nodes: Vec<CallNode> = Vec::new();
        let mut index: HashMap<(Option<u32>, u32), u32> = HashMap::new();
        let mut node_of_span: Vec<u32> = Vec::new();
        for thread in &profile.threads {
            node_of_span.clear();
            for span in &thread.spans {
                let parent = span
                    .parent
                    .and_then(|p| node_of_span.get(p as usize).copied());
                let depth = parent.map_or(0, |p| nodes[p as usize].depth + 1);
                let id = *index.entry((parent, span.function)).or_insert_with(|| {
                    nodes.push(CallNode {
                        function: span.function,
                        parent,
                        depth,
                        calls: 0,
                        total_ns: 0,
                        self_ns: 0,
                    });
                    (nodes.len() - 1) as u32
                });
                let node = &mut nodes[id as usize];
                node.calls += u64::from(!span.flags.continued);
                node.total_ns = node.total_ns.saturating_add(span.duration_ns());
                node_of_span.push(id);
            }
        }
        let mut children_time = vec![0_u64; nodes.len()];
        for node in &nodes {
            if let Some(p) = node.parent {
                let sum = &mut children_time[p as usize];
                *sum = sum.saturating_add(node.total_ns);
            }
        }
        for (node, children) in nodes.iter_mut().zip(children_time) {
            node.self_ns = node.total_ns.saturating_sub(children);
        }
        CallTree { nodes }.into_pre_order()
    }

    /// Reorders the nodes into pre-order, siblings by decreasing total time then function index.
    pub(crate) fn into_pre_order(self) -> CallTree {
        let n = self.nodes.len();
        let mut children: Vec<Vec<u32>> = vec![Vec::new(); n];
        let mut roots = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            match node.parent {
                Some(p) => children[p as usize].push(i as u32),
                None => roots.push(i as u32),
            }
        }
        let key = |&i: &u32| {
            let node = &self.nodes[i as usize];
            (std::cmp::Reverse(node.total_ns), node.function)
        };
        roots.sort_by_key(key);
        for list in &mut children {
            list.sort_by_key(key);
        }
        let mut order = Vec::with_capacity(n);
        let mut new_id = vec![0_u32; n];
        // Explicit stack: last pushed is visited first, so push siblings in reverse.
        let mut stack: Vec<u32> = roots.into_iter().rev().collect();
        while let Some(i) = stack.pop() {
            new_id[i as usize] = order.len() as u32;
            order.push(i);
            stack.extend(children[i as usize].iter().rev());
        }
        let nodes = order
            .iter()
            .map(|&i| {
                let mut node = self.nodes[i as usize].clone();
                node.parent = node.parent.map(|p| new_id[p as usize]);
                node
            })
            .collect();
        CallTree { nodes }
    }

    /// Indices of the root nodes.
    pub fn roots(&self) -> impl Iterator<Item = usize> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.parent.is_none())
            .map(|(i, _)| i)
    }

    /// The path from the root to `node`, as node indices, root first.
    ///
    /// # Panics
    ///
    /// If `node` is out of range.
    pub fn path(&self, node: usize) -> Vec<usize> {
        let mut path = vec![node];
        let mut at = node;
        while let Some(p) = self.nodes[at].parent {
            at = p as usize;
            path.push(at);
        }
        path.reverse();
        path
    }

    /// Checks that the tree is well formed for `function_count` functions: every function index
    /// in range, every parent before its child, depths consistent.
    ///
    /// # Errors
    ///
    /// A description of the first violation.
    pub fn validate(&self, function_count: usize) -> Result<(), String> {
        for (i, node) in self.nodes.iter().enumerate() {
            if node.function as usize >= function_count {
                return Err(format!(
                    "call tree node {i}: unknown function {}",
                    node.function
                ));
            }
            let depth = match node.parent {
                None => 0,
                Some(p) if (p as usize) < i => self.nodes[p as usize].depth + 1,
                Some(p) => {
                    return Err(format!(
                        "call tree node {i}: parent {p} does not precede it"
                    ))
                }
            };
            if node.depth != depth {
                return Err(format!(
                    "call tree node {i}: depth {} but its parent gives {depth}",
                    node.depth
                ));
            }
        }
        Ok(())
    }
}
