//! Nodes that draw random numbers on every run (`RandomNormal`, `RandomUniform`, their
//! `*Like` forms, `Multinomial`, `Bernoulli`): a model with one scores differently on every
//! run, so a swap's loss could not be told from the noise. So does a `Dropout` whose
//! `training_mode` input is a constant true (opset 12 on) with a ratio that is not a constant 0.

use std::collections::HashSet;

use onnx_protobuf::{FunctionProto, NodeProto, TensorProto};

use super::{control_flow, Model};

/// Ops whose output is random.
const RANDOM_OPS: [&str; 6] =
    ["RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"];

/// The first random node of the model (main graph, subgraphs, the model-local functions its
/// nodes call), as `'name' (Op)`.
pub fn random_node(model: &Model) -> Option<String> {
    let functions: Vec<&FunctionProto> = model.proto.functions.iter().collect();
    let mut walked: HashSet<*const FunctionProto> = HashSet::new();
    let mut stack: Vec<&[NodeProto]> = vec![&model.proto.graph.node];
    while let Some(nodes) = stack.pop() {
        for (i, n) in nodes.iter().enumerate() {
            let onnx = n.domain.is_empty() || n.domain == "ai.onnx";
            if onnx && (RANDOM_OPS.contains(&n.op_type.as_str()) || dropout_trains(model, nodes, n)) {
                let name = if n.name.is_empty() { format!("{}_{i}", n.op_type) } else { n.name.clone() };
                return Some(format!("'{name}' ({})", n.op_type));
            }
            stack.extend(control_flow::subgraphs(n).map(|(_, g)| g.node.as_slice()));
            for f in functions.iter().filter(|f| f.name == n.op_type && f.domain == n.domain) {
                if walked.insert(*f as *const FunctionProto) {
                    stack.push(&f.node);
                }
            }
        }
    }
    None
}

/// Whether a `Dropout` node drops at random: its `training_mode` input (the third) is a
/// constant true, and its ratio (the second; 0.5 when absent) is not a constant 0.
fn dropout_trains(model: &Model, nodes: &[NodeProto], n: &NodeProto) -> bool {
    if n.op_type != "Dropout" {
        return false;
    }
    let constant = |i: usize| n.input.get(i).filter(|x| !x.is_empty()).and_then(|x| constant_scalar(model, nodes, x));
    constant(2).is_some_and(|v| v != 0.0) && constant(1) != Some(0.0)
}

/// The single value of a constant tensor `name` (an initializer, or a `Constant` node of
/// `nodes`) of the bool and float types a Dropout reads; `None` if it is not one.
fn constant_scalar(model: &Model, nodes: &[NodeProto], name: &str) -> Option<f64> {
    let from_node = || {
        let c = nodes.iter().find(|c| c.op_type == "Constant" && c.output.first().is_some_and(|o| o == name))?;
        c.attribute.iter().find(|a| a.name == "value").and_then(|a| a.t.as_ref())
    };
    let t: &TensorProto = model.initializer(name).or_else(from_node)?;
    if super::tensor::numel(&t.dims) != 1 {
        return None;
    }
    let raw = |k: usize| t.raw_data.get(..k);
    match t.data_type {
        // BOOL keeps a typed value in int32_data, raw data one byte.
        9 => raw(1).map(|b| f64::from(b[0])).or_else(|| t.int32_data.first().map(|&v| f64::from(v))),
        1 => raw(4)
            .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            .or_else(|| t.float_data.first().map(|&v| f64::from(v))),
        10 => raw(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f64())
            .or_else(|| t.int32_data.first().map(|&v| half::f16::from_bits(v as u16).to_f64())),
        11 => raw(8).and_then(|b| b.try_into().ok()).map(f64::from_le_bytes).or_else(|| t.double_data.first().copied()),
        _ => None,
    }
}
