//! An audit's outcome into the report: per row the Dice, the interval and the images
//! used; then the verdicts, the predictor table and, when adaptive, what it saved.

use crate::audit::AuditOutcome;
use crate::model::Kind;
use crate::pair::Pairing;
use crate::pipeline::Options;
use crate::report::{AdaptiveInfo, Report};

/// One warning per swap whose output was NaN or infinite on some image (said on stderr and
/// kept in the report: its row is not reusable, and its Dice counts those pixels as wrong).
pub fn non_finite_warnings(report: &Report) -> Vec<String> {
    let images = report.dataset.as_ref().map(|d| d.images);
    report
        .rows
        .iter()
        .filter_map(|row| {
            let n = row.non_finite_images.filter(|&n| n > 0)?;
            let of = row.images_used.or(images).map(|m| format!(" of {m}")).unwrap_or_default();
            Some(format!(
                "{} {} {} ({} <- {}): the swapped model's output is NaN or infinite on {n}{of} image(s); those pixels predict no class (scored as wrong) and the swap is not reusable (a source value too large for float32 arithmetic?)",
                row.family, row.layer, row.kind, row.target_initializer, row.source_initializer
            ))
        })
        .collect()
}

/// Fill the rows (in pairing order, kinds asked for) and decide.
pub fn fill(report: &mut Report, pairing: &Pairing, o: &Options, outcome: &AuditOutcome, adaptive: bool) {
    let kinds: &[Kind] = &o.kinds;
    let rows_by_pair: Vec<usize> =
        (0..pairing.pairs.len()).filter(|&i| kinds.contains(&pairing.pairs[i].kind())).collect();
    for (row, &i) in report.rows.iter_mut().zip(&rows_by_pair) {
        if let Some(d) = &outcome.swaps[i] {
            row.baseline_dice = Some(d.baseline.mean);
            row.swapped_dice = Some(d.swapped.mean);
            row.delta_dice = Some(d.baseline.mean - d.swapped.mean);
            row.dice_fg = Some(d.swapped.mean_fg);
            row.dice_class = d.swapped.per_class.clone();
            row.delta_dice_lo = Some(d.interval.0);
            row.delta_dice_hi = Some(d.interval.1);
            row.images_used = Some(d.images);
            row.non_finite_images = Some(d.non_finite_images);
        }
    }
    let bn = std::mem::take(&mut report.summary.bn);
    report.summary = crate::verdict::decide(&mut report.rows, o.tolerance, o.rn_threshold);
    report.summary.bn = bn;
    report.predictors = crate::predictors::predictors(&report.rows, o.confidence, o.bootstrap);
    report.settings.adaptive = adaptive;
    report.adaptive = adaptive.then(|| AdaptiveInfo {
        rounds: outcome.rounds.clone(),
        rule: "bonferroni".into(),
        level_per_round: outcome.level,
        image_forwards: outcome.image_forwards,
        exact_image_forwards: outcome.exact_image_forwards,
    });
}
