//! Corrupt or ambiguous ONNX files (issue 14): each is refused on load with exit 2, naming
//! the file and the tensor or node, before any size it declares is allocated.

mod common;

use std::path::Path;

use common::*;
use onnx_protobuf::ModelProto;

/// Run `args`, expect exit 2 with every needle in stderr and no panic; returns stderr.
fn refused(args: &[&std::ffi::OsStr], needles: &[&str]) -> String {
    let out = bin().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "'{n}' missing from: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn with_init(m: &mut ModelProto, name: &str, f: impl FnOnce(&mut onnx_protobuf::TensorProto)) {
    let g = m.graph.as_mut().unwrap();
    f(g.initializer.iter_mut().find(|t| t.name == name).unwrap());
}

/// `audit`, `rmse` and `inspect` of a target `bad` (source healthy) all refuse it.
fn every_command_refuses(dir: &Path, bad: &ModelProto, needles: &[&str]) {
    let t = save(bad, dir, "bad.onnx");
    let s = save(&tiny_cnn(&Spec { seed: 2, ..Spec::default() }), dir, "good.onnx");
    let data = dir.join("val.npz");
    npz(&data, 2, 8, Some(&[1u8; 2 * 64]), 5);
    let mut all = vec!["bad.onnx"];
    all.extend_from_slice(needles);
    refused(&["inspect".as_ref(), t.as_os_str()], &all);
    refused(&["rmse".as_ref(), s.as_os_str(), t.as_os_str()], &all);
    refused(&["audit".as_ref(), t.as_os_str(), s.as_os_str(), "--data".as_ref(), data.as_os_str()], &all);
}

#[test]
fn duplicate_initializer_names_gave_rmse_of_one_copy_and_dice_of_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = tiny_cnn(&Spec::default());
    // A second `net.conv1.weight` with other values: ONNX Runtime runs one, RMSE read the other.
    let g = m.graph.as_mut().unwrap();
    let mut copy = g.initializer.iter().find(|t| t.name == "net.conv1.weight").unwrap().clone();
    copy.raw_data = copy.raw_data.chunks_exact(4).flat_map(|_| 5.0f32.to_le_bytes()).collect();
    g.initializer.push(copy);
    every_command_refuses(dir.path(), &m, &["corrupt file", "'net.conv1.weight' is defined twice"]);
}

#[test]
fn initializer_named_like_a_node_output_was_ambiguous() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = tiny_cnn(&Spec::default());
    let g = m.graph.as_mut().unwrap();
    let mut t = g.initializer[0].clone();
    t.name = "relu1_out".into();
    g.initializer.push(t);
    every_command_refuses(dir.path(), &m, &["'relu1_out' is defined twice", "node 'relu1'"]);
}

/// A sparse tensor of shape `dims` listing every element: `values` (1-D) at indices 0..n.
fn every_element_sparse(dims: &[i64], values: onnx_protobuf::TensorProto) -> onnx_protobuf::SparseTensorProto {
    let n = dims.iter().product::<i64>();
    let mut sparse = onnx_protobuf::SparseTensorProto::new();
    sparse.dims = dims.to_vec();
    sparse.values = Some(values).into();
    let mut indices = onnx_protobuf::TensorProto::new();
    indices.data_type = 7;
    indices.dims = vec![n];
    indices.int64_data = (0..n).collect();
    sparse.indices = Some(indices).into();
    sparse
}

#[test]
fn sparse_initializer_named_like_a_dense_one_was_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = tiny_cnn(&Spec::default());
    // A sparse copy of `net.conv2.weight` holding 5.0 everywhere: ONNX Runtime warns that it
    // keeps one of the two, the tool read the dense one.
    let g = m.graph.as_mut().unwrap();
    let dense = g.initializer.iter().find(|t| t.name == "net.conv2.weight").unwrap();
    let n = dense.dims.iter().product::<i64>();
    let values = tensor("net.conv2.weight", &[n], &vec![5.0; n as usize], Storage::Raw);
    let sparse = every_element_sparse(&dense.dims, values);
    g.sparse_initializer.push(sparse);
    every_command_refuses(
        dir.path(),
        &m,
        &["corrupt file", "'net.conv2.weight' is defined twice", "initializer #7 and sparse initializer #1"],
    );
}

#[test]
fn dims_of_2_pow_40_read_as_a_shape_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = tiny_cnn(&Spec::default());
    with_init(&mut m, "net.conv2.weight", |t| t.dims = vec![1 << 40]);
    let e = refused(
        &[
            "rmse".as_ref(),
            save(&tiny_cnn(&Spec::default()), dir.path(), "t.onnx").as_os_str(),
            save(&m, dir.path(), "s.onnx").as_os_str(),
        ],
        &["s.onnx", "corrupt file", "'net.conv2.weight'", "[1099511627776]"],
    );
    assert!(!e.contains("vs source"), "not a pairing mismatch: {e}");
    every_command_refuses(dir.path(), &m, &["corrupt file", "'net.conv2.weight'"]);
}

