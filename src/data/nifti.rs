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
use nifti::{InMemNiftiObject, InMemNiftiVolume, IntoNdArray, NiftiError, NiftiObject, NiftiType, ReaderOptions};

use crate::error::{bad_file, UserError};

/// The most voxels one volume may declare: 2^27 (e.g. 512 x 512 x 512; 0.5 to 1 GiB as the float32 or f64
/// values the tool holds). Checked from the header before any voxel is inflated.
pub const MAX_VOXELS: u64 = 1 << 27;

/// Read a `.nii` or `.nii.gz` file (gzip when the name ends with `.gz`) as an `x * y * slices`
/// array, scaled by `scl_slope`/`scl_inter` when the header sets them.
pub fn read(path: &Path) -> Result<Array3<f64>> {
    declared_voxels(path)?;
    let obj = ReaderOptions::new().read_file(path).map_err(|e| bad_file(path, describe(path, &e)))?;
    volume(obj, path)
}

/// What a NIfTI file's header declares, its voxels unread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Declared {
    /// Voxels in the volume.
    pub voxels: u64,
    /// Bytes a voxel takes in the file.
    pub size: u64,
    /// Whether every voxel, as read, is exactly a float32: unscaled 8- and 16-bit integers
    /// and float32.
    pub f32_exact: bool,
}

impl Declared {
    /// Bytes the volume's slices take as held ([`super::Values`]).
    pub fn held_bytes(&self) -> u64 {
        self.voxels.saturating_mul(if self.f32_exact { 4 } else { 8 })
    }

    /// Bytes the volume takes while it is read: the raw voxels and their f64 values.
    pub fn read_bytes(&self) -> u64 {
        self.voxels.saturating_mul(self.size + 8)
    }
}

/// The voxels a `.nii` or `.nii.gz` file's header declares, after the checks made before
/// any voxel is read (see [`check_declared`]).
pub fn declared_voxels(path: &Path) -> Result<u64> {
    Ok(declared(path)?.voxels)
}

/// What a `.nii` or `.nii.gz` file's header declares, after the checks made before any
/// voxel is read (see [`check_declared`]).
pub fn declared(path: &Path) -> Result<Declared> {
    crate::input::check_regular(path)?;
    let h = nifti::NiftiHeader::from_file(path).map_err(|e| bad_file(path, describe(path, &e)))?;
    let gz = path.to_string_lossy().ends_with(".gz");
    let len = if gz { None } else { Some(std::fs::metadata(path).map(|m| m.len()).unwrap_or(u64::MAX)) };
    let voxels = check_declared(&h, len, path)?;
    let datatype = supported_datatype(&h, path)?;
    use NiftiType::*;
    let f32_exact = !scaled(&h) && matches!(datatype, Uint8 | Int8 | Uint16 | Int16 | Float32);
    Ok(Declared { voxels, size: datatype.size_of() as u64, f32_exact })
}

/// Whether the header's `scl_slope`/`scl_inter` are applied (see the module's note).
fn scaled(h: &nifti::NiftiHeader) -> bool {
    h.scl_slope.is_finite() && h.scl_slope != 0.0 && !(h.scl_slope == 1.0 && h.scl_inter == 0.0)
}

/// Read the bytes of a `.nii` file, or of a `.nii.gz` with `gz`, as [`read`] reads the file
/// (`path` names it in messages); a header-only (`.hdr`/`.img` pair) file is refused. The
/// fuzz target `nifti` enters here.
pub fn read_bytes(bytes: &[u8], gz: bool, path: &Path) -> Result<Array3<f64>> {
    let fail = |e: NiftiError| bad_file(path, describe(path, &e));
    let stream = || -> Box<dyn std::io::Read + '_> {
        match gz {
            true => Box::new(flate2::bufread::GzDecoder::new(bytes)),
            false => Box::new(bytes),
        }
    };
    let h = nifti::NiftiHeader::from_reader(stream()).map_err(fail)?;
    check_declared(&h, (!gz).then_some(bytes.len() as u64), path)?;
    volume(InMemNiftiObject::from_reader(stream()).map_err(fail)?, path)
}

