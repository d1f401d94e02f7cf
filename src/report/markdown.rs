//! report.md: a short Markdown summary fit for a CI job summary.

use std::fmt::Write;

use super::table::reuse_lists;
use super::Report;
use crate::metrics::score::Metric;

/// Render the Markdown summary.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## reuse-audit: `{}` ← `{}`\n", r.target.path, r.source.path);
    let sm = &r.summary;
    match super::table::headline(r) {
        (Some(true), _) => s.push_str("**Verdict: reusable network (RN)**"),
        (Some(false), _) => s.push_str("**Verdict: not a reusable network**"),
        (None, why) => {
            let _ = write!(s, "**{why}**");
        }
    }
    if let Some(share) = sm.conv_w_reusable_share {
        let _ = write!(
            s,
            ": conv W reusable in {:.0}% of layers (threshold {:.0}%, tolerance {})",
            100.0 * share,
            100.0 * r.settings.rn_threshold,
            r.settings.tolerance
        );
    }
    s.push_str("\n\n");
    if let Some(b) = &r.baseline {
        let _ = match r.metric() {
            Metric::Dice => writeln!(s, "Baseline Dice: mean {:.4}, foreground {:.4}\n", b.mean, b.mean_fg),
            Metric::Accuracy => writeln!(s, "Baseline accuracy (top-1): {:.4}\n", b.mean),
            Metric::Agreement => writeln!(
                s,
                "Metric: agreement (label-free: the share of predictions each swap leaves as the unswapped target makes them; delta = 1 - agreement)\n"
            ),
        };
    }
    if let Some(q) = r.target.quantized_line() {
        let _ = writeln!(s, "Quantized target: {q}\n");
    }
    if !sm.reusable.is_empty() {
        s.push_str("| kind | reusable layers | not reusable |\n|---|---|---|\n");
        for (k, yes, no) in reuse_lists(sm) {
            let _ = writeln!(s, "| {k} | {yes} | {no} |");
        }
        s.push('\n');
    }
    let bad: Vec<_> = r.rows.iter().filter(|row| row.reusable == Some(false)).collect();
    if !bad.is_empty() {
        let _ = writeln!(s, "<details><summary>{} non-reusable swaps</summary>\n\n| family | layer | kind | node | delta {} |\n|---|---|---|---|---|", bad.len(), r.metric().label());
        for row in bad {
            let _ = writeln!(
                s,
                "| {} | {} | {} | `{}` | {:.4} |",
                row.family,
                row.layer,
                row.kind,
                row.node,
                row.delta_dice.unwrap_or(f64::NAN)
            );
        }
        s.push_str("\n</details>\n");
    }
    for w in &r.warnings {
        let _ = writeln!(s, "\n> warning: {w}");
    }
    s
}
