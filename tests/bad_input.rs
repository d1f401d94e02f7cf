//! Bad input: each gets a clear message naming the file/layer/flag, exit code 2, and no report.

mod common;

use common::*;
use predicates::prelude::*;

fn fails_with(cmd: &mut assert_cmd::Command, needle: &str) {
    cmd.assert().code(2).stderr(predicate::str::contains(needle)).stderr(predicate::str::contains("panicked").not());
}

#[test]
fn missing_model_file() {
    fails_with(bin().args(["inspect", "no/such/model.onnx"]), "no/such/model.onnx");
    fails_with(bin().args(["rmse", "a.onnx", "b.onnx"]), "cannot read a.onnx");
}

#[test]
fn truncated_and_corrupt_protobuf() {
    let dir = tempfile::tempdir().unwrap();
    let good = save(&tiny_cnn(&Spec::default()), dir.path(), "good.onnx");
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.path().join("cut.onnx");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    fails_with(bin().arg("inspect").arg(&cut), "cut.onnx");
    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, b"this is not a protobuf at all \xff\xff\xff\xff").unwrap();
    fails_with(bin().arg("inspect").arg(&junk), "junk.onnx");
    let empty = dir.path().join("empty.onnx");
    std::fs::write(&empty, b"").unwrap();
    fails_with(bin().arg("inspect").arg(&empty), "no graph nodes");
}

#[test]
fn external_data_missing_or_outside_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("model");
    std::fs::create_dir(&sub).unwrap();
    let mut m = tiny_cnn(&Spec::default());
    externalize(&mut m, &sub, "w.data", "w.data");
    let p = save(&m, &sub, "m.onnx");
    std::fs::remove_file(sub.join("w.data")).unwrap();
    fails_with(bin().arg("inspect").arg(&p), "cannot read external data");

    // A location with `..` that points at a real file outside the model's folder.
    let mut m = tiny_cnn(&Spec::default());
    externalize(&mut m, dir.path(), "outside.data", "../outside.data");
    let p = save(&m, &sub, "escape.onnx");
    fails_with(bin().arg("inspect").arg(&p), "outside the model's folder");
    let mut m = tiny_cnn(&Spec::default());
    externalize(&mut m, dir.path(), "abs.data", "/etc/passwd");
    let p = save(&m, &sub, "abs.onnx");
    fails_with(bin().arg("inspect").arg(&p), "outside the model's folder");
}

#[test]
fn external_data_key_given_twice_was_read_from_the_last() {
    // Two `location`s: ONNX Runtime refuses the file, `rmse` read the second one and gave
    // its numbers; two `length`s: ONNX Runtime reads the first, the tool took the last.
    let dir = tempfile::tempdir().unwrap();
    for (key, extra) in [("location", "other.data"), ("offset", "4"), ("length", "0")] {
        let mut m = tiny_cnn(&Spec::default());
        externalize(&mut m, dir.path(), "w.data", "w.data");
        std::fs::write(dir.path().join("other.data"), vec![0u8; 1 << 16]).unwrap();
        let t = &mut m.graph.as_mut().unwrap().initializer[0];
        let mut e = onnx_protobuf::StringStringEntryProto::new();
        (e.key, e.value) = (key.into(), extra.into());
        t.external_data.push(e);
        let p = save(&m, dir.path(), "twice.onnx");
        let s = save(&tiny_cnn(&Spec::default()), dir.path(), "s.onnx");
        let want = format!("twice.onnx: tensor 'net.conv1.weight': external data gives '{key}' twice");
        fails_with(bin().arg("rmse").arg(&p).arg(&s), &want);
    }
    // A value that is not a number names the tensor and the value.
    let mut m = tiny_cnn(&Spec::default());
    externalize(&mut m, dir.path(), "w.data", "w.data");
    m.graph.as_mut().unwrap().initializer[0].external_data[1].value = "-0".into();
    let p = save(&m, dir.path(), "minus.onnx");
    fails_with(bin().arg("inspect").arg(&p), "tensor 'net.conv1.weight': external data offset '-0'");
}

/// A FIFO at `path` (no writer: reading it waits forever).
fn fifo(path: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
}

