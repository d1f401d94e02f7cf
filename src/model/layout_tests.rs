//! The `--layout auto` rule on hand-built graphs: structure first, then declared dims, then
//! (outputs) the input's layout, then channels-first.

use onnx_protobuf::{
    tensor_shape_proto::Dimension, type_proto, AttributeProto, ModelProto, NodeProto, TensorProto, TensorShapeProto,
    TypeProto, ValueInfoProto,
};

use super::*;

fn value(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    let mut shape = TensorShapeProto::new();
    for d in dims {
        let mut dim = Dimension::new();
        match d {
            Some(v) => dim.set_dim_value(*v),
            None => dim.set_dim_param("N".into()),
        }
        shape.dim.push(dim);
    }
    let mut tt = type_proto::Tensor::new();
    tt.elem_type = 1;
    tt.shape = Some(shape).into();
    let mut ty = TypeProto::new();
    ty.set_tensor_type(tt);
    let mut v = ValueInfoProto::new();
    v.name = name.into();
    v.type_ = Some(ty).into();
    v
}

fn node(op: &str, inputs: &[&str], output: &str, perm: Option<[i64; 4]>) -> NodeProto {
    let mut n = NodeProto::new();
    n.op_type = op.into();
    n.name = format!("{op}_{output}");
    n.input = inputs.iter().map(|s| s.to_string()).collect();
    n.output = vec![output.into()];
    if let Some(p) = perm {
        let mut a = AttributeProto::new();
        a.name = "perm".into();
        a.ints = p.to_vec();
        n.attribute.push(a);
    }
    n
}

/// A graph `x -> nodes -> y` with a weight initializer `w` and a scalar `k`.
fn model(nodes: Vec<NodeProto>, x: &[Option<i64>], y: &[Option<i64>]) -> Model {
    let mut m = ModelProto::new();
    let g = m.graph.mut_or_insert_default();
    g.node = nodes;
    for name in ["w", "k"] {
        let mut t = TensorProto::new();
        t.name = name.into();
        t.data_type = 1;
        g.initializer.push(t);
    }
    g.input.push(value("x", x));
    g.output.push(value("y", y));
    Model::index("m.onnx".into(), String::new(), m)
}

const NHWC_IN: [i64; 4] = [0, 3, 1, 2];
const NHWC_OUT: [i64; 4] = [0, 2, 3, 1];

fn layouts(m: &Model) -> (Layout, Basis, Layout, Basis) {
    let d = detect(m);
    (d.input.layout, d.input.basis, d.output.layout, d.output.basis)
}

#[test]
fn tf2onnx_default_export_is_channels_last_both_ways() {
    let m = model(
        vec![
            node("Mul", &["x", "k"], "scaled", None),
            node("Transpose", &["scaled"], "t", Some(NHWC_IN)),
            node("Conv", &["t", "w"], "c", None),
            node("Transpose", &["c"], "ct", Some(NHWC_OUT)),
            node("Softmax", &["ct"], "y", None),
        ],
        // Declared dims that say nothing (all symbolic): the graph decides.
        &[None, None, None, None],
        &[None, None, None, None],
    );
    assert_eq!(layouts(&m), (Layout::Nhwc, Basis::Graph, Layout::Nhwc, Basis::Graph));
    let d = detect(&m);
    assert!(d.input.why.contains("Transpose 'Transpose_t' perm [0, 3, 1, 2]"), "{}", d.input.why);
    assert!(d.output.why.contains("perm [0, 2, 3, 1]"), "{}", d.output.why);
    let spec = m.input_spec_as(Layout::Nhwc).unwrap();
    assert_eq!(spec.layout, Layout::Nhwc);
}

#[test]
fn conv_next_to_input_and_output_is_channels_first_whatever_the_dims() {
    // Dims alone would say channels-last (last dim 3, dim 1 64): the Conv decides.
    let m = model(
        vec![node("Conv", &["x", "w"], "c", None), node("Relu", &["c"], "y", None)],
        &[None, Some(64), Some(64), Some(3)],
        &[None, Some(64), Some(64), Some(2)],
    );
    assert_eq!(layouts(&m), (Layout::Nchw, Basis::Graph, Layout::Nchw, Basis::Graph));
}

#[test]
fn inputs_as_nchw_export_has_a_channels_last_output_only() {
    let m = model(
        vec![node("Conv", &["x", "w"], "c", None), node("Transpose", &["c"], "y", Some(NHWC_OUT))],
        &[None, Some(1), Some(16), Some(16)],
        &[None, Some(16), Some(16), Some(4)],
    );
    assert_eq!(layouts(&m), (Layout::Nchw, Basis::Graph, Layout::Nhwc, Basis::Graph));
}

#[test]
fn declared_dims_decide_when_the_graph_does_not() {
    // Reshape decides nothing: the declared dims are read.
    let reshape = || vec![node("Reshape", &["x", "k"], "y", None)];
    let m = model(reshape(), &[None, Some(64), Some(64), Some(3)], &[None, None, None, Some(4)]);
    assert_eq!(layouts(&m), (Layout::Nhwc, Basis::Dims, Layout::Nhwc, Basis::Dims));
    let spec = m.input_spec().unwrap();
    assert_eq!((spec.channels, spec.height, spec.width), (Some(3), Some(64), Some(64)));
    let m = model(reshape(), &[None, Some(1), None, None], &[None, Some(4), Some(64), Some(64)]);
    assert_eq!(layouts(&m), (Layout::Nchw, Basis::Dims, Layout::Nchw, Basis::Dims));
    // Nothing to go on: channels-first input, output as the input.
    let m = model(reshape(), &[None, None, None, None], &[None, Some(2), Some(2), Some(2)]);
    assert_eq!(layouts(&m), (Layout::Nchw, Basis::Fallback, Layout::Nchw, Basis::Fallback));
    // The output follows a channels-last input when its own dims are ambiguous.
    let m = model(reshape(), &[None, Some(8), Some(8), Some(1)], &[None, None, None, None]);
    assert_eq!(layouts(&m), (Layout::Nhwc, Basis::Dims, Layout::Nhwc, Basis::Fallback));
}

#[test]
fn dims_rules() {
    assert_eq!(input_dims_rule(&[None, None, None, Some(1)]), Some(Layout::Nhwc));
    assert_eq!(input_dims_rule(&[None, Some(3), Some(8), Some(8)]), Some(Layout::Nchw));
    assert_eq!(input_dims_rule(&[None, Some(3), Some(8), Some(4)]), None, "both ends channel-like");
    assert_eq!(input_dims_rule(&[None, Some(3), Some(8)]), None, "rank 3");
    assert_eq!(output_dims_rule(&[None, Some(64), Some(64), Some(4)]), Some(Layout::Nhwc));
    assert_eq!(output_dims_rule(&[None, Some(21), Some(64), Some(64)]), Some(Layout::Nchw));
    assert_eq!(output_dims_rule(&[None, Some(4), Some(4), Some(4)]), None);
    assert_eq!(output_dims_rule(&[None, None, None, None]), None);
}

#[test]
fn dims_reorder() {
    assert_eq!(Layout::Nhwc.to_nchw([1, 2, 3, 4]), [1, 4, 2, 3]);
    assert_eq!(Layout::Nhwc.from_nchw([1, 4, 2, 3]), [1, 2, 3, 4]);
    assert_eq!(Layout::Nchw.to_nchw([1, 2, 3, 4]), [1, 2, 3, 4]);
}
