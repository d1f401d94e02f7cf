//! Weights outside initializers (issue 11): parameters in `Constant` nodes (Paddle exports),
//! behind `Identity` chains, and float64 tensors behind `Cast` to float32 are lifted into
//! initializers on load, so every strategy feeds them, and the numbers do not change.

mod common;

use std::path::Path;

use common::*;
use onnx_protobuf::{attribute_proto::AttributeType, AttributeProto, ModelProto, NodeProto, TensorProto};
use reuse_audit::model::{layers, Kind, Model, ParamSource};
use serde_json::Value;

fn take_init(m: &mut ModelProto, name: &str) -> TensorProto {
    let g = m.graph.as_mut().unwrap();
    let i = g.initializer.iter().position(|t| t.name == name).unwrap();
    g.initializer.remove(i)
}

fn constant(output: &str, mut t: TensorProto) -> NodeProto {
    t.name.clear();
    let mut a = AttributeProto::new();
    a.name = "value".into();
    a.type_ = AttributeType::TENSOR.into();
    a.t = Some(t).into();
    node("Constant", &format!("{output}_const"), &[], &[output], vec![a])
}

fn cast_to_f32(input: &str, output: &str) -> NodeProto {
    let mut a = AttributeProto::new();
    a.name = "to".into();
    a.type_ = AttributeType::INT.into();
    a.i = 1;
    node("Cast", &format!("{output}_cast"), &[input], &[output], vec![a])
}

/// float64 copy of a float32 raw tensor (exact: every float32 is a float64).
fn as_f64(t: &TensorProto) -> TensorProto {
    let mut d = t.clone();
    d.data_type = 11;
    d.raw_data = t
        .raw_data
        .chunks_exact(4)
        .flat_map(|c| (f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64).to_le_bytes())
        .collect();
    d
}

/// The tiny CNN as a Paddle-style export: conv 1 W and B in Constant nodes, conv 2 W a
/// Constant behind two Identity nodes, BN 1 RV a float64 Constant behind Cast, BN 2 RV a
/// float64 initializer behind Cast. Same values as `tiny_cnn(spec)`.
fn scattered(spec: &Spec) -> ModelProto {
    let mut m = tiny_cnn(spec);
    let p = &spec.prefix;
    let mut pre = Vec::new();
    for name in [format!("{p}.conv1.weight"), format!("{p}.conv1.bias")] {
        let t = take_init(&mut m, &name);
        pre.push(constant(&name, t));
    }
    let w2 = format!("{p}.conv2.weight");
    let t = take_init(&mut m, &w2);
    pre.push(constant("w2_stored", t));
    pre.push(node("Identity", "w2_id1", &["w2_stored"], &["w2_a"], vec![]));
    pre.push(node("Identity", "w2_id2", &["w2_a"], &[&w2], vec![]));
    let rv1 = format!("{p}.bn1.running_var");
    let t = take_init(&mut m, &rv1);
    pre.push(constant("rv1_f64", as_f64(&t)));
    pre.push(cast_to_f32("rv1_f64", &rv1));
    let rv2 = format!("{p}.bn2.running_var");
    let mut t = as_f64(&take_init(&mut m, &rv2));
    t.name = "rv2_f64".into();
    m.graph.as_mut().unwrap().initializer.push(t);
    pre.push(cast_to_f32("rv2_f64", &rv2));
    let g = m.graph.as_mut().unwrap();
    pre.append(&mut g.node);
    g.node = pre;
    m
}

fn audit_json(t: &Path, s: &Path, data: &Path, extra: &[&str]) -> Value {
    let out = audit_cmd(t, s, data).args(["--json", "-q"]).args(extra).assert().success().get_output().stdout.clone();
    serde_json::from_slice(&out).expect("JSON report")
}

