//! Layers inside control flow: Conv/BatchNormalization nodes in the subgraphs of `If`,
//! `Loop` and `Scan` (or any node with a graph attribute), and in the model-local functions
//! (`ModelProto.functions`) a node calls. The audit swaps parameters of the main graph's
//! layers only, so these are listed as not audited and count against the RN verdict
//! instead of vanishing from the report.

use std::collections::{HashMap, HashSet};

use onnx_protobuf::{FunctionProto, GraphProto, NodeProto};
use serde::Serialize;

use super::Model;

/// Ops that make a parametrized layer, float or quantized.
const LAYER_OPS: [&str; 5] = ["Conv", "ConvTranspose", "BatchNormalization", "QLinearConv", "ConvInteger"];

/// A layer inside a subgraph, not audited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NestedLayer {
    /// Node name (`op_N` when the file leaves it empty).
    pub node: String,
    /// Its op type.
    pub op: String,
    /// Where it sits: `then_branch of If 'branch'` (outermost last for deeper nesting).
    pub inside: String,
}

impl NestedLayer {
    /// Whether it is a convolution (counts among the conv layers of the RN verdict).
    pub fn is_conv(&self) -> bool {
        self.op != "BatchNormalization"
    }
}

/// Why nested layers are not audited.
pub const REASON: &str = "the audit swaps the parameters of the main graph's layers; layers inside \
If/Loop/Scan subgraphs run only when the control flow takes them and are not swapped";

/// Why layers inside a model-local function are not audited.
pub const FUNCTION_REASON: &str = "the audit swaps the parameters of the main graph's layers; layers \
inside a model-local function are not swapped (inline the function at export: torch.onnx.export \
without export_modules_as_functions, or onnx.inliner.inline_local_functions)";

impl NestedLayer {
    /// Why this layer is not audited.
    pub fn reason(&self) -> &'static str {
        if self.inside.starts_with("function ") {
            FUNCTION_REASON
        } else {
            REASON
        }
    }
}

/// The subgraphs a node holds, with the attribute names.
pub fn subgraphs(n: &NodeProto) -> impl Iterator<Item = (&str, &GraphProto)> {
    n.attribute.iter().flat_map(|a| a.g.as_ref().into_iter().chain(a.graphs.iter()).map(move |g| (a.name.as_str(), g)))
}

/// Every Conv/BatchNormalization layer inside a subgraph of the main graph or inside a
/// model-local function it calls, in graph order.
pub fn nested_layers(model: &Model) -> Vec<NestedLayer> {
    let functions: HashMap<(&str, &str, &str), &FunctionProto> =
        model.proto.functions.iter().map(|f| ((f.domain.as_str(), f.name.as_str(), f.overload.as_str()), f)).collect();
    // Each function body is walked once, at its first call (its layers are listed once however
    // often it is called), and the walk keeps its own stack: a function calling itself (ONNX
    // forbids it, a hostile file may not), functions that each call the next twice, or a
    // chain of thousands cannot make it endless, exponential or overflow the stack.
    let mut walked: HashSet<*const FunctionProto> = HashSet::new();
    let mut out = Vec::new();
    // Node lists being walked: the nodes, the next one's index, where they sit.
    let mut stack: Vec<(&[NodeProto], usize, Option<String>)> = vec![(&model.proto.graph.node, 0, None)];
    while let Some((nodes, i, inside)) = stack.pop() {
        let Some(n) = nodes.get(i) else { continue };
        stack.push((nodes, i + 1, inside.clone()));
        if let Some(inside) = &inside {
            if LAYER_OPS.contains(&n.op_type.as_str()) {
                let node = if n.name.is_empty() { format!("{}_{}", n.op_type, i) } else { n.name.clone() };
                out.push(NestedLayer { node, op: n.op_type.clone(), inside: inside.clone() });
            }
        }
        let within = |what: String| match &inside {
            Some(o) => format!("{what} in {}", shortened(o)),
            None => what,
        };
        // Pushed in reverse: the subgraphs in attribute order, then the function, before the
        // next node (the order a recursive walk gives).
        if let Some(f) = functions.get(&(n.domain.as_str(), n.op_type.as_str(), n.overload.as_str())) {
            if walked.insert(*f as *const FunctionProto) {
                let name = if f.domain.is_empty() { f.name.clone() } else { format!("{}.{}", f.domain, f.name) };
                stack.push((&f.node, 0, Some(within(format!("function '{name}' called by node '{}'", n.name)))));
            }
        }
        let subs: Vec<_> = subgraphs(n).collect();
        for (attr, g) in subs.into_iter().rev() {
            stack.push((&g.node, 0, Some(within(format!("{attr} of {} '{}'", n.op_type, n.name)))));
        }
    }
    out
}

/// Where a layer sits, cut to its innermost 300 characters or so for deep nesting.
fn shortened(inside: &str) -> String {
    match inside.char_indices().nth(300) {
        Some((at, _)) => format!("{} ...", &inside[..at]),
        None => inside.to_string(),
    }
}

/// The outer-scope tensors a node's subgraphs read (names used inside and not defined
/// there): inputs of the node as much as its listed ones.
pub fn captured(n: &NodeProto) -> Vec<String> {
    let mut out = Vec::new();
    for (_, g) in subgraphs(n) {
        captured_by(g, &HashSet::new(), &mut out);
    }
    out
}

fn captured_by(g: &GraphProto, outer_defined: &HashSet<String>, out: &mut Vec<String>) {
    let mut defined: HashSet<String> = outer_defined.clone();
    defined.extend(g.input.iter().map(|v| v.name.clone()));
    defined.extend(g.initializer.iter().map(|t| t.name.clone()));
    defined.extend(g.node.iter().flat_map(|n| n.output.iter().cloned()));
    for n in &g.node {
        for x in n.input.iter().filter(|x| !x.is_empty() && !defined.contains(*x)) {
            if !out.contains(x) {
                out.push(x.clone());
            }
        }
        for (_, sub) in subgraphs(n) {
            let mut inner = Vec::new();
            captured_by(sub, &defined, &mut inner);
            for x in inner {
                if !out.contains(&x) {
                    out.push(x);
                }
            }
        }
    }
}

/// One line for messages: how many layers sit in subgraphs, which, and why not audited.
pub fn summary(layers: &[NestedLayer]) -> Option<String> {
    let first = layers.first()?;
    let more = if layers.len() > 1 { format!(" and {} more", layers.len() - 1) } else { String::new() };
    let place = if layers.iter().all(|l| l.reason() == REASON) { "control flow" } else { "control flow or functions" };
    Some(format!(
        "{} Conv/BN layer(s) inside {place} not audited: '{}' ({}, in the {}){more}; {}",
        layers.len(),
        first.node,
        first.op,
        first.inside,
        first.reason()
    ))
}
