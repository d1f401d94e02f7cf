//! Verdicts and gates over what was audited only (issue 14): same names with 4 vs 8
//! channels gave exit 0 and "reuse share 100%" from a few groups; `--require-reusable` passed
//! on layers or kinds never audited; a `--match` file could map one tensor twice.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use onnx_protobuf::ModelProto;
use serde_json::Value;

/// The tiny CNN with conv2 (and so bn2 and the head's input) 8 channels wide instead of 4,
/// initializer names unchanged.
fn wide_conv2(seed: u64) -> ModelProto {
    let mut m = tiny_cnn(&Spec { seed, ..Spec::default() });
    let mut rng = Rng::new(seed + 100);
    let g = m.graph.as_mut().unwrap();
    for t in g.initializer.iter_mut() {
        let dims: Vec<i64> = match t.name.as_str() {
            "net.conv2.weight" => vec![8, 4, 3, 3],
            "net.head.weight" => vec![3, 8, 1, 1],
            n if n.starts_with("net.conv2.") || n.starts_with("net.bn2.") => vec![8],
            _ => continue,
        };
        let n = dims.iter().product::<i64>() as usize;
        let v: Vec<f32> =
            rng.vec(n, 0.5).iter().map(|x| if t.name.contains("var") { 1.0 + x.abs() } else { *x }).collect();
        *t = tensor(&t.name, &dims, &v, Storage::Raw);
    }
    m
}

fn setup(dir: &Path, source: &ModelProto) -> (PathBuf, PathBuf, PathBuf) {
    let t = save(&tiny_cnn(&Spec::default()), dir, "t.onnx");
    let s = save(source, dir, "s.onnx");
    let data = dir.join("val.npz");
    npz(&data, 4, 8, Some(&(0..256).map(|i| (i / 7 % 3) as u8).collect::<Vec<_>>()), 9);
    (t, s, data)
}

