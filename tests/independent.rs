//! The audit's numbers checked by a second implementation: tests/python/independent_check.py
//! (onnx + onnxruntime + numpy, no reuse-audit code) on a bundled pair, to 1e-5.
//! The Python environment is made on first use in target/pycheck by scripts/pyenv.sh (pip).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

fn python_env() -> PathBuf {
    let out = Command::new("bash").arg(root().join("scripts/pyenv.sh")).output().expect("run scripts/pyenv.sh");
    assert!(out.status.success(), "scripts/pyenv.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

#[test]
fn bundled_unet_dice_agrees_with_an_independent_python_computation() {
    let m = root().join("models");
    let (t, s, data) = (m.join("unet-acdc-seg.onnx"), m.join("unet-acdc-ae.onnx"), m.join("data/acdc-val.npz"));
    let dir = tempfile::tempdir().unwrap();
    audit_cmd(&t, &s, &data).args(["-q", "--format", "json", "--out"]).arg(dir.path()).assert().success();
    let out = Command::new(python_env())
        .arg(root().join("tests/python/independent_check.py"))
        .arg(&t)
        .arg(&s)
        .arg(&data)
        .arg(dir.path().join("report.json"))
        .args(["--every", "9"])
        .output()
        .expect("run the check");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "independent check failed:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("0 mismatches") && text.contains("swaps checked"), "{text}");
}
