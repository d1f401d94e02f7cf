//! Images and labels stored as arrays (`.npz`, `.npy`): `N x H x W`, `N x C x H x W` or
//! `N x H x W x C` images, `N x H x W` labels (or with a channel axis of 1 either side) or
//! one class id per image (`N`, or `N x 1`), split into `C x H x W` samples.

use std::path::Path;

use anyhow::Result;
#[cfg(test)]
use ndarray::ArrayD;
use ndarray::Ix1;

use super::values::Values;
use super::{Label, Sample};
use crate::error::bad_file;
use crate::model::layout::Layout;

/// What the model says about where a 4-D array's channel axis is likely to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayoutHint {
    /// The model's input channels, when fixed.
    pub channels: Option<usize>,
    /// The model's input layout (detected, or `--layout`): decides ambiguous arrays.
    pub layout: Layout,
}

impl Default for LayoutHint {
    fn default() -> Self {
        LayoutHint { channels: None, layout: Layout::Nchw }
    }
}

/// Where a 4-D image array of shape `[n, a, b, c]` keeps its channels; the first rule that
/// decides wins:
/// 1. the model's channel count `k` (when fixed): `a == k != c` is channels-first,
///    `c == k != a` channels-last;
/// 2. a channel-like size (1, 3 or 4) at one end only: at `a` channels-first, at `c`
///    channels-last;
/// 3. otherwise (both ends or neither look like channels) the model's input layout, which
///    `--layout` sets.
pub fn array_layout(shape: [usize; 4], hint: &LayoutHint) -> Layout {
    let [_, a, _, c] = shape;
    if let Some(k) = hint.channels {
        if a == k && c != k {
            return Layout::Nchw;
        }
        if c == k && a != k {
            return Layout::Nhwc;
        }
    }
    let small = |d: usize| matches!(d, 1 | 3 | 4);
    match (small(a), small(c)) {
        (true, false) => Layout::Nchw,
        (false, true) => Layout::Nhwc,
        _ => hint.layout,
    }
}

/// Images of shape `images` as `[N, C, H, W]`, with the layout they are stored in, or why
/// they cannot be read so.
fn image_dims(path: &Path, images: &[usize], hint: &LayoutHint) -> Result<([usize; 4], Layout)> {
    match *images {
        [n, h, w] => Ok(([n, 1, h, w], Layout::Nchw)),
        [n, a, b, c] => Ok(match array_layout([n, a, b, c], hint) {
            Layout::Nchw => ([n, a, b, c], Layout::Nchw),
            Layout::Nhwc => ([n, c, a, b], Layout::Nhwc),
        }),
        _ => Err(bad_file(
            path,
            format!("images must be N x H x W, N x C x H x W or N x H x W x C, found shape {images:?}"),
        )),
    }
}

/// Labels of shape `labels` fit images of shape `images`: one class id per image (`N` or
/// `N x 1`), or `N x H x W` maps (a channel axis of 1 either side allowed). Checked from the
/// headers before a label array is read, so that a small compressed file declaring a
/// billion labels beside eight images is refused before it is inflated.
pub fn check_labels_fit(path: &Path, images: &[usize], labels: &[usize], hint: &LayoutHint) -> Result<()> {
    let ([n, _, h, w], _) = image_dims(path, images, hint)?;
    let class_ids = matches!(*labels, [ln] | [ln, 1] if ln == n);
    let maps = matches!(*labels, [ln, lh, lw] if (ln, lh, lw) == (n, h, w))
        || matches!(*labels, [ln, 1, lh, lw] if (ln, lh, lw) == (n, h, w))
        || matches!(*labels, [ln, lh, lw, 1] if (ln, lh, lw) == (n, h, w));
    if class_ids || maps {
        return Ok(());
    }
    Err(bad_file(
        path,
        format!("labels of shape {labels:?} do not fit images of {n} x {h} x {w} (need N x H x W label maps, or N class ids)"),
    ))
}

