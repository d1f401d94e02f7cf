//! Graphs whose tensor types our simple rules used to get wrong (issue 11, "exports from the
//! wild"): `inspect --flops` and the default (incremental) audit must run them as ONNX Runtime
//! does, and give the naive strategy's report.

mod common;

use std::path::Path;

use common::*;
use onnx_protobuf::{attribute_proto::AttributeType, AttributeProto, ModelProto, TensorProto};
use serde_json::Value;

fn value_attr(t: TensorProto) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = "value".into();
    a.type_ = AttributeType::TENSOR.into();
    a.t = Some(t).into();
    a
}

fn int64_tensor(name: &str, dims: &[i64], values: &[i64]) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.data_type = 7;
    t.dims = dims.to_vec();
    t.int64_data = values.to_vec();
    t
}

/// The tiny CNN with a tail that exporters write and ORT accepts: an int64 `ConstantOfShape`
/// (all ones) as `Expand`'s shape, a `ConstantOfShape` without `value` (float32 zeros) added
/// to the logits, and a `Where` on a bool mask (its output has the type of its second input).
fn with_shape_tail(seed: u64) -> ModelProto {
    let mut m = tiny_cnn(&Spec { seed, ..Spec::default() });
    let g = m.graph.as_mut().unwrap();
    for n in g.node.iter_mut().filter(|n| n.output.first().is_some_and(|o| o == "y")) {
        n.output[0] = "logits".into();
    }
    g.initializer.push(int64_tensor("rank", &[1], &[4]));
    g.node.push(node(
        "ConstantOfShape",
        "ones_shape",
        &["rank"],
        &["ones"],
        vec![value_attr(int64_tensor("", &[1], &[1]))],
    ));
    g.node.push(node("Expand", "expand", &["logits", "ones"], &["expanded"], vec![]));
    g.node.push(node("Shape", "shape", &["expanded"], &["s"], vec![]));
    g.node.push(node("ConstantOfShape", "zeros", &["s"], &["zeros"], vec![]));
    g.node.push(node("Add", "add_zeros", &["expanded", "zeros"], &["shifted"], vec![]));
    g.node.push(node("IsNaN", "nan_mask", &["shifted"], &["nan"], vec![]));
    g.node.push(node("Where", "clean", &["nan", "zeros", "shifted"], &["y"], vec![]));
    m
}

fn audit_json(t: &Path, s: &Path, data: &Path, extra: &[&str]) -> Value {
    let out = audit_cmd(t, s, data).args(["--json", "-q"]).args(extra).assert().success().get_output().stdout.clone();
    serde_json::from_slice(&out).expect("JSON report")
}

#[test]
fn constant_of_shape_graph_runs_inspect_flops() {
    let dir = tempfile::tempdir().unwrap();
    let t = save(&with_shape_tail(1), dir.path(), "t.onnx");
    let out = bin().arg("inspect").arg(&t).arg("--flops").assert().success().get_output().stdout.clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("3 conv layers, 2 BN layers"), "{text}");
    assert!(text.contains("GFLOPs per 1x8x8 image"), "{text}");
}

#[test]
fn constant_of_shape_graph_audits_incrementally_as_naive_does() {
    let dir = tempfile::tempdir().unwrap();
    let t = save(&with_shape_tail(1), dir.path(), "t.onnx");
    let s = save(&with_shape_tail(8), dir.path(), "s.onnx");
    let data = dir.path().join("val.npz");
    let mut rng = Rng::new(9);
    let labels: Vec<u8> = (0..6 * 64).map(|_| ((rng.next() + 1.0) * 1.5) as u8 % 3).collect();
    npz(&data, 6, 8, Some(&labels), 3);
    let naive = audit_json(&t, &s, &data, &["--strategy", "naive"]);
    let default = audit_json(&t, &s, &data, &[]);
    assert_eq!(default["engine"]["strategy"], "incremental");
    let rows = |v: &Value| v["rows"].as_array().unwrap().clone();
    assert_eq!(rows(&naive).len(), 14);
    for (a, b) in rows(&naive).iter().zip(&rows(&default)) {
        for k in ["family", "layer", "kind", "swapped_dice", "delta_dice", "reusable", "rmse"] {
            assert_eq!(a[k], b[k], "{k}: {a} vs {b}");
        }
    }
    assert_eq!(naive["baseline"], default["baseline"]);
    // The tail changes nothing: the plain tiny CNN's baseline is the same.
    let plain_t = save(&tiny_cnn(&Spec::default()), dir.path(), "plain.onnx");
    let plain = audit_json(&plain_t, &plain_t, &data, &["--strategy", "naive", "--kinds", "B"]);
    assert_eq!(plain["baseline"], naive["baseline"]);
}

/// The tiny CNN whose head reads the sum over a stacked pair of activations, as smp's FPN
/// merge exports it: `Unsqueeze(axes=[0])` of relu1 and relu2, `Concat` on axis 0,
/// `ReduceSum(axes=[0])`. The unsqueezed relu1 enters conv 2's region with its batch on
/// axis 1.
fn with_stacked_merge(seed: u64) -> ModelProto {
    let mut m = tiny_cnn(&Spec { seed, ..Spec::default() });
    let g = m.graph.as_mut().unwrap();
    let head = g.node.iter().position(|n| n.input.first().is_some_and(|i| i == "relu2_out")).unwrap();
    g.node[head].input[0] = "merged".into();
    g.initializer.push(int64_tensor("axis0", &[1], &[0]));
    let merge = [
        node("Unsqueeze", "unsq1", &["relu1_out", "axis0"], &["u1"], vec![]),
        node("Unsqueeze", "unsq2", &["relu2_out", "axis0"], &["u2"], vec![]),
        node(
            "Concat",
            "stack",
            &["u1", "u2"],
            &["stacked"],
            vec![{
                let mut a = AttributeProto::new();
                a.name = "axis".into();
                a.type_ = AttributeType::INT.into();
                a.i = 0;
                a
            }],
        ),
        node(
            "ReduceSum",
            "merge",
            &["stacked", "axis0"],
            &["merged"],
            vec![{
                let mut a = AttributeProto::new();
                a.name = "keepdims".into();
                a.type_ = AttributeType::INT.into();
                a.i = 0;
                a
            }],
        ),
    ];
    for (k, n) in merge.into_iter().enumerate() {
        g.node.insert(head + k, n);
    }
    m
}

