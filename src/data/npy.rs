//! `.npy` arrays and `.npz` archives (plain or compressed) as written by NumPy, read with
//! `npyz` into `ArrayD<f64>` in logical C order (Fortran-ordered files are transposed back).
//!
//! Why `npyz` and not `ndarray-npy`: `ndarray-npy` makes the caller name the element type at
//! compile time and refuses a file whose dtype differs, and it has no float16 element type; a
//! user's images may be `<f2`, `>f8` or `|u1` and we only learn which from the header. `npyz`
//! exposes the header's dtype ([`npyz::NpyFile::dtype`]) before the data is read, so we pick the
//! element type at run time, and with its `half` feature it reads float16. Both endiannesses
//! are decoded by `npyz`; the order flag is ours to apply.

use std::io::{self, Read};
use std::path::Path;

use anyhow::{anyhow, bail, Result};
use ndarray::{ArrayD, IxDyn, ShapeBuilder};
use npyz::{DType, Deserialize, NpyFile, Order, TypeChar};

pub use super::npz::Npz;
use crate::error::bad_file;

/// Decode a `.npy` stream: every numeric dtype NumPy writes (float16/32/64, (u)int8..64,
/// bool), either byte order, C or Fortran order. Values are exact as f64 except 64-bit
/// integers beyond 2^53.
pub fn decode(npy: NpyFile<impl Read>) -> Result<ArrayD<f64>> {
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let fortran = npy.order() == Order::Fortran;
    let DType::Plain(ty) = npy.dtype() else {
        bail!("unsupported dtype {} (structured arrays cannot be images or labels)", npy.dtype().descr());
    };
    let values = match (ty.type_char(), ty.size_field()) {
        (TypeChar::Float, 2) => all(npy, |v: half::f16| v.to_f64()),
        (TypeChar::Float, 4) => all(npy, |v: f32| v as f64),
        (TypeChar::Float, 8) => all(npy, |v: f64| v),
        (TypeChar::Int, 1) => all(npy, |v: i8| v as f64),
        (TypeChar::Int, 2) => all(npy, |v: i16| v as f64),
        (TypeChar::Int, 4) => all(npy, |v: i32| v as f64),
        (TypeChar::Int, 8) => all(npy, |v: i64| v as f64),
        (TypeChar::Uint, 1) => all(npy, |v: u8| v as f64),
        (TypeChar::Uint, 2) => all(npy, |v: u16| v as f64),
        (TypeChar::Uint, 4) => all(npy, |v: u32| v as f64),
        (TypeChar::Uint, 8) => all(npy, |v: u64| v as f64),
        (TypeChar::Bool, 1) => all(npy, |v: bool| f64::from(u8::from(v))),
        _ => bail!("unsupported dtype {ty}: use float16/32/64 images and integer or bool labels"),
    }
    .map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => anyhow!("array data is truncated: shape {shape:?} of {ty} needs more bytes"),
        _ => anyhow!("array data of {ty}: {e}"),
    })?;
    // The file stores Fortran-ordered data column-major: lay it out so, then copy to C order.
    let array = ArrayD::from_shape_vec(IxDyn(&shape).set_f(fortran), values)
        .map_err(|e| anyhow!("array data does not fit shape {shape:?}: {e}"))?;
    Ok(if fortran { array.as_standard_layout().into_owned() } else { array })
}

/// Every element of the file read as `T` and widened to f64.
fn all<T: Deserialize, R: Read>(npy: NpyFile<R>, widen: impl Fn(T) -> f64) -> io::Result<Vec<f64>> {
    let reader = npy.data::<T>().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    reader.map(|v| v.map(&widen)).collect()
}

/// The most values one array may declare: 2^30 (4 GiB as the float32 values the tool holds, 8 as f64).
pub const MAX_ARRAY_VALUES: u128 = 1 << 30;

/// The longest header a `.npy` may declare: 64 KiB. NumPy writes a few hundred bytes and
/// reads at most 10000 by default; the reader allocates whatever length is declared.
pub const MAX_HEADER_BYTES: usize = 1 << 16;

/// The deepest nesting of brackets a `.npy` header may have: 4 (NumPy writes 2, a dict
/// holding the shape tuple; a structured dtype with subarrays, refused later with its own
/// message, 4). The header parser backtracks exponentially in the depth: 16 levels took
/// minutes.
pub const MAX_HEADER_NESTING: usize = 4;

/// How deep `{`, `[` and `(` nest in a header, outside its quoted strings.
fn nesting(header: &str) -> usize {
    let (mut depth, mut deepest, mut quote, mut escaped) = (0usize, 0usize, None, false);
    for c in header.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' => quote = Some(c),
                '{' | '[' | '(' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                '}' | ']' | ')' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
    }
    deepest
}

