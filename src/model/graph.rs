//! Graph topology: who produces and consumes each tensor, what lies downstream of a node,
//! and (re-exported from [`super::elem_types`]) the element type of every tensor.

use std::collections::{HashMap, HashSet};

pub use super::elem_types::elem_types;
use super::Model;

/// Producers and consumers of every tensor of the main graph (a node with subgraphs
/// consumes what they read from outside).
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
            // A subgraph's reads of outer tensors are inputs of its node too.
            for x in super::control_flow::captured(n) {
                consumers.entry(x).or_default().push(i);
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

    /// Nodes upstream of the tensor `name`: every node whose output it depends on (its
    /// producer included). A change at any other node cannot reach it.
    pub fn upstream(&self, model: &Model, name: &str) -> Vec<bool> {
        let nodes = &model.proto.graph.node;
        let mut seen = vec![false; nodes.len()];
        let mut stack: Vec<usize> = self.producer.get(name).copied().into_iter().collect();
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            let reads = nodes[i].input.iter().cloned().chain(super::control_flow::captured(&nodes[i]));
            stack.extend(reads.filter_map(|x| self.producer.get(&x).copied()).filter(|&p| !seen[p]));
        }
        seen
    }
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
