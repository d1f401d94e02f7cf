//! Values that are not numbers (issue 14): a target whose output is NaN had a perfect "RN,
//! 100%" verdict; NaN/Inf pixels must be refused naming the file and the first index.

mod common;

use std::path::Path;

use common::*;
use onnx_protobuf::ModelProto;

/// The tiny CNN's output plus `0 * Sqrt(x + shift)`: NaN wherever an input pixel is below
/// `-shift`, the model's own output elsewhere.
fn nan_where_input_below(shift: f32) -> ModelProto {
    let mut m = tiny_cnn(&Spec::default());
    let g = m.graph.as_mut().unwrap();
    g.initializer.push(tensor("shift", &[1], &[shift], Storage::Raw));
    g.initializer.push(tensor("zero", &[1], &[0.0], Storage::Raw));
    g.node.push(node("Add", "shifted", &["x", "shift"], &["xs"], vec![]));
    g.node.push(node("Sqrt", "root", &["xs"], &["r"], vec![]));
    g.node.push(node("Mul", "nothing", &["r", "zero"], &["r0"], vec![]));
    g.node.iter_mut().find(|n| n.name == "conv3").unwrap().output[0] = "y0".into();
    g.node.push(node("Add", "out", &["y0", "r0"], &["y"], vec![]));
    m
}

fn stderr_of(cmd: &mut assert_cmd::Command) -> (Option<i32>, String) {
    let out = cmd.output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn setup(
    dir: &Path,
    target: &ModelProto,
    images: &[f32],
    n: usize,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let t = save(target, dir, "nan-target.onnx");
    let s = save(&tiny_cnn(&Spec { seed: 2, ..Spec::default() }), dir, "source.onnx");
    let data = dir.join("val.npz");
    let labels: Vec<u8> = (0..n * 64).map(|i| (i % 3) as u8).collect();
    npz_arrays(&data, &[n, 1, 8, 8], images, Some((&[n, 8, 8], &labels)));
    (t, s, data)
}

#[test]
fn target_output_nan_gave_reusable_network_100_percent() {
    let dir = tempfile::tempdir().unwrap();
    // NaN wherever a pixel is below 1000: everywhere, whatever the scaling.
    let images: Vec<f32> = Rng::new(4).vec(4 * 64, 2.0);
    let (t, s, data) = setup(dir.path(), &nan_where_input_below(-1000.0), &images, 4);
    for strategy in ["naive", "shared", "incremental"] {
        for labels in [None, Some("baseline")] {
            let out = dir.path().join(format!("out-{strategy}"));
            let mut cmd = audit_cmd(&t, &s, &data);
            cmd.args(["--strategy", strategy, "-q"]).arg("--out").arg(&out);
            if let Some(l) = labels {
                cmd.args(["--labels", l]);
            }
            let (code, e) = stderr_of(&mut cmd);
            assert_eq!(code, Some(2), "{strategy} {labels:?}: {e}");
            assert!(e.contains("nan-target.onnx") && e.contains("output is NaN"), "{e}");
            assert!(e.contains("no verdict") && !e.contains("panicked"), "{e}");
            assert!(!out.exists(), "no report");
        }
    }
}

#[test]
fn target_output_nan_on_one_image_the_probe_does_not_see() {
    let dir = tempfile::tempdir().unwrap();
    // 20 positive images, unscaled; image 19 (not among the probe's) has one pixel of -5.
    let n = 20;
    let mut images: Vec<f32> = Rng::new(5).vec(n * 64, 1.0).iter().map(|v| v.abs() + 0.1).collect();
    images[19 * 64 + 2 * 8 + 3] = -5.0;
    let (t, s, data) = setup(dir.path(), &nan_where_input_below(1.0), &images, n);
    for strategy in ["naive", "incremental"] {
        let (code, e) = stderr_of(audit_cmd(&t, &s, &data).args(["--strategy", strategy, "--normalize", "none", "-q"]));
        assert_eq!(code, Some(2), "{strategy}: {e}");
        // NaN in every class channel at row 2, column 3 of image 19: the first is channel 0.
        assert!(e.contains("val.npz#19") && e.contains("[19, 0, 2, 3]"), "{strategy}: {e}");
    }
    // Without the bad pixel the same audit runs: the check is not a false alarm.
    images[19 * 64 + 2 * 8 + 3] = 0.5;
    let (t, s, data) = setup(dir.path(), &nan_where_input_below(1.0), &images, n);
    audit_cmd(&t, &s, &data).args(["--normalize", "none", "-q"]).assert().success();
}

#[test]
fn inf_pixel_is_refused_naming_the_file_and_first_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut images: Vec<f32> = Rng::new(6).vec(3 * 64, 1.0);
    images[2 * 64 + 5 * 8 + 1] = f32::INFINITY;
    images[2 * 64 + 6 * 8 + 7] = f32::NAN;
    let (t, s, data) = setup(dir.path(), &tiny_cnn(&Spec::default()), &images, 3);
    let (code, e) = stderr_of(&mut audit_cmd(&t, &s, &data));
    assert_eq!(code, Some(2), "{e}");
    assert!(e.contains("val.npz#2") && e.contains("non-finite pixel (inf) at channel 0, row 5, column 1"), "{e}");
}

