//! Folded stacks, the input of `flamegraph.pl` and inferno: one line per path of the merged call
//! tree, `root;caller;callee 1234`, weighted by the path's self time in nanoseconds. Paths with
//! no self time are left out; paths that read the same (two functions of the same name called
//! from the same place) make one line; lines are sorted, as flamegraph tools expect.
//!
//! The lines are written as the call tree is walked, from one path buffer, so memory follows the
//! size of the tree, not the length of its paths: a recursion 100,000 calls deep has paths of up
//! to 100,000 frames, and keeping them all as strings takes memory in the square of the depth.
//!
//! # Escaping
//!
//! Frames are separated by `;` and a line ends at a newline, so those cannot appear in a frame
//! name as they are. Inside names, `%` becomes `%25`, `;` becomes `%3B`, `\n` becomes `%0A` and
//! `\r` becomes `%0D` (percent-encoding, so the original name can be recovered with
//! [`unescape_frame`]). Every other character, spaces, commas and non-ASCII included, is kept.

use std::borrow::Cow;
use std::io::{self, Write};

use crate::analyze::report::Report;

/// Calls `line` with each folded line of `report`, without its line end, in sorted order.
///
/// The lines are made from one path buffer during a depth-first walk of the call tree, so that
/// memory grows with the tree's size and never with the total length of its paths: a recursion
/// 100,000 calls deep has 100,000 paths of up to 100,000 frames, which as strings would take
/// tens of gigabytes. Siblings with the same (escaped) name are walked as one frame, so identical
/// stacks make one line with their time added.
///
/// Sorting works on the walk: every line below a frame `a` starts with `…;a;`, so the lines of a
/// level come out sorted when its items are: for each name, its own line `a <self ns>` and the
/// block of its callees' lines, which sorts as its prefix `a;` does (no name holds a `;`).
pub(crate) fn for_each_line(
    report: &Report,
    mut line: impl FnMut(&str) -> io::Result<()>,
) -> io::Result<()> {
    let tree = &report.call_tree;
    let names: Vec<Cow<'_, str>> = report
        .functions
        .iter()
        .map(|f| escape_frame(&f.name))
        .collect();
    let walk = Walk {
        report,
        names: &names,
        children: Children::new(report),
    };
    let roots = (0..tree.nodes.len() as u32).filter(|&i| tree.nodes[i as usize].parent.is_none());
    let mut stack = vec![Level {
        prefix: None,
        items: walk.items(roots.collect()),
    }];
    let mut path = String::new();
    let mut digits = itoa::Buffer::new();
    while let Some(level) = stack.last_mut() {
        let Some(item) = level.items.pop() else {
            stack.pop();
            continue;
        };
        let prefix = level.prefix;
        path.truncate(prefix.unwrap_or(0));
        if prefix.is_some() {
            path.push(';');
        }
        match item.what {
            What::Own(self_ns) => {
                path.push_str(&names[item.function as usize]);
                path.push(' ');
                path.push_str(digits.format(self_ns));
                line(&path)?;
            }
            What::Callees(nodes) => {
                path.push_str(&names[item.function as usize]);
                let callees = nodes
                    .iter()
                    .flat_map(|&n| walk.children.of(n).iter().copied())
                    .collect();
                stack.push(Level {
                    prefix: Some(path.len()),
                    items: walk.items(callees),
                });
            }
        }
    }
    Ok(())
}

/// The children of every node of the call tree, in one list (each node's range is
/// `start[n]..start[n + 1]`).
struct Children {
    start: Vec<u32>,
    list: Vec<u32>,
}

impl Children {
    fn new(report: &Report) -> Children {
        let nodes = &report.call_tree.nodes;
        let mut start = vec![0_u32; nodes.len() + 1];
        for node in nodes {
            if let Some(p) = node.parent {
                start[p as usize + 1] += 1;
            }
        }
        for i in 1..start.len() {
            start[i] += start[i - 1];
        }
        let mut next = start.clone();
        let mut list = vec![0_u32; start[nodes.len()] as usize];
        for (i, node) in nodes.iter().enumerate() {
            if let Some(p) = node.parent {
                list[next[p as usize] as usize] = i as u32;
                next[p as usize] += 1;
            }
        }
        Children { start, list }
    }

    fn of(&self, node: u32) -> &[u32] {
        &self.list[self.start[node as usize] as usize..self.start[node as usize + 1] as usize]
    }
}

/// One level of the walk: the path before it (`None` at the roots) and what is left to write,
/// the smallest last.
struct Level {
    prefix: Option<usize>,
    items: Vec<Item>,
}

/// A frame's own line, or the block of its callees' lines.
struct Item {
    /// Function whose name the frame has (any of them, when several share it).
    function: u32,
    /// What it sorts by: `name <self ns>` or `name;`.
    key: Vec<u8>,
    what: What,
}

