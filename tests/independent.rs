//! The audit's numbers checked by a second implementation: tests/python/independent_check.py
//! (onnx + onnxruntime + numpy, no reuse-audit code) on a bundled pair, to 1e-5.
//! The Python environment is made on first use in target/pycheck (pip, from the package index).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

fn python_env() -> PathBuf {
    let venv = root().join("target").join("pycheck");
    let py = venv.join("bin").join("python");
    let ok = |py: &PathBuf| {
        Command::new(py)
            .args(["-c", "import onnx, onnxruntime, numpy"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if !ok(&py) {
        let st = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()
            .expect("python3 -m venv");
        assert!(st.success(), "python3 -m venv failed");
        let st = Command::new(&py)
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "onnxruntime==1.31.1",
                "onnx==1.23.2",
                "numpy",
            ])
            .status()
            .expect("pip install");
        assert!(
            st.success(),
            "pip install of the check's dependencies failed"
        );
    }
    py
}

#[test]
fn bundled_unet_dice_agrees_with_an_independent_python_computation() {
    let m = root().join("models");
    let (t, s, data) = (
        m.join("unet-acdc-seg.onnx"),
        m.join("unet-acdc-ae.onnx"),
        m.join("data/acdc-val.npz"),
    );
    let dir = tempfile::tempdir().unwrap();
    bin()
        .arg("audit")
        .arg(&t)
        .arg(&s)
        .arg("--data")
        .arg(&data)
        .args(["-q", "--format", "json", "--out"])
        .arg(dir.path())
        .assert()
        .success();
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
    assert!(
        out.status.success(),
        "independent check failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("0 mismatches") && text.contains("swaps checked"),
        "{text}"
    );
}