fn run(cmd: &mut assert_cmd::Command) -> (Option<i32>, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn same_names_4_vs_8_channels_gave_reuse_share_100_percent() {
    let dir = tempfile::tempdir().unwrap();
    let (t, s, data) = setup(dir.path(), &wide_conv2(2));
    let (code, stdout, stderr) = run(audit_cmd(&t, &s, &data).arg("--json"));
    assert_eq!(code, Some(0), "{stderr}");
    let r: Value = serde_json::from_str(&stdout).unwrap();
    // By hand: conv2 W and B, bn2's four, the head's W differ in shape; conv1, bn1 and the
    // head's bias (3 values) pair: 2 + 4 + 1 = 7 audited of 14.
    let missing: Vec<String> = r["not_audited"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| format!("{} {} {}", n["family"].as_str().unwrap(), n["layer"], n["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(missing, ["conv 2 W", "conv 2 B", "bn 2 RM", "bn 2 RV", "bn 2 RW", "bn 2 RB", "conv 3 W"]);
    assert!(r["not_audited"][0]["reason"].as_str().unwrap().contains("shape [4, 4, 3, 3] vs source [8, 4, 3, 3]"));
    assert_eq!(r["rows"].as_array().unwrap().len(), 7);
    assert!(r["summary"]["rn"].is_null());
    assert!(r["summary"]["reuse_share_groups"].is_null() && r["summary"]["reuse_share_scalars"].is_null());
    let warnings = r["warnings"].as_array().unwrap();
    assert!(warnings.iter().any(|w| w.as_str().unwrap().starts_with("no reuse share: 7 (layer, kind) group(s)")));
    // The table says so too.
    let (_, table, _) = run(audit_cmd(&t, &s, &data).arg("-q"));
    assert!(table.contains("reuse share: none (7 (layer, kind) group(s) not audited"), "{table}");
    assert!(table.contains("verdict: none"), "{table}");
}

#[test]
fn require_reusable_on_a_layer_the_model_does_not_have_passed() {
    let dir = tempfile::tempdir().unwrap();
    let (t, _, data) = setup(dir.path(), &wide_conv2(2));
    // Identity pair: every swap is free, so a real gate passes; W:99 names no layer.
    audit_cmd(&t, &t, &data).args(["-q", "--require-reusable", "W:1-3"]).assert().success();
    let (code, _, e) = run(audit_cmd(&t, &t, &data).args(["-q", "--require-reusable", "W:99"]));
    assert_eq!(code, Some(2), "{e}");
    assert!(e.contains("W:99: the target has no conv layer 99 with W (its conv layers with W: [1, 2, 3])"), "{e}");
    assert!(e.contains("the gate would check nothing"), "{e}");
}

#[test]
fn require_reusable_on_a_kind_not_audited_passed() {
    let dir = tempfile::tempdir().unwrap();
    let (t, _, data) = setup(dir.path(), &wide_conv2(2));
    let out = dir.path().join("out");
    let (code, _, e) =
        run(audit_cmd(&t, &t, &data).args(["-q", "--kinds", "B", "--require-reusable", "W:*", "--out"]).arg(&out));
    assert_eq!(code, Some(2), "{e}");
    assert!(e.contains("W: W is not among the audited --kinds: the gate would check nothing"), "{e}");
    assert!(!out.exists(), "refused before any work");
    let (code, _, e) = run(audit_cmd(&t, &t, &data).args(["-q", "--kinds", "B", "--fail-if-not-reusable"]));
    assert_eq!(code, Some(2), "{e}");
    assert!(e.contains("--fail-if-not-reusable") && e.contains("needs conv W (--kinds, --families)"), "{e}");
}

#[test]
fn fail_if_not_reusable_with_rn_threshold_0_passed_whatever_the_audit_said() {
    // A conv W reusable share of 0 reaches a threshold of 0: every network was an RN and the
    // gate could not fail. Refused before any work; a threshold above 0 is checked as before.
    let dir = tempfile::tempdir().unwrap();
    let (t, s, data) = setup(dir.path(), &wide_conv2(2));
    let out = dir.path().join("out");
    let (code, _, e) =
        run(audit_cmd(&t, &s, &data).args(["-q", "--fail-if-not-reusable", "--rn-threshold", "0", "--out"]).arg(&out));
    assert_eq!(code, Some(2), "{e}");
    assert!(e.contains("--rn-threshold 0 calls every network an RN") && e.contains("would check nothing"), "{e}");
    assert!(!out.exists(), "refused before any work");
    let (code, _, e) = run(audit_cmd(&t, &t, &data).args(["-q", "--fail-if-not-reusable", "--rn-threshold", "0.01"]));
    assert_eq!(code, Some(0), "a model against itself is an RN: {e}");
}

#[test]
fn gates_on_groups_not_audited_passed_vacuously() {
    let dir = tempfile::tempdir().unwrap();
    let (t, s, data) = setup(dir.path(), &wide_conv2(2));
    for (gate, needle) in [
        (vec!["--require-reusable", "W:*"], "W:* covers 2 conv W group(s) that were not audited, e.g. conv 2 (conv2)"),
        (vec!["--require-reusable", "RM:2"], "RM:2: bn 2 (bn2) was not audited: unmatched: shape [4] vs source [8]"),
        (vec!["--fail-if-not-reusable"], "there is no RN verdict"),
    ] {
        let (code, _, e) = run(audit_cmd(&t, &s, &data).arg("-q").args(&gate));
        assert_eq!(code, Some(2), "{gate:?}: {e}");
        assert!(e.contains(needle), "{gate:?}: {e}");
    }
    // A gate on audited groups only is checked as before: exit 0 or 1, never 2.
    let (code, _, e) = run(audit_cmd(&t, &s, &data).args(["-q", "--require-reusable", "W:1,B:1,B:3"]));
    assert!(matches!(code, Some(0) | Some(1)), "{e}");
}

#[test]
fn match_file_mapping_one_tensor_twice_gave_duplicate_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (t, _, data) = setup(dir.path(), &wide_conv2(2));
    let s = save(&tiny_cnn(&Spec { seed: 2, ..Spec::default() }), dir.path(), "s4.onnx");
    let map = dir.path().join("map.csv");
    for (text, needle) in [
        (
            "net.conv1.bias,net.conv1.bias\nnet.conv2.bias,net.conv1.bias\n",
            "line 2: source 'net.conv1.bias' is already mapped on line 1",
        ),
        (
            "net.conv1.bias,net.conv1.bias\n# a comment\nnet.conv1.bias,net.conv2.bias\n",
            "line 3: target 'net.conv1.bias' is already mapped on line 1",
        ),
    ] {
        std::fs::write(&map, text).unwrap();
        for cmd in ["rmse", "audit"] {
            let mut c = if cmd == "rmse" {
                let mut c = bin();
                c.arg("rmse").arg(&t).arg(&s);
                c
            } else {
                audit_cmd(&t, &s, &data)
            };
            let (code, _, e) = run(c.arg("--match").arg(&map));
            assert_eq!(code, Some(2), "{cmd}: {e}");
            assert!(e.contains("map.csv") && e.contains(needle), "{cmd}: {e}");
        }
    }
}
