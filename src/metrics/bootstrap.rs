//! Paired bootstrap over validation images for the loss of a swap (mean Dice by default;
//! any score of the pooled counts, see [`Score`]).
//!
//! Dice is pooled over the set (sums of per-image counts), so an image cannot be scored on
//! its own; what is resampled is the image. Each resample draws `m` image indices with
//! replacement, sums the per-image counts (|P∩G|, |P|, |G| per class) of the baseline and
//! of every swap over the same draw (paired), recomputes the pooled Dice per class, and
//! takes `delta = mean Dice(baseline) - mean Dice(swap)`. The interval is the percentile
//! interval of the resampled deltas (numpy's default "linear" quantile).
//!
//! Cost: the draws are a multiplicity matrix `W` (resamples x images), the counts a matrix
//! `C` (images x 3·classes per model), so every sum of a block of resamples is one matrix
//! product `W·C`. Every entry is an integer below 2^53, so the f64 product is exact whatever
//! the summation order: the interval depends only on the counts and the seed.

use ndarray::{s, Array2, Array3, ArrayView2, ArrayView3, Axis};

use super::dice::DiceCounts;

/// The fixed seed of every resampling (an audit's report is the same bytes on every rerun).
pub const SEED: u64 = 0x7265_7573_655f_6175;

/// Per-image confusion counts `[image, class, 3]`: |P∩G|, |P|, |G|.
pub type ImageCounts = Array3<u32>;

/// Per-image counts of predicted class maps `[n, h, w]` against the truth.
pub fn image_counts(pred: ArrayView3<u8>, truth: ArrayView3<u8>, classes: usize) -> ImageCounts {
    let n = pred.dim().0;
    let mut out = Array3::zeros((n, classes, 3));
    for (i, (p, t)) in pred.outer_iter().zip(truth.outer_iter()).enumerate() {
        let mut c = DiceCounts::new(classes);
        c.add(p, t);
        for k in 0..classes {
            // One image's pixel counts fit a u32 (an image of more than 4 billion pixels
            // would not fit in memory as class maps).
            out[[i, k, 0]] = u32::try_from(c.intersection[k]).unwrap_or(u32::MAX);
            out[[i, k, 1]] = u32::try_from(c.predicted[k]).unwrap_or(u32::MAX);
            out[[i, k, 2]] = u32::try_from(c.truth[k]).unwrap_or(u32::MAX);
        }
    }
    out
}

/// Images with a pixel that predicts no class (its output not finite there: see
/// [`super::dice::NO_PREDICTION`]): each pixel of an image is one truth count (labels are in
/// range) and, when predicted, one prediction count, so such an image has fewer.
pub fn images_without_prediction(counts: ArrayView3<u32>) -> usize {
    let sum = |img: &ArrayView2<u32>, col: usize| img.column(col).iter().map(|&v| u64::from(v)).sum::<u64>();
    counts.outer_iter().filter(|img| sum(img, 1) < sum(img, 2)).count()
}

/// The counts summed over images.
pub fn totals(counts: ArrayView3<u32>) -> DiceCounts {
    let classes = counts.dim().1;
    let mut c = DiceCounts::new(classes);
    for img in counts.outer_iter() {
        for k in 0..classes {
            c.intersection[k] += u64::from(img[[k, 0]]);
            c.predicted[k] += u64::from(img[[k, 1]]);
            c.truth[k] += u64::from(img[[k, 2]]);
        }
    }
    c
}

/// SplitMix64 (Steele, Lea, Flood 2014): a small generator whose stream is fixed by its
/// definition, so reports do not change when a dependency changes its algorithm.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`), without bias (Lemire's multiply-and-reject).
    pub fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            if (m as u64) >= n.wrapping_neg() % n {
                return (m >> 64) as usize;
            }
        }
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The `q` quantile of sorted values, linear between order statistics (numpy's default).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let (lo, frac) = (h.floor() as usize, h - h.floor());
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + frac * (sorted[hi] - sorted[lo])
}

/// The two-sided percentile interval at `level` of values (sorted here); NaNs left out.
pub fn percentile_interval(mut values: Vec<f64>, level: f64) -> (f64, f64) {
    values.retain(|v| !v.is_nan());
    values.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    (quantile(&values, tail), quantile(&values, 1.0 - tail))
}

/// Resamples drawn per matrix product (bounds memory to `BLOCK x images` f64).
const BLOCK: usize = 250;

