//! `--metric accuracy|agreement` (issue 11). The numbers are checked against
//! `tests/corpus/classifier.expected.json`, computed with onnxruntime + numpy only by
//! `models/make_corpus.py --only classifier` (a 10-class conv-BN-ReLU-GAP-Gemm pair, 32
//! images, one class id per image), on every strategy. Then the refusals: a metric that does
//! not fit the model's output, labels that do not fit the metric, detector-like models.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use onnx_protobuf::{Message, ModelProto, TensorProto};
use predicates::prelude::*;
use serde_json::Value;

const STRATEGIES: [&str; 3] = ["naive", "shared", "incremental"];

fn corpus(name: &str) -> PathBuf {
    root().join("tests/corpus").join(name)
}

fn expected() -> Value {
    serde_json::from_slice(&std::fs::read(corpus("classifier.expected.json")).expect("expected.json")).expect("json")
}

fn pair() -> (PathBuf, PathBuf, PathBuf) {
    (corpus("classifier-target.onnx"), corpus("classifier-source.onnx"), corpus("classifier.npz"))
}

/// The JSON report of `audit T S --data D ARGS... --json -q`.
fn audit_json(t: &Path, s: &Path, data: &Path, args: &[&str]) -> Value {
    let out = guarded_audit_cmd(t, s, data).args(args).args(["--json", "-q"]).assert().success();
    serde_json::from_slice(&out.get_output().stdout).expect("report JSON")
}

fn row<'a>(r: &'a Value, family: &str, layer: u64, kind: &str) -> &'a Value {
    r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["family"] == family && x["layer"] == layer && x["kind"] == kind)
        .unwrap_or_else(|| panic!("no row {family} {layer} {kind}"))
}

fn close(got: &Value, want: &Value, what: &str) {
    let (g, w) = (got.as_f64().unwrap_or(f64::NAN), want.as_f64().unwrap());
    assert!((g - w).abs() < 1e-12, "{what}: {g} != {w}");
}

fn close_all(got: &Value, want: &Value, what: &str) {
    let (g, w) = (got.as_array().unwrap(), want.as_array().unwrap());
    assert_eq!(g.len(), w.len(), "{what}");
    for (i, (a, b)) in g.iter().zip(w).enumerate() {
        close(a, b, &format!("{what}[{i}]"));
    }
}

