//! Messages a user can act on (issue 11): ONNX Runtime's refusals reach the user once,
//! through our error and naming the file; warnings print once; the folded-BN hint names the
//! fix for the model's producer; `matrix` names the pair that cannot be paired.

mod common;

use std::path::Path;

use common::*;

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

#[test]
fn rmse_of_a_model_with_itself_warned_twice() {
    let dir = tempfile::tempdir().unwrap();
    let m = save(&tiny_cnn(&Spec { folded: true, ..Spec::default() }), dir.path(), "folded.onnx");
    let out = bin().arg("rmse").arg(&m).arg(&m).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(stderr.matches("BN was probably folded").count(), 1, "{stderr}");
    assert!(!stdout.contains("BN was probably folded"), "not again on stdout: {stdout}");
    // The report keeps it, once.
    let out = bin().arg("rmse").arg(&m).arg(&m).args(["--json", "--quiet"]).output().unwrap();
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let warnings = v["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].as_str().unwrap().starts_with(&format!("{}: this model has Conv layers", m.display())));
    // --quiet with a table: no warning text, one line saying they exist.
    let out = bin().arg("rmse").arg(&m).arg(&m).arg("--quiet").output().unwrap();
    assert!(out.stderr.is_empty());
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 warning(s) not shown (--quiet)"));
}

#[test]
fn matrix_warned_for_the_first_pair_only() {
    let dir = tempfile::tempdir().unwrap();
    let models: Vec<_> = (1..=3)
        .map(|seed| {
            save(&tiny_cnn(&Spec { seed, folded: true, ..Spec::default() }), dir.path(), &format!("m{seed}.onnx"))
        })
        .collect();
    let out_dir = dir.path().join("out");
    let out = bin().arg("matrix").args(&models).arg("--out").arg(&out_dir).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for m in &models {
        let w = format!("warning: {}: this model has Conv layers but no BatchNormalization", m.display());
        assert_eq!(stderr.matches(&w).count(), 1, "each model's warning once, the third's too: {stderr}");
    }
    assert_eq!(stderr.lines().count(), 3, "{stderr}");
    let html = std::fs::read_to_string(out_dir.join("matrix.html")).unwrap();
    assert_eq!(html.matches("class=\"warning\"").count(), 3);
}

#[test]
fn matrix_did_not_name_the_pair_that_cannot_be_paired() {
    let dir = tempfile::tempdir().unwrap();
    let a = save(&tiny_cnn(&Spec::default()), dir.path(), "plain-a.onnx");
    let b = save(&tiny_cnn(&Spec { seed: 2, ..Spec::default() }), dir.path(), "plain-b.onnx");
    let c = save(&tiny_cnn(&Spec { extra_conv: true, ..Spec::default() }), dir.path(), "deeper.onnx");
    let out = bin().arg("matrix").args([&a, &b, &c]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{} (target) and {} (source): different architectures", a.display(), c.display())),
        "{stderr}"
    );
    // A folded side is named as the likely cause.
    let f = save(&tiny_cnn(&Spec { folded: true, ..Spec::default() }), dir.path(), "folded.onnx");
    let out = bin().arg("matrix").args([&a, &f]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains(&format!("{} has (almost) no BatchNormalization", f.display())), "{stderr}");
}

/// `inspect`'s warnings for a model whose producer is `producer`.
fn inspect_warnings(m: &mut onnx_protobuf::ModelProto, producer: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    m.producer_name = producer.into();
    let p = save(m, dir.path(), "m.onnx");
    let out = bin().arg("inspect").arg(&p).arg("--json").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap().to_string()).collect::<Vec<_>>().join("\n")
}

#[test]
fn folded_bn_hint_gave_pytorch_advice_to_every_producer() {
    let mut m = tiny_cnn(&Spec { folded: true, ..Spec::default() });
    let w = inspect_warnings(&mut m, "pytorch");
    assert!(w.contains("(producer: pytorch)") && w.contains("dynamo=True, optimize=False"), "{w}");
    assert!(w.contains("do_constant_folding=False"), "{w}");
    let w = inspect_warnings(&mut m, "tf2onnx");
    assert!(w.contains("'remove_back_to_back'") && !w.contains("torch.onnx"), "{w}");
    let w = inspect_warnings(&mut m, "PaddlePaddle");
    assert!(w.contains("paddle2onnx does not fold BN itself") && !w.contains("torch.onnx"), "{w}");
    let w = inspect_warnings(&mut m, "");
    assert!(w.contains("--skip-fuse-bn") && w.contains("fuse_bn_into_conv") && !w.contains("(producer:"), "{w}");
}

