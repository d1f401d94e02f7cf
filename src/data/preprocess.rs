//! Turning loaded samples into the model's input: per-image normalization, fitting to the
//! model's height/width, channel replication; label checks against the class count.

use anyhow::Result;
use ndarray::{s, Array2, Array3, Array4, ArrayView2, Axis, Ix3};

use super::values::{exact_f32, Values};
use super::{Label, Sample};
use crate::error::UserError;
use crate::metrics::dice::IGNORED;
use crate::model::layout::Layout;

/// `--normalize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Normalize {
    /// Per image: (x - mean) / std (std 0 -> x - mean).
    Zscore,
    /// Per image: (x - min) / (max - min) (constant image -> 0).
    Minmax,
    /// Values as stored.
    None,
    /// x / 255 (8-bit images for a model trained on [0, 1]).
    Div255,
    /// Try zscore, minmax, none (and div255 for 8-bit images) on a probe batch and keep
    /// the one with the best baseline Dice (needs labels; label-free it is zscore).
    Auto,
}

/// `--fit`: what to do when the data's height/width differ from the model's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Refuse a size mismatch.
    None,
    /// Bilinear resize (labels: nearest).
    Resize,
    /// Center crop (data larger than the model's input).
    Crop,
    /// Center zero-pad (data smaller than the model's input).
    Pad,
}

/// What the model takes: from the graph's first non-initializer input.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct InputSpec {
    /// Input name.
    pub name: String,
    /// Batch size when fixed (`None` = dynamic).
    pub batch: Option<usize>,
    /// Channels when fixed.
    pub channels: Option<usize>,
    /// Height when fixed.
    pub height: Option<usize>,
    /// Width when fixed.
    pub width: Option<usize>,
    /// How the input orders its axes (`N x C x H x W` or `N x H x W x C`).
    pub layout: Layout,
}

/// Preprocessed images ready to feed, plus their labels.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// float32 in the model's input layout (`N x C x H x W` or `N x H x W x C`), standard
    /// layout in memory: `images.as_slice()` is the input tensor, a batch is a view.
    pub images: Array4<f32>,
    /// The layout of `images`.
    pub layout: Layout,
    /// `N x H x W` labels as stored (checked by [`Dataset::checked_labels`]), float32 where
    /// every one is exactly a float32; one class id per image is `N x 1 x 1` (see
    /// `class_ids`).
    pub labels: Option<Values<Ix3>>,
    /// Whether `labels` are one class id per image (a classifier's) rather than label maps.
    pub class_ids: bool,
    /// Origin of each image, for messages.
    pub origins: Vec<String>,
    /// `--ignore-label`: the label value whose pixels are not scored (made [`IGNORED`] by
    /// [`Dataset::checked_labels`]).
    pub ignore_label: Option<u8>,
}

impl Dataset {
    /// Bytes its images and labels take.
    pub fn held_bytes(&self) -> u64 {
        (self.images.len() * 4 + self.labels.as_ref().map_or(0, |l| l.bytes())) as u64
    }

    /// `[n, c, h, w]`, whatever the layout.
    fn nchw(&self) -> [usize; 4] {
        let (a, b, c, d) = self.images.dim();
        self.layout.to_nchw([a, b, c, d])
    }

    /// Images.
    pub fn n(&self) -> usize {
        self.nchw()[0]
    }

    /// Channels.
    pub fn c(&self) -> usize {
        self.nchw()[1]
    }

    /// Height.
    pub fn h(&self) -> usize {
        self.nchw()[2]
    }

    /// Width.
    pub fn w(&self) -> usize {
        self.nchw()[3]
    }

    /// The same images (and labels, origins) taken in `order` (a permutation of `0..n`):
    /// an adaptive audit's rounds are prefixes of a shuffle.
    pub fn reordered(&self, order: &[usize]) -> Dataset {
        let axis = ndarray::Axis(0);
        Dataset {
            images: self.images.select(axis, order).as_standard_layout().into_owned(),
            layout: self.layout,
            labels: self.labels.as_ref().map(|l| l.select(axis, order)),
            class_ids: self.class_ids,
            origins: order.iter().map(|&i| self.origins[i].clone()).collect(),
            ignore_label: self.ignore_label,
        }
    }

