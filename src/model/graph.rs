//! Graph topology: who produces and consumes each tensor, what lies downstream of a node,
//! and the element type of every tensor (for exposing intermediate tensors as outputs).

use std::collections::{HashMap, HashSet};

use super::Model;

/// Producers and consumers of every tensor of the main graph.
pub struct Topology {
    /// Tensor name -> index of the node that outputs it.
    pub producer: HashMap<String, usize>,
    /// Tensor name -> indices of the nodes that read it.
    pub consumers: HashMap<String, Vec<usize>>,
}

impl Topology {
    /// Index the graph.
    pub fn of(model: &Model) -> Topology {
        let mut producer = HashMap::new();
        let mut consumers: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, n) in model.proto.graph.node.iter().enumerate() {
            for o in n.output.iter().filter(|o| !o.is_empty()) {
                producer.insert(o.clone(), i);
            }
            for x in n.input.iter().filter(|x| !x.is_empty()) {
                consumers.entry(x.clone()).or_default().push(i);
            }
        }
        Topology { producer, consumers }
    }

    /// Nodes downstream of `start` (itself included): everything a change at `start` can reach.
    pub fn downstream(&self, model: &Model, start: usize) -> Vec<bool> {
        let nodes = &model.proto.graph.node;
        let mut seen = vec![false; nodes.len()];
        let mut stack = vec![start];
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            for o in &nodes[i].output {
                if let Some(cs) = self.consumers.get(o) {
                    stack.extend(cs.iter().copied().filter(|&c| !seen[c]));
                }
            }
        }
        seen
    }
}

/// Element type (ONNX code) of every tensor, propagated through the graph: initializers and
/// inputs as declared, `Shape` -> int64, `Cast` -> its `to`, `Constant` -> its value's type,
/// comparisons -> bool, everything else -> the type of its first typed input.
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
        let attr_i = |name: &str| n.attribute.iter().find(|a| a.name == name).map(|a| a.i as i32);
        let ty = match n.op_type.as_str() {
            "Shape" | "Size" | "NonZero" | "ArgMax" | "ArgMin" => Some(7),
            "Cast" => attr_i("to"),
            "Constant" => n.attribute.iter().find_map(|a| a.t.as_ref().map(|t| t.data_type)),
            "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" | "Not" | "And" | "Or" | "IsNaN"
            | "IsInf" => Some(9),
            _ => n.input.iter().find_map(|x| t.get(x).copied()),
        };
        if let Some(ty) = ty {
            for o in &n.output {
                t.entry(o.clone()).or_insert(ty);
            }
        }
    }
    t
}

/// Names of tensors that are constant (initializers and outputs of Constant nodes).
pub fn constants(model: &Model) -> HashSet<String> {
    let g = &model.proto.graph;
    g.initializer
        .iter()
        .map(|t| t.name.clone())
        .chain(g.node.iter().filter(|n| n.op_type == "Constant").flat_map(|n| n.output.iter().cloned()))
        .collect()
}
