//! Element types of a graph's tensors from declarations and ONNX's per-op type rules.
//!
//! Only what the rules fix is returned: an op this table does not know (a custom domain, a
//! control-flow node) leaves its outputs out, and callers ask ONNX Runtime instead (the cost
//! probe runs the model with every tensor exposed untyped and reads back each real type).

use std::collections::HashMap;

use onnx_protobuf::NodeProto;

use super::Model;

/// ONNX `TensorProto.DataType` codes used by the rules.
const FLOAT: i32 = 1;
const UINT8: i32 = 2;
const INT32: i32 = 6;
const INT64: i32 = 7;
const BOOL: i32 = 9;

/// Ops whose every output has the element type of their first input.
const SAME_AS_FIRST: &[&str] = &[
    "Abs",
    "Acos",
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Ceil",
    "Celu",
    "Clip",
    "Concat",
    "Conv",
    "ConvTranspose",
    "Cos",
    "DepthToSpace",
    "Div",
    "Dropout",
    "Elu",
    "Erf",
    "Exp",
    "Expand",
    "Flatten",
    "Floor",
    "Gather",
    "GatherElements",
    "GatherND",
    "Gelu",
    "Gemm",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "GroupNormalization",
    "HardSigmoid",
    "HardSwish",
    "Identity",
    "InstanceNormalization",
    "LRN",
    "LayerNormalization",
    "LeakyRelu",
    "Log",
    "LogSoftmax",
    "MatMul",
    "Max",
    "Mean",
    "Min",
    "Mish",
    "Mod",
    "Mul",
    "Neg",
    "Pad",
    "Pow",
    "PRelu",
    "Range",
    "Reciprocal",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSum",
    "ReduceSumSquare",
    "Relu",
    "Reshape",
    "Resize",
    "Round",
    "ScatterElements",
    "ScatterND",
    "Selu",
    "Sigmoid",
    "Sign",
    "Sin",
    "Slice",
    "Softmax",
    "Softplus",
    "Softsign",
    "SpaceToDepth",
    "Split",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Sum",
    "Tanh",
    "ThresholdedRelu",
    "Tile",
    "Transpose",
    "Trilu",
    "Unsqueeze",
    "Upsample",
];

/// Element type (ONNX code) of every tensor the rules can fix: initializers and declared
/// values as written, then per node:
/// `Shape`/`Size`/`NonZero`/`ArgMax`/`ArgMin` -> int64; `TopK`/`MaxPool`/`Unique` -> the data's
/// type, then int64 indices; `Cast` -> `to`; `CastLike` -> its second input's; `Constant` ->
/// its value's; `ConstantOfShape` -> its `value`'s (float32 when absent); comparisons and
/// logic -> bool; `EyeLike`/`Random*`/`Bernoulli` -> `dtype` (else their input's or float32);
/// `Where` -> its second input's; `QuantizeLinear` -> its zero point's (uint8 when absent);
/// `DequantizeLinear` -> its scale's; `ConvInteger`/`MatMulInteger` -> int32; `QLinearConv`/
/// `QLinearMatMul` -> their output zero point's; the ops of [`SAME_AS_FIRST`] -> their first
/// input's. Other ops are left out.
pub fn elem_types(model: &Model) -> HashMap<String, i32> {
    let g = &model.proto.graph;
    let mut t: HashMap<String, i32> = HashMap::new();
    for i in &g.initializer {
        t.insert(i.name.clone(), i.data_type);
    }
    for v in g.input.iter().chain(&g.value_info).chain(&g.output) {
        let e = v.type_.tensor_type().elem_type;
        if e != 0 {
            t.insert(v.name.clone(), e);
        }
    }
    for n in &g.node {
        for (k, o) in n.output.iter().enumerate().filter(|(_, o)| !o.is_empty()) {
            if let Some(ty) = output_type(n, k, &t) {
                t.entry(o.clone()).or_insert(ty);
            }
        }
    }
    t
}

/// The element type of output `k` of node `n` by ONNX's rule, given the types known so far.
fn output_type(n: &NodeProto, k: usize, t: &HashMap<String, i32>) -> Option<i32> {
    let input = |i: usize| n.input.get(i).filter(|x| !x.is_empty()).and_then(|x| t.get(x).copied());
    let attr = |name: &str| n.attribute.iter().find(|a| a.name == name);
    let attr_i = |name: &str| attr(name).map(|a| a.i as i32).filter(|&v| v != 0);
    if !n.domain.is_empty() && n.domain != "ai.onnx" {
        return None;
    }
    match n.op_type.as_str() {
        "Shape" | "Size" | "NonZero" | "ArgMax" | "ArgMin" => Some(INT64),
        "TopK" | "MaxPool" | "Unique" => {
            if k == 0 {
                input(0)
            } else {
                Some(INT64)
            }
        }
        "Cast" => attr_i("to"),
        "CastLike" => input(1),
        "Constant" => constant_type(n),
        "ConstantOfShape" => Some(attr("value").and_then(|a| a.t.as_ref()).map_or(FLOAT, |v| v.data_type)),
        "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" | "Not" | "And" | "Or" | "Xor" | "IsNaN"
        | "IsInf" => Some(BOOL),
        "EyeLike" | "RandomUniformLike" | "RandomNormalLike" | "Bernoulli" => attr_i("dtype").or_else(|| input(0)),
        "RandomUniform" | "RandomNormal" => Some(attr_i("dtype").unwrap_or(FLOAT)),
        "Multinomial" => Some(attr_i("dtype").unwrap_or(INT32)),
        "Where" => input(1).or_else(|| input(2)),
        "QuantizeLinear" => attr_i("output_dtype").or_else(|| input(2)).or(Some(UINT8)),
        "DequantizeLinear" => input(1),
        "DynamicQuantizeLinear" => Some(if k == 1 { FLOAT } else { UINT8 }),
        "ConvInteger" | "MatMulInteger" => Some(INT32),
        "QLinearConv" | "QLinearMatMul" => input(7),
        op if SAME_AS_FIRST.contains(&op) => input(0),
        _ => None,
    }
}

/// The type of a `Constant` node's value, whichever attribute holds it.
fn constant_type(n: &NodeProto) -> Option<i32> {
    n.attribute.iter().find_map(|a| match a.name.as_str() {
        "value" => a.t.as_ref().map(|t| t.data_type),
        "sparse_value" => a.sparse_tensor.as_ref().map(|s| s.values.data_type),
        "value_float" | "value_floats" => Some(FLOAT),
        "value_int" | "value_ints" => Some(INT64),
        "value_string" | "value_strings" => Some(8),
        _ => None,
    })
}

#[cfg(test)]
mod tests;
