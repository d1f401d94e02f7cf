//! Messages a user can act on (issue 11): ONNX Runtime's refusals reach the user once,
//! through our error and naming the file; warnings print once; the folded-BN hint names the
//! fix for the model's producer; `matrix` names the pair that cannot be paired.

mod common;

use std::path::Path;

use common::*;
use predicates::prelude::*;

/// conv2's weight declares 5 input channels where conv1 gives it 4: ONNX Runtime builds the
/// session and fails on the first run (our loader does no shape inference).
fn contradicting_conv() -> onnx_protobuf::ModelProto {
    let mut m = tiny_cnn(&Spec::default());
    let g = m.graph.as_mut().expect("graph");
    let w = g.initializer.iter_mut().find(|t| t.name == "net.conv2.weight").expect("conv2 weight");
    w.dims = vec![4, 5, 3, 3];
    w.raw_data = vec![0; 4 * 5 * 9 * 4];
    m
}

/// The first Relu replaced by `Not`, which takes booleans: ONNX Runtime refuses the graph
/// when it builds the session (a type error).
fn type_error() -> onnx_protobuf::ModelProto {
    let mut m = tiny_cnn(&Spec::default());
    let n = m.graph.as_mut().expect("graph").node.iter_mut().find(|n| n.op_type == "Relu").expect("relu");
    n.op_type = "Not".into();
    m
}

/// Audit `target` against a healthy source on a small labelled set; returns (code, stderr).
fn audit_stderr(dir: &Path, target: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let source = save(&tiny_cnn(&Spec { seed: 2, ..Spec::default() }), dir, "source.onnx");
    let data = dir.join("val.npz");
    npz(&data, 4, 8, Some(&[0u8; 4 * 64]), 3);
    let out = audit_cmd(target, &source, &data).args(extra).output().expect("run");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn assert_reported_once(code: Option<i32>, stderr: &str, file: &str, reason: &str) {
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains(&format!("{file}: ONNX Runtime ")), "names the file: {stderr}");
    assert_eq!(stderr.matches(reason).count(), 1, "ONNX Runtime's reason once: {stderr}");
    assert!(!stderr.contains("\x1b["), "no ANSI colour: {stderr:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn ort_log_line_duplicated_the_error_in_colour_run_failure() {
    let dir = tempfile::tempdir().unwrap();
    let target = save(&contradicting_conv(), dir.path(), "broken-conv.onnx");
    let (code, stderr) = audit_stderr(dir.path(), &target, &[]);
    assert_reported_once(code, &stderr, "broken-conv.onnx", "Input channels C is not equal to kernel channels * group");
    assert!(stderr.contains("ONNX Runtime run failed"), "{stderr}");
}

#[test]
fn ort_log_line_duplicated_the_error_in_colour_refused_session() {
    let dir = tempfile::tempdir().unwrap();
    let target = save(&type_error(), dir.path(), "type-error.onnx");
    let (code, stderr) = audit_stderr(dir.path(), &target, &[]);
    let reason =
        "Type Error: Type 'tensor(float)' of input parameter (bn1_out) of operator (Not) in node (relu1) is invalid";
    assert_reported_once(code, &stderr, "type-error.onnx", reason);
    assert!(stderr.contains("ONNX Runtime refused the model"), "{stderr}");
}

#[test]
fn ort_log_is_silent_under_quiet_even_when_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let target = save(&type_error(), dir.path(), "type-error.onnx");
    let source = save(&tiny_cnn(&Spec { seed: 2, ..Spec::default() }), dir.path(), "source.onnx");
    let data = dir.path().join("val.npz");
    npz(&data, 4, 8, Some(&[0u8; 4 * 64]), 3);
    let out = audit_cmd(&target, &source, &data).arg("--quiet").env("ORT_LOG", "verbose").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(!stderr.contains("onnxruntime:"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "only our error: {stderr}");
    // Asked for without --quiet, ONNX Runtime's log is there, plain.
    let out = audit_cmd(&target, &source, &data).env("ORT_LOG", "info").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("onnxruntime: [I] "), "{stderr}");
    assert!(!stderr.contains("\x1b["), "{stderr:?}");
}
