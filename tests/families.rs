//! Layer families beyond conv and BN (`linear`: Gemm, MatMul + Add; `norm`: Instance-,
//! Group- and LayerNormalization) on the `families` fixture of `tests/corpus/` (made by
//! `models/make_families.py`: a PyTorch dynamo export with a squeeze-excite block, channel
//! attention, a pointwise Linear behind the exporter's Transpose, and the three norms). The layers
//! the tool finds are those `families.expected.json` lists (the fixture script's own reading
//! of the graph).

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::Value;

fn expected() -> Value {
    let path = root().join("tests/corpus/families.expected.json");
    serde_json::from_slice(&std::fs::read(path).expect("expected file")).expect("expected JSON")
}

fn paths() -> (PathBuf, PathBuf, PathBuf) {
    let c = root().join("tests/corpus");
    (c.join("families-target.onnx"), c.join("families-source.onnx"), c.join("tiny-unet-acdc.npz"))
}

fn json_of(cmd: &mut assert_cmd::Command) -> Value {
    let out = cmd.assert().success().get_output().stdout.clone();
    serde_json::from_slice(&out).expect("JSON on stdout")
}

#[test]
fn inspect_counts_every_family_and_skips_activation_matmuls() {
    let e = expected();
    let (t, _, _) = paths();
    let v = json_of(bin().args(["inspect", "--json"]).arg(&t));
    for fam in ["conv", "bn", "linear", "norm"] {
        assert_eq!(v[format!("{fam}_layers")], e["layers"][fam], "{fam} layers");
    }
    // Each layer's parameters: the tensors the fixture script found by its own rules (the
    // MatMul weight by the name the MatMul reads, the exporter's Transpose lifted).
    let layers = v["layers"].as_array().unwrap();
    for s in e["swaps"].as_array().unwrap() {
        let l = layers.iter().find(|l| l["family"] == s["family"] && l["index"] == s["layer"]).unwrap();
        let p = l["params"].as_array().unwrap().iter().find(|p| p[0] == s["kind"]).unwrap();
        assert_eq!(p[1], s["target_tensor"], "{} {} {}", s["family"], s["layer"], s["kind"]);
    }
    assert_eq!(
        layers.len(),
        e["layers"].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum::<u64>() as usize
    );
    // The attention MatMuls (two activations) are no layers.
    for n in e["not_layers"].as_array().unwrap() {
        assert!(layers.iter().all(|l| l["node"] != n["node"]), "{} is not a parameter layer", n["node"]);
    }
    let norm_ops: Vec<&str> =
        layers.iter().filter(|l| l["family"] == "norm").map(|l| l["op"].as_str().unwrap()).collect();
    assert_eq!(norm_ops, ["InstanceNormalization", "GroupNormalization", "LayerNormalization"]);
    assert!(layers.iter().filter(|l| l["family"] == "norm").all(|l| l["epsilon"].is_number()));
    // GroupNorm/LayerNorm instead of BN: nothing folded, no warning.
    assert_eq!(v["bn_probably_folded"], false);
    assert!(v["warnings"].as_array().unwrap().is_empty(), "{:?}", v["warnings"]);
    let text = bin().arg("inspect").arg(&t).assert().success().get_output().stdout.clone();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("5 conv layers, 1 BN layers, 3 linear layers, 3 norm layers"), "{text}");
}
