//! `audit` on the real ONNX Runtime through the real binary: identity, a planted
//! perturbation, strategies agreeing, data formats, gates, bad input.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use predicates::prelude::*;
use serde_json::Value;

fn audit_json(t: &Path, s: &Path, data: &Path, extra: &[&str]) -> Value {
    let out = audit_cmd(t, s, data).args(["--json", "-q"]).args(extra).assert().success().get_output().stdout.clone();
    serde_json::from_slice(&out).expect("JSON report")
}

fn rows(v: &Value) -> &Vec<Value> {
    v["rows"].as_array().unwrap()
}

/// A fixture pair directory: target, data with labels = the target's own argmax is not
/// known here, so labels are seeded random classes (Dice is then a fixed, nontrivial number).
fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let t = save(&tiny_cnn(&Spec::default()), dir.path(), "t.onnx");
    let data = dir.path().join("val.npz");
    let mut rng = Rng::new(9);
    let labels: Vec<u8> = (0..6 * 64).map(|_| ((rng.next() + 1.0) * 1.5) as u8 % 3).collect();
    npz(&data, 6, 8, Some(&labels), 3);
    (dir, t, data)
}

#[test]
fn identity_audit_has_zero_delta_everywhere_and_is_rn() {
    let (_d, t, data) = setup();
    for strategy in ["naive", "shared", "incremental"] {
        let v = audit_json(&t, &t, &data, &["--strategy", strategy]);
        assert_eq!(rows(&v).len(), 14);
        for r in rows(&v) {
            assert_eq!(r["delta_dice"], 0.0, "{strategy}: {r}");
            assert_eq!(r["reusable"], true);
        }
        assert_eq!(v["summary"]["rn"], true);
        assert_eq!(v["engine"]["provider"], "CPUExecutionProvider");
        assert_eq!(v["dataset"]["classes"], 3);
    }
}