enum What {
    Own(u64),
    /// The nodes of the frame, whose children are the next level.
    Callees(Vec<u32>),
}

struct Walk<'a> {
    report: &'a Report,
    names: &'a [Cow<'a, str>],
    children: Children,
}

impl Walk<'_> {
    /// The items of one level, from its nodes: sibling nodes with the same name make one frame.
    fn items(&self, mut nodes: Vec<u32>) -> Vec<Item> {
        let tree = &self.report.call_tree;
        let name = |n: u32| &*self.names[tree.nodes[n as usize].function as usize];
        nodes.sort_by(|&a, &b| name(a).cmp(name(b)));
        let mut items = Vec::new();
        for frame in nodes.chunk_by(|&a, &b| name(a) == name(b)) {
            let function = tree.nodes[frame[0] as usize].function;
            let text = name(frame[0]);
            let self_ns = crate::analyze::stats::saturating_sum(
                frame.iter().map(|&n| tree.nodes[n as usize].self_ns),
            );
            if self_ns > 0 {
                let mut key = Vec::with_capacity(text.len() + 21);
                key.extend_from_slice(text.as_bytes());
                key.push(b' ');
                key.extend_from_slice(itoa::Buffer::new().format(self_ns).as_bytes());
                items.push(Item {
                    function,
                    key,
                    what: What::Own(self_ns),
                });
            }
            if frame.iter().any(|&n| !self.children.of(n).is_empty()) {
                let mut key = Vec::with_capacity(text.len() + 1);
                key.extend_from_slice(text.as_bytes());
                key.push(b';');
                items.push(Item {
                    function,
                    key,
                    what: What::Callees(frame.to_vec()),
                });
            }
        }
        // Popped from the end: the smallest last.
        items.sort_unstable_by(|a, b| b.key.cmp(&a.key));
        items
    }
}

/// Writes the folded stacks of `report` to `out`: one line per path of the merged call tree,
/// `root;caller;callee 1234`, weighted by the path's self time in nanoseconds (summed over all
/// threads). Paths with no self time are left out; lines are sorted, as flamegraph tools expect.
/// Frame names are escaped with [`escape_frame`].
///
/// # Errors
///
/// Any error of `out`.
pub fn write_folded<W: Write + ?Sized>(report: &Report, out: &mut W) -> io::Result<()> {
    for_each_line(report, |line| {
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")
    })
}

/// A function name as a folded-stack frame.
///
/// Frames are separated by `;` and a line ends at a newline, so those cannot appear in a frame
/// as they are: `%` becomes `%25`, `;` becomes `%3B`, `\n` becomes `%0A` and `\r` becomes `%0D`
/// (percent-encoding, undone by [`unescape_frame`]). Every other character, spaces, commas and
/// non-ASCII included, is kept.
///
/// # Examples
///
/// ```
/// use profiler_runtime::export::{escape_frame, unescape_frame};
/// assert_eq!(escape_frame("a;b"), "a%3Bb");
/// assert_eq!(escape_frame("HashMap<K, V>::get"), "HashMap<K, V>::get");
/// assert_eq!(unescape_frame("a%3Bb%25"), "a;b%");
/// ```
pub fn escape_frame(name: &str) -> Cow<'_, str> {
    if !name.contains(['%', ';', '\n', '\r']) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        match c {
            '%' => out.push_str("%25"),
            ';' => out.push_str("%3B"),
            '\n' => out.push_str("%0A"),
            '\r' => out.push_str("%0D"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The name a frame written by [`escape_frame`] stands for. Other `%` sequences are kept as
/// they are.
pub fn unescape_frame(frame: &str) -> Cow<'_, str> {
    if !frame.contains('%') {
        return Cow::Borrowed(frame);
    }
    let mut out = String::with_capacity(frame.len());
    let mut rest = frame;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let code = rest.get(i..i + 3);
        let decoded = match code {
            Some("%25") => Some('%'),
            Some("%3B") => Some(';'),
            Some("%0A") => Some('\n'),
            Some("%0D") => Some('\r'),
            _ => None,
        };
        if let Some(c) = decoded {
            out.push(c);
            rest = &rest[i + 3..];
        } else {
            out.push('%');
            rest = &rest[i + 1..];
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        for name in [
            "plain",
            "a;b",
            "100%",
            "%3B",
            "line\nbreak\r",
            "HashMap<K, V>::get",
            "ünï;cødé",
            "",
        ] {
            let escaped = escape_frame(name);
            assert!(!escaped.contains([';', '\n', '\r']), "{escaped}");
            assert_eq!(unescape_frame(&escaped), name);
        }
    }
}