    /// The labels as `N x H x W` class indices (`N x 1 x 1` class ids), each checked to be an
    /// integer in `0..classes`.
    pub fn checked_labels(&self, classes: usize) -> Result<Option<Array3<u8>>> {
        let Some(labels) = &self.labels else {
            return Ok(None);
        };
        if let Some(l) = self.ignore_label.filter(|&l| usize::from(l) < classes) {
            return Err(UserError::BadFlag {
                flag: "--ignore-label",
                reason: format!(
                    "{l} is one of the model's {classes} classes (0..{}); give the value that marks pixels not to score",
                    classes - 1
                ),
            }
            .into());
        }
        let ignored = |v: f64| self.ignore_label.is_some_and(|l| v == f64::from(l));
        let w = labels.dim().2;
        // Where a label is: a pixel of a map (a class id is the image's own).
        let at = |y: usize, x: usize| if self.class_ids { String::new() } else { format!(" at pixel {}", y * w + x) };
        for ((i, y, x), v) in labels.indexed_iter() {
            if v.fract() != 0.0 || !v.is_finite() {
                return Err(UserError::BadData(format!(
                    "labels must be class numbers: {} has label {v}{} (not an integer)",
                    self.origins[i],
                    at(y, x)
                ))
                .into());
            }
            let in_range = v >= 0.0 && (v as usize) < classes && v < 256.0;
            if !in_range && !ignored(v) {
                // A value past the classes that fits a byte may mark pixels not to score (a
                // negative one cannot be given to --ignore-label: no hint).
                let hint = match self.ignore_label {
                    None if (0.0..256.0).contains(&v) && !self.class_ids => {
                        format!("; if {v} marks pixels not to score (as 255 does in VOC-style masks), pass --ignore-label {v}")
                    }
                    _ => String::new(),
                };
                return Err(UserError::BadData(format!(
                    "labels out of range: {} has label {v}{} but the model has {classes} classes (0..{}){hint}",
                    self.origins[i],
                    at(y, x),
                    classes.saturating_sub(1)
                ))
                .into());
            }
        }
        let class = |v: f64| if ignored(v) { IGNORED } else { v as u8 };
        Ok(Some(match labels {
            Values::F32(l) => l.mapv(|v| class(f64::from(v))),
            Values::F64(l) => l.mapv(class),
        }))
    }
}

/// The most values the preprocessed images may hold (images x channels x height x width,
/// as fed): 2^31, 8 GiB of float32; checked before they are allocated.
pub const MAX_DATASET_VALUES: usize = 1 << 31;

/// Refuse samples that, fed to `spec` (its fixed size, else the first sample's), would
/// hold more than [`MAX_DATASET_VALUES`]; [`prepare`] checks it before allocating, and an
/// audit right after loading, before any of it is fed.
pub fn check_fed_size(samples: &[Sample], spec: &InputSpec) -> Result<()> {
    let Some(first) = samples.first() else { return Ok(()) };
    let h = spec.height.unwrap_or(first.height());
    let w = spec.width.unwrap_or(first.width());
    let c = spec.channels.unwrap_or(first.channels());
    let values = [c, h, w].iter().try_fold(samples.len(), |n, &d| n.checked_mul(d));
    if values.is_none_or(|v| v > MAX_DATASET_VALUES) {
        return Err(UserError::BadData(format!(
            "{} images of {c} x {h} x {w} are more than the {MAX_DATASET_VALUES} values (2^31, 8 GiB of float32) a data set may hold as fed: audit a subset or at a smaller --size",
            samples.len()
        ))
        .into());
    }
    Ok(())
}

/// Refuse a model input whose fixed batch, fed the samples' images (its fixed size, else
/// the first sample's), would hold more than [`MAX_DATASET_VALUES`] in one run: a run with
/// fewer images left is zero-padded to the fixed batch, so each run allocates all of it.
/// The reason, for an error that names the model.
pub fn check_fixed_batch(samples: &[Sample], spec: &InputSpec) -> Result<(), String> {
    let (Some(batch), Some(first)) = (spec.batch, samples.first()) else { return Ok(()) };
    let h = spec.height.unwrap_or(first.height());
    let w = spec.width.unwrap_or(first.width());
    let c = spec.channels.unwrap_or(first.channels());
    let values = [c, h, w].iter().try_fold(batch, |n, &d| n.checked_mul(d));
    if values.is_some_and(|v| v <= MAX_DATASET_VALUES) {
        return Ok(());
    }
    Err(format!(
        "the input '{}' has a fixed batch of {batch}: every run feeds {batch} images of {c} x {h} x {w} (padded with \
         zeros), more than the {MAX_DATASET_VALUES} values (2^31, 8 GiB of float32) a data set may hold as fed; \
         export the model with a dynamic batch (or a batch of 1)",
        spec.name
    ))
}