/// The seed of the draws over the first `m` images: every model scored on the same images
/// shares the same draws (paired), whichever models are asked about.
fn seed_for(m: usize) -> u64 {
    SEED ^ (m as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Multiplicities of `rows` resamples of `m` images: `[rows, m]`.
fn draws(rng: &mut SplitMix64, rows: usize, m: usize) -> Array2<f64> {
    let mut w = Array2::zeros((rows, m));
    for mut row in w.outer_iter_mut() {
        for _ in 0..m {
            row[rng.below(m)] += 1.0;
        }
    }
    w
}

/// A score of pooled counts laid out per class as `[i_0, p_0, g_0, i_1, p_1, g_1, ...]`
/// (|P∩G|, |P|, |G| summed over the drawn images); the loss is baseline's minus swap's.
pub type Score = fn(&[f64]) -> f64;

/// Mean over classes of the pooled Dice `2|P∩G| / (|P|+|G|)`, 1 for a class empty in both.
pub fn mean_dice(sums: &[f64]) -> f64 {
    let classes = sums.len() / 3;
    let total: f64 =
        sums.chunks_exact(3).map(|c| if c[1] + c[2] == 0.0 { 1.0 } else { 2.0 * c[0] / (c[1] + c[2]) }).sum();
    total / classes.max(1) as f64
}

/// `Σ_k |P_k∩G_k| / Σ_k |G_k|`: the share of items predicted as their truth (accuracy, or
/// agreement label-free); 1 when there is no item.
pub fn share_correct(sums: &[f64]) -> f64 {
    let (hit, truth) = sums.chunks_exact(3).fold((0.0, 0.0), |(h, t), c| (h + c[0], t + c[2]));
    if truth == 0.0 {
        1.0
    } else {
        hit / truth
    }
}

/// Columns (|P∩G|, |P|, |G|) per class of one model's counts, as f64: `[m, 3·classes]`.
fn columns(counts: ArrayView3<u32>) -> Array2<f64> {
    let (m, classes, _) = counts.dim();
    let flat: Vec<f64> = counts.iter().map(|&v| f64::from(v)).collect();
    Array2::from_shape_vec((m, 3 * classes), flat).unwrap_or_else(|_| Array2::zeros((m, 3 * classes)))
}

/// Percentile intervals at `level` of `delta = mean Dice(baseline) - mean Dice(swap)` for
/// every swap, by `resamples` paired resamples of the images. `baseline` and every swap
/// hold the counts of the same `m` images in the same order (`[m, classes, 3]`).
pub fn delta_intervals(
    baseline: ArrayView3<u32>,
    swaps: &[ArrayView3<u32>],
    level: f64,
    resamples: usize,
) -> Vec<(f64, f64)> {
    delta_intervals_by(baseline, swaps, level, resamples, mean_dice)
}

/// [`delta_intervals`] of the loss in another score of the counts.
pub fn delta_intervals_by(
    baseline: ArrayView3<u32>,
    swaps: &[ArrayView3<u32>],
    level: f64,
    resamples: usize,
    score: Score,
) -> Vec<(f64, f64)> {
    let (m, classes, _) = baseline.dim();
    if swaps.is_empty() {
        return vec![];
    }
    if m == 0 || resamples == 0 {
        return vec![(f64::NAN, f64::NAN); swaps.len()];
    }
    let width = 3 * classes;
    let mut c = Array2::zeros((m, width * (1 + swaps.len())));
    c.slice_mut(s![.., ..width]).assign(&columns(baseline));
    for (j, sw) in swaps.iter().enumerate() {
        debug_assert_eq!(sw.dim(), baseline.dim(), "swap {j}: counts of other images");
        c.slice_mut(s![.., width * (j + 1)..width * (j + 2)]).assign(&columns(sw.view()));
    }
    let mut deltas: Vec<Vec<f64>> = vec![Vec::with_capacity(resamples); swaps.len()];
    let mut rng = SplitMix64::new(seed_for(m));
    let mut done = 0;
    while done < resamples {
        let rows = BLOCK.min(resamples - done);
        let sums = draws(&mut rng, rows, m).dot(&c);
        collect_deltas(sums.view(), width, score, &mut deltas);
        done += rows;
    }
    deltas.into_iter().map(|d| percentile_interval(d, level)).collect()
}

/// Per resample (row of `sums`), the delta of every swap against the baseline columns.
fn collect_deltas(sums: ArrayView2<f64>, width: usize, score: Score, deltas: &mut [Vec<f64>]) {
    for row in sums.axis_iter(Axis(0)) {
        let owned;
        let row: &[f64] = match row.as_slice() {
            Some(r) => r,
            None => {
                owned = row.to_vec();
                &owned
            }
        };
        let base = score(&row[..width]);
        for (j, d) in deltas.iter_mut().enumerate() {
            d.push(base - score(&row[width * (j + 1)..width * (j + 2)]));
        }
    }
}

#[cfg(test)]
mod tests;
