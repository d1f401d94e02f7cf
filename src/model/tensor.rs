//! Reading and writing the numbers of ONNX tensors: raw little-endian or typed fields,
//! float32/float16/bfloat16/float64, and external data confined to the model's folder.
//! Decoded tensors are `ndarray` arrays of f64 with the tensor's ONNX dims.

use std::path::{Component, Path};

use anyhow::{bail, Context, Result};
use ndarray::{ArrayD, IxDyn};
use onnx_protobuf::{tensor_proto::DataLocation, TensorProto};

/// ONNX element types the tool can read as numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// IEEE float32 (ONNX type 1).
    Float32,
    /// IEEE float16 (ONNX type 10).
    Float16,
    /// float64 (ONNX type 11).
    Float64,
    /// bfloat16 (ONNX type 16).
    Bfloat16,
}

impl DType {
    /// The element type of an ONNX `data_type` code, if it is a float type.
    pub fn from_onnx(code: i32) -> Option<DType> {
        match code {
            1 => Some(DType::Float32),
            10 => Some(DType::Float16),
            11 => Some(DType::Float64),
            16 => Some(DType::Bfloat16),
            _ => None,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::Float32 => 4,
            DType::Float16 | DType::Bfloat16 => 2,
            DType::Float64 => 8,
        }
    }
}

/// Bytes per element of an ONNX element type code (8 for types without a fixed size).
pub fn onnx_type_size(code: i32) -> usize {
    match code {
        2 | 3 | 9 | 17..=20 => 1,
        4 | 5 | 10 | 16 => 2,
        1 | 6 | 12 => 4,
        _ => 8,
    }
}

/// A human name of an ONNX element type code, for error messages.
pub fn onnx_type_name(code: i32) -> &'static str {
    match code {
        1 => "float32",
        2 => "uint8",
        3 => "int8",
        4 => "uint16",
        5 => "int16",
        6 => "int32",
        7 => "int64",
        9 => "bool",
        10 => "float16",
        11 => "float64",
        16 => "bfloat16",
        17..=20 => "float8",
        21 => "uint4",
        22 => "int4",
        _ => "unsupported type",
    }
}

/// Number of elements of a shape (1 for a scalar).
pub fn numel(dims: &[i64]) -> usize {
    dims.iter().map(|&d| d.max(0) as usize).product()
}

/// The ONNX dims as an ndarray shape (negative dims count as 0, as in [`numel`]).
pub fn shape(dims: &[i64]) -> IxDyn {
    IxDyn(&dims.iter().map(|&d| d.max(0) as usize).collect::<Vec<_>>())
}

/// Decode a float tensor into an f64 array of its ONNX dims (exact for every supported
/// type; a scalar is a 0-dimensional array of one value).
pub fn decode(t: &TensorProto) -> Result<ArrayD<f64>> {
    let dtype = DType::from_onnx(t.data_type).with_context(|| {
        format!(
            "tensor '{}' has element type {} (code {}); only float tensors can be parameters",
            t.name,
            onnx_type_name(t.data_type),
            t.data_type
        )
    })?;
    let n = numel(&t.dims);
    let values: Vec<f64> = if !t.raw_data.is_empty() {
        if t.raw_data.len() != n * dtype.size() {
            bail!(
                "tensor '{}' has {} bytes of data, its shape {:?} of {:?} needs {}",
                t.name,
                t.raw_data.len(),
                t.dims,
                dtype,
                n * dtype.size()
            );
        }
        decode_raw(&t.raw_data, dtype)
    } else {
        match dtype {
            DType::Float32 => t.float_data.iter().map(|&v| v as f64).collect(),
            DType::Float64 => t.double_data.clone(),
            // float16/bfloat16 typed data lives in int32_data, one value per element.
            DType::Float16 => t.int32_data.iter().map(|&v| half::f16::from_bits(v as u16).to_f64()).collect(),
            DType::Bfloat16 => t.int32_data.iter().map(|&v| half::bf16::from_bits(v as u16).to_f64()).collect(),
        }
    };
    if values.len() != n {
        bail!("tensor '{}' holds {} values, its shape {:?} needs {}", t.name, values.len(), t.dims, n);
    }
    ArrayD::from_shape_vec(shape(&t.dims), values).with_context(|| format!("tensor '{}': shape {:?}", t.name, t.dims))
}

fn decode_raw(raw: &[u8], dtype: DType) -> Vec<f64> {
    match dtype {
        DType::Float32 => raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64).collect(),
        DType::Float64 => raw.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect(),
        DType::Float16 => raw.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f64()).collect(),
        DType::Bfloat16 => raw.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f64()).collect(),
    }
}

