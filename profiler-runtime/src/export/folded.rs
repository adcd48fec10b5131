//! Folded stacks, the input of `flamegraph.pl` and inferno: one line per path of the merged call
//! tree, `root;caller;callee 1234`, weighted by the path's self time in nanoseconds. Paths with
//! no self time are left out; lines are sorted, as flamegraph tools expect.
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

/// The folded lines of `report`, sorted, without line ends.
pub(crate) fn folded_lines(report: &Report) -> Vec<String> {
    let tree = &report.call_tree;
    let names: Vec<Cow<'_, str>> = report
        .functions
        .iter()
        .map(|f| escape_frame(&f.name))
        .collect();
    // Each node's path text, built from its parent's (parents come first in pre-order).
    let mut paths: Vec<String> = Vec::with_capacity(tree.nodes.len());
    let mut lines = Vec::new();
    for node in &tree.nodes {
        let name = &names[node.function as usize];
        let path = match node.parent {
            Some(p) => format!("{};{name}", paths[p as usize]),
            None => name.to_string(),
        };
        if node.self_ns > 0 {
            lines.push(format!("{path} {}", node.self_ns));
        }
        paths.push(path);
    }
    lines.sort_unstable();
    lines
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
    for line in folded_lines(report) {
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
    }
    Ok(())
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
