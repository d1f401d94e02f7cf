//! Half-precision exports (`tests/corpus/half*`, `bf16-*`, made by `models/make_half.py`):
//! audited in float32 with their weights upcast exactly. Regression: a `model.half()` export
//! was refused at its float16 input ("the audit feeds float32 images"), and a mixed export
//! (float32 input, Casts to float16 inside) could not run at all.
//!
//! The independent numbers: `half.expected.json`'s Dice of the float32 exports of
//! `model.half().float()` (and `.bfloat16().float()`), computed with onnxruntime + numpy; the
//! tool's audit of the half pair must give them, and its audit of the committed float32
//! rounding (`half-rounded-*`) the very same numbers.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use onnx_protobuf::{Message, ModelProto};
use serde_json::Value;

/// Dice agreement with the Python numbers (the same float32 graph on ONNX Runtime: equal in
/// practice).
const TOL: f64 = 1e-6;

fn corpus(name: &str) -> PathBuf {
    root().join("tests/corpus").join(name)
}

fn pair(export: &str) -> (PathBuf, PathBuf) {
    (corpus(&format!("{export}-target.onnx")), corpus(&format!("{export}-source.onnx")))
}

fn expected() -> Value {
    serde_json::from_slice(&std::fs::read(corpus("half.expected.json")).unwrap()).unwrap()
}

fn json_of(cmd: &mut assert_cmd::Command) -> Value {
    let out = cmd.assert().success().get_output().stdout.clone();
    serde_json::from_slice(&out).expect("JSON on stdout")
}

/// The default audit (baseline guard on) of `target` against `source` on the corpus data.
fn audit(target: &Path, source: &Path, extra: &[&str]) -> Value {
    let data = corpus("tiny-unet-acdc.npz");
    let r = json_of(guarded_audit_cmd(target, source, &data).args(["--json", "-q", "--no-timing"]).args(extra));
    validate(&r);
    r
}

