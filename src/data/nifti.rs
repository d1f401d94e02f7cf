//! NIfTI-1 volumes (`.nii` / `.nii.gz`, read with the `nifti` crate) and ACDC-style folders:
//! `X.nii.gz` with `X_gt.nii.gz`. A 2D model sees the slices along the third axis; slice `k`
//! is `vol[:, :, k]` with rows along x. A 4D volume's slices are taken for each time point in
//! turn (`k = z + Z * t`).
//!
//! Scaling: the crate applies `scl_slope`/`scl_inter` as `x * slope + inter` in f64 unless the
//! slope is 0 (the NIfTI rule for "not scaled"). We also leave values unscaled when the slope
//! is not finite (as nibabel does) or the pair is the identity (1, 0), so stored values come
//! through bit for bit.

use std::path::{Path, PathBuf};

use anyhow::Result;
use ndarray::{Array3, Order};
use nifti::{InMemNiftiVolume, IntoNdArray, NiftiError, NiftiObject, NiftiType, ReaderOptions};

use crate::error::{bad_file, UserError};

/// Read a `.nii` or `.nii.gz` file (gzip when the name ends with `.gz`) as an `x * y * slices`
/// array, scaled by `scl_slope`/`scl_inter` when the header sets them.
pub fn read(path: &Path) -> Result<Array3<f64>> {
    let obj = ReaderOptions::new().read_file(path).map_err(|e| bad_file(path, describe(path, &e)))?;
    let h = obj.header().clone();
    let datatype = h.data_type().map_err(|e| bad_file(path, describe(path, &e)))?;
    use NiftiType::*;
    if !matches!(datatype, Uint8 | Int8 | Uint16 | Int16 | Uint32 | Int32 | Uint64 | Int64 | Float32 | Float64) {
        return Err(bad_file(path, format!("unsupported NIfTI datatype {datatype:?}: use an integer or float type")));
    }
    let scaled = h.scl_slope.is_finite() && h.scl_slope != 0.0 && !(h.scl_slope == 1.0 && h.scl_inter == 0.0);
    let slope = if scaled { h.scl_slope } else { 0.0 };
    let raw = obj.into_volume().into_raw_data();
    let values = InMemNiftiVolume::from_raw_fields(h.dim, datatype, slope, h.scl_inter, raw, h.endianness)
        .and_then(|v| v.into_ndarray::<f64>())
        .map_err(|e| bad_file(path, describe(path, &e)))?;
    // Column-major, x fastest: x and y stay the first two axes, every further axis is slices.
    let shape = values.shape().to_vec();
    let (x, y) = (shape[0], shape.get(1).copied().unwrap_or(1));
    let slices = shape.iter().skip(2).product();
    values
        .into_shape_with_order(((x, y, slices), Order::ColumnMajor))
        .map_err(|e| bad_file(path, format!("volume of shape {shape:?}: {e}")))
}

/// A message for a crate error, in the words of someone holding the file.
fn describe(path: &Path, e: &NiftiError) -> String {
    let gz = path.to_string_lossy().ends_with(".gz");
    match e {
        NiftiError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the file is truncated (header or voxel data)".into()
        }
        NiftiError::Io(io) if gz => format!("gzip stream is corrupt: {io}"),
        NiftiError::Io(io) => io.to_string(),
        NiftiError::InvalidFormat => "not a NIfTI-1 file (bad magic; NIfTI-2 is not supported)".into(),
        NiftiError::IncompatibleLength(got, want) => {
            format!("voxel data is truncated: {want} bytes expected, {got} found")
        }
        other => format!("{other}"),
    }
}

/// The (image, label) file pairs of an ACDC-style folder, sorted by name.
pub fn folder_pairs(dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>> {
    let mut pairs = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| UserError::Unreadable { path: dir.into(), reason: e.to_string() })?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        for ext in [".nii.gz", ".nii"] {
            if let Some(stem) = name.strip_suffix(&format!("_gt{ext}")) {
                let image = dir.join(format!("{stem}{ext}"));
                if !image.exists() {
                    return Err(bad_file(dir, format!("{name} has no image {stem}{ext}")));
                }
                pairs.push((image, e.path()));
            }
        }
    }
    pairs.sort();
    Ok(pairs)
}

/// Bytes of an uncompressed single-file NIfTI-1 volume (`.nii`) with raw voxel `data`, x
/// fastest, in the given byte order; for tests and fixtures that need a datatype or scaling
/// spelled out (the crate's writer always writes slope 1, intercept 0).
pub fn nii_bytes(dims: &[u16], datatype: i16, bitpix: i16, scl: (f32, f32), data: &[u8], big: bool) -> Vec<u8> {
    let mut h = vec![0u8; 352];
    let mut put = |at: usize, b: &[u8]| h[at..at + b.len()].copy_from_slice(b);
    let i16b = |v: i16| if big { v.to_be_bytes() } else { v.to_le_bytes() };
    let f32b = |v: f32| if big { v.to_be_bytes() } else { v.to_le_bytes() };
    put(0, &if big { 348i32.to_be_bytes() } else { 348i32.to_le_bytes() });
    put(40, &i16b(dims.len() as i16));
    for i in 0..7 {
        put(42 + 2 * i, &i16b(dims.get(i).map_or(1, |&d| d as i16)));
    }
    put(70, &i16b(datatype));
    put(72, &i16b(bitpix));
    put(76, &f32b(1.0)); // pixdim[0] (qfac)
    put(108, &f32b(352.0));
    put(112, &f32b(scl.0));
    put(116, &f32b(scl.1));
    put(344, b"n+1\0");
    h.extend_from_slice(data);
    h
}
