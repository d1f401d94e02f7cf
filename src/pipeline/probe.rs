//! Checks on a probe batch before the audit: the input size of a free-size model, the input
//! scaling that fits the model (`--normalize auto`), and whether the baseline segments (classifies)
//! the data at all (`--min-baseline`; label-free: whether it predicts more than one class).

use std::ops::Range;
use std::sync::Mutex;

use anyhow::Result;
use ndarray::{Array3, Axis};
use serde::Serialize;

use crate::audit::forward::{predictions, predictions_in, score, Feed};
use crate::audit::incremental::schedule::parallel_map;
use crate::data::preprocess::{prepare, Dataset, InputSpec};
use crate::data::standardize::MeanStd;
use crate::data::{Fit, Normalize, Sample};
use crate::engine::{Engine, Runner, View};
use crate::error::UserError;
use crate::metrics::score::Metric;
use crate::model::layout::Layout;
use crate::model::stride::total_stride;
use crate::model::Model;

/// Images in the probe batch (spread evenly over the data set).
pub const PROBE_IMAGES: usize = 16;

/// At most this many workers run the probe: each builds a session of the whole model, which
/// beyond a few costs more than the share of the probe's runs it takes over.
const PROBE_WORKERS: usize = 4;

/// The baseline score of one input scaling on the probe batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScalingScore {
    /// The scaling (`--normalize` value).
    pub normalize: Normalize,
    /// The unswapped target's score on the probe batch with it, by the audit's metric
    /// (mean Dice, or accuracy with `--metric accuracy`).
    pub probe_dice: f64,
}

/// Every `k`-th sample so that at most [`PROBE_IMAGES`] spread over the set are kept.
pub fn probe_samples(samples: &[Sample]) -> Vec<Sample> {
    let n = samples.len();
    let k = n.min(PROBE_IMAGES);
    (0..k).map(|i| samples[i * n / k].clone()).collect()
}

/// Whether every pixel of every sample is an integer in 0..=255 (8-bit images, whatever
/// dtype they were stored in): then dividing by 255 is a scaling worth trying.
pub fn looks_8bit(samples: &[Sample]) -> bool {
    samples.iter().all(|s| s.image.iter().all(|v| (0.0..=255.0).contains(&v) && v.fract() == 0.0))
}

/// The scalings `--normalize auto` tries, in order of preference on ties. Values as stored
/// are not tried when some are beyond float32's range (the model would be fed inf: that
/// scaling is refused when forced, and cannot be the one that fits).
pub fn candidates(samples: &[Sample]) -> Vec<Normalize> {
    let mut c = vec![Normalize::Zscore, Normalize::Minmax];
    let fits_f32 = samples.iter().all(|s| s.image.iter().all(|v| !v.is_finite() || (v as f32).is_finite()));
    if fits_f32 {
        c.push(Normalize::None);
    }
    if looks_8bit(samples) {
        c.push(Normalize::Div255);
    }
    c
}

/// For a model with free spatial dims: one image of `data` (already at the size fed) must
/// run and come out at its own height and width, else the size is refused (exit 2) naming
/// the network's total stride. `size_flag` says where the size came from, for the message.
pub fn check_size(
    engine: &Engine,
    target: &Model,
    data: &Dataset,
    input: &InputSpec,
    output: Layout,
    size_flag: Option<&str>,
) -> Result<()> {
    let (h, w) = (data.h(), data.w());
    let feed = Feed { data, input, batch: 1, threshold: 0.0, output, per_image: false };
    let x = feed.tensor(0, 1);
    let mut runner = engine.worker_session(&target.to_bytes()?)?;
    let ran = runner.run_views_first(&[(input.name.as_str(), View::F32(x.view().into_dyn()))], |out| {
        Ok(<[usize; 4]>::try_from(out.shape()).ok().map(|s| output.to_nchw(s)))
    });
    let problem = match ran {
        Err(e) => format!("ONNX Runtime cannot run the model at {h}x{w} ({e:#})"),
        Ok(Some([_, _, oh, ow])) if (oh, ow) == (h, w) => return Ok(()),
        // One score vector per image (a classifier): any size the model runs at will do.
        Ok(Some([_, _, 1, 1])) => return Ok(()),
        Ok(Some([_, _, oh, ow])) => format!("the model maps a {h}x{w} input to a {oh}x{ow} output"),
        // Not 4-D: the output check that follows names the shape.
        Ok(None) => return Ok(()),
    };
    let (sh, sw) = total_stride(target);
    let stride = if sh == sw { format!("{sh}") } else { format!("{sh} (rows) x {sw} (columns)") };
    let reason = format!(
        "{problem}: the input's height and width are free, and must be multiples of the network's total stride, {stride} \
         (the product of the Conv/pooling strides on its deepest path)"
    );
    Err(match size_flag {
        Some(flag) => UserError::BadFlag { flag: "--size", reason: format!("{flag}: {reason}") },
        None => UserError::BadData(format!(
            "the data's images are {h}x{w}; {reason}: pass --size HxW (and --fit resize, crop or pad)"
        )),
    }
    .into())
}

