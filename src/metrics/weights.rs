//! Data-free comparisons of matched parameters: RMSE, nRMSE, cosine similarity, and the
//! BN shift/scale statistics MRM, MRV, MRW, MRB of METHOD.md. All in f64.

use ndarray::{ArrayView1, ArrayViewD};
use serde::Serialize;

/// Neumaier-compensated sum: accurate for long sums of mixed magnitudes.
fn sum(values: impl Iterator<Item = f64>) -> f64 {
    let (mut s, mut c) = (0.0f64, 0.0f64);
    for v in values {
        let t = s + v;
        if s.abs() >= v.abs() {
            c += (s - t) + v;
        } else {
            c += (v - t) + s;
        }
        s = t;
    }
    s + c
}

/// Comparison of one target tensor with its source counterpart.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TensorComparison {
    /// sqrt(mean((t - s)^2)).
    pub rmse: f64,
    /// rmse / std(t) (population std); `None` when std(t) = 0 and rmse > 0, 0 when both are 0.
    pub nrmse: Option<f64>,
    /// t.s / (|t| |s|); 1 when both are all-zero, 0 when exactly one is.
    pub cosine: f64,
    /// Number of scalars.
    pub numel: usize,
}

/// Compare two tensors of the same number of elements, both read in logical (row-major)
/// order. Panics only if the lengths differ (callers pair shapes).
pub fn compare(t: ArrayViewD<f64>, s: ArrayViewD<f64>) -> TensorComparison {
    assert_eq!(t.len(), s.len(), "compare: paired tensors must have equal length");
    // Contiguous slices when the views are in standard layout (always, for stored tensors):
    // the same logical order, so the same sums, without the per-element cost of iterating
    // a dynamic-rank view.
    match (t.as_slice(), s.as_slice()) {
        (Some(a), Some(b)) => compare_slices(a, b),
        _ => compare_slices(&t.iter().copied().collect::<Vec<_>>(), &s.iter().copied().collect::<Vec<_>>()),
    }
}

fn compare_slices(t: &[f64], s: &[f64]) -> TensorComparison {
    let n = t.len().max(1) as f64;
    let mse = sum(t.iter().zip(s).map(|(a, b)| (a - b) * (a - b))) / n;
    let rmse = mse.sqrt();
    // Two-pass standard deviation: no cancellation between sum of squares and squared sum.
    let mean = sum(t.iter().copied()) / n;
    let std = (sum(t.iter().map(|a| (a - mean) * (a - mean))) / n).sqrt();
    let nrmse = if std > 0.0 {
        Some(rmse / std)
    } else if rmse == 0.0 {
        Some(0.0)
    } else {
        None
    };
    let dot = sum(t.iter().zip(s).map(|(a, b)| a * b));
    let nt = sum(t.iter().map(|a| a * a)).sqrt();
    let ns = sum(s.iter().map(|b| b * b)).sqrt();
    let cosine = match (nt > 0.0, ns > 0.0) {
        (true, true) => (dot / (nt * ns)).clamp(-1.0, 1.0),
        (false, false) => 1.0,
        _ => 0.0,
    };
    TensorComparison { rmse, nrmse, cosine, numel: t.len() }
}

/// BatchNormalization parameters of one layer (views of equally long per-channel vectors):
/// gamma, beta, running mean and variance.
#[derive(Debug, Clone, PartialEq)]
pub struct BnParams<'a> {
    /// scale (gamma).
    pub gamma: ArrayView1<'a, f64>,
    /// shift (beta).
    pub beta: ArrayView1<'a, f64>,
    /// running mean.
    pub mean: ArrayView1<'a, f64>,
    /// running variance.
    pub var: ArrayView1<'a, f64>,
}

/// The paper's BN statistics for one layer (target vs source), per METHOD.md.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BnShiftScale {
    /// mean_c gamma_c (mu_c - mu'_c) / sqrt(var_c + eps): output shift from swapping RM.
    pub mrm: f64,
    /// mean_c sqrt((var_c + eps) / (var'_c + eps)): output scale from swapping RV.
    pub mrv: f64,
    /// mean_c gamma'_c / gamma_c over channels with gamma_c != 0 (a channel with both zero
    /// counts as 1); `None` when every gamma_c is 0 and some gamma'_c is not.
    pub mrw: Option<f64>,
    /// mean_c (beta'_c - beta_c): output shift from swapping RB.
    pub mrb: f64,
    /// Channels left out of MRW because gamma_c = 0 while gamma'_c != 0.
    pub mrw_skipped_channels: usize,
}

