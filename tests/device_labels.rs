//! Labels computed in the session (issue 15: `ArgMax` + `Cast` to uint8 appended to the
//! incremental strategy's region graphs, so only labels leave the device): on by default
//! on CUDA, forced here on CPU with `REUSE_AUDIT_REDUCE_ON_DEVICE=1`. The report must be
//! the same bytes (timing aside) as with the labels taken from the float output by
//! `metrics::dice::predict`: ties (the first class wins), NaN or ±inf in any class (no
//! class: 255, counted against the class the pixel should have), a one-channel head
//! (threshold), a channels-last output, and the bundled pairs.

mod common;

use std::path::Path;

use common::*;

const ON: &str = "REUSE_AUDIT_REDUCE_ON_DEVICE";

/// report.json without timing and stderr of an incremental audit, labels reduced in the
/// session or not.
fn audit(t: &Path, s: &Path, data: &Path, out: &Path, reduce: bool, extra: &[&str]) -> (Vec<u8>, String) {
    incremental_report((t, s, data), out, (ON, if reduce { "1" } else { "0" }), extra)
}

fn same_either_way(t: &Path, s: &Path, data: &Path, dir: &Path, extra: &[&str], what: &str) -> serde_json::Value {
    let (off, e_off) = audit(t, s, data, &dir.join("off"), false, extra);
    let (on, e_on) = audit(t, s, data, &dir.join("on"), true, extra);
    assert!(e_on.contains("swap labels computed in the session"), "{what}: the reduction did not apply: {e_on}");
    assert!(!e_off.contains("swap labels computed in the session"), "{what}: {e_off}");
    assert!(on == off, "{what}: the reports differ with labels computed in the session");
    serde_json::from_slice(&on).unwrap()
}

/// x [N,1,8,8] -> Conv (1x1, 3 channels: w, b) -> Sqrt -> y [N,3,8,8]: a conv parameter
/// with finite values makes exactly the logits it chooses NaN (a negative bias: a whole
/// channel; a weight: where the pixel makes the channel negative), or every logit equal.
fn sqrt_model(w: [f32; 3], b: [f32; 3]) -> onnx_protobuf::ModelProto {
    let mut m = tiny_cnn(&Spec::default());
    let g = m.graph.as_mut().unwrap();
    g.node = vec![
        node("Conv", "c", &["x", "c.weight", "c.bias"], &["h"], vec![]),
        node("Sqrt", "root", &["h"], &["y"], vec![]),
    ];
    g.initializer = vec![tensor("c.weight", &[3, 1, 1, 1], &w, Storage::Raw), tensor("c.bias", &[3], &b, Storage::Raw)];
    m
}

fn swapped(report: &serde_json::Value, initializer: &str) -> Vec<f64> {
    let rows = report["rows"].as_array().unwrap();
    let row = rows.iter().find(|r| r["target_initializer"] == initializer).unwrap();
    row["dice_class"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn ties_and_nan_give_the_labels_predict_gives() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("val.npz");
    npz(&data, 6, 8, Some(&(0..384).map(|i| (i * 7 % 3) as u8).collect::<Vec<_>>()), 3);
    // The target: logits 1, 1.41, 1.73 everywhere (class 2).
    let t = save(&sqrt_model([0.0; 3], [1.0, 2.0, 3.0]), d.path(), "t.onnx");
    // (case, source weight, source bias, which class each pixel must get when the bias is
    // swapped; NONE: a NaN in any class predicts no class, so every class's Dice is 0)
    const NONE: usize = reuse_audit::metrics::dice::NO_PREDICTION as usize;
    let cases = [
        ("ties", [1.0, 0.0, 0.0], [2.0, 2.0, 2.0], Some(0)),
        ("nan-class-1", [1.0, 0.0, 0.0], [1.0, -1.0, 3.0], Some(NONE)),
        ("nan-class-0", [1.0, 0.0, 0.0], [-1.0, 2.0, 3.0], Some(NONE)),
        ("nan-classes-0-2", [1.0, 0.0, 0.0], [-1.0, 2.0, -3.0], Some(NONE)),
        // The weight swap: NaN in class 0 where a pixel is below -1 (z-scored data).
        ("per-pixel", [1.0, 1.0, -1.0], [1.0, 2.0, 3.0], None),
    ];
    for (name, w, b, class) in cases {
        let s = save(&sqrt_model(w, b), d.path(), &format!("{name}.onnx"));
        let v = same_either_way(&t, &s, &data, &d.path().join(name), &["--kinds", "W,B"], name);
        if let Some(k) = class {
            // Every pixel is class k: Dice 0 for the others (the labels hold all three).
            let dice = swapped(&v, "c.bias");
            for (c, x) in dice.iter().enumerate() {
                assert_eq!(*x > 0.0, c == k, "{name}: class {c}: {dice:?}");
            }
        }
    }
}

/// x -> Conv (1x1, 3 channels) -> Reciprocal -> y: a zero bias with a zero weight makes
/// that class +inf at every pixel.
fn reciprocal_model(w: [f32; 3], b: [f32; 3]) -> onnx_protobuf::ModelProto {
    let mut m = sqrt_model(w, b);
    m.graph.as_mut().unwrap().node[1].op_type = "Reciprocal".into();
    m
}

#[test]
fn infinite_scores_give_no_class_either_way() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("val.npz");
    npz(&data, 6, 8, Some(&(0..384).map(|i| (i * 7 % 3) as u8).collect::<Vec<_>>()), 3);
    // The target: scores 1, 0.5, 0.33 everywhere (class 0).
    let t = save(&reciprocal_model([0.0; 3], [1.0, 2.0, 3.0]), d.path(), "t.onnx");
    for (name, b) in [("inf-class-0", [0.0, 2.0, 3.0]), ("inf-class-2", [1.0, 2.0, 0.0])] {
        let s = save(&reciprocal_model([0.0; 3], b), d.path(), &format!("{name}.onnx"));
        let v = same_either_way(&t, &s, &data, &d.path().join(name), &["--kinds", "B"], name);
        let dice = swapped(&v, "c.bias");
        assert!(dice.iter().all(|&x| x == 0.0), "{name}: every pixel has no class: {dice:?}");
    }
}

