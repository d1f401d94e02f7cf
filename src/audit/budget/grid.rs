//! The noise grid of one tensor and the bisection on it.
//!
//! The grid is geometric: [`POINTS`] RMSE values from `LOW x rms(t)` to `HIGH x rms(t)`,
//! where `rms(t) = sqrt(mean(t^2))` is the target tensor's own scale (at least its std and
//! its |mean|, at most √2 times the larger: a running variance is measured by its mean, a
//! zero-mean weight by its std). Neighbours differ by a factor of `(HIGH / LOW)^(1 / (POINTS
//! - 1))`, about 1.096.
//!
//! The bisection assumes the loss grows with the noise and looks for the largest grid index
//! whose loss is at most the tolerance. Its bracket starts at the virtual indices `-1`
//! (within tolerance) and `POINTS` (over it), so with `POINTS = 2^STEPS - 1` it ends after
//! exactly [`STEPS`] probes, every one of them a real grid point; when it ends at `-1` even
//! the smallest RMSE costs more than the tolerance (the budget is below the grid), at
//! `POINTS - 1` even the largest does not (the budget is above it). Both ends are probed
//! before they are reported, never assumed.

/// Probes per (layer, kind): the bisection's steps.
pub const STEPS: u32 = 7;
/// Grid points: `2^STEPS - 1`.
pub const POINTS: usize = (1 << STEPS) - 1;
/// The smallest RMSE tried, in units of the tensor's RMS.
pub const LOW: f64 = 1e-4;
/// The largest RMSE tried, in units of the tensor's RMS.
pub const HIGH: f64 = 10.0;

/// A geometric grid of noise RMSEs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    /// The smallest RMSE (index 0).
    pub r_min: f64,
    /// The largest RMSE (index `points - 1`).
    pub r_max: f64,
    /// Number of points (at least 2).
    pub points: usize,
}

impl Grid {
    /// The grid of a tensor: `LOW x rms` to `HIGH x rms`; None when the tensor is empty, all
    /// zeros or not finite (no scale to measure noise by).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Grid> {
        let (mut sum, mut n) = (0.0f64, 0usize);
        for v in values {
            sum += v * v;
            n += 1;
        }
        let rms = (sum / n.max(1) as f64).sqrt();
        (n > 0 && rms.is_finite() && rms > 0.0).then_some(Grid { r_min: LOW * rms, r_max: HIGH * rms, points: POINTS })
    }

    /// The RMSE at index `j` (`0..points`).
    pub fn r(&self, j: usize) -> f64 {
        if j + 1 >= self.points {
            return self.r_max;
        }
        self.r_min * (self.r_max / self.r_min).powf(j as f64 / (self.points - 1) as f64)
    }
}

/// A bisection on grid indices: the largest index whose loss is at most the tolerance.
#[derive(Debug, Clone, PartialEq)]
pub struct Bisection {
    /// Largest index known within tolerance (`-1`: none yet) and its loss.
    lo: (isize, f64),
    /// Smallest index known over tolerance (`points`: none yet) and its loss.
    hi: (isize, f64),
    points: usize,
    tolerance: f64,
}

/// Where a finished bisection ended: grid indices with the mean loss measured there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bracket {
    /// The largest grid index found within tolerance, and its loss; None when even index 0
    /// costs more (the budget is below the grid).
    pub within: Option<(usize, f64)>,
    /// The next index, found over tolerance, and its loss; None when even the last index is
    /// within tolerance (the budget is above the grid).
    pub over: Option<(usize, f64)>,
}

impl Bisection {
    /// A bisection over `points` grid indices against `tolerance`.
    pub fn new(points: usize, tolerance: f64) -> Bisection {
        Bisection { lo: (-1, f64::NAN), hi: (points as isize, f64::NAN), points, tolerance }
    }

    /// The index to probe next; None when the bracket is closed.
    pub fn next(&self) -> Option<usize> {
        (self.hi.0 - self.lo.0 > 1).then(|| ((self.lo.0 + self.hi.0) / 2) as usize)
    }

    /// The mean loss measured at index `j` (the one [`Bisection::next`] gave). A loss that
    /// is not a number counts as over the tolerance.
    pub fn record(&mut self, j: usize, loss: f64) {
        if loss <= self.tolerance {
            self.lo = (j as isize, loss);
        } else {
            self.hi = (j as isize, loss);
        }
    }

    /// The result once [`Bisection::next`] is None: the virtual ends are never reported.
    pub fn bracket(&self) -> Bracket {
        let within = (self.lo.0 >= 0).then_some((self.lo.0 as usize, self.lo.1));
        let over = (self.hi.0 < self.points as isize).then_some((self.hi.0 as usize, self.hi.1));
        Bracket { within, over }
    }
}

#[cfg(test)]
mod tests;