/// The tiny CNN's output plus `0 * Sqrt(BatchNormalization(x))`, the BN (`gate.*`, one
/// channel: mean 0, var 1, scale 1) shifting the input by `shift` (its bias): NaN wherever
/// an input pixel is below `-shift`, the model's own output elsewhere.
fn nan_gate(shift: f32) -> ModelProto {
    let mut m = tiny_cnn(&Spec::default());
    let g = m.graph.as_mut().unwrap();
    for (name, v) in [("gate.weight", 1.0), ("gate.bias", shift), ("gate.running_mean", 0.0), ("gate.running_var", 1.0)]
    {
        g.initializer.push(tensor(name, &[1], &[v], Storage::Raw));
    }
    g.initializer.push(tensor("zero", &[1], &[0.0], Storage::Raw));
    g.node.push(node(
        "BatchNormalization",
        "gate",
        &["x", "gate.weight", "gate.bias", "gate.running_mean", "gate.running_var"],
        &["xs"],
        vec![],
    ));
    g.node.push(node("Sqrt", "root", &["xs"], &["r"], vec![]));
    g.node.push(node("Mul", "nothing", &["r", "zero"], &["r0"], vec![]));
    g.node.iter_mut().find(|n| n.name == "conv3").unwrap().output[0] = "y0".into();
    g.node.push(node("Add", "out", &["y0", "r0"], &["y"], vec![]));
    m
}

