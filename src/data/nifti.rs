//! NIfTI-1 volumes (`.nii` / `.nii.gz`) and ACDC-style folders: `X.nii.gz` with `X_gt.nii.gz`.
//! A 2D model sees the slices along the last axis; slice `k` is `vol[:, :, k]`, rows along x.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::error::{bad_file, UserError};

/// A 3D volume: `dims = [x, y, z]`, values with x fastest (the file order).
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    /// Sizes along x, y, z (z = 1 for a 2D image).
    pub dims: [usize; 3],
    /// Values, x fastest, scaled by `scl_slope`/`scl_inter` when the header sets them.
    pub values: Vec<f64>,
}

impl Volume {
    /// Slice `k` as an `x * y` image in row-major order (row = x index).
    pub fn slice(&self, k: usize) -> Vec<f64> {
        let [x, y, _] = self.dims;
        let base = k * x * y;
        let mut out = vec![0.0; x * y];
        for j in 0..y {
            for i in 0..x {
                out[i * y + j] = self.values[base + i + j * x];
            }
        }
        out
    }
}

/// Decodes one voxel from its bytes; the flag says little-endian.
type Decode = fn(&[u8], bool) -> f64;

/// Parse NIfTI-1 bytes (already decompressed).
pub fn parse(bytes: &[u8]) -> Result<Volume> {
    if bytes.len() < 352 {
        bail!("too short for a NIfTI-1 header ({} bytes)", bytes.len());
    }
    let le = i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let be = i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let little = match (le, be) {
        (348, _) => true,
        (_, 348) => false,
        (540, _) | (_, 540) => bail!("NIfTI-2 files are not supported; convert to NIfTI-1"),
        _ => bail!("not a NIfTI-1 file (sizeof_hdr is not 348)"),
    };
    let i16_at = |o: usize| {
        let b = [bytes[o], bytes[o + 1]];
        if little {
            i16::from_le_bytes(b)
        } else {
            i16::from_be_bytes(b)
        }
    };
    let f32_at = |o: usize| {
        let b = [bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]];
        if little {
            f32::from_le_bytes(b)
        } else {
            f32::from_be_bytes(b)
        }
    };
    let ndim = i16_at(40);
    if !(1..=7).contains(&ndim) {
        bail!("bad dim[0] = {ndim}");
    }
    let mut dims = [1usize; 3];
    for (d, slot) in dims.iter_mut().enumerate().take(ndim.min(3) as usize) {
        let v = i16_at(42 + 2 * d);
        if v < 1 {
            bail!("bad dimension {} = {v}", d + 1);
        }
        *slot = v as usize;
    }
    for d in 3..ndim as usize {
        if i16_at(42 + 2 * d) > 1 {
            bail!("{ndim}-D volumes with more than one time point are not supported");
        }
    }
    let datatype = i16_at(70);
    let vox_offset = f32_at(108).max(352.0) as usize;
    let (slope, inter) = (f32_at(112) as f64, f32_at(116) as f64);
    let n = dims.iter().product::<usize>();
    let (size, conv): (usize, Decode) = match datatype {
        2 => (1, |b, _| b[0] as f64),
        256 => (1, |b, _| b[0] as i8 as f64),
        4 => (2, |b, l| {
            let a = [b[0], b[1]];
            (if l { i16::from_le_bytes(a) } else { i16::from_be_bytes(a) }) as f64
        }),
        512 => (2, |b, l| {
            let a = [b[0], b[1]];
            (if l { u16::from_le_bytes(a) } else { u16::from_be_bytes(a) }) as f64
        }),
        8 => (4, |b, l| {
            let a = [b[0], b[1], b[2], b[3]];
            (if l { i32::from_le_bytes(a) } else { i32::from_be_bytes(a) }) as f64
        }),
        16 => (4, |b, l| {
            let a = [b[0], b[1], b[2], b[3]];
            (if l { f32::from_le_bytes(a) } else { f32::from_be_bytes(a) }) as f64
        }),
        64 => (8, |b, l| {
            let a: [u8; 8] = [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
            if l {
                f64::from_le_bytes(a)
            } else {
                f64::from_be_bytes(a)
            }
        }),
        other => bail!("unsupported NIfTI datatype code {other}"),
    };
    let Some(data) = bytes.get(vox_offset..vox_offset + n * size) else {
        bail!("voxel data is truncated: {:?} voxels need {} bytes after offset {vox_offset}", dims, n * size);
    };
    let scale = slope != 0.0 && slope.is_finite() && !(slope == 1.0 && inter == 0.0);
    let values = data
        .chunks_exact(size)
        .map(|c| {
            let v = conv(c, little);
            if scale {
                v * slope + inter
            } else {
                v
            }
        })
        .collect();
    Ok(Volume { dims, values })
}

/// Read a `.nii` or `.nii.gz` file.
pub fn read(path: &Path) -> Result<Volume> {
    let raw = std::fs::read(path).map_err(|e| UserError::Unreadable { path: path.into(), reason: e.to_string() })?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| bad_file(path, format!("gzip stream is corrupt: {e}")))?;
        out
    } else {
        raw
    };
    parse(&bytes).map_err(|e| bad_file(path, format!("{e:#}")))
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

#[cfg(test)]
pub(crate) fn nifti_bytes_u8(dims: [usize; 3], values: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 352];
    h[0..4].copy_from_slice(&348i32.to_le_bytes());
    for (i, v) in [3i16, dims[0] as i16, dims[1] as i16, dims[2] as i16, 1, 1, 1, 1].iter().enumerate() {
        h[40 + 2 * i..42 + 2 * i].copy_from_slice(&v.to_le_bytes());
    }
    h[70..72].copy_from_slice(&2i16.to_le_bytes());
    h[72..74].copy_from_slice(&8i16.to_le_bytes());
    h[108..112].copy_from_slice(&352f32.to_le_bytes());
    h[344..348].copy_from_slice(b"n+1\0");
    h.extend_from_slice(values);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_follow_the_last_axis_with_x_as_rows() {
        // x=2, y=3, z=2; value = 100*k + 10*i + j at (i, j, k), stored x fastest.
        let mut vals = vec![0u8; 12];
        for k in 0..2 {
            for j in 0..3 {
                for i in 0..2 {
                    vals[i + 2 * j + 6 * k] = (100 * k + 10 * i + j) as u8;
                }
            }
        }
        let v = parse(&nifti_bytes_u8([2, 3, 2], &vals)).unwrap();
        assert_eq!(v.slice(1), vec![100.0, 101.0, 102.0, 110.0, 111.0, 112.0]);
    }

    #[test]
    fn truncated_and_foreign_files_are_errors() {
        let b = nifti_bytes_u8([2, 2, 2], &[0; 8]);
        assert!(parse(&b[..b.len() - 1]).unwrap_err().to_string().contains("truncated"));
        assert!(parse(&[0u8; 400]).is_err());
    }
}
