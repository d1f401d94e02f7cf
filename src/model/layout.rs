//! Channel layout of a model's input and first output: channels-first (`N x C x H x W`, what
//! ONNX convolutions take) or channels-last (`N x H x W x C`, tf2onnx's default export of a
//! Keras model, which wraps the network in `Transpose` nodes).
//!
//! The rule of `--layout auto`, for the input and the output separately; the first step
//! that decides wins:
//!
//! 1. **Graph structure.** From the input, follow layout-neutral ops (elementwise, `Cast`,
//!    `Identity`, quantize/dequantize, …) forward to the first node that decides:
//!    `Transpose` with `perm = [0, 3, 1, 2]` means channels-last, a channels-first op
//!    (`Conv`, `ConvTranspose`, pooling, `BatchNormalization`, …) means channels-first.
//!    From the output, follow the same ops backward: `Transpose` with `perm = [0, 2, 3, 1]`
//!    means channels-last, a channels-first op channels-first.
//! 2. **Declared dims** (rank 4). Input: channels-last when the last dim is 1, 3 or 4 and
//!    dim 1 is not (a symbolic dim counts as not); channels-first in the mirror case.
//!    Output: channels-last when the last dim is fixed and smaller than dims 1 and 2 where
//!    those are fixed, while dim 1 is not such a small dim; channels-first in the mirror case.
//! 3. The output only: the input's layout.
//! 4. Channels-first.
//!
//! `--layout nchw|nhwc` overrides both input and output.

use std::collections::{HashSet, VecDeque};

use serde::Serialize;

use super::graph::Topology;
use super::{value_dims, Model};

/// How a 4-D image tensor orders its axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `N x C x H x W` (channels-first).
    Nchw,
    /// `N x H x W x C` (channels-last).
    Nhwc,
}

impl Layout {
    /// `nchw` or `nhwc`.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Nchw => "nchw",
            Layout::Nhwc => "nhwc",
        }
    }

    /// `N x C x H x W` or `N x H x W x C`, for messages.
    pub fn pattern(self) -> &'static str {
        match self {
            Layout::Nchw => "N x C x H x W",
            Layout::Nhwc => "N x H x W x C",
        }
    }

    /// The dims of a tensor in this layout, reordered as `[n, c, h, w]`.
    pub fn to_nchw<T: Copy>(self, d: [T; 4]) -> [T; 4] {
        match self {
            Layout::Nchw => d,
            Layout::Nhwc => [d[0], d[3], d[1], d[2]],
        }
    }

    /// The dims `[n, c, h, w]` ordered as a tensor in this layout holds them.
    pub fn from_nchw<T: Copy>(self, [n, c, h, w]: [T; 4]) -> [T; 4] {
        match self {
            Layout::Nchw => [n, c, h, w],
            Layout::Nhwc => [n, h, w, c],
        }
    }

    /// The axis permutation that views a tensor in this layout as `N x C x H x W`.
    pub fn nchw_axes(self) -> [usize; 4] {
        match self {
            Layout::Nchw => [0, 1, 2, 3],
            Layout::Nhwc => [0, 3, 1, 2],
        }
    }
}

/// `--layout`: detect each layout from the graph, or force one for input and output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LayoutChoice {
    /// Input and output decided separately: from the graph (a Transpose after the input,
    /// before the output; Conv, pooling, BN: channels-first), else the declared dims (the
    /// README's "Channels-last models"; the rule is this module's documentation).
    Auto,
    /// Input and output channels-first.
    Nchw,
    /// Input and output channels-last.
    Nhwc,
}

/// What step of the rule decided a layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// A node next to the input or output (step 1).
    Graph,
    /// The declared dims (step 2).
    Dims,
    /// The input's layout (step 3, outputs only) or the default (step 4).
    Fallback,
}

/// One detected layout and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    /// The layout.
    pub layout: Layout,
    /// What decided it.
    pub basis: Basis,
    /// The evidence, for messages (e.g. `input 'x' feeds Transpose 't' perm [0, 3, 1, 2]`).
    pub why: String,
}

/// The input's and the first output's layouts as detected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// The graph's first real input.
    pub input: Detected,
    /// The graph's first output.
    pub output: Detected,
}

/// Ops that keep the layout of what they read (walked through by step 1).
const NEUTRAL: [&str; 24] = [
    "Identity",
    "Cast",
    "Relu",
    "LeakyRelu",
    "PRelu",
    "Elu",
    "Selu",
    "Sigmoid",
    "HardSigmoid",
    "Tanh",
    "Clip",
    "Abs",
    "Neg",
    "Exp",
    "Log",
    "Sqrt",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Softmax",
    "LogSoftmax",
    "QuantizeLinear",
    "DequantizeLinear",
];

/// Ops that ONNX defines on channels-first tensors.
const CHANNELS_FIRST: [&str; 14] = [
    "Conv",
    "ConvTranspose",
    "ConvInteger",
    "QLinearConv",
    "MaxPool",
    "AveragePool",
    "LpPool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "BatchNormalization",
    "InstanceNormalization",
    "LRN",
    "DepthToSpace",
    "SpaceToDepth",
];

