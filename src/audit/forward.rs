//! Forward passes over the validation set in batches: class maps (one class per pixel of a
//! segmentation output, or per image of a classifier's), scored against the truth.

use std::ops::Range;

use anyhow::Result;
use ndarray::{s, Array3, Array4, ArrayD, ArrayView3, ArrayViewD, Axis, CowArray, Ix4};

use crate::data::preprocess::{Dataset, InputSpec};
use crate::engine::{Runner, UnusableOutput, View};
use crate::metrics::dice::{predict, Dice, DiceCounts, NO_PREDICTION};
use crate::metrics::score::Metric;
use crate::model::layout::Layout;

/// How the validation set is fed.
#[derive(Debug, Clone)]
pub struct Feed<'a> {
    /// Preprocessed images.
    pub data: &'a Dataset,
    /// The model's input.
    pub input: &'a InputSpec,
    /// Images per run (the model's fixed batch when it has one).
    pub batch: usize,
    /// A one-channel output's foreground threshold (see `model::head`).
    pub threshold: f32,
    /// How the model's output orders its axes.
    pub output: Layout,
    /// One prediction per image (a classifier's `N x classes` output) instead of one per
    /// pixel: class maps are then `N x 1 x 1`.
    pub per_image: bool,
}

impl Feed<'_> {
    /// Height and width of one image's class map: the input's, or 1 x 1 for a classifier.
    pub fn map_size(&self) -> (usize, usize) {
        if self.per_image {
            (1, 1)
        } else {
            (self.data.h(), self.data.w())
        }
    }

    /// Batches as `(first image, count)`.
    pub fn batches(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.batches_in(0..self.data.n())
    }

    /// Batches as `(first image, count)` of the images `range` (an adaptive round).
    pub fn batches_in(&self, range: Range<usize>) -> impl Iterator<Item = (usize, usize)> + '_ {
        let end = range.end.min(self.data.n());
        (range.start..end).step_by(self.batch.max(1)).map(move |s| (s, self.batch.max(1).min(end - s)))
    }

    /// The input tensor of one batch, in the model's input layout: a view into the data
    /// set, or a zero-padded copy when the model's fixed batch is larger than the images left.
    pub fn tensor(&self, start: usize, count: usize) -> CowArray<'_, f32, Ix4> {
        let d = self.data;
        let batch = d.images.slice(s![start..start + count, .., .., ..]);
        let rows = self.input.batch.unwrap_or(count);
        if rows == count {
            return CowArray::from(batch);
        }
        let [a, b, c, e] = d.layout.from_nchw([rows, d.c(), d.h(), d.w()]);
        let mut padded = Array4::zeros((a, b, c, e));
        padded.slice_mut(s![..count.min(rows), .., .., ..]).assign(&batch.slice(s![..count.min(rows), .., .., ..]));
        CowArray::from(padded)
    }
}

/// The unswapped model's output holds NaN or an infinity: it predicts nothing there, so no
/// swap can be compared with it (reported as an error of the target's file).
#[derive(Debug, thiserror::Error)]
#[error(
    "the unswapped model's output is {value} at image {origin} (output index {index:?}): no prediction, so no \
     swap can be compared and there is no verdict; check the model and the input scaling (--normalize)"
)]
pub struct NonFiniteOutput {
    /// The first value that is not finite.
    pub value: f32,
    /// The image it belongs to, as the data names it.
    pub origin: String,
    /// Its index in the output tensor.
    pub index: Vec<usize>,
}

/// Refuse a baseline output (images `start..start + count` of the feed) with a value that
/// is not finite, naming the first one.
pub fn check_finite(output: &ArrayViewD<f32>, feed: &Feed, start: usize, count: usize) -> Result<()> {
    let Some((index, &value)) = output.indexed_iter().find(|(_, v)| !v.is_finite()) else {
        return Ok(());
    };
    let mut index = ndarray::Dimension::slice(&index).to_vec();
    // Rows past `count` are the zero padding of a fixed batch, not images.
    if index.first().is_some_and(|&i| i >= count) {
        let real = output.slice_axis(ndarray::Axis(0), ndarray::Slice::from(..count));
        return check_finite(&real, feed, start, count);
    }
    // The index in the whole set: the batch's first image added.
    if let Some(i) = index.first_mut() {
        *i += start;
    }
    let image = index.first().copied().unwrap_or(start);
    let origin = feed.data.origins.get(image).cloned().unwrap_or_else(|| format!("#{image}"));
    Err(NonFiniteOutput { value, origin, index }.into())
}

/// Class maps `[n, h, w]` (`[n, 1, 1]` for a classifier) of every image, and the class
/// count, from one full forward pass.
pub fn predictions(runner: &mut Runner, feed: &Feed, extra: &[(String, ArrayD<f32>)]) -> Result<(Array3<u8>, usize)> {
    predictions_in(runner, feed, 0..feed.data.n(), extra)
}

