//! Found and left: `InstanceNorm2d(affine=False)` (PyTorch's default) is exported with
//! constant scale 1 and bias 0, since the ONNX operator requires both; with those constants
//! in both models the norm layer's RW and RB swaps read "delta 0, reusable" and counted in
//! the reuse share, though no trained parameter is there to reuse. Now such pairs are listed
//! as not audited with the reason and left out of the share; a layer trained in either model
//! (a scale or bias not exactly 1/0) is audited as before, and so are running statistics.

mod common;

use std::path::Path;

use common::*;
use onnx_protobuf::ModelProto;
use serde_json::Value;

const REASON: &str = "constant 1/0 in both models: not a trained parameter (affine=False)";

/// The tiny CNN without BN and with an `InstanceNormalization` between conv 1 and its ReLU,
/// its scale and bias given by `scale` and `bias` (4 channels).
fn with_instance_norm(seed: u64, scale: [f32; 4], bias: [f32; 4]) -> ModelProto {
    let mut m = tiny_cnn(&Spec { seed, folded: true, ..Spec::default() });
    let g = m.graph.as_mut().unwrap();
    let relu = g.node.iter().position(|n| n.input.first().is_some_and(|i| i == "conv1_out")).unwrap();
    g.node[relu].input[0] = "in_out".into();
    g.initializer.push(tensor("in.scale", &[4], &scale, Storage::Raw));
    g.initializer.push(tensor("in.bias", &[4], &bias, Storage::Raw));
    let n = node("InstanceNormalization", "in1", &["conv1_out", "in.scale", "in.bias"], &["in_out"], vec![]);
    g.node.insert(relu, n);
    m
}

fn audit(t: &Path, s: &Path, data: &Path) -> (Value, String) {
    let out = audit_cmd(t, s, data).args(["--json", "--labels", "baseline"]).assert().success().get_output().clone();
    (serde_json::from_slice(&out.stdout).expect("JSON report"), String::from_utf8_lossy(&out.stderr).into())
}

/// (family, layer, kind) of the report's rows with a swap result.
fn swapped(r: &Value) -> Vec<(String, u64, String)> {
    r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|row| !row["delta_dice"].is_null())
        .map(|row| {
            (
                row["family"].as_str().unwrap().into(),
                row["layer"].as_u64().unwrap(),
                row["kind"].as_str().unwrap().into(),
            )
        })
        .collect()
}

fn not_audited(r: &Value) -> Vec<(String, u64, String, String)> {
    r["not_audited"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let f = |k: &str| n[k].as_str().unwrap().to_string();
            (f("family"), n["layer"].as_u64().unwrap(), f("kind"), f("reason"))
        })
        .collect()
}

/// The share of swapped rows judged reusable, from the rows themselves.
fn share_of_rows(r: &Value) -> f64 {
    let rows: Vec<&Value> = r["rows"].as_array().unwrap().iter().filter(|row| !row["delta_dice"].is_null()).collect();
    rows.iter().filter(|row| row["reusable"] == true).count() as f64 / rows.len() as f64
}

#[test]
fn instance_norm_affine_false_constants_were_counted_as_reusable() {
    let dir = tempfile::tempdir().unwrap();
    let (ones, zeros) = ([1.0; 4], [0.0; 4]);
    let t = save(&with_instance_norm(1, ones, zeros), dir.path(), "t.onnx");
    let s = save(&with_instance_norm(2, ones, zeros), dir.path(), "s.onnx");
    let data = dir.path().join("val.npz");
    npz(&data, 6, 8, None, 3);
    let (r, stderr) = audit(&t, &s, &data);
    let rows = swapped(&r);
    assert!(!rows.iter().any(|(f, _, _)| f == "norm"), "no norm swap: {rows:?}");
    assert_eq!(rows.len(), 6, "conv 1-3 W and B: {rows:?}");
    let off = not_audited(&r);
    let want: Vec<(String, u64, String, String)> =
        ["RW", "RB"].iter().map(|k| ("norm".into(), 1, k.to_string(), REASON.into())).collect();
    assert_eq!(off, want);
    // Constants are no parameters: the reuse share stands, over the 6 real groups only.
    let share = r["summary"]["reuse_share_groups"].as_f64().expect("a reuse share");
    assert!((share - share_of_rows(&r)).abs() < 1e-12, "{share} vs the rows' {}", share_of_rows(&r));
    assert!(!r["summary"]["rn"].is_null());
    assert!(
        stderr.contains("1 normalization layer(s) (norm 1 (in1)) hold scale 1 and bias 0 in both models"),
        "{stderr}"
    );
    let warnings = r["warnings"].to_string();
    assert!(warnings.contains("affine=False"), "{warnings}");
}

#[test]
fn a_norm_layer_trained_in_either_model_is_still_swapped() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("val.npz");
    npz(&data, 6, 8, None, 3);
    let t = save(&with_instance_norm(1, [1.0; 4], [0.0; 4]), dir.path(), "t.onnx");
    // A source with a trained scale (affine=True), and one with only its bias trained.
    for (name, scale, bias) in [("scale", [1.1, 0.9, 1.0, 1.2], [0.0; 4]), ("bias", [1.0; 4], [0.0, 0.1, 0.0, 0.0])] {
        let s = save(&with_instance_norm(2, scale, bias), dir.path(), &format!("{name}.onnx"));
        let (r, _) = audit(&t, &s, &data);
        let rows = swapped(&r);
        for k in ["RW", "RB"] {
            assert!(rows.contains(&("norm".into(), 1, k.into())), "{name}: norm 1 {k} swapped: {rows:?}");
        }
        assert!(not_audited(&r).is_empty(), "{name}");
    }
}

#[test]
fn batch_norm_running_statistics_and_trained_affine_parameters_are_not_caught() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("val.npz");
    npz(&data, 6, 8, None, 3);
    // bn 1 without affine parameters in both models (scale 1, bias 0); its running mean and
    // variance are trained statistics and stay. bn 2 keeps its trained scale and bias.
    let affine_off = |seed| {
        let mut m = tiny_cnn(&Spec { seed, ..Spec::default() });
        set_init(&mut m, "net.bn1.weight", |_, _| 1.0);
        set_init(&mut m, "net.bn1.bias", |_, _| 0.0);
        m
    };
    let t = save(&affine_off(1), dir.path(), "t.onnx");
    let s = save(&affine_off(2), dir.path(), "s.onnx");
    let (r, _) = audit(&t, &s, &data);
    let rows = swapped(&r);
    for (layer, kind) in [(1, "RM"), (1, "RV"), (2, "RM"), (2, "RV"), (2, "RW"), (2, "RB")] {
        assert!(rows.contains(&("bn".into(), layer, kind.into())), "bn {layer} {kind} swapped: {rows:?}");
    }
    let want: Vec<(String, u64, String, String)> =
        ["RW", "RB"].iter().map(|k| ("bn".into(), 1, k.to_string(), REASON.into())).collect();
    assert_eq!(not_audited(&r), want);
    // A scale of exactly 1 with a trained bias is a trained layer: both are swapped.
    let mut m = tiny_cnn(&Spec::default());
    set_init(&mut m, "net.bn1.weight", |_, _| 1.0);
    let t = save(&m, dir.path(), "t1.onnx");
    let (r, _) = audit(&t, &s, &data);
    assert!(not_audited(&r).is_empty(), "{:?}", not_audited(&r));
    assert!(swapped(&r).contains(&("bn".into(), 1, "RW".into())));
}
