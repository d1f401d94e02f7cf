//! NIfTI-1 volumes: bytes -> `data::nifti::read_bytes` (what a NIfTI `--data` folder's
//! `X.nii` / `X.nii.gz` files go through) -> slices preprocessed. Input: a mode byte, then
//! the file: mode 0 reads it as `.nii`; mode 1 gzips it first and reads it as `.nii.gz` (a
//! valid stream of fuzzed content); mode 2 reads it as `.nii.gz` as it is (fuzzed streams).

use std::io::Write;

use ndarray::Axis;
use reuse_audit::data::{nifti, Label, Sample};

/// One input.
pub fn run(data: &[u8]) {
    let [mode, file @ ..] = data else { return };
    let zipped;
    let (bytes, gz) = match mode % 3 {
        0 => (file, false),
        1 => {
            let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            if z.write_all(file).is_err() {
                return;
            }
            let Ok(z) = z.finish() else { return };
            zipped = z;
            (zipped.as_slice(), true)
        }
        _ => (file, true),
    };
    let path = crate::common::path(if gz { "v.nii.gz" } else { "v.nii" });
    let Ok(v) = nifti::read_bytes(bytes, gz, &path) else { return };
    if reuse_audit::data::check_image_count(0, v.dim().2, &path).is_err() {
        return;
    }
    // As a NIfTI folder is read: one sample per slice, the volume as its own label map.
    let samples: Vec<Sample> = (0..v.dim().2)
        .map(|k| Sample {
            image: v.index_axis(Axis(2), k).insert_axis(Axis(0)).as_standard_layout().into_owned().into(),
            label: Some(Label::Map(v.index_axis(Axis(2), k).as_standard_layout().into_owned().into())),
            origin: format!("v#{k}"),
        })
        .collect();
    crate::common::preprocess(&samples, mode.rotate_right(2));
}