fn validate(v: &Value) {
    let schema: Value =
        serde_json::from_slice(&std::fs::read(root().join("schemas/report.schema.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    let errors: Vec<String> = validator.iter_errors(v).map(|e| format!("{} at {}", e, e.instance_path)).collect();
    assert!(errors.is_empty(), "report.schema.json: {errors:#?}");
}

/// Per row: (family, layer, kind, swapped Dice, Dice per class).
fn dice(r: &Value) -> Vec<(String, u64, String, f64, Value)> {
    r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let s = |k: &str| x[k].as_str().unwrap().to_string();
            (
                s("family"),
                x["layer"].as_u64().unwrap(),
                s("kind"),
                x["swapped_dice"].as_f64().unwrap(),
                x["dice_class"].clone(),
            )
        })
        .collect()
}

/// The report's baseline and every swap against `want` (`baseline`, `swaps` of the expected
/// file's layout): every swap the file lists, and no other row.
fn matches_python(r: &Value, want: &Value, what: &str) {
    let close = |a: f64, b: f64, w: &str| assert!((a - b).abs() <= TOL, "{what}: {w}: tool {a} vs onnxruntime {b}");
    close(r["baseline"]["mean"].as_f64().unwrap(), want["baseline"]["mean"].as_f64().unwrap(), "baseline");
    let swaps = want["swaps"].as_array().unwrap();
    let rows = dice(r);
    assert_eq!(rows.len(), swaps.len(), "{what}: rows");
    assert_eq!(swaps.len(), 13 * 2 + 10 * 4, "every conv W/B and BN RW/RB/RM/RV");
    for s in swaps {
        let (fam, layer, kind) =
            (s["family"].as_str().unwrap(), s["layer"].as_u64().unwrap(), s["kind"].as_str().unwrap());
        let row = rows.iter().find(|x| x.0 == fam && x.1 == layer && x.2 == kind).expect("row");
        close(row.3, s["swapped"]["mean"].as_f64().unwrap(), &format!("{fam} {layer} {kind}"));
    }
}

fn warnings(r: &Value) -> Vec<String> {
    r["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap().to_string()).collect()
}

const SAYS: &str = "computes in float16: audited in float32 with its float16 weights upcast exactly (activations are not rounded to float16 as a float16 run would)";

#[test]
fn model_half_export_was_refused_and_now_audits_as_its_float32_rounding() {
    let e = expected();
    // The committed files are what the expected file describes (the script checked that the
    // four exports store the same weights).
    assert!(e["checks"].as_object().unwrap().values().all(|c| c["equal"] == true), "{}", e["checks"]);
    let (t, s) = pair("half");
    let half = audit(&t, &s, &[]);
    assert_eq!(half["dataset"]["normalize"], "zscore");
    assert_eq!(half["engine"]["strategy"], "incremental");
    matches_python(&half, &e, "float16 pair");
    let rounded = audit(&pair("half-rounded").0, &pair("half-rounded").1, &[]);
    matches_python(&rounded, &e, "float32 rounding");
    // Exact: the same Dice per swap and per class, the same baseline, bit for bit.
    assert_eq!(dice(&half), dice(&rounded));
    assert_eq!(half["baseline"], rounded["baseline"]);
    // Said in the report, once per model, and as a field.
    let w = warnings(&half);
    assert_eq!(w.iter().filter(|x| x.ends_with(SAYS)).count(), 2, "{w:?}");
    assert!(w[0].starts_with(&format!("{}: ", t.display())), "{w:?}");
    assert_eq!(
        (&half["target"]["computes_in"], &half["source"]["computes_in"]),
        (&"float16".into(), &"float16".into())
    );
    assert!(rounded["target"].get("computes_in").is_none() && warnings(&rounded).is_empty());
    // The weight metrics read the same numbers.
    let rmse = |r: &Value| r["rows"].as_array().unwrap().iter().map(|x| x["rmse"].clone()).collect::<Vec<_>>();
    assert_eq!(rmse(&half), rmse(&rounded));
    // And on stderr without -q.
    let data = corpus("tiny-unet-acdc.npz");
    let out = guarded_audit_cmd(&t, &s, &data).args(["--json"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(&format!("warning: {}: {SAYS}", t.display())), "{err}");
}

#[test]
fn keep_io_types_mixed_export_audits_like_the_half_one() {
    // float32 input and output, Cast to float16 after the input: onnxconverter_common.
    let (t, s) = pair("half-mixed");
    let mixed = audit(&t, &s, &[]);
    matches_python(&mixed, &expected(), "mixed pair");
    assert_eq!(dice(&mixed), dice(&audit(&pair("half-rounded").0, &pair("half-rounded").1, &[])));
    let w = warnings(&mixed);
    assert!(
        w[0].contains("computes in float16 (float32 input; inside, 1 Cast(s) or other element-type attribute(s) to float16, now float32): audited in float32"),
        "{w:?}"
    );
}

#[test]
fn bfloat16_export_audits_as_its_float32_rounding() {
    // ONNX Runtime's CPU provider refuses a bfloat16 Conv: it runs only upcast.
    let e = expected();
    let (t, s) = pair("bf16");
    let r = audit(&t, &s, &[]);
    matches_python(&r, &e["bfloat16"], "bfloat16 pair");
    assert_eq!(r["target"]["computes_in"], "bfloat16");
    assert!(warnings(&r)[0].ends_with("computes in bfloat16: audited in float32 with its bfloat16 weights upcast exactly (activations are not rounded to bfloat16 as a bfloat16 run would)"));
}

#[test]
fn every_strategy_gives_the_same_numbers_on_a_half_export() {
    let (t, s) = pair("half");
    let default = audit(&t, &s, &[]);
    for strategy in ["naive", "shared"] {
        let r = audit(&t, &s, &["--strategy", strategy]);
        assert_eq!(r["engine"]["strategy"], strategy);
        assert_eq!(dice(&r), dice(&default), "{strategy}");
        assert_eq!(r["baseline"], default["baseline"], "{strategy}");
    }
}

#[test]
fn half_target_with_float32_source_is_audited_and_the_precisions_named() {
    // The source is the float32 rounding of the half source: same numbers as that pair.
    let (t, _) = pair("half");
    let (rt, rs) = pair("half-rounded");
    let r = audit(&t, &rs, &[]);
    assert_eq!(dice(&r), dice(&audit(&rt, &rs, &[])));
    let w = warnings(&r);
    let both = format!(
        "{} computes in float16 and {} in float32: their weights also differ by float16 rounding",
        t.display(),
        rs.display()
    );
    assert!(w.iter().any(|x| x.starts_with(&both)), "{w:?}");
    assert_eq!((&r["target"]["computes_in"], r["source"].get("computes_in")), (&"float16".into(), None));
}

#[test]
fn inspect_match_and_rmse_read_half_exports() {
    let (t, s) = pair("half");
    let v = json_of(bin().args(["inspect", "--json"]).arg(&t));
    assert_eq!((v["conv_layers"].as_u64(), v["bn_layers"].as_u64()), (Some(13), Some(10)));
    assert_eq!(v["computes_in"], "float16");
    assert_eq!(v["warnings"][0], SAYS);
    assert_eq!(v["input"]["channels"], 1);
    let text = bin().arg("inspect").arg(&t).assert().success().get_output().stdout.clone();
    assert!(String::from_utf8_lossy(&text).contains(&format!("warning: {SAYS}")));
    // A float32 export says nothing of the kind.
    let f = json_of(bin().args(["inspect", "--json"]).arg(pair("half-rounded").0));
    assert!(f.get("computes_in").is_none() && f["warnings"].as_array().unwrap().is_empty(), "{f}");
    let m = bin().arg("match").arg(&t).arg(&s).assert().success().get_output().stdout.clone();
    assert!(String::from_utf8_lossy(&m).contains("paired by name: 66 parameters, 0 unmatched"));
    // The upcast is exact: against the float32 rounding (and the mixed export) every RMSE is 0.
    for other in [pair("half-rounded").0, pair("half-mixed").0] {
        let r = json_of(bin().args(["rmse", "--json", "-q"]).arg(&t).arg(&other));
        validate(&r);
        let rows = r["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 66);
        assert!(
            rows.iter().all(|x| x["rmse"] == 0.0 && x["cosine"].as_f64().unwrap() > 1.0 - 1e-12),
            "{}",
            other.display()
        );
    }
    // Half against float32 and against bfloat16: the coarser rounding is named.
    let r = json_of(bin().args(["rmse", "--json", "-q"]).arg(&t).arg(pair("bf16").0));
    let w = warnings(&r);
    assert!(
        w.iter().any(|x| x.contains(
            "in bfloat16: their weights also differ by float16 and bfloat16 rounding (up to 2^-8 of each value"
        )),
        "{w:?}"
    );
}

#[test]
fn plan_of_a_half_pair_grafts_into_the_half_file_and_checks_it_in_float32() {
    let dir = tempfile::tempdir().unwrap();
    let (t, s) = pair("half");
    let data = corpus("tiny-unet-acdc.npz");
    let report = dir.path().join("audit");
    guarded_audit_cmd(&t, &s, &data).args(["-q", "--format", "json", "--out"]).arg(&report).assert().success();
    let out = dir.path().join("plan");
    bin()
        .arg("plan")
        .arg(&t)
        .arg(&s)
        .arg("--report")
        .arg(report.join("report.json"))
        .arg("--out")
        .arg(&out)
        .arg("--data")
        .arg(&data)
        .arg("-q")
        .assert()
        .success();
    let plan: Value = serde_json::from_slice(&std::fs::read(out.join("plan.json")).unwrap()).unwrap();
    // The joint check scored the unswapped target as the audit did.
    let audit: Value = serde_json::from_slice(&std::fs::read(report.join("report.json")).unwrap()).unwrap();
    assert_eq!(plan["verification"]["baseline"], audit["baseline"]["mean"]);
    assert!(plan["verification"]["within_tolerance"].as_bool().unwrap());
    let reused = plan["reuse"].as_array().unwrap();
    assert!(!reused.is_empty() && reused.iter().all(|r| r["dtype"] == "float16"), "{reused:?}");
    // The grafted file stays a float16 file: float16 input and weights.
    let g = ModelProto::parse_from_bytes(&std::fs::read(out.join("grafted.onnx")).unwrap()).unwrap();
    let g = g.graph.unwrap();
    assert_eq!(g.input[0].type_.tensor_type().elem_type, 10);
    assert!(g.initializer.iter().all(|i| i.data_type == 10));
}
