//! Forward passes over the validation set in batches, scored as Dice against the truth.

use anyhow::{bail, Result};

use crate::data::preprocess::{Dataset, InputSpec};
use crate::engine::{Runner, View};
use crate::metrics::dice::{predict, Dice, DiceCounts};

/// How the validation set is fed.
#[derive(Debug, Clone)]
pub struct Feed<'a> {
    /// Preprocessed images.
    pub data: &'a Dataset,
    /// The model's input.
    pub input: &'a InputSpec,
    /// Images per run (the model's fixed batch when it has one).
    pub batch: usize,
}

impl Feed<'_> {
    /// Batches as `(first image, count)`.
    pub fn batches(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.data.n()).step_by(self.batch).map(|s| (s, self.batch.min(self.data.n() - s)))
    }

    /// The input tensor of one batch (zero-padded to a fixed batch size when needed).
    pub fn tensor(&self, start: usize, count: usize) -> (Vec<usize>, Vec<f32>) {
        let d = self.data;
        let per = d.c() * d.h() * d.w();
        let rows = self.input.batch.unwrap_or(count);
        let mut v: Vec<f32> = d.images.slice(ndarray::s![start..start + count, .., .., ..]).iter().copied().collect();
        v.resize(rows * per, 0.0);
        (vec![rows, d.c(), d.h(), d.w()], v)
    }
}

/// Class maps of every image, and the class count, from one full forward pass.
pub fn predictions(
    runner: &mut Runner,
    feed: &Feed,
    extra: &[(String, Vec<usize>, Vec<f32>)],
) -> Result<(Vec<u8>, usize)> {
    let d = feed.data;
    let hw = d.h() * d.w();
    let mut out = Vec::with_capacity(d.n() * hw);
    let mut classes = 0;
    for (start, count) in feed.batches() {
        let (shape, values) = feed.tensor(start, count);
        let mut inputs = vec![(feed.input.name.as_str(), View::F32(&shape, &values))];
        inputs.extend(extra.iter().map(|(name, dims, v)| (name.as_str(), View::F32(dims, v))));
        let (pred, c) = runner.run_views_first(&inputs, |oshape, ovalues| {
            if oshape.len() != 4 || oshape[2] * oshape[3] != hw || oshape[0] < count {
                bail!(
                    "the model's output has shape {oshape:?}; reuse-audit scores segmentation outputs of shape N x classes x {} x {}",
                    d.h(),
                    d.w()
                );
            }
            let c = oshape[1];
            if c > 256 {
                bail!("the model outputs {c} channels; at most 256 classes are supported");
            }
            Ok((predict(&ovalues[..count * c * hw], count, c, hw), c))
        })?;
        classes = if c == 1 { 2 } else { c };
        out.extend(pred);
    }
    Ok((out, classes))
}

/// Dice of predictions against truth.
pub fn dice(pred: &[u8], truth: &[u8], classes: usize) -> Dice {
    let mut c = DiceCounts::new(classes);
    c.add(pred, truth);
    Dice::from_counts(&c)
}