#[test]
fn planted_perturbation_is_flagged_exactly_where_planted() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec { extra_conv: true, ..Spec::default() };
    let t = tiny_cnn(&spec);
    let mut s = t.clone();
    // Large noise on conv 1 W, conv 3 W and BN 2 RM only.
    let mut rng = Rng::new(77);
    let noise: Vec<f32> = rng.vec(10_000, 8.0);
    set_init(&mut s, "net.conv1.weight", |i, v| v + noise[i]);
    set_init(&mut s, "net.conv3.weight", |i, v| v + noise[i + 100]);
    set_init(&mut s, "net.bn2.running_mean", |i, v| v + 20.0 * noise[i + 900].signum());
    let (tp, sp) = (save(&t, dir.path(), "t.onnx"), save(&s, dir.path(), "s.onnx"));
    let data = dir.path().join("val.npz");
    npz(&data, 8, 8, None, 4);
    for strategy in ["naive", "shared"] {
        let v = audit_json(&tp, &sp, &data, &["--labels", "baseline", "--strategy", strategy]);
        assert_eq!(v["baseline"]["mean"], 1.0, "label-free baseline agrees with itself");
        let bad: Vec<(String, u64, String)> = rows(&v)
            .iter()
            .filter(|r| r["reusable"] == false)
            .map(|r| {
                (
                    r["family"].as_str().unwrap().to_string(),
                    r["layer"].as_u64().unwrap(),
                    r["kind"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let want = vec![
            ("conv".to_string(), 1, "W".to_string()),
            ("bn".to_string(), 2, "RM".to_string()),
            ("conv".to_string(), 3, "W".to_string()),
        ];
        let mut bad_sorted = bad.clone();
        bad_sorted.sort();
        let mut want_sorted = want.clone();
        want_sorted.sort();
        assert_eq!(bad_sorted, want_sorted, "{strategy}");
        // Everything else is untouched, so its delta is exactly 0.
        for r in rows(&v).iter().filter(|r| r["reusable"] == true) {
            assert_eq!(r["delta_dice"], 0.0, "{r}");
        }
    }
}

#[test]
fn the_runtime_writes_nothing_into_home() {
    // Microsoft's ONNX Runtime builds keep a telemetry store under ~/.cache/Microsoft
    // unless ORT_DISABLE_TELEMETRY is set; the tool sets it.
    let (d, t, data) = setup();
    let library = reuse_audit::engine::runtime::locate(false, true).expect("ONNX Runtime");
    let home = d.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    audit_cmd(&t, &t, &data)
        .args(["-q", "--json"])
        .env("HOME", &home)
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("ORT_DYLIB_PATH", &library)
        .env_remove("ORT_DISABLE_TELEMETRY")
        .assert()
        .success();
    let left: Vec<_> = std::fs::read_dir(&home).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn unchanged_parameters_are_not_run_and_score_the_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let t = tiny_cnn(&Spec::default());
    let mut s = t.clone();
    let mut rng = Rng::new(5);
    let noise: Vec<f32> = rng.vec(1_000, 2.0);
    set_init(&mut s, "net.conv2.weight", |i, v| v + noise[i]);
    // -0.0 against 0.0 is a change of bits: run, not skipped.
    set_init(&mut s, "net.bn1.bias", |_, v| if v == 0.0 { -0.0 } else { -v });
    let (tp, sp) = (save(&t, dir.path(), "t.onnx"), save(&s, dir.path(), "s.onnx"));
    let data = dir.path().join("val.npz");
    npz(&data, 6, 8, None, 4);
    let flags = ["--labels", "baseline"];
    let naive = audit_json(&tp, &sp, &data, &[&flags[..], &["--strategy", "naive"]].concat());
    let changed = ["conv 2 W", "bn 1 RB"];
    let name = |r: &Value| format!("{} {} {}", r["family"].as_str().unwrap(), r["layer"], r["kind"].as_str().unwrap());
    for r in rows(&naive).iter().filter(|r| !changed.contains(&name(r).as_str())) {
        assert_eq!(r["delta_dice"], 0.0, "{r}");
    }
    for strategy in ["shared", "incremental"] {
        let run = audit_cmd(&tp, &sp, &data).args(flags).args(["--json", "--strategy", strategy]).assert().success();
        let out = run.get_output();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_same_reports(&naive, &v, strategy);
        assert_eq!(v["engine"]["strategy"], strategy);
        let skipped = rows(&naive).len() - changed.len();
        let note = format!("note: {skipped} swap(s) not run");
        assert!(String::from_utf8_lossy(&out.stderr).contains(&note), "{strategy}: {note}");
    }
}

/// Every strategy (and incremental with a cache so small it works one batch at a time)
/// gives the same report: Dice equal to 1e-5, everything else identical.
fn assert_same_reports(a: &Value, b: &Value, what: &str) {
    assert_eq!(rows(a).len(), rows(b).len(), "{what}");
    for (x, y) in rows(a).iter().zip(rows(b)) {
        let (dx, dy) = (x["swapped_dice"].as_f64().unwrap(), y["swapped_dice"].as_f64().unwrap());
        assert!((dx - dy).abs() <= 1e-5, "{what}: {x} vs {y}");
        for k in ["family", "layer", "kind", "rmse", "nrmse", "cosine", "reusable", "target_initializer"] {
            assert_eq!(x[k], y[k], "{what}: {k}");
        }
    }
    assert_eq!(a["summary"]["rn"], b["summary"]["rn"], "{what}");
    let (ba, bb) = (a["baseline"]["mean"].as_f64().unwrap(), b["baseline"]["mean"].as_f64().unwrap());
    assert!((ba - bb).abs() <= 1e-5, "{what}: baseline");
}

#[test]
fn strategies_give_the_same_report() {
    let (d, t, data) = setup();
    let s = save(&tiny_cnn(&Spec { seed: 8, ..Spec::default() }), d.path(), "s.onnx");
    let naive = audit_json(&t, &s, &data, &["--strategy", "naive"]);
    for extra in [
        &["--strategy", "shared"][..],
        &["--strategy", "incremental"],
        &["--strategy", "incremental", "--cache-mb", "0", "--batch", "2"],
        // One worker on the shared pool; more workers than images per chunk and than cores.
        &["--strategy", "incremental", "--threads", "1"],
        &["--strategy", "incremental", "--threads", "5", "--cache-mb", "0", "--batch", "3"],
    ] {
        let v = audit_json(&t, &s, &data, extra);
        assert_same_reports(&naive, &v, &format!("{extra:?}"));
    }
    assert_eq!(audit_json(&t, &s, &data, &[])["engine"]["strategy"], "incremental", "default");
}

#[test]
fn strategies_agree_on_the_bundled_models() {
    let m = root().join("models");
    let data = m.join("data/acdc-val.npz");
    for arch in ["unet", "pspnet"] {
        let (t, s) = (m.join(format!("{arch}-acdc-seg.onnx")), m.join(format!("{arch}-acdc-ae.onnx")));
        let kinds = ["--kinds", "W,RM"];
        let naive = audit_json(&t, &s, &data, &[&kinds[..], &["--strategy", "naive"]].concat());
        for st in ["shared", "incremental"] {
            let v = audit_json(&t, &s, &data, &[&kinds[..], &["--strategy", st]].concat());
            assert_same_reports(&naive, &v, &format!("{arch} {st}"));
            assert_eq!(v["engine"]["strategy"], st, "{arch}: {st} must apply, not fall back");
        }
    }
}

#[test]
fn same_inputs_same_bytes() {
    let (d, t, data) = setup();
    let s = save(&tiny_cnn(&Spec { seed: 8, ..Spec::default() }), d.path(), "s.onnx");
    let run = |out: &Path| {
        audit_cmd(&t, &s, &data).args(["-q", "--format", "csv,json,md", "--out"]).arg(out).assert().success();
    };
    let (o1, o2) = (d.path().join("o1"), d.path().join("o2"));
    run(&o1);
    run(&o2);
    for f in ["report.csv", "report.md"] {
        assert_eq!(std::fs::read(o1.join(f)).unwrap(), std::fs::read(o2.join(f)).unwrap(), "{f}");
    }
    // report.json: the same bytes but for its timing block.
    let json = |o: &Path| without_timing(&std::fs::read(o.join("report.json")).unwrap());
    assert_eq!(json(&o1), json(&o2), "report.json without timing");
    // --no-timing: every byte the same.
    let quiet_clock = |out: &Path| {
        audit_cmd(&t, &s, &data).args(["-q", "--no-timing", "--format", "json", "--out"]).arg(out).assert().success();
        std::fs::read(out.join("report.json")).unwrap()
    };
    let (n1, n2) = (quiet_clock(&d.path().join("n1")), quiet_clock(&d.path().join("n2")));
    assert_eq!(n1, n2, "--no-timing report.json");
    assert_eq!(n1, json(&o1), "--no-timing leaves out the timing block and nothing else");
    // However many workers share the swaps, the same bytes.
    for threads in ["1", "3"] {
        let o = d.path().join(format!("t{threads}"));
        audit_cmd(&t, &s, &data)
            .args(["-q", "--format", "csv,json", "--threads", threads, "--out"])
            .arg(&o)
            .assert()
            .success();
        assert_eq!(
            std::fs::read(o1.join("report.csv")).unwrap(),
            std::fs::read(o.join("report.csv")).unwrap(),
            "--threads {threads}: report.csv"
        );
        assert_eq!(json(&o1), json(&o), "--threads {threads}: report.json without timing");
    }
}

#[test]
fn data_formats_npy_png_and_nifti_give_the_same_dice_as_npz() {
    let (d, t, data) = setup();
    let reference = audit_json(&t, &t, &data, &["--kinds", "B"]);
    let base = reference["baseline"].clone();
    // The same images and labels in three other formats.
    let mut rng = Rng::new(3);
    let images = rng.vec(6 * 64, 2.0);
    let mut rng = Rng::new(9);
    let labels: Vec<u8> = (0..6 * 64).map(|_| ((rng.next() + 1.0) * 1.5) as u8 % 3).collect();
    // .npy pair
    let (ip, lp) = (d.path().join("img.npy"), d.path().join("lab.npy"));
    std::fs::write(&ip, reuse_audit::data::npy::npy_f32_bytes(&[6, 8, 8], &images)).unwrap();
    std::fs::write(&lp, reuse_audit::data::npy::npy_bytes("|u1", &[6, 8, 8], &labels)).unwrap();
    let v = audit_json(&t, &t, &ip, &["--kinds", "B", "--labels", lp.to_str().unwrap()]);
    assert_eq!(v["baseline"], base, "npy");
    assert_eq!(v["dataset"]["format"], "npy");
    // PNG folder: 8-bit images; z-score makes the affine 8-bit mapping irrelevant only if
    // it is exact, so store images that are already 8-bit levels and compare to an npz of them.
    let png_dir = d.path().join("png");
    std::fs::create_dir_all(png_dir.join("images")).unwrap();
    std::fs::create_dir_all(png_dir.join("masks")).unwrap();
    let levels: Vec<u8> = images.iter().map(|v| ((v + 2.0) * 60.0) as u8).collect();
    for i in 0..6 {
        let name = format!("s{i}.png");
        std::fs::write(
            png_dir.join("images").join(&name),
            reuse_audit::data::png_folder::gray_png_bytes(8, 8, &levels[i * 64..(i + 1) * 64]).unwrap(),
        )
        .unwrap();
        std::fs::write(
            png_dir.join("masks").join(&name),
            reuse_audit::data::png_folder::gray_png_bytes(8, 8, &labels[i * 64..(i + 1) * 64]).unwrap(),
        )
        .unwrap();
    }
    let lv: Vec<f32> = levels.iter().map(|&b| b as f32).collect();
    let (ip2, lp2) = (d.path().join("levels.npy"), d.path().join("levels_lab.npy"));
    std::fs::write(&ip2, reuse_audit::data::npy::npy_f32_bytes(&[6, 8, 8], &lv)).unwrap();
    std::fs::write(&lp2, reuse_audit::data::npy::npy_bytes("|u1", &[6, 8, 8], &labels)).unwrap();
    let want = audit_json(&t, &t, &ip2, &["--kinds", "B", "--labels", lp2.to_str().unwrap()]);
    let v = audit_json(&t, &t, &png_dir, &["--kinds", "B"]);
    assert_eq!(v["dataset"]["format"], "png");
    assert_eq!(v["baseline"], want["baseline"], "png");
}

#[test]
fn bundled_nifti_folder_matches_the_npz_split() {
    // models/data/acdc-nifti holds the acdc validation slices as ACDC-named volumes.
    let m = root().join("models");
    let t = m.join("unet-acdc-seg.onnx");
    let a = audit_json(&t, &t, &m.join("data/acdc-nifti"), &["--kinds", "RB"]);
    let b = audit_json(&t, &t, &m.join("data/acdc-val.npz"), &["--kinds", "RB"]);
    assert_eq!(a["dataset"]["format"], "nifti");
    assert_eq!(a["dataset"]["images"], 48);
    assert_eq!(a["baseline"], b["baseline"]);
    assert!(a["baseline"]["mean_fg"].as_f64().unwrap() > 0.85);
}

#[test]
fn gates_exit_1_and_list_failing_rows() {
    let (d, t, data) = setup();
    let s = save(&tiny_cnn(&Spec { seed: 8, ..Spec::default() }), d.path(), "s.onnx");
    let base = || {
        let mut c = bin();
        c.arg("audit").arg(&t).arg(&s).arg("--data").arg(&data).args(["-q", "--labels", "baseline"]);
        c
    };
    // Random weights from another seed change the predictions: not an RN (label-free mode).
    base().arg("--fail-if-not-reusable").assert().code(1).stderr(predicate::str::contains("--fail-if-not-reusable"));
    base().args(["--max-delta", "0.0"]).assert().code(1).stderr(predicate::str::contains("--max-delta"));
    base().args(["--max-delta", "1.0"]).assert().success();
    // The gate fails on the first conv W (a different seed's weights) and names it; the
    // report is still written.
    let out = d.path().join("gated");
    base()
        .args(["--require-reusable", "W:1,B:*", "--format", "md", "--out"])
        .arg(&out)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--require-reusable: conv 1 W"));
    assert!(std::fs::read_to_string(out.join("report.md")).unwrap().contains("Verdict"));
    base().args(["--require-reusable", "W:x"]).assert().code(2).stderr(predicate::str::contains("--require-reusable"));
    // Identity passes every gate.
    audit_cmd(&t, &t, &data)
        .args(["-q", "--fail-if-not-reusable", "--max-delta", "0", "--require-reusable", "W:*,B:*,RM:1-2"])
        .assert()
        .success();
}

#[test]
fn bad_data_is_refused_without_a_report() {
    let (d, t, _) = setup();
    let out = d.path().join("out");
    let fails = |data: &Path, extra: &[&str], needle: &str| {
        audit_cmd(&t, &t, data)
            .arg("--out")
            .arg(&out)
            .args(extra)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(needle));
        assert!(!out.exists(), "no report after: {needle}");
    };
    // Data 6x6, model takes 8x8.
    let small = d.path().join("small.npz");
    npz(&small, 2, 6, Some(&[0u8; 72]), 1);
    fails(&small, &[], "the model takes 8x8");
    // Labels out of range (3 classes; label 7).
    let bad = d.path().join("bad.npz");
    let mut l = vec![0u8; 128];
    l[70] = 7;
    npz(&bad, 2, 8, Some(&l), 1);
    fails(&bad, &[], "label 7");
    // Empty data set.
    let empty = d.path().join("empty.npz");
    npz(&empty, 0, 8, Some(&[]), 1);
    fails(&empty, &[], "empty");
    // A labels file with data that carries its own labels.
    fails(&small, &["--labels", "x.npy"], "--labels");
    // Missing data.
    fails(&d.path().join("nope.npz"), &[], "nope.npz");
    // No labels and no --labels baseline.
    let unl = d.path().join("unlabeled.npz");
    npz(&unl, 2, 8, None, 1);
    fails(&unl, &[], "--labels baseline");
    // CUDA requested where there is none.
    let good = d.path().join("val.npz");
    fails(&good, &["--device", "cuda"], "cuda");
}

#[test]
fn model_without_a_single_matched_layer_is_refused() {
    let (d, t, data) = setup();
    let other = save(&tiny_cnn(&Spec { prefix: "zzz".into(), ..Spec::default() }), d.path(), "o.onnx");
    audit_cmd(&t, &other, &data)
        .args(["--match", "name"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a single parameter"));
}

#[test]
fn fixed_batch_models_run_one_image_at_a_time_or_made_dynamic() {
    let (d, t, data) = setup();
    let fixed = save(&tiny_cnn(&Spec { fixed_batch: true, ..Spec::default() }), d.path(), "fixed.onnx");
    let s = save(&tiny_cnn(&Spec { seed: 8, ..Spec::default() }), d.path(), "s.onnx");
    let reference = audit_json(&t, &s, &data, &["--strategy", "naive"]);
    for extra in [
        &["--strategy", "naive"][..],
        &["--strategy", "incremental"],
        &["--dynamic-batch"],
        &["--dynamic-batch", "--strategy", "shared"],
    ] {
        let v = audit_json(&fixed, &s, &data, extra);
        assert_same_reports(&reference, &v, &format!("fixed batch {extra:?}"));
    }
    // A model whose batch is already dynamic refuses the flag.
    audit_cmd(&t, &s, &data)
        .arg("--dynamic-batch")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--dynamic-batch"));
}

#[test]
fn tied_weights_fall_back_from_incremental_and_agree_with_naive() {
    let (d, _, data) = setup();
    // conv 2 and conv 3 share one weight tensor (weight tying).
    let tie = |seed: u64| {
        let mut m = tiny_cnn(&Spec { extra_conv: true, seed, ..Spec::default() });
        let g = m.graph.as_mut().unwrap();
        let conv3 = g.node.iter_mut().find(|n| n.name == "conv3").unwrap();
        conv3.input[1] = "net.conv2.weight".into();
        g.initializer.retain(|t| t.name != "net.conv3.weight");
        m
    };
    let (t, s) = (save(&tie(1), d.path(), "tied_t.onnx"), save(&tie(5), d.path(), "tied_s.onnx"));
    let naive = audit_json(&t, &s, &data, &["--strategy", "naive"]);
    let v = audit_json(&t, &s, &data, &[]);
    assert_eq!(v["engine"]["strategy"], "shared", "incremental must not run on tied weights");
    assert_same_reports(&naive, &v, "tied");
}
