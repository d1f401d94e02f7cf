//! Half-precision exports computed in float32, on load.
//!
//! A `model.half()` export (float16 input, weights and activations), a bfloat16 one, or a
//! mixed one (`onnxconverter_common`'s `keep_io_types`: float32 input and output, Casts to
//! float16 inside) cannot take the audit's float32 images, and ONNX Runtime's CPU provider
//! lacks half kernels for many ops. Such a graph is rewritten to compute in float32 before
//! anything else reads it: every float16/bfloat16 tensor (initializers, `Constant` and
//! `ConstantOfShape` values, any tensor attribute, subgraphs included) becomes float32 —
//! exact, every half value is a float32 value — every attribute that names an element type
//! (`Cast.to`, the `dtype` of EyeLike/Random*/Bernoulli, ...) names float32 instead of a
//! half type, and so do the declared types of graph inputs, outputs and value_info. The
//! weights keep their numbers; the activations are no longer rounded to half between ops,
//! which [`Upcast::warning`] says.
//!
//! A graph that only *stores* half weights and casts them to float32 before use computes in
//! float32: it is left as it is (`super::lift` reads past those Casts).

use std::collections::{BTreeSet, HashMap, HashSet};

use onnx_protobuf::{type_proto, GraphProto, NodeProto, TensorProto, TypeProto};

use super::tensor::{self, DType};

const FLOAT: i32 = 1;
const FLOAT16: i32 = 10;
const BFLOAT16: i32 = 16;

/// ONNX ops and their int attributes that name an element type (the ONNX op list, every
/// opset).
const TYPE_ATTRIBUTES: &[(&str, &str)] = &[
    ("Attention", "softmax_precision"),
    ("Bernoulli", "dtype"),
    ("BlackmanWindow", "output_datatype"),
    ("Cast", "to"),
    ("DequantizeLinear", "output_dtype"),
    ("EyeLike", "dtype"),
    ("GroupNormalization", "stash_type"),
    ("HammingWindow", "output_datatype"),
    ("HannWindow", "output_datatype"),
    ("LayerNormalization", "stash_type"),
    ("MelWeightMatrix", "output_datatype"),
    ("QuantizeLinear", "precision"),
    ("RMSNormalization", "stash_type"),
    ("RandomNormal", "dtype"),
    ("RandomNormalLike", "dtype"),
    ("RandomUniform", "dtype"),
    ("RandomUniformLike", "dtype"),
    ("Range", "stash_type"),
    ("SequenceEmpty", "dtype"),
];

fn is_half(code: i32) -> bool {
    code == FLOAT16 || code == BFLOAT16
}

fn onnx_domain(n: &NodeProto) -> bool {
    n.domain.is_empty() || n.domain == "ai.onnx"
}

/// The element-type attribute of `n` that names a half type, if one does.
fn half_type_attribute(n: &NodeProto) -> Option<i32> {
    if !onnx_domain(n) {
        return None;
    }
    n.attribute
        .iter()
        .find(|a| TYPE_ATTRIBUTES.contains(&(n.op_type.as_str(), a.name.as_str())) && is_half(a.i as i32))
        .map(|a| a.i as i32)
}

/// What the rewrite changed in a graph that computed in half precision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upcast {
    /// The half types it computed in (float16, bfloat16), sorted.
    pub types: Vec<DType>,
    /// Whether its real input was half (a `model.half()` export); otherwise it took float32
    /// and cast to half inside (a mixed export).
    pub half_input: bool,
    /// Tensors made float32: initializers and tensor attributes (Constant values, ...).
    pub tensors: usize,
    /// Element-type attributes that named a half type (`Cast.to`, ...), now float32.
    pub type_attributes: usize,
}

impl Upcast {
    /// `float16`, `bfloat16`, or `float16 and bfloat16`.
    pub fn type_name(&self) -> String {
        let names: Vec<&str> =
            self.types.iter().map(|t| if *t == DType::Bfloat16 { "bfloat16" } else { "float16" }).collect();
        names.join(" and ")
    }

    /// What the audit did, for the model's warning (the caller puts the model's name first).
    pub fn warning(&self) -> String {
        let t = self.type_name();
        let how = match (self.half_input, self.type_attributes) {
            (true, _) => String::new(),
            (false, 0) => format!(" (its input is not {t}; {t} tensors are read inside)"),
            (false, n) => {
                format!(" (float32 input; inside, {n} Cast(s) or other element-type attribute(s) to {t}, now float32)")
            }
        };
        format!(
            "computes in {t}{how}: audited in float32 with its {t} weights upcast exactly (activations are not rounded to {t} as a {t} run would)"
        )
    }

    /// The relative rounding step of its half type (2^-11 for float16, 2^-8 for bfloat16: the
    /// coarser when both).
    pub fn rounding(&self) -> f64 {
        if self.types.contains(&DType::Bfloat16) {
            2f64.powi(-8)
        } else {
            2f64.powi(-11)
        }
    }
}

/// The half types `g` computes in: those of its real inputs and outputs, those an
/// element-type attribute names (a Cast to float16), a half `ConstantOfShape` value, and
/// those of stored tensors (initializers, Constant values, through Identity) that a node
/// other than Cast/Identity reads. Empty for a float32 graph, also one that only stores half
/// weights and casts them to float32.
pub fn half_types(g: &GraphProto) -> BTreeSet<i32> {
    let mut found = BTreeSet::new();
    let inits: HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    let io = g.input.iter().filter(|v| !inits.contains(v.name.as_str())).chain(&g.output);
    found.extend(io.map(|v| v.type_.tensor_type().elem_type).filter(|&e| is_half(e)));
    scan(g, &HashMap::new(), &mut found);
    found
}