/// How the probe batch is prepared and scored.
#[derive(Debug, Clone, Copy)]
pub struct ProbeScoring<'a> {
    /// `--fit`.
    pub fit: Fit,
    /// `--mean`/`--std`, applied after each scaling.
    pub mean_std: Option<&'a MeanStd>,
    /// A one-channel output's threshold.
    pub threshold: f32,
    /// The output's layout.
    pub output: Layout,
    /// A classifier's output (one prediction per image).
    pub per_image: bool,
    /// What the baseline is scored by.
    pub metric: Metric,
    /// `--ignore-label`.
    pub ignore_label: Option<u8>,
}

/// The baseline on the probe batch under each scaling in `tries` (with labels), in order.
/// `session`: a single-threaded session of `target` already built (the output-kind probe's),
/// used by the first worker.
pub fn score_scalings(
    engine: &Engine,
    target: &Model,
    probe: &[Sample],
    input: &InputSpec,
    how: ProbeScoring,
    tries: &[Normalize],
    session: Option<Runner>,
) -> Result<Vec<ScalingScore>> {
    let ProbeScoring { fit, mean_std, threshold, output, per_image, metric, ignore_label } = how;
    let data: Vec<Dataset> = tries
        .iter()
        .map(|&normalize| {
            let mut data = prepare(probe, input, normalize, fit)?;
            data.ignore_label = ignore_label;
            if let Some(ms) = mean_std {
                data.standardize(ms)?;
            }
            Ok(data)
        })
        .collect::<Result<_>>()?;
    // (scaling, images) items that spread evenly over the workers, each run by one
    // single-threaded session per worker (made by the worker itself at its first item, like
    // the incremental strategy's workers): three scalings on two workers are six halves.
    // A model whose results depend on the images sharing a run (dynamic quantization) runs
    // one image per run, as its audit does: its scores depend neither on the number of
    // workers nor on how the probe batch is cut, and match its baseline on those images.
    let workers = engine.workers().clamp(1, PROBE_WORKERS);
    let alone = crate::model::batch::batch_mates_matter(target).is_some();
    let parts = probe_parts(tries.len(), workers, probe.len(), input.batch);
    let items: Vec<(usize, Range<usize>)> =
        (0..tries.len()).flat_map(|t| parts.iter().map(move |r| (t, r.clone()))).collect();
    let bytes = target.to_bytes()?;
    let mut seeded = vec![session];
    seeded.resize_with(workers.min(items.len()).max(1), || None);
    let runners: Vec<Mutex<Option<Runner>>> = seeded.into_iter().map(Mutex::new).collect();
    let runs = parallel_map(runners.len(), &items, |w, (t, range)| {
        let mut slot = runners[w].lock().map_err(|_| anyhow::anyhow!("a probe session was poisoned"))?;
        if slot.is_none() {
            *slot = Some(engine.worker_session(&bytes)?);
        }
        let runner = slot.as_mut().ok_or_else(|| anyhow::anyhow!("no probe session"))?;
        let batch = input.batch.unwrap_or(if alone { 1 } else { range.len() });
        let feed = Feed { data: &data[*t], input, batch, threshold, output, per_image };
        predictions_in(runner, &feed, range.clone(), &[])
    })?;
    let mut runs = runs.into_iter();
    let mut scores = Vec::with_capacity(tries.len());
    for (&normalize, data) in tries.iter().zip(&data) {
        let (preds, classes): (Vec<Array3<u8>>, Vec<usize>) = runs.by_ref().take(parts.len()).unzip();
        let classes = classes.into_iter().max().unwrap_or(0);
        let views: Vec<_> = preds.iter().map(|p| p.view()).collect();
        let pred = ndarray::concatenate(Axis(0), &views)?;
        let Some(labels) = data.checked_labels(classes)? else {
            return Err(UserError::BadData(
                "the data has no labels: give --labels FILE or use --labels baseline (label-free)".into(),
            )
            .into());
        };
        scores.push(ScalingScore { normalize, probe_dice: score(pred.view(), labels.view(), classes, metric).mean });
    }
    Ok(scores)
}