/// x -> Conv -> Reciprocal -> Neg: a zero bias with a zero weight makes that class -inf.
fn negative_reciprocal_model(w: [f32; 3], b: [f32; 3]) -> onnx_protobuf::ModelProto {
    let mut m = reciprocal_model(w, b);
    let g = m.graph.as_mut().unwrap();
    g.node[1].output = vec!["r".into()];
    g.node.push(node("Neg", "neg", &["r"], &["y"], vec![]));
    m
}

/// The same model declared at opset 11, where `ReduceSum` takes its axes as an attribute
/// (an input from opset 13).
fn at_opset_11(mut m: onnx_protobuf::ModelProto) -> onnx_protobuf::ModelProto {
    for o in m.opset_import.iter_mut().filter(|o| o.domain.is_empty() || o.domain == "ai.onnx") {
        o.version = 11;
    }
    m
}

#[test]
fn minus_infinity_and_opset_11_give_no_class_either_way() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("val.npz");
    npz(&data, 6, 8, Some(&(0..384).map(|i| (i * 7 % 3) as u8).collect::<Vec<_>>()), 3);
    // The target: scores -1, -0.5, -0.33 everywhere (class 2).
    let t = save(&negative_reciprocal_model([0.0; 3], [1.0, 2.0, 3.0]), d.path(), "t.onnx");
    let s = save(&negative_reciprocal_model([0.0; 3], [1.0, 0.0, 3.0]), d.path(), "s.onnx");
    let v = same_either_way(&t, &s, &data, &d.path().join("minus-inf"), &["--kinds", "B"], "minus-inf");
    let dice = swapped(&v, "c.bias");
    assert!(dice.iter().all(|&x| x == 0.0), "-inf in class 1: every pixel has no class: {dice:?}");
    // Opset 11: NaN in class 1 (no class) and ties (class 0) as at opset 17.
    let t = save(&at_opset_11(sqrt_model([0.0; 3], [1.0, 2.0, 3.0])), d.path(), "t11.onnx");
    for (name, b, class) in [("ties-11", [2.0, 2.0, 2.0], 0usize), ("nan-11", [1.0, -1.0, 3.0], 255)] {
        let s = save(&at_opset_11(sqrt_model([1.0, 0.0, 0.0], b)), d.path(), &format!("{name}.onnx"));
        let v = same_either_way(&t, &s, &data, &d.path().join(name), &["--kinds", "B"], name);
        let dice = swapped(&v, "c.bias");
        for (c, x) in dice.iter().enumerate() {
            assert_eq!(*x > 0.0, c == class, "{name}: class {c}: {dice:?}");
        }
    }
}

#[test]
fn a_classifier_gives_the_same_bytes() {
    let d = tempfile::tempdir().unwrap();
    let c = root().join("tests/corpus");
    let (t, s, data) = (c.join("classifier-target.onnx"), c.join("classifier-source.onnx"), c.join("classifier.npz"));
    same_either_way(&t, &s, &data, d.path(), &["--metric", "accuracy"], "classifier");
}

#[test]
fn a_one_channel_head_and_a_channels_last_output() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("val.npz");
    npz(&data, 6, 8, None, 3);
    for sigmoid in [false, true] {
        let mut t = tiny_cnn(&Spec::default());
        let mut s = tiny_cnn(&Spec { seed: 2, ..Spec::default() });
        one_channel_head(&mut t, sigmoid, 8);
        one_channel_head(&mut s, sigmoid, 8);
        let (t, s) = (save(&t, d.path(), "t1.onnx"), save(&s, d.path(), "s1.onnx"));
        let dir = d.path().join(format!("one-{sigmoid}"));
        same_either_way(&t, &s, &data, &dir, &["--labels", "baseline"], &format!("one channel, sigmoid {sigmoid}"));
    }
    let t = channels_last(&tiny_cnn(&Spec::default()));
    let s = channels_last(&tiny_cnn(&Spec { seed: 2, ..Spec::default() }));
    let (t, s) = (save(&t, d.path(), "tl.onnx"), save(&s, d.path(), "sl.onnx"));
    let v = same_either_way(&t, &s, &data, &d.path().join("nhwc"), &["--labels", "baseline"], "channels last");
    assert_eq!(v["dataset"]["layout"], "nhwc");
}

#[test]
fn the_bundled_pairs_give_the_same_bytes() {
    let d = tempfile::tempdir().unwrap();
    let m = root().join("models");
    for arch in ["unet", "pspnet"] {
        let (t, s) = (m.join(format!("{arch}-acdc-seg.onnx")), m.join(format!("{arch}-acdc-ae.onnx")));
        same_either_way(&t, &s, &m.join("data/acdc-val.npz"), &d.path().join(arch), &[], arch);
    }
}
