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

#[cfg(test)]
mod tests {
    use super::*;
    use onnx_protobuf::{GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto};

    fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
        let mut n = NodeProto::new();
        n.op_type = op.into();
        n.input = inputs.iter().map(|s| s.to_string()).collect();
        n.output = vec![output.into()];
        n
    }

    fn scalar(name: &str, v: f32) -> TensorProto {
        let mut t = TensorProto::new();
        t.name = name.into();
        t.data_type = 1;
        t.float_data = vec![v];
        t
    }

    /// x -> Conv -> `ops`... -> out
    fn model(ops: &[&str], inits: Vec<TensorProto>, extra_inputs: &[&str]) -> Model {
        let mut g = GraphProto::new();
        g.node.push(node("Conv", &["x", "w"], "t0"));
        for (i, op) in ops.iter().enumerate() {
            let mut inputs = vec![format!("t{i}")];
            if *op == "Clip" {
                inputs.extend(extra_inputs.iter().map(|s| s.to_string()));
            }
            let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
            g.node.push(node(op, &refs, &format!("t{}", i + 1)));
        }
        let mut out = ValueInfoProto::new();
        out.name = format!("t{}", ops.len());
        g.output.push(out);
        g.initializer = inits;
        let mut m = ModelProto::new();
        m.graph = Some(g).into();
        Model::index("m.onnx".into(), String::new(), m)
    }

    #[test]
    fn sigmoid_behind_shape_ops_is_read_as_probabilities() {
        let h = Head::of(&model(&["Sigmoid", "Transpose", "Resize"], vec![], &[]));
        assert_eq!(h, Head { op: "Sigmoid".into(), probabilities: true });
        let rule = h.rule(1, None).unwrap();
        assert_eq!(rule.threshold(), Some(0.5));
        assert!(rule.describe().contains("Sigmoid"));
    }

    #[test]
    fn raw_logits_threshold_at_zero_and_many_channels_take_argmax() {
        let h = Head::of(&model(&[], vec![], &[]));
        assert_eq!(h, Head { op: "Conv".into(), probabilities: false });
        assert_eq!(h.rule(1, None).unwrap().threshold(), Some(0.0));
        assert_eq!(h.rule(4, None).unwrap().threshold(), None);
        let soft = Head::of(&model(&["Softmax"], vec![], &[]));
        assert!(matches!(soft.rule(4, None).unwrap(), Rule::Argmax { .. }));
    }

    #[test]
    fn a_clip_to_the_unit_interval_is_a_probability_and_other_clips_are_not() {
        let unit = model(&["Clip"], vec![scalar("lo", 0.0), scalar("hi", 1.0)], &["lo", "hi"]);
        assert!(Head::of(&unit).probabilities);
        let relu6 = model(&["Clip"], vec![scalar("lo", 0.0), scalar("hi", 6.0)], &["lo", "hi"]);
        assert!(!Head::of(&relu6).probabilities);
    }

    #[test]
    fn threshold_flag_and_uninterpretable_heads() {
        let h = Head::of(&model(&["Sigmoid"], vec![], &[]));
        let r = h.rule(1, Some(0.3)).unwrap();
        assert_eq!(r.threshold(), Some(0.3));
        assert!(r.describe().contains("--threshold 0.3"));
        assert!(h.rule(4, Some(0.3)).unwrap_err().contains("one-channel"));
        let soft1 = Head::of(&model(&["Softmax"], vec![], &[]));
        assert!(soft1.rule(1, None).unwrap_err().contains("Softmax over a single channel"));
        assert!(h.rule(0, None).is_err());
    }
}
