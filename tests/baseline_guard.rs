//! No verdict on a model that does not segment the data (regression: a model fed the wrong
//! input scaling scored baseline Dice 0.10 and was still called a reusable network).

mod common;

use common::*;
use predicates::prelude::*;
use serde_json::Value;

fn bundled() -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let m = root().join("models");
    (m.join("unet-acdc-seg.onnx"), m.join("unet-acdc-ae.onnx"), m.join("data").join("acdc-val.npz"))
}

#[test]
fn wrong_scaling_is_exit_2_naming_the_baseline_and_writes_nothing() {
    let (t, s, data) = bundled();
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    // The bundled UNet was trained on z-scored images; raw intensities do not segment.
    guarded_audit_cmd(&t, &s, &data).args(["--normalize", "none", "--out"]).arg(&out).assert().code(2).stderr(
        predicate::str::contains("does not segment this data")
            .and(predicate::str::contains("below --min-baseline 0.5"))
            .and(predicate::str::contains("none 0.2")),
    );
    assert!(!out.exists(), "no report without a baseline");
}

#[test]
fn auto_scaling_picks_the_one_the_model_was_trained_with_and_says_what_each_scored() {
    let (t, s, data) = bundled();
    let out = guarded_audit_cmd(&t, &s, &data)
        .args(["--json", "-q", "--kinds", "B"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let r: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(r["dataset"]["normalize"], "zscore");
    let scores = r["dataset"]["normalize_scores"].as_array().unwrap();
    let names: Vec<&str> = scores.iter().map(|s| s["normalize"].as_str().unwrap()).collect();
    assert_eq!(names, ["zscore", "minmax", "none"], "float images: no div255");
    let z = scores[0]["probe_dice"].as_f64().unwrap();
    assert!(z > 0.95 && scores[1..].iter().all(|s| s["probe_dice"].as_f64().unwrap() < z));
    // The same as forcing it.
    let forced = guarded_audit_cmd(&t, &s, &data)
        .args(["--json", "-q", "--kinds", "B", "--normalize", "zscore"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let f: Value = serde_json::from_slice(&forced).unwrap();
    assert_eq!(f["baseline"], r["baseline"]);
    assert_eq!(f["rows"], r["rows"]);
    // The printed summary says it too (with --out, the baseline is still printed).
    let d = tempfile::tempdir().unwrap();
    guarded_audit_cmd(&t, &s, &data)
        .args(["-q", "--kinds", "B", "--format", "json", "--out"])
        .arg(d.path())
        .assert()
        .success()
        .stdout(
            predicate::str::contains("baseline Dice: mean 0.99").and(predicate::str::contains("input scaling: zscore")),
        );
}

#[test]
fn label_free_baseline_of_one_class_is_a_loud_warning() {
    let (t, s, data) = bundled();
    let out = guarded_audit_cmd(&t, &s, &data)
        .args(["--labels", "baseline", "--normalize", "none", "--json", "--kinds", "B"])
        .assert()
        .success()
        .stderr(predicate::str::contains("label-free baseline: the target predicts class"))
        .get_output()
        .stdout
        .clone();
    let r: Value = serde_json::from_slice(&out).unwrap();
    let w = r["warnings"].as_array().unwrap();
    assert!(w.iter().any(|w| w.as_str().unwrap().contains("predicts class")), "{w:?}");
    // Properly scaled, it predicts all four classes: no warning.
    let out = guarded_audit_cmd(&t, &s, &data)
        .args(["--labels", "baseline", "--json", "-q", "--kinds", "B"])
        .assert()
        .success();
    let r: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert!(!r["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains("predicts class")));
}

#[test]
fn nan_pixels_and_fractional_labels_are_exit_2_naming_the_image() {
    let d = tempfile::tempdir().unwrap();
    let t = save(&tiny_cnn(&Spec::default()), d.path(), "t.onnx");
    let images: Vec<f32> = (0..2 * 64).map(|i| if i == 64 + 9 { f32::NAN } else { i as f32 / 10.0 }).collect();
    let ip = d.path().join("img.npy");
    std::fs::write(&ip, reuse_audit::data::npy::npy_f32_bytes(&[2, 8, 8], &images)).unwrap();
    let lp = d.path().join("lab.npy");
    std::fs::write(&lp, reuse_audit::data::npy::npy_f32_bytes(&[2, 8, 8], &[0.0; 128])).unwrap();
    audit_cmd(&t, &t, &ip)
        .arg("--labels")
        .arg(&lp)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("img.npy#1").and(predicate::str::contains("non-finite pixel")));
    let fine: Vec<f32> = (0..128).map(|i| i as f32 / 10.0).collect();
    std::fs::write(&ip, reuse_audit::data::npy::npy_f32_bytes(&[2, 8, 8], &fine)).unwrap();
    let mut labels = vec![0.0f32; 128];
    labels[5] = 1.5;
    std::fs::write(&lp, reuse_audit::data::npy::npy_f32_bytes(&[2, 8, 8], &labels)).unwrap();
    audit_cmd(&t, &t, &ip)
        .arg("--labels")
        .arg(&lp)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("label 1.5").and(predicate::str::contains("not an integer")));
}

/// The bundled validation set's first `n` images (64 x 64) and labels, with `relabel`
/// applied to the labels, as a new `.npz` in `dir`.
fn bundled_subset(dir: &std::path::Path, n: usize, relabel: impl Fn(u8) -> u8) -> std::path::PathBuf {
    let (_, _, data) = bundled();
    let mut npz = npyz::npz::NpzArchive::open(&data).unwrap();
    let images: Vec<f32> = npz.by_name("images").unwrap().unwrap().into_vec().unwrap();
    let labels: Vec<u8> = npz.by_name("labels").unwrap().unwrap().into_vec().unwrap();
    let px = 64 * 64;
    let labels: Vec<u8> = labels[..n * px].iter().map(|&v| relabel(v)).collect();
    let path = dir.join(format!("subset-{n}.npz"));
    npz_arrays(&path, &[n, 1, 64, 64], &images[..n * px], Some((&[n, 64, 64], &labels)));
    path
}

/// Regression (held-out review): one validation image gave "decisions at 95%: 73 reusable,
/// 19 not reusable, 0 undecided" without a word that a bootstrap over one image has zero
/// width; a class the labels never contain (Dice 0 as soon as the model predicts it, a
/// quarter of the mean on its own) was not mentioned either.
#[test]
fn one_image_and_a_class_absent_from_the_labels_are_said() {
    let (t, s, _) = bundled();
    let d = tempfile::tempdir().unwrap();
    let report = |data: &std::path::Path| -> Value {
        let out = guarded_audit_cmd(&t, &s, data).args(["--json", "-q", "--kinds", "B"]).assert().success();
        serde_json::from_slice(&out.get_output().stdout).unwrap()
    };
    let warnings = |r: &Value| -> Vec<String> {
        r["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap().to_string()).collect()
    };
    let one = report(&bundled_subset(d.path(), 1, |v| v));
    let w = warnings(&one);
    assert!(w.iter().any(|w| w.starts_with("only 1 validation image(s)") && w.contains("zero width")), "{w:?}");
    // Twelve images with class 3 relabelled background: that class is named, the image count is not.
    let r = report(&bundled_subset(d.path(), 12, |v| if v == 3 { 0 } else { v }));
    let w = warnings(&r);
    assert!(w.iter().any(|w| w.starts_with("class 3 never occurs in the labels") && w.contains("1/4")), "{w:?}");
    assert!(
        !w.iter().any(|w| w.starts_with("only ") || w.starts_with("class 1 ") || w.starts_with("class 2 ")),
        "{w:?}"
    );
    // What the warning says of its Dice: 0, since the UNet predicts class 3 on these images.
    assert_eq!(r["baseline"]["per_class"][3].as_f64(), Some(0.0));
    // The full set has every class and 48 images: neither warning.
    let (_, _, data) = bundled();
    let w = warnings(&report(&data));
    assert!(!w.iter().any(|w| w.starts_with("only ") || w.contains("never occurs")), "{w:?}");
}
