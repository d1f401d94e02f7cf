//! PNG folders: `DIR/images/NAME.png` with masks `DIR/masks/NAME.png` (label values as gray levels).

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
fn open(path: &Path) -> Result<(png::Reader<std::io::BufReader<std::fs::File>>, u64)> {
    crate::input::check_regular(path)?;
    let file =
        std::fs::File::open(path).map_err(|e| UserError::Unreadable { path: path.into(), reason: e.to_string() })?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND);
    let reader = decoder.read_info().map_err(|e| bad_file(path, format!("not a valid PNG: {e}")))?;
    let (w, h) = reader.info().size();
    let channels = if reader.info().color_type.samples() >= 3 { 3 } else { 1 };
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
    open(path).map(|(_, values)| values)
}

/// Read one PNG file as `channels x height x width` raw gray levels: 1 channel for gray, 3
/// for colour (alpha dropped); 8- and 16-bit levels are exact as float32.
pub fn read(path: &Path) -> Result<Array3<f32>> {
    let (mut reader, _) = open(path)?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).map_err(|e| bad_file(path, format!("corrupt PNG: {e}")))?;
    let (h, w) = (info.height as usize, info.width as usize);
    let samples = info.color_type.samples();
    let wide = info.bit_depth == png::BitDepth::Sixteen;
    let sample = |i: usize| -> f32 {
        if wide {
            f32::from(u16::from_be_bytes([buf[2 * i], buf[2 * i + 1]]))
        } else {
            f32::from(buf[i])
        }
    };
    let channels = if samples >= 3 { 3 } else { 1 };
    Ok(Array3::from_shape_fn((channels, h, w), |(c, y, x)| sample((y * w + x) * samples + c)))
}

/// The (image, mask) pairs of a PNG folder, sorted by name. Masks are optional.
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
        if p.extension().is_some_and(|x| x.eq_ignore_ascii_case("png")) {
            let mask = masks.join(e.file_name());
            out.push((p, mask.exists().then_some(mask)));
        }
    }
    out.sort();
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