#[test]
fn overflowing_dims_were_a_shape_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = tiny_cnn(&Spec::default());
    // 2^32 * 2^32 * 4 wraps to 0 in 64 bits.
    with_init(&mut m, "net.conv2.weight", |t| t.dims = vec![1 << 32, 1 << 32, 4]);
    every_command_refuses(dir.path(), &m, &["corrupt file", "'net.conv2.weight'", "2^40"]);
}

#[test]
fn negative_dims_were_a_shape_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = tiny_cnn(&Spec::default());
    with_init(&mut m, "net.bn1.running_var", |t| t.dims = vec![-4]);
    every_command_refuses(dir.path(), &m, &["corrupt file", "'net.bn1.running_var'", "negative"]);
}

#[test]
fn data_shorter_than_the_dims_is_a_corrupt_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = tiny_cnn(&Spec::default());
    with_init(&mut m, "net.conv1.bias", |t| t.raw_data.truncate(8));
    every_command_refuses(dir.path(), &m, &["corrupt file", "'net.conv1.bias'", "holds 8 bytes", "16 bytes"]);
}

#[test]
fn huge_dims_with_external_data_are_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = tiny_cnn(&Spec::default());
    externalize(&mut m, dir.path(), "w.data", "w.data");
    with_init(&mut m, "net.conv1.weight", |t| {
        t.dims = vec![1 << 20, 1 << 20, 1 << 20];
        t.external_data.retain(|kv| kv.key != "length");
    });
    let p = save(&m, dir.path(), "ext.onnx");
    refused(&["inspect".as_ref(), p.as_os_str()], &["ext.onnx", "corrupt file", "'net.conv1.weight'", "2^40"]);
}

#[test]
fn cyclic_graph_was_accepted_by_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = tiny_cnn(&Spec::default());
    // relu1 now reads relu2's output: conv2 -> bn2 -> relu2 -> relu1 -> conv2.
    let g = m.graph.as_mut().unwrap();
    g.node.iter_mut().find(|n| n.name == "relu1").unwrap().input[0] = "relu2_out".into();
    let e = refused(&["inspect".as_ref(), save(&m, dir.path(), "cycle.onnx").as_os_str()], &["cycle.onnx", "cycle"]);
    assert!(["relu1", "conv2", "bn2", "relu2"].iter().any(|n| e.contains(&format!("node '{n}'"))), "{e}");
    every_command_refuses(dir.path(), &m, &["has a cycle"]);
}

