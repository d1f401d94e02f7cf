//! Exports from other frameworks and exporters (`tests/corpus/`, made by
//! `models/make_corpus.py`): the tool's default audit against numbers computed
//! independently with onnxruntime + numpy (`*.expected.json`, the right preprocessing and
//! output rule for each model). Regressions: a sigmoid UNet thresholded at 0 and a model
//! trained on raw intensities fed z-scores both got confident RN verdicts.

mod common;

use common::*;
use serde_json::Value;

/// Dice agreement between the tool (ONNX Runtime 1.31 through ort) and the Python check.
const TOL: f64 = 1e-4;

fn expected(case: &str) -> Value {
    let path = root().join("tests/corpus").join(format!("{case}.expected.json"));
    serde_json::from_slice(&std::fs::read(&path).expect("expected file")).expect("expected JSON")
}

/// Audit a case with default flags (the guard on) and compare the baseline and every
/// swap the expected file lists. Returns the report.
fn check(case: &str, extra: &[&str]) -> Value {
    check_rows(case, extra, |_| true)
}

/// [`check`] on the expected swaps that `keep` selects.
fn check_rows(case: &str, extra: &[&str], keep: impl Fn(&Value) -> bool) -> Value {
    let e = expected(case);
    let p = |k: &str| root().join(e[k].as_str().unwrap());
    let out = guarded_audit_cmd(&p("target"), &p("source"), &p("data"))
        .args(["--json", "-q"])
        .args(extra)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let r: Value = serde_json::from_slice(&out).expect("report");
    let close = |a: &Value, b: &Value, what: &str| {
        let (a, b) = (a.as_f64().unwrap_or(f64::NAN), b.as_f64().unwrap());
        assert!((a - b).abs() <= TOL, "{case}: {what}: tool {a} vs expected {b}");
    };
    close(&r["baseline"]["mean"], &e["baseline"]["mean"], "baseline mean");
    for (i, want) in e["baseline"]["per_class"].as_array().unwrap().iter().enumerate() {
        close(&r["baseline"]["per_class"][i], want, &format!("baseline class {i}"));
    }
    for s in e["swaps"].as_array().unwrap().iter().filter(|s| keep(s)) {
        let row = r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["family"] == s["family"] && x["layer"] == s["layer"] && x["kind"] == s["kind"])
            .unwrap_or_else(|| panic!("{case}: no row for {} {} {}", s["family"], s["layer"], s["kind"]));
        let what = format!("{} {} {}", s["family"], s["layer"], s["kind"]);
        close(&row["swapped_dice"], &s["swapped"]["mean"], &what);
    }
    r
}

#[test]
fn sigmoid_unet_is_thresholded_at_one_half() {
    let r = check("sigmoid-unet", &[]);
    assert!(r["dataset"]["prediction"].as_str().unwrap().contains("> 0.5"));
    // The first conv's W costs a third of the Dice: not reusable, as measured.
    let w1 = r["rows"].as_array().unwrap().iter().find(|x| x["kind"] == "W" && x["layer"] == 1).unwrap();
    assert_eq!(w1["reusable"], false);
}

#[test]
fn raw_intensity_model_gets_its_own_scaling() {
    let r = check("raw-intensity-unet", &[]);
    assert_eq!(r["dataset"]["normalize"], "none");
    let scores = r["dataset"]["normalize_scores"].as_array().unwrap();
    assert!(scores.iter().any(|s| s["normalize"] == "div255"), "uint8 images: div255 is tried");
}

#[test]
fn keras_tf2onnx_nchw_export() {
    check("keras-unet-nchw", &[]);
}

#[test]
fn int64_constant_of_shape_graph() {
    check("constant-of-shape", &[]);
    let e = expected("constant-of-shape");
    let p = |k: &str| root().join(e[k].as_str().unwrap());
    bin().args(["inspect", "--flops"]).arg(p("target")).assert().success();
}

#[test]
fn smp_pspnet_dynamo_export_runs_the_fast_path() {
    // Its adaptive pooling feeds bool masks into the decoder: regions take any tensor type.
    let r = check("smp-pspnet", &[]);
    assert_eq!(r["engine"]["strategy"], "incremental");
}

