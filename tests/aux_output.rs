//! Models with a second output (an auxiliary head, as torchvision's `deeplabv3_*(aux_loss=True)`
//! exports beside `out`). The audit scores the first output; a layer that feeds only another
//! output cannot change it. Regression: such a layer's swaps were scored "delta 0, reusable"
//! and counted in the RN share (a wrong verdict on an aux-heavy net), and the default
//! incremental strategy fell back to `shared` for the whole model ("does not reach the model
//! output").

mod common;

use std::path::{Path, PathBuf};

use common::*;
use onnx_protobuf::ModelProto;
use serde_json::Value;

/// The tiny CNN with a 1x1 conv head on `relu1_out` as a second graph output `aux`.
fn with_aux(seed: u64) -> ModelProto {
    with_aux_at(seed, 1)
}

/// [`with_aux`] with `aux` at position `at` of the graph's outputs (0: before `y`).
fn with_aux_at(seed: u64, at: usize) -> ModelProto {
    let mut m = tiny_cnn(&Spec { seed, ..Spec::default() });
    let mut rng = Rng::new(seed + 100);
    let g = m.graph.as_mut().unwrap();
    g.initializer.push(tensor("aux.weight", &[3, 4, 1, 1], &rng.vec(12, 0.5), Storage::Raw));
    g.initializer.push(tensor("aux.bias", &[3], &rng.vec(3, 0.1), Storage::Raw));
    g.node.push(node("Conv", "aux_conv", &["relu1_out", "aux.weight", "aux.bias"], &["aux"], vec![]));
    g.output.insert(at, value_info("aux", &[None, Some(3), Some(8), Some(8)]));
    m
}

fn audit(t: &Path, s: &Path, data: &Path, extra: &[&str]) -> (Value, String) {
    let out = audit_cmd(t, s, data)
        .args(["--json", "--labels", "baseline"])
        .args(extra)
        .assert()
        .success()
        .get_output()
        .clone();
    (serde_json::from_slice(&out.stdout).expect("JSON report"), String::from_utf8_lossy(&out.stderr).into())
}

fn rows(r: &Value) -> Vec<(String, u64, String, f64)> {
    r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let s = |k: &str| x[k].as_str().unwrap().to_string();
            (s("family"), x["layer"].as_u64().unwrap(), s("kind"), x["swapped_dice"].as_f64().unwrap())
        })
        .collect()
}

fn pair(dir: &Path) -> (PathBuf, PathBuf, PathBuf, PathBuf, PathBuf) {
    let data = dir.join("val.npz");
    npz(&data, 6, 8, None, 3);
    let plain_t = save(&tiny_cnn(&Spec::default()), dir, "plain-t.onnx");
    let plain_s = save(&tiny_cnn(&Spec { seed: 2, ..Spec::default() }), dir, "plain-s.onnx");
    let aux_t = save(&with_aux(1), dir, "aux-t.onnx");
    let aux_s = save(&with_aux(2), dir, "aux-s.onnx");
    (plain_t, plain_s, aux_t, aux_s, data)
}

#[test]
fn aux_head_layer_is_not_scored_as_a_free_reusable_swap() {
    let dir = tempfile::tempdir().unwrap();
    let (plain_t, plain_s, aux_t, aux_s, data) = pair(dir.path());
    // The known answer: the aux head cannot change output 'y', so the audit of the
    // aux-head pair is the audit of the same pair without it.
    let (plain, _) = audit(&plain_t, &plain_s, &data, &[]);
    let (aux, stderr) = audit(&aux_t, &aux_s, &data, &[]);
    assert_eq!(rows(&aux), rows(&plain), "rows of the scored layers");
    assert!(rows(&aux).iter().all(|r| !(r.0 == "conv" && r.1 == 4)), "no row for the aux conv");
    let na = aux["not_audited"].as_array().unwrap();
    assert_eq!(na.len(), 2, "{na:?}");
    for (n, kind) in na.iter().zip(["W", "B"]) {
        assert_eq!(
            (n["family"].as_str(), n["layer"].as_u64(), n["kind"].as_str()),
            (Some("conv"), Some(4), Some(kind))
        );
        assert_eq!(n["node"], "aux_conv");
        assert_eq!(
            n["reason"],
            "does not reach the scored output 'y', it feeds only 'aux': its swap cannot change what is scored"
        );
    }
    // The verdicts speak for the 3 conv layers that produce 'y', as without the aux head.
    for k in ["rn", "conv_w_reusable_share", "reuse_share_groups", "reuse_share_scalars"] {
        assert!(!aux["summary"][k].is_null(), "summary.{k} withheld");
        assert_eq!(aux["summary"][k], plain["summary"][k], "summary.{k}");
    }
    assert!(stderr.contains("1 layer(s) do not reach the scored output 'y'"), "{stderr}");
}

