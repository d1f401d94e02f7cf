//! The readable text table printed on stdout.

use std::fmt::Write;

use super::Report;
use crate::metrics::score::Metric;

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map(|x| format!("{x:.prec$}")).unwrap_or_else(|| "-".into())
}

/// `text` with control characters (a newline or tab in a node name, an escape sequence)
/// written as Rust escapes (`\n`, `\u{1b}`), so a name cannot break a row or drive the
/// terminal; other text as it is.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    escaped(text, |c| c.is_control())
}

/// [`printable`] for a message on stderr, whose own line breaks stay: every other control
/// character (an escape sequence in a node name, a carriage return) is written as an escape.
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    escaped(text, |c| c.is_control() && c != '\n')
}

fn escaped(text: &str, escape: impl Fn(char) -> bool) -> std::borrow::Cow<'_, str> {
    if text.chars().any(&escape) {
        text.chars().map(|c| if escape(c) { c.escape_default().to_string() } else { c.to_string() }).collect()
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Render the per-row table, the verdict lines and the warnings.
pub fn render(r: &Report) -> String {
    let mut s = render_rows(r);
    for w in &r.warnings {
        let _ = writeln!(s, "warning: {}", printable(w));
    }
    s
}

/// The table for a terminal whose stderr already showed the report's warnings (or was
/// silenced by `--quiet`, which then gets a count): each warning appears once.
pub fn render_after_warnings(r: &Report, quiet: bool) -> String {
    let mut s = render_rows(r);
    if quiet && !r.warnings.is_empty() {
        let _ = writeln!(s, "{} warning(s) not shown (--quiet); --json and --out keep them", r.warnings.len());
    }
    s
}

/// The per-row table and the verdict lines.
fn render_rows(r: &Report) -> String {
    let mut s = String::new();
    let audit = r.baseline.is_some();
    let _ = writeln!(
        s,
        "target: {}\nsource: {}\nmatched by {}: {} parameters",
        printable(&r.target.path),
        printable(&r.source.path),
        r.settings.match_method,
        r.rows.len()
    );
    s.push_str(&baseline_lines(r));
    // "linear" is wider than the 5 columns conv/bn tables always had.
    let fam = r.rows.iter().map(|row| row.family.len()).max().unwrap_or(0).max(5);
    let _ = write!(
        s,
        "\n{:<fam$} {:>5} {:<4} {:<34} {:>10} {:>9} {:>8}",
        "fam", "layer", "kind", "node", "rmse", "nrmse", "cosine"
    );
    if audit {
        let score = match r.metric() {
            Metric::Dice => "dice",
            Metric::Accuracy => "accuracy",
            Metric::Agreement => "agree",
        };
        let _ = write!(s, " {:>8} {:>8} {:>8} {:>17} {:>12}", score, "delta", "reusable", "interval", "decision");
    }
    s.push('\n');
    for row in &r.rows {
        let node: String = printable(&row.node).chars().take(34).collect();
        let _ = write!(
            s,
            "{:<fam$} {:>5} {:<4} {:<34} {:>10.3e} {:>9} {:>8.4}",
            row.family,
            row.layer,
            row.kind,
            node,
            row.rmse,
            opt(row.nrmse, 4),
            row.cosine
        );
        if audit {
            let mark = match row.reusable {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "-",
            };
            let _ = write!(s, " {:>8} {:>8} {:>8}", opt(row.swapped_dice, 4), opt(row.delta_dice, 4), mark);
            let iv = match (row.delta_dice_lo, row.delta_dice_hi) {
                (Some(lo), Some(hi)) => format!("[{lo:.4}, {hi:.4}]"),
                _ => "-".into(),
            };
            let _ = write!(s, " {iv:>17} {:>12}", row.decision.map_or("-", |d| d.name()));
        }
        s.push('\n');
    }
    for u in &r.unmatched {
        let _ = writeln!(s, "unmatched {}: {} {} '{}': {}", u.side, u.layer, u.kind, u.initializer, u.reason);
    }
    if !r.summary.bn.is_empty() {
        let _ = writeln!(s, "\n{:<5} {:<34} {:>10} {:>10} {:>10} {:>10}", "bn", "node", "MRM", "MRV", "MRW", "MRB");
        for b in &r.summary.bn {
            let node: String = printable(&b.node).chars().take(34).collect();
            let _ = writeln!(
                s,
                "{:<5} {:<34} {:>10.4} {:>10.4} {:>10} {:>10.4}",
                b.layer,
                node,
                b.mrm,
                b.mrv,
                opt(b.mrw, 4),
                b.mrb
            );
        }
    }
    s.push_str(&verdict_lines(r));
    s
}

/// The verdict as a headline: `Some(true)` RN, `Some(false)` not, `None` with the reason
/// there is none (a data-free report, or a verdict withheld).
pub fn headline(r: &Report) -> (Option<bool>, &'static str) {
    match (r.summary.rn, &r.baseline) {
        (Some(true), _) => (Some(true), "Reusable network (RN)"),
        (Some(false), _) => (Some(false), "Not a reusable network"),
        (None, None) => (None, "Data-free comparison (no swap audit)"),
        (None, Some(_)) if r.summary.conv_w_reusable_share.is_some() => {
            (None, "No RN verdict: not every conv layer could be audited (see the warnings)")
        }
        (None, Some(_)) => (None, "No RN verdict: conv W was not audited (--kinds)"),
    }
}

/// The verdict in a few lines (also printed by `demo`).
pub fn verdict_lines(r: &Report) -> String {
    let mut s = baseline_lines(r);
    let sm = &r.summary;
    if sm.rn.is_none() && r.baseline.is_some() && sm.conv_w_reusable_share.is_some() {
        let _ = writeln!(s, "\nverdict: none (see the warnings: not every conv layer could be audited)");
    }
    if let Some(rn) = sm.rn {
        let _ = writeln!(
            s,
            "\nverdict: {} (conv W reusable in {:.0}% of layers; RN threshold {:.0}%, tolerance {} {})",
            if rn { "REUSABLE NETWORK (RN)" } else { "NOT a reusable network" },
            100.0 * sm.conv_w_reusable_share.unwrap_or(0.0),
            100.0 * r.settings.rn_threshold,
            r.settings.tolerance,
            r.metric().score_name()
        );
    }
    for line in
        [super::confidence::rn_line(r), super::confidence::decisions_line(r), super::confidence::adaptive_line(r)]
            .into_iter()
            .flatten()
    {
        let _ = writeln!(s, "{line}");
    }
    if let (Some(g), Some(sc)) = (sm.reuse_share_groups, sm.reuse_share_scalars) {
        let _ = writeln!(s, "reuse share: {:.1}% of (layer, kind) groups, {:.1}% of scalars", 100.0 * g, 100.0 * sc);
    } else if r.baseline.is_some() && !r.not_audited.is_empty() {
        let _ = writeln!(
            s,
            "reuse share: none ({} (layer, kind) group(s) not audited; see the warnings)",
            r.not_audited.len()
        );
    }
    let lists = reuse_lists(sm);
    let width = lists.iter().map(|(k, _, _)| k.len()).max().unwrap_or(0).max(2);
    for (kind, yes, no) in lists {
        let _ = write!(s, "  {kind:<width$} reusable: {yes:<40} not reusable: {no}");
        match sm.undecided.get(&kind).filter(|v| !v.is_empty()) {
            Some(v) => {
                let _ = writeln!(s, "  (undecided: {})", compact(v));
            }
            None => s.push('\n'),
        }
    }
    s
}

/// The baseline score and how it was scored (input scaling, with what each scaling tried
/// scored on the probe batch; the output rule). Empty for data-free reports.
pub fn baseline_lines(r: &Report) -> String {
    let mut s = String::new();
    let Some(b) = &r.baseline else {
        return s;
    };
    let per: Vec<String> = b.per_class.iter().map(|d| format!("{d:.4}")).collect();
    let _ = match r.metric() {
        Metric::Dice => writeln!(
            s,
            "baseline Dice: mean {:.4}, foreground {:.4}, per class [{}]",
            b.mean,
            b.mean_fg,
            per.join(", ")
        ),
        Metric::Accuracy => {
            writeln!(s, "baseline accuracy (top-1): {:.4}; Dice (F1) per class [{}]", b.mean, per.join(", "))
        }
        Metric::Agreement => writeln!(
            s,
            "metric: agreement with the unswapped target's predictions (label-free; a swap's delta is 1 - agreement)"
        ),
    };
    if let Some(d) = &r.dataset {
        let tried: Vec<String> = d
            .normalize_scores
            .iter()
            .map(|t| format!("{:?} {:.3}", t.normalize, t.probe_dice).to_lowercase())
            .collect();
        let tried = match tried.len() > 1 {
            true => format!(" (probe {}: {})", r.metric().label(), tried.join(", ")),
            false => String::new(),
        };
        let layout = if d.layout == "nchw" { String::new() } else { format!("; layout: {}", d.layout) };
        let _ = writeln!(s, "input scaling: {}{tried}; prediction: {}{layout}", d.normalize, d.prediction);
    }
    s
}

/// Per audited group (`W`, ..., `linear.W`, `norm.RB`): (group, reusable layers,
/// non-reusable layers) as compact lists.
pub fn reuse_lists(sm: &super::Summary) -> Vec<(String, String, String)> {
    sm.reusable
        .iter()
        .map(|(k, v)| (k.clone(), compact(v), sm.not_reusable.get(k).map(|n| compact(n)).unwrap_or_else(|| "-".into())))
        .collect()
}

/// `1-3,5,7-9` style list.
pub fn compact(v: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        parts.push(if j > i { format!("{}-{}", v[i], v[j]) } else { v[i].to_string() });
        i = j + 1;
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(",")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn compact_ranges() {
        assert_eq!(super::compact(&[1, 2, 3, 5, 7, 8]), "1-3,5,7-8");
        assert_eq!(super::compact(&[]), "-");
    }

    #[test]
    fn a_newline_or_escape_in_a_name_cannot_break_the_table() {
        assert_eq!(super::printable("conv\n1\t\u{1b}[31m"), "conv\\n1\\t\\u{1b}[31m");
        assert!(matches!(super::printable("enc.0 \u{e9}"), std::borrow::Cow::Borrowed("enc.0 \u{e9}")));
        assert_eq!(super::terminal_safe("a\nb\u{1b}[2J\r"), "a\nb\\u{1b}[2J\\r");
    }
}