/// Cuts arrays handed over one image (index of the first axis) at a time into samples: the
/// images first, then the labels, if any. Each image is held once, as [`Values`]; the whole
/// array never is.
pub struct Cutter<'a> {
    path: &'a Path,
    /// The images' shape as stored.
    shape: Vec<usize>,
    /// `[n, c, h, w]`.
    dims: [usize; 4],
    /// How the images are stored.
    layout: Layout,
    /// Labels are one class id per image.
    class_ids: bool,
    /// Labels handed over so far.
    labelled: usize,
    samples: Vec<Sample>,
}

impl<'a> Cutter<'a> {
    /// A cutter for images of stored shape `images` (`path` names them in messages).
    pub fn new(path: &'a Path, images: &[usize], hint: &LayoutHint) -> Result<Self> {
        let (dims, layout) = image_dims(path, images, hint)?;
        super::check_image_count(0, dims[0], path)?;
        Ok(Cutter {
            path,
            shape: images.to_vec(),
            dims,
            layout,
            class_ids: false,
            labelled: 0,
            samples: Vec::with_capacity(dims[0]),
        })
    }

    /// The next image's values, in the order they are stored.
    pub fn image(&mut self, values: Values<Ix1>) -> Result<()> {
        let [_, c, h, w] = self.dims;
        let i = self.samples.len();
        let image = values
            .into_chw((c, h, w), self.layout == Layout::Nhwc)
            .map_err(|e| bad_file(self.path, format!("image {i}: {e}")))?;
        self.samples.push(Sample { image, label: None, origin: format!("{}#{i}", self.path.display()) });
        Ok(())
    }

    /// Labels of shape `labels` follow (checked to fit the images first).
    pub fn start_labels(&mut self, labels: &[usize], hint: &LayoutHint) -> Result<()> {
        check_labels_fit(self.path, &self.shape, labels, hint)?;
        self.class_ids = matches!(*labels, [ln] | [ln, 1] if ln == self.dims[0]);
        Ok(())
    }

    /// The next image's labels: its class id, or its `H x W` map (any channel axis of 1
    /// dropped).
    pub fn label(&mut self, values: Values<Ix1>) -> Result<()> {
        let [_, _, h, w] = self.dims;
        let i = self.labelled;
        let label = match self.class_ids {
            true => Label::Class(values.iter().next().unwrap_or(f64::NAN)),
            false => Label::Map(values.into_hw((h, w)).map_err(|e| bad_file(self.path, format!("labels {i}: {e}")))?),
        };
        let Some(sample) = self.samples.get_mut(i) else {
            return Err(bad_file(self.path, format!("more label maps than the {} images", self.dims[0])));
        };
        sample.label = Some(label);
        self.labelled += 1;
        Ok(())
    }

    /// The samples, once every image (and every label, when there are labels) came.
    pub fn finish(self) -> Result<Vec<Sample>> {
        let n = self.dims[0];
        if self.samples.len() != n || !(self.labelled == 0 || self.labelled == n) {
            return Err(bad_file(
                self.path,
                format!("{} images and {} labels read of {n} declared", self.samples.len(), self.labelled),
            ));
        }
        Ok(self.samples)
    }
}

/// Hand the rows (indices of the first axis) of an array to `each`, as [`Cutter`] takes them.
#[cfg(test)]
fn for_each_row(a: &ArrayD<f64>, mut each: impl FnMut(Values<Ix1>) -> Result<()>) -> Result<()> {
    if a.ndim() == 0 {
        return each(Values::narrowed(a.iter().copied().collect()));
    }
    a.outer_iter().try_for_each(|row| each(Values::narrowed(row.iter().copied().collect())))
}

