//! How sure each verdict is, through the real binary: intervals and three-way decisions on
//! the bundled models, the RN range and the gates (`--strict`), the adaptive audit against
//! the exact one, and the same bytes whatever the strategy and threads.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use predicates::prelude::*;
use serde_json::Value;

fn json_of(cmd: &mut assert_cmd::Command) -> Value {
    let out = cmd.args(["--json", "-q"]).assert().success().get_output().stdout.clone();
    serde_json::from_slice(&out).expect("JSON report")
}

fn rows(v: &Value) -> &Vec<Value> {
    v["rows"].as_array().unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("a number: {v}"))
}

fn validate(v: &Value) {
    let schema: Value =
        serde_json::from_slice(&std::fs::read(root().join("schemas/report.schema.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    let errors: Vec<String> = validator.iter_errors(v).map(|e| format!("{} at {}", e, e.instance_path)).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

/// The bundled acdc PSPNet pair on its 48 validation slices.
fn pspnet() -> (PathBuf, PathBuf, PathBuf) {
    let m = root().join("models");
    (m.join("pspnet-acdc-seg.onnx"), m.join("pspnet-acdc-ae.onnx"), m.join("data/acdc-val.npz"))
}

/// The decision the issue defines, from the numbers in the row.
fn decision_of(row: &Value, tolerance: f64) -> &'static str {
    let (lo, hi) = (f(&row["delta_dice_lo"]), f(&row["delta_dice_hi"]));
    if hi <= tolerance {
        "reusable"
    } else if lo > tolerance {
        "not_reusable"
    } else {
        "undecided"
    }
}

#[test]
fn on_48_slices_some_swaps_are_undecided_and_intervals_hold_the_point_estimate() {
    let (t, s, data) = pspnet();
    let v = json_of(guarded_audit_cmd(&t, &s, &data).args(["--kinds", "W,RM"]));
    validate(&v);
    assert_eq!((f(&v["settings"]["confidence"]), v["settings"]["bootstrap"].as_u64()), (0.95, Some(2000)));
    let mut undecided = Vec::new();
    for r in rows(&v) {
        let (lo, d, hi) = (f(&r["delta_dice_lo"]), f(&r["delta_dice"]), f(&r["delta_dice_hi"]));
        assert!(lo <= d && d <= hi, "the interval holds the point estimate: {r}");
        assert!(hi - lo < 0.05, "48 slices pin the loss down to a few hundredths: {r}");
        assert_eq!(r["decision"], decision_of(r, 0.02), "{r}");
        assert_eq!(r["reusable"], d <= 0.02, "reusable keeps its point meaning: {r}");
        assert_eq!(r["images_used"], 48);
        if r["decision"] == "undecided" {
            undecided.push(format!("{} {}", r["kind"].as_str().unwrap(), r["layer"]));
        }
    }
    // Conv 13 W loses 0.0199 mean Dice, conv 18 W 0.0206: neither is distinguishable
    // from the tolerance on 48 slices.
    assert!(undecided.len() >= 2, "{undecided:?}");
    let sm = &v["summary"];
    let und: Vec<u64> = sm["undecided"]["W"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
    assert_eq!(und.len(), undecided.iter().filter(|u| u.starts_with("W ")).count());
    // The RN range: decided-only to counting undecided as reusable, around the point share.
    let w: Vec<&Value> = rows(&v).iter().filter(|r| r["kind"] == "W").collect();
    let share = |keep: &dyn Fn(&Value) -> bool| w.iter().filter(|r| keep(r)).count() as f64 / w.len() as f64;
    assert_eq!(f(&sm["conv_w_reusable_share_lo"]), share(&|r| r["decision"] == "reusable"));
    assert_eq!(f(&sm["conv_w_reusable_share_hi"]), share(&|r| r["decision"] != "not_reusable"));
    assert!(f(&sm["conv_w_reusable_share_lo"]) <= f(&sm["conv_w_reusable_share"]));
    assert!(f(&sm["conv_w_reusable_share"]) <= f(&sm["conv_w_reusable_share_hi"]));
    // The verdict says how sure it is, and the predictor table is there.
    assert_eq!(sm["rn_decision"], "not_reusable", "threshold 0.5 above the whole range");
    let p = v["predictors"].as_array().unwrap();
    assert!(p.iter().any(|x| x["kind"] == "W" && x["metric"] == "subspace_overlap" && x["rho"].is_number()));
}

#[test]
fn an_undecided_rn_passes_the_gate_unless_strict() {
    let (t, s, data) = pspnet();
    let d = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let mut c = guarded_audit_cmd(&t, &s, &data);
        c.args(["--kinds", "W", "--rn-threshold", "0.4", "--format", "csv,md", "--out"]).arg(d.path()).args(extra);
        c
    };
    // W: 7 of 21 decided reusable, 2 undecided: the share is 0.33-0.43, the threshold 0.4 inside.
    let out = run(&["--fail-if-not-reusable"]).assert().success().get_output().stdout.clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("at 95% confidence: UNDECIDED (conv W reusable in 33-43% of layers"), "{text}");
    assert!(text.contains("the RN threshold 40% lies inside"), "{text}");
    let md = std::fs::read_to_string(d.path().join("report.md")).unwrap();
    assert!(md.contains("UNDECIDED") && md.contains("undecided swaps"), "{md}");
    let csv = std::fs::read_to_string(d.path().join("report.csv")).unwrap();
    assert!(csv
        .lines()
        .next()
        .unwrap()
        .ends_with(",delta_dice_lo,delta_dice_hi,decision,images_used,non_finite_images"));
    run(&["--fail-if-not-reusable", "--strict"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("the RN verdict is undecided at 95% confidence"));
    // Conv 13 W is undecided: required reusable, it passes; under --strict it fails.
    run(&["--require-reusable", "W:13"]).assert().success();
    run(&["--require-reusable", "W:13", "--strict"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("conv 13 W").and(predicate::str::contains("undecided (--strict)")));
    // Conv 2 W is decided not reusable: it fails either way.
    run(&["--require-reusable", "W:2"]).assert().code(1).stderr(predicate::str::contains("conv 2 W"));
    // With the threshold above the range the RN is decided not reusable: the gate fails.
    guarded_audit_cmd(&t, &s, &data)
        .args(["-q", "--kinds", "W", "--fail-if-not-reusable"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("the RN verdict is not_reusable"));
}

#[test]
fn adaptive_decided_rows_match_the_exact_audit() {
    let (t, s, data) = pspnet();
    let exact = json_of(guarded_audit_cmd(&t, &s, &data).args(["--kinds", "W,RM"]));
    let adaptive = json_of(guarded_audit_cmd(&t, &s, &data).args(["--kinds", "W,RM", "--adaptive"]));
    validate(&adaptive);
    let a = &adaptive["adaptive"];
    assert_eq!(a["rounds"], serde_json::json!([32, 48]));
    assert_eq!(a["rule"], "bonferroni");
    assert!((f(&a["level_per_round"]) - 0.975).abs() < 1e-12, "two looks at 97.5% for 95%");
    assert!(exact["adaptive"].is_null());
    let (mut early, mut compared) = (0, 0);
    let mut forwards = 48;
    for (e, r) in rows(&exact).iter().zip(rows(&adaptive)) {
        assert_eq!((&e["kind"], &e["layer"]), (&r["kind"], &r["layer"]));
        let used = r["images_used"].as_u64().unwrap();
        forwards += used;
        assert_eq!(r["decision"], decision_of(r, 0.02), "{r}");
        if used < 48 {
            early += 1;
            assert_ne!(r["decision"], "undecided", "a swap stops early only when decided: {r}");
        } else {
            // On every image the Dice is the exact audit's (the same counts, shuffled).
            assert!((f(&e["delta_dice"]) - f(&r["delta_dice"])).abs() < 1e-12, "{e} vs {r}");
        }
        let (de, da) = (&e["decision"], &r["decision"]);
        if de != "undecided" && da != "undecided" {
            compared += 1;
            assert_eq!(de, da, "decided rows agree: exact {e} vs adaptive {r}");
        }
    }
    assert!(early >= 20, "most swaps are decided on the first 32 images: {early}");
    assert!(compared >= 30, "{compared}");
    assert_eq!(a["image_forwards"].as_u64(), Some(forwards));
    assert_eq!(a["exact_image_forwards"].as_u64(), Some(48 * (rows(&exact).len() as u64 + 1)));
    assert_eq!(adaptive["summary"]["rn_decision"], exact["summary"]["rn_decision"]);
}

/// 80 random 8x8 images with random labels and two tiny CNNs of different seeds.
fn fixture(d: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let t = save(&tiny_cnn(&Spec::default()), d, "t.onnx");
    let s = save(&tiny_cnn(&Spec { seed: 8, ..Spec::default() }), d, "s.onnx");
    let data = d.join("val.npz");
    let mut rng = Rng::new(4);
    let labels: Vec<u8> = (0..80 * 64).map(|_| ((rng.next() + 1.0) * 1.5) as u8 % 3).collect();
    npz(&data, 80, 8, Some(&labels), 3);
    (t, s, data)
}

#[test]
fn same_bytes_whatever_the_strategy_and_threads_exact_and_adaptive() {
    let d = tempfile::tempdir().unwrap();
    let (t, s, data) = fixture(d.path());
    for mode in [&[][..], &["--adaptive"]] {
        let mut first: Option<Vec<u8>> = None;
        for (k, extra) in [
            &["--strategy", "naive"][..],
            &["--strategy", "shared"],
            &["--strategy", "incremental", "--threads", "1"],
            &["--strategy", "incremental", "--threads", "3", "--cache-mb", "0", "--batch", "5"],
        ]
        .iter()
        .enumerate()
        {
            let out = d.path().join(format!("o{}-{k}", mode.len()));
            audit_cmd(&t, &s, &data)
                .args(["-q", "--format", "csv", "--labels", "baseline", "--out"])
                .arg(&out)
                .args(*extra)
                .args(mode)
                .assert()
                .success();
            let csv = std::fs::read(out.join("report.csv")).unwrap();
            match &first {
                None => first = Some(csv),
                Some(f) => assert_eq!(&csv, f, "{mode:?} {extra:?}"),
            }
        }
    }
}

#[test]
fn label_free_identity_has_zero_width_intervals_and_bad_flags_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let (t, _, data) = fixture(d.path());
    let v = json_of(audit_cmd(&t, &t, &data).args(["--labels", "baseline", "--adaptive"]));
    for r in rows(&v) {
        assert_eq!((f(&r["delta_dice_lo"]), f(&r["delta_dice_hi"])), (0.0, 0.0), "{r}");
        assert_eq!(r["decision"], "reusable");
    }
    assert_eq!(v["adaptive"]["image_forwards"], 80, "nothing swapped runs: the baseline only");
    for (flag, value) in [("--confidence", "1.5"), ("--confidence", "0"), ("--bootstrap", "10")] {
        audit_cmd(&t, &t, &data).args([flag, value]).assert().code(2).stderr(predicate::str::contains(flag));
    }
}
