//! QDQ parameters: a `DequantizeLinear` of stored tensors feeding a conv's `W` or `B`.
//!
//! The (quantized tensor, scale, zero point) triple is the parameter: a swap replaces all
//! three, and weight metrics compare the dequantized values `(q - zero_point) * scale`
//! (one scale, or one per channel along `axis`), computed as ONNX Runtime computes them:
//! the integer difference converted to the scale's float type, times the scale, in that type.

use anyhow::{bail, Result};
use ndarray::ArrayD;
use onnx_protobuf::TensorProto;

use crate::model::tensor::{self, onnx_type_name, DType};
use crate::model::{Model, ParamSource};

/// Quantized element types a QDQ parameter may be stored as (ONNX codes).
const INT_TYPES: [i32; 5] = [2, 3, 4, 5, 6];

/// A `DequantizeLinear` of stored tensors: where its triple lives and how it broadcasts.
#[derive(Debug, Clone, PartialEq)]
pub struct Dequantize {
    /// Index of the `DequantizeLinear` node in `graph.node`.
    pub node: usize,
    /// The quantized tensor: name and location.
    pub q: (String, ParamSource),
    /// The scale.
    pub scale: (String, ParamSource),
    /// The zero point (absent: 0).
    pub zero_point: Option<(String, ParamSource)>,
    /// The channel axis of per-channel scales (non-negative); `None` for one scale.
    pub axis: Option<usize>,
}

/// The three tensors of a QDQ parameter, as stored (what a swap writes).
#[derive(Debug, Clone, PartialEq)]
pub struct Triple {
    /// Quantized tensor.
    pub q: TensorProto,
    /// Scale.
    pub scale: TensorProto,
    /// Zero point, when the node has one.
    pub zero_point: Option<TensorProto>,
}

/// The `DequantizeLinear` node that outputs `value`, if one does.
pub fn producer(model: &Model, value: &str) -> Option<usize> {
    model
        .proto
        .graph
        .node
        .iter()
        .position(|n| n.op_type == "DequantizeLinear" && n.output.first().is_some_and(|o| o == value))
}

/// The QDQ parameter that `value` is: `None` when no `DequantizeLinear` of a stored tensor
/// produces it; `Some(Err(why))` when one does but its triple cannot be swapped exactly.
pub fn find(model: &Model, value: &str) -> Option<Result<Dequantize, String>> {
    let node = producer(model, value)?;
    let n = &model.proto.graph.node[node];
    let q = model.resolve(n.input.first()?)?;
    Some(parse(model, node, q))
}

/// Read node `node` (a `DequantizeLinear` of the stored tensor `q`).
fn parse(model: &Model, node: usize, q: (String, ParamSource)) -> Result<Dequantize, String> {
    let n = &model.proto.graph.node[node];
    let stored = |slot: usize| -> Result<Option<(String, ParamSource)>, String> {
        match n.input.get(slot).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(name) => {
                model.resolve(name).map(Some).ok_or_else(|| format!("its input '{name}' is computed, not stored"))
            }
        }
    };
    let scale = stored(1)?.ok_or("it has no scale")?;
    let zero_point = stored(2)?;
    let attr = |name: &str| n.attribute.iter().find(|a| a.name == name).map(|a| a.i);
    if let Some(b) = attr("block_size").filter(|&b| b != 0) {
        return Err(format!(
            "blocked quantization (block_size {b}: one scale per block) is not supported; per-tensor and per-channel are"
        ));
    }
    let (qt, st) = (model.tensor(q.1), model.tensor(scale.1));
    if !INT_TYPES.contains(&qt.data_type) {
        return Err(format!(
            "its quantized tensor is {} (code {}); int8, uint8, int16, uint16 and int32 are supported",
            onnx_type_name(qt.data_type),
            qt.data_type
        ));
    }
    let Some(_) = DType::from_onnx(st.data_type) else {
        return Err(format!("its scale is {}, not a float type", onnx_type_name(st.data_type)));
    };
    if let Some(o) = attr("output_dtype").filter(|&o| o != 0 && o as i32 != st.data_type) {
        return Err(format!("its output_dtype {o} differs from its scale's type"));
    }
    let scales = tensor::numel(&st.dims);
    if let Some(zp) = &zero_point {
        let zt = model.tensor(zp.1);
        if zt.data_type != qt.data_type || tensor::numel(&zt.dims) != scales {
            return Err(format!(
                "its zero point ({} {:?}) does not match its quantized tensor ({}) and scale ({:?})",
                onnx_type_name(zt.data_type),
                zt.dims,
                onnx_type_name(qt.data_type),
                st.dims
            ));
        }
    }
    let axis = if scales == 1 {
        None
    } else {
        let rank = qt.dims.len() as i64;
        let a = attr("axis").unwrap_or(1);
        let a = if a < 0 { a + rank } else { a };
        if st.dims.len() != 1 || !(0..rank).contains(&a) || qt.dims[a as usize] != scales as i64 {
            return Err(format!(
                "its scale {:?} is neither one value nor one per channel of axis {a} of {:?}",
                st.dims, qt.dims
            ));
        }
        Some(a as usize)
    };
    Ok(Dequantize { node, q, scale, zero_point, axis })
}

