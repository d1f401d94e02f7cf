//! Validation data: loading (`.npz`, `.npy` pairs, NIfTI folders, PNG folders) and
//! preprocessing to the model's input (normalization, fit, channel replication).

mod arrays;
pub mod memory;
pub mod nifti;
pub mod npy;
pub mod npz;
pub mod png_folder;
pub mod preprocess;
pub mod standardize;
pub mod stream;
#[cfg(test)]
mod tests;
pub mod values;

use std::path::Path;

use anyhow::Result;
use ndarray::{Axis, Ix2, Ix3};

pub use arrays::{array_layout, LayoutHint};
pub use preprocess::{Fit, InputSpec, Normalize};
pub use values::Values;

use crate::error::{bad_file, UserError};

/// What one image is labelled with (as stored; checked later against the model's classes).
#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    /// `height x width` class labels, one per pixel (segmentation), float32 where exact.
    Map(Values<Ix2>),
    /// One class id for the whole image (classification; `.npz`/`.npy` labels of shape N).
    Class(f64),
}

/// One loaded image with its optional label, before preprocessing.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// `channels x height x width` values as stored, float32 where exact ([`Values`]).
    pub image: Values<Ix3>,
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

    /// Bytes its values take.
    pub fn bytes(&self) -> u64 {
        let label = match &self.label {
            Some(Label::Map(l)) => l.bytes(),
            Some(Label::Class(_)) => 8,
            None => 0,
        };
        (self.image.bytes() + label) as u64
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

/// The most values a NIfTI or PNG folder may hold as loaded, before fitting: 2^30 (4 GiB
/// as the float32 values the tool holds; the limit of one `.npz` array). Each file is bounded
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
    /// What was in the data but not read, for warnings (an `.npz` array other than `images`
    /// and `labels`: `masks` or `y` are not labels to the tool).
    pub unread: Vec<String>,
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
    if let Some(l) = labels.filter(|l| !l.exists()) {
        // `--labels Baseline` (or a typo) was a bare "No such file or directory".
        return Err(UserError::Unreadable {
            path: l.into(),
            reason: "no such file (--labels takes a .npy file of labels, or `baseline` for label-free)".into(),
        }
        .into());
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
            Loaded { samples: load_png(data)?, format: "png", unread: vec![] }
        } else {
            Loaded { samples: load_nifti(data)?, format: "nifti", unread: vec![] }
        }
    } else if name.ends_with(".npz") {
        let mut archive = npz::Npz::open(data)?;
        let samples = npz_samples(&mut archive, data, hint)?;
        let others: Vec<String> = archive.names().into_iter().filter(|n| n != "images" && n != "labels").collect();
        let unread = match (others.is_empty(), samples.first().is_some_and(|s| s.label.is_some())) {
            (true, _) => vec![],
            (false, labelled) => vec![format!(
                "{}: array(s) {} not read: the tool reads 'images'{}",
                data.display(),
                others.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", "),
                if labelled {
                    " and 'labels'"
                } else {
                    " and 'labels' (which it has not): label maps under another name are not used; save them as labels="
                }
            )],
        };
        Loaded { samples, format: "npz", unread }
    } else if name.ends_with(".npy") {
        let read = |p: &Path| crate::input::read(p).map_err(anyhow::Error::from);
        let images = read(data)?;
        let labels = labels.map(|p| read(p).map(|b| (b, p))).transpose()?;
        let samples = npy_samples(&images, data, labels.as_ref().map(|(b, p)| (b.as_slice(), *p)), hint)?;
        Loaded { samples, format: "npy", unread: vec![] }
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
/// ([`npz::Npz::from_bytes`]). The arrays' shapes are checked, and the memory they take
/// held against the machine's ([`memory::check`]), from their headers before their data is
/// read; each array then streams in one image at a time.
pub fn npz_samples<R: std::io::Read + std::io::Seek>(
    npz: &mut npz::Npz<R>,
    path: &Path,
    hint: &LayoutHint,
) -> Result<Vec<Sample>> {
    let Some(images) = npz.declared("images")? else { return Err(npz.missing("images")) };
    let labels = npz.declared("labels")?;
    if let Some(l) = &labels {
        arrays::check_labels_fit(path, &images.shape, &l.shape, hint)?;
    }
    check_array_memory(&images, labels.as_ref(), path)?;
    let mut cut = arrays::Cutter::new(path, &images.shape, hint)?;
    npz.for_each_image("images", |v| cut.image(v))?;
    if let Some(l) = labels {
        cut.start_labels(&l.shape, hint)?;
        npz.for_each_image("labels", |v| cut.label(v))?;
    }
    cut.finish()
}

/// Refuse images (and labels) whose headers declare more than the machine's memory holds.
fn check_array_memory(images: &npy::Declared, labels: Option<&npy::Declared>, path: &Path) -> Result<()> {
    let need = images.bytes_to_read().saturating_add(labels.map_or(0, |l| l.bytes_to_read()));
    let what = match labels {
        Some(l) => format!("its images {:?} and labels {:?}, as held,", images.shape, l.shape),
        None => format!("its images {:?}, as held,", images.shape),
    };
    memory::check(need, 0, &what, path, "audit a subset")
}

/// The samples of `.npy` images (`path` names them in messages) and labels, given as the
/// files' bytes: what [`load`] makes of the files ([`npy::read_npy`] is `std::fs::read`
/// and [`npy::parse_npy`]); the fuzz target `npy` enters here. Checked from the headers as
/// [`npz_samples`] checks, then streamed image by image.
pub fn npy_samples(
    images: &[u8],
    path: &Path,
    labels: Option<(&[u8], &Path)>,
    hint: &LayoutHint,
) -> Result<Vec<Sample>> {
    let header = |bytes: &[u8], p: &Path| npy::declared_strict(bytes).map_err(|e| bad_file(p, format!("{e:#}")));
    let image_header = header(images, path)?;
    let label_header = labels.map(|(b, p)| header(b, p)).transpose()?;
    if let Some(l) = &label_header {
        arrays::check_labels_fit(path, &image_header.shape, &l.shape, hint)?;
    }
    check_array_memory(&image_header, label_header.as_ref(), path)?;
    let stream = |bytes: &[u8], p: &Path, each: &mut dyn FnMut(Values<ndarray::Ix1>) -> Result<()>| -> Result<()> {
        let npy = npyz::NpyFile::new(bytes).map_err(|e| bad_file(p, format!("not a .npy array: {e}")))?;
        stream::for_each_image(npy, each).map_err(|e| bad_file(p, format!("{e:#}")))
    };
    let mut cut = arrays::Cutter::new(path, &image_header.shape, hint)?;
    stream(images, path, &mut |v| cut.image(v))?;
    if let (Some((bytes, p)), Some(l)) = (labels, label_header) {
        cut.start_labels(&l.shape, hint)?;
        stream(bytes, p, &mut |v| cut.label(v))?;
    }
    cut.finish()
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
    let (mut values, mut held, mut largest) = (0u64, 0u64, 0u64);
    for (img, gt) in &pairs {
        let (i, g) = (nifti::declared(img)?, nifti::declared(gt)?);
        values = values.saturating_add(i.voxels).saturating_add(g.voxels);
        check_loaded_values(values, img)?;
        held = held.saturating_add(i.held_bytes()).saturating_add(g.held_bytes());
        largest = largest.max(i.read_bytes().saturating_add(g.read_bytes()));
    }
    // Every slice as held, and the largest pair of volumes as read (raw, then f64) beside them.
    let what = format!("its {} volume pair(s), as held,", pairs.len());
    memory::check(held.saturating_add(largest), 0, &what, dir, "audit a subset")?;
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
                image: Values::narrowed(
                    v.index_axis(Axis(2), k).insert_axis(Axis(0)).as_standard_layout().into_owned(),
                ),
                label: Some(Label::Map(Values::narrowed(g.index_axis(Axis(2), k).as_standard_layout().into_owned()))),
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
            values = values.saturating_add(png_folder::declared_mask_values(m)?);
        }
        check_loaded_values(values, img)?;
    }
    // 8- and 16-bit levels are held as float32.
    let what = format!("its {} image(s) and their masks, as held,", pairs.len());
    memory::check(values.saturating_mul(4), 0, &what, dir, "audit a subset")?;
    for (img, mask) in pairs {
        let image = png_folder::read(&img)?;
        let label = match mask {
            Some(m) => {
                let l = png_folder::read_mask(&m)?;
                let (_, h, w) = image.dim();
                if l.dim() != (1, h, w) {
                    return Err(bad_file(&m, format!("mask must be a gray {h}x{w} image")));
                }
                Some(Label::Map(Values::F32(l.index_axis_move(Axis(0), 0))))
            }
            None => None,
        };
        out.push(Sample { image: Values::F32(image), label, origin: img.display().to_string() });
    }
    Ok(out)
}
