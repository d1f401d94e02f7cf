//! Which inputs of a node are parameters, and of which kind: the op table behind
//! [`super::scan`].
//!
//! | op | family | parameters |
//! |---|---|---|
//! | Conv, ConvTranspose | conv | W = input 1, B = input 2 |
//! | BatchNormalization | bn | RW, RB, RM, RV = inputs 1-4 |
//! | Gemm | linear | W = input B (1), B = input C (2) |
//! | MatMul | linear | W = input 1; B = the other operand of an `Add` that reads the MatMul's output |
//! | InstanceNormalization, GroupNormalization, LayerNormalization | norm | RW = scale (1), RB = bias (2) |
//!
//! A Gemm or MatMul is a parameter layer only when its first input depends on the data and
//! its second does not: a MatMul of two activations (attention) has no parameters, and one
//! of two constants is constant folding left in the graph. A Gemm's C or an Add operand
//! that depends on the data is a residual, not a bias.

use std::collections::{HashMap, HashSet};

use super::{Family, Kind};
use crate::model::Model;

/// What [`roles`] needs to know about the whole graph.
pub struct GraphIndex {
    /// Tensor name -> indices of the nodes that read it.
    consumers: HashMap<String, Vec<usize>>,
    /// Tensors that depend on a graph input (activations, and anything computed from them).
    data: HashSet<String>,
}

impl GraphIndex {
    /// Index a model's main graph (its nodes are in topological order).
    pub fn of(model: &Model) -> GraphIndex {
        let g = &model.proto.graph;
        let stored: HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
        let mut data: HashSet<String> =
            g.input.iter().filter(|i| !stored.contains(i.name.as_str())).map(|i| i.name.clone()).collect();
        let mut consumers: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, n) in g.node.iter().enumerate() {
            for x in n.input.iter().filter(|x| !x.is_empty()) {
                consumers.entry(x.clone()).or_default().push(i);
            }
            if n.input.iter().any(|x| data.contains(x)) {
                data.extend(n.output.iter().filter(|o| !o.is_empty()).cloned());
            }
        }
        GraphIndex { consumers, data }
    }

    /// Whether a node input depends on the data (false for an empty optional input).
    fn is_data(&self, name: &str) -> bool {
        self.data.contains(name)
    }

    /// Whether a node input is a parameter candidate: present and independent of the data.
    fn is_constant(&self, name: &str) -> bool {
        !name.is_empty() && !self.data.contains(name)
    }
}

/// The parameter inputs of one node.
#[derive(Debug, Clone, PartialEq)]
pub struct Roles {
    /// The layer family.
    pub family: Family,
    /// (kind, tensor name as the node reads it), in the order found.
    pub inputs: Vec<(Kind, String)>,
    /// W is stored inputs x outputs (MatMul; Gemm with `transB = 0`).
    pub w_in_out: bool,
}

/// The parameters of node `i`, or `None` when it is not a parameter layer.
pub fn roles(model: &Model, graph: &GraphIndex, i: usize) -> Option<Roles> {
    let node = &model.proto.graph.node[i];
    let input = |slot: usize| node.input.get(slot).filter(|s| !s.is_empty()).cloned();
    let slots = |pairs: &[(usize, Kind)]| -> Vec<(Kind, String)> {
        pairs.iter().filter_map(|&(slot, kind)| input(slot).map(|name| (kind, name))).collect()
    };
    let (family, inputs, w_in_out) = match node.op_type.as_str() {
        "Conv" | "ConvTranspose" => (Family::Conv, slots(&[(1, Kind::W), (2, Kind::B)]), false),
        "BatchNormalization" => {
            (Family::Bn, slots(&[(1, Kind::RW), (2, Kind::RB), (3, Kind::RM), (4, Kind::RV)]), false)
        }
        "InstanceNormalization" | "GroupNormalization" | "LayerNormalization" => {
            (Family::Norm, slots(&[(1, Kind::RW), (2, Kind::RB)]), false)
        }
        "Gemm" | "MatMul" => {
            let (a, w) = (input(0)?, input(1)?);
            if !graph.is_data(&a) || !graph.is_constant(&w) {
                return None;
            }
            let mut inputs = vec![(Kind::W, w)];
            if node.op_type == "Gemm" {
                let trans_b = node.attribute.iter().find(|a| a.name == "transB").map_or(0, |a| a.i);
                inputs.extend(input(2).filter(|c| graph.is_constant(c)).map(|c| (Kind::B, c)));
                (Family::Linear, inputs, trans_b == 0)
            } else {
                inputs.extend(matmul_bias(model, graph, i).map(|b| (Kind::B, b)));
                (Family::Linear, inputs, true)
            }
        }
        _ => return None,
    };
    Some(Roles { family, inputs, w_in_out })
}

/// The bias of MatMul node `i`: the data-independent operand of the first `Add` that reads
/// the MatMul's output.
fn matmul_bias(model: &Model, graph: &GraphIndex, i: usize) -> Option<String> {
    let nodes = &model.proto.graph.node;
    let out = nodes[i].output.first()?;
    graph.consumers.get(out)?.iter().map(|&c| &nodes[c]).filter(|n| n.op_type == "Add" && n.input.len() == 2).find_map(
        |add| {
            let other = if &add.input[0] == out { &add.input[1] } else { &add.input[0] };
            graph.is_constant(other).then(|| other.clone())
        },
    )
}