#[test]
fn unsqueezed_activation_with_batch_on_axis_1_runs_the_incremental_regions() {
    // Regression (smp FPN, efficientnet-b0 encoder, legacy export): the region input
    // '/decoder/merge/Unsqueeze_output_0' was declared with its probed dims, batch 1 fixed on
    // axis 1, so every region run on more than one image failed ("Got invalid dimensions").
    let dir = tempfile::tempdir().unwrap();
    let t = save(&with_stacked_merge(1), dir.path(), "t.onnx");
    let s = save(&with_stacked_merge(8), dir.path(), "s.onnx");
    let data = dir.path().join("val.npz");
    npz(&data, 6, 8, None, 3);
    let run = |extra: &[&str]| {
        let mut args = vec!["--labels", "baseline"];
        args.extend_from_slice(extra);
        audit_json(&t, &s, &data, &args)
    };
    let naive = run(&["--strategy", "naive"]);
    let default = run(&[]);
    assert_eq!(default["engine"]["strategy"], "incremental");
    let rows = |v: &Value| v["rows"].as_array().unwrap().clone();
    assert_eq!(rows(&naive).len(), 14);
    for (a, b) in rows(&naive).iter().zip(&rows(&default)) {
        for k in ["family", "layer", "kind", "swapped_dice", "delta_dice"] {
            assert_eq!(a[k], b[k], "{k}: {a} vs {b}");
        }
    }
}

/// A target, a seed-2 source and 4 labelled images, saved in `dir`: (target, source, data).
fn noisy_pair(dir: &Path, m: &ModelProto, name: &str) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let t = save(m, dir, name);
    let s = save(&tiny_cnn(&Spec { seed: 2, ..Spec::default() }), dir, "s.onnx");
    let data = dir.join("val.npz");
    npz(&data, 4, 8, Some(&[1u8; 4 * 64]), 5);
    (t, s, data)
}

/// The audit of `t` is exit 2 with `message` on stderr and writes no report.
fn refused_as_random(dir: &Path, t: &Path, s: &Path, data: &Path, message: &str) {
    let out = dir.join("out");
    let o = audit_cmd(t, s, data).arg("--out").arg(&out).output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains(message), "{e}");
    assert!(!out.exists());
}

#[test]
fn random_normal_like_in_the_target_gave_a_different_baseline_and_verdicts_on_every_run() {
    // y = head + RandomNormalLike(head): two runs of the same audit reported baselines 0.3445
    // and 0.3277 and swap losses of opposite signs, without a word.
    let dir = tempfile::tempdir().unwrap();
    let mut m = tiny_cnn(&Spec::default());
    let g = m.graph.as_mut().unwrap();
    g.node.last_mut().unwrap().output[0] = "y0".into();
    let mut scale = AttributeProto::new();
    scale.name = "scale".into();
    scale.type_ = AttributeType::FLOAT.into();
    scale.f = 2.0;
    g.node.push(node("RandomNormalLike", "noise", &["y0"], &["n"], vec![scale]));
    g.node.push(node("Add", "plus_noise", &["y0", "n"], &["y"], vec![]));
    let (t, s, data) = noisy_pair(dir.path(), &m, "noisy.onnx");
    let message = "noisy.onnx: node 'noise' (RandomNormalLike) draws random numbers on every run";
    refused_as_random(dir.path(), &t, &s, &data, message);
    // As the source it is only read, never run: audited as usual.
    audit_cmd(&s, &t, &data).arg("-q").assert().success();
}

/// The tiny CNN ending in `Dropout(logits, ratio 0.5, training_mode)` with `training_mode` a
/// bool `Constant` of `training`.
fn with_dropout(seed: u64, training: bool) -> ModelProto {
    let mut m = tiny_cnn(&Spec { seed, ..Spec::default() });
    let g = m.graph.as_mut().unwrap();
    g.node.last_mut().unwrap().output[0] = "y0".into();
    g.initializer.push(tensor("ratio", &[], &[0.5], Storage::Raw));
    let mut mode = TensorProto::new();
    mode.name = "mode".into();
    mode.data_type = 9;
    mode.int32_data = vec![i32::from(training)];
    g.node.push(node("Constant", "mode_const", &[], &["mode"], vec![value_attr(mode)]));
    g.node.push(node("Dropout", "drop", &["y0", "ratio", "mode"], &["y"], vec![]));
    m
}

#[test]
fn dropout_in_training_mode_in_the_target_scored_a_new_random_mask_on_every_run() {
    // Dropout with training_mode = true zeroes half the logits at random on every run: the
    // baseline and each swap scored different noise, like a RandomNormalLike.
    let dir = tempfile::tempdir().unwrap();
    let (t, s, data) = noisy_pair(dir.path(), &with_dropout(1, true), "dropping.onnx");
    let message = "dropping.onnx: node 'drop' (Dropout) draws random numbers on every run";
    refused_as_random(dir.path(), &t, &s, &data, message);
    // In inference mode the same graph is the identity there: audited as usual.
    let t = save(&with_dropout(1, false), dir.path(), "kept.onnx");
    audit_cmd(&t, &s, &data).arg("-q").assert().success();
}
