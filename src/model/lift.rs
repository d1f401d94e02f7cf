//! Lifting parameters stored outside initializers into initializers, on load.
//!
//! Paddle exports keep weights in `Constant` nodes; other exporters put `Identity` or `Cast`
//! nodes between an initializer and the layer. Every strategy that feeds parameters at run
//! time needs them as initializers, so the parameter inputs of Conv/ConvTranspose,
//! BatchNormalization, Gemm, Instance/Group/LayerNormalization, the quantized conv ops (and
//! DequantizeLinear feeding them), the second input of MatMul and the operand of an Add
//! beside a MatMul's output (a linear layer's bias) are rewritten: a `Constant` becomes an
//! initializer of the same name (the node goes), an `Identity` chain is skipped (the layer
//! reads the initializer), a `Cast` of a stored float tensor to float32 becomes an
//! initializer already cast, and a `Transpose` of a stored tensor (PyTorch's exporter puts
//! one between a `Linear` weight and its MatMul) an initializer already transposed (the
//! node goes). The values are those ONNX Runtime would compute, so the model's outputs do
//! not change.

use std::collections::{HashMap, HashSet};

use onnx_protobuf::{GraphProto, TensorProto};

use super::tensor::{self, DType};

/// Ops whose non-activation inputs (all but input 0) are parameters worth lifting.
const PARAM_OPS: &[&str] = &[
    "Conv",
    "ConvTranspose",
    "BatchNormalization",
    "DequantizeLinear",
    "QLinearConv",
    "ConvInteger",
    "Gemm",
    "InstanceNormalization",
    "GroupNormalization",
    "LayerNormalization",
];

/// The input slots of node `i` that may hold parameters: all but the activation for
/// [`PARAM_OPS`] (every one for DequantizeLinear), the weight of a MatMul, the operand of an
/// Add that sits beside a MatMul's output.
fn param_slots(g: &GraphProto, i: usize, matmul_outputs: &HashSet<String>) -> Vec<usize> {
    let n = &g.node[i];
    match n.op_type.as_str() {
        "DequantizeLinear" => (0..n.input.len()).collect(),
        op if PARAM_OPS.contains(&op) => (1..n.input.len()).collect(),
        "MatMul" => vec![1],
        "Add" if n.input.len() == 2 => (0..2).filter(|&k| matmul_outputs.contains(&n.input[1 - k])).collect(),
        _ => Vec::new(),
    }
}

/// Lift the parameter inputs of the graph's layers into initializers. Returns, for every
/// initializer made or now read directly, where it came from (`Constant node 'n'`), for
/// messages that name what the file holds.
pub fn lift(g: &mut GraphProto) -> HashMap<String, String> {
    let mut origins = HashMap::new();
    let mut dead: HashSet<usize> = HashSet::new();
    let matmul_outputs: HashSet<String> =
        g.node.iter().filter(|n| n.op_type == "MatMul").flat_map(|n| n.output.iter().cloned()).collect();
    for i in 0..g.node.len() {
        // Input 0 of a layer is its activation; DequantizeLinear's is the quantized tensor.
        for slot in param_slots(g, i, &matmul_outputs) {
            let name = g.node[i].input[slot].clone();
            if name.is_empty() {
                continue;
            }
            if let Some(root) = lift_input(g, &name, &mut origins, &mut dead) {
                g.node[i].input[slot] = root;
            }
        }
    }
    // Identity nodes nobody reads any more go too (a parameter read outside its layer's
    // region stops the incremental strategy).
    loop {
        let read: HashSet<&str> = g
            .node
            .iter()
            .enumerate()
            .filter(|(i, _)| !dead.contains(i))
            .flat_map(|(_, n)| n.input.iter().map(String::as_str))
            .chain(g.output.iter().map(|o| o.name.as_str()))
            .collect();
        let unread: Vec<usize> = (0..g.node.len())
            .filter(|i| !dead.contains(i) && g.node[*i].op_type == "Identity")
            .filter(|&i| g.node[i].output.iter().all(|o| !read.contains(o.as_str())))
            .collect();
        if unread.is_empty() {
            break;
        }
        dead.extend(unread);
    }
    let mut i = 0;
    g.node.retain(|_| {
        i += 1;
        !dead.contains(&(i - 1))
    });
    origins
}

/// Follow `name` back through Identity and Cast nodes to a stored tensor, lifting it; returns
/// the initializer the layer should read, or `None` to leave the input as it is.
fn lift_input(
    g: &mut GraphProto,
    name: &str,
    origins: &mut HashMap<String, String>,
    dead: &mut HashSet<usize>,
) -> Option<String> {
    if g.initializer.iter().any(|t| t.name == name) {
        return Some(name.to_string());
    }
    let p = g.node.iter().position(|n| n.output.first().is_some_and(|o| o == name))?;
    let node = g.node[p].clone();
    let label = if node.name.is_empty() {
        format!("{} node", node.op_type)
    } else {
        format!("{} node '{}'", node.op_type, node.name)
    };
    match node.op_type.as_str() {
        "Constant" => {
            let mut t = node.attribute.iter().find(|a| a.name == "value").and_then(|a| a.t.clone().into_option())?;
            t.name = name.to_string();
            g.initializer.push(t);
            dead.insert(p);
            origins.insert(name.to_string(), label);
            Some(name.to_string())
        }
        "Identity" => {
            let root = lift_input(g, node.input.first()?, origins, dead)?;
            origins.entry(root.clone()).or_insert(label);
            Some(root)
        }
        "Cast" => {
            let to = node.attribute.iter().find(|a| a.name == "to").map(|a| a.i)?;
            let root = lift_input(g, node.input.first()?, origins, dead)?;
            let src = g.initializer.iter().find(|t| t.name == root)?;
            if to != 1 || DType::from_onnx(src.data_type).is_none() {
                return None;
            }
            let values = tensor::decode(src).ok()?;
            let mut t = TensorProto::new();
            t.name = name.to_string();
            t.data_type = 1;
            t.dims = src.dims.clone();
            t.raw_data = tensor::encode_raw(values.iter(), DType::Float32);
            let from = tensor::onnx_type_name(src.data_type);
            g.initializer.push(t);
            dead.insert(p);
            origins.insert(name.to_string(), format!("{label} (float32 of {from} '{root}')"));
            Some(name.to_string())
        }
        "Transpose" => {
            let root = lift_input(g, node.input.first()?, origins, dead)?;
            let src = g.initializer.iter().find(|t| t.name == root)?;
            let dtype = DType::from_onnx(src.data_type)?;
            let values = tensor::decode(src).ok()?;
            let rank = values.ndim();
            let perm: Vec<usize> = match node.attribute.iter().find(|a| a.name == "perm") {
                Some(a) => a.ints.iter().map(|&p| usize::try_from(p).unwrap_or(usize::MAX)).collect(),
                None => (0..rank).rev().collect(),
            };
            let mut sorted = perm.clone();
            sorted.sort_unstable();
            if sorted != (0..rank).collect::<Vec<_>>() {
                return None;
            }
            let moved = values.permuted_axes(perm);
            let mut t = TensorProto::new();
            t.name = name.to_string();
            t.data_type = src.data_type;
            t.dims = moved.shape().iter().map(|&d| d as i64).collect();
            t.raw_data = tensor::encode_raw(moved.iter(), dtype);
            g.initializer.push(t);
            dead.insert(p);
            origins.insert(name.to_string(), format!("{label} (transposed '{root}')"));
            Some(name.to_string())
        }
        _ => None,
    }
}
