//! Which data-free metric predicts the swap: per kind, Spearman's rank correlation over the
//! audited layers between each data-free metric (rmse, nrmse, cosine, and the spectral
//! metrics where present) and the measured Dice loss, with a percentile bootstrap interval
//! over layers. The evidence a user needs before gating CI on a metric alone.
//!
//! Distances (rmse, nrmse, spectral_rel) should correlate positively with the loss,
//! similarities (cosine, subspace_overlap) negatively. A metric joins the table when a row
//! of that kind has it, so a metric added to [`METRICS`] (a per-layer budget, say) is
//! reported without further change.

use serde::Serialize;

use crate::metrics::bootstrap::{percentile_interval, SplitMix64, SEED};
use crate::report::Row;

/// A data-free metric of a row: its name in reports and how to read it.
pub type Metric = (&'static str, fn(&Row) -> Option<f64>);

/// The metrics tried, in report order.
pub const METRICS: &[Metric] = &[
    ("rmse", |r| Some(r.rmse)),
    ("nrmse", |r| r.nrmse),
    ("cosine", |r| Some(r.cosine)),
    ("spectral_rel", |r| r.spectral_rel),
    ("subspace_overlap", |r| r.subspace_overlap),
    // Below 1 within the layer's noise budget (`--budget`; absent without it).
    ("rmse/rmse_budget", |r| r.budget.as_ref()?.ratio(r.rmse)),
];

/// Fewest layers with a rank correlation.
pub const MIN_LAYERS: usize = 3;

/// How one metric ranks one kind's layers by measured loss.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Predictor {
    /// Parameter kind (W, B, RM, ...).
    pub kind: String,
    /// The data-free metric (a report column).
    pub metric: String,
    /// Audited layers of this kind with both the metric and a measured loss.
    pub layers: usize,
    /// Spearman's rank correlation with delta_dice (ties take average ranks); null with
    /// the reason in `note`.
    pub rho: Option<f64>,
    /// Lower end of the bootstrap interval (layers resampled) at the report's confidence.
    pub rho_lo: Option<f64>,
    /// Upper end of that interval.
    pub rho_hi: Option<f64>,
    /// Why rho is null (too few layers, a constant column), else null.
    pub note: Option<String>,
}

/// Ranks 1..n of values, tied values sharing their average rank.
pub fn ranks(values: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut out = vec![0.0; values.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && values[idx[j + 1]] == values[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            out[k] = avg;
        }
        i = j + 1;
    }
    out
}

/// Pearson correlation; NaN when either side is constant.
fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    if sxx <= 0.0 || syy <= 0.0 {
        return f64::NAN;
    }
    (sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0)
}

/// Spearman's rank correlation (Pearson on average ranks); NaN when a side is constant.
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    pearson(&ranks(x), &ranks(y))
}

/// One metric against the loss over `(metric, loss)` points, with the interval.
fn predictor(kind: &str, metric: &str, points: &[(f64, f64)], level: f64, resamples: usize) -> Predictor {
    let mut p = Predictor {
        kind: kind.into(),
        metric: metric.into(),
        layers: points.len(),
        rho: None,
        rho_lo: None,
        rho_hi: None,
        note: None,
    };
    let n = points.len();
    if n < MIN_LAYERS {
        p.note = Some(format!("{n} layer(s): at least {MIN_LAYERS} are needed"));
        return p;
    }
    let (x, y): (Vec<f64>, Vec<f64>) = points.iter().copied().unzip();
    let constant = |v: &[f64]| v.iter().all(|a| *a == v[0]);
    if constant(&x) {
        p.note = Some(format!("{metric} is the same for every layer"));
        return p;
    }
    if constant(&y) {
        p.note = Some("the measured loss is the same for every layer".into());
        return p;
    }
    p.rho = Some(spearman(&x, &y));
    let mut rng = SplitMix64::new(SEED ^ 0x7370_6561_726d_616e);
    let mut rhos = Vec::with_capacity(resamples);
    let (mut bx, mut by) = (vec![0.0; n], vec![0.0; n]);
    for _ in 0..resamples {
        for k in 0..n {
            let i = rng.below(n);
            (bx[k], by[k]) = (x[i], y[i]);
        }
        // A resample of one repeated layer has no ranks to compare: left out.
        rhos.push(spearman(&bx, &by));
    }
    let (lo, hi) = percentile_interval(rhos, level);
    (p.rho_lo, p.rho_hi) = (Some(lo).filter(|v| v.is_finite()), Some(hi).filter(|v| v.is_finite()));
    p
}

/// One predictor to compute: kind, metric, its `(metric, loss)` points.
type Job<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

/// For every kind with audited rows (in order of first appearance) and every metric some
/// row of that kind has: Spearman's rho with `delta_dice` and its interval at `level`.
pub fn predictors(rows: &[Row], level: f64, resamples: usize) -> Vec<Predictor> {
    let mut kinds: Vec<&str> = Vec::new();
    for r in rows.iter().filter(|r| r.delta_dice.is_some()) {
        if !kinds.contains(&r.kind.as_str()) {
            kinds.push(&r.kind);
        }
    }
    let mut jobs: Vec<Job> = Vec::new();
    for kind in kinds {
        let of_kind: Vec<&Row> = rows.iter().filter(|r| r.kind == kind && r.delta_dice.is_some()).collect();
        for (name, get) in METRICS {
            if of_kind.iter().all(|r| get(r).is_none()) {
                continue;
            }
            let points: Vec<(f64, f64)> = of_kind
                .iter()
                .filter_map(|r| Some((get(r)?, r.delta_dice?)))
                .filter(|(a, b)| a.is_finite() && b.is_finite())
                .collect();
            jobs.push((kind, name, points));
        }
    }
    // Each predictor's resamples are seeded on their own: side by side on every core, the
    // numbers are those of one thread.
    let one = |(kind, name, points): &Job| predictor(kind, name, points, level, resamples);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    crate::audit::incremental::schedule::parallel_map(cores, &jobs, |_, job| Ok(one(job)))
        .unwrap_or_else(|_| jobs.iter().map(one).collect())
}

#[cfg(test)]
mod tests;
