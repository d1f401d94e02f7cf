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

/// The TorchScript exporter merges initializers of equal values (BN scales still at 1, zero
/// biases) into one tensor read by several layers. Paired by position with a source that keeps
/// them apart, each of those layers' rows put a different source tensor into all of them at
/// once (measured on a torchvision LR-ASPP export: bn 3 RW delta -0.0071, the one-layer swap
/// -0.0021), under a warning that called the rows "one and the same swap". They are now not
/// swapped: unmatched and not audited, with the reason; a real tie (below) is still audited.
#[test]
fn an_exporter_merged_tensor_paired_with_different_source_tensors_was_swapped_into_every_layer() {
    let dir = tempfile::tempdir().unwrap();
    let mut merged = tiny_cnn(&Spec { seed: 1, extra_conv: true, ..Spec::default() });
    let g = merged.graph.as_mut().unwrap();
    g.initializer.retain(|t| t.name != "net.bn3.weight");
    g.node.iter_mut().find(|n| n.name == "bn3").unwrap().input[1] = "net.bn2.weight".into();
    let t = save(&merged, dir.path(), "t.onnx");
    let s = save(&tiny_cnn(&Spec { seed: 2, extra_conv: true, ..Spec::default() }), dir.path(), "s.onnx");
    let data = dir.path().join("val.npz");
    npz(&data, 6, 8, Some(&[1u8; 6 * 64]), 3);
    let out = audit_cmd(&t, &s, &data).args(["--json", "--families", "bn"]).assert().success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    let said = "the target's 'net.bn2.weight' is read by bn 2 RW, bn 3 RW but paired with 2 different source \
                tensors ('net.bn2.weight', 'net.bn3.weight'): the exporter merged equal tensors into one";
    assert!(err.contains(&format!("2 parameter pair(s) not swapped (listed as unmatched): {said}")), "{err}");
    let r: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let rows = r["rows"].as_array().unwrap();
    let rw: Vec<u64> = rows.iter().filter(|x| x["kind"] == "RW").map(|x| x["layer"].as_u64().unwrap()).collect();
    assert_eq!(rw, [1], "only bn 1 RW is one layer's swap: {rw:?}");
    assert_eq!(rows.len(), 3 * 4 - 2);
    let missing: Vec<(u64, &str)> = r["not_audited"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["layer"].as_u64().unwrap(), n["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(missing.len(), 2, "{missing:?}");
    for (layer, (l, reason)) in [2, 3].iter().zip(&missing) {
        assert_eq!(l, layer);
        assert!(reason.starts_with("unmatched: ") && reason.contains(said), "{reason}");
    }
    assert!(r["summary"]["reuse_share"].is_null(), "{}", r["summary"]);
}
