//! PNG folders: `DIR/images/NAME.png` with masks `DIR/masks/NAME.png` (label values as gray levels).
//!
//! Images are read as viewers and PIL show them (palettes expanded to colour, 1-, 2- and
//! 4-bit gray scaled to 0..255); masks as stored: a pixel's gray level or palette index is its
//! class, at any bit depth (a 1-bit mask of classes 0 and 1 read scaled was 0 and 255, and the
//! tool suggested `--ignore-label 255`, which left only the background to score).

use std::path::{Path, PathBuf};

use anyhow::Result;
use ndarray::Array3;

use crate::error::{bad_file, UserError};

/// The most values one PNG may declare: 2^27 (as a NIfTI volume: e.g. 8192 x 8192 in
/// two channels; 512 MiB as the float32 values the tool holds). Checked from the header before
/// the pixels are inflated: a 500 KB PNG of 16000 x 16000 zeros took 10 GB.
pub const MAX_PNG_VALUES: u64 = 1 << 27;

/// Open a PNG and read its header: the reader and the values it declares (width x height x
/// 1 or 3 channels), refused beyond [`MAX_PNG_VALUES`].
fn open(path: &Path, expand: bool) -> Result<(png::Reader<std::io::BufReader<std::fs::File>>, u64)> {
    crate::input::check_regular(path)?;
    let file =
        std::fs::File::open(path).map_err(|e| UserError::Unreadable { path: path.into(), reason: e.to_string() })?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(if expand { png::Transformations::EXPAND } else { png::Transformations::IDENTITY });
    let reader = decoder.read_info().map_err(|e| bad_file(path, format!("not a valid PNG: {e}")))?;
    let (w, h) = reader.info().size();
    // A palette expands to colour (images); a mask keeps its indices.
    let colour =
        reader.info().color_type.samples() >= 3 || (expand && reader.info().color_type == png::ColorType::Indexed);
    let channels = if colour { 3 } else { 1 };
    let values = u64::from(w) * u64::from(h) * channels;
    if values > MAX_PNG_VALUES {
        return Err(bad_file(
            path,
            format!(
                "the header declares {w} x {h} pixels ({values} values), more than the {MAX_PNG_VALUES} (2^27) the tool \
                 reads from one image; refused before decoding it"
            ),
        ));
    }
    Ok((reader, values))
}

/// The values a PNG declares (width x height x channels as read), from its header alone.
pub fn declared_values(path: &Path) -> Result<u64> {
    open(path, true).map(|(_, values)| values)
}

/// [`declared_values`] of a mask (a palette counts one value a pixel: its index).
pub fn declared_mask_values(path: &Path) -> Result<u64> {
    open(path, false).map(|(_, values)| values)
}

/// Read one PNG image as `channels x height x width` gray levels as viewers show them: 1
/// channel for gray, 3 for colour or a palette (alpha dropped); 1-, 2- and 4-bit gray scaled
/// to 0..255 (as PIL and libpng expand it); 8- and 16-bit levels are exact as float32.
pub fn read(path: &Path) -> Result<Array3<f32>> {
    decode(path, true)
}

/// Read one PNG mask as stored, `channels x height x width`: each pixel's gray level or
/// palette index at its own bit depth (a 1-bit mask is 0 and 1, a 2-bit one 0..3), 3
/// channels for colour (alpha dropped).
pub fn read_mask(path: &Path) -> Result<Array3<f32>> {
    decode(path, false)
}

fn decode(path: &Path, expand: bool) -> Result<Array3<f32>> {
    let (mut reader, _) = open(path, expand)?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).map_err(|e| bad_file(path, format!("corrupt PNG: {e}")))?;
    let (h, w) = (info.height as usize, info.width as usize);
    let samples = info.color_type.samples();
    let bits = info.bit_depth as usize;
    let line = info.line_size;
    // Sample `k` of row `y`, at any bit depth (rows are packed, most significant bits first).
    let sample = |y: usize, k: usize| -> f32 {
        let row = &buf[y * line..(y + 1) * line];
        match bits {
            16 => f32::from(u16::from_be_bytes([row[2 * k], row[2 * k + 1]])),
            8 => f32::from(row[k]),
            _ => {
                let bit = k * bits;
                f32::from((row[bit / 8] >> (8 - bits - bit % 8)) & ((1u8 << bits) - 1))
            }
        }
    };
    let channels = if samples >= 3 { 3 } else { 1 };
    Ok(Array3::from_shape_fn((channels, h, w), |(c, y, x)| sample(y, x * samples + c)))
}

/// Whether `p` is named like a PNG (`.png`, any case).
fn is_png(p: &Path) -> bool {
    p.extension().is_some_and(|x| x.eq_ignore_ascii_case("png"))
}

/// The (image, mask) pairs of a PNG folder, sorted by name. Masks are optional (all or none:
/// [`super::preprocess::prepare`] refuses a mix), but a mask must have its image: a mask
/// whose image is missing, or NIfTI volumes beside `images/`, were left out without a word.
pub fn folder_pairs(dir: &Path) -> Result<Vec<(PathBuf, Option<PathBuf>)>> {
    let images = dir.join("images");
    let masks = dir.join("masks");
    let entries = std::fs::read_dir(&images).map_err(|e| UserError::Unreadable {
        path: images.clone(),
        reason: format!("{e} (a PNG data folder needs images/ and masks/)"),
    })?;
    let mut out = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        if is_png(&p) {
            let mask = masks.join(e.file_name());
            out.push((p, mask.exists().then_some(mask)));
        }
    }
    out.sort();
    let names = |dir: &Path| -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> =
            std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
        found.sort();
        found
    };
    if let Some(mask) =
        names(&masks).into_iter().find(|m| is_png(m) && m.file_name().is_some_and(|n| !images.join(n).exists()))
    {
        let name = mask.file_name().unwrap_or_default().to_string_lossy().to_string();
        return Err(bad_file(
            &mask,
            format!("a mask without its image images/{name}: add the image, or move the mask out of masks/"),
        ));
    }
    let nifti = |p: &PathBuf| {
        let n = p.to_string_lossy().to_lowercase();
        n.ends_with(".nii") || n.ends_with(".nii.gz")
    };
    if let Some(volume) = names(dir).into_iter().find(nifti) {
        return Err(bad_file(
            dir,
            format!(
                "holds both a PNG set (images/, masks/) and NIfTI volumes ({}): which one to audit is a guess; \
                 give a folder holding one",
                volume.file_name().unwrap_or_default().to_string_lossy()
            ),
        ));
    }
    Ok(out)
}

/// Encode an 8-bit grayscale PNG (for tests and fixtures).
pub fn gray_png_bytes(width: u32, height: u32, pixels: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header()?;
        w.write_image_data(pixels)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gray_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.png");
        std::fs::write(&p, gray_png_bytes(3, 2, &[0, 1, 2, 3, 4, 255]).unwrap()).unwrap();
        let img = read(&p).unwrap();
        assert_eq!(img, ndarray::array![[[0.0, 1.0, 2.0], [3.0, 4.0, 255.0]]]);
    }
}