#[test]
fn constant_identity_and_cast_weights_become_initializers_on_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = save(&scattered(&Spec::default()), dir.path(), "t.onnx");
    let m = Model::load(&path).unwrap();
    let scan = layers::scan(&m);
    assert!(scan.skipped.is_empty(), "{:?}", scan.skipped);
    let params: Vec<_> = scan.layers.iter().flat_map(|l| &l.params).collect();
    assert_eq!(params.len(), 14);
    assert!(params.iter().all(|p| matches!(p.source, ParamSource::Initializer(_))), "{params:?}");
    let g = &m.proto.graph;
    assert!(g.node.iter().all(|n| !matches!(n.op_type.as_str(), "Constant" | "Identity" | "Cast")));
    let conv2 = g.node.iter().find(|n| n.name == "conv2").unwrap();
    assert_eq!(conv2.input[1], "w2_stored", "conv 2 reads the initializer past the Identity chain");
    assert_eq!(m.lifted_from("net.conv1.weight"), Some("Constant node 'net.conv1.weight_const'"));
    assert_eq!(
        m.lifted_from("net.bn1.running_var"),
        Some("Cast node 'net.bn1.running_var_cast' (float32 of float64 'rv1_f64')")
    );
    // The values are the original float32 ones, to the bit.
    let plain = Model::load(&save(&tiny_cnn(&Spec::default()), dir.path(), "plain.onnx")).unwrap();
    let plain_scan = layers::scan(&plain);
    for (a, b) in scan.layers.iter().zip(&plain_scan.layers) {
        for kind in Kind::ALL {
            if let (Some(pa), Some(pb)) = (a.param(kind), b.param(kind)) {
                assert_eq!(m.values(pa).unwrap(), plain.values(pb).unwrap(), "{} {kind}", a.label());
            }
        }
    }
}

#[test]
fn lifted_weights_audit_incrementally_with_the_numbers_of_initializer_weights() {
    let dir = tempfile::tempdir().unwrap();
    let t = save(&scattered(&Spec::default()), dir.path(), "t.onnx");
    let s = save(&scattered(&Spec { seed: 8, ..Spec::default() }), dir.path(), "s.onnx");
    let pt = save(&tiny_cnn(&Spec::default()), dir.path(), "pt.onnx");
    let ps = save(&tiny_cnn(&Spec { seed: 8, ..Spec::default() }), dir.path(), "ps.onnx");
    let data = dir.path().join("val.npz");
    let mut rng = Rng::new(9);
    let labels: Vec<u8> = (0..6 * 64).map(|_| ((rng.next() + 1.0) * 1.5) as u8 % 3).collect();
    npz(&data, 6, 8, Some(&labels), 3);
    let naive = audit_json(&t, &s, &data, &["--strategy", "naive"]);
    let default = audit_json(&t, &s, &data, &[]);
    let plain = audit_json(&pt, &ps, &data, &["--strategy", "naive"]);
    assert_eq!(default["engine"]["strategy"], "incremental");
    let rows = |v: &Value| v["rows"].as_array().unwrap().clone();
    assert_eq!(rows(&default).len(), 14);
    for ((a, b), c) in rows(&naive).iter().zip(&rows(&default)).zip(&rows(&plain)) {
        for k in ["family", "layer", "kind", "swapped_dice", "reusable", "rmse", "cosine"] {
            assert_eq!(a[k], b[k], "naive vs default {k}: {a} vs {b}");
            assert_eq!(a[k], c[k], "lifted vs initializers {k}: {a} vs {c}");
        }
    }
    assert_eq!(naive["baseline"], plain["baseline"]);
    assert_eq!(default["baseline"], plain["baseline"]);
}

#[test]
fn a_constant_weight_of_integer_type_is_skipped_naming_its_node() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = scattered(&Spec::default());
    let g = m.graph.as_mut().unwrap();
    let c = g.node.iter_mut().find(|n| n.name == "net.conv1.bias_const").unwrap();
    let t = c.attribute[0].t.as_mut().unwrap();
    t.data_type = 6;
    t.raw_data = vec![0; 16];
    let path = save(&m, dir.path(), "t.onnx");
    let scan = layers::scan(&Model::load(&path).unwrap());
    assert_eq!(scan.skipped, vec!["conv1: B 'net.conv1.bias' is int32 (held by Constant node 'net.conv1.bias_const')"]);
}