/// Re-read the QDQ parameter of `DequantizeLinear` node `node`.
pub fn at(model: &Model, node: usize) -> Result<Dequantize> {
    let n = &model.proto.graph.node[node];
    let Some(q) = n.input.first().and_then(|x| model.resolve(x)) else {
        bail!("DequantizeLinear '{}' does not read a stored tensor", n.name);
    };
    parse(model, node, q).map_err(|why| anyhow::anyhow!("DequantizeLinear '{}': {why}", n.name))
}

/// The dequantized values, `(q - zero_point) * scale` broadcast along the axis, as f64 with
/// the quantized tensor's dims.
pub fn dequantize(model: &Model, d: &Dequantize) -> Result<ArrayD<f64>> {
    let qt = model.tensor(d.q.1);
    let st = model.tensor(d.scale.1);
    let q = ints(qt)?;
    let scale = tensor::decode(st)?;
    let zp = match &d.zero_point {
        Some(z) => ints(model.tensor(z.1))?,
        None => vec![0; scale.len()],
    };
    let dtype = DType::from_onnx(st.data_type).unwrap_or(DType::Float32);
    let scale: Vec<f64> = scale.iter().copied().collect();
    let (channels, inner) = match d.axis {
        Some(a) => (qt.dims[a].max(1) as usize, tensor::numel(&qt.dims[a + 1..]).max(1)),
        None => (1, 1),
    };
    let values = q
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = (i / inner) % channels;
            times(v - zp[c], scale[c], dtype)
        })
        .collect();
    Ok(ArrayD::from_shape_vec(tensor::shape(&qt.dims), values)?)
}

/// `diff * scale` in the scale's float type (as ONNX Runtime's kernel computes it).
fn times(diff: i64, scale: f64, dtype: DType) -> f64 {
    match dtype {
        DType::Float32 => (diff as f32 * scale as f32) as f64,
        DType::Float64 => diff as f64 * scale,
        DType::Float16 => half::f16::from_f32(diff as f32 * scale as f32).to_f64(),
        DType::Bfloat16 => half::bf16::from_f32(diff as f32 * scale as f32).to_f64(),
    }
}

/// The numbers of an integer tensor (raw little-endian bytes or `int32_data`).
pub fn ints(t: &TensorProto) -> Result<Vec<i64>> {
    let n = tensor::numel(&t.dims);
    let size = tensor::onnx_type_size(t.data_type);
    if !INT_TYPES.contains(&t.data_type) {
        bail!("tensor '{}' is {}, not an 8/16/32-bit integer tensor", t.name, onnx_type_name(t.data_type));
    }
    let v: Vec<i64> = if !t.raw_data.is_empty() {
        if t.raw_data.len() != n * size {
            bail!(
                "tensor '{}' has {} bytes of data, its shape {:?} needs {}",
                t.name,
                t.raw_data.len(),
                t.dims,
                n * size
            );
        }
        t.raw_data
            .chunks_exact(size)
            .map(|c| match t.data_type {
                2 => c[0] as i64,
                3 => c[0] as i8 as i64,
                4 => u16::from_le_bytes([c[0], c[1]]) as i64,
                5 => i16::from_le_bytes([c[0], c[1]]) as i64,
                _ => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64,
            })
            .collect()
    } else {
        // Typed data of these types lives in int32_data, one value per element.
        t.int32_data
            .iter()
            .map(|&x| match t.data_type {
                2 => x as u8 as i64,
                3 => x as i8 as i64,
                4 => x as u16 as i64,
                5 => x as i16 as i64,
                _ => x as i64,
            })
            .collect()
    };
    if v.len() != n {
        bail!("tensor '{}' holds {} values, its shape {:?} needs {n}", t.name, v.len(), t.dims);
    }
    Ok(v)
}

/// The stored triple of a QDQ parameter.
pub fn triple(model: &Model, d: &Dequantize) -> Triple {
    Triple {
        q: model.tensor(d.q.1).clone(),
        scale: model.tensor(d.scale.1).clone(),
        zero_point: d.zero_point.as_ref().map(|z| model.tensor(z.1).clone()),
    }
}

/// How a triple is quantized, for messages and compatibility: `int8, per-channel (axis 0,
/// 12 scales), zero point` / `uint8, per-tensor, no zero point`.
pub fn describe(model: &Model, d: &Dequantize) -> String {
    let st = model.tensor(d.scale.1);
    let how = match d.axis {
        Some(a) => format!("per-channel (axis {a}, {} scales)", tensor::numel(&st.dims)),
        None => "per-tensor".into(),
    };
    format!(
        "{} {:?}, {how}, {} scale{}",
        onnx_type_name(model.tensor(d.q.1).data_type),
        model.tensor(d.q.1).dims,
        onnx_type_name(st.data_type),
        if d.zero_point.is_some() { ", zero point" } else { ", no zero point" }
    )
}

/// Why a target and a source triple cannot be swapped one for the other (types, shapes,
/// axis or zero point differ), if they cannot.
pub fn mismatch(target: &Model, t: &Dequantize, source: &Model, s: &Dequantize) -> Option<String> {
    let sig = |m: &Model, d: &Dequantize| {
        let z = d.zero_point.as_ref().map(|z| m.tensor(z.1).data_type);
        (m.tensor(d.q.1).data_type, m.tensor(d.q.1).dims.clone(), m.tensor(d.scale.1).data_type, d.axis, z)
    };
    (sig(target, t) != sig(source, s))
        .then(|| format!("quantized triples differ: target {} vs source {}", describe(target, t), describe(source, s)))
}
