//! The lines every readable format shares about how sure the verdicts are: the RN decision
//! at the stated confidence with the range of the W-reusable share, the count of decisions,
//! what an adaptive audit saved, and the predictor table.

use std::fmt::Write;

use super::Report;
use crate::verdict::Decision;

/// The RN verdict at the report's confidence, e.g. `at 95% confidence: UNDECIDED (conv W
/// reusable in 33-56% of layers counting 2 undecided swap(s) as not / as reusable; the RN
/// threshold 50% lies inside)`. None without a decision.
pub fn rn_line(r: &Report) -> Option<String> {
    let sm = &r.summary;
    let (d, lo, hi) = (sm.rn_decision?, sm.conv_w_reusable_share_lo?, sm.conv_w_reusable_share_hi?);
    let undecided = sm.undecided.get("W").map_or(0, Vec::len);
    let conf = 100.0 * r.settings.confidence;
    let range = if undecided == 0 {
        format!("conv W reusable in {:.0}% of layers, no W swap undecided", 100.0 * lo)
    } else {
        format!(
            "conv W reusable in {:.0}-{:.0}% of layers, counting the {undecided} undecided W swap(s) as not or as reusable",
            100.0 * lo,
            100.0 * hi
        )
    };
    let word = match d {
        Decision::Reusable => "REUSABLE NETWORK (RN)",
        Decision::NotReusable => "NOT a reusable network",
        Decision::Undecided => "UNDECIDED",
    };
    let tail = if d == Decision::Undecided {
        format!("; the RN threshold {:.0}% lies inside", 100.0 * r.settings.rn_threshold)
    } else {
        String::new()
    };
    Some(format!("at {conf:.0}% confidence: {word} ({range}{tail})"))
}

/// `decisions at 95%: 80 reusable, 11 not reusable, 1 undecided (paired bootstrap over
/// 48 images, 2000 resamples)`; None without decisions.
pub fn decisions_line(r: &Report) -> Option<String> {
    let count = |d: Decision| r.rows.iter().filter(|row| row.decision == Some(d)).count();
    if r.rows.iter().all(|row| row.decision.is_none()) {
        return None;
    }
    let images = r.dataset.as_ref().map_or(0, |d| d.images);
    Some(format!(
        "decisions at {:.0}%: {} reusable, {} not reusable, {} undecided (paired bootstrap over {images} images, {} resamples)",
        100.0 * r.settings.confidence,
        count(Decision::Reusable),
        count(Decision::NotReusable),
        count(Decision::Undecided),
        r.settings.bootstrap
    ))
}

/// What an adaptive audit saved; None for an exact one.
pub fn adaptive_line(r: &Report) -> Option<String> {
    let a = r.adaptive.as_ref()?;
    let rounds: Vec<String> = a.rounds.iter().map(|n| n.to_string()).collect();
    Some(format!(
        "adaptive: {} of {} image forwards ({:.1}x fewer); rounds ending at images {}; each round's interval at {:.2}% (Bonferroni over {} rounds)",
        a.image_forwards,
        a.exact_image_forwards,
        a.exact_image_forwards as f64 / a.image_forwards.max(1) as f64,
        rounds.join(", "),
        100.0 * a.level_per_round,
        a.rounds.len()
    ))
}

/// An interval as text, e.g. `0.0123 to 0.0456`.
pub fn interval(lo: Option<f64>, hi: Option<f64>) -> String {
    match (lo, hi) {
        (Some(lo), Some(hi)) => format!("{lo:.4} to {hi:.4}"),
        _ => String::new(),
    }
}

/// A correlation (or `-` when null).
fn rho(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:+.2}"))
}

/// The predictor table as rows of cells: kind, metric, layers, rho, interval (or note).
pub fn predictor_cells(r: &Report) -> Vec<[String; 5]> {
    r.predictors
        .iter()
        .map(|p| {
            let iv = match (&p.note, p.rho_lo, p.rho_hi) {
                (Some(note), ..) => note.clone(),
                (None, Some(lo), Some(hi)) => format!("{} to {}", rho(Some(lo)), rho(Some(hi))),
                _ => "-".into(),
            };
            [p.kind.clone(), p.metric.clone(), p.layers.to_string(), rho(p.rho), iv]
        })
        .collect()
}

/// The predictor table in Markdown (empty without predictors).
pub fn predictors_markdown(r: &Report) -> String {
    let mut s = String::new();
    if r.predictors.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "### Which data-free metric predicts the loss\n\nSpearman's rank correlation over the audited layers of each kind between the metric and the measured {} loss, with a {:.0}% bootstrap interval (layers resampled). Distances (rmse, nrmse, spectral_rel) should correlate positively, similarities (cosine, subspace_overlap) negatively; an interval across 0 means the metric does not rank these layers.\n\n| kind | metric | layers | Spearman rho | {:.0}% interval |\n|---|---|---|---|---|",
        r.metric().label(),
        100.0 * r.settings.confidence,
        100.0 * r.settings.confidence
    );
    for [k, m, n, rho, iv] in predictor_cells(r) {
        let _ = writeln!(s, "| {k} | {m} | {n} | {rho} | {iv} |");
    }
    s.push('\n');
    s
}
