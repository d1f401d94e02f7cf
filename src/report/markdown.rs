//! report.md: a short Markdown summary fit for a CI job summary.

use std::fmt::Write;

use super::table::{compact, reuse_lists};
use super::{confidence, Report, Row};
use crate::metrics::score::Metric;
use crate::verdict::Decision;

/// Render the Markdown summary.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## reuse-audit: {} ← {}\n", code(&r.target.path, false), code(&r.source.path, false));
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
        let _ = writeln!(s, "\n> warning: {}", quoted(w));
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
            "| {} | {} | {} | {} | {:.4} | {} |",
            row.family,
            row.layer,
            row.kind,
            code(&row.node, true),
            row.delta_dice.unwrap_or(f64::NAN),
            confidence::interval(row.delta_dice_lo, row.delta_dice_hi)
        );
    }
    s.push_str("\n</details>\n\n");
}

/// `text` as a Markdown code span that shows it verbatim: a fence of one backtick more than
/// its longest run of backticks (padded with spaces when it starts or ends with one), control
/// characters (a newline would end a table row or the line) written as escapes (`\n`), and,
/// `in_table`, `|` escaped as `\|` (GFM splits table cells on it even inside code spans).
/// Node names and paths come from the model's authors: any text may be in them.
fn code(text: &str, in_table: bool) -> String {
    let mut body = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '|' if in_table => body.push_str("\\|"),
            c if c.is_control() => body.extend(c.escape_default()),
            c => body.push(c),
        }
    }
    let (mut run, mut longest) = (0, 0);
    for ch in body.chars() {
        run = if ch == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    if body.is_empty() {
        return body;
    }
    // CommonMark strips one space from each end when both ends have one: pad to keep them.
    let spaced = body.starts_with(' ') && body.ends_with(' ');
    let pad = if body.starts_with('`') || body.ends_with('`') || spaced { " " } else { "" };
    format!("{fence}{pad}{body}{pad}{fence}")
}

/// A warning as the text of a block quote, shown as typed: the characters Markdown reads
/// as inline markup (code, emphasis, links, raw HTML, entities) backslash-escaped, each line
/// of a multi-line warning kept inside the quote. Warnings name files and nodes.
fn quoted(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for ch in text.replace("\r\n", "\n").chars() {
        match ch {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '&' | '~' => {
                s.push('\\');
                s.push(ch);
            }
            '\n' | '\r' => s.push_str("\n> "),
            c => s.push(c),
        }
    }
    s
}