/// The volume of a read object as an `x * y * slices` array, scaled.
fn volume(obj: InMemNiftiObject, path: &Path) -> Result<Array3<f64>> {
    let h = obj.header().clone();
    let datatype = supported_datatype(&h, path)?;
    let slope = if scaled(&h) { h.scl_slope } else { 0.0 };
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

/// The header's datatype, if the tool reads it (integers and floats).
fn supported_datatype(h: &nifti::NiftiHeader, path: &Path) -> Result<NiftiType> {
    let datatype = h.data_type().map_err(|e| bad_file(path, describe(path, &e)))?;
    use NiftiType::*;
    if !matches!(datatype, Uint8 | Int8 | Uint16 | Int16 | Uint32 | Int32 | Uint64 | Int64 | Float32 | Float64) {
        return Err(bad_file(path, format!("unsupported NIfTI datatype {datatype:?}: use an integer or float type")));
    }
    Ok(datatype)
}

/// Refuse, from the header alone, a volume of a datatype the tool does not read, whose
/// `bitpix` is not its datatype's (the reader sizes the voxel data by `bitpix`, up to 4 KiB
/// a voxel, then interprets it by the datatype), that declares more than [`MAX_VOXELS`],
/// or (for an uncompressed file of `len` bytes) more voxel bytes than the file holds, before
/// reading voxels. A gzip payload is then read through a bounded stream: at most the
/// declared bytes are inflated. Returns the voxel count.
fn check_declared(h: &nifti::NiftiHeader, len: Option<u64>, path: &Path) -> Result<u64> {
    let rank = usize::from(h.dim[0]);
    if !(1..=7).contains(&rank) {
        return Err(bad_file(path, format!("corrupt header: dim[0] = {} (the rank must be 1 to 7)", h.dim[0])));
    }
    let datatype = supported_datatype(h, path)?;
    let size = datatype.size_of() as u64;
    if i64::from(h.bitpix) != 8 * size as i64 {
        return Err(bad_file(
            path,
            format!("corrupt header: bitpix = {} but datatype {datatype:?} has {} bits a voxel", h.bitpix, 8 * size),
        ));
    }
    let dims = &h.dim[1..=rank];
    let voxels = dims.iter().try_fold(1u64, |n, &d| n.checked_mul(u64::from(d))).unwrap_or(u64::MAX);
    if voxels > MAX_VOXELS {
        return Err(bad_file(
            path,
            format!(
                "the header declares a volume of {dims:?} = {voxels} voxels, more than the {MAX_VOXELS} (2^27, e.g. 512^3) the tool reads; refused before reading it"
            ),
        ));
    }
    let bytes = voxels * size;
    if let Some(len) = len {
        let offset = (h.vox_offset.max(0.0) as u64).max(352);
        if len < offset.saturating_add(bytes) {
            return Err(bad_file(
                path,
                format!(
                    "voxel data is truncated: the header declares {dims:?} ({bytes} bytes from offset {offset}), the file has {len} bytes"
                ),
            ));
        }
    }
    Ok(voxels)
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

/// The (image, label) file pairs of an ACDC-style folder, sorted by name. An image is a
/// file whose name does not end in `_gt` (before `.nii`/`.nii.gz`); `X_gt` labels `X`, which
/// must be there; `X_gt_gt` is refused (it would make the label `X_gt` an image too), as is
/// an image without its label.
pub fn folder_pairs(dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>> {
    let mut pairs = Vec::new();
    let mut unlabelled = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| UserError::Unreadable { path: dir.into(), reason: e.to_string() })?;
    // In name order, so that of several problems the same one is named on every run.
    let mut names: Vec<(String, PathBuf)> =
        entries.flatten().map(|e| (e.file_name().to_string_lossy().to_string(), e.path())).collect();
    names.sort();
    // Labels of labels first: they explain an "image without its label" that follows.
    names.sort_by_key(|(name, _)| !name.replace(".nii.gz", ".nii").ends_with("_gt_gt.nii"));
    for (name, path) in names {
        for ext in [".nii.gz", ".nii"] {
            let Some(stem) = name.strip_suffix(ext) else { continue };
            match stem.strip_suffix("_gt") {
                // An image is a file whose name does not end in `_gt`: `a_gt_gt` would make
                // the label `a_gt` an image as well.
                Some(inner) if inner.ends_with("_gt") => {
                    return Err(bad_file(
                        dir,
                        format!(
                            "{name} would be the label of {inner}{ext}, itself a label (names ending in _gt are \
                             labels, never images): which volume is which is ambiguous; rename or move {name}"
                        ),
                    ));
                }
                Some(stem) => {
                    let image = dir.join(format!("{stem}{ext}"));
                    if !image.exists() {
                        return Err(bad_file(dir, format!("{name} has no image {stem}{ext}")));
                    }
                    pairs.push((image, path.clone()));
                }
                None if !dir.join(format!("{stem}_gt{ext}")).exists() => unlabelled.push(name.clone()),
                None => {}
            }
            break;
        }
    }
    // A volume without labels would be dropped without a word; PNG folders refuse the same.
    unlabelled.sort();
    if let (Some(first), false) = (unlabelled.first(), pairs.is_empty()) {
        return Err(bad_file(
            dir,
            format!(
                "{first} has no label volume {} ({} volume(s) without _gt); every volume needs its labels: add them or move the volume out of the folder",
                first.replacen(".nii", "_gt.nii", 1),
                unlabelled.len()
            ),
        ));
    }
    pairs.sort();
    // `X.nii` beside `X.nii.gz` (a `gunzip -k`) would audit every slice of X twice.
    let stem = |p: &PathBuf| {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        name.strip_suffix(".gz").unwrap_or(&name).to_string()
    };
    if let Some(w) = pairs.windows(2).find(|w| stem(&w[0].0) == stem(&w[1].0)) {
        let name = stem(&w[0].0);
        return Err(bad_file(
            dir,
            format!("{name} and {name}.gz are both here: the same volume would be audited twice; keep one"),
        ));
    }
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
