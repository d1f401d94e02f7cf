//! Per-image Dice counts of the baseline and of every swap, filled round by round by any
//! strategy, and what they decide: each swap's Dice, paired bootstrap interval and the
//! images it used. Only counts are kept, never predictions.

use ndarray::{s, Array3, ArrayView3};

use super::clock::RunClock;
use super::scoring::{decided, Scoring};
use super::{AuditOutcome, SwapResult};
use crate::metrics::bootstrap::{delta_intervals_by, image_counts, images_without_prediction, totals};
use crate::metrics::dice::Dice;
use crate::metrics::score::Metric;

/// The counts so far.
pub struct Tally {
    classes: usize,
    n: usize,
    baseline: Array3<u32>,
    /// Per pair: `[n, classes, 3]` for the swaps that run (rows past `used` are not filled).
    swaps: Vec<Option<Array3<u32>>>,
    /// Per pair: images scored when it stopped, and its interval then.
    stopped: Vec<Option<(usize, (f64, f64))>>,
    /// Wall time of the forward passes so far (the strategies add to it).
    pub clock: RunClock,
    /// Image forwards whose counts came from a journal, not from this run.
    restored: usize,
}

impl Tally {
    /// Empty counts for `n` images, `pairs` pairs of which `runs` are scored.
    pub fn new(classes: usize, n: usize, pairs: usize, runs: &[usize]) -> Tally {
        let mut swaps: Vec<Option<Array3<u32>>> = vec![None; pairs];
        for &i in runs {
            swaps[i] = Some(Array3::zeros((n, classes, 3)));
        }
        Tally {
            classes,
            n,
            baseline: Array3::zeros((n, classes, 3)),
            swaps,
            stopped: vec![None; pairs],
            clock: RunClock::default(),
            restored: 0,
        }
    }

    /// Classes scored.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Score the baseline's class maps of images `start..` against their truth.
    pub fn add_baseline(&mut self, start: usize, pred: ArrayView3<u8>, truth: ArrayView3<u8>) {
        let c = image_counts(pred, truth, self.classes);
        self.add_counts(None, start, c.view());
    }

    /// Score pair `i`'s class maps of images `start..` against their truth.
    pub fn add_swap(&mut self, i: usize, start: usize, pred: ArrayView3<u8>, truth: ArrayView3<u8>) {
        let c = image_counts(pred, truth, self.classes);
        self.add_counts(Some(i), start, c.view());
    }

    /// Per-image counts of images `start..` for the baseline (`None`) or pair `i`.
    pub fn add_counts(&mut self, i: Option<usize>, start: usize, counts: ArrayView3<u32>) {
        let dst = match i {
            None => Some(&mut self.baseline),
            Some(i) => self.swaps[i].as_mut(),
        };
        if let Some(dst) = dst {
            dst.slice_mut(s![start..start + counts.dim().0, .., ..]).assign(&counts);
        }
    }

    /// The baseline's counts of images `start..start + len`.
    pub fn baseline_counts(&self, start: usize, len: usize) -> ArrayView3<'_, u32> {
        self.baseline.slice(s![start..start + len, .., ..])
    }

    /// Counts of `images` image forwards were taken from a journal (a resumed audit's
    /// chunk): the run's clock does not count them as computed.
    pub fn add_restored(&mut self, images: usize) {
        self.restored += images;
    }

    /// After the images `..end` are scored for the `open` pairs: each one's interval over
    /// them at `level`; a pair stops when it is decided, or when `end` is the last image.
    /// Returns the pairs still open.
    pub fn close_round(&mut self, end: usize, scoring: &Scoring, level: f64, open: &[usize]) -> Vec<usize> {
        let base = self.baseline.slice(s![..end, .., ..]);
        let views: Vec<ArrayView3<u32>> =
            open.iter().filter_map(|&i| self.swaps[i].as_ref().map(|a| a.slice(s![..end, .., ..]))).collect();
        let intervals = delta_intervals_by(base, &views, level, scoring.resamples, scoring.score);
        let mut still = Vec::new();
        for (&i, iv) in open.iter().zip(intervals) {
            if end >= self.n || decided(iv, scoring.tolerance) {
                self.stopped[i] = Some((end, iv));
            } else {
                still.push(i);
            }
        }
        still
    }

    /// The baseline's score on every image (once every image's baseline counts are in).
    pub fn baseline_score(&self, metric: Metric) -> Dice {
        metric.score(&totals(self.baseline.view()))
    }

    /// Pair `i`'s result if it stops after images `..end` (`end` is the last image, or its
    /// interval decides it), from its counts so far with `chunk` (counts of images `at..`)
    /// laid over them: what `close_round` will decide for it, known as soon as its counts
    /// are (the bootstrap's sums are whole numbers, so the interval does not depend on the
    /// other swaps scored with it).
    pub fn settled(
        &self,
        i: usize,
        end: usize,
        chunk: Option<(usize, ArrayView3<u32>)>,
        scoring: &Scoring,
        level: f64,
        metric: Metric,
    ) -> Option<SwapResult> {
        let mut counts = self.swaps[i].as_ref()?.slice(s![..end, .., ..]).to_owned();
        if let Some((at, c)) = chunk {
            counts.slice_mut(s![at..at + c.dim().0, .., ..]).assign(&c);
        }
        let base = self.baseline.slice(s![..end, .., ..]);
        let iv = delta_intervals_by(base, &[counts.view()], level, scoring.resamples, scoring.score)[0];
        (end >= self.n || decided(iv, scoring.tolerance)).then(|| self.result(counts.view(), iv, metric))
    }

    /// The result of a swap scored on the first `counts.dim().0` images.
    fn result(&self, counts: ArrayView3<u32>, interval: (f64, f64), metric: Metric) -> SwapResult {
        let used = counts.dim().0;
        SwapResult {
            baseline: metric.score(&totals(self.baseline.slice(s![..used, .., ..]))),
            swapped: metric.score(&totals(counts)),
            images: used,
            interval,
            non_finite_images: images_without_prediction(counts),
        }
    }

    /// The outcome; `skipped` pairs (the source's parameter equals the target's) score the
    /// baseline on every image, with the interval [0, 0].
    pub fn finish(self, skipped: &[usize], rounds: Vec<usize>, level: f64, metric: Metric) -> AuditOutcome {
        let baseline = metric.score(&totals(self.baseline.view()));
        let mut swaps: Vec<Option<SwapResult>> = vec![None; self.swaps.len()];
        let mut runs = 0;
        let mut forwards = self.n;
        for (i, counts) in self.swaps.iter().enumerate() {
            let (Some(counts), Some((used, interval))) = (counts, self.stopped[i]) else {
                continue;
            };
            runs += 1;
            forwards += used;
            swaps[i] = Some(self.result(counts.slice(s![..used, .., ..]), interval, metric));
        }
        for &i in skipped {
            swaps[i] = Some(SwapResult {
                baseline: baseline.clone(),
                swapped: baseline.clone(),
                images: self.n,
                interval: (0.0, 0.0),
                non_finite_images: 0,
            });
        }
        AuditOutcome {
            classes: self.classes,
            baseline,
            swaps,
            images: self.n,
            image_forwards: forwards,
            exact_image_forwards: self.n * (runs + 1),
            rounds,
            level,
            clock: RunClock { image_forwards: forwards.saturating_sub(self.restored), ..self.clock },
        }
    }
}

#[cfg(test)]
mod tests;
