//! Validation data: loading (`.npz`, `.npy` pairs, NIfTI folders, PNG folders) and
//! preprocessing to the model's input (normalization, fit, channel replication).

mod arrays;
pub mod nifti;
pub mod npy;
pub mod png_folder;
pub mod preprocess;
pub mod standardize;
#[cfg(test)]
mod tests;

use std::path::Path;

use anyhow::Result;
use ndarray::{Array2, Array3, Axis};

pub use arrays::{array_layout, LayoutHint};
pub use preprocess::{Fit, InputSpec, Normalize};

use crate::error::{bad_file, UserError};

/// What one image is labelled with (as stored; checked later against the model's classes).
#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    /// `height x width` class labels, one per pixel (segmentation).
    Map(Array2<f64>),
    /// One class id for the whole image (classification; `.npz`/`.npy` labels of shape N).
    Class(f64),
}

/// One loaded image with its optional label, before preprocessing.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// `channels x height x width` values as stored.
    pub image: Array3<f64>,
    /// Its label map or class id.
    pub label: Option<Label>,
    /// Where it came from, for messages (`file#slice`).
    pub origin: String,
}

impl Sample {
    /// Channels.
    pub fn channels(&self) -> usize {
        self.image.dim().0
    }

    /// Rows.
    pub fn height(&self) -> usize {
        self.image.dim().1
    }

    /// Columns.
    pub fn width(&self) -> usize {
        self.image.dim().2
    }
}

/// The most images one data set may hold: 2^20. Each is a forward pass per swap, and each
/// costs memory of its own before any pixel: a volume of 1 x 1 x 32767 x 4096 voxels is
/// 134 million slices (about 40 GB of bookkeeping) from a 130 KB `.nii.gz`.
pub const MAX_IMAGES: usize = 1 << 20;

/// Refuse `have` images already loaded plus `more` from `path` beyond [`MAX_IMAGES`],
/// before they are split into samples.
pub fn check_image_count(have: usize, more: usize, path: &Path) -> Result<()> {
    let n = have.saturating_add(more);
    if n > MAX_IMAGES {
        return Err(bad_file(
            path,
            format!("{n} images ({more} here), more than the {MAX_IMAGES} (2^20) a data set may hold: audit a subset"),
        ));
    }
    Ok(())
}

/// The most values a NIfTI or PNG folder may hold as loaded, before fitting: 2^30 (8 GiB
/// as the f64 values the tool holds; the limit of one `.npz` array). Each file is bounded
/// on its own from its header; this bounds a folder of many (a thousand 8192 x 8192 PNGs
/// of a few KB each were half a terabyte). Summed from the headers before any file's data
/// is read.
pub const MAX_LOADED_VALUES: u64 = 1 << 30;

/// Refuse a folder whose files up to `path` (images and labels) declare `have` values, more
/// than [`MAX_LOADED_VALUES`].
fn check_loaded_values(have: u64, path: &Path) -> Result<()> {
    if have > MAX_LOADED_VALUES {
        return Err(bad_file(
            path,
            format!(
                "the files up to this one (images and labels) declare {have} values, more than the {MAX_LOADED_VALUES} \
                 (2^30) a data set may hold as loaded; refused before reading them: audit a subset"
            ),
        ));
    }
    Ok(())
}

/// Everything loaded from `--data` (and `--labels` when it is a file).
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The samples in a fixed order.
    pub samples: Vec<Sample>,
    /// `npz`, `npy`, `nifti` or `png`.
    pub format: &'static str,
}

/// Load a data set. `labels` is a `.npy` file for `.npy` images (else `None`). A 4-D array
/// whose channel axis is ambiguous is read channels-first (see [`load_for`]).
pub fn load(data: &Path, labels: Option<&Path>) -> Result<Loaded> {
    load_for(data, labels, &LayoutHint::default())
}

/// Load a data set for a model: `hint` (the model's channels and input layout) decides
/// where the channel axis of a 4-D `.npz`/`.npy` array is ([`array_layout`]).
pub fn load_for(data: &Path, labels: Option<&Path>, hint: &LayoutHint) -> Result<Loaded> {
    if !data.exists() {
        return Err(
            UserError::Unreadable { path: data.into(), reason: "no such file or folder (--data)".into() }.into()
        );
    }
    let name = data.to_string_lossy().to_lowercase();
    if labels.is_some() && !name.ends_with(".npy") {
        return Err(UserError::BadFlag {
            flag: "--labels",
            reason: "a labels file goes with .npy images; .npz, NIfTI and PNG data carry their own labels".into(),
        }
        .into());
    }
    let loaded = if data.is_dir() {
        if data.join("images").is_dir() {
            Loaded { samples: load_png(data)?, format: "png" }
        } else {
            Loaded { samples: load_nifti(data)?, format: "nifti" }
        }
    } else if name.ends_with(".npz") {
        Loaded { samples: npz_samples(&mut npy::Npz::open(data)?, data, hint)?, format: "npz" }
    } else if name.ends_with(".npy") {
        let read = |p: &Path| crate::input::read(p).map_err(anyhow::Error::from);
        let images = read(data)?;
        let labels = labels.map(|p| read(p).map(|b| (b, p))).transpose()?;
        let samples = npy_samples(&images, data, labels.as_ref().map(|(b, p)| (b.as_slice(), *p)), hint)?;
        Loaded { samples, format: "npy" }
    } else {
        return Err(bad_file(
            data,
            "unknown data format: expected .npz, .npy, a NIfTI folder or a PNG folder (images/, masks/)",
        ));
    };
    if loaded.samples.is_empty() {
        return Err(bad_file(data, "the data set is empty"));
    }
    Ok(loaded)
}

