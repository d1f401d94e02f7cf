//! The float32 rewrite on hand-built graphs: what is detected as computing in half, and
//! that every half tensor keeps its numbers (values chosen at float16's edges).

use onnx_protobuf::{AttributeProto, GraphProto, NodeProto, TensorProto, ValueInfoProto};

use super::*;

fn node(op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    let mut n = NodeProto::new();
    n.op_type = op.into();
    n.name = format!("{op}_{}", outputs.first().unwrap_or(&""));
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

fn tensor_attr(name: &str, t: TensorProto) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.t = Some(t).into();
    a
}

fn graph_attr(name: &str, g: GraphProto) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.g = Some(g).into();
    a
}

/// A tensor of `values` stored as `dtype` (raw data), named `name`.
fn stored(name: &str, dtype: DType, values: &[f64]) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.data_type = match dtype {
        DType::Float32 => 1,
        DType::Float16 => 10,
        DType::Float64 => 11,
        DType::Bfloat16 => 16,
    };
    t.dims = vec![values.len() as i64];
    tensor::set_values(&mut t, values).unwrap();
    t
}

fn value(name: &str, elem: i32) -> ValueInfoProto {
    let mut v = ValueInfoProto::new();
    v.name = name.into();
    v.type_.mut_or_insert_default().mut_tensor_type().elem_type = elem;
    v
}

fn elem(v: &ValueInfoProto) -> i32 {
    v.type_.tensor_type().elem_type
}

fn attr_i(n: &NodeProto, name: &str) -> i64 {
    n.attribute.iter().find(|a| a.name == name).map(|a| a.i).unwrap()
}

fn attr_t<'a>(n: &'a NodeProto, name: &str) -> &'a TensorProto {
    n.attribute.iter().find(|a| a.name == name).and_then(|a| a.t.as_ref()).unwrap()
}

/// float16's edges: the largest finite value, the smallest subnormal (2^-24), negative
/// zero, and 0.1 as float16 rounds it (0.0999755859375).
const EDGES: [f64; 5] = [65504.0, 5.960464477539063e-8, -0.0, -2.5, 0.0999755859375];

#[test]
fn half_weights_cast_to_float32_before_use_are_left_as_they_are() {
    // Storage-only float16: the graph computes in float32 (lift reads past the Cast).
    let mut g = GraphProto::new();
    g.input = vec![value("x", 1)];
    g.output = vec![value("y", 1)];
    g.initializer = vec![stored("w16", DType::Float16, &EDGES)];
    g.node = vec![node("Cast", &["w16"], &["w"], vec![int_attr("to", 1)]), node("Conv", &["x", "w"], &["y"], vec![])];
    let before = g.clone();
    assert!(half_types(&g).is_empty());
    assert_eq!(upcast(&mut g), Ok(None));
    assert_eq!(g, before);
}

#[test]
fn a_half_export_computes_in_float32_with_the_same_numbers() {
    let mut g = GraphProto::new();
    g.input = vec![value("x", 10)];
    g.output = vec![value("y", 10)];
    g.value_info = vec![value("c", 10)];
    let mut typed = TensorProto::new();
    typed.name = "b".into();
    typed.data_type = 10;
    typed.dims = vec![2];
    typed.int32_data = [1.5f32, -3.0].iter().map(|v| half::f16::from_f32(*v).to_bits() as i32).collect();
    g.initializer = vec![stored("w", DType::Float16, &EDGES), typed, stored("s", DType::Bfloat16, &[0.5, 3.0e38])];
    let mut shape = TensorProto::new();
    shape.data_type = 7;
    g.node = vec![
        node("Conv", &["x", "w", "b"], &["c"], vec![]),
        node("Constant", &[], &["k"], vec![tensor_attr("value", stored("", DType::Float16, &[0.25]))]),
        node("ConstantOfShape", &["shape"], &["z"], vec![tensor_attr("value", stored("", DType::Float16, &[-1.0]))]),
        node("EyeLike", &["c"], &["e"], vec![int_attr("dtype", 10)]),
        node("RandomNormal", &[], &["r"], vec![int_attr("dtype", 16)]),
        node("Cast", &["c"], &["c16"], vec![int_attr("to", 10)]),
        node("Cast", &["c"], &["c64"], vec![int_attr("to", 11)]),
        node("Mul", &["c16", "k"], &["y"], vec![]),
    ];
    let values = |g: &GraphProto| -> Vec<Vec<f64>> {
        let inits = g.initializer.iter().map(|t| tensor::decode(t).unwrap().iter().copied().collect());
        inits
            .chain([1, 2].map(|i| tensor::decode(attr_t(&g.node[i], "value")).unwrap().iter().copied().collect()))
            .collect()
    };
    let before = values(&g);
    let up = upcast(&mut g).unwrap().expect("computes in half");
    assert_eq!(
        up,
        Upcast { types: vec![DType::Float16, DType::Bfloat16], half_input: true, tensors: 5, type_attributes: 3 }
    );
    assert_eq!(up.type_name(), "float16 and bfloat16");
    // Same numbers, bit for bit (negative zero too), now float32.
    let after = values(&g);
    let bits =
        |v: &Vec<Vec<f64>>| v.iter().map(|x| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>()).collect::<Vec<_>>();
    assert_eq!(bits(&after), bits(&before));
    assert!(g.initializer.iter().all(|t| t.data_type == 1 && t.int32_data.is_empty()));
    assert_eq!(attr_t(&g.node[1], "value").data_type, 1);
    assert_eq!(attr_t(&g.node[2], "value").data_type, 1);
    assert_eq!((attr_i(&g.node[3], "dtype"), attr_i(&g.node[4], "dtype")), (1, 1));
    // Casts to half cast to float32; a cast to another type stays.
    assert_eq!((attr_i(&g.node[5], "to"), attr_i(&g.node[6], "to")), (1, 11));
    assert_eq!((elem(&g.input[0]), elem(&g.output[0]), elem(&g.value_info[0])), (1, 1, 1));
    // Nothing is half any more: a second pass changes nothing.
    assert_eq!(upcast(&mut g), Ok(None));
}

