//! Layer families beyond conv and BN (`linear`: Gemm, MatMul + Add; `norm`: Instance-,
//! Group- and LayerNormalization) on the `families` fixture of `tests/corpus/` (made by
//! `models/make_families.py`: a PyTorch dynamo export with a squeeze-excite block, channel
//! attention, a pointwise Linear behind the exporter's Transpose, and the three norms). Every
//! number checked here comes from `families.expected.json`, computed with onnxruntime + numpy
//! only. Regression: linear W swaps were counted in the RN verdict (4 of 8 "conv W"
//! reusable: an RN, where conv W alone is 1 of 5).

mod common;

use std::path::PathBuf;

use common::*;
use predicates::prelude::*;
use serde_json::Value;

/// Dice: the same ONNX Runtime numbers, so agreement is exact up to summation order.
const DICE_TOL: f64 = 1e-6;

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

fn audit(extra: &[&str]) -> Value {
    let (t, s, d) = paths();
    json_of(guarded_audit_cmd(&t, &s, &d).args(["--json", "-q"]).args(extra))
}

fn validate(v: &Value) {
    let schema: Value =
        serde_json::from_slice(&std::fs::read(root().join("schemas/report.schema.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    let errors: Vec<String> = validator.iter_errors(v).map(|e| format!("{} at {}", e, e.instance_path)).collect();
    assert!(errors.is_empty(), "report.schema.json: {errors:#?}");
}

fn row<'a>(r: &'a Value, family: &str, layer: u64, kind: &str) -> &'a Value {
    r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["family"] == family && x["layer"] == layer && x["kind"] == kind)
        .unwrap_or_else(|| panic!("no row {family} {layer} {kind}"))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn close(a: &Value, b: &Value, tol: f64, what: &str) {
    let (a, b) = (f(a), f(b));
    assert!((a - b).abs() <= tol * b.abs().max(1.0), "{what}: tool {a} vs expected {b}");
}

/// Every expected swap's Dice and weight metrics against one report.
fn check_numbers(r: &Value, e: &Value, what: &str) {
    close(&r["baseline"]["mean"], &e["baseline"]["mean"], DICE_TOL, &format!("{what}: baseline"));
    let swaps = e["swaps"].as_array().unwrap();
    assert_eq!(r["rows"].as_array().unwrap().len(), swaps.len(), "{what}: one row per parameter");
    for s in swaps {
        let (fam, layer, kind) =
            (s["family"].as_str().unwrap(), s["layer"].as_u64().unwrap(), s["kind"].as_str().unwrap());
        let x = row(r, fam, layer, kind);
        let name = format!("{what}: {fam} {layer} {kind}");
        close(&x["swapped_dice"], &s["swapped"]["mean"], DICE_TOL, &name);
        close(&x["delta_dice"], &s["delta"], DICE_TOL, &name);
        for (k, want) in s["swapped"]["per_class"].as_array().unwrap().iter().enumerate() {
            close(&x["dice_class"][k], want, DICE_TOL, &format!("{name} class {k}"));
        }
        for m in ["rmse", "nrmse", "cosine"] {
            close(&x[m], &s[m], 1e-9, &format!("{name} {m}"));
        }
        // Linear W read as outputs x inputs (the MatMul's transposed): numpy's SVD agrees.
        if s.get("subspace_overlap").is_some() {
            for m in ["spectral_rel", "subspace_overlap"] {
                close(&x[m], &s[m], 1e-6, &format!("{name} {m}"));
            }
        } else {
            assert!(x["spectral_rel"].is_null() && x["subspace_overlap"].is_null(), "{name}: spectral only on W");
        }
    }
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

#[test]
fn every_strategy_matches_onnxruntime_and_numpy() {
    let e = expected();
    for strategy in ["naive", "shared", "incremental"] {
        let r = audit(&["--strategy", strategy]);
        assert_eq!(r["engine"]["strategy"], strategy, "no fallback");
        check_numbers(&r, &e, strategy);
        validate(&r);
    }
}

#[test]
fn linear_w_does_not_count_in_the_rn_verdict() {
    let e = expected();
    let r = audit(&[]);
    let tol = 0.02;
    let swaps = e["swaps"].as_array().unwrap();
    let share = |fam: &str| {
        let w: Vec<bool> =
            swaps.iter().filter(|s| s["family"] == fam && s["kind"] == "W").map(|s| f(&s["delta"]) <= tol).collect();
        w.iter().filter(|&&b| b).count() as f64 / w.len() as f64
    };
    // Conv W alone: 1 of 5 reusable; linear W: 3 of 3 (together 4 of 8 = an RN at 0.5).
    assert_eq!(share("conv"), 0.2);
    assert_eq!(share("linear"), 1.0);
    assert_eq!(f(&r["summary"]["conv_w_reusable_share"]), share("conv"));
    assert_eq!(r["summary"]["rn"], false);
    // Reuse shares count every family.
    let ok = swaps.iter().filter(|s| f(&s["delta"]) <= tol).count() as f64;
    close(&r["summary"]["reuse_share_groups"], &Value::from(ok / swaps.len() as f64), 1e-12, "share of groups");
    // The lists: bare kinds for conv and BN, prefixed for the new families.
    for s in swaps {
        let key = match s["family"].as_str().unwrap() {
            "conv" | "bn" => s["kind"].as_str().unwrap().to_string(),
            fam => format!("{fam}.{}", s["kind"].as_str().unwrap()),
        };
        let list = if f(&s["delta"]) <= tol { "reusable" } else { "not_reusable" };
        let layers = r["summary"][list][&key].as_array().unwrap_or_else(|| panic!("no list {list} {key}"));
        assert!(layers.contains(&s["layer"]), "{key} {} in {list}", s["layer"]);
    }
    assert_eq!(r["target"]["linear_layers"], 3);
    assert_eq!(r["target"]["norm_layers"], 3);
    assert!(r["settings"].get("families").is_none(), "all families: no restriction recorded");
}

#[test]
fn rn_decision_at_confidence_not_withheld_by_linear_layers() {
    // Regression: with linear W rows audited, the RN decision at --confidence (and the
    // share's range) was silently missing, the "at 95% confidence" line not printed, and
    // --fail-if-not-reusable fell back to the point verdict.
    let e = expected();
    let r = audit(&[]);
    let swaps = e["swaps"].as_array().unwrap();
    let conv_w: Vec<&Value> = swaps.iter().filter(|s| s["family"] == "conv" && s["kind"] == "W").collect();
    assert_eq!(conv_w.len(), 5);
    // Independent numbers: 4 of the 5 conv W swaps lose more than the tolerance (0.029 to
    // 0.57), conv 4 W loses 0.007.
    assert_eq!(conv_w.iter().filter(|s| f(&s["delta"]) > 0.02).count(), 4);
    // The range counts conv W decisions only (the 3 linear W rows are decided too).
    let decided = |d: &str| {
        r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["family"] == "conv" && x["kind"] == "W" && x["decision"] == d)
            .count()
    };
    assert_eq!(decided("not_reusable"), 4);
    let (lo, hi) = (f(&r["summary"]["conv_w_reusable_share_lo"]), f(&r["summary"]["conv_w_reusable_share_hi"]));
    assert_eq!((lo, hi), (decided("reusable") as f64 / 5.0, 1.0 / 5.0));
    assert_eq!(r["summary"]["rn_decision"], "not_reusable");
    let (t, s, d) = paths();
    guarded_audit_cmd(&t, &s, &d)
        .args(["-q", "--fail-if-not-reusable"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("at 95% confidence: NOT a reusable network"))
        .stderr(predicate::str::contains("the RN verdict is not_reusable at 95% confidence"));
}

#[test]
fn families_flag_selects_what_is_paired_and_audited() {
    let e = expected();
    let all = audit(&[]);
    let r = audit(&["--families", "linear,norm", "--strategy", "incremental"]);
    validate(&r);
    assert_eq!(r["settings"]["families"], serde_json::json!(["linear", "norm"]));
    let rows = r["rows"].as_array().unwrap();
    let want =
        e["swaps"].as_array().unwrap().iter().filter(|s| s["family"] == "linear" || s["family"] == "norm").count();
    assert_eq!(rows.len(), want);
    for x in rows {
        let y = row(&all, x["family"].as_str().unwrap(), x["layer"].as_u64().unwrap(), x["kind"].as_str().unwrap());
        assert_eq!(x, y, "same row as in the full audit");
    }
    // No conv W audited: no RN verdict at all.
    assert!(r["summary"]["rn"].is_null());
    // --kinds applies in every family: W is conv and linear W.
    let r = audit(&["--kinds", "W", "--strategy", "shared"]);
    let fams: Vec<&str> = r["rows"].as_array().unwrap().iter().map(|x| x["family"].as_str().unwrap()).collect();
    assert_eq!(fams.iter().filter(|f| **f == "conv").count(), 5);
    assert_eq!(fams.iter().filter(|f| **f == "linear").count(), 3);
    assert_eq!(fams.len(), 8);
    // A bad family names the flag.
    let (t, s, d) = paths();
    guarded_audit_cmd(&t, &s, &d)
        .args(["--families", "conv,attention"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--families").and(predicate::str::contains("'attention'")));
}

#[test]
fn require_reusable_names_the_new_families() {
    let (t, s, d) = paths();
    let e = expected();
    let lin3 = e["swaps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["family"] == "linear" && x["layer"] == 3 && x["kind"] == "W")
        .unwrap();
    // linear 3 W loses 0.0077: reusable at 0.02, not at 0.005.
    assert!(f(&lin3["delta"]) > 0.005 && f(&lin3["delta"]) < 0.02);
    let gate = |extra: &[&str]| {
        let mut c = guarded_audit_cmd(&t, &s, &d);
        c.args(["-q", "--strategy", "incremental"]).args(extra);
        c
    };
    gate(&["--require-reusable", "linear.W:*,norm.RW:*,norm.RB:1-3"]).assert().success();
    // (16 images: the interval of linear 3 W holds 0.005, so the row is undecided and only
    // --strict makes the gate fail on it.)
    gate(&["--tolerance", "0.005", "--require-reusable", "linear.W:1-3"]).assert().success();
    gate(&["--tolerance", "0.005", "--strict", "--require-reusable", "linear.W:1-3"]).assert().code(1).stderr(
        predicate::str::contains("--require-reusable: linear 3 W").and(predicate::str::contains("linear 1 W").not()),
    );
    // Bare W is conv W, as it always was: conv 4 W is reusable, conv 1 W is not.
    gate(&["--require-reusable", "W:4"]).assert().success();
    gate(&["--require-reusable", "W:1"]).assert().code(1).stderr(predicate::str::contains("conv 1 W"));
    // Layers or families that were not audited cannot pass: the gate is refused (exit 2).
    gate(&["--require-reusable", "linear.W:4"]).assert().code(2).stderr(
        predicate::str::contains("linear.W:4: the target has no linear layer 4 with W")
            .and(predicate::str::contains("the gate would check nothing")),
    );
    gate(&["--families", "conv,bn", "--require-reusable", "norm.RW:*"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("norm.RW: norm is not among the audited --families"));
    gate(&["--require-reusable", "norm.W:1"]).assert().code(2).stderr(predicate::str::contains("--require-reusable"));
}

#[test]
fn mapping_file_pairs_new_families_and_refuses_a_family_mix() {
    let (t, s, d) = paths();
    let e = expected();
    let dir = tempfile::tempdir().unwrap();
    // Every parameter by its name (the lifted MatMul weight included).
    let names: Vec<String> = e["swaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| format!("{0},{0}", x["target_tensor"].as_str().unwrap()))
        .collect();
    let map = dir.path().join("map.csv");
    std::fs::write(&map, format!("target_initializer,source_initializer\n{}\n", names.join("\n"))).unwrap();
    let r = json_of(guarded_audit_cmd(&t, &s, &d).args(["--json", "-q", "--match"]).arg(&map));
    assert_eq!(r["settings"]["match_method"], "file");
    check_numbers(&r, &e, "--match file");
    // A conv weight mapped onto a linear one: refused, both families named.
    std::fs::write(&map, "conv1.weight,se1.weight\n").unwrap();
    guarded_audit_cmd(&t, &s, &d)
        .args(["-q", "--match"])
        .arg(&map)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("'conv1.weight' is conv W but 'se1.weight' is linear W"));
}

#[test]
fn rmse_and_matrix_cover_the_new_families() {
    let (t, s, _) = paths();
    let e = expected();
    let r = json_of(bin().args(["rmse", "--json", "-q"]).arg(&t).arg(&s));
    validate(&r);
    for x in e["swaps"].as_array().unwrap() {
        let y = row(&r, x["family"].as_str().unwrap(), x["layer"].as_u64().unwrap(), x["kind"].as_str().unwrap());
        close(&y["rmse"], &x["rmse"], 1e-9, "rmse");
        assert!(y["swapped_dice"].is_null());
    }
    let dir = tempfile::tempdir().unwrap();
    bin().args(["matrix", "-q", "--out"]).arg(dir.path()).arg(&t).arg(&s).assert().success();
    let long = std::fs::read_to_string(dir.path().join("matrix.csv")).unwrap();
    assert!(long.lines().any(|l| l.contains(",linear,3,W,")), "{long}");
    assert!(long.lines().any(|l| l.contains(",norm,2,RB,")), "{long}");
    // The summary stays the mean nRMSE of conv W only.
    let conv_w: Vec<f64> = e["swaps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["family"] == "conv" && x["kind"] == "W")
        .map(|x| f(&x["nrmse"]))
        .collect();
    let want = conv_w.iter().sum::<f64>() / conv_w.len() as f64;
    let summary = std::fs::read_to_string(dir.path().join("summary.csv")).unwrap();
    let got: f64 = summary.lines().nth(1).unwrap().split(',').nth(2).unwrap().parse().unwrap();
    assert!((got - want).abs() < 1e-9, "summary {got} vs conv W mean nRMSE {want}");
}

#[test]
fn reports_and_figures_show_the_new_families() {
    let (t, s, d) = paths();
    let dir = tempfile::tempdir().unwrap();
    guarded_audit_cmd(&t, &s, &d)
        .args(["-q", "--format", "csv,json,md,html", "--out"])
        .arg(dir.path())
        .assert()
        .success();
    let figs = dir.path().join("figures");
    for f in
        ["dice-W.svg", "dice-RV.svg", "dice-linear-W.svg", "dice-linear-B.svg", "dice-norm-RW.svg", "dice-norm-RB.svg"]
    {
        assert!(figs.join(f).exists(), "{f}");
    }
    for f in ["rmse-w.svg", "rmse-linear-w.svg", "nrmse-linear-b.svg", "subspace-w.svg", "subspace-linear-w.svg"] {
        assert!(figs.join(f).exists(), "{f}");
    }
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("Mean Dice after swapping RW of each norm layer"));
    assert!(html.contains("Spectral distance and subspace overlap of linear W per layer"));
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("| linear.W | 1-3 | - |"), "{md}");
    let csv = std::fs::read_to_string(dir.path().join("report.csv")).unwrap();
    assert_eq!(csv.lines().filter(|l| l.starts_with("linear,")).count(), 6);
    assert_eq!(csv.lines().filter(|l| l.starts_with("norm,")).count(), 6);
    // The printed table: the family column fits "linear", the lists are prefixed.
    let out = guarded_audit_cmd(&t, &s, &d)
        .args(["-q", "--strategy", "shared"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("linear.W reusable: 1-3"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("linear     3 W ")), "{text}");
}
