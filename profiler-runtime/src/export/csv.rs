//! CSV: one row per function under a header row, quoted as RFC 4180 requires (by the `csv`
//! crate), so names such as `HashMap<K, V>::get` or `say "hi"` open whole in a spreadsheet.
//!
//! Columns: `name, kind, module_path, file, line, calls, total_ns, self_ns, min_ns, max_ns,
//! mean_ns, p50_ns, p90_ns, p99_ns, total_share, self_share, polls, wall_ns, cancelled`; the last
//! three are empty except for async functions. Rows are sorted by self time, largest first.

use std::io::{self, Write};

use crate::analyze::report::Report;

/// The header row.
pub const CSV_COLUMNS: [&str; 19] = [
    "name",
    "kind",
    "module_path",
    "file",
    "line",
    "calls",
    "total_ns",
    "self_ns",
    "min_ns",
    "max_ns",
    "mean_ns",
    "p50_ns",
    "p90_ns",
    "p99_ns",
    "total_share",
    "self_share",
    "polls",
    "wall_ns",
    "cancelled",
];

/// Writes the per-function statistics of `report` as CSV to `out`: a header row
/// ([`CSV_COLUMNS`]), then one row per function, largest self time first. Quoting follows RFC
/// 4180, so names such as `HashMap<K, V>::get` open whole in a spreadsheet. `polls`, `wall_ns`
/// and `cancelled` are empty except for async functions; times are integer nanoseconds, shares
/// fractions with six decimals.
///
/// # Errors
///
/// Any error of `out`.
pub fn write_csv<W: Write + ?Sized>(report: &Report, out: &mut W) -> io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(CSV_COLUMNS)?;
    let mut order: Vec<&_> = report.functions.iter().collect();
    order.sort_by(|a, b| b.self_ns.cmp(&a.self_ns).then_with(|| a.name.cmp(&b.name)));
    for f in order {
        let (polls, wall, cancelled) = f.async_stats.as_ref().map_or_else(
            || (String::new(), String::new(), String::new()),
            |a| {
                (
                    a.polls.to_string(),
                    a.wall_ns.to_string(),
                    a.cancelled.to_string(),
                )
            },
        );
        writer.write_record([
            f.name.as_str(),
            f.kind.as_str(),
            &f.module_path,
            &f.file,
            &f.line.to_string(),
            &f.calls.to_string(),
            &f.total_ns.to_string(),
            &f.self_ns.to_string(),
            &f.min_ns.to_string(),
            &f.max_ns.to_string(),
            &format!("{:.1}", f.mean_ns),
            &f.p50_ns.to_string(),
            &f.p90_ns.to_string(),
            &f.p99_ns.to_string(),
            &format!("{:.6}", f.total_share),
            &format!("{:.6}", f.self_share),
            &polls,
            &wall,
            &cancelled,
        ])?;
    }
    writer.flush()
}