/// Encode values (in order: a slice, a `Vec`, or an array in logical order) as
/// little-endian raw data of the given type.
pub fn encode_raw<'a>(values: impl IntoIterator<Item = &'a f64>, dtype: DType) -> Vec<u8> {
    let values = values.into_iter();
    let mut out = Vec::with_capacity(values.size_hint().0 * dtype.size());
    for &v in values {
        match dtype {
            DType::Float32 => out.extend_from_slice(&(v as f32).to_le_bytes()),
            DType::Float64 => out.extend_from_slice(&v.to_le_bytes()),
            DType::Float16 => out.extend_from_slice(&half::f16::from_f64(v).to_le_bytes()),
            DType::Bfloat16 => out.extend_from_slice(&half::bf16::from_f64(v).to_le_bytes()),
        }
    }
    out
}

/// Replace a tensor's values in place (row-major, as many as its shape holds), keeping
/// its name, shape and element type. Takes a slice, a `Vec` or an ndarray array/view.
pub fn set_values<'a>(t: &mut TensorProto, values: impl IntoIterator<Item = &'a f64>) -> Result<()> {
    let dtype = DType::from_onnx(t.data_type).with_context(|| format!("tensor '{}' is not a float tensor", t.name))?;
    let raw = encode_raw(values, dtype);
    let n = numel(&t.dims);
    if raw.len() != n * dtype.size() {
        bail!("tensor '{}': shape {:?} holds {n} values, got {}", t.name, t.dims, raw.len() / dtype.size());
    }
    t.raw_data = raw;
    t.float_data.clear();
    t.double_data.clear();
    t.int32_data.clear();
    t.external_data.clear();
    t.data_location = DataLocation::DEFAULT.into();
    Ok(())
}

/// Check that an external-data `location` (from an untrusted file) stays inside the
/// model's folder: relative, no `..`, no root or drive prefix.
pub fn confined_location(location: &str) -> Result<&Path> {
    let p = Path::new(location);
    if location.is_empty() {
        bail!("external data has an empty location");
    }
    for c in p.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            _ => bail!(
                "external data location '{location}' points outside the model's folder \
                 (only relative paths without '..' are allowed)"
            ),
        }
    }
    Ok(p)
}