/// The probe images cut into consecutive ranges so that `tries` x ranges items share out
/// evenly over `workers` (one range when the tries alone do): `workers / gcd(tries,
/// workers)` ranges, at most one per batch, starting on multiples of a fixed batch.
fn probe_parts(tries: usize, workers: usize, images: usize, fixed_batch: Option<usize>) -> Vec<Range<usize>> {
    let gcd = |mut a: usize, mut b: usize| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let unit = fixed_batch.unwrap_or(1).max(1);
    let batches = images.div_ceil(unit).max(1);
    let parts = (workers.max(1) / gcd(tries.max(1), workers.max(1))).clamp(1, batches);
    let per = batches.div_ceil(parts) * unit;
    if images == 0 {
        return std::iter::once(0..0).collect();
    }
    (0..images).step_by(per).map(|s| s..(s + per).min(images)).collect()
}

/// The best-scoring scaling (the first of equals, so the order of `scores` breaks ties).
pub fn best(scores: &[ScalingScore]) -> Option<&ScalingScore> {
    scores.iter().fold(None, |b: Option<&ScalingScore>, s| match b {
        Some(b) if b.probe_dice >= s.probe_dice => Some(b),
        _ => Some(s),
    })
}

/// Label-free: the share of probe pixels (images, for a classifier) given the most frequent
/// class by the target on the probe batch `feed` (`session`: one of `target` already built,
/// else one is made).
pub fn dominant_class_share(
    engine: &Engine,
    target: &Model,
    feed: &Feed,
    session: Option<Runner>,
) -> Result<(usize, f64)> {
    let mut runner = match session {
        Some(r) => r,
        None => engine.worker_session(&target.to_bytes()?)?,
    };
    let (pred, classes) = predictions(&mut runner, feed, &[])?;
    let mut counts = vec![0usize; classes.max(1)];
    for &p in &pred {
        if let Some(c) = counts.get_mut(p as usize) {
            *c += 1;
        }
    }
    let (class, most) = counts.iter().enumerate().max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i))).unwrap_or((0, &0));
    Ok((class, *most as f64 / pred.len().max(1) as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(values: Vec<f64>) -> Sample {
        Sample {
            image: Array3::from_shape_vec((1, 1, values.len()), values).unwrap().into(),
            label: None,
            origin: "s".into(),
        }
    }

    #[test]
    fn eight_bit_images_add_div255_and_ties_keep_the_first() {
        assert_eq!(candidates(&[sample(vec![0.0, 17.0, 255.0])]).last(), Some(&Normalize::Div255));
        assert!(!candidates(&[sample(vec![0.0, 0.5])]).contains(&Normalize::Div255));
        assert!(!candidates(&[sample(vec![0.0, 256.0])]).contains(&Normalize::Div255));
        let s = |normalize, probe_dice| ScalingScore { normalize, probe_dice };
        let scores = [s(Normalize::Zscore, 0.9), s(Normalize::Minmax, 0.9), s(Normalize::None, 0.2)];
        assert_eq!(best(&scores).unwrap().normalize, Normalize::Zscore);
        let scores = [s(Normalize::Zscore, 0.1), s(Normalize::Minmax, 0.2), s(Normalize::Div255, 0.95)];
        assert_eq!(best(&scores).unwrap().normalize, Normalize::Div255);
    }

    #[test]
    fn probe_parts_share_the_work_evenly() {
        let lens = |tries, workers, images, fixed| -> Vec<(usize, usize)> {
            probe_parts(tries, workers, images, fixed).iter().map(|r| (r.start, r.len())).collect()
        };
        // Three scalings on two workers: halves, so each worker runs 24 of the 48 image runs.
        assert_eq!(lens(3, 2, 16, None), vec![(0, 8), (8, 8)]);
        // Tries that already divide among the workers stay whole.
        assert_eq!(lens(4, 2, 16, None), vec![(0, 16)]);
        assert_eq!(lens(2, 2, 16, None), vec![(0, 16)]);
        // One forced scaling: one range per worker, at most one per image.
        assert_eq!(lens(1, 16, 5, None), vec![(0, 1), (1, 1), (2, 1), (3, 1), (4, 1)]);
        assert_eq!(lens(3, 4, 16, None), vec![(0, 4), (4, 4), (8, 4), (12, 4)]);
        // A fixed batch: ranges start on its multiples.
        assert_eq!(lens(1, 2, 7, Some(3)), vec![(0, 6), (6, 1)]);
        assert_eq!(lens(1, 2, 0, None), vec![(0, 0)]);
    }

    #[test]
    fn probe_spreads_over_the_set() {
        let samples: Vec<Sample> = (0..40).map(|i| sample(vec![i as f64])).collect();
        let probe = probe_samples(&samples);
        assert_eq!(probe.len(), PROBE_IMAGES);
        assert_eq!(probe[1].image.at((0, 0, 0)), 2.0);
        assert_eq!(probe[15].image.at((0, 0, 0)), 37.0);
        assert_eq!(probe_samples(&samples[..3]).len(), 3);
    }
}
