//! Found and fixed: a model exported in training mode (PyTorch `model.train()` with
//! `training=TrainingMode.PRESERVE`) keeps BatchNormalization in training mode, so ONNX Runtime
//! normalizes every batch with its own statistics. The audit used to score it as any model: the
//! baseline and every swap depended on which images shared a batch, and a swap of RM or RV,
//! never read, read "delta 0, reusable" with the interval [0, 0] (a MobileNet-style segmenter
//! with bn 3 RM shifted by 1: delta 0.475 in eval mode, "0.0000 reusable" in training mode).
//! Now `audit` (anything that feeds images) refuses such a target, naming the layer and the
//! fix; `inspect` shows it with a warning.

mod common;

use common::*;
use onnx_protobuf::{attribute_proto::AttributeType, AttributeProto, ModelProto};
use predicates::prelude::*;

/// The tiny CNN with bn 2 in training mode: from opset 14 the `training_mode` attribute;
/// below, extra outputs (running and saved statistics), as the TorchScript exporter writes.
fn training_bn(opset: i64) -> ModelProto {
    let mut m = tiny_cnn(&Spec::default());
    m.opset_import[0].version = opset;
    let bn = m.graph.as_mut().unwrap().node.iter_mut().find(|n| n.name == "bn2").unwrap();
    if opset >= 14 {
        let mut a = AttributeProto::new();
        a.name = "training_mode".into();
        a.type_ = AttributeType::INT.into();
        a.i = 1;
        bn.attribute.push(a);
    } else {
        bn.output.extend(["bn2_mean", "bn2_var", "bn2_saved_mean", "bn2_saved_var"].map(String::from));
    }
    m
}

const SAYS: &str = "1 BatchNormalization layer(s) run in training mode (first: bn 2 'bn2')";

#[test]
fn a_target_with_batchnorm_in_training_mode_is_refused() {
    for opset in [17, 11] {
        let dir = tempfile::tempdir().unwrap();
        let t = save(&training_bn(opset), dir.path(), "t.onnx");
        let s = save(&tiny_cnn(&Spec { seed: 2, ..Spec::default() }), dir.path(), "s.onnx");
        let data = dir.path().join("val.npz");
        npz(&data, 4, 8, None, 3);
        let out = dir.path().join("out");
        audit_cmd(&t, &s, &data)
            .args(["--labels", "baseline", "--out"])
            .arg(&out)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(SAYS).and(predicate::str::contains("model.eval()")));
        assert!(!out.exists(), "opset {opset}: no report for a refused model");
        // The same model in inference mode audits.
        let ok = save(&tiny_cnn(&Spec::default()), dir.path(), "ok.onnx");
        audit_cmd(&ok, &s, &data).args(["--labels", "baseline", "--quiet"]).assert().success();
    }
}

#[test]
fn inspect_shows_a_training_mode_model_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let t = save(&training_bn(17), dir.path(), "t.onnx");
    bin()
        .arg("inspect")
        .arg(&t)
        .assert()
        .success()
        .stdout(predicate::str::contains("input 'x'").and(predicate::str::contains(SAYS)));
}
