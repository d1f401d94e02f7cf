//! The fuzz corpora replayed on the stable toolchain (issue 14): every input kept in
//! `fuzz/corpus/TARGET/` (minimised by `cargo fuzz cmin`, the fixtures' seeds and whatever
//! the fuzzers found that added coverage) and every crash input kept in
//! `fuzz/regressions/TARGET/` runs through the same harness as `cargo fuzz run TARGET`
//! (`fuzz/harness/`): none may panic. The fuzzers' findings stay fixed without nightly.

#[path = "../fuzz/harness/common.rs"]
mod common;
#[path = "../fuzz/harness/mapping.rs"]
mod mapping;
#[path = "../fuzz/harness/nifti.rs"]
mod nifti;
#[path = "../fuzz/harness/npy.rs"]
mod npy;
#[path = "../fuzz/harness/npz.rs"]
mod npz;
#[path = "../fuzz/harness/onnx_model.rs"]
mod onnx_model;

use std::path::PathBuf;

/// Every input of `target`: its corpus and its kept crash inputs.
fn inputs(target: &str) -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files: Vec<PathBuf> = ["corpus", "regressions"]
        .iter()
        .filter_map(|kind| std::fs::read_dir(root.join(kind).join(target)).ok())
        .flatten()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Run `harness` on every input of `target`, naming the inputs that panic.
fn replay(target: &str, harness: fn(&[u8])) {
    let files = inputs(target);
    assert!(!files.is_empty(), "no corpus for {target}");
    let failed: Vec<String> = files
        .iter()
        .filter(|f| {
            let bytes = std::fs::read(f).unwrap();
            std::panic::catch_unwind(|| harness(&bytes)).is_err()
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(failed.is_empty(), "{} of {} {target} inputs panic: {failed:#?}", failed.len(), files.len());
}

#[test]
fn onnx_model_corpus() {
    replay("onnx_model", onnx_model::run);
}

#[test]
fn npy_corpus() {
    replay("npy", npy::run);
}

#[test]
fn npz_corpus() {
    replay("npz", npz::run);
}

#[test]
fn nifti_corpus() {
    replay("nifti", nifti::run);
}

#[test]
fn mapping_corpus() {
    replay("mapping", mapping::run);
}