#[test]
fn nodes_listed_out_of_topological_order_were_numbered_in_file_order() {
    // ONNX Runtime sorts the nodes itself and runs such a file; the tool numbered layers in
    // file order, so `conv 1` was the head and position pairing of a model with a reordered
    // copy of itself paired the head with the first conv (all but 2 of 6 unmatched by shape).
    let dir = tempfile::tempdir().unwrap();
    let t = tiny_cnn(&Spec::default());
    let mut s = tiny_cnn(&Spec { prefix: "other".into(), ..Spec::default() });
    s.graph.as_mut().unwrap().node.reverse();
    let (t, s) = (save(&t, dir.path(), "t.onnx"), save(&s, dir.path(), "reversed.onnx"));
    let inspect = bin().arg("inspect").arg(&s).output().unwrap();
    let text = String::from_utf8_lossy(&inspect.stdout);
    assert!(inspect.status.success(), "{}", String::from_utf8_lossy(&inspect.stderr));
    let first = text.lines().find(|l| l.trim_start().starts_with("conv ")).unwrap();
    assert!(first.contains("other.conv1.weight"), "{text}");
    let out = bin().arg("rmse").arg(&t).arg(&s).args(["--match", "position", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = r["rows"].as_array().unwrap();
    // 3 conv layers x (W, B) + 2 BN layers x 4: every one paired with its own copy.
    assert_eq!(rows.len(), 14, "{}", r["rows"]);
    for row in rows {
        let (ti, si) = (row["target_initializer"].as_str().unwrap(), row["source_initializer"].as_str().unwrap());
        assert_eq!(ti.strip_prefix("net."), si.strip_prefix("other."), "{row}");
        assert_eq!(row["rmse"], 0.0, "{row}");
    }
}

#[test]
fn bn_scale_shorter_than_its_statistics_dropped_the_layer_from_the_mrm_table() {
    // Both models' bn1 scale holds 3 values, its bias, mean and variance 4 (ONNX Runtime
    // refuses such a layer). The four paired by shape, and `rmse` left bn1 out of the
    // MRM/MRV/MRW/MRB table without a word, exit 0.
    let dir = tempfile::tempdir().unwrap();
    let short = |seed| {
        let mut m = tiny_cnn(&Spec { seed, ..Spec::default() });
        with_init(&mut m, "net.bn1.weight", |t| {
            t.dims = vec![3];
            t.raw_data.truncate(12);
        });
        m
    };
    let t = save(&short(1), dir.path(), "t.onnx");
    let s = save(&short(2), dir.path(), "s.onnx");
    for cmd in ["rmse", "matrix"] {
        refused(
            &[cmd.as_ref(), t.as_os_str(), s.as_os_str()],
            &["t.onnx", "bn 1 (bn1): its RM, RV, RW, RB hold 4, 4, 3, 4 values"],
        );
    }
}

#[test]
fn conv_kernel_of_2_pow_40_panicked_inside_the_onnx_runtime_binding() {
    // ONNX Runtime infers conv2's output with a negative size; the `ort` binding panicked
    // ("infallible") reading the session's output types instead of returning an error.
    let dir = tempfile::tempdir().unwrap();
    for attr in ["kernel_shape", "dilations"] {
        let mut m = tiny_cnn(&Spec::default());
        let conv2 = m.graph.as_mut().unwrap().node.iter_mut().find(|n| n.name == "conv2").unwrap();
        conv2.attribute.retain(|a| a.name != attr);
        let mut a = onnx_protobuf::AttributeProto::new();
        a.name = attr.into();
        a.type_ = onnx_protobuf::attribute_proto::AttributeType::INTS.into();
        a.ints = if attr == "kernel_shape" { vec![1 << 40, 3] } else { vec![1 << 40, 1] };
        conv2.attribute.push(a);
        let t = save(&m, dir.path(), "huge-kernel.onnx");
        let s = save(&tiny_cnn(&Spec { seed: 2, ..Spec::default() }), dir.path(), "s.onnx");
        let data = dir.path().join("val.npz");
        npz(&data, 2, 8, Some(&[1u8; 2 * 64]), 5);
        let needles = ["huge-kernel.onnx", "ONNX Runtime refused the model", "negative dimension"];
        refused(&["inspect".as_ref(), "--flops".as_ref(), t.as_os_str()], &needles);
        let out = dir.path().join("out");
        let args = ["audit".as_ref(), t.as_os_str(), s.as_os_str(), "--data".as_ref(), data.as_os_str()];
        refused(&[&args[..], &["--out".as_ref(), out.as_os_str()]].concat(), &needles);
        assert!(!out.exists(), "nothing written");
    }
}

#[test]
fn conv_weight_of_no_values_gave_rmse_0_and_cosine_1() {
    // A Conv weight of shape [0, 1, 3, 3] in both models (ONNX Runtime refuses the layer):
    // `rmse` printed RMSE 0, nRMSE 0, cosine 1 for it, a measurement of nothing.
    let dir = tempfile::tempdir().unwrap();
    let mut m = tiny_cnn(&Spec::default());
    with_init(&mut m, "net.conv1.weight", |t| {
        t.dims = vec![0, 1, 3, 3];
        t.raw_data.clear();
    });
    let (t, s) = (save(&m, dir.path(), "t.onnx"), save(&m, dir.path(), "s.onnx"));
    refused(
        &["rmse".as_ref(), t.as_os_str(), s.as_os_str()],
        &["t.onnx", "'net.conv1.weight' (conv 1 (conv1) W) has shape [0, 1, 3, 3], no values"],
    );
    let data = dir.path().join("val.npz");
    npz(&data, 2, 8, Some(&[1u8; 2 * 64]), 5);
    let args = ["audit".as_ref(), t.as_os_str(), s.as_os_str(), "--data".as_ref(), data.as_os_str()];
    refused(&args, &["t.onnx", "'net.conv1.weight'", "no values"]);
}

#[test]
fn weight_held_as_a_sparse_initializer_was_said_to_be_computed_in_the_graph() {
    // The conv2 weight stored only as a sparse initializer (every element listed): it is not
    // swapped, and the reason given was "computed in the graph, not a stored tensor".
    let dir = tempfile::tempdir().unwrap();
    let mut m = tiny_cnn(&Spec::default());
    let g = m.graph.as_mut().unwrap();
    let k = g.initializer.iter().position(|t| t.name == "net.conv2.weight").unwrap();
    let dense = g.initializer.remove(k);
    let mut values = dense.clone();
    values.dims = vec![dense.dims.iter().product::<i64>()];
    g.sparse_initializer.push(every_element_sparse(&dense.dims, values));
    let t = save(&m, dir.path(), "sparse.onnx");
    let o = bin().arg("inspect").arg(&t).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(text.contains("'net.conv2.weight' is a sparse initializer"), "{text}");
    assert!(!text.contains("'net.conv2.weight' is computed"), "{text}");
    let s = save(&tiny_cnn(&Spec { seed: 2, ..Spec::default() }), dir.path(), "s.onnx");
    let data = dir.path().join("val.npz");
    npz(&data, 4, 8, Some(&[1u8; 4 * 64]), 5);
    let out = dir.path().join("out");
    audit_cmd(&t, &s, &data).args(["-q", "--format", "json", "--out"]).arg(&out).assert().success();
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let reasons: Vec<&str> =
        report["not_audited"].as_array().unwrap().iter().filter_map(|r| r["reason"].as_str()).collect();
    assert!(reasons.iter().any(|r| r.contains("its weight is a sparse initializer")), "{reasons:?}");
}