/// [`half_types`] of the nodes of `g` (and its subgraphs), given the half tensors stored in
/// the graphs around it.
fn scan(g: &GraphProto, outer: &HashMap<String, i32>, found: &mut BTreeSet<i32>) {
    let mut stored = outer.clone();
    stored.extend(g.initializer.iter().filter(|t| is_half(t.data_type)).map(|t| (t.name.clone(), t.data_type)));
    for n in &g.node {
        found.extend(half_type_attribute(n));
        let value = n.attribute.iter().find(|a| a.name == "value").and_then(|a| a.t.as_ref());
        match (n.op_type.as_str(), value) {
            ("Constant", Some(t)) if is_half(t.data_type) => {
                stored.extend(n.output.first().map(|o| (o.clone(), t.data_type)));
            }
            ("ConstantOfShape", Some(t)) if is_half(t.data_type) => {
                found.insert(t.data_type);
            }
            ("Identity", _) => {
                if let (Some(&ty), Some(o)) = (n.input.first().and_then(|i| stored.get(i)), n.output.first()) {
                    stored.insert(o.clone(), ty);
                }
            }
            ("Cast", _) => {}
            _ => found.extend(n.input.iter().filter_map(|i| stored.get(i).copied())),
        }
        for a in &n.attribute {
            for sub in a.g.as_ref().into_iter().chain(&a.graphs) {
                scan(sub, &stored, found);
            }
        }
    }
}

/// Rewrite `g` to compute in float32 if it computes in half precision (see the module
/// documentation); `None` when it does not (nothing changed). A graph that reinterprets bits
/// (`BitCast`) cannot be rewritten exactly: the error says so.
pub fn upcast(g: &mut GraphProto) -> Result<Option<Upcast>, String> {
    let types = half_types(g);
    if types.is_empty() {
        return Ok(None);
    }
    let inits: HashSet<String> = g.initializer.iter().map(|t| t.name.clone()).collect();
    let half_input = g.input.iter().any(|v| !inits.contains(&v.name) && is_half(v.type_.tensor_type().elem_type));
    let mut up = Upcast {
        types: types.iter().filter_map(|&t| DType::from_onnx(t)).collect(),
        half_input,
        tensors: 0,
        type_attributes: 0,
    };
    rewrite(g, &mut up)?;
    Ok(Some(up))
}

fn rewrite(g: &mut GraphProto, up: &mut Upcast) -> Result<(), String> {
    for t in g.initializer.iter_mut().chain(g.sparse_initializer.iter_mut().flat_map(|s| s.values.as_mut())) {
        to_float32(t, up)?;
    }
    for v in g.input.iter_mut().chain(g.output.iter_mut()).chain(g.value_info.iter_mut()) {
        if let Some(t) = v.type_.as_mut() {
            retype(t);
        }
    }
    for n in g.node.iter_mut() {
        if n.op_type == "BitCast" && onnx_domain(n) {
            let what =
                if n.name.is_empty() { "a BitCast node".to_string() } else { format!("BitCast node '{}'", n.name) };
            return Err(format!(
                "the graph computes in half precision and {what} reinterprets bits: it cannot be audited in float32 (re-export it in float32)"
            ));
        }
        let op = n.op_type.clone();
        let onnx = onnx_domain(n);
        for a in n.attribute.iter_mut() {
            if onnx && TYPE_ATTRIBUTES.contains(&(op.as_str(), a.name.as_str())) && is_half(a.i as i32) {
                a.i = FLOAT as i64;
                up.type_attributes += 1;
            }
            let sparse = a.sparse_tensor.as_mut().into_iter().chain(a.sparse_tensors.iter_mut());
            let tensors = a.t.as_mut().into_iter().chain(a.tensors.iter_mut());
            for t in tensors.chain(sparse.flat_map(|s| s.values.as_mut())) {
                to_float32(t, up)?;
            }
            for t in a.tp.as_mut().into_iter().chain(a.type_protos.iter_mut()) {
                retype(t);
            }
            for sub in a.g.as_mut().into_iter().chain(a.graphs.iter_mut()) {
                rewrite(sub, up)?;
            }
        }
    }
    Ok(())
}

/// A half tensor as the same numbers in float32 (exact); other tensors stay.
fn to_float32(t: &mut TensorProto, up: &mut Upcast) -> Result<(), String> {
    if !is_half(t.data_type) {
        return Ok(());
    }
    // Subgraph tensors were not checked on load: their dims and data first.
    super::validate::dims(t).and_then(|_| super::validate::data(t))?;
    let values = tensor::decode(t).map_err(|e| format!("{e:#}"))?;
    t.raw_data = tensor::encode_raw(values.iter(), DType::Float32);
    t.int32_data.clear();
    t.data_type = FLOAT;
    up.tensors += 1;
    Ok(())
}

/// A declared type with half element types made float32 (tensors, and inside sequences,
/// optionals and maps).
fn retype(t: &mut TypeProto) {
    use type_proto::Value;
    match t.value.as_mut() {
        Some(Value::TensorType(x)) if is_half(x.elem_type) => x.elem_type = FLOAT,
        Some(Value::SparseTensorType(x)) if is_half(x.elem_type) => x.elem_type = FLOAT,
        Some(Value::SequenceType(x)) => x.elem_type.as_mut().into_iter().for_each(retype),
        Some(Value::OptionalType(x)) => x.elem_type.as_mut().into_iter().for_each(retype),
        Some(Value::MapType(x)) => x.value_type.as_mut().into_iter().for_each(retype),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
