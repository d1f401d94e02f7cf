//! Output heads: a one-channel model ending in `Sigmoid` is thresholded at 0.5, raw logits
//! at 0 (regression: a sigmoid UNet scored every pixel as foreground and got an RN verdict).

mod common;

use std::path::Path;

use common::*;
use predicates::prelude::*;
use serde_json::Value;

fn audit_json(t: &Path, s: &Path, data: &Path, extra: &[&str]) -> Value {
    let out = audit_cmd(t, s, data).args(["--json", "-q"]).args(extra).assert().success().get_output().stdout.clone();
    serde_json::from_slice(&out).expect("JSON report")
}

/// Target and source with the same one-channel head, as logits or behind a Sigmoid.
fn pair(dir: &Path, sigmoid: bool) -> (std::path::PathBuf, std::path::PathBuf) {
    let name = if sigmoid { "sigmoid" } else { "logits" };
    let mut t = tiny_cnn(&Spec::default());
    one_channel_head(&mut t, sigmoid, 8);
    let mut s = tiny_cnn(&Spec { seed: 8, ..Spec::default() });
    one_channel_head(&mut s, sigmoid, 8);
    (save(&t, dir, &format!("t-{name}.onnx")), save(&s, dir, &format!("s-{name}.onnx")))
}

fn data(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("val.npz");
    let mut rng = Rng::new(4);
    let labels: Vec<u8> = (0..6 * 64).map(|_| u8::from(rng.next() > 0.0)).collect();
    npz(&path, 6, 8, Some(&labels), 3);
    path
}

#[test]
fn sigmoid_head_scores_like_its_logits_regression_all_foreground() {
    // sigmoid(x) > 0.5 exactly where x > 0: with the right rule both models give the same
    // class maps, so every Dice must agree. Thresholding probabilities at 0 (the bug) makes
    // every pixel foreground and cannot match the logits' numbers.
    let d = tempfile::tempdir().unwrap();
    let v = data(d.path());
    let (tl, sl) = pair(d.path(), false);
    let (ts, ss) = pair(d.path(), true);
    for strategy in ["naive", "incremental"] {
        let logits = audit_json(&tl, &sl, &v, &["--strategy", strategy]);
        let probs = audit_json(&ts, &ss, &v, &["--strategy", strategy]);
        assert_eq!(logits["baseline"], probs["baseline"], "{strategy}: baseline");
        let (lr, pr) = (logits["rows"].as_array().unwrap(), probs["rows"].as_array().unwrap());
        assert_eq!(lr.len(), pr.len());
        for (a, b) in lr.iter().zip(pr) {
            assert_eq!(a["swapped_dice"], b["swapped_dice"], "{strategy}: {} {}", a["layer"], a["kind"]);
        }
        let rule = probs["dataset"]["prediction"].as_str().unwrap();
        assert!(rule.contains("> 0.5") && rule.contains("Sigmoid"), "{rule}");
        assert!(logits["dataset"]["prediction"].as_str().unwrap().contains("> 0:"));
        // Not everything is foreground: class 0 is found somewhere.
        assert!(probs["baseline"]["per_class"][0].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn threshold_flag_overrides_and_is_refused_for_multi_channel_outputs() {
    let d = tempfile::tempdir().unwrap();
    let v = data(d.path());
    let (ts, ss) = pair(d.path(), true);
    let (tl, sl) = pair(d.path(), false);
    // --threshold 0.5 on probabilities is the default rule; 0 on logits likewise.
    let default = audit_json(&ts, &ss, &v, &[]);
    let forced = audit_json(&ts, &ss, &v, &["--threshold", "0.5"]);
    assert_eq!(default["baseline"], forced["baseline"]);
    assert!(forced["dataset"]["prediction"].as_str().unwrap().contains("--threshold 0.5"));
    let at_zero = audit_json(&tl, &sl, &v, &["--threshold", "0"]);
    assert_eq!(at_zero["baseline"], audit_json(&tl, &sl, &v, &[])["baseline"]);
    // A 3-class model has no one-channel threshold.
    let t3 = save(&tiny_cnn(&Spec::default()), d.path(), "t3.onnx");
    audit_cmd(&t3, &t3, &v)
        .args(["--threshold", "0.5", "-q"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--threshold").and(predicate::str::contains("3 channels")));
}

#[test]
fn softmax_over_one_channel_is_refused_naming_the_model() {
    let d = tempfile::tempdir().unwrap();
    let v = data(d.path());
    let (t, _) = pair(d.path(), true);
    let mut m = tiny_cnn(&Spec::default());
    one_channel_head(&mut m, true, 8);
    m.graph.as_mut().unwrap().node.last_mut().unwrap().op_type = "Softmax".into();
    let soft = save(&m, d.path(), "softmax1.onnx");
    audit_cmd(&soft, &t, &v).arg("-q").assert().code(2).stderr(
        predicate::str::contains("softmax1.onnx").and(predicate::str::contains("Softmax over a single channel")),
    );
}

#[test]
fn argmax_head_or_rank_1_output_was_an_error_without_the_file_name() {
    // An export ending in ArgMax (int64 class ids) or with an initializer as its output
    // was refused without naming the model: `error: the model's first output is not a
    // float32 tensor`. Now the file comes first, as for ONNX Runtime's own refusals.
    let d = tempfile::tempdir().unwrap();
    let data = data(d.path());
    let s = save(&tiny_cnn(&Spec { seed: 8, ..Spec::default() }), d.path(), "s.onnx");
    let mut argmax = tiny_cnn(&Spec::default());
    let g = argmax.graph.as_mut().unwrap();
    g.node.last_mut().unwrap().output[0] = "scores".into();
    let mut keep = onnx_protobuf::AttributeProto::new();
    keep.name = "keepdims".into();
    keep.type_ = onnx_protobuf::attribute_proto::AttributeType::INT.into();
    keep.i = 0;
    g.node.push(node("ArgMax", "argmax", &["scores"], &["y"], vec![keep]));
    g.output[0].type_.as_mut().unwrap().mut_tensor_type().elem_type = 7;
    let t = save(&argmax, d.path(), "argmax.onnx");
    audit_cmd(&t, &s, &data).arg("-q").assert().code(2).stderr(
        predicate::str::contains("error: ")
            .and(predicate::str::contains("argmax.onnx: the model's first output is not a float32")),
    );
    let mut rank1 = tiny_cnn(&Spec::default());
    rank1.graph.as_mut().unwrap().output[0].name = "net.head.bias".into();
    let t = save(&rank1, d.path(), "rank1.onnx");
    audit_cmd(&t, &s, &data)
        .arg("-q")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("rank1.onnx: the model's output has shape [3] (rank 1)"));
}