/// MRM, MRV, MRW, MRB of target `t` against source `s` with the target's epsilon.
pub fn bn_shift_scale(t: &BnParams<'_>, s: &BnParams<'_>, eps: f64) -> BnShiftScale {
    let c = t.gamma.len().max(1) as f64;
    let mrm = sum((0..t.gamma.len()).map(|i| t.gamma[i] * (t.mean[i] - s.mean[i]) / (t.var[i] + eps).sqrt())) / c;
    let mrv = sum((0..t.var.len()).map(|i| ((t.var[i] + eps) / (s.var[i] + eps)).sqrt())) / c;
    let mrb = sum((0..t.beta.len()).map(|i| s.beta[i] - t.beta[i])) / c;
    let mut ratios = Vec::with_capacity(t.gamma.len());
    let mut skipped = 0;
    for (g, g2) in t.gamma.iter().zip(s.gamma.iter()) {
        if *g != 0.0 {
            ratios.push(g2 / g);
        } else if *g2 == 0.0 {
            ratios.push(1.0);
        } else {
            skipped += 1;
        }
    }
    let mrw = (!ratios.is_empty()).then(|| sum(ratios.iter().copied()) / ratios.len() as f64);
    BnShiftScale { mrm, mrv, mrw, mrb, mrw_skipped_channels: skipped }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ArrayD;

    #[test]
    fn a_transposed_view_compares_as_its_logical_order() {
        let t = ndarray::Array::from_shape_fn((3, 4, 2), |(i, j, k)| (i * 8 + j * 2 + k) as f64 * 0.37 - 2.0);
        let s = t.mapv(|v| v * 0.9 + 0.1);
        let (tt, st) = (t.view().reversed_axes(), s.view().reversed_axes());
        assert!(tt.as_slice().is_none());
        let strided = compare(tt.into_dyn(), st.into_dyn());
        let copied = compare(tt.as_standard_layout().view().into_dyn(), st.as_standard_layout().view().into_dyn());
        assert_eq!(strided, copied);
        assert!(strided.rmse > 0.0 && strided.cosine < 1.0);
    }

    /// A 1-D array of the values, viewed as `compare` takes it.
    fn arr(v: &[f64]) -> ArrayD<f64> {
        ArrayD::from_shape_vec(vec![v.len()], v.to_vec()).unwrap()
    }

    fn cmp(t: &[f64], s: &[f64]) -> TensorComparison {
        compare(arr(t).view(), arr(s).view())
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn rmse_nrmse_cosine_by_hand() {
        // t = [1, 2, 3, 4], s = [1, 2, 3, 6]: squared errors 0,0,0,4 -> mse 1, rmse 1.
        // mean t = 2.5, var = (2.25+0.25+0.25+2.25)/4 = 1.25, std = sqrt(1.25).
        // dot = 1+4+9+24 = 38, |t| = sqrt(30), |s| = sqrt(50).
        let c = cmp(&[1.0, 2.0, 3.0, 4.0], &[1.0, 2.0, 3.0, 6.0]);
        close(c.rmse, 1.0);
        close(c.nrmse.unwrap(), 1.0 / 1.25f64.sqrt());
        close(c.cosine, 38.0 / (30.0f64.sqrt() * 50.0f64.sqrt()));
        assert_eq!(c.numel, 4);
    }

    #[test]
    fn identical_tensors() {
        let v = [0.3, -1.2, 5.0];
        let c = cmp(&v, &v);
        assert_eq!((c.rmse, c.nrmse, c.cosine), (0.0, Some(0.0), 1.0));
    }

    #[test]
    fn zero_variance_and_zero_vectors() {
        let c = cmp(&[2.0, 2.0], &[2.0, 4.0]);
        close(c.rmse, 2.0f64.sqrt());
        assert_eq!(c.nrmse, None);
        assert_eq!(cmp(&[0.0, 0.0], &[0.0, 0.0]).cosine, 1.0);
        assert_eq!(cmp(&[0.0, 0.0], &[1.0, 0.0]).cosine, 0.0);
    }

    #[test]
    fn std_without_cancellation() {
        // Large offset, tiny spread (exact binary fractions, so the expected values are exact):
        // naive E[x^2]-E[x]^2 in f64 loses the spread entirely.
        let q = 2f64.powi(-10);
        let t: Vec<f64> = (0..1000).map(|i| 1e8 + (i % 2) as f64 * q).collect();
        let s: Vec<f64> = t.iter().map(|x| x + q).collect();
        let c = cmp(&t, &s);
        close(c.rmse, q);
        // std(t) = q / 2, so nrmse = 2.
        close(c.nrmse.unwrap(), 2.0);
    }

    /// BN parameters viewing the given per-channel vectors: [gamma, beta, mean, var].
    fn bn(v: &[Vec<f64>; 4]) -> BnParams<'_> {
        let [g, b, m, var] = v;
        BnParams { gamma: g.into(), beta: b.into(), mean: m.into(), var: var.into() }
    }

    #[test]
    fn bn_statistics_on_two_channels_by_hand() {
        let tv = [vec![2.0, 0.5], vec![0.0, 1.0], vec![1.0, -1.0], vec![3.0, 0.0]];
        let sv = [vec![1.0, 1.5], vec![0.5, 3.0], vec![0.0, 1.0], vec![0.0, 8.0]];
        let (t, s) = (bn(&tv), bn(&sv));
        let eps = 1.0;
        // MRM: ch0 2*(1-0)/sqrt(4) = 1; ch1 0.5*(-1-1)/sqrt(1) = -1  -> mean 0
        // MRV: ch0 sqrt(4/1) = 2; ch1 sqrt(1/9) = 1/3                -> (2 + 1/3)/2 = 7/6
        // MRW: ch0 1/2; ch1 1.5/0.5 = 3                                -> 1.75
        // MRB: ch0 0.5; ch1 2                                          -> 1.25
        let r = bn_shift_scale(&t, &s, eps);
        close(r.mrm, 0.0);
        close(r.mrv, 7.0 / 6.0);
        close(r.mrw.unwrap(), 1.75);
        close(r.mrb, 1.25);
    }

    #[test]
    fn bn_identity_and_zero_gamma() {
        let tv = [vec![0.0, 2.0], vec![1.0, 1.0], vec![0.5, 0.5], vec![1.0, 2.0]];
        let t = bn(&tv);
        let r = bn_shift_scale(&t, &t, 1e-5);
        assert_eq!((r.mrm, r.mrb), (0.0, 0.0));
        close(r.mrv, 1.0);
        close(r.mrw.unwrap(), 1.0);
        let mut sv = tv.clone();
        sv[0] = vec![1.0, 4.0];
        let r = bn_shift_scale(&t, &bn(&sv), 1e-5);
        assert_eq!(r.mrw_skipped_channels, 1);
        close(r.mrw.unwrap(), 2.0);
    }
}
