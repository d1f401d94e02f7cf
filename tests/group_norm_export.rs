//! GroupNorm as PyTorch's TorchScript exporter writes it below opset 18: Reshape ->
//! InstanceNormalization (constant scale 1, bias 0 per group) -> Reshape -> Mul(weight) ->
//! Add(bias). Regression: the InstanceNormalization was audited as norm layer 1 with those
//! placeholders as RW/RB — identical in every model, so "delta 0, reusable" and counted in
//! the reuse share — while the GroupNorm's own weight and bias were never swapped.

mod common;

use std::path::Path;

use common::*;
use onnx_protobuf::ModelProto;
use serde_json::Value;

fn int64_tensor(name: &str, values: &[i64]) -> onnx_protobuf::TensorProto {
    let mut t = onnx_protobuf::TensorProto::new();
    t.name = name.into();
    t.data_type = 7;
    t.dims = vec![values.len() as i64];
    t.int64_data = values.to_vec();
    t
}

/// The tiny CNN without BN, a GroupNorm (2 groups of conv 1's 4 channels) exported the
/// TorchScript way between conv 1 and its ReLU.
fn with_decomposed_group_norm(seed: u64) -> ModelProto {
    let mut m = tiny_cnn(&Spec { seed, folded: true, ..Spec::default() });
    let mut rng = Rng::new(seed + 50);
    let g = m.graph.as_mut().unwrap();
    let relu = g.node.iter().position(|n| n.input.first().is_some_and(|i| i == "conv1_out")).unwrap();
    g.node[relu].input[0] = "gn_out".into();
    g.initializer.push(int64_tensor("gn.groups_shape", &[0, 2, -1]));
    g.initializer.push(tensor("gn.ones", &[2], &[1.0, 1.0], Storage::Raw));
    g.initializer.push(tensor("gn.zeros", &[2], &[0.0, 0.0], Storage::Raw));
    let gamma: Vec<f32> = rng.vec(4, 0.3).iter().map(|v| 1.0 + v).collect();
    g.initializer.push(tensor("gn.weight", &[4, 1, 1], &gamma, Storage::Raw));
    g.initializer.push(tensor("gn.bias", &[4, 1, 1], &rng.vec(4, 0.2), Storage::Raw));
    let gn = [
        node("Reshape", "gn_reshape", &["conv1_out", "gn.groups_shape"], &["grouped"], vec![]),
        node("InstanceNormalization", "gn_in", &["grouped", "gn.ones", "gn.zeros"], &["normed"], vec![]),
        node("Shape", "gn_shape", &["conv1_out"], &["conv1_shape"], vec![]),
        node("Reshape", "gn_back", &["normed", "conv1_shape"], &["ungrouped"], vec![]),
        node("Mul", "gn_mul", &["ungrouped", "gn.weight"], &["scaled"], vec![]),
        node("Add", "gn_add", &["scaled", "gn.bias"], &["gn_out"], vec![]),
    ];
    for (k, n) in gn.into_iter().enumerate() {
        g.node.insert(relu + k, n);
    }
    m
}

fn audit(t: &Path, s: &Path, data: &Path) -> (Value, String) {
    let out = audit_cmd(t, s, data).args(["--json", "--labels", "baseline"]).assert().success().get_output().clone();
    (serde_json::from_slice(&out.stdout).expect("JSON report"), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn torchscript_group_norm_placeholders_are_not_scored_as_a_reusable_norm_layer() {
    let dir = tempfile::tempdir().unwrap();
    let t = save(&with_decomposed_group_norm(1), dir.path(), "t.onnx");
    let s = save(&with_decomposed_group_norm(2), dir.path(), "s.onnx");
    let data = dir.path().join("val.npz");
    npz(&data, 6, 8, None, 3);
    // inspect sees the InstanceNormalization as norm layer 1 (what the audit leaves out).
    let text = bin().arg("inspect").arg(&t).assert().success().get_output().stdout.clone();
    assert!(String::from_utf8_lossy(&text).contains("RW=gn.ones"));
    let (r, stderr) = audit(&t, &s, &data);
    let rows = r["rows"].as_array().unwrap();
    assert!(rows.iter().all(|x| x["family"] != "norm"), "no norm row");
    assert_eq!(rows.len(), 6, "conv 1-3 W and B");
    let na: Vec<(String, String)> = r["not_audited"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                format!("{} {} {}", n["family"].as_str().unwrap(), n["layer"], n["kind"].as_str().unwrap()),
                n["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(na.iter().map(|n| n.0.as_str()).collect::<Vec<_>>(), ["norm 1 RW", "norm 1 RB"]);
    assert!(na.iter().all(|n| n.1.contains("a GroupNorm exported as Reshape -> InstanceNormalization")), "{na:?}");
    // Not every group was audited: no reuse share; the conv W verdict stands.
    assert!(r["summary"]["reuse_share_groups"].is_null());
    assert!(!r["summary"]["rn"].is_null());
    assert!(stderr.contains("Export GroupNorm as one GroupNormalization node"), "{stderr}");
}

#[test]
fn instance_norm_with_learned_scale_after_a_reshape_is_still_audited() {
    // The same graph with a scale that is not all ones: a real parameter, kept.
    let dir = tempfile::tempdir().unwrap();
    let mut tm = with_decomposed_group_norm(1);
    set_init(&mut tm, "gn.ones", |i, _| 1.0 + 0.1 * i as f32);
    let mut sm = with_decomposed_group_norm(2);
    set_init(&mut sm, "gn.ones", |i, _| 0.9 + 0.2 * i as f32);
    let t = save(&tm, dir.path(), "t.onnx");
    let s = save(&sm, dir.path(), "s.onnx");
    let data = dir.path().join("val.npz");
    npz(&data, 6, 8, None, 3);
    let (r, _) = audit(&t, &s, &data);
    assert!(r["not_audited"].as_array().unwrap().is_empty());
    assert!(r["rows"].as_array().unwrap().iter().any(|x| x["family"] == "norm" && x["kind"] == "RW"));
}
