//! report.md: a short Markdown summary fit for a CI job summary.

use std::fmt::Write;

use super::table::{compact, reuse_lists};
use super::{confidence, Report, Row};
use crate::metrics::score::Metric;
use crate::verdict::Decision;

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
    for line in
        [confidence::rn_line(r), confidence::decisions_line(r), confidence::adaptive_line(r)].into_iter().flatten()
    {
        let _ = writeln!(s, "{line}\n");
    }
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
        let with_undecided = !sm.undecided.is_empty();
        if with_undecided {
            let _ = writeln!(
                s,
                "| kind | reusable layers | not reusable | undecided at {:.0}% |\n|---|---|---|---|",
                100.0 * r.settings.confidence
            );
        } else {
            s.push_str("| kind | reusable layers | not reusable |\n|---|---|---|\n");
        }
        for (k, yes, no) in reuse_lists(sm) {
            if with_undecided {
                let und = sm.undecided.get(&k).map_or_else(|| "-".into(), |v| compact(v));
                let _ = writeln!(s, "| {k} | {yes} | {no} | {und} |");
            } else {
                let _ = writeln!(s, "| {k} | {yes} | {no} |");
            }
        }
        s.push('\n');
    }
    let bad: Vec<_> = r.rows.iter().filter(|row| row.reusable == Some(false)).collect();
    swap_list(&mut s, r, &bad, "non-reusable swaps");
    let undecided: Vec<_> = r.rows.iter().filter(|row| row.decision == Some(Decision::Undecided)).collect();
    swap_list(&mut s, r, &undecided, "undecided swaps (the interval holds the tolerance)");
    s.push_str(&confidence::predictors_markdown(r));
    s.push_str(&super::budget::markdown(r));
    for w in &r.warnings {
        let _ = writeln!(s, "\n> warning: {w}");
    }
    s
}

/// A folded list of swaps with their loss and interval (nothing when `rows` is empty).
fn swap_list(s: &mut String, r: &Report, rows: &[&Row], what: &str) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "<details><summary>{} {what}</summary>\n\n| family | layer | kind | node | delta {} | {:.0}% interval |\n|---|---|---|---|---|---|",
        rows.len(),
        r.metric().label(),
        100.0 * r.settings.confidence
    );
    for row in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | `{}` | {:.4} | {} |",
            row.family,
            row.layer,
            row.kind,
            row.node,
            row.delta_dice.unwrap_or(f64::NAN),
            confidence::interval(row.delta_dice_lo, row.delta_dice_hi)
        );
    }
    s.push_str("\n</details>\n\n");
}