#[test]
fn external_data_fifo_or_symlink_out_was_read_before_it_was_checked() {
    // The location was read whole, then checked: a FIFO (or /dev/zero) never ends, and a
    // symlink out of the folder was read before it was refused. Now checked first.
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("model");
    std::fs::create_dir(&sub).unwrap();
    let inspect = |name: &str| {
        let mut m = tiny_cnn(&Spec::default());
        externalize(&mut m, dir.path(), "unused.data", name);
        let p = save(&m, &sub, &format!("{name}.onnx"));
        let mut c = bin();
        c.arg("inspect").arg(p).timeout(std::time::Duration::from_secs(60));
        c
    };
    fifo(&sub.join("pipe.data"));
    fails_with(&mut inspect("pipe.data"), "external data");
    fails_with(&mut inspect("pipe.data"), "is not a regular file");
    fifo(&dir.path().join("outside-pipe"));
    std::os::unix::fs::symlink(dir.path().join("outside-pipe"), sub.join("link.data")).unwrap();
    fails_with(&mut inspect("link.data"), "resolves outside the model's folder");
    std::os::unix::fs::symlink("/dev/zero", sub.join("zero.data")).unwrap();
    fails_with(&mut inspect("zero.data"), "resolves outside the model's folder");
    // A symlink inside the folder to a file inside it is read as that file.
    let mut m = tiny_cnn(&Spec::default());
    externalize(&mut m, &sub, "real.data", "alias.data");
    std::os::unix::fs::symlink(sub.join("real.data"), sub.join("alias.data")).unwrap();
    let p = save(&m, &sub, "alias.onnx");
    bin().arg("inspect").arg(p).assert().success();
}

#[test]
fn different_architectures_name_the_first_divergence() {
    let dir = tempfile::tempdir().unwrap();
    let a = save(&tiny_cnn(&Spec::default()), dir.path(), "a.onnx");
    let b = save(&tiny_cnn(&Spec { extra_conv: true, prefix: "x".into(), ..Spec::default() }), dir.path(), "b.onnx");
    fails_with(bin().arg("rmse").arg(&a).arg(&b), "first divergence at conv 3");
}

#[test]
fn nan_weight_is_reported_not_propagated() {
    let dir = tempfile::tempdir().unwrap();
    let t = tiny_cnn(&Spec::default());
    let mut s = t.clone();
    set_init(&mut s, "net.conv2.weight", |i, v| if i == 7 { f32::NAN } else { v });
    let (a, b) = (save(&t, dir.path(), "t.onnx"), save(&s, dir.path(), "s.onnx"));
    let out = dir.path().join("out");
    bin().arg("rmse").arg(&a).arg(&b).arg("--out").arg(&out).assert().code(2).stderr(
        predicate::str::contains("net.conv2.weight")
            .and(predicate::str::contains("NaN"))
            .and(predicate::str::contains("s.onnx")),
    );
    assert!(!out.exists(), "no report may be written");
}

#[test]
fn bad_flags() {
    let dir = tempfile::tempdir().unwrap();
    let a = save(&tiny_cnn(&Spec::default()), dir.path(), "a.onnx");
    fails_with(bin().arg("rmse").arg(&a).arg(&a).args(["--kinds", "W,XX"]), "--kinds");
    fails_with(bin().arg("rmse").arg(&a).arg(&a).args(["--match", "nosuchmap.csv"]), "nosuchmap.csv");
    // Out-of-range values, on `audit` (rmse refuses these flags whatever their value, so
    // there they would check nothing about the range).
    let t = tiny_pair(2);
    fails_with(audit_cmd(&t.t, &t.s, &t.data).args(["--tolerance=-1"]), "-1 is not a finite number >= 0");
    fails_with(audit_cmd(&t.t, &t.s, &t.data).args(["--rn-threshold", "2"]), "2 is not in [0, 1]");
}

/// Regression: `rmse --tolerance 0.05` (or `--rn-threshold`) was accepted and changed
/// nothing (rmse has no Dice, so no verdict); now refused naming the flag. `audit` still
/// takes them and still refuses a bad value.
#[test]
fn rmse_tolerance_was_accepted_and_ignored() {
    let t = tiny_pair(2);
    fails_with(bin().arg("rmse").arg(&t.t).arg(&t.s).args(["--tolerance", "0.05"]), "--tolerance");
    fails_with(bin().arg("rmse").arg(&t.t).arg(&t.s).args(["--rn-threshold", "0.6"]), "--rn-threshold");
    fails_with(audit_cmd(&t.t, &t.s, &t.data).args(["--tolerance=-1"]), "--tolerance");
    bin().arg("rmse").arg(&t.t).arg(&t.s).arg("-q").assert().success();
}