#[test]
fn swap_output_nan_on_one_image_was_scored_as_background() {
    // Target and source are one model but for the gate's bias: 1000 in the target (the
    // output is the CNN's), 2 in the source, so the RB swap makes the output NaN (in every
    // class channel) at the one pixel below -2: image 3's. Read as background, that pixel
    // cost under 0.02 mean Dice and the swap was "reusable", silently.
    let dir = tempfile::tempdir().unwrap();
    let n = 5;
    let mut images: Vec<f32> = Rng::new(7).vec(n * 64, 1.0);
    images[3 * 64 + 4 * 8 + 6] = -5.0;
    let t = save(&nan_gate(1000.0), dir.path(), "target.onnx");
    let s = save(&nan_gate(2.0), dir.path(), "source.onnx");
    let data = dir.path().join("val.npz");
    npz_arrays(&data, &[n, 1, 8, 8], &images, None);
    let mut csvs = Vec::new();
    for strategy in ["naive", "shared", "incremental"] {
        let out = dir.path().join(strategy);
        let mut cmd = audit_cmd(&t, &s, &data);
        cmd.args(["--strategy", strategy, "--labels", "baseline", "--normalize", "none", "--format", "csv,json,md"]);
        let (code, e) = stderr_of(cmd.arg("--out").arg(&out));
        assert_eq!(code, Some(0), "{strategy}: {e}");
        let said = "bn 3 RB (gate.bias <- gate.bias): the swapped model's output is NaN or infinite on 1 of 5 image(s)";
        assert!(e.contains(&format!("warning: {said}")), "{strategy}: {e}");
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
        assert!(report["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().starts_with(said)));
        // report.md backslash-escapes Markdown's markup characters in warnings (`<` here).
        assert!(std::fs::read_to_string(out.join("report.md")).unwrap().contains(&said.replace('<', "\\<")));
        let rows = report["rows"].as_array().unwrap();
        let gate = rows.iter().find(|r| r["target_initializer"] == "gate.bias").unwrap();
        assert_eq!(gate["non_finite_images"], 1, "{strategy}");
        assert_eq!(gate["reusable"], false, "{strategy}");
        assert_eq!(gate["decision"], "not_reusable", "{strategy}");
        // By hand: truth = the baseline's classes; one pixel of class k predicts nothing, so
        // class k keeps I = P = G - 1 of G, Dice 2(G-1)/(2G-1), every other class Dice 1:
        // G = (2 - d) / (2 - 2d) is a whole number of pixels.
        let per_class: Vec<f64> = gate["dice_class"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let hurt: Vec<f64> = per_class.iter().copied().filter(|&d| d != 1.0).collect();
        assert_eq!(hurt.len(), 1, "{strategy}: {per_class:?}");
        let g = (2.0 - hurt[0]) / (2.0 - 2.0 * hurt[0]);
        assert!((g - g.round()).abs() < 1e-9 && (1.0..=320.0).contains(&g), "{strategy}: G = {g}");
        let delta = gate["delta_dice"].as_f64().unwrap();
        assert!(delta > 0.0 && delta < 0.02, "{strategy}: within the tolerance ({delta}), not reusable all the same");
        // Every other swap is finite (and unchanged: the models differ in the gate's bias only).
        assert!(rows.iter().filter(|r| r["target_initializer"] != "gate.bias").all(|r| r["non_finite_images"] == 0));
        let csv = std::fs::read_to_string(out.join("report.csv")).unwrap();
        assert!(csv.lines().next().unwrap().ends_with(",decision,images_used,non_finite_images"));
        csvs.push(csv);
    }
    assert!(csvs.windows(2).all(|w| w[0] == w[1]), "naive, shared and incremental differ");
}

#[test]
fn bn_epsilon_negative_or_nan_gave_mrm_nan_and_mrv_one_without_a_word() {
    // bn1's epsilon -100: sqrt(var + eps) of a negative number. `rmse` printed MRM NaN
    // (null in JSON) and MRV exactly 1 (a negative over a negative), exit 0, no warning.
    for (eps, word) in [(-100.0f32, "-100"), (f32::NAN, "NaN"), (f32::INFINITY, "inf")] {
        let dir = tempfile::tempdir().unwrap();
        let mut m = tiny_cnn(&Spec::default());
        let bn1 = m.graph.as_mut().unwrap().node.iter_mut().find(|n| n.name == "bn1").unwrap();
        bn1.attribute.iter_mut().find(|a| a.name == "epsilon").unwrap().f = eps;
        let (t, s, data) = setup(dir.path(), &m, &[0.5; 2 * 64], 2);
        let want = format!("bn 1 (bn1): epsilon {word} is not a finite number >= 0");
        for args in
            [vec!["rmse".as_ref(), t.as_os_str(), s.as_os_str()], vec!["matrix".as_ref(), t.as_os_str(), s.as_os_str()]]
        {
            let (code, stderr) = stderr_of(bin().args(&args));
            assert_eq!(code, Some(2), "{stderr}");
            assert!(stderr.contains("nan-target.onnx") && stderr.contains(&want), "{stderr}");
        }
        let out = dir.path().join("out");
        let (code, stderr) = stderr_of(audit_cmd(&t, &s, &data).arg("--out").arg(&out));
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains("nan-target.onnx") && stderr.contains(&want), "{stderr}");
        assert!(!out.exists(), "nothing written");
    }
    // With epsilon 0 (legal), a running variance of exactly 0 divides by zero.
    let dir = tempfile::tempdir().unwrap();
    let mut m = tiny_cnn(&Spec::default());
    let g = m.graph.as_mut().unwrap();
    g.node.iter_mut().find(|n| n.name == "bn2").unwrap().attribute[0].f = 0.0;
    let var = g.initializer.iter_mut().find(|t| t.name == "net.bn2.running_var").unwrap();
    var.raw_data[8..12].copy_from_slice(&0.0f32.to_le_bytes());
    let (t, s, _) = setup(dir.path(), &m, &[0.5; 2 * 64], 2);
    let (code, stderr) = stderr_of(bin().args(["rmse".as_ref(), t.as_os_str(), s.as_os_str()]));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("'net.bn2.running_var' (bn 2 (bn2)) is 0 at channel 2 with epsilon 0"), "{stderr}");
    // A negative stored variance was reported as "is 0" (regression): the message says
    // negative and gives the value.
    let dir = tempfile::tempdir().unwrap();
    let mut m = tiny_cnn(&Spec::default());
    let var = m.graph.as_mut().unwrap().initializer.iter_mut().find(|t| t.name == "net.bn2.running_var").unwrap();
    var.raw_data[4..8].copy_from_slice(&(-0.25f32).to_le_bytes());
    let (t, s, _) = setup(dir.path(), &m, &[0.5; 2 * 64], 2);
    let (code, stderr) = stderr_of(bin().args(["rmse".as_ref(), t.as_os_str(), s.as_os_str()]));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("'net.bn2.running_var' (bn 2 (bn2)) has a negative value -0.25"), "{stderr}");
    assert!(!stderr.contains("is 0 at"), "{stderr}");
}
