//! `.npy` arrays and `.npz` archives (plain or compressed) as written by NumPy.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Result};

use crate::error::{bad_file, UserError};

/// A decoded array: shape and values (as f64, exact for every supported dtype).
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// Shape, C order.
    pub shape: Vec<usize>,
    /// Values in C order.
    pub values: Vec<f64>,
    /// The NumPy dtype string, e.g. `<f4`.
    pub dtype: String,
}

/// Parse the bytes of a `.npy` file.
pub fn parse_npy(bytes: &[u8]) -> Result<Array> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        bail!("not a .npy array (bad magic)");
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => bail!("unsupported .npy version {v}"),
    };
    let Some(header) = bytes.get(start..start + header_len) else {
        bail!(".npy header is truncated");
    };
    let header = String::from_utf8_lossy(header);
    let dtype = dict_value(&header, "descr").ok_or_else(|| anyhow::anyhow!("no 'descr' in .npy header"))?;
    let dtype = dtype.trim_matches(|c| c == '\'' || c == '"').to_string();
    if dict_value(&header, "fortran_order").is_some_and(|v| v.starts_with("True")) {
        bail!("Fortran-ordered arrays are not supported: save with np.ascontiguousarray");
    }
    let shape_src = dict_value(&header, "shape").ok_or_else(|| anyhow::anyhow!("no 'shape' in .npy header"))?;
    let shape: Vec<usize> = shape_src
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow::anyhow!("bad shape {shape_src} in .npy header"))?;
    let n: usize = shape.iter().product();
    let data = &bytes[start + header_len..];
    let (size, conv): (usize, fn(&[u8]) -> f64) = match dtype.as_str() {
        "<f4" => (4, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64),
        "<f8" => (8, |b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])),
        "<f2" => (2, |b| half::f16::from_le_bytes([b[0], b[1]]).to_f64()),
        "|u1" | "<u1" | "|b1" => (1, |b| b[0] as f64),
        "|i1" | "<i1" => (1, |b| b[0] as i8 as f64),
        "<u2" => (2, |b| u16::from_le_bytes([b[0], b[1]]) as f64),
        "<i2" => (2, |b| i16::from_le_bytes([b[0], b[1]]) as f64),
        "<u4" => (4, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64),
        "<i4" => (4, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64),
        "<i8" => (8, |b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f64),
        "<u8" => (8, |b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f64),
        other => bail!("unsupported dtype {other} (use float32/float64 images and integer labels)"),
    };
    if data.len() < n * size {
        bail!("array data is truncated: shape {shape:?} of {dtype} needs {} bytes, found {}", n * size, data.len());
    }
    let values = data[..n * size].chunks_exact(size).map(conv).collect();
    Ok(Array { shape, values, dtype })
}

/// The text after `'key':` in a NumPy header dict, up to the matching delimiter.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("'{key}':");
    let at = header.find(&pat)? + pat.len();
    let rest = header[at..].trim_start();
    let end = if rest.starts_with('(') { rest.find(')')? + 1 } else { rest.find([',', '}']).unwrap_or(rest.len()) };
    Some(rest[..end].trim())
}

/// Read a `.npy` file.
pub fn read_npy(path: &Path) -> Result<Array> {
    let bytes = std::fs::read(path).map_err(|e| UserError::Unreadable { path: path.into(), reason: e.to_string() })?;
    parse_npy(&bytes).map_err(|e| bad_file(path, format!("{e:#}")))
}

/// Read the named arrays of a `.npz` archive; a missing name is `None`.
pub fn read_npz(path: &Path, names: &[&str]) -> Result<Vec<Option<Array>>> {
    let file =
        std::fs::File::open(path).map_err(|e| UserError::Unreadable { path: path.into(), reason: e.to_string() })?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| bad_file(path, format!("not a valid .npz archive: {e}")))?;
    let mut out = Vec::new();
    for name in names {
        let entry = format!("{name}.npy");
        let mut f = match zip.by_name(&entry) {
            Ok(f) => f,
            Err(zip::result::ZipError::FileNotFound) => {
                out.push(None);
                continue;
            }
            Err(e) => return Err(bad_file(path, format!("{entry}: {e}"))),
        };
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).map_err(|e| bad_file(path, format!("{entry}: {e}")))?;
        out.push(Some(parse_npy(&bytes).map_err(|e| bad_file(path, format!("{entry}: {e:#}")))?));
    }
    Ok(out)
}

/// Bytes of a `.npy` file holding `values` as `<f4` with `shape` (used by tests and fixtures).
pub fn npy_f32_bytes(shape: &[usize], values: &[f32]) -> Vec<u8> {
    npy_bytes("<f4", shape, &values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())
}

/// Bytes of a `.npy` file with raw little-endian `data` of `dtype`.
pub fn npy_bytes(dtype: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_f32_and_u8() {
        let b = npy_f32_bytes(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.5]);
        let a = parse_npy(&b).unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.values[5], 6.5);
        let b = npy_bytes("|u1", &[4], &[0, 1, 2, 3]);
        assert_eq!(parse_npy(&b).unwrap().values, vec![0.0, 1.0, 2.0, 3.0]);
    }

    #[test]
    fn truncated_and_bad_dtype() {
        let b = npy_f32_bytes(&[4], &[1.0; 4]);
        assert!(parse_npy(&b[..b.len() - 3]).unwrap_err().to_string().contains("truncated"));
        let b = npy_bytes("<c8", &[1], &[0; 8]);
        assert!(parse_npy(&b).unwrap_err().to_string().contains("unsupported dtype"));
        assert!(parse_npy(b"hello world").is_err());
    }
}