#[test]
fn keras_tf2onnx_default_nhwc_export_audits_like_the_nchw_one() {
    let nhwc = check("keras-unet-nhwc", &[]);
    assert_eq!(nhwc["dataset"]["layout"], "nhwc");
    let nchw = check("keras-unet-nchw", &[]);
    let rows = |r: &Value| {
        r["rows"].as_array().unwrap().iter().map(|x| x["swapped_dice"].as_f64().unwrap()).collect::<Vec<_>>()
    };
    for (a, b) in rows(&nhwc).iter().zip(rows(&nchw)) {
        assert!((a - b).abs() <= 2e-3, "NHWC {a} vs NCHW {b}");
    }
}

#[test]
fn keras_tf2onnx_folded_export_audits_w_and_b() {
    let r = check("keras-unet-folded", &[]);
    assert_eq!(r["target"]["bn_layers"], 0);
    assert!(r["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains("tf2onnx")));
}

#[test]
fn weights_in_constant_identity_and_cast_nodes() {
    let r = check("constant-weights", &[]);
    assert_eq!(r["engine"]["strategy"], "incremental");
}

#[test]
fn quantized_exports_leave_quantized_convs_out_and_give_no_rn_verdict() {
    // (quant-dynamic-unet's expected numbers were computed in batches, which its dynamic
    // activation quantization makes batch-dependent: it has its own test below.)
    for case in ["quant-qdq-unet", "quant-qoperator-unet"] {
        // Quantized conv layers are not audited (so only BN rows compare) but keep their
        // numbers: conv k is the graph's k-th conv in every export of the network.
        let r = check_rows(case, &[], |s| s["family"] == "bn");
        assert!(r["summary"]["rn"].is_null(), "{case}: no RN verdict");
        let w = r["warnings"].as_array().unwrap();
        assert!(w.iter().any(|w| w.as_str().unwrap().contains("not audited")), "{case}: {w:?}");
        let conv: Vec<u64> = r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["family"] == "conv")
            .map(|x| x["layer"].as_u64().unwrap())
            .collect();
        assert!(
            conv.iter().all(|&l| [9, 12, 15].contains(&l)),
            "{case}: float ConvTranspose layers keep graph numbers: {conv:?}"
        );
    }
}

#[test]
fn dynamic_quantization_runs_one_image_at_a_time_so_batches_do_not_change_numbers() {
    // DynamicQuantizeLinear scales activations per run: batched, an image's Dice depended on
    // its batch mates and on the strategy (regression: 0.998117 vs 0.998052 vs 0.998021).
    let e = expected("quant-dynamic-unet");
    let p = |k: &str| root().join(e[k].as_str().unwrap());
    let run = |extra: &[&str]| -> Value {
        let out = guarded_audit_cmd(&p("target"), &p("source"), &p("data"))
            .args(["--json", "-q", "--kinds", "RM,RV"])
            .args(extra)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        serde_json::from_slice(&out).unwrap()
    };
    let one = run(&["--strategy", "naive", "--batch", "1"]);
    assert!(one["summary"]["rn"].is_null());
    // Within the spread batching itself causes, the independent (batched) computation.
    let (got, want) = (one["baseline"]["mean"].as_f64().unwrap(), e["baseline"]["mean"].as_f64().unwrap());
    assert!((got - want).abs() < 5e-4, "{got} vs {want}");
    for extra in
        [&["--strategy", "naive", "--batch", "16"][..], &["--strategy", "incremental"], &["--strategy", "shared"]]
    {
        let r = run(extra);
        assert_eq!(r["baseline"], one["baseline"], "{extra:?}");
        let sw =
            |r: &Value| r["rows"].as_array().unwrap().iter().map(|x| x["swapped_dice"].clone()).collect::<Vec<_>>();
        assert_eq!(sw(&r), sw(&one), "{extra:?}");
        assert!(r["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("DynamicQuantizeLinear")));
    }
}