#[test]
fn partly_folded_bn_went_unnoticed() {
    // conv1 BN1 conv2 (BN2 folded) head + two 1x1 convs: 5 convs, 1 BN.
    let mut m = tiny_cnn(&Spec::default());
    drop_bn(&mut m, "bn2");
    append_conv1x1(&mut m, "extra1", 7);
    append_conv1x1(&mut m, "extra2", 8);
    let w = inspect_warnings(&mut m, "pytorch");
    assert!(w.contains("this model has 5 Conv layers but only 1 BatchNormalization"), "{w}");
    assert!(w.contains("partly folded") && w.contains("optimize=False"), "{w}");
    // One BN per conv but the head: no warning.
    let mut kept = tiny_cnn(&Spec::default());
    assert_eq!(inspect_warnings(&mut kept, "pytorch"), "");
}

#[test]
fn ort_refusing_the_target_did_not_name_the_file() {
    // Opset 99: our loader reads it (layers, pairing), ONNX Runtime refuses it.
    let dir = tempfile::tempdir().unwrap();
    let mut m = tiny_cnn(&Spec { fixed_batch: true, ..Spec::default() });
    m.opset_import[0].version = 99;
    let target = save(&m, dir.path(), "opset99.onnx");
    let source = save(&tiny_cnn(&Spec { seed: 2, ..Spec::default() }), dir.path(), "source.onnx");
    let data = dir.path().join("val.npz");
    npz(&data, 4, 8, Some(&[0u8; 4 * 64]), 3);
    let named = |args: &[&str], out: std::process::Output| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("opset99.onnx: ONNX Runtime refused the model"), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    };
    for extra in [
        &["--strategy", "naive"][..],
        &["--strategy", "shared"],
        &["--strategy", "incremental"],
        &["--labels", "baseline"],
        &["--dynamic-batch"],
    ] {
        named(extra, audit_cmd(&target, &source, &data).args(extra).output().unwrap());
    }
    named(&["inspect", "--flops"], bin().args(["inspect", "--flops"]).arg(&target).output().unwrap());
}

/// `ORT_LOG=loud` (a typo, or a level ONNX Runtime does not have) used to be ignored without
/// a word, so the user waited for a log that never came; it is refused like the
/// `REUSE_AUDIT_*` switches, naming the variable and the levels it takes, before any work.
#[test]
fn unknown_ort_log_level_was_silently_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let target = save(&tiny_cnn(&Spec::default()), dir.path(), "target.onnx");
    let source = save(&tiny_cnn(&Spec { seed: 2, ..Spec::default() }), dir.path(), "source.onnx");
    let data = dir.path().join("val.npz");
    npz(&data, 4, 8, Some(&[0u8; 4 * 64]), 3);
    let out_dir = dir.path().join("out");
    let out = audit_cmd(&target, &source, &data).arg("--out").arg(&out_dir).env("ORT_LOG", "loud").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("ORT_LOG=loud") && stderr.contains("verbose, info, warning, error or fatal"), "{stderr}");
    assert!(!out_dir.exists(), "nothing written");
    // Each documented level, in any case, and an empty value (unset) still run.
    for level in ["verbose", "INFO", "warning", "Error", "fatal", ""] {
        let out = audit_cmd(&target, &source, &data).arg("--quiet").env("ORT_LOG", level).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "ORT_LOG={level}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// Regression: `inspect` of a dynamo export printed one warning per computed bias (14 for
/// the smp PSPNet, each after a blank line); now one line with the count and the first,
/// as the audit says it, while `--json` still lists each.
#[test]
fn inspect_printed_one_warning_per_computed_bias() {
    let m = root().join("tests/corpus/smp-pspnet-target.onnx");
    let out = bin().arg("inspect").arg(&m).assert().success().get_output().stdout.clone();
    let text = String::from_utf8(out).unwrap();
    let warnings: Vec<&str> = text.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(
        warnings[0].contains("14 Conv/BN parameter input(s) are computed") && warnings[0].contains("node_conv2d: B"),
        "{text}"
    );
    let json = bin().arg("inspect").arg(&m).arg("--json").assert().success().get_output().stdout.clone();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let each = v["warnings"].as_array().unwrap().iter().filter(|w| w.as_str().unwrap().starts_with("skipped ")).count();
    assert_eq!(each, 14);
}

/// The tf2onnx advice was a snippet that fails as printed (`tf2onnx.optimizer` is not loaded
/// by `import tf2onnx`: AttributeError with tf2onnx 1.17) and that keeps no BN for a Keras 3
/// model: TensorFlow folds its BatchNormalization into the Conv before tf2onnx's optimizers
/// run (checked with tf2onnx 1.17, TensorFlow 2.21: `optimizers={}` still gives 0 BN, while
/// the same model built with tf_keras keeps its BN without 'remove_back_to_back').
#[test]
fn tf2onnx_advice_failed_as_printed_and_kept_no_bn_for_keras_3() {
    let mut m = tiny_cnn(&Spec { folded: true, ..Spec::default() });
    let w = inspect_warnings(&mut m, "tf2onnx");
    assert!(w.contains("import tf2onnx.optimizer (import tf2onnx alone does not load it)"), "{w}");
    assert!(w.contains("A Keras 3 model") && w.contains("tf_keras"), "{w}");
}