fn validate(v: &Value) {
    let schema: Value =
        serde_json::from_slice(&std::fs::read(root().join("schemas/report.schema.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    let errors: Vec<String> = validator.iter_errors(v).map(|e| format!("{e} at {}", e.instance_path)).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn classifier_accuracy_equals_onnxruntime_numpy_on_every_strategy() {
    let e = expected();
    let (t, s, data) = pair();
    let mut reports = Vec::new();
    for strategy in STRATEGIES {
        let r = audit_json(&t, &s, &data, &["--metric", "accuracy", "--strategy", strategy]);
        validate(&r);
        assert_eq!(r["engine"]["strategy"], strategy, "no fallback");
        assert_eq!(r["settings"]["metric"], "accuracy");
        assert_eq!(r["dataset"]["labels"], "file");
        assert!(r["dataset"]["prediction"].as_str().unwrap().contains("one class per image"), "{}", r["dataset"]);
        close(&r["baseline"]["mean"], &e["baseline"]["accuracy"], "baseline accuracy");
        close_all(&r["baseline"]["per_class"], &e["baseline"]["dice_per_class"], "baseline Dice per class");
        for sw in e["swaps"].as_array().unwrap() {
            let what = format!("{strategy} {} {} {}", sw["family"], sw["layer"], sw["kind"]);
            let x =
                row(&r, sw["family"].as_str().unwrap(), sw["layer"].as_u64().unwrap(), sw["kind"].as_str().unwrap());
            close(&x["swapped_dice"], &sw["labels"]["accuracy"], &what);
            close(&x["delta_dice"], &sw["delta_accuracy"], &what);
            close_all(&x["dice_class"], &sw["labels"]["dice_per_class"], &what);
            close(&x["dice_fg"], &sw["labels"]["mean_fg_dice"], &what);
        }
        reports.push(r);
    }
    // The planted numbers are not trivial: the baseline misses some images, conv 1 W costs
    // most of the accuracy and one BN swap even gains.
    let acc = e["baseline"]["accuracy"].as_f64().unwrap();
    assert!(acc > 0.6 && acc < 1.0, "{acc}");
    assert!(e["swaps"].as_array().unwrap().iter().any(|s| s["delta_accuracy"].as_f64().unwrap() < 0.0));
    for r in &reports[1..] {
        assert_eq!(r["rows"], reports[0]["rows"], "every strategy gives the same rows");
        assert_eq!(r["summary"], reports[0]["summary"]);
    }
}

#[test]
fn classifier_agreement_is_label_free_and_equals_onnxruntime_numpy_on_every_strategy() {
    let e = expected();
    let (t, s, data) = pair();
    let mut reports = Vec::new();
    for strategy in STRATEGIES {
        let r = audit_json(&t, &s, &data, &["--metric", "agreement", "--strategy", strategy]);
        validate(&r);
        assert_eq!(r["engine"]["strategy"], strategy, "no fallback");
        assert_eq!((&r["settings"]["metric"], &r["dataset"]["labels"]), (&"agreement".into(), &"baseline".into()));
        assert_eq!(r["baseline"]["mean"], 1.0, "the target agrees with itself");
        for sw in e["swaps"].as_array().unwrap() {
            let what = format!("{strategy} {} {} {}", sw["family"], sw["layer"], sw["kind"]);
            let x =
                row(&r, sw["family"].as_str().unwrap(), sw["layer"].as_u64().unwrap(), sw["kind"].as_str().unwrap());
            close(&x["swapped_dice"], &sw["agreement"], &what);
            close(&x["delta_dice"], &sw["delta_agreement"], &what);
            close_all(&x["dice_class"], &sw["agreement_dice_per_class"], &what);
            // Agreement is not accuracy: the truth is the target's predictions, not the labels.
            assert_ne!(sw["agreement"], sw["labels"]["accuracy"], "{what}: a swap that tells the two apart");
        }
        reports.push(r);
    }
    for r in &reports[1..] {
        assert_eq!(r["rows"], reports[0]["rows"], "every strategy gives the same rows");
    }
}

/// The classifier with its `N x 10` output reshaped to `N x 10 x 1 x 1`.
fn with_nchw_scores(path: &Path, dir: &Path) -> PathBuf {
    let mut m = ModelProto::parse_from_bytes(&std::fs::read(path).unwrap()).unwrap();
    let g = m.graph.as_mut().unwrap();
    let out = g.output[0].name.clone();
    let mut shape = TensorProto::new();
    shape.name = "scores_shape".into();
    shape.data_type = 7;
    shape.dims = vec![4];
    shape.int64_data = vec![0, 10, 1, 1];
    g.initializer.push(shape);
    g.node.push(node("Reshape", "to_n_c_1_1", &[&out, "scores_shape"], &["scores"], vec![]));
    g.output.clear();
    g.output.push(value_info("scores", &[None, Some(10), Some(1), Some(1)]));
    save(&m, dir, path.file_name().unwrap().to_str().unwrap())
}

#[test]
fn classifier_scores_as_n_c_1_1_audit_to_the_same_accuracy() {
    let e = expected();
    let (t, s, data) = pair();
    let dir = tempfile::tempdir().unwrap();
    let (t4, s4) = (with_nchw_scores(&t, dir.path()), with_nchw_scores(&s, dir.path()));
    for (metric, key) in [("accuracy", "labels"), ("agreement", "agreement")] {
        let r = audit_json(&t4, &s4, &data, &["--metric", metric]);
        let sw = &e["swaps"][0];
        let want = if metric == "accuracy" { &sw["labels"]["accuracy"] } else { &sw[key] };
        close(&row(&r, "conv", 1, "W")["swapped_dice"], want, metric);
        assert!(r["dataset"]["prediction"].as_str().unwrap().contains("[1, 10, 1, 1]"), "{}", r["dataset"]);
    }
}

#[test]
fn accuracy_below_min_baseline_is_exit_2_naming_the_accuracy() {
    // The same images with every label moved to the next class: the target classifies nothing.
    let (t, s, data) = pair();
    let images = reuse_audit::data::npy::Npz::open(&data).unwrap().require("images").unwrap();
    let labels = reuse_audit::data::npy::Npz::open(&data).unwrap().require("labels").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong.npz");
    let shifted: Vec<u8> = labels.iter().map(|&l| ((l as u8) + 1) % 10).collect();
    let pixels: Vec<f32> = images.iter().map(|&v| v as f32).collect();
    npz_arrays(&wrong, images.shape(), &pixels, Some((&[shifted.len()], &shifted)));
    guarded_audit_cmd(&t, &s, &wrong).args(["--metric", "accuracy"]).assert().code(2).stderr(
        predicate::str::contains("does not classify this data").and(predicate::str::contains("baseline accuracy")),
    );
}

/// A classifier stuck on one class (its Gemm bias pushed up by 1000 for class 3) on a set
/// where 24 of 32 images are class 3 scores accuracy 0.75, over `--min-baseline` 0.5: the
/// audit called it a reusable network with every swap reusable (each leaves it stuck). It
/// is no better than always answering the most frequent label, so it is refused.
#[test]
fn classifier_stuck_on_the_majority_class_passed_the_baseline_guard_as_an_rn() {
    let (t, s, data) = pair();
    let dir = tempfile::tempdir().unwrap();
    let mut m = ModelProto::parse_from_bytes(&std::fs::read(&t).unwrap()).unwrap();
    set_init(&mut m, "fc.bias", |i, v| if i == 3 { v + 1000.0 } else { v });
    let stuck = save(&m, dir.path(), "stuck.onnx");
    let images = reuse_audit::data::npy::Npz::open(&data).unwrap().require("images").unwrap();
    let labels = reuse_audit::data::npy::Npz::open(&data).unwrap().require("labels").unwrap();
    let mostly_3: Vec<u8> = labels.iter().enumerate().map(|(i, &l)| if i < 24 { 3 } else { l as u8 }).collect();
    let extra = mostly_3[24..].iter().filter(|&&l| l == 3).count();
    let pixels: Vec<f32> = images.iter().map(|&v| v as f32).collect();
    let set = dir.path().join("mostly-3.npz");
    npz_arrays(&set, images.shape(), &pixels, Some((&[mostly_3.len()], &mostly_3)));
    let share = 100.0 * (24 + extra) as f64 / 32.0;
    let out = dir.path().join("out");
    guarded_audit_cmd(&stuck, &s, &set).args(["--metric", "accuracy", "--out"]).arg(&out).assert().code(2).stderr(
        predicate::str::contains("stuck.onnx does not classify this data").and(predicate::str::contains(format!(
            "no better than always answering class 3, the label of {share:.1}%"
        ))),
    );
    assert!(!out.exists(), "no report");
    // What it said before: every swap leaves the model stuck, so every swap looks free.
    let r = audit_json(&stuck, &s, &set, &["--metric", "accuracy", "--min-baseline", "0"]);
    close(&r["baseline"]["mean"], &serde_json::json!((24 + extra) as f64 / 32.0), "stuck accuracy");
    assert_eq!(r["summary"]["rn"], true, "{}", r["summary"]);
    // A classifier that does classify the same set is audited as before.
    audit_json(&t, &s, &data, &["--metric", "accuracy"]);
}

#[test]
fn a_metric_that_does_not_fit_is_exit_2() {
    let (t, s, data) = pair();
    // Dice (the default) on a classifier names the output and says which metric fits.
    guarded_audit_cmd(&t, &s, &data).assert().code(2).stderr(
        predicate::str::contains("'output' [1, 10]")
            .and(predicate::str::contains("--metric accuracy"))
            .and(predicate::str::contains("--metric agreement")),
    );
    // Accuracy needs labels; agreement takes none.
    guarded_audit_cmd(&t, &s, &data)
        .args(["--metric", "accuracy", "--labels", "baseline"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--metric").and(predicate::str::contains("agreement")));
    guarded_audit_cmd(&t, &s, &root().join("x.npy"))
        .args(["--metric", "agreement", "--labels", "labels.npy"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--labels").and(predicate::str::contains("label-free")));
    // Accuracy on a segmentation model.
    let dir = tempfile::tempdir().unwrap();
    let seg = save(&tiny_cnn(&Spec::default()), dir.path(), "seg.onnx");
    let seg_data = dir.path().join("seg.npz");
    npz(&seg_data, 4, 8, Some(&[0u8; 4 * 64]), 3);
    audit_cmd(&seg, &seg, &seg_data)
        .args(["--metric", "accuracy"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("segmentation map").and(predicate::str::contains("'y' [1, 3, 8, 8]")));
}

#[test]
fn labels_that_do_not_fit_the_output_are_exit_2() {
    let (t, s, data) = pair();
    let images = reuse_audit::data::npy::Npz::open(&data).unwrap().require("images").unwrap();
    let pixels: Vec<f32> = images.iter().map(|&v| v as f32).collect();
    let dir = tempfile::tempdir().unwrap();
    // Label maps for a classifier.
    let maps = dir.path().join("maps.npz");
    npz_arrays(&maps, images.shape(), &pixels, Some((&[32, 16, 16], &[0u8; 32 * 256])));
    guarded_audit_cmd(&t, &s, &maps)
        .args(["--metric", "accuracy"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("label maps").and(predicate::str::contains("one class id per image")));
    // Class ids for a segmentation model.
    let seg = save(&tiny_cnn(&Spec::default()), dir.path(), "seg.onnx");
    let ids = dir.path().join("ids.npz");
    let mut rng = Rng::new(5);
    npz_arrays(&ids, &[4, 1, 8, 8], &rng.vec(4 * 64, 1.0), Some((&[4], &[0u8, 1, 2, 1])));
    audit_cmd(&seg, &seg, &ids)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("one class id per image").and(predicate::str::contains("label maps")));
    // A class id out of range names the image, not a pixel.
    let far = dir.path().join("far.npz");
    let labels = reuse_audit::data::npy::Npz::open(&data).unwrap().require("labels").unwrap();
    let mut ids: Vec<u8> = labels.iter().map(|&l| l as u8).collect();
    ids[7] = 10;
    npz_arrays(&far, images.shape(), &pixels, Some((&[32], &ids)));
    guarded_audit_cmd(&t, &s, &far)
        .args(["--metric", "accuracy"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("far.npz#7 has label 10 but the model has 10 classes"));
}

/// The tiny CNN's `N x 3 x 8 x 8` map turned into detector-like outputs: `boxes` (the map
/// reshaped to `N x 48 x 4`) and `scores` (global average pool, `N x 3`), in `order`.
fn detector(dir: &Path, order: &[&str]) -> PathBuf {
    let mut m = tiny_cnn(&Spec::default());
    let g = m.graph.as_mut().unwrap();
    let mut shape = TensorProto::new();
    shape.name = "boxes_shape".into();
    shape.data_type = 7;
    shape.dims = vec![3];
    shape.int64_data = vec![0, -1, 4];
    g.initializer.push(shape);
    g.node.push(node("Reshape", "to_boxes", &["y", "boxes_shape"], &["boxes"], vec![]));
    g.node.push(node("GlobalAveragePool", "gap", &["y"], &["pooled"], vec![]));
    g.node.push(node("Flatten", "to_scores", &["pooled"], &["scores"], vec![]));
    g.output.clear();
    for name in order {
        let dims: &[Option<i64>] = if *name == "boxes" { &[None, Some(48), Some(4)] } else { &[None, Some(3)] };
        g.output.push(value_info(name, dims));
    }
    save(&m, dir, &format!("det-{}.onnx", order.join("-")))
}

#[test]
fn detector_like_models_are_exit_2_naming_the_output_and_its_shape() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d.npz");
    npz(&data, 4, 8, None, 3);
    for order in [&["boxes", "scores"][..], &["scores", "boxes"], &["boxes"]] {
        let det = detector(dir.path(), order);
        for metric in ["agreement", "dice"] {
            let mut cmd = audit_cmd(&det, &det, &data);
            cmd.args(["--metric", metric]);
            if metric == "dice" {
                cmd.args(["--labels", "baseline"]);
            }
            cmd.assert().code(2).stderr(
                predicate::str::contains("detector")
                    .and(predicate::str::contains("'boxes' has shape [1, 48, 4]"))
                    // Once printed with a run of spaces in mid-sentence (a wrapped literal).
                    .and(predicate::str::contains("scores a pixel or class output"))
                    .and(predicate::str::contains("cannot be audited"))
                    .and(predicate::str::contains(det.file_name().unwrap().to_str().unwrap())),
            );
        }
    }
    // A first output that is neither a map nor a classifier's scores is refused, named.
    let only_scores = detector(dir.path(), &["scores"]);
    let mut m = ModelProto::parse_from_bytes(&std::fs::read(&only_scores).unwrap()).unwrap();
    let g = m.graph.as_mut().unwrap();
    let mut shape = TensorProto::new();
    shape.name = "rank3".into();
    shape.data_type = 7;
    shape.dims = vec![3];
    shape.int64_data = vec![0, 3, 64];
    g.initializer.push(shape);
    g.node.push(node("Reshape", "to_rank3", &["y", "rank3"], &["planes"], vec![]));
    g.output.clear();
    g.output.push(value_info("planes", &[None, Some(3), Some(64)]));
    let planes = save(&m, dir.path(), "planes.onnx");
    audit_cmd(&planes, &planes, &data).args(["--metric", "agreement"]).assert().code(2).stderr(
        predicate::str::contains("'planes' has shape [1, 3, 64]").and(predicate::str::contains("neither N x classes")),
    );
}

/// Binary agreement from the two per-class Dice values alone: with e = FP + FN errors,
/// TP = e D1 / (2 (1 - D1)), TN = e D0 / (2 (1 - D0)), so 1 - agreement = e / (TP + TN + e).
pub fn agreement_from_binary_dice(d0: f64, d1: f64) -> f64 {
    if d0 >= 1.0 || d1 >= 1.0 {
        return 1.0;
    }
    1.0 - 1.0 / (1.0 + d1 / (2.0 * (1.0 - d1)) + d0 / (2.0 * (1.0 - d0)))
}

#[test]
fn agreement_on_a_binary_map_is_consistent_with_label_free_dice() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = tiny_cnn(&Spec { seed: 11, ..Spec::default() });
    let mut s = tiny_cnn(&Spec { seed: 12, ..Spec::default() });
    one_channel_head(&mut t, true, 8);
    one_channel_head(&mut s, true, 8);
    let (t, s) = (save(&t, dir.path(), "t.onnx"), save(&s, dir.path(), "s.onnx"));
    let data = dir.path().join("d.npz");
    npz(&data, 12, 8, None, 4);
    let dice = audit_json(&t, &s, &data, &["--labels", "baseline"]);
    let agree = audit_json(&t, &s, &data, &["--metric", "agreement"]);
    let mut informative = 0;
    for (d, a) in dice["rows"].as_array().unwrap().iter().zip(agree["rows"].as_array().unwrap()) {
        // Per class, both are Dice against the baseline's predictions.
        assert_eq!(d["dice_class"], a["dice_class"]);
        let dc = d["dice_class"].as_array().unwrap();
        let want = agreement_from_binary_dice(dc[0].as_f64().unwrap(), dc[1].as_f64().unwrap());
        let got = a["swapped_dice"].as_f64().unwrap();
        assert!((got - want).abs() < 1e-9, "{} {}: agreement {got}, from Dice {want}", d["layer"], d["kind"]);
        assert!((a["delta_dice"].as_f64().unwrap() - (1.0 - got)).abs() < 1e-15);
        informative += usize::from(got < 1.0);
    }
    assert!(informative > 3, "swaps that change predictions: {informative}");
}

/// `report.md` and `report.html` of an accuracy (agreement) audit called each swap's loss a
/// "Dice loss" (the predictor table's text, the loss-with-interval figures' title and axis),
/// while the README says they speak of the chosen metric; the Dice wording stays for `dice`.
#[test]
fn accuracy_reports_called_the_loss_a_dice_loss() {
    let (t, s, data) = pair();
    let dir = tempfile::tempdir().unwrap();
    for (metric, loss) in [("accuracy", "accuracy loss"), ("agreement", "agreement loss")] {
        let out = dir.path().join(metric);
        guarded_audit_cmd(&t, &s, &data)
            .args(["--metric", metric, "-q", "--format", "md,html", "--out"])
            .arg(&out)
            .assert()
            .success();
        let md = std::fs::read_to_string(out.join("report.md")).unwrap();
        let html = std::fs::read_to_string(out.join("report.html")).unwrap();
        let svg = std::fs::read_to_string(out.join("figures/delta-W.svg")).unwrap();
        for (name, text) in [("report.md", &md), ("report.html", &html), ("delta-W.svg", &svg)] {
            assert!(!text.contains("Dice loss"), "{metric}: {name} speaks of a Dice loss");
            assert!(text.contains(loss), "{metric}: {name} does not say '{loss}'");
        }
    }
    // A Dice audit keeps its words.
    let d = corpus("tiny-unet-acdc.npz");
    let out = dir.path().join("dice");
    let (ft, fs) = (corpus("families-target.onnx"), corpus("families-source.onnx"));
    guarded_audit_cmd(&ft, &fs, &d)
        .args(["--kinds", "W", "-q", "--format", "md,html", "--out"])
        .arg(&out)
        .assert()
        .success();
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let svg = std::fs::read_to_string(out.join("figures/delta-W.svg")).unwrap();
    assert!(md.contains("measured Dice loss"), "{md}");
    assert!(svg.contains("Dice loss after swapping W"), "{svg}");
}
