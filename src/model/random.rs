//! Nodes that draw random numbers on every run (`RandomNormal`, `RandomUniform`, their
//! `*Like` forms, `Multinomial`, `Bernoulli`): a model with one scores differently on every
//! run, so a swap's loss could not be told from the noise.

use std::collections::HashSet;

use onnx_protobuf::{FunctionProto, NodeProto};

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
            if RANDOM_OPS.contains(&n.op_type.as_str()) && (n.domain.is_empty() || n.domain == "ai.onnx") {
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