#[test]
fn inspect_flops_size_on_a_fixed_model_showed_the_runtime_error() {
    let m = root().join("models").join("unet-acdc-seg.onnx");
    bin()
        .args(["inspect", "--flops", "--size", "32x32"])
        .arg(&m)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unet-acdc-seg.onnx").and(predicate::str::contains("fixed at 64x64")));
}

#[test]
fn preloaded_engine_prints_no_threads_note_for_an_audit_that_fails_on_its_data() {
    // Regression: ONNX Runtime loads on a thread while the data is read, and that thread
    // printed `note: --threads N is more than ...` even when the audit then failed on its data
    // and never used the engine (and in any order with the main thread's lines). The note
    // comes when the engine is taken, as before the preload.
    let dir = tempfile::tempdir().unwrap();
    let t = save(&tiny_cnn(&Spec::default()), dir.path(), "t.onnx");
    let s = save(&tiny_cnn(&Spec { seed: 2, ..Spec::default() }), dir.path(), "s.onnx");
    let bad = dir.path().join("bad.npz");
    std::fs::write(&bad, b"not a zip archive").unwrap();
    let out = audit_cmd(&t, &s, &bad).args(["--threads", "10000"]).output().unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(e.contains("bad.npz") && !e.contains("panicked"), "{e}");
    assert!(!e.contains("note: --threads"), "{e}");
}

#[test]
fn half_precision_export_was_refused_at_its_float16_input() {
    // Regression: a `model.half()` export got "input 'x' is float16; the audit feeds float32
    // images". It is audited in float32 now (tests/half_precision.rs checks the numbers);
    // an input type that is not a float type the weights can be upcast from still stops.
    let dir = tempfile::tempdir().unwrap();
    let typed = |seed, storage, elem| {
        let mut m = tiny_cnn(&Spec { seed, storage, ..Spec::default() });
        let g = m.graph.as_mut().unwrap();
        g.input[0].type_.as_mut().unwrap().mut_tensor_type().elem_type = elem;
        g.output[0].type_.as_mut().unwrap().mut_tensor_type().elem_type = elem;
        m
    };
    let t = save(&typed(1, Storage::Fp16, 10), dir.path(), "t16.onnx");
    let s = save(&typed(2, Storage::Fp16, 10), dir.path(), "s16.onnx");
    let data = dir.path().join("val.npz");
    npz(&data, 4, 8, None, 3);
    let out = audit_cmd(&t, &s, &data).args(["--labels", "baseline"]).output().unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{e}");
    assert!(e.contains("t16.onnx: computes in float16: audited in float32"), "{e}");
    for (elem, name) in [(11, "float64"), (3, "int8")] {
        let t = save(&typed(1, Storage::Raw, elem), dir.path(), &format!("t-{name}.onnx"));
        fails_with(
            audit_cmd(&t, &t, &data).args(["--labels", "baseline"]),
            &format!("t-{name}.onnx: input 'x' is {name}; the audit feeds float32 images"),
        );
    }
}

