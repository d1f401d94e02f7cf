//! `--ignore-label`: label maps with a "void" value (255 in VOC-style masks) were refused as
//! out of range, with no way to audit them. With the flag those pixels count for no class;
//! the numbers are checked against tests/python/independent_check.py (onnxruntime + numpy,
//! the pixels masked out there) on the bundled UNet with a planted void band.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use predicates::prelude::*;

fn python_env() -> PathBuf {
    let out = Command::new("bash").arg(root().join("scripts/pyenv.sh")).output().expect("run scripts/pyenv.sh");
    assert!(out.status.success(), "scripts/pyenv.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// The bundled validation set with label `value` written over rows `rows` of every map.
fn planted(py: &Path, dir: &Path, rows: &str, value: u8) -> PathBuf {
    let out = dir.join(format!("void-{value}.npz"));
    let code = format!(
        "import numpy as np; d = np.load('{}'); l = d['labels'].copy(); l[:, {rows}] = {value}; np.savez('{}', images=d['images'], labels=l)",
        root().join("models/data/acdc-val.npz").display(),
        out.display()
    );
    let o = Command::new(py).args(["-c", &code]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

fn unet() -> (PathBuf, PathBuf) {
    let m = root().join("models");
    (m.join("unet-acdc-seg.onnx"), m.join("unet-acdc-ae.onnx"))
}

#[test]
fn void_labels_were_refused_with_no_way_to_audit_them() {
    let py = python_env();
    let dir = tempfile::tempdir().unwrap();
    let (t, s) = unet();
    // Rows 20-39 of every 64x64 map: the heart is there, so the void hides real classes.
    let data = planted(&py, dir.path(), "20:40", 255);
    audit_cmd(&t, &s, &data)
        .args(["-q", "--kinds", "W,B"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("label 255").and(predicate::str::contains("--ignore-label 255")));
    let out = dir.path().join("out");
    audit_cmd(&t, &s, &data)
        .args(["-q", "--kinds", "W,B", "--ignore-label", "255", "--format", "json", "--out"])
        .arg(&out)
        .assert()
        .success();
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["dataset"]["ignore_label"], 255);
    let check = Command::new(&py)
        .arg(root().join("tests/python/independent_check.py"))
        .arg(&t)
        .arg(&s)
        .arg(&data)
        .arg(out.join("report.json"))
        .args(["--every", "5", "--ignore", "255"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success() && text.contains("0 mismatches"),
        "{text}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    // Not the whole-map numbers: the void band held real class pixels.
    let whole = dir.path().join("whole");
    let m = root().join("models/data/acdc-val.npz");
    audit_cmd(&t, &s, &m).args(["-q", "--kinds", "W,B", "--format", "json", "--out"]).arg(&whole).assert().success();
    let whole: serde_json::Value = serde_json::from_slice(&std::fs::read(whole.join("report.json")).unwrap()).unwrap();
    assert_ne!(whole["baseline"]["per_class"], report["baseline"]["per_class"]);
}

#[test]
fn an_ignore_label_that_is_a_class_or_covers_every_pixel_is_refused() {
    let py = python_env();
    let dir = tempfile::tempdir().unwrap();
    let (t, s) = unet();
    let m = root().join("models/data/acdc-val.npz");
    audit_cmd(&t, &s, &m).args(["-q", "--ignore-label", "2"]).assert().code(2).stderr(
        predicate::str::contains("--ignore-label").and(predicate::str::contains("one of the model's 4 classes")),
    );
    let all = planted(&py, dir.path(), ":", 200);
    audit_cmd(&t, &s, &all)
        .args(["-q", "--ignore-label", "200"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("every label is 200"));
    // A value no label has: scored as without the flag, with a warning.
    let out = dir.path().join("out");
    audit_cmd(&t, &s, &m)
        .args(["--kinds", "W", "--ignore-label", "9", "--format", "json", "--out"])
        .arg(&out)
        .assert()
        .success()
        .stderr(predicate::str::contains("--ignore-label 9: no label has that value"));
    assert!(std::fs::read_to_string(out.join("report.json")).unwrap().contains("no label has that value"));
}