#[test]
fn aux_head_keeps_the_incremental_strategy_and_agrees_with_naive() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, aux_t, aux_s, data) = pair(dir.path());
    let (inc, stderr) = audit(&aux_t, &aux_s, &data, &[]);
    assert_eq!(inc["engine"]["strategy"], "incremental", "{stderr}");
    assert!(!stderr.contains("does not apply"), "{stderr}");
    let (naive, _) = audit(&aux_t, &aux_s, &data, &["--strategy", "naive"]);
    let (a, b) = (rows(&inc), rows(&naive));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((&x.0, x.1, &x.2), (&y.0, y.1, &y.2));
        assert!((x.3 - y.3).abs() <= 1e-6, "{x:?} vs {y:?}");
    }
}

#[test]
fn output_flag_scores_the_main_head_of_a_model_exporting_its_aux_head_first() {
    let dir = tempfile::tempdir().unwrap();
    let (plain_t, plain_s, _, _, data) = pair(dir.path());
    let t = save(&with_aux_at(1, 0), dir.path(), "aux-first-t.onnx");
    let s = save(&with_aux_at(2, 0), dir.path(), "aux-first-s.onnx");
    let (plain, _) = audit(&plain_t, &plain_s, &data, &[]);
    // By default the first output, 'aux', is scored: the report says which, and that the
    // main head's layers (conv 2, conv 3, bn 2) cannot change it.
    let (first, _) = audit(&t, &s, &data, &[]);
    let prediction = first["dataset"]["prediction"].as_str().unwrap();
    assert!(
        prediction.contains("output 'aux' of the model's 2 ('aux', 'y') was scored; --output NAME"),
        "{prediction}"
    );
    let mut left_out: Vec<String> = first["not_audited"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| format!("{} {} {}", n["family"].as_str().unwrap(), n["layer"], n["kind"].as_str().unwrap()))
        .collect();
    left_out.sort();
    let want = ["bn 2 RB", "bn 2 RM", "bn 2 RV", "bn 2 RW", "conv 2 B", "conv 2 W", "conv 3 B", "conv 3 W"];
    assert_eq!(left_out, want);
    // --output y: the audit of the same pair without the aux head.
    let (main, stderr) = audit(&t, &s, &data, &["--output", "y"]);
    assert_eq!(rows(&main), rows(&plain));
    assert_eq!(main["summary"]["rn"], plain["summary"]["rn"]);
    assert_eq!(main["engine"]["strategy"], "incremental", "{stderr}");
    assert!(main["dataset"]["prediction"].as_str().unwrap().contains("output 'y' of the model's 2 ('y', 'aux')"));
    // A name the model does not have: exit 2 naming its outputs.
    audit_cmd(&t, &s, &data)
        .args(["--labels", "baseline", "--output", "main"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("invalid value for --output: "))
        .stderr(predicates::str::contains("has no output 'main' (its outputs: 'aux', 'y')"));
}

/// A model exporting its aux head first (`forward` returning `(aux, out)`) had its aux
/// output scored by default, and the RN verdict given on the few layers feeding it; the
/// warning listed the layers left out but not that they were most of the network, nor the
/// flag (torchvision deeplabv3_mobilenet_v3_large with the aux head first: 97 of 126 paired
/// layers left out). The warning now says both when most paired layers are left out.
#[test]
fn aux_first_export_left_most_layers_out_without_pointing_at_output_flag() {
    let dir = tempfile::tempdir().unwrap();
    let make = |seed: u64| {
        let mut m = tiny_cnn(&Spec { seed, extra_conv: true, ..Spec::default() });
        let mut rng = Rng::new(seed + 100);
        let g = m.graph.as_mut().unwrap();
        g.initializer.push(tensor("aux.weight", &[3, 4, 1, 1], &rng.vec(12, 0.5), Storage::Raw));
        g.initializer.push(tensor("aux.bias", &[3], &rng.vec(3, 0.1), Storage::Raw));
        g.node.push(node("Conv", "aux_conv", &["relu1_out", "aux.weight", "aux.bias"], &["aux"], vec![]));
        g.output.insert(0, value_info("aux", &[None, Some(3), Some(8), Some(8)]));
        m
    };
    let t = save(&make(1), dir.path(), "t.onnx");
    let s = save(&make(2), dir.path(), "s.onnx");
    let data = dir.path().join("val.npz");
    npz(&data, 6, 8, None, 3);
    let hint = "they are most of the paired layers (5 of 8): if 'aux' is an auxiliary output, score the main one \
                with --output (the others: 'y')";
    let (r, stderr) = audit(&t, &s, &data, &[]);
    assert!(stderr.contains(hint), "{stderr}");
    assert!(r["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains(hint)));
    // Scoring the main output: nothing to hint at (only the aux conv is left out).
    let (_, stderr) = audit(&t, &s, &data, &["--output", "y"]);
    assert!(
        stderr.contains("1 layer(s) do not reach the scored output 'y'") && !stderr.contains("most of the"),
        "{stderr}"
    );
}
