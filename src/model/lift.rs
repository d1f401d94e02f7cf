//! Lifting parameters stored outside initializers into initializers, on load.
//!
//! Paddle exports keep weights in `Constant` nodes; other exporters put `Identity` or `Cast`
//! nodes between an initializer and the layer. Every strategy that feeds parameters at run
//! time needs them as initializers, so the parameter inputs of Conv/ConvTranspose,
//! BatchNormalization and the quantized conv ops (and DequantizeLinear feeding them) are
//! rewritten: a `Constant` becomes an initializer of the same name (the node goes), an
//! `Identity` chain is skipped (the layer reads the initializer), and a `Cast` of a stored
//! float tensor to float32 becomes an initializer already cast (the node goes). The values
//! are those ONNX Runtime would compute, so the model's outputs do not change.

use std::collections::{HashMap, HashSet};

use onnx_protobuf::{GraphProto, TensorProto};

use super::tensor::{self, DType};

/// Ops whose non-activation inputs are parameters worth lifting.
const PARAM_OPS: &[&str] =
    &["Conv", "ConvTranspose", "BatchNormalization", "DequantizeLinear", "QLinearConv", "ConvInteger"];

/// Lift the parameter inputs of the graph's layers into initializers. Returns, for every
/// initializer made or now read directly, where it came from (`Constant node 'n'`), for
/// messages that name what the file holds.
pub fn lift(g: &mut GraphProto) -> HashMap<String, String> {
    let mut origins = HashMap::new();
    let mut dead: HashSet<usize> = HashSet::new();
    for i in 0..g.node.len() {
        if !PARAM_OPS.contains(&g.node[i].op_type.as_str()) {
            continue;
        }
        // Input 0 of a layer is its activation; DequantizeLinear's is the quantized tensor.
        let first = usize::from(g.node[i].op_type != "DequantizeLinear");
        for slot in first..g.node[i].input.len() {
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
        _ => None,
    }
}
