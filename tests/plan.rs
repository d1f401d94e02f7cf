//! Reuse plans (`reuse-audit plan`, `audit --plan`): plan.json against the report and its
//! schema; reused.safetensors and grafted.onnx checked by tests/python/plan_check.py (onnx +
//! onnxruntime + numpy, safetensors parsed by hand: no reuse-audit code), including the
//! grafted model's score and every step of the joint check; the joint check on a pair of
//! individually harmless swaps that together exceed the tolerance (numbers from onnxruntime +
//! numpy); QDQ triples, linear/norm layers, a Transpose-lifted weight, Constant-held and
//! external-data tensors; bad input (exit 2, nothing written).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use predicates::prelude::*;
use serde_json::Value;

fn python_env() -> PathBuf {
    let out = Command::new("bash").arg(root().join("scripts/pyenv.sh")).output().expect("run scripts/pyenv.sh");
    assert!(out.status.success(), "scripts/pyenv.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// The independent check of a plan folder (with `data`: the grafted model's score; with
/// `steps`: every step of the joint check).
fn python_check(target: &Path, source: &Path, plan: &Path, data: Option<&Path>, steps: bool) -> String {
    let mut c = Command::new(python_env());
    c.arg(root().join("tests/python/plan_check.py")).arg(target).arg(source).arg(plan);
    if let Some(d) = data {
        c.arg("--data").arg(d);
    }
    if steps {
        c.arg("--steps");
    }
    let out = c.output().expect("run plan_check.py");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "plan check failed:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(" 0 mismatches"), "{text}");
    text
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).expect("JSON")
}

/// plan.json, validated against schemas/plan.schema.json.
fn plan_of(dir: &Path) -> Value {
    let plan = read_json(&dir.join("plan.json"));
    let schema = read_json(&root().join("schemas/plan.schema.json"));
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    let errors: Vec<String> = validator.iter_errors(&plan).map(|e| format!("{e} at {}", e.instance_path)).collect();
    assert!(errors.is_empty(), "plan.schema.json: {errors:#?}");
    plan
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn key(v: &Value) -> (String, u64, String) {
    (v["family"].as_str().unwrap().into(), v["layer"].as_u64().unwrap(), v["kind"].as_str().unwrap().into())
}

/// Every report row is reused or dropped, once; reused rows are reusable in the report;
/// rows dropped before the joint check as not reusable are not; the joint check's drops
/// were reusable; the freeze list is the reused keys.
fn check_against_report(plan: &Value, report: &Value) {
    let reuse = plan["reuse"].as_array().unwrap();
    let dropped = plan["dropped"].as_array().unwrap();
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(reuse.len() + dropped.len(), rows.len(), "every row once");
    for row in rows {
        let k = key(row);
        let r = reuse.iter().find(|x| key(x) == k);
        let d = dropped.iter().find(|x| key(x) == k);
        assert!(r.is_some() != d.is_some(), "{k:?} reused xor dropped");
        if let Some(r) = r {
            assert_eq!(row["reusable"], true, "{k:?} reused but not reusable");
            assert_eq!(r["target_initializer"], row["target_initializer"]);
            assert_eq!(r["source_initializer"], row["source_initializer"]);
            assert_eq!(f(&r["loss"]), f(&row["delta_dice"]));
        }
        if let Some(d) = d {
            let reason = d["reason"].as_str().unwrap();
            if reason.starts_with("not reusable") {
                assert_eq!(row["reusable"], false, "{k:?}");
                assert!(d["step"].is_null());
            }
            if reason.starts_with("joint check") {
                assert_eq!(row["reusable"], true, "{k:?}");
                assert!(d["step"].as_u64().is_some());
            }
        }
    }
    let mut keys: Vec<&str> = reuse.iter().map(|r| r["safetensors_key"].as_str().unwrap()).collect();
    keys.dedup();
    let freeze: Vec<&str> = plan["freeze"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(freeze, keys);
}

fn models() -> PathBuf {
    root().join("models")
}

#[test]
fn bundled_unet_plan_from_audit_matches_python_at_every_step() {
    let m = models();
    let (t, s, data) = (m.join("unet-acdc-seg.onnx"), m.join("unet-acdc-ae.onnx"), m.join("data/acdc-val.npz"));
    let dir = tempfile::tempdir().unwrap();
    let (out, plan_dir) = (dir.path().join("report"), dir.path().join("plan"));
    guarded_audit_cmd(&t, &s, &data)
        .args(["-q", "--format", "json", "--out"])
        .arg(&out)
        .arg("--plan")
        .arg(&plan_dir)
        .assert()
        .success()
        .stdout(predicate::str::contains("joint check: grafted.onnx scores"))
        .stdout(predicate::str::contains("wrote").and(predicate::str::contains("reused.safetensors")));
    let plan = plan_of(&plan_dir);
    let report = read_json(&out.join("report.json"));
    check_against_report(&plan, &report);
    assert!(plan["report"]["path"].is_null(), "audit --plan plans from the report in memory");
    let v = &plan["verification"];
    assert_eq!(f(&v["baseline"]), f(&report["baseline"]["mean"]));
    // Together, the individually reusable swaps break the UNet (onnxruntime + numpy agree,
    // step by step, below): the first graft loses far more than the tolerance.
    let steps = v["steps"].as_array().unwrap();
    assert!(f(&steps[0]["loss"]) > 0.5, "{}", steps[0]);
    assert!(steps.len() > 2 && v["within_tolerance"] == true && f(&v["loss"]) <= 0.02);
    let text = python_check(&t, &s, &plan_dir, Some(&data), true);
    assert!(text.contains(&format!("step {}:", steps.len())), "{text}");
}

#[test]
fn held_out_pspnet_pair_plan_from_a_report_file() {
    let m = models();
    let (t, s, data) = (m.join("pspnet-acdc-seg.onnx"), m.join("pspnet-rvsc-seg.onnx"), m.join("data/acdc-val.npz"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    guarded_audit_cmd(&t, &s, &data).args(["-q", "--format", "json", "--out"]).arg(&out).assert().success();
    let plan_dir = dir.path().join("plan");
    bin()
        .arg("plan")
        .arg(&t)
        .arg(&s)
        .arg("--report")
        .arg(out.join("report.json"))
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&plan_dir)
        .arg("-q")
        .assert()
        .success();
    let plan = plan_of(&plan_dir);
    check_against_report(&plan, &read_json(&out.join("report.json")));
    assert_eq!(plan["report"]["path"], out.join("report.json").display().to_string());
    assert!(!plan["reuse"].as_array().unwrap().is_empty());
    python_check(&t, &s, &plan_dir, Some(&data), false);
}

/// Planted: UNet conv 1 B and conv 15 B, the only two pairs (a mapping file), at tolerance
/// 0.015. onnxruntime + numpy (tests/python, `swapped` by initializer name, z-score,
/// argmax, Dice over the set): baseline 0.9982768503318773; conv 1 B alone loses
/// 0.01142386259820194, conv 15 B alone 0.0013435038732442228 (both <= 0.015, reusable),
/// both together 0.016866516727568115 (> 0.015). The joint check must drop conv 1 B (the
/// larger own loss) and keep conv 15 B.
#[test]
fn two_individually_reusable_swaps_that_together_exceed_the_tolerance() {
    let m = models();
    let (t, s, data) = (m.join("unet-acdc-seg.onnx"), m.join("unet-acdc-ae.onnx"), m.join("data/acdc-val.npz"));
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("map.csv");
    std::fs::write(&map, "target_initializer,source_initializer\nenc1.0.bias,enc1.0.bias\nup1.bias,up1.bias\n")
        .unwrap();
    let out = dir.path().join("report");
    guarded_audit_cmd(&t, &s, &data)
        .args(["-q", "--format", "json", "--tolerance", "0.015", "--match"])
        .arg(&map)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let report = read_json(&out.join("report.json"));
    let deltas: Vec<f64> = report["rows"].as_array().unwrap().iter().map(|r| f(&r["delta_dice"])).collect();
    assert!((deltas[0] - 0.01142386259820194).abs() < 1e-6 && (deltas[1] - 0.0013435038732442228).abs() < 1e-6);
    let plan_dir = dir.path().join("plan");
    bin()
        .arg("plan")
        .arg(&t)
        .arg(&s)
        .arg("--report")
        .arg(out.join("report.json"))
        .arg("--match")
        .arg(&map)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&plan_dir)
        .assert()
        .success()
        .stdout(predicate::str::contains("after dropping conv 1 B (2 steps)"));
    let plan = plan_of(&plan_dir);
    let steps = plan["verification"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0]["reused"], 2);
    assert!((f(&steps[0]["loss"]) - 0.016866516727568115).abs() < 1e-6, "{}", steps[0]);
    assert!(steps[0]["dropped"].as_str().unwrap().starts_with("conv 1 B"));
    assert_eq!(steps[1]["reused"], 1);
    assert!((f(&steps[1]["loss"]) - 0.0013435038732442228).abs() < 1e-6);
    let reuse = plan["reuse"].as_array().unwrap();
    assert_eq!((reuse.len(), reuse[0]["target_initializer"].as_str()), (1, Some("up1.bias")));
    let d = &plan["dropped"][0];
    assert_eq!((d["target_initializer"].as_str(), d["step"].as_u64()), (Some("enc1.0.bias"), Some(1)));
    python_check(&t, &s, &plan_dir, Some(&data), true);
}

#[test]
fn qdq_triples_are_grafted_whole_and_stored_dequantized() {
    let c = root().join("tests/corpus");
    let (t, s, data) = (
        c.join("quant-qdq-pc-unet-target.onnx"),
        c.join("quant-qdq-pc-unet-source.onnx"),
        c.join("quant-unet-acdc.npz"),
    );
    let dir = tempfile::tempdir().unwrap();
    let plan_dir = dir.path().join("plan");
    guarded_audit_cmd(&t, &s, &data)
        .args(["-q", "--format", "json", "--out"])
        .arg(dir.path().join("report"))
        .arg("--plan")
        .arg(&plan_dir)
        .assert()
        .success();
    let plan = plan_of(&plan_dir);
    let quantized: Vec<&Value> =
        plan["reuse"].as_array().unwrap().iter().filter(|r| !r["quantized"].is_null()).collect();
    for kind in ["W", "B"] {
        assert!(quantized.iter().any(|r| r["kind"] == kind), "a QDQ conv {kind} reused");
    }
    for r in &quantized {
        assert_eq!(r["stored_as"].as_array().unwrap().len(), 3, "{r}");
        assert_eq!(r["stored_as"][0], r["quantized"]["q"]);
        assert_eq!(r["dtype"], "float32");
    }
    python_check(&t, &s, &plan_dir, Some(&data), false);
}

#[test]
fn linear_and_norm_layers_are_planned_and_a_transposed_weight_is_grafted_where_stored() {
    let c = root().join("tests/corpus");
    let (t, s, data) = (c.join("families-target.onnx"), c.join("families-source.onnx"), c.join("tiny-unet-acdc.npz"));
    let dir = tempfile::tempdir().unwrap();
    let plan_dir = dir.path().join("plan");
    guarded_audit_cmd(&t, &s, &data)
        .args(["-q", "--format", "json", "--tolerance", "0.05", "--out"])
        .arg(dir.path().join("report"))
        .arg("--plan")
        .arg(&plan_dir)
        .assert()
        .success();
    let plan = plan_of(&plan_dir);
    check_against_report(&plan, &read_json(&dir.path().join("report/report.json")));
    let reuse = plan["reuse"].as_array().unwrap();
    let pw = reuse.iter().find(|r| r["family"] == "linear" && r["layer"] == 3 && r["kind"] == "W").expect("linear 3 W");
    // The exporter's Transpose(pw.weight) -> MatMul: the audit read the transposed tensor,
    // the plan grafts and exports the stored one (PyTorch's layout and name).
    assert_eq!(pw["stored_as"], serde_json::json!(["pw.weight"]));
    assert_eq!(pw["chain"], serde_json::json!(["Transpose(perm=[1, 0])"]));
    assert_eq!(pw["safetensors_key"], "pw.weight");
    for family in ["norm", "linear", "bn"] {
        assert!(reuse.iter().any(|r| r["family"] == family), "{family} reused");
    }
    python_check(&t, &s, &plan_dir, Some(&data), true);
}

/// A tiny pair: the target with external data, its head bias in a Constant node and conv 2's
/// weight behind an Identity; the source another seed.
fn tiny_pair(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let spec = Spec { constant_bias: true, identity_weight: true, ..Spec::default() };
    let mut t = tiny_cnn(&spec);
    let tdir = dir.join("target");
    std::fs::create_dir_all(&tdir).unwrap();
    externalize(&mut t, &tdir, "t.onnx.data", "t.onnx.data");
    let target = save(&t, &tdir, "t.onnx");
    let source = save(&tiny_cnn(&Spec { seed: 7, ..spec }), dir, "s.onnx");
    let data = dir.join("d.npz");
    let labels: Vec<u8> = (0..6 * 64).map(|i| (i % 3) as u8).collect();
    npz(&data, 6, 8, Some(&labels), 3);
    (target, source, data)
}

fn tiny_report(t: &Path, s: &Path, d: &Path, out: &Path, extra: &[&str]) -> PathBuf {
    audit_cmd(t, s, d)
        .args(["-q", "--format", "json", "--normalize", "zscore", "--out"])
        .arg(out)
        .args(extra)
        .assert()
        .success();
    out.join("report.json")
}

fn plan_cmd(t: &Path, s: &Path, report: &Path, out: &Path) -> assert_cmd::Command {
    let mut c = bin();
    c.arg("plan").arg(t).arg(s).arg("--report").arg(report).arg("--out").arg(out).arg("-q");
    c
}

#[test]
fn external_data_constant_and_identity_tensors_are_grafted_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let (t, s, d) = tiny_pair(dir.path());
    let plan_dir = dir.path().join("plan");
    let out = audit_cmd(&t, &s, &d)
        .args(["-q", "--json", "--normalize", "zscore", "--tolerance", "1", "--plan"])
        .arg(&plan_dir)
        .assert()
        .success()
        .stderr(predicate::str::contains("wrote").and(predicate::str::contains("grafted.onnx")));
    // With --json, stdout is the report's JSON alone; the plan's lines went to stderr.
    let report: Value = serde_json::from_slice(&out.get_output().stdout).expect("only JSON on stdout");
    let plan = plan_of(&plan_dir);
    check_against_report(&plan, &report);
    assert_eq!(plan["files"]["grafted_data"], "grafted.onnx.data");
    assert!(plan_dir.join("grafted.onnx.data").is_file());
    let reuse = plan["reuse"].as_array().unwrap();
    assert_eq!(reuse.len(), plan["dropped"].as_array().unwrap().len() + reuse.len(), "tolerance 1: all reused");
    let head = reuse.iter().find(|r| r["target_initializer"] == "net.head.bias").expect("head bias");
    assert_eq!(head["stored_as"], serde_json::json!(["net.head.bias"]));
    // Every external location is the data file beside grafted.onnx.
    use onnx_protobuf::Message;
    let g =
        onnx_protobuf::ModelProto::parse_from_bytes(&std::fs::read(plan_dir.join("grafted.onnx")).unwrap()).unwrap();
    let locations: Vec<String> = g
        .graph
        .initializer
        .iter()
        .flat_map(|t| t.external_data.iter().filter(|kv| kv.key == "location").map(|kv| kv.value.clone()))
        .collect();
    assert!(!locations.is_empty() && locations.iter().all(|l| l == "grafted.onnx.data"), "{locations:?}");
    python_check(&t, &s, &plan_dir, Some(&d), false);
}

#[test]
fn same_inputs_give_the_same_plan_bytes_and_kinds_narrow_it() {
    let dir = tempfile::tempdir().unwrap();
    let (t, s, d) = tiny_pair(dir.path());
    let report = tiny_report(&t, &s, &d, &dir.path().join("report"), &["--tolerance", "1"]);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for out in [&a, &b] {
        plan_cmd(&t, &s, &report, out).assert().success().stdout(predicate::str::contains("joint check: not run"));
    }
    for f in ["plan.json", "reused.safetensors", "grafted.onnx", "grafted.onnx.data"] {
        assert_eq!(std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap(), "{f}");
    }
    assert!(plan_of(&a)["verification"].is_null());
    python_check(&t, &s, &a, None, false);
    let c = dir.path().join("c");
    plan_cmd(&t, &s, &report, &c).args(["--kinds", "RW,RB", "--families", "bn"]).assert().success();
    let plan = plan_of(&c);
    for r in plan["reuse"].as_array().unwrap() {
        assert!(r["family"] == "bn" && (r["kind"] == "RW" || r["kind"] == "RB"), "{r}");
        assert_eq!(r["buffer"], false);
    }
    let reasons: Vec<&str> =
        plan["dropped"].as_array().unwrap().iter().map(|d| d["reason"].as_str().unwrap()).collect();
    assert!(reasons.iter().any(|r| r.contains("not in --kinds")) && reasons.iter().any(|r| r.contains("--families")));
    python_check(&t, &s, &c, None, false);
}

/// A report with confidence intervals gives each row a decision: undecided rows are left
/// out unless asked for.
#[test]
fn decision_column_rules_and_undecided_rows_need_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let (t, s, d) = tiny_pair(dir.path());
    let report = tiny_report(&t, &s, &d, &dir.path().join("report"), &["--tolerance", "1"]);
    let mut r = read_json(&report);
    let rows = r["rows"].as_array_mut().unwrap();
    let n = rows.len();
    for (i, row) in rows.iter_mut().enumerate() {
        row["decision"] = Value::from(["reusable", "undecided", "not_reusable"][i % 3]);
    }
    let edited = dir.path().join("ci.json");
    std::fs::write(&edited, serde_json::to_vec(&r).unwrap()).unwrap();
    plan_cmd(&t, &s, &edited, &dir.path().join("p")).assert().success();
    let plan = plan_of(&dir.path().join("p"));
    assert_eq!(plan["reuse"].as_array().unwrap().len(), n.div_ceil(3));
    assert!(plan["reuse"].as_array().unwrap().iter().all(|r| r["decision"] == "reusable"));
    plan_cmd(&t, &s, &edited, &dir.path().join("q")).arg("--include-undecided").assert().success();
    let plan = plan_of(&dir.path().join("q"));
    assert_eq!(plan["reuse"].as_array().unwrap().len(), n.div_ceil(3) + (n + 1) / 3);
    // Without intervals (a report from before them: no decisions), --include-undecided has
    // nothing to include: refused.
    let mut r = read_json(&report);
    for row in r["rows"].as_array_mut().unwrap() {
        row["decision"] = Value::Null;
    }
    let old = dir.path().join("old.json");
    std::fs::write(&old, serde_json::to_vec(&r).unwrap()).unwrap();
    plan_cmd(&t, &s, &old, &dir.path().join("r"))
        .arg("--include-undecided")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--include-undecided"));
    assert!(!dir.path().join("r").exists());
}