/// Samples from an image array and an optional label array held whole (the loaders stream
/// theirs through a [`Cutter`] instead).
#[cfg(test)]
pub fn samples(
    path: &Path,
    images: ArrayD<f64>,
    labels: Option<ArrayD<f64>>,
    hint: &LayoutHint,
) -> Result<Vec<Sample>> {
    let mut cut = Cutter::new(path, images.shape(), hint)?;
    for_each_row(&images, |v| cut.image(v))?;
    if let Some(l) = labels {
        cut.start_labels(l.shape(), hint)?;
        for_each_row(&l, |v| cut.label(v))?;
    }
    cut.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTO: LayoutHint = LayoutHint { channels: None, layout: Layout::Nchw };

    #[test]
    fn channel_axis_of_a_4d_array() {
        assert_eq!(array_layout([5, 1, 64, 64], &AUTO), Layout::Nchw);
        assert_eq!(array_layout([5, 64, 64, 1], &AUTO), Layout::Nhwc);
        assert_eq!(array_layout([5, 64, 64, 3], &AUTO), Layout::Nhwc);
        // The model's channel count decides first: 4 channels at the end, not 1 in front.
        let four = LayoutHint { channels: Some(4), layout: Layout::Nchw };
        assert_eq!(array_layout([5, 1, 8, 4], &four), Layout::Nhwc);
        assert_eq!(array_layout([5, 1, 8, 4], &AUTO), Layout::Nchw, "ambiguous: the model's layout");
        // Ambiguous both ways: the model's layout.
        let nhwc = LayoutHint { channels: None, layout: Layout::Nhwc };
        assert_eq!(array_layout([5, 3, 3, 3], &nhwc), Layout::Nhwc);
        assert_eq!(array_layout([5, 3, 3, 3], &AUTO), Layout::Nchw);
        assert_eq!(array_layout([5, 8, 8, 8], &nhwc), Layout::Nhwc);
    }

    #[test]
    fn channels_last_arrays_split_into_c_h_w_samples() {
        // 1 image, 2 x 2 pixels, 3 channels: value = 100 * row + 10 * column + channel.
        let v: Vec<f64> = (0..12).map(|i| (100 * (i / 6) + 10 * ((i / 3) % 2) + i % 3) as f64).collect();
        let images = ArrayD::from_shape_vec(vec![1, 2, 2, 3], v).unwrap();
        let labels = ArrayD::from_shape_vec(vec![1, 2, 2, 1], vec![0.0, 1.0, 2.0, 3.0]).unwrap();
        let s = samples(Path::new("d.npz"), images, Some(labels), &AUTO).unwrap();
        assert_eq!(s[0].image.dim(), (3, 2, 2));
        assert_eq!(s[0].image.at((2, 1, 0)), 102.0);
        assert_eq!(s[0].image.at((1, 0, 1)), 11.0);
        assert!(matches!(s[0].image, Values::F32(_)), "small integers are held as float32");
        assert_eq!(s[0].label, Some(Label::Map(ndarray::array![[0.0, 1.0], [2.0, 3.0]].into())));
    }

    #[test]
    fn one_class_id_per_image() {
        let images = ArrayD::from_shape_vec(vec![3, 2, 2], vec![0.0; 12]).unwrap();
        for shape in [vec![3], vec![3, 1]] {
            let labels = ArrayD::from_shape_vec(shape, vec![7.0, 0.0, 2.0]).unwrap();
            let s = samples(Path::new("d.npz"), images.clone(), Some(labels), &AUTO).unwrap();
            let got: Vec<_> = s.iter().map(|s| s.label.clone()).collect();
            assert_eq!(got, [7.0, 0.0, 2.0].map(|c| Some(Label::Class(c))));
        }
        // N x H x W images with 2 x 2 labels of another count are refused, naming both shapes.
        let wrong = ArrayD::from_shape_vec(vec![4], vec![0.0; 4]).unwrap();
        let e = samples(Path::new("d.npz"), images, Some(wrong), &AUTO).unwrap_err().to_string();
        assert!(e.contains("[4]") && e.contains("N class ids"), "{e}");
    }
}