/// If the tensor's data is external, read it from `dir` (the model's folder) into
/// `raw_data`, so the in-memory model is self-contained.
pub fn internalize(t: &mut TensorProto, dir: &Path) -> Result<()> {
    if t.data_location.enum_value_or_default() != DataLocation::EXTERNAL {
        return Ok(());
    }
    let (mut location, mut offset, mut length) = (None, 0u64, None);
    let number = |key: &str, v: &str| {
        v.parse::<u64>().with_context(|| format!("tensor '{}': external data {key} '{v}'", t.name))
    };
    let mut seen = std::collections::HashMap::new();
    for kv in &t.external_data {
        // A key given twice is ambiguous: ONNX Runtime refuses a second location and reads
        // the first length, so no choice here could be sure to read its bytes.
        if let Some(first) = seen.insert(kv.key.as_str(), kv.value.as_str()) {
            bail!(
                "tensor '{}': external data gives '{}' twice ('{}' and '{}')",
                t.name,
                kv.key,
                first.escape_debug(),
                kv.value.escape_debug()
            );
        }
        match kv.key.as_str() {
            "location" => location = Some(kv.value.clone()),
            "offset" => offset = number("offset", &kv.value)?,
            "length" => length = Some(number("length", &kv.value)?),
            _ => {}
        }
    }
    let location = location.with_context(|| format!("tensor '{}': external data without location", t.name))?;
    let rel = confined_location(&location).with_context(|| format!("tensor '{}'", t.name))?;
    let path = dir.join(rel);
    let cannot =
        |e: std::io::Error| anyhow::anyhow!("tensor '{}': cannot read external data {}: {e}", t.name, path.display());
    // Where it really is, before anything is read: inside the folder (no symlink escapes)
    // and a regular file (a FIFO or a device such as /dev/zero would never end).
    let real = path.canonicalize().map_err(cannot)?;
    let root = dir.canonicalize().map_err(cannot)?;
    if !real.starts_with(&root) {
        bail!("tensor '{}': external data {} resolves outside the model's folder", t.name, path.display());
    }
    // (Checked before opening: opening a FIFO waits for a writer.)
    let meta = std::fs::metadata(&real).map_err(cannot)?;
    if !meta.is_file() {
        bail!("tensor '{}': external data {} is not a regular file", t.name, path.display());
    }
    let mut file = std::fs::File::open(&real).map_err(cannot)?;
    let size = meta.len();
    // Fixed-size numeric types (floats, and the integers of quantized weights) know their
    // length; others read to the end of the file.
    let fixed = matches!(t.data_type, 1..=7 | 9..=13 | 16);
    let want = length.unwrap_or_else(|| {
        if fixed {
            (numel(&t.dims) * onnx_type_size(t.data_type)) as u64
        } else {
            size - offset.min(size)
        }
    });
    if offset.checked_add(want).is_none_or(|end| end > size) {
        bail!(
            "tensor '{}': external data {} has {size} bytes, needs offset {offset} + length {want}",
            t.name,
            path.display()
        );
    }
    // Only the tensor's bytes: one file often holds every tensor of the model.
    use std::io::{Read, Seek, SeekFrom};
    let mut bytes = vec![0u8; want as usize];
    file.seek(SeekFrom::Start(offset)).and_then(|_| file.read_exact(&mut bytes)).map_err(cannot)?;
    t.raw_data = bytes;
    t.external_data.clear();
    t.data_location = DataLocation::DEFAULT.into();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(dtype: i32, dims: Vec<i64>) -> TensorProto {
        let mut t = TensorProto::new();
        t.name = "t".into();
        t.data_type = dtype;
        t.dims = dims;
        t
    }

    #[test]
    fn raw_and_typed_float32_agree() {
        let mut a = tensor(1, vec![3]);
        a.float_data = vec![1.5, -2.0, 0.25];
        let mut b = tensor(1, vec![3]);
        set_values(&mut b, &[1.5, -2.0, 0.25]).unwrap();
        assert_eq!(decode(&a).unwrap(), decode(&b).unwrap());
    }

    #[test]
    fn float16_roundtrip_is_exact_for_representable_values() {
        let mut t = tensor(10, vec![2, 2]);
        set_values(&mut t, &[0.5, -1.0, 2.0, 0.125]).unwrap();
        assert_eq!(t.raw_data.len(), 8);
        assert_eq!(decode(&t).unwrap(), ndarray::array![[0.5, -1.0], [2.0, 0.125]].into_dyn());
        // typed float16 in int32_data
        let mut u = tensor(10, vec![1]);
        u.int32_data = vec![half::f16::from_f32(3.0).to_bits() as i32];
        assert_eq!(decode(&u).unwrap().as_slice(), Some(&[3.0][..]));
    }

    #[test]
    fn decoded_arrays_keep_the_onnx_dims_in_row_major_order() {
        // float64 typed data, dims 2x1x3: element [i, 0, k] is value i*3 + k.
        let mut t = tensor(11, vec![2, 1, 3]);
        t.double_data = (0..6).map(f64::from).collect();
        let a = decode(&t).unwrap();
        assert_eq!(a.shape(), &[2, 1, 3]);
        assert_eq!(a[[1, 0, 2]], 5.0);
        assert_eq!(a[[0, 0, 1]], 1.0);
        // bfloat16 raw data (1.5 and -4 are exact in bfloat16), then a scalar.
        let mut b = tensor(16, vec![2]);
        set_values(&mut b, &[1.5, -4.0]).unwrap();
        assert_eq!(decode(&b).unwrap().as_slice(), Some(&[1.5, -4.0][..]));
        let mut s = tensor(1, vec![]);
        s.float_data = vec![7.0];
        let a = decode(&s).unwrap();
        assert_eq!((a.ndim(), a.len(), a.iter().next().copied()), (0, 1, Some(7.0)));
    }

    #[test]
    fn set_values_takes_arrays_and_refuses_a_wrong_count() {
        let mut t = tensor(1, vec![2, 2]);
        let a = ndarray::array![[1.0, 2.0], [3.0, 4.0]].into_dyn();
        set_values(&mut t, &a).unwrap();
        assert_eq!(decode(&t).unwrap(), a);
        set_values(&mut t, a.t()).unwrap();
        assert_eq!(decode(&t).unwrap(), ndarray::array![[1.0, 3.0], [2.0, 4.0]].into_dyn());
        assert!(set_values(&mut t, &[1.0, 2.0, 3.0]).unwrap_err().to_string().contains("holds 4 values, got 3"));
    }

    #[test]
    fn wrong_length_and_int_types_are_errors() {
        let mut t = tensor(1, vec![4]);
        t.raw_data = vec![0; 12];
        assert!(decode(&t).unwrap_err().to_string().contains("needs 16"));
        let t = tensor(7, vec![1]);
        assert!(decode(&t).unwrap_err().to_string().contains("int64"));
    }

    #[test]
    fn locations_outside_the_folder_are_refused() {
        assert!(confined_location("w.onnx.data").is_ok());
        assert!(confined_location("sub/w.data").is_ok());
        assert!(confined_location("../w.data").is_err());
        assert!(confined_location("/etc/passwd").is_err());
        assert!(confined_location("a/../../b").is_err());
    }
}