#[test]
fn bad_input_exits_2_naming_the_file_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (t, s, d) = tiny_pair(dir.path());
    let report = tiny_report(&t, &s, &d, &dir.path().join("report"), &[]);
    let out = dir.path().join("plan");
    // A report of another pair: the target's sha256 differs.
    let other = save(&tiny_cnn(&Spec { seed: 9, ..Spec::default() }), dir.path(), "other.onnx");
    plan_cmd(&other, &s, &report, &out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("other.onnx").and(predicate::str::contains("sha256")));
    // --out is a file.
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    plan_cmd(&t, &s, &report, &file).assert().code(2).stderr(predicate::str::contains("--out"));
    // Missing fields, another command's report, not JSON.
    let mut r = read_json(&report);
    r.as_object_mut().unwrap().remove("rows");
    let no_rows = dir.path().join("no_rows.json");
    std::fs::write(&no_rows, serde_json::to_vec(&r).unwrap()).unwrap();
    plan_cmd(&t, &s, &no_rows, &out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no_rows.json").and(predicate::str::contains("rows")));
    let rmse = dir.path().join("rmse");
    bin().arg("rmse").arg(&t).arg(&s).args(["-q", "--format", "json", "--out"]).arg(&rmse).assert().success();
    plan_cmd(&t, &s, &rmse.join("report.json"), &out).assert().code(2).stderr(predicate::str::contains("`rmse`"));
    // A row naming a pair these models do not have.
    let mut r = read_json(&report);
    r["rows"][0]["source_initializer"] = Value::from("nowhere");
    let moved = dir.path().join("moved.json");
    std::fs::write(&moved, serde_json::to_vec(&r).unwrap()).unwrap();
    plan_cmd(&t, &s, &moved, &out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("moved.json").and(predicate::str::contains("--match")));
    plan_cmd(&t, &s, &report, &out).args(["--kinds", "Q"]).assert().code(2).stderr(predicate::str::contains("--kinds"));
    assert!(!out.exists(), "nothing written");
    // audit --plan into its own --out folder: refused before any work.
    let same = dir.path().join("same");
    audit_cmd(&t, &s, &d)
        .arg("--out")
        .arg(&same)
        .arg("--plan")
        .arg(&same)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--plan"));
    assert!(!same.exists());
}