#[test]
fn a_mixed_export_is_found_by_its_casts_to_half() {
    // onnxconverter_common's keep_io_types: float32 in and out, float16 inside.
    let mut g = GraphProto::new();
    g.input = vec![value("x", 1)];
    g.output = vec![value("y", 1)];
    g.initializer = vec![stored("w", DType::Float16, &[1.0, 2.0])];
    g.node = vec![
        node("Cast", &["x"], &["x16"], vec![int_attr("to", 10)]),
        node("Conv", &["x16", "w"], &["c"], vec![]),
        node("Cast", &["c"], &["y"], vec![int_attr("to", 1)]),
    ];
    assert_eq!(half_types(&g), BTreeSet::from([10]));
    let up = upcast(&mut g).unwrap().unwrap();
    assert_eq!(up, Upcast { types: vec![DType::Float16], half_input: false, tensors: 1, type_attributes: 1 });
    assert_eq!(
        up.warning(),
        "computes in float16 (float32 input; inside, 1 Cast(s) or other element-type attribute(s) to float16, now float32): \
         audited in float32 with its float16 weights upcast exactly (activations are not rounded to float16 as a float16 run would)"
    );
    assert!(g.node.iter().all(|n| n.op_type == "Conv" || attr_i(n, "to") == 1));
}

#[test]
fn half_weights_read_directly_or_through_identity_or_in_a_subgraph_are_found() {
    // A Conv reading a float16 weight (through Identity) with no Cast: it computes in half.
    let mut g = GraphProto::new();
    g.input = vec![value("x", 1)];
    g.initializer = vec![stored("w", DType::Float16, &[1.0])];
    g.node = vec![node("Identity", &["w"], &["wi"], vec![]), node("Conv", &["x", "wi"], &["y"], vec![])];
    assert_eq!(half_types(&g), BTreeSet::from([10]));
    // Inside an If branch, reading the outer graph's bfloat16 tensor and its own.
    let mut branch = GraphProto::new();
    branch.initializer = vec![stored("inner", DType::Bfloat16, &[2.0])];
    branch.output = vec![value("o", 16)];
    branch.node = vec![node("Add", &["outer", "inner"], &["o"], vec![])];
    let mut g = GraphProto::new();
    g.input = vec![value("cond", 9)];
    g.initializer = vec![stored("outer", DType::Bfloat16, &[1.0])];
    g.node = vec![node("If", &["cond"], &["y"], vec![graph_attr("then_branch", branch)])];
    assert_eq!(half_types(&g), BTreeSet::from([16]));
    let up = upcast(&mut g).unwrap().unwrap();
    assert_eq!(up.tensors, 2);
    let branch = g.node[0].attribute[0].g.as_ref().unwrap();
    assert_eq!((branch.initializer[0].data_type, elem(&branch.output[0])), (1, 1));
    assert!(up
        .warning()
        .starts_with("computes in bfloat16 (its input is not bfloat16; bfloat16 tensors are read inside): audited"));
}

#[test]
fn a_half_graph_that_reinterprets_bits_is_refused() {
    let mut g = GraphProto::new();
    g.input = vec![value("x", 10)];
    g.node = vec![node("BitCast", &["x"], &["y"], vec![int_attr("to", 5)])];
    let e = upcast(&mut g).unwrap_err();
    assert!(e.contains("BitCast node 'BitCast_y' reinterprets bits"), "{e}");
}

#[test]
fn the_warning_says_what_a_half_run_would_differ_in() {
    let up = Upcast { types: vec![DType::Float16], half_input: true, tensors: 3, type_attributes: 0 };
    assert_eq!(
        up.warning(),
        "computes in float16: audited in float32 with its float16 weights upcast exactly (activations are not rounded to float16 as a float16 run would)"
    );
    assert_eq!(
        (up.rounding(), Upcast { types: vec![DType::Bfloat16], ..up }.rounding()),
        (2f64.powi(-11), 2f64.powi(-8))
    );
}

#[test]
fn a_half_tensor_with_impossible_dims_is_an_error_not_a_panic() {
    // Subgraph tensors are not checked on load: the rewrite checks what it decodes.
    let mut bad = stored("huge", DType::Float16, &[1.0]);
    bad.dims = vec![1 << 40, 1 << 40];
    let mut branch = GraphProto::new();
    branch.initializer = vec![bad];
    let mut g = GraphProto::new();
    g.input = vec![value("x", 10)];
    g.node = vec![node("If", &["c"], &["y"], vec![graph_attr("then_branch", branch)])];
    let e = upcast(&mut g).unwrap_err();
    assert!(e.contains("huge"), "{e}");
}