/// Bytes the samples take fed to `spec` (its fixed size, else the first sample's): the
/// float32 images and their labels (float32, or f64 where a label is not a float32).
pub fn fed_bytes(samples: &[Sample], spec: &InputSpec) -> u64 {
    let Some(first) = samples.first() else { return 0 };
    let h = spec.height.unwrap_or(first.height()) as u64;
    let w = spec.width.unwrap_or(first.width()) as u64;
    let c = spec.channels.unwrap_or(first.channels()) as u64;
    let n = samples.len() as u64;
    let images = n.saturating_mul(c).saturating_mul(h).saturating_mul(w).saturating_mul(4);
    let labels = match &first.label {
        None => 0,
        Some(Label::Class(_)) => n.saturating_mul(8),
        Some(Label::Map(_)) => n.saturating_mul(h).saturating_mul(w).saturating_mul(8),
    };
    images.saturating_add(labels)
}

/// Preprocess samples for a model input.
pub fn prepare(samples: &[Sample], spec: &InputSpec, normalize: Normalize, fit: Fit) -> Result<Dataset> {
    let Some(first) = samples.first() else {
        return Err(UserError::BadData("the data set is empty".into()).into());
    };
    let h = spec.height.unwrap_or(first.height());
    let w = spec.width.unwrap_or(first.width());
    let c = spec.channels.unwrap_or(first.channels());
    let with_labels = first.label.is_some();
    let class_ids = matches!(first.label, Some(Label::Class(_)));
    check_fed_size(samples, spec)?;
    // Stored as the model takes it, so every batch stays a zero-copy view; filled through an
    // `N x C x H x W` view either way, so the set is never held twice.
    let mut images = match spec.layout {
        Layout::Nchw => Array4::<f32>::zeros((samples.len(), c, h, w)),
        Layout::Nhwc => Array4::<f32>::zeros((samples.len(), h, w, c)),
    };
    let mut nchw = match spec.layout {
        Layout::Nchw => images.view_mut(),
        Layout::Nhwc => images.view_mut().permuted_axes([0, 3, 1, 2]),
    };
    let (lh, lw) = if class_ids { (1, 1) } else { (h, w) };
    // float32 unless a label is not one (a label that is not a class number, refused later).
    let narrow = samples.iter().all(|s| match &s.label {
        Some(Label::Map(l)) => matches!(l, Values::F32(_)),
        Some(Label::Class(k)) => exact_f32(*k),
        None => true,
    });
    let mut labels = with_labels.then(|| Values::zeros((samples.len(), lh, lw), narrow));
    for (i, sample) in samples.iter().enumerate() {
        if sample.label.is_some() != with_labels {
            return Err(UserError::BadData(format!(
                "{} has {} label map while {} has {}",
                sample.origin,
                if with_labels { "no" } else { "a" },
                first.origin,
                if with_labels { "one" } else { "none" }
            ))
            .into());
        }
        if matches!(sample.label, Some(Label::Class(_))) != class_ids {
            return Err(UserError::BadData(format!(
                "{} and {} are labelled differently: one has a label map, the other a class id",
                first.origin, sample.origin
            ))
            .into());
        }
        let have = sample.channels();
        if have != c && !(have == 1 && c > 1) {
            return Err(UserError::BadData(format!(
                "{} has {have} channels, the model's input '{}' takes {c}",
                sample.origin, spec.name
            ))
            .into());
        }
        // One image at a time as f64, the values exactly as stored.
        let mut img = sample.image.to_f64();
        if let Some((at, v)) = img.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(UserError::BadData(format!(
                "{} has a non-finite pixel ({v}) at channel {}, row {}, column {}: fix or drop the image",
                sample.origin, at.0, at.1, at.2
            ))
            .into());
        }
        normalize_image(&mut img, normalize);
        for ch in 0..c {
            let fitted = fit_plane(img.index_axis(Axis(0), ch % have), (h, w), fit, false, &sample.origin)?;
            // The model takes float32: a value beyond its range would reach it as inf.
            if let Some((at, v)) = fitted.indexed_iter().find(|(_, v)| (**v as f32).is_infinite()) {
                return Err(UserError::BadData(format!(
                    "{} has a pixel ({v:e}) beyond float32's range after --normalize {} at channel {ch}, row {}, column {}: the model takes float32; scale the data (--normalize zscore or minmax)",
                    sample.origin,
                    clap::ValueEnum::to_possible_value(&normalize).map_or(String::new(), |v| v.get_name().to_string()),
                    at.0,
                    at.1
                ))
                .into());
            }
            nchw.slice_mut(s![i, ch, .., ..]).zip_mut_with(&fitted, |d, &v| *d = v as f32);
        }
        match (labels.as_mut(), &sample.label) {
            (Some(out), Some(Label::Map(l))) => {
                out.assign_at(Axis(0), i, &fit_plane(l.to_f64().view(), (h, w), fit, true, &sample.origin)?);
            }
            (Some(out), Some(Label::Class(k))) => out.assign_at(Axis(0), i, &ndarray::arr2(&[[*k]])),
            _ => {}
        }
    }
    let origins = samples.iter().map(|s| s.origin.clone()).collect();
    Ok(Dataset { images, layout: spec.layout, labels, class_ids, origins, ignore_label: None })
}

