//! Tied weights: one initializer read by two convolutions (a module applied twice). The
//! audit listed a row for each layer as if each were its own swap, with nothing said; the
//! swap replaces the tensor in both, and the report now says so.

mod common;

use common::*;
use serde_json::Value;

/// The tiny CNN with a third 4->4 conv that reads conv 2's weight and bias.
fn tied(seed: u64) -> onnx_protobuf::ModelProto {
    let mut m = tiny_cnn(&Spec { seed, extra_conv: true, ..Spec::default() });
    let g = m.graph.as_mut().unwrap();
    g.initializer.retain(|t| !t.name.starts_with("net.conv3."));
    let conv3 = g.node.iter_mut().find(|n| n.name == "conv3").unwrap();
    conv3.input[1] = "net.conv2.weight".into();
    conv3.input[2] = "net.conv2.bias".into();
    m
}

#[test]
fn tied_conv_weights_were_listed_as_two_swaps_without_a_word() {
    let dir = tempfile::tempdir().unwrap();
    let t = save(&tied(1), dir.path(), "t.onnx");
    let s = save(&tied(2), dir.path(), "s.onnx");
    let data = dir.path().join("val.npz");
    npz(&data, 6, 8, Some(&[1u8; 6 * 64]), 3);
    let said = "2 parameter tensor(s) are read by more than one layer (tied weights)";
    let first = "First: 'net.conv2.weight' is conv 2 W (conv2) and conv 3 W (conv3)";
    let out = audit_cmd(&t, &s, &data).args(["--json", "--kinds", "W,B"]).assert().success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains(said) && err.contains(first), "{err}");
    let r: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let warnings = r["warnings"].as_array().unwrap();
    assert!(warnings.iter().any(|w| w.as_str().unwrap().contains("/t.onnx: 2 parameter tensor(s)")), "{warnings:?}");
    // One swap under two layers: the same tensor replaced, the same numbers.
    let row = |layer: u64, kind: &str| {
        r["rows"].as_array().unwrap().iter().find(|x| x["layer"] == layer && x["kind"] == kind).unwrap().clone()
    };
    for kind in ["W", "B"] {
        let (a, b) = (row(2, kind), row(3, kind));
        assert_eq!(a["target_initializer"], b["target_initializer"]);
        assert_eq!((&a["delta_dice"], &a["rmse"]), (&b["delta_dice"], &b["rmse"]), "{kind}");
    }
    let inspect = bin().arg("inspect").arg(&t).assert().success();
    assert!(String::from_utf8_lossy(&inspect.get_output().stdout).contains(first));
}
