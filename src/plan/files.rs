//! The bytes of a plan's weight files: `reused.safetensors` (the `safetensors` crate) and
//! `grafted.onnx`, inline or with its tensor data in `grafted.onnx.data` beside it.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use ndarray::ArrayD;
use onnx_protobuf::{tensor_proto::DataLocation, Message, ModelProto, StringStringEntryProto};
use safetensors::tensor::{serialize, TensorView};
use safetensors::Dtype;

use crate::model::{tensor, DType};

/// The grafted model's file name.
pub const GRAFTED: &str = "grafted.onnx";
/// Its external data file's name, when it has one.
pub const GRAFTED_DATA: &str = "grafted.onnx.data";
/// The reused tensors' file name.
pub const SAFETENSORS: &str = "reused.safetensors";
/// The plan's file name.
pub const PLAN: &str = "plan.json";

/// Tensors stored smaller than this stay inline in an externalized model.
const EXTERNAL_MIN_BYTES: usize = 1024;
/// Above this much tensor data, a model is written with external data (protobuf files
/// cannot exceed 2 GiB).
const INLINE_MAX_BYTES: usize = 1 << 30;

/// One tensor of `reused.safetensors`.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its key: a target tensor name.
    pub key: String,
    /// Element type written.
    pub dtype: DType,
    /// Values, in row-major order of their shape.
    pub values: ArrayD<f64>,
}

fn st_dtype(d: DType) -> Dtype {
    match d {
        DType::Float32 => Dtype::F32,
        DType::Float16 => Dtype::F16,
        DType::Float64 => Dtype::F64,
        DType::Bfloat16 => Dtype::BF16,
    }
}

/// `reused.safetensors`: one tensor per distinct key (the first entry of a key is kept;
/// entries sharing a key hold the same tensor), header metadata `format: pt`.
pub fn safetensors(entries: &[Entry]) -> Result<Vec<u8>> {
    let mut seen = std::collections::HashSet::new();
    let owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = entries
        .iter()
        .filter(|e| seen.insert(e.key.clone()))
        .map(|e| {
            (e.key.clone(), st_dtype(e.dtype), e.values.shape().to_vec(), tensor::encode_raw(e.values.iter(), e.dtype))
        })
        .collect();
    let mut views = Vec::with_capacity(owned.len());
    for (key, dtype, shape, bytes) in &owned {
        let view = TensorView::new(*dtype, shape.clone(), bytes).with_context(|| format!("tensor '{key}'"))?;
        views.push((key.clone(), view));
    }
    // One metadata entry: the header's bytes do not depend on a hash map's order.
    let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    serialize(views, Some(meta)).context("writing reused.safetensors")
}

/// The grafted model's files: `grafted.onnx` alone when the target kept every tensor inline
/// (and they fit one protobuf file), else also `grafted.onnx.data` (location relative: the
/// same folder) holding the initializers the target kept external, and when the tensors are
/// too large for one file, every initializer of at least 1 KiB.
pub fn grafted(m: &ModelProto, target_external: &BTreeSet<String>) -> Result<Vec<(String, Vec<u8>)>> {
    let too_large = m.graph.initializer.iter().map(|t| t.raw_data.len()).sum::<usize>() > INLINE_MAX_BYTES;
    if target_external.is_empty() && !too_large {
        return Ok(vec![(GRAFTED.into(), m.write_to_bytes().context("serializing grafted.onnx")?)]);
    }
    let mut m = m.clone();
    let mut blob = Vec::new();
    for t in m.graph.mut_or_insert_default().initializer.iter_mut() {
        let outside = target_external.contains(&t.name) || (too_large && t.raw_data.len() >= EXTERNAL_MIN_BYTES);
        if !outside || t.raw_data.is_empty() {
            continue;
        }
        let offset = blob.len();
        blob.extend_from_slice(&t.raw_data);
        let kv = |k: &str, v: String| {
            let mut e = StringStringEntryProto::new();
            e.key = k.into();
            e.value = v;
            e
        };
        t.external_data = vec![
            kv("location", GRAFTED_DATA.into()),
            kv("offset", offset.to_string()),
            kv("length", t.raw_data.len().to_string()),
        ];
        t.raw_data.clear();
        t.data_location = DataLocation::EXTERNAL.into();
    }
    Ok(vec![(GRAFTED.into(), m.write_to_bytes().context("serializing grafted.onnx")?), (GRAFTED_DATA.into(), blob)])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The format by hand: 8-byte little-endian header length, JSON header, raw data.
    #[test]
    fn safetensors_layout_by_hand() {
        let e = |k: &str, v: Vec<f64>, d| Entry {
            key: k.into(),
            dtype: d,
            values: ArrayD::from_shape_vec(vec![v.len()], v).unwrap(),
        };
        let bytes = safetensors(&[
            e("b", vec![1.5, -2.0], DType::Float32),
            e("a", vec![0.5], DType::Float16),
            e("b", vec![9.0, 9.0], DType::Float32),
        ])
        .unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        assert_eq!(header["__metadata__"]["format"], "pt");
        assert_eq!(header["b"]["dtype"], "F32");
        assert_eq!(header["b"]["shape"], serde_json::json!([2]));
        assert_eq!(header["a"]["dtype"], "F16");
        let data = &bytes[8 + n..];
        let (s, e2) = (
            header["b"]["data_offsets"][0].as_u64().unwrap() as usize,
            header["b"]["data_offsets"][1].as_u64().unwrap() as usize,
        );
        let b: Vec<f32> = data[s..e2].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(b, vec![1.5, -2.0], "the first entry of a key is kept");
        let s = header["a"]["data_offsets"][0].as_u64().unwrap() as usize;
        assert_eq!(half::f16::from_le_bytes([data[s], data[s + 1]]).to_f64(), 0.5);
        assert_eq!(
            safetensors(&[e("a", vec![0.5], DType::Float16)]).unwrap(),
            safetensors(&[e("a", vec![0.5], DType::Float16)]).unwrap()
        );
    }
}
