//! SVG flamegraphs and icicle graphs, drawn by the `inferno` crate from the folded stacks of the
//! merged call tree (see [`folded`](super::write_folded)): a frame's width is its inclusive time
//! in nanoseconds, summed over all threads. The SVG is interactive in a browser (zoom on click,
//! search). Frames are never elided for being narrow, so every function with time appears.
//!
//! Requires the cargo feature `flamegraph`.

use std::io::{self, Write};

use inferno::flamegraph::{self, Direction};

use super::folded::for_each_line;
use crate::analyze::report::Report;

/// How to draw a flamegraph.
///
/// # Examples
///
/// ```
/// use profiler_runtime::export::FlamegraphOptions;
/// let options = FlamegraphOptions::new().icicle(true).title("request handling");
/// assert!(options.is_icicle());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlamegraphOptions {
    icicle: bool,
    title: Option<String>,
}

impl FlamegraphOptions {
    /// A flamegraph (roots at the bottom) titled after the profiled program.
    pub fn new() -> Self {
        FlamegraphOptions::default()
    }

    /// Draws an icicle graph instead: roots at the top, callees below their callers.
    #[must_use]
    pub fn icicle(mut self, icicle: bool) -> Self {
        self.icicle = icicle;
        self
    }

    /// The title above the graph (default: `<program>: flame graph`).
    #[must_use]
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Whether this draws an icicle graph.
    pub fn is_icicle(&self) -> bool {
        self.icicle
    }
}

/// Writes `report`'s call tree as an SVG flamegraph (or icicle graph) to `out`, drawn by the
/// `inferno` crate from the folded stacks ([`write_folded`](super::write_folded)): a frame's width
/// is its inclusive time in nanoseconds over all threads. Frames are never elided for being
/// narrow, so every function with recorded time appears; names are escaped as in folded stacks.
/// Memory grows with the total length of the folded lines inferno draws from (the depth of each
/// path with self time), not with every path of the tree.
/// A profile with no recorded time gives inferno's placeholder SVG saying so. Requires the
/// feature `flamegraph`.
///
/// # Errors
///
/// Any error of `out`.
pub fn write_flamegraph<W: Write + ?Sized>(
    report: &Report,
    options: &FlamegraphOptions,
    out: &mut W,
) -> io::Result<()> {
    let run = &report.run;
    let mut opt = flamegraph::Options::default();
    opt.title = options.title.clone().unwrap_or_else(|| {
        let kind = if options.icicle {
            "icicle graph"
        } else {
            "flame graph"
        };
        format!("{}: {kind}", run.process_name)
    });
    let host = run
        .host
        .as_deref()
        .map(|h| format!(" on {h}"))
        .unwrap_or_default();
    opt.subtitle = Some(format!(
        "pid {}{host}, started {}, {} threads, {} events dropped",
        run.pid,
        run.started,
        run.threads.len(),
        run.dropped_events
    ));
    "ns".clone_into(&mut opt.count_name);
    "Function:".clone_into(&mut opt.name_type);
    opt.min_width = 0.0;
    opt.deterministic = true;
    opt.direction = if options.icicle {
        Direction::Inverted
    } else {
        Direction::Straight
    };

    // inferno keeps every line it is given until the SVG is drawn (its frames borrow from them),
    // so they are collected here, in one buffer: memory in the total length of the lines with
    // self time, which is the depth times the number of leaves, never every path of the tree.
    let mut text = String::new();
    for_each_line(report, |line| {
        text.push_str(line);
        text.push('\n');
        Ok(())
    })?;
    if text.is_empty() {
        // inferno writes a well-formed SVG saying there is no data, then reports an error; an
        // empty profile is not an error here.
        let mut svg = Vec::new();
        let _ = flamegraph::from_lines(&mut opt, std::iter::empty(), &mut svg);
        return out.write_all(&svg);
    }
    flamegraph::from_lines(&mut opt, text.lines(), out)
}