/// The samples of an `.npz` archive: its `images` and, when it has them, `labels` (`path`
/// names it in messages). [`load`] reads files this way; the fuzz target `npz` passes bytes
/// ([`npy::Npz::from_bytes`]).
pub fn npz_samples<R: std::io::Read + std::io::Seek>(
    npz: &mut npy::Npz<R>,
    path: &Path,
    hint: &LayoutHint,
) -> Result<Vec<Sample>> {
    let images = npz.require("images")?;
    // The labels' shape is checked from their header before their data is read.
    if let Some(shape) = npz.shape("labels")? {
        arrays::check_labels_fit(path, images.shape(), &shape, hint)?;
    }
    let labels = npz.get("labels")?;
    arrays::samples(path, images, labels, hint)
}

/// The samples of `.npy` images (`path` names them in messages) and labels, given as the
/// files' bytes: what [`load`] makes of the files ([`npy::read_npy`] is `std::fs::read`
/// and [`npy::parse_npy`]); the fuzz target `npy` enters here.
pub fn npy_samples(
    images: &[u8],
    path: &Path,
    labels: Option<(&[u8], &Path)>,
    hint: &LayoutHint,
) -> Result<Vec<Sample>> {
    let parse = |bytes: &[u8], p: &Path| npy::parse_npy(bytes).map_err(|e| bad_file(p, format!("{e:#}")));
    let images = parse(images, path)?;
    if let Some((b, p)) = labels {
        // The labels' shape is checked from their header before their data is decoded.
        if let Some(shape) = npy::declared_shape(b).map_err(|e| bad_file(p, format!("{e:#}")))? {
            arrays::check_labels_fit(path, images.shape(), &shape, hint)?;
        }
    }
    let labels = labels.map(|(b, p)| parse(b, p)).transpose()?;
    arrays::samples(path, images, labels, hint)
}

fn load_nifti(dir: &Path) -> Result<Vec<Sample>> {
    let pairs = nifti::folder_pairs(dir)?;
    if pairs.is_empty() {
        return Err(bad_file(
            dir,
            "no NIfTI pairs (X.nii.gz with X_gt.nii.gz) and no images/ folder: is this a data folder?",
        ));
    }
    let mut out = Vec::new();
    check_image_count(0, pairs.len(), dir)?;
    let mut values = 0u64;
    for (img, gt) in &pairs {
        values = values.saturating_add(nifti::declared_voxels(img)?).saturating_add(nifti::declared_voxels(gt)?);
        check_loaded_values(values, img)?;
    }
    for (img, gt) in pairs {
        let v = nifti::read(&img)?;
        check_image_count(out.len(), v.dim().2, &img)?;
        let g = nifti::read(&gt)?;
        if v.shape() != g.shape() {
            return Err(bad_file(
                &gt,
                format!("label volume {:?} does not match image volume {:?}", g.shape(), v.shape()),
            ));
        }
        for k in 0..v.dim().2 {
            out.push(Sample {
                image: v.index_axis(Axis(2), k).insert_axis(Axis(0)).as_standard_layout().into_owned(),
                label: Some(Label::Map(g.index_axis(Axis(2), k).as_standard_layout().into_owned())),
                origin: format!("{}#{k}", img.display()),
            });
        }
    }
    Ok(out)
}

fn load_png(dir: &Path) -> Result<Vec<Sample>> {
    let mut out = Vec::new();
    let pairs = png_folder::folder_pairs(dir)?;
    check_image_count(0, pairs.len(), dir)?;
    let mut values = 0u64;
    for (img, mask) in &pairs {
        values = values.saturating_add(png_folder::declared_values(img)?);
        if let Some(m) = mask {
            values = values.saturating_add(png_folder::declared_values(m)?);
        }
        check_loaded_values(values, img)?;
    }
    for (img, mask) in pairs {
        let image = png_folder::read(&img)?;
        let label = match mask {
            Some(m) => {
                let l = png_folder::read(&m)?;
                let (_, h, w) = image.dim();
                if l.dim() != (1, h, w) {
                    return Err(bad_file(&m, format!("mask must be a gray {h}x{w} image")));
                }
                Some(Label::Map(l.index_axis_move(Axis(0), 0)))
            }
            None => None,
        };
        out.push(Sample { image, label, origin: img.display().to_string() });
    }
    Ok(out)
}