/// Nodes visited at most by one walk of step 1.
const MAX_WALK: usize = 64;

/// Detect the layouts of `model`'s input and first output (`--layout auto`).
pub fn detect(model: &Model) -> Detection {
    let g = &model.proto.graph;
    let topo = Topology::of(model);
    let input = g.input.iter().find(|i| model.resolve(&i.name).is_none());
    let input = match input {
        None => fallback(Layout::Nchw, "no graph input: channels-first by default".into()),
        Some(v) => walk(model, &topo, &v.name, true)
            .or_else(|| input_dims_rule(&value_dims(v)).map(|l| by_dims(l, "input", &v.name, &value_dims(v))))
            .unwrap_or_else(|| fallback(Layout::Nchw, format!("input '{}': channels-first by default", v.name))),
    };
    let output = match g.output.first() {
        None => fallback(input.layout, "no graph output: as the input".into()),
        Some(v) => walk(model, &topo, &v.name, false)
            .or_else(|| output_dims_rule(&value_dims(v)).map(|l| by_dims(l, "output", &v.name, &value_dims(v))))
            .unwrap_or_else(|| fallback(input.layout, format!("output '{}': as the input", v.name))),
    };
    Detection { input, output }
}

fn fallback(layout: Layout, why: String) -> Detected {
    Detected { layout, basis: Basis::Fallback, why }
}

fn by_dims(layout: Layout, what: &str, name: &str, dims: &[Option<usize>]) -> Detected {
    let shown: Vec<String> = dims.iter().map(|d| d.map_or("?".into(), |d| d.to_string())).collect();
    Detected {
        layout,
        basis: Basis::Dims,
        why: format!("{what} '{name}' is declared [{}], read as {}", shown.join(", "), layout.pattern()),
    }
}

/// Step 2 for an input: a channel count of 1, 3 or 4 last and not at dim 1, or the mirror.
pub fn input_dims_rule(dims: &[Option<usize>]) -> Option<Layout> {
    let small = |d: Option<usize>| matches!(d, Some(1 | 3 | 4));
    match dims {
        [_, c1, _, c3] if small(*c3) && !small(*c1) => Some(Layout::Nhwc),
        [_, c1, _, c3] if small(*c1) && !small(*c3) => Some(Layout::Nchw),
        _ => None,
    }
}

/// Step 2 for an output: the class axis is fixed and smaller than the fixed spatial dims.
pub fn output_dims_rule(dims: &[Option<usize>]) -> Option<Layout> {
    let [_, d1, d2, d3] = dims else {
        return None;
    };
    let below = |c: usize, d: &Option<usize>| d.is_none_or(|d| c < d);
    let last = d3.is_some_and(|c| below(c, d1) && below(c, d2));
    let second = d1.is_some_and(|c| below(c, d2) && below(c, d3));
    match (last, second) {
        (true, false) => Some(Layout::Nhwc),
        (false, true) => Some(Layout::Nchw),
        _ => None,
    }
}

/// Step 1: breadth-first from `start` (forward from an input, backward from an output)
/// through layout-neutral ops to the nearest node that decides.
fn walk(model: &Model, topo: &Topology, start: &str, forward: bool) -> Option<Detected> {
    let g = &model.proto.graph;
    let mut queue = VecDeque::from([start.to_string()]);
    let mut seen = HashSet::new();
    while let Some(name) = queue.pop_front() {
        let nodes: Vec<usize> = if forward {
            topo.consumers.get(&name).cloned().unwrap_or_default()
        } else {
            topo.producer.get(&name).copied().into_iter().collect()
        };
        for i in nodes {
            if !seen.insert(i) || seen.len() > MAX_WALK {
                continue;
            }
            let node = &g.node[i];
            let op = node.op_type.as_str();
            let verb = if forward { format!("input '{start}' feeds") } else { format!("output '{start}' comes from") };
            if CHANNELS_FIRST.contains(&op) {
                let why = format!("{verb} {op} '{}', a channels-first op", node.name);
                return Some(Detected { layout: Layout::Nchw, basis: Basis::Graph, why });
            }
            if op == "Transpose" {
                let perm = node.attribute.iter().find(|a| a.name == "perm").map(|a| a.ints.clone());
                let wanted: [i64; 4] = if forward { [0, 3, 1, 2] } else { [0, 2, 3, 1] };
                if perm.as_deref() == Some(&wanted[..]) {
                    let why = format!("{verb} Transpose '{}' perm {wanted:?}", node.name);
                    return Some(Detected { layout: Layout::Nhwc, basis: Basis::Graph, why });
                }
                continue;
            }
            if NEUTRAL.contains(&op) {
                let next = if forward { &node.output } else { &node.input };
                queue.extend(next.iter().filter(|x| !x.is_empty() && model.resolve(x).is_none()).cloned());
            }
        }
    }
    None
}

#[cfg(test)]
#[path = "layout_tests.rs"]
mod tests;