/// Class maps `[images, h, w]` of the images `range`, and the class count.
pub fn predictions_in(
    runner: &mut Runner,
    feed: &Feed,
    range: Range<usize>,
    extra: &[(String, ArrayD<f32>)],
) -> Result<(Array3<u8>, usize)> {
    run_predictions(runner, feed, range, extra, false)
}

/// [`predictions_in`] of the unswapped model: an output that is not finite is an error
/// ([`NonFiniteOutput`]), not a prediction.
pub fn baseline_predictions_in(runner: &mut Runner, feed: &Feed, range: Range<usize>) -> Result<(Array3<u8>, usize)> {
    run_predictions(runner, feed, range, &[], true)
}

fn run_predictions(
    runner: &mut Runner,
    feed: &Feed,
    range: Range<usize>,
    extra: &[(String, ArrayD<f32>)],
    finite: bool,
) -> Result<(Array3<u8>, usize)> {
    let first = range.start;
    let (h, w) = feed.map_size();
    let mut out = Array3::zeros((range.len(), h, w));
    let mut classes = 0;
    for (start, count) in feed.batches_in(range) {
        let x = feed.tensor(start, count);
        let mut inputs = vec![(feed.input.name.as_str(), View::F32(x.view().into_dyn()))];
        inputs.extend(extra.iter().map(|(name, v)| (name.as_str(), View::F32(v.view()))));
        let (pred, c) = runner.run_views_first(&inputs, |output| {
            if finite {
                check_finite(&output, feed, start, count)?;
            }
            class_maps(output, feed.output, count, h, w, feed.threshold)
        })?;
        classes = c;
        out.slice_mut(s![start - first..start - first + count, .., ..]).assign(&pred);
    }
    Ok((out, classes))
}

/// Class maps of the first `count` images of a segmentation output (`[n, c, h, w]`, or
/// `[n, h, w, c]` for a channels-last `layout`), and the class count (2 for a one-channel
/// output, foreground above `threshold`). A classifier's `[n, c]` output is read as
/// `[n, c, 1, 1]` (`h = w = 1`).
pub fn class_maps(
    output: ArrayViewD<f32>,
    layout: Layout,
    count: usize,
    h: usize,
    w: usize,
    threshold: f32,
) -> Result<(Array3<u8>, usize)> {
    let shape = output.shape().to_vec();
    let output = match shape.len() {
        2 => output.insert_axis(Axis(2)).insert_axis(Axis(3)),
        _ => output,
    };
    // Viewed as N x C x H x W: `predict` copies a permuted view once.
    let output = match output.into_dimensionality::<Ix4>() {
        Ok(o) if shape.len() == 2 => o,
        Ok(o) => o.permuted_axes(layout.nchw_axes()),
        Err(_) => {
            return Err(UnusableOutput(format!(
                "the model's output has shape {shape:?} (rank {}); reuse-audit scores segmentation outputs of shape {} \
                 (read as {})",
                shape.len(),
                layout_pattern(layout, h, w),
                layout.name()
            ))
            .into())
        }
    };
    if output.dim().0 < count || output.dim().2 * output.dim().3 != h * w {
        return Err(UnusableOutput(format!(
            "the model's output has shape {shape:?}: read as {}, that is {} class channel(s) of {}x{} for {} image(s), \
             but {count} image(s) of {h}x{w} went in; reuse-audit scores segmentation outputs of shape {} (the input's \
             resolution; --layout sets how the output is read)",
            layout.name(),
            output.dim().1,
            output.dim().2,
            output.dim().3,
            output.dim().0,
            layout_pattern(layout, h, w)
        ))
        .into());
    }
    let c = output.dim().1;
    if c > usize::from(NO_PREDICTION) {
        let why = format!("the model outputs {c} channels; at most {NO_PREDICTION} classes are supported");
        return Err(UnusableOutput(why).into());
    }
    // An output at input resolution but another aspect (h*w equal) is read as h x w.
    let output = output.slice_move(s![..count, .., .., ..]);
    let pred = predict(output, threshold);
    let pred = if pred.dim() == (count, h, w) {
        pred
    } else {
        pred.into_shape_with_order((count, h, w)).map_err(|e| anyhow::anyhow!("output layout: {e}"))?
    };
    Ok((pred, if c == 1 { 2 } else { c }))
}

/// `N x classes x H x W` (or channels-last) with the input's height and width filled in.
fn layout_pattern(layout: Layout, h: usize, w: usize) -> String {
    match layout {
        Layout::Nchw => format!("N x classes x {h} x {w}"),
        Layout::Nhwc => format!("N x {h} x {w} x classes"),
    }
}

/// Predictions scored against truth (same shape) by `metric`.
pub fn score(pred: ArrayView3<u8>, truth: ArrayView3<u8>, classes: usize, metric: Metric) -> Dice {
    let mut c = DiceCounts::new(classes);
    c.add(pred, truth);
    metric.score(&c)
}