#[test]
fn report_with_a_non_ascii_sha256_panicked_and_a_duplicated_row_was_counted_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (t, s, d) = tiny_pair(dir.path());
    let report = tiny_report(&t, &s, &d, &dir.path().join("audit"), &["--tolerance", "1"]);
    let edited = |name: &str, f: &dyn Fn(&mut Value)| {
        let mut r = read_json(&report);
        f(&mut r);
        let p = dir.path().join(name);
        std::fs::write(&p, serde_json::to_vec(&r).unwrap()).unwrap();
        p
    };
    let out = dir.path().join("plan");
    // The message cut the report's sha256 at byte 12, inside a character: a panic (exit 101).
    let other = edited("sha.json", &|r| r["target"]["sha256"] = Value::from(format!("a{}", "é".repeat(40))));
    plan_cmd(&t, &s, &other, &out).assert().code(2).stderr(
        predicate::str::contains("the report is of another model pair").and(predicate::str::contains("aéééééééééé")),
    );
    assert!(!out.exists());
    // A row given twice: "N tensor(s) reused" counted its tensor twice.
    let twice = edited("twice.json", &|r| {
        let row = r["rows"][0].clone();
        r["rows"].as_array_mut().unwrap().push(row);
    });
    plan_cmd(&t, &s, &twice, &out).assert().code(2).stderr(
        predicate::str::contains("twice.json").and(predicate::str::contains("row conv 1 W (conv1) is given twice")),
    );
    assert!(!out.exists());
}
