//! Seeded Gaussian noise of an exact RMSE.
//!
//! Each draw is a fixed direction: `len` standard normal values (Box-Muller on
//! [`SplitMix64`]) scaled so that their RMS is exactly 1, seeded by the target
//! initializer's name and the draw's number. A probe at RMSE `r` adds `r` times that
//! direction, so the perturbation's RMSE against the target is `r` (as a swap's `rmse` is
//! measured) and the probes of one draw at different `r` differ only in scale (common random
//! numbers: the loss grows smoothly along the grid, which the bisection assumes).

use ndarray::ArrayD;

use crate::metrics::bootstrap::{SplitMix64, SEED};

/// Draws averaged per probe unless `--budget-draws` says otherwise.
pub const DEFAULT_DRAWS: usize = 3;

/// FNV-1a of a name: the same seed for the same initializer in every run.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The unit-RMS Gaussian direction of draw `draw` for the initializer `name`, `len` values.
pub fn direction(name: &str, draw: usize, len: usize) -> Vec<f64> {
    let seed = SEED ^ 0x6275_6467_6574 ^ fnv1a(name) ^ (draw as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut rng = SplitMix64::new(seed);
    let mut z = Vec::with_capacity(len + 1);
    while z.len() < len {
        // Box-Muller: u1 in (0, 1] so the logarithm is finite.
        let (u1, u2) = (1.0 - rng.unit(), rng.unit());
        let radius = (-2.0 * u1.ln()).sqrt();
        let angle = std::f64::consts::TAU * u2;
        z.push(radius * angle.cos());
        z.push(radius * angle.sin());
    }
    z.truncate(len);
    let rms = (z.iter().map(|v| v * v).sum::<f64>() / len.max(1) as f64).sqrt();
    if rms > 0.0 {
        z.iter_mut().for_each(|v| *v /= rms);
    }
    z
}

/// `target + r x direction`: the target's values with noise of RMSE exactly `r`.
pub fn perturbed(target: &ArrayD<f64>, direction: &[f64], r: f64) -> ArrayD<f64> {
    let mut out = target.as_standard_layout().into_owned();
    for (v, z) in out.iter_mut().zip(direction) {
        *v += r * z;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_has_the_exact_rmse_and_is_gaussian_and_seeded() {
        let n = 20_000;
        let z = direction("conv1.weight", 0, n);
        assert_eq!(z, direction("conv1.weight", 0, n), "same name and draw: same noise");
        assert_ne!(z, direction("conv1.weight", 1, n), "another draw");
        assert_ne!(z, direction("conv2.weight", 0, n), "another tensor");
        let t = ArrayD::from_elem(ndarray::IxDyn(&[n]), 0.7);
        let p = perturbed(&t, &z, 0.05);
        let rmse = (p.iter().zip(t.iter()).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / n as f64).sqrt();
        assert!((rmse - 0.05).abs() < 1e-12, "rmse {rmse}");
        // Standard normal before scaling: mean ~0 (sd 1/sqrt(n) = 0.007), 68.3% within one sd
        // (sd of the share 0.0033), 95.4% within two.
        let mean = z.iter().sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.03, "mean {mean}");
        let within = |k: f64| z.iter().filter(|v| v.abs() < k).count() as f64 / n as f64;
        assert!((within(1.0) - 0.6827).abs() < 0.015, "{}", within(1.0));
        assert!((within(2.0) - 0.9545).abs() < 0.01, "{}", within(2.0));
        // One value: unit RMS is +1 or -1.
        assert_eq!(direction("b", 0, 1)[0].abs(), 1.0);
        assert!(direction("b", 0, 0).is_empty());
    }
}
