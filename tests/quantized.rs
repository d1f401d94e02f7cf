//! Quantized models are reported as quantized (issue 11): QLinearConv / ConvInteger layers and
//! QDQ convs (DequantizeLinear -> Conv) are listed by name and count as not audited, with the
//! reason, instead of a silent "0 conv layers".

mod common;

use common::*;
use onnx_protobuf::TensorProto;
use reuse_audit::model::{layers, Model};

fn int8(name: &str, dims: &[i64], n: usize) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.data_type = 3;
    t.dims = dims.to_vec();
    t.raw_data = (0..n).map(|i| (i % 7) as u8).collect();
    t
}

/// The tiny CNN with conv 2's weight stored as int8 + scale + zero point (QDQ form).
fn qdq_conv2() -> onnx_protobuf::ModelProto {
    let mut m = tiny_cnn(&Spec::default());
    let g = m.graph.as_mut().unwrap();
    g.initializer.retain(|t| t.name != "net.conv2.weight");
    g.initializer.push(int8("w2_q", &[4, 4, 3, 3], 144));
    g.initializer.push(tensor("w2_scale", &[], &[0.05], Storage::Raw));
    g.initializer.push(int8("w2_zp", &[], 1));
    g.node.insert(0, node("DequantizeLinear", "w2_dq", &["w2_q", "w2_scale", "w2_zp"], &["net.conv2.weight"], vec![]));
    m
}

#[test]
fn qdq_conv_weight_is_listed_as_quantized_not_as_computed() {
    let dir = tempfile::tempdir().unwrap();
    let p = save(&qdq_conv2(), dir.path(), "q.onnx");
    let sc = layers::scan(&Model::load(&p).unwrap());
    assert!(sc.skipped.is_empty(), "{:?}", sc.skipped);
    assert_eq!(sc.quantized.len(), 1);
    assert_eq!((sc.quantized[0].node.as_str(), sc.quantized[0].format), ("conv2", "QDQ"));
    let out = bin().arg("inspect").arg(&p).assert().success().get_output().stdout.clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("1 quantized conv layer(s) not audited: 1 QDQ"), "{text}");
    assert!(text.contains("not audited: conv2 (Conv, QDQ)"), "{text}");
}

#[test]
fn qlinearconv_layers_are_named_as_not_audited() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = tiny_cnn(&Spec::default());
    let g = m.graph.as_mut().unwrap();
    for (i, n) in g.node.iter_mut().filter(|n| n.op_type == "Conv").enumerate() {
        n.op_type = if i == 0 { "QLinearConv".into() } else { "ConvInteger".into() };
    }
    let p = save(&m, dir.path(), "q.onnx");
    let sc = layers::scan(&Model::load(&p).unwrap());
    let listed: Vec<(&str, &str)> = sc.quantized.iter().map(|q| (q.node.as_str(), q.format)).collect();
    assert_eq!(listed, vec![("conv1", "QOperator"), ("conv2", "dynamic"), ("conv3", "dynamic")]);
    assert!(sc.quantized.iter().all(|q| q.reason.contains("not implemented")));
}
