//! One swapped layer's downstream region as an ONNX graph: the nodes a change at the layer
//! reaches, the constants they read, and as inputs the tensors that enter from outside.
//!
//! In a QDQ graph, ONNX Runtime fuses `DequantizeLinear -> op -> QuantizeLinear` groups into
//! integer kernels. A region must hold whole groups, or its numbers differ from the full
//! model's: every `DequantizeLinear` feeding the region travels with it (of a stored weight,
//! or of an activation, whose quantized tensor then enters the region instead of the
//! dequantized one). A QDQ parameter's swap is baked into its own region's constants
//! ([`bake`]): fed at run time, the triple would stop the fusion.

use std::collections::{HashMap, HashSet};

use anyhow::{anyhow, bail, Result};
use onnx_protobuf::{GraphProto, TensorProto};

use super::super::cost::{shaped_value, Probe};
use crate::model::graph::Topology;
use crate::model::quantized::qdq::{self, Triple};
use crate::model::{Model, Param, ParamSource};

/// The region graph of the layer at `node`, before its swapped parameters are added.
pub struct RegionGraph {
    /// Inputs and nodes; no initializers (see `initializers`) and no output yet.
    pub graph: GraphProto,
    /// The model's initializers it reads (indices), in order of first use.
    pub initializers: Vec<usize>,
    /// Tensors it reads from outside (cached from the baseline run, or the image).
    pub frontier: Vec<String>,
    /// Which nodes of the model it holds.
    pub inside: Vec<bool>,
}

/// What a region needs to know about the model and the probe.
pub struct Context<'a> {
    pub model: &'a Model,
    pub topo: &'a Topology,
    pub shapes: &'a HashMap<String, Vec<usize>>,
    pub types: &'a HashMap<String, i32>,
    /// Whether the batch dim is free.
    pub dynamic_batch: bool,
    /// The probe: which axes of each tensor follow the batch.
    pub probe: &'a Probe,
}

/// Build the region of the layer at `node`; `output` is the model output it must reach.
pub fn build(cx: &Context, node: usize, output: &str) -> Result<RegionGraph> {
    let g = &cx.model.proto.graph;
    let inits: HashMap<&str, usize> = g.initializer.iter().enumerate().map(|(i, t)| (t.name.as_str(), i)).collect();
    let mut inside = cx.topo.downstream(cx.model, node);
    let feeds = |i: usize, inside: &[bool]| {
        g.node[i].output.iter().any(|o| cx.topo.consumers.get(o).is_some_and(|c| c.iter().any(|&c| inside[c])))
    };
    // DequantizeLinear nodes feeding the region, then Constant nodes (their scales too).
    for op in ["DequantizeLinear", "Constant"] {
        for i in 0..g.node.len() {
            if !inside[i] && g.node[i].op_type == op && feeds(i, &inside) {
                inside[i] = true;
            }
        }
    }
    let nodes: Vec<usize> = (0..g.node.len()).filter(|&i| inside[i]).collect();
    let produced: HashSet<&str> = nodes.iter().flat_map(|&i| g.node[i].output.iter().map(String::as_str)).collect();
    if !produced.contains(output) {
        bail!("layer node {} does not reach the model output", g.node[node].name);
    }
    let mut sub = GraphProto::new();
    sub.name = format!("region_{node}");
    let mut frontier = Vec::new();
    let mut initializers = Vec::new();
    let mut seen = HashSet::new();
    for &i in &nodes {
        sub.node.push(g.node[i].clone());
        for x in g.node[i].input.iter().filter(|x| !x.is_empty() && !produced.contains(x.as_str())) {
            if !seen.insert(x.clone()) {
                continue;
            }
            if let Some(&t) = inits.get(x.as_str()) {
                initializers.push(t);
                continue;
            }
            let ty = *cx
                .types
                .get(x)
                .ok_or_else(|| anyhow!("ONNX Runtime did not report the type of tensor '{x}' entering the region"))?;
            // float tensors are activations, int64 tensors shapes and sizes: probed with
            // batch 1, the axes that follow the batch (found by a second run on two images,
            // else axis 0 of a float tensor) are left free; other types (quantized
            // activations, masks) are declared without a shape.
            let axes = cx.probe.batch_axes_of(x);
            let follows = |i: usize| match cx.probe.batch_axes {
                Some(_) => axes.contains(&i),
                None => i == 0 && ty == 1,
            };
            let batch_dim = |i: usize| cx.dynamic_batch && follows(i);
            let dims: Option<Vec<Option<usize>>> = cx
                .shapes
                .get(x)
                .filter(|_| ty == 1 || ty == 7 || !cx.dynamic_batch)
                .map(|s| s.iter().enumerate().map(|(i, &d)| (!batch_dim(i)).then_some(d)).collect());
            sub.input.push(shaped_value(x, ty, dims.as_deref()));
            frontier.push(x.clone());
        }
    }
    Ok(RegionGraph { graph: sub, initializers, frontier, inside })
}

/// The stored tensors a swap of `p` writes, and the value the layer reads: for a float
/// parameter its initializer; for a QDQ parameter its triple and the dequantized output.
pub fn written(model: &Model, p: &Param) -> Result<Vec<String>> {
    match p.source {
        ParamSource::Dequantized(n) => {
            let d = qdq::at(model, n)?;
            let mut v = vec![d.q.0, d.scale.0];
            v.extend(d.zero_point.map(|z| z.0));
            v.extend(model.proto.graph.node[n].output.first().cloned());
            Ok(v)
        }
        _ => Ok(vec![p.name.clone()]),
    }
}

/// The target's QDQ tensors of `p` holding the source's triple: they replace the region's
/// copies of them.
pub fn baked(model: &Model, p: &Param, triple: &Triple) -> Result<Vec<TensorProto>> {
    let ParamSource::Dequantized(n) = p.source else {
        bail!("'{}' is not a QDQ parameter", p.name);
    };
    let d = qdq::at(model, n)?;
    let zero_point = match (d.zero_point, &triple.zero_point) {
        (Some(z), Some(t)) => Some((z.0, t)),
        (None, None) => None,
        _ => bail!("'{}': one triple has a zero point, the other not", p.name),
    };
    let mut out = Vec::new();
    for (name, with) in [(d.q.0, &triple.q), (d.scale.0, &triple.scale)].into_iter().chain(zero_point) {
        let mut t = with.clone();
        t.name = name;
        out.push(t);
    }
    Ok(out)
}
