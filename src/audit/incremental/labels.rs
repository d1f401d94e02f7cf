//! Class maps computed where the model runs: a region graph's float output gets a few nodes
//! appended that turn it into one `uint8` label per pixel (per image for a classifier), so
//! only labels leave the session (on CUDA: cross the bus) instead of `classes` floats.
//!
//! The nodes give exactly `metrics::dice::predict`'s labels. Several channels along `axis`:
//! `Cast(ArgMax(x, axis, keepdims = 0))` to uint8: ONNX ArgMax takes the first of equal
//! maxima (`select_last_index = 0`), as `predict`'s strictly-greater running maximum does.
//! One channel: `Cast(Greater(x, t))`. Then, as `predict` does, a pixel with any non-finite
//! score (NaN or ±inf in any class) gets [`NO_PREDICTION`]: `Where(IsNaN(ReduceSum(x - x,
//! axis)), 255, class)`, since `x - x` is 0 for a finite `x` and NaN otherwise (only opset-9
//! operators: no `IsInf`, which needs 10). The baseline keeps its float output (its values
//! are checked to be finite).

use anyhow::{bail, Result};
use ndarray::{Array3, ArrayViewD};
use onnx_protobuf::{attribute_proto::AttributeType, AttributeProto, GraphProto, NodeProto, TensorProto};

use crate::audit::cost::shaped_value;
use crate::engine::{Device, Engine};
use crate::metrics::dice::NO_PREDICTION;

/// The name of the labels output.
pub const LABELS: &str = "reuse_audit/labels";

/// How a float output becomes labels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reduction {
    /// The class axis of the output.
    pub axis: usize,
    /// The output's rank (2 for a classifier, 4 for a segmentation map).
    pub rank: usize,
    /// Channels along `axis` (1: a thresholded one-channel output).
    pub channels: usize,
    /// Foreground threshold of a one-channel output.
    pub threshold: f32,
}

/// Whether swap outputs are reduced in the session: by default on CUDA, not on CPU
/// (measured: no faster there, see README "Performance"); `REUSE_AUDIT_REDUCE_ON_DEVICE=1`
/// forces it on (the tests use it to check the labels against `predict`'s), `=0` off (an
/// A/B on a GPU).
pub fn wanted(engine: &Engine) -> Result<bool> {
    Ok(crate::engine::switches::switch("REUSE_AUDIT_REDUCE_ON_DEVICE")?.unwrap_or(engine.device() == Device::Cuda))
}

impl Reduction {
    /// The reduction of an output of `shape` (one image's, from the shape probe) with its
    /// class axis at `axis`, or `None` where it does not apply: another rank, or a default
    /// opset below 9 (no `IsNaN`/`Where`).
    pub fn of(shape: &[usize], axis: usize, threshold: f32, opset: i64) -> Option<Reduction> {
        let rank = shape.len();
        ((rank == 2 || rank == 4) && axis < rank && shape[axis] > 0 && opset >= 9).then(|| Reduction {
            axis,
            rank,
            channels: shape[axis],
            threshold,
        })
    }

    /// Append the nodes to `graph`, reading `output` (float), and make [`LABELS`] its only
    /// output; `opset` is the graph's default-domain opset (`ReduceSum` takes its axes as an
    /// input from 13).
    pub fn append(&self, graph: &mut GraphProto, output: &str, opset: i64) {
        let name = |s: &str| format!("reuse_audit/labels/{s}");
        let pred = if self.channels == 1 {
            graph.node.push(constant(&name("threshold"), &[], vec![self.threshold]));
            graph.node.push(node("Greater", &[output, &name("threshold")], &name("above"), vec![]));
            name("above")
        } else {
            let attrs = vec![int_attr("axis", self.axis as i64), int_attr("keepdims", 0)];
            graph.node.push(node("ArgMax", &[output], &name("argmax"), attrs));
            name("argmax")
        };
        graph.node.push(node("Cast", &[&pred], &name("class"), vec![int_attr("to", 2)]));
        // x - x is 0 where x is finite and NaN where it is NaN or infinite; summed over the
        // classes, NaN marks a pixel with any non-finite score.
        graph.node.push(node("Sub", &[output, output], &name("diff"), vec![]));
        let axis = self.axis as i64;
        // One channel keeps its axis, as `Greater` does; ArgMax drops it.
        let keep = int_attr("keepdims", i64::from(self.channels == 1));
        if opset >= 13 {
            graph.node.push(int64_constant(&name("axes"), vec![axis]));
            graph.node.push(node("ReduceSum", &[&name("diff"), &name("axes")], &name("sum"), vec![keep]));
        } else {
            let axes = ints_attr("axes", vec![axis]);
            graph.node.push(node("ReduceSum", &[&name("diff")], &name("sum"), vec![axes, keep]));
        }
        graph.node.push(node("IsNaN", &[&name("sum")], &name("bad"), vec![]));
        graph.node.push(uint8_constant(&name("none"), NO_PREDICTION));
        graph.node.push(node("Where", &[&name("bad"), &name("none"), &name("class")], LABELS, vec![]));
        graph.output.clear();
        graph.output.push(shaped_value(LABELS, 2, None));
    }
}

/// Labels of the first `count` images as class maps `[count, h, w]` (a classifier's `h = w
/// = 1`): the session's `uint8` output, `[n, h, w]`, `[n, 1, h, w]`, `[n, h, w, 1]` or `[n]`.
pub fn class_maps(labels: ArrayViewD<u8>, count: usize, h: usize, w: usize) -> Result<Array3<u8>> {
    let shape = labels.shape().to_vec();
    let n = shape.first().copied().unwrap_or(0);
    if n < count || labels.len() != n * h * w {
        bail!("the labels output has shape {shape:?}; {count} image(s) of {h}x{w} went in");
    }
    let labels = labels.as_standard_layout();
    let flat = labels.as_slice().unwrap_or(&[]);
    Ok(Array3::from_shape_vec((count, h, w), flat[..count * h * w].to_vec())?)
}

fn node(op: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    let mut n = NodeProto::new();
    n.op_type = op.into();
    n.name = format!("{output}/{op}");
    n.input = inputs.iter().map(|s| s.to_string()).collect();
    n.output = vec![output.into()];
    n.attribute = attribute;
    n
}

fn ints_attr(name: &str, ints: Vec<i64>) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INTS.into();
    a.ints = ints;
    a
}

fn int_attr(name: &str, i: i64) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INT.into();
    a.i = i;
    a
}

/// A float32 `Constant` node of shape `dims`.
fn constant(output: &str, dims: &[i64], values: Vec<f32>) -> NodeProto {
    let mut t = TensorProto::new();
    t.data_type = 1;
    t.dims = dims.to_vec();
    t.float_data = values;
    constant_node(output, t)
}

/// A 1-D int64 `Constant` node.
fn int64_constant(output: &str, values: Vec<i64>) -> NodeProto {
    let mut t = TensorProto::new();
    t.data_type = 7;
    t.dims = vec![values.len() as i64];
    t.int64_data = values;
    constant_node(output, t)
}

/// A scalar uint8 `Constant` node.
fn uint8_constant(output: &str, value: u8) -> NodeProto {
    let mut t = TensorProto::new();
    t.data_type = 2;
    t.int32_data = vec![i32::from(value)];
    constant_node(output, t)
}

fn constant_node(output: &str, mut t: TensorProto) -> NodeProto {
    t.name = output.into();
    let mut a = AttributeProto::new();
    a.name = "value".into();
    a.type_ = AttributeType::TENSOR.into();
    a.t = Some(t).into();
    node("Constant", &[], output, vec![a])
}