/// Normalize one image (all its channels together). Sums run in element order, as before
/// the move to ndarray, so results are bit-identical.
fn normalize_image(x: &mut Array3<f64>, how: Normalize) {
    normalize_once(x, how, true);
}

/// [`normalize_image`]; `rescale`: whether an overflow may rescale the image and start again
/// (once: an empty image's min-max range is -inf whatever the scale, and recursing on it
/// overflowed the stack).
fn normalize_once(x: &mut Array3<f64>, how: Normalize, rescale: bool) {
    let n = x.len().max(1) as f64;
    match how {
        Normalize::None => {}
        Normalize::Div255 => x.mapv_inplace(|v| v / 255.0),
        // `Auto` is resolved to one of the others before preparing; z-score is its default.
        Normalize::Zscore | Normalize::Auto => {
            let mean = x.iter().sum::<f64>() / n;
            let std = (x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
            if rescale && !(mean.is_finite() && std.is_finite()) {
                return rescaled(x, how);
            }
            let d = if std > 0.0 { std } else { 1.0 };
            x.mapv_inplace(|v| (v - mean) / d);
        }
        Normalize::Minmax => {
            let lo = x.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if rescale && !x.is_empty() && !(hi - lo).is_finite() {
                return rescaled(x, how);
            }
            let d = if hi > lo { hi - lo } else { 1.0 };
            x.mapv_inplace(|v| (v - lo) / d);
        }
    }
}

/// z-score or min-max of finite values so large (beyond about 1e154) that a sum, a square or
/// `max - min` overflows f64: both are unchanged by scaling, so scale the image to at most 1
/// in magnitude first. (The overflow made the standard deviation infinite and every pixel
/// 0, silently: label-free, every swap then agreed with the baseline.)
fn rescaled(x: &mut Array3<f64>, how: Normalize) {
    let largest = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if largest > 0.0 {
        x.mapv_inplace(|v| v / largest);
    }
    normalize_once(x, how, false);
}

/// Fit one plane to `to` = (height, width).
fn fit_plane(src: ArrayView2<f64>, to: (usize, usize), fit: Fit, nearest: bool, origin: &str) -> Result<Array2<f64>> {
    let from = src.dim();
    if from == to {
        return Ok(src.to_owned());
    }
    let (fh, fw) = from;
    let (th, tw) = to;
    let mismatch = |why: &str| -> anyhow::Error {
        UserError::BadData(format!("{origin} is {fh}x{fw}, the model takes {th}x{tw}: {why}")).into()
    };
    match fit {
        _ if fh == 0 || fw == 0 || th == 0 || tw == 0 => Err(mismatch("an empty image cannot be fitted")),
        Fit::None => Err(mismatch("pass --fit resize, crop or pad")),
        Fit::Crop if fh < th || fw < tw => {
            Err(mismatch("--fit crop needs data at least as large as the model's input"))
        }
        Fit::Pad if fh > th || fw > tw => Err(mismatch("--fit pad needs data no larger than the model's input")),
        Fit::Crop => {
            let (oy, ox) = ((fh - th) / 2, (fw - tw) / 2);
            Ok(src.slice(s![oy..oy + th, ox..ox + tw]).to_owned())
        }
        Fit::Pad => {
            let (oy, ox) = ((th - fh) / 2, (tw - fw) / 2);
            let mut out = Array2::zeros(to);
            out.slice_mut(s![oy..oy + fh, ox..ox + fw]).assign(&src);
            Ok(out)
        }
        Fit::Resize => Ok(resize(src, to, nearest)),
    }
}

/// Resize with half-pixel centers (as `align_corners=False`): bilinear or nearest.
fn resize(src: ArrayView2<f64>, (th, tw): (usize, usize), nearest: bool) -> Array2<f64> {
    let (fh, fw) = src.dim();
    let (sy, sx) = (fh as f64 / th as f64, fw as f64 / tw as f64);
    Array2::from_shape_fn((th, tw), |(y, x)| {
        if nearest {
            return src
                [[(((y as f64 + 0.5) * sy) as usize).min(fh - 1), (((x as f64 + 0.5) * sx) as usize).min(fw - 1)]];
        }
        let fy = ((y as f64 + 0.5) * sy - 0.5).clamp(0.0, (fh - 1) as f64);
        let fx = ((x as f64 + 0.5) * sx - 0.5).clamp(0.0, (fw - 1) as f64);
        let (y0, x0) = (fy.floor() as usize, fx.floor() as usize);
        let (y1, x1) = ((y0 + 1).min(fh - 1), (x0 + 1).min(fw - 1));
        let (dy, dx) = (fy - y0 as f64, fx - x0 as f64);
        let top = src[[y0, x0]] * (1.0 - dx) + src[[y0, x1]] * dx;
        let bot = src[[y1, x0]] * (1.0 - dx) + src[[y1, x1]] * dx;
        top * (1.0 - dy) + bot * dy
    })
}

#[cfg(test)]
mod tests {
    use ndarray::{array, Array};

    use super::*;

    #[test]
    fn min_max_of_an_empty_image_overflowed_the_stack() {
        // Its range is -inf at any scale: the overflow rescue recursed without end (the npy
        // fuzz corpus found it in CI).
        for how in [Normalize::Minmax, Normalize::Zscore, Normalize::None, Normalize::Div255] {
            let mut x = Array3::<f64>::zeros((1, 0, 4));
            normalize_image(&mut x, how);
            assert!(x.is_empty());
        }
        // An all-zero image beyond the rescue's reach stays as the plain path leaves it.
        let mut z = Array3::<f64>::zeros((1, 2, 2));
        normalize_image(&mut z, Normalize::Minmax);
        assert!(z.iter().all(|&v| v == 0.0));
    }

    fn sample(image: Array2<f64>, label: Array2<f64>) -> Sample {
        Sample { image: image.insert_axis(Axis(0)).into(), label: Some(Label::Map(label.into())), origin: "t#0".into() }
    }

    fn spec(c: usize, h: usize, w: usize) -> InputSpec {
        InputSpec {
            name: "x".into(),
            batch: None,
            channels: Some(c),
            height: Some(h),
            width: Some(w),
            layout: Layout::Nchw,
        }
    }

    #[test]
    fn zscore_and_channel_replication() {
        let s = sample(array![[1.0, 3.0]], array![[0.0, 1.0]]);
        let d = prepare(&[s], &spec(3, 1, 2), Normalize::Zscore, Fit::None).unwrap();
        assert_eq!(d.images, Array::from_shape_vec((1, 3, 1, 2), vec![-1.0, 1.0, -1.0, 1.0, -1.0, 1.0]).unwrap());
        assert!(d.images.is_standard_layout());
        assert_eq!((d.n(), d.c(), d.h(), d.w()), (1, 3, 1, 2));
    }

    #[test]
    fn channels_last_input_stores_n_h_w_c() {
        let s = Sample {
            image: Array::from_shape_vec((2, 1, 2), vec![1.0, 2.0, 10.0, 20.0]).unwrap().into(),
            label: None,
            origin: "t#0".into(),
        };
        let nhwc = InputSpec { layout: Layout::Nhwc, ..spec(2, 1, 2) };
        let d = prepare(&[s], &nhwc, Normalize::None, Fit::None).unwrap();
        assert_eq!(d.images.dim(), (1, 1, 2, 2));
        assert!(d.images.is_standard_layout());
        // Pixel (0, 0) holds channels 0 and 1, then pixel (0, 1).
        assert_eq!(d.images.as_slice().unwrap(), &[1.0, 10.0, 2.0, 20.0]);
        assert_eq!((d.n(), d.c(), d.h(), d.w()), (1, 2, 1, 2));
    }

    #[test]
    fn minmax_spans_zero_to_one() {
        let s = sample(array![[2.0, 4.0], [6.0, 10.0]], array![[0.0, 0.0], [0.0, 0.0]]);
        let d = prepare(&[s], &spec(1, 2, 2), Normalize::Minmax, Fit::None).unwrap();
        assert_eq!(d.images.as_slice().unwrap(), &[0.0, 0.25, 0.5, 1.0]);
    }

    #[test]
    fn pad_crop_and_resize() {
        let s = sample(array![[1.0, 2.0], [3.0, 4.0]], array![[0.0, 1.0], [2.0, 3.0]]);
        let d = prepare(std::slice::from_ref(&s), &spec(1, 4, 4), Normalize::None, Fit::Pad).unwrap();
        assert_eq!(d.images.slice(s![0, 0, 1, ..]), array![0.0, 1.0, 2.0, 0.0]);
        let d = prepare(std::slice::from_ref(&s), &spec(1, 1, 1), Normalize::None, Fit::Crop).unwrap();
        assert_eq!(d.images.as_slice().unwrap(), &[1.0]);
        let d = prepare(std::slice::from_ref(&s), &spec(1, 4, 4), Normalize::None, Fit::Resize).unwrap();
        assert_eq!(d.images[[0, 0, 0, 0]], 1.0);
        assert_eq!(d.images[[0, 0, 3, 3]], 4.0);
        assert_eq!(d.labels.unwrap().at((0, 3, 3)), 3.0);
        let e = prepare(&[s], &spec(1, 4, 4), Normalize::None, Fit::None).unwrap_err();
        assert!(e.to_string().contains("2x2, the model takes 4x4"));
    }

    #[test]
    fn odd_pad_and_crop_offsets_round_down() {
        // 3 -> 6 pads 1 above (3/2 = 1), 2 below; 5 -> 2 crops rows 1..3 ((5-2)/2 = 1).
        let s = sample(array![[1.0], [2.0], [3.0]], array![[0.0], [0.0], [0.0]]);
        let d = prepare(&[s], &spec(1, 6, 1), Normalize::None, Fit::Pad).unwrap();
        assert_eq!(d.images.as_slice().unwrap(), &[0.0, 1.0, 2.0, 3.0, 0.0, 0.0]);
        let s = sample(array![[1.0], [2.0], [3.0], [4.0], [5.0]], array![[0.0], [0.0], [0.0], [0.0], [0.0]]);
        let d = prepare(&[s], &spec(1, 2, 1), Normalize::None, Fit::Crop).unwrap();
        assert_eq!(d.images.as_slice().unwrap(), &[2.0, 3.0]);
    }

    #[test]
    fn class_id_labels_stay_one_per_image_whatever_the_fit() {
        let s = |k: f64| Sample {
            image: Array::zeros((1, 2, 2)).into(),
            label: Some(Label::Class(k)),
            origin: "t#0".into(),
        };
        let d = prepare(&[s(3.0), s(0.0)], &spec(1, 4, 4), Normalize::None, Fit::Pad).unwrap();
        assert!(d.class_ids);
        assert_eq!(d.checked_labels(4).unwrap().unwrap(), ndarray::array![[[3u8]], [[0]]]);
        let e = d.checked_labels(3).unwrap_err().to_string();
        assert!(e.contains("t#0 has label 3 but the model has 3 classes"), "{e}");
        let mixed = sample(array![[0.0, 0.0], [0.0, 0.0]], array![[0.0, 0.0], [0.0, 0.0]]);
        let e = prepare(&[s(1.0), mixed], &spec(1, 2, 2), Normalize::None, Fit::None).unwrap_err().to_string();
        assert!(e.contains("labelled differently"), "{e}");
    }

    #[test]
    fn labels_out_of_range_are_named() {
        let s = sample(array![[0.0, 0.0]], array![[0.0, 4.0]]);
        let d = prepare(&[s], &spec(1, 1, 2), Normalize::None, Fit::None).unwrap();
        let e = d.checked_labels(4).unwrap_err().to_string();
        assert!(e.contains("label 4") && e.contains("t#0") && e.contains("pixel 1"), "{e}");
        assert_eq!(d.checked_labels(5).unwrap().unwrap(), array![[[0u8, 4]]]);
    }
}