#[test]
fn fifo_or_dev_zero_as_model_data_or_mapping_hung_or_grew_without_bound() {
    // Opening a FIFO waits for a writer forever, and `/dev/zero` never ends: reading either
    // whole hung the command (and grew its memory without bound). Refused before opening.
    let dir = tempfile::tempdir().unwrap();
    let m = save(&tiny_cnn(&Spec::default()), dir.path(), "m.onnx");
    let data = dir.path().join("val.npz");
    npz(&data, 2, 8, Some(&[1u8; 2 * 64]), 5);
    for name in ["pipe.onnx", "pipe.npz", "pipe.npy", "pipe.csv", "report.json"] {
        fifo(&dir.path().join(name));
    }
    for name in ["zero.onnx", "zero.npz"] {
        std::os::unix::fs::symlink("/dev/zero", dir.path().join(name)).unwrap();
    }
    let p = |name: &str| dir.path().join(name).into_os_string();
    let run = |args: Vec<std::ffi::OsString>, says: [&str; 2]| {
        let mut c = bin();
        c.args(args).timeout(std::time::Duration::from_secs(60));
        fails_with(&mut c, says[0]);
        fails_with(&mut c, says[1]);
    };
    let (m, data) = (m.into_os_string(), data.into_os_string());
    let audit = |d: std::ffi::OsString| vec!["audit".into(), m.clone(), m.clone(), "--data".into(), d];
    let fifo_says = "not a regular file (a FIFO";
    let device = "not a regular file (a device)";
    run(vec!["inspect".into(), p("pipe.onnx")], ["pipe.onnx", fifo_says]);
    run(vec!["rmse".into(), m.clone(), p("zero.onnx")], ["zero.onnx", device]);
    run(audit(p("pipe.npz")), ["pipe.npz", fifo_says]);
    run(audit(p("zero.npz")), ["zero.npz", device]);
    let mut labels = audit(p("pipe.npy"));
    labels.extend(["--labels".into(), "baseline".into()]);
    run(labels, ["pipe.npy", fifo_says]);
    let mut mapping = audit(data.clone());
    mapping.extend(["--match".into(), p("pipe.csv")]);
    run(mapping, ["pipe.csv", fifo_says]);
    let plan =
        vec!["plan".into(), m.clone(), m.clone(), "--report".into(), p("report.json"), "--out".into(), p("plan")];
    run(plan, ["report.json", fifo_says]);
    assert!(!dir.path().join("plan").exists());
}

/// Found and left: an initializer named like the graph input made every command that feeds
/// images say "the graph has no input" (ONNX reads such an initializer as the input's
/// default value), and `inspect` dropped the input line without a word.
#[test]
fn initializer_named_like_the_graph_input() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = tiny_cnn(&Spec::default());
    let g = m.graph.as_mut().unwrap();
    g.initializer.push(tensor("x", &[1, 1, 8, 8], &[0.0; 64], Storage::Raw));
    let p = save(&m, dir.path(), "shadowed.onnx");
    let says = [
        "shadowed.onnx",
        "the graph's input 'x' has an initializer of the same name [1, 1, 8, 8]",
        "remove the initializer 'x'",
    ];
    let inspect = bin().arg("inspect").arg(&p).assert().success();
    let text = String::from_utf8_lossy(&inspect.get_output().stdout).to_string();
    assert!(says.iter().all(|s| text.contains(s)) && !text.contains("input 'x':"), "{text}");
    let data = dir.path().join("val.npz");
    npz(&data, 2, 8, Some(&[0u8; 128]), 1);
    let good = save(&tiny_cnn(&Spec::default()), dir.path(), "good.onnx");
    let out = dir.path().join("out");
    let mut audit = audit_cmd(&p, &good, &data);
    audit.arg("--out").arg(&out);
    for s in says {
        fails_with(&mut audit, s);
    }
    assert!(!out.exists());
    fails_with(bin().args(["inspect", "--flops"]).arg(&p), says[1]);
}

/// A model with a second image input (a two-branch net, `forward(x, y)`) was fed only the
/// first: ONNX Runtime failed mid-run with "Missing Input: y". Now refused up front.
#[test]
fn two_input_model_failed_with_onnx_runtimes_missing_input() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = tiny_cnn(&Spec::default());
    let g = m.graph.as_mut().unwrap();
    g.input.push(value_info("guide", &[None, Some(1), Some(8), Some(8)]));
    let first = g.node.iter_mut().find(|n| n.op_type == "Relu").unwrap();
    let relu_in = first.input[0].clone();
    first.input[0] = "mixed".into();
    g.node.insert(0, node("Add", "mix", &[&relu_in, "guide"], &["mixed"], vec![]));
    g.node.rotate_left(1); // the Add after the node that makes its input: sorted on load anyway
    let t = save(&m, dir.path(), "two-in.onnx");
    let data = dir.path().join("val.npz");
    npz(&data, 4, 8, Some(&[0u8; 4 * 64]), 3);
    let out = dir.path().join("out");
    let mut cmd = audit_cmd(&t, &t, &data);
    fails_with(cmd.arg("--out").arg(&out), "two-in.onnx: the graph has 2 inputs ('x', 'guide')");
    assert!(!out.exists(), "no report");
    fails_with(bin().args(["inspect", "--flops"]).arg(&t), "the graph has 2 inputs");
}