/// Read a `.npy` header from the start of `r` (no data) and refuse a header longer than
/// [`MAX_HEADER_BYTES`] (the reader allocates the declared length: 4 GiB for a 100-byte
/// file), brackets nested deeper than [`MAX_HEADER_NESTING`] (its parser would take
/// minutes) or a shape with a negative dimension or more than [`MAX_ARRAY_VALUES`] values,
/// before the reader computes its size (which overflows on shapes like `(2**32, 2**32,
/// 4)`). A stream that is not a `.npy` is left for the reader to refuse.
pub fn check_declared_shape(mut r: impl Read) -> Result<()> {
    let mut pre = [0u8; 10];
    if r.read_exact(&mut pre).is_err() || &pre[..6] != b"\x93NUMPY" {
        return Ok(());
    }
    let len = match pre[6] {
        1 => usize::from(u16::from_le_bytes([pre[8], pre[9]])),
        _ => {
            let mut more = [0u8; 2];
            if r.read_exact(&mut more).is_err() {
                return Ok(());
            }
            u32::from_le_bytes([pre[8], pre[9], more[0], more[1]]) as usize
        }
    };
    if len > MAX_HEADER_BYTES {
        bail!("the header declares a header of {len} bytes, more than the {MAX_HEADER_BYTES} (64 KiB) a .npy header may have");
    }
    let mut header = vec![0u8; len];
    if r.read_exact(&mut header).is_err() {
        return Ok(());
    }
    let header = String::from_utf8_lossy(&header);
    let depth = nesting(&header);
    if depth > MAX_HEADER_NESTING {
        bail!(
            "the header nests brackets {depth} deep, more than the {MAX_HEADER_NESTING} a NumPy header has (its parser takes exponential time on such headers)"
        );
    }
    let Some(tuple) = header
        .split_once("'shape'")
        .and_then(|(_, rest)| rest.split_once('('))
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(inside, _)| inside)
    else {
        return Ok(());
    };
    let mut values: u128 = 1;
    for d in tuple.split(',').map(|d| d.trim().trim_end_matches('L')).filter(|d| !d.is_empty()) {
        let Ok(d) = d.parse::<i128>() else { return Ok(()) };
        if d < 0 {
            bail!("the header declares shape ({tuple}) with a negative dimension");
        }
        values = values.saturating_mul(d as u128);
    }
    if values > MAX_ARRAY_VALUES {
        bail!("the header declares shape ({tuple}) = {values} values, more than the {MAX_ARRAY_VALUES} (2^30) the tool reads");
    }
    Ok(())
}

/// The shape a `.npy` stream's header declares (its data unread), after the checks of
/// [`check_declared_shape`]; `None` for a stream that is not a `.npy` (the reader refuses
/// it when the array is read).
pub fn declared_shape(bytes: &[u8]) -> Result<Option<Vec<usize>>> {
    Ok(declared(bytes)?.map(|d| d.shape))
}

/// What a `.npy` header declares, its data unread.
#[derive(Debug, Clone, PartialEq)]
pub struct Declared {
    /// The array's shape.
    pub shape: Vec<usize>,
    /// Bytes one value takes as held ([`super::values::Values`]): 4 for the dtypes every value
    /// of which is a float32 (float16/32, 8- and 16-bit integers, bool), else at most 8.
    pub held: u64,
    /// Fortran order: the array is decoded whole (8 bytes a value) before it is cut into
    /// images.
    pub fortran: bool,
}

impl Declared {
    /// Values in the array.
    pub fn values(&self) -> u64 {
        self.shape.iter().fold(1u64, |n, &d| n.saturating_mul(d as u64))
    }

    /// Bytes the array takes at most while it is read into images: the images as held, and
    /// a Fortran-ordered array decoded whole beside them.
    pub fn bytes_to_read(&self) -> u64 {
        let per_value = self.held + if self.fortran { 8 } else { 0 };
        self.values().saturating_mul(per_value)
    }
}

/// The header at the start of `r` ([`check_declared_shape`] first); `None` for a stream that
/// is not a `.npy` (the reader refuses it when the array is read).
pub fn declared(start: &[u8]) -> Result<Option<Declared>> {
    check_declared_shape(start)?;
    let Ok(npy) = NpyFile::new(start) else { return Ok(None) };
    let held = match npy.dtype() {
        DType::Plain(ty) => match (ty.type_char(), ty.size_field()) {
            (TypeChar::Float, 2 | 4) | (TypeChar::Int | TypeChar::Uint, 1 | 2) | (TypeChar::Bool, 1) => 4,
            _ => 8,
        },
        _ => 8,
    };
    let shape = npy.shape().iter().map(|&d| d as usize).collect();
    Ok(Some(Declared { shape, held, fortran: npy.order() == Order::Fortran }))
}

/// [`declared`], with a stream that is not a `.npy` refused (saying why).
pub fn declared_strict(start: &[u8]) -> Result<Declared> {
    match declared(start)? {
        Some(d) => Ok(d),
        None => Err(NpyFile::new(start)
            .err()
            .map_or_else(|| anyhow!("not a .npy array"), |e| anyhow!("not a .npy array: {e}"))),
    }
}

/// Parse the bytes of a `.npy` file.
pub fn parse_npy(bytes: &[u8]) -> Result<ArrayD<f64>> {
    check_declared_shape(bytes)?;
    decode(NpyFile::new(bytes).map_err(|e| anyhow!("not a .npy array: {e}"))?)
}

/// Read a `.npy` file.
pub fn read_npy(path: &Path) -> Result<ArrayD<f64>> {
    let bytes = crate::input::read(path)?;
    parse_npy(&bytes).map_err(|e| bad_file(path, format!("{e:#}")))
}

/// Bytes of a `.npy` file holding `values` as `<f4` with `shape` (used by tests and fixtures).
pub fn npy_f32_bytes(shape: &[usize], values: &[f32]) -> Vec<u8> {
    npy_bytes("<f4", shape, &values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())
}

/// Bytes of a C-ordered `.npy` file with raw `data` of `dtype` (e.g. `>i2`), for tests and
/// fixtures that need a dtype or byte order spelled out byte by byte.
pub fn npy_bytes(dtype: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    npy_bytes_in_order(dtype, false, shape, data)
}

/// [`npy_bytes`] with the `fortran_order` flag set as given (`data` then lists the first
/// axis fastest).
pub fn npy_bytes_in_order(dtype: &str, fortran: bool, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let order = if fortran { "True" } else { "False" };
    let mut header = format!("{{'descr': '{dtype}', 'fortran_order': {order}, 'shape': {shape}, }}");
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
