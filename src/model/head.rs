//! What a segmentation model's output means: read from the node that ends the graph.
//!
//! Multi-channel outputs are scored by argmax (softmax, sigmoid and raw scores alike: each
//! is monotone per pixel). A one-channel output is a foreground map whose threshold depends
//! on what produced it: probabilities (`Sigmoid`, `HardSigmoid`, a `Clip` to [0, 1]) at 0.5,
//! raw logits at 0. Shape-only ops between that node and the output (`Transpose`, `Reshape`,
//! `Resize`, …) keep the meaning and are looked through.

use serde::Serialize;

use super::graph::Topology;
use super::Model;

/// Ops that move or resample values without changing what they mean.
const PASS_THROUGH: [&str; 12] = [
    "Identity",
    "Transpose",
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Flatten",
    "Resize",
    "Upsample",
    "Slice",
    "Pad",
    "Cast",
    "DepthToSpace",
];

/// Ops whose output is a probability in [0, 1].
const PROBABILITY: [&str; 2] = ["Sigmoid", "HardSigmoid"];

/// What the graph's first output holds, as read from the graph.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Head {
    /// The op that produced the output (after looking through shape-only ops), or `input`
    /// when the output is a graph input or an initializer.
    pub op: String,
    /// Whether the values are probabilities in [0, 1] (a one-channel map thresholds at 0.5).
    pub probabilities: bool,
}

impl Head {
    /// Read the head of `model`'s first output.
    pub fn of(model: &Model) -> Head {
        let g = &model.proto.graph;
        let Some(out) = g.output.first() else {
            return Head { op: "none".into(), probabilities: false };
        };
        let topo = Topology::of(model);
        let mut name = out.name.clone();
        // Bounded walk: a malformed graph with a cycle cannot loop forever.
        for _ in 0..g.node.len().max(1) {
            let Some(&i) = topo.producer.get(&name) else {
                return Head { op: "input".into(), probabilities: false };
            };
            let node = &g.node[i];
            if PASS_THROUGH.contains(&node.op_type.as_str()) {
                if let Some(first) = node.input.first().filter(|x| !x.is_empty()) {
                    name = first.clone();
                    continue;
                }
            }
            let probabilities = PROBABILITY.contains(&node.op_type.as_str()) || is_unit_clip(model, node);
            return Head { op: node.op_type.clone(), probabilities };
        }
        Head { op: "unknown".into(), probabilities: false }
    }

    /// The rule that turns `channels` output channels into classes, or why there is none.
    /// `threshold` is the user's `--threshold` for one-channel outputs.
    pub fn rule(&self, channels: usize, threshold: Option<f32>) -> Result<Rule, String> {
        match (channels, threshold) {
            (0, _) => Err("the model's output has 0 channels".into()),
            (1, _) if matches!(self.op.as_str(), "Softmax" | "LogSoftmax") => Err(format!(
                "the model's one-channel output comes from {} over a single channel (a constant): \
                 there is no class information to score; export the logits or a Sigmoid instead",
                self.op
            )),
            (1, Some(t)) => Ok(Rule::Threshold { at: t, why: format!("--threshold {t}") }),
            (1, None) if self.probabilities => {
                Ok(Rule::Threshold { at: 0.5, why: format!("one channel of probabilities ({})", self.op) })
            }
            (1, None) => Ok(Rule::Threshold { at: 0.0, why: format!("one channel of logits (ends with {})", self.op) }),
            (c, Some(_)) => Err(format!(
                "--threshold applies to one-channel outputs; this model outputs {c} channels (scored by argmax)"
            )),
            (c, None) => Ok(Rule::Argmax { why: format!("argmax over {c} channels (ends with {})", self.op) }),
        }
    }
}

/// A `Clip` whose bounds are constants 0 and 1 (probabilities clipped into range).
fn is_unit_clip(model: &Model, node: &onnx_protobuf::NodeProto) -> bool {
    if node.op_type != "Clip" {
        return false;
    }
    let bound = |i: usize| -> Option<f64> {
        let name = node.input.get(i).filter(|n| !n.is_empty())?;
        let (_, src) = model.resolve(name)?;
        let values = super::tensor::decode(model.tensor(src)).ok()?;
        (values.len() == 1).then(|| values.first().copied()).flatten()
    };
    bound(1) == Some(0.0) && bound(2) == Some(1.0)
}

/// How output channels become a class map.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// Class = the channel with the highest value (ties to the lower class).
    Argmax {
        /// What the rule was chosen from, for the report.
        why: String,
    },
    /// One channel: foreground (class 1) where the value is above `at`.
    Threshold {
        /// The threshold.
        at: f32,
        /// What the rule was chosen from, for the report.
        why: String,
    },
}

impl Rule {
    /// The threshold of a one-channel map (argmax: none).
    pub fn threshold(&self) -> Option<f32> {
        match self {
            Rule::Argmax { .. } => None,
            Rule::Threshold { at, .. } => Some(*at),
        }
    }

    /// A sentence for the report.
    pub fn describe(&self) -> String {
        match self {
            Rule::Argmax { why } => why.clone(),
            Rule::Threshold { at, why } => format!("foreground where output > {at}: {why}"),
        }
    }
}
