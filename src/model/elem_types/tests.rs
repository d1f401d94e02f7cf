//! Per-op type rules on hand-built nodes, each checked against the ONNX operator spec.

use onnx_protobuf::{AttributeProto, ModelProto, NodeProto, TensorProto};

use super::*;

fn node(op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    let mut n = NodeProto::new();
    n.op_type = op.into();
    n.input = inputs.iter().map(|s| s.to_string()).collect();
    n.output = outputs.iter().map(|s| s.to_string()).collect();
    n.attribute = attrs;
    n
}

fn int_attr(name: &str, v: i64) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.i = v;
    a
}

fn tensor_attr(name: &str, data_type: i32) -> AttributeProto {
    let mut t = TensorProto::new();
    t.data_type = data_type;
    t.dims = vec![1];
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.t = Some(t).into();
    a
}

fn init(name: &str, data_type: i32) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.data_type = data_type;
    t
}

fn types_of(nodes: Vec<NodeProto>, inits: Vec<TensorProto>) -> HashMap<String, i32> {
    let mut m = ModelProto::new();
    let g = m.graph.mut_or_insert_default();
    g.node = nodes;
    g.initializer = inits;
    elem_types(&Model::index("t.onnx".into(), String::new(), m))
}

#[test]
fn constant_of_shape_takes_its_value_type_not_its_shape_input_type() {
    let t = types_of(
        vec![
            node("Shape", &["x"], &["s"], vec![]),
            node("ConstantOfShape", &["s"], &["zeros"], vec![]),
            node("ConstantOfShape", &["s"], &["ones64"], vec![tensor_attr("value", INT64)]),
            node("ConstantOfShape", &["s"], &["half"], vec![tensor_attr("value", 10)]),
        ],
        vec![init("x", FLOAT)],
    );
    assert_eq!((t["s"], t["zeros"], t["ones64"], t["half"]), (INT64, FLOAT, INT64, 10));
}

#[test]
fn index_outputs_are_int64_and_values_keep_the_data_type() {
    let t = types_of(
        vec![
            node("TopK", &["x", "k"], &["vals", "idx"], vec![]),
            node("MaxPool", &["x"], &["pooled", "argmax"], vec![]),
            node("ArgMin", &["x"], &["am"], vec![]),
            node("NonZero", &["x"], &["nz"], vec![]),
        ],
        vec![init("x", 11), init("k", INT64)],
    );
    assert_eq!((t["vals"], t["idx"], t["pooled"], t["argmax"]), (11, INT64, 11, INT64));
    assert_eq!((t["am"], t["nz"]), (INT64, INT64));
}

#[test]
fn cast_logic_and_dtype_ops_follow_their_attributes() {
    let t = types_of(
        vec![
            node("Cast", &["x"], &["c"], vec![int_attr("to", 6)]),
            node("Less", &["x", "x"], &["lt"], vec![]),
            node("Not", &["lt"], &["nlt"], vec![]),
            node("Where", &["lt", "i", "i"], &["w"], vec![]),
            node("EyeLike", &["x"], &["eye"], vec![int_attr("dtype", INT64 as i64)]),
            node("EyeLike", &["x"], &["eye_same"], vec![]),
            node("RandomNormalLike", &["x"], &["noise"], vec![int_attr("dtype", 10)]),
            node("RandomUniform", &[], &["u"], vec![]),
            node("Range", &["i", "i", "i"], &["r"], vec![]),
            node("CastLike", &["x", "i"], &["cl"], vec![]),
        ],
        vec![init("x", FLOAT), init("i", INT64)],
    );
    assert_eq!((t["c"], t["lt"], t["nlt"], t["w"]), (6, BOOL, BOOL, INT64));
    assert_eq!((t["eye"], t["eye_same"], t["noise"], t["u"], t["r"], t["cl"]), (INT64, FLOAT, 10, FLOAT, INT64, INT64));
}

#[test]
fn quantization_ops_follow_their_zero_points_and_scales() {
    let t = types_of(
        vec![
            node("QuantizeLinear", &["x", "s", "zp8"], &["q"], vec![]),
            node("QuantizeLinear", &["x", "s"], &["q_default"], vec![]),
            node("DequantizeLinear", &["q", "s", "zp8"], &["dq"], vec![]),
            node("ConvInteger", &["q", "q"], &["acc"], vec![]),
            node("DynamicQuantizeLinear", &["x"], &["dy", "dy_scale", "dy_zp"], vec![]),
        ],
        vec![init("x", FLOAT), init("s", FLOAT), init("zp8", 3)],
    );
    assert_eq!((t["q"], t["q_default"], t["dq"], t["acc"]), (3, UINT8, FLOAT, INT32));
    assert_eq!((t["dy"], t["dy_scale"], t["dy_zp"]), (UINT8, FLOAT, UINT8));
}

#[test]
fn unknown_and_custom_domain_ops_are_left_to_onnx_runtime() {
    let mut custom = node("FusedConv", &["x"], &["fc"], vec![]);
    custom.domain = "com.microsoft".into();
    let t = types_of(vec![custom, node("Loop", &["x"], &["l"], vec![])], vec![init("x", FLOAT)]);
    assert!(!t.contains_key("fc") && !t.contains_key("l"));
}
