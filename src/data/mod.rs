//! Validation data: loading (`.npz`, `.npy` pairs, NIfTI folders, PNG folders) and
//! preprocessing to the model's input (normalization, fit, channel replication).

pub mod nifti;
pub mod npy;
pub mod png_folder;
pub mod preprocess;

use std::path::Path;

use anyhow::Result;

pub use preprocess::{Fit, InputSpec, Normalize};

use crate::error::{bad_file, UserError};

/// One loaded image with its optional label map, before preprocessing.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Channels.
    pub channels: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// `[c][y][x]` values.
    pub image: Vec<f64>,
    /// `[y][x]` class labels (as stored; checked later against the model's classes).
    pub label: Option<Vec<f64>>,
    /// Where it came from, for messages (`file#slice`).
    pub origin: String,
}

/// Everything loaded from `--data` (and `--labels` when it is a file).
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The samples in a fixed order.
    pub samples: Vec<Sample>,
    /// `npz`, `npy`, `nifti` or `png`.
    pub format: &'static str,
}

/// Load a data set. `labels` is a `.npy` file for `.npy` images (else `None`).
pub fn load(data: &Path, labels: Option<&Path>) -> Result<Loaded> {
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
        let mut arrays = npy::read_npz(data, &["images", "labels"])?.into_iter();
        let images = arrays.next().flatten().ok_or_else(|| bad_file(data, "the archive has no 'images' array"))?;
        let labels = arrays.next().flatten();
        Loaded { samples: from_arrays(data, images, labels)?, format: "npz" }
    } else if name.ends_with(".npy") {
        let images = npy::read_npy(data)?;
        let labels = labels.map(npy::read_npy).transpose()?;
        Loaded { samples: from_arrays(data, images, labels)?, format: "npy" }
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

fn from_arrays(path: &Path, images: npy::Array, labels: Option<npy::Array>) -> Result<Vec<Sample>> {
    let (n, c, h, w) = match images.shape[..] {
        [n, h, w] => (n, 1, h, w),
        [n, c, h, w] => (n, c, h, w),
        _ => {
            return Err(bad_file(
                path,
                format!("images must be N x H x W or N x C x H x W, found shape {:?}", images.shape),
            ))
        }
    };
    if let Some(l) = &labels {
        let ok = matches!(l.shape[..], [ln, lh, lw] if (ln, lh, lw) == (n, h, w))
            || matches!(l.shape[..], [ln, 1, lh, lw] if (ln, lh, lw) == (n, h, w));
        if !ok {
            return Err(bad_file(
                path,
                format!("labels of shape {:?} do not fit images of shape {:?} (need N x H x W)", l.shape, images.shape),
            ));
        }
    }
    let file = path.display();
    Ok((0..n)
        .map(|i| Sample {
            channels: c,
            height: h,
            width: w,
            image: images.values[i * c * h * w..(i + 1) * c * h * w].to_vec(),
            label: labels.as_ref().map(|l| l.values[i * h * w..(i + 1) * h * w].to_vec()),
            origin: format!("{file}#{i}"),
        })
        .collect())
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
    for (img, gt) in pairs {
        let v = nifti::read(&img)?;
        let g = nifti::read(&gt)?;
        if v.dims != g.dims {
            return Err(bad_file(&gt, format!("label volume {:?} does not match image volume {:?}", g.dims, v.dims)));
        }
        let [x, y, z] = v.dims;
        for k in 0..z {
            out.push(Sample {
                channels: 1,
                height: x,
                width: y,
                image: v.slice(k),
                label: Some(g.slice(k)),
                origin: format!("{}#{k}", img.display()),
            });
        }
    }
    Ok(out)
}

fn load_png(dir: &Path) -> Result<Vec<Sample>> {
    let mut out = Vec::new();
    for (img, mask) in png_folder::folder_pairs(dir)? {
        let i = png_folder::read(&img)?;
        let label = match mask {
            Some(m) => {
                let l = png_folder::read(&m)?;
                if (l.height, l.width) != (i.height, i.width) || l.channels != 1 {
                    return Err(bad_file(&m, format!("mask must be a gray {}x{} image", i.height, i.width)));
                }
                Some(l.values)
            }
            None => None,
        };
        out.push(Sample {
            channels: i.channels,
            height: i.height,
            width: i.width,
            image: i.values,
            label,
            origin: img.display().to_string(),
        });
    }
    Ok(out)
}
