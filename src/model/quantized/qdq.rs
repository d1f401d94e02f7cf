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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::weights::compare;
    use onnx_protobuf::{AttributeProto, GraphProto, ModelProto, NodeProto};

    fn init(name: &str, data_type: i32, dims: &[i64], raw: Vec<u8>) -> TensorProto {
        let mut t = TensorProto::new();
        (t.name, t.data_type, t.dims, t.raw_data) = (name.into(), data_type, dims.to_vec(), raw);
        t
    }

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    /// One DequantizeLinear of `q` (int8 2x2 unless given) with the given scale, zero point
    /// and attributes, output `w`.
    fn model(q: TensorProto, scale: &[f32], zp: Option<TensorProto>, attrs: &[(&str, i64)]) -> Model {
        let mut g = GraphProto::new();
        let dims: &[i64] = if scale.len() == 1 { &[] } else { &[2] };
        g.initializer.push(q);
        g.initializer.push(init("s", 1, dims, f32s(scale)));
        let mut n = NodeProto::new();
        n.op_type = "DequantizeLinear".into();
        n.input = vec!["q".into(), "s".into()];
        if let Some(z) = zp {
            g.initializer.push(z);
            n.input.push("z".into());
        }
        n.output = vec!["w".into()];
        for (name, v) in attrs {
            let mut a = AttributeProto::new();
            (a.name, a.i) = (name.to_string(), *v);
            n.attribute.push(a);
        }
        g.node.push(n);
        let mut m = ModelProto::new();
        m.graph = Some(g).into();
        Model::index("m.onnx".into(), String::new(), m)
    }

    fn int8(name: &str, dims: &[i64], v: &[i8]) -> TensorProto {
        init(name, 3, dims, v.iter().map(|&x| x as u8).collect())
    }

    fn values(m: &Model) -> Vec<f64> {
        let d = find(m, "w").expect("a DequantizeLinear").expect("supported");
        dequantize(m, &d).unwrap().iter().copied().collect()
    }

    #[test]
    fn dequantized_values_per_tensor_and_per_channel_by_hand() {
        let q = || int8("q", &[2, 2], &[1, 3, -2, 0]);
        // One scale 0.5, zero point 1: (q - 1) * 0.5.
        let per_tensor = model(q(), &[0.5], Some(int8("z", &[], &[1])), &[]);
        assert_eq!(values(&per_tensor), [0.0, 1.0, -1.5, -0.5]);
        // Axis 0: row 0 (0.5, zp 1), row 1 (2, zp -1).
        let rows = model(q(), &[0.5, 2.0], Some(int8("z", &[2], &[1, -1])), &[("axis", 0)]);
        assert_eq!(values(&rows), [0.0, 1.0, -2.0, 2.0]);
        // Axis 1 (the default, as a ConvTranspose weight): column 0 (0.5, 1), column 1 (2, -1).
        let cols = model(q(), &[0.5, 2.0], Some(int8("z", &[2], &[1, -1])), &[]);
        assert_eq!(values(&cols), [0.0, 8.0, -1.5, 2.0]);
        // No zero point: 0.
        assert_eq!(values(&model(q(), &[0.25], None, &[])), [0.25, 0.75, -0.5, 0.0]);
        // uint8 with zero point 128; int32 in typed int32_data (a quantized bias).
        let u8s = model(init("q", 2, &[2], vec![200, 10]), &[0.25], Some(init("z", 2, &[], vec![128])), &[]);
        assert_eq!(values(&u8s), [18.0, -29.5]);
        let mut q32 = init("q", 6, &[2], vec![]);
        q32.int32_data = vec![-70000, 5];
        assert_eq!(values(&model(q32, &[0.5], None, &[])), [-35000.0, 2.5]);
    }

    #[test]
    fn rmse_of_dequantized_weights_by_hand() {
        let q = || int8("q", &[2, 2], &[1, 3, -2, 0]);
        let t = model(q(), &[0.5], Some(int8("z", &[], &[1])), &[]);
        let s = model(q(), &[0.5, 2.0], Some(int8("z", &[2], &[1, -1])), &[("axis", 0)]);
        let (tv, sv) = (values(&t), values(&s));
        // [0, 1, -1.5, -0.5] vs [0, 1, -2, 2]: differences 0, 0, 0.5, -2.5; mse (0.25 + 6.25) / 4.
        let c = compare(
            ArrayD::from_shape_vec(vec![4], tv).unwrap().view(),
            ArrayD::from_shape_vec(vec![4], sv).unwrap().view(),
        );
        assert!((c.rmse - 1.625f64.sqrt()).abs() < 1e-15, "{}", c.rmse);
        // std of the target: mean -0.25, squares 0.0625 + 1.5625 + 1.5625 + 0.0625 = 3.25 over 4.
        assert!((c.nrmse.unwrap() - (1.625f64 / 0.8125).sqrt()).abs() < 1e-15);
        // cosine: dot 0 + 1 + 3 - 1 = 3; |t| = sqrt(3.5), |s| = 3.
        assert!((c.cosine - 3.0 / (3.5f64.sqrt() * 3.0)).abs() < 1e-15);
    }

    #[test]
    fn unsupported_triples_say_why() {
        let q = || int8("q", &[2, 2], &[1, 3, -2, 0]);
        let why = |m: &Model| find(m, "w").unwrap().unwrap_err();
        let blocked = model(q(), &[0.5, 2.0], None, &[("axis", 0), ("block_size", 2)]);
        assert!(why(&blocked).contains("block_size 2"), "{}", why(&blocked));
        let int4 = model(init("q", 22, &[2], vec![0x21]), &[0.5], None, &[]);
        assert!(why(&int4).contains("int4"), "{}", why(&int4));
        let wrong_axis = model(int8("q", &[2, 3], &[0; 6]), &[0.5, 2.0], None, &[("axis", 1)]);
        assert!(why(&wrong_axis).contains("one per channel of axis 1"), "{}", why(&wrong_axis));
        let zp_type = model(q(), &[0.5], Some(init("z", 2, &[], vec![1])), &[]);
        assert!(why(&zp_type).contains("zero point"), "{}", why(&zp_type));
    }

    #[test]
    fn triples_of_other_types_or_layouts_do_not_swap() {
        let q = || int8("q", &[2, 2], &[1, 3, -2, 0]);
        let a = model(q(), &[0.5], Some(int8("z", &[], &[1])), &[]);
        let b = model(q(), &[0.5, 2.0], Some(int8("z", &[2], &[1, -1])), &[("axis", 0)]);
        let c = model(q(), &[0.7], Some(int8("z", &[], &[0])), &[]);
        let d = |m: &Model| find(m, "w").unwrap().unwrap();
        assert_eq!(mismatch(&a, &d(&a), &c, &d(&c)), None, "same layout, other numbers: swappable");
        let why = mismatch(&a, &d(&a), &b, &d(&b)).unwrap();
        assert!(why.contains("per-tensor") && why.contains("per-channel (axis 0, 2 scales)"), "{why}");
    }
}
