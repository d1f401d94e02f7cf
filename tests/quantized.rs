//! Quantized models (issue 11). QDQ convs (DequantizeLinear -> Conv) are audited: W is swapped
//! as its (quantized tensor, scale, zero point) triple and compared on dequantized values;
//! triples that cannot be swapped exactly (blocked, other types, mismatched layouts) are
//! listed with the reason. QLinearConv / ConvInteger layers are listed as not audited.

mod common;

use common::*;
use onnx_protobuf::{AttributeProto, ModelProto, TensorProto};
use reuse_audit::model::{layers, Kind, Model, ParamSource};
use serde_json::Value;

/// A QDQ triple for conv 2's 4x4x3x3 weight of the tiny CNN.
#[derive(Clone)]
struct Triple {
    /// ONNX element type of q and the zero point (2 uint8, 3 int8, 22 int4).
    ty: i32,
    q: Vec<i64>,
    /// One scale (per tensor) or 4 (per output channel, axis 0).
    scale: Vec<f32>,
    zp: Vec<i64>,
    attrs: Vec<(&'static str, i64)>,
}

impl Triple {
    /// Seeded int8 values, per-channel scales of powers of two (exact products).
    fn per_channel() -> Triple {
        Triple {
            ty: 3,
            q: (0..144).map(|i| (i * 37 % 255) - 127).collect(),
            scale: vec![0.25, 0.5, 0.125, 0.0625],
            zp: vec![1, -3, 0, 5],
            attrs: vec![("axis", 0)],
        }
    }

    fn per_tensor() -> Triple {
        Triple { scale: vec![0.05], zp: vec![1], attrs: vec![], ..Triple::per_channel() }
    }

    /// Dequantized by hand: (q - zp[c]) * scale[c], c the output channel (36 values each).
    fn dequantized(&self) -> Vec<f64> {
        let c = |i: usize| if self.scale.len() == 1 { 0 } else { i / 36 };
        self.q.iter().enumerate().map(|(i, &q)| ((q - self.zp[c(i)]) as f32 * self.scale[c(i)]) as f64).collect()
    }
}

fn ints(name: &str, ty: i32, dims: &[i64], v: &[i64]) -> TensorProto {
    let mut t = TensorProto::new();
    (t.name, t.data_type, t.dims) = (name.into(), ty, dims.to_vec());
    t.raw_data = v.iter().map(|&x| x as u8).collect();
    t
}

/// The tiny CNN with conv 2's weight stored as a QDQ triple.
fn qdq_conv2(t: &Triple) -> ModelProto {
    let mut m = tiny_cnn(&Spec::default());
    let g = m.graph.as_mut().unwrap();
    g.initializer.retain(|t| t.name != "net.conv2.weight");
    let dims: &[i64] = if t.scale.len() == 1 { &[] } else { &[4] };
    g.initializer.push(ints("w2_q", t.ty, &[4, 4, 3, 3], &t.q));
    g.initializer.push(tensor("w2_scale", dims, &t.scale, Storage::Raw));
    g.initializer.push(ints("w2_zp", t.ty, dims, &t.zp));
    let attrs = t
        .attrs
        .iter()
        .map(|(name, v)| {
            let mut a = AttributeProto::new();
            (a.name, a.i) = (name.to_string(), *v);
            a.type_ = onnx_protobuf::attribute_proto::AttributeType::INT.into();
            a
        })
        .collect();
    g.node.insert(0, node("DequantizeLinear", "w2_dq", &["w2_q", "w2_scale", "w2_zp"], &["net.conv2.weight"], attrs));
    m
}

fn json(cmd: &mut assert_cmd::Command) -> Value {
    serde_json::from_slice(&cmd.assert().success().get_output().stdout).expect("JSON report")
}

fn row<'a>(r: &'a Value, layer: u64, kind: &str) -> Option<&'a Value> {
    r["rows"].as_array().unwrap().iter().find(|x| x["family"] == "conv" && x["layer"] == layer && x["kind"] == kind)
}

#[test]
fn qdq_conv_weight_is_audited_as_its_triple() {
    let dir = tempfile::tempdir().unwrap();
    let p = save(&qdq_conv2(&Triple::per_tensor()), dir.path(), "q.onnx");
    let sc = layers::scan(&Model::load(&p).unwrap());
    assert!(sc.skipped.is_empty(), "{:?}", sc.skipped);
    let w = sc.layers.iter().find(|l| l.node == "conv2").unwrap().param(Kind::W).unwrap();
    assert_eq!((w.name.as_str(), &w.dims), ("w2_q", &vec![4, 4, 3, 3]));
    assert!(matches!(w.source, ParamSource::Dequantized(0)), "{:?}", w.source);
    let q = &sc.quantized;
    assert_eq!(q.len(), 1);
    assert_eq!((q[0].layer, q[0].node.as_str(), q[0].format, q[0].audited), (2, "conv2", "QDQ", true));
    let text = String::from_utf8(bin().arg("inspect").arg(&p).assert().success().get_output().stdout.clone()).unwrap();
    assert!(text.contains("1 quantized conv layer(s) (QDQ), 1 audited"), "{text}");
    assert!(!text.contains("not audited"), "{text}");
}

#[test]
fn qdq_rmse_is_on_dequantized_values_per_tensor_and_per_channel() {
    // Planted: the source's triple is the target's with every scale doubled, so its
    // dequantized weight is exactly 2 t: rmse = sqrt(mean(t^2)), nrmse = rmse / std(t), cosine 1.
    for target in [Triple::per_tensor(), Triple::per_channel()] {
        let dir = tempfile::tempdir().unwrap();
        let source = Triple { scale: target.scale.iter().map(|s| 2.0 * s).collect(), ..target.clone() };
        let t_path = save(&qdq_conv2(&target), dir.path(), "t.onnx");
        let s_path = save(&qdq_conv2(&source), dir.path(), "s.onnx");
        let r = json(bin().args(["rmse", "--json", "-q"]).arg(&t_path).arg(&s_path));
        let w = row(&r, 2, "W").unwrap_or_else(|| panic!("no conv 2 W row: {r}"));
        let t = target.dequantized();
        let n = t.len() as f64;
        let rms = (t.iter().map(|x| x * x).sum::<f64>() / n).sqrt();
        let mean = t.iter().sum::<f64>() / n;
        let std = (t.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt();
        let got = |k: &str| w[k].as_f64().unwrap();
        assert!((got("rmse") - rms).abs() <= 1e-12 * rms, "rmse {} vs {rms}", got("rmse"));
        assert!((got("nrmse") - rms / std).abs() <= 1e-12, "nrmse {} vs {}", got("nrmse"), rms / std);
        assert!((got("cosine") - 1.0).abs() <= 1e-12, "cosine {}", got("cosine"));
        assert_eq!(w["numel"], 144);
        assert_eq!(w["target_initializer"], "w2_q");
    }
}

#[test]
fn mismatched_triples_and_float_against_qdq_are_unmatched_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let t_path = save(&qdq_conv2(&Triple::per_tensor()), dir.path(), "t.onnx");
    let uint8 = Triple { ty: 2, q: Triple::per_tensor().q.iter().map(|q| q + 128).collect(), ..Triple::per_tensor() };
    let cases: [(&str, ModelProto, &str); 3] = [
        ("channel.onnx", qdq_conv2(&Triple::per_channel()), "per-channel (axis 0, 4 scales)"),
        ("uint8.onnx", qdq_conv2(&uint8), "uint8"),
        ("float.onnx", tiny_cnn(&Spec::default()), "the target's is quantized (QDQ), the source's is not"),
    ];
    for (name, source, why) in cases {
        let s_path = save(&source, dir.path(), name);
        let r = json(bin().args(["rmse", "--json", "-q", "--match", "position"]).arg(&t_path).arg(&s_path));
        assert!(row(&r, 2, "W").is_none(), "{name}: conv 2 W must not be compared");
        let u = r["unmatched"].as_array().unwrap();
        let w2 = u.iter().find(|u| u["kind"] == "W" && u["layer"].as_str().unwrap().starts_with("conv 2"));
        let reason = w2.unwrap_or_else(|| panic!("{name}: {u:?}"))["reason"].as_str().unwrap();
        assert!(reason.contains(why), "{name}: {reason}");
    }
}

#[test]
fn blocked_and_int4_qdq_weights_are_listed_as_not_audited() {
    let dir = tempfile::tempdir().unwrap();
    let blocked = Triple { attrs: vec![("axis", 0), ("block_size", 2)], ..Triple::per_channel() };
    let int4 = Triple { ty: 22, q: vec![0; 72], ..Triple::per_tensor() };
    for (name, t, why) in [("blocked", blocked, "block_size 2"), ("int4", int4, "int4")] {
        let mut m = qdq_conv2(&t);
        if name == "int4" {
            // Two int4 values per byte: 72 bytes for 144 values.
            let g = m.graph.as_mut().unwrap();
            g.initializer.iter_mut().find(|t| t.name == "w2_zp").unwrap().raw_data = vec![0];
        }
        let p = save(&m, dir.path(), &format!("{name}.onnx"));
        let sc = layers::scan(&Model::load(&p).unwrap());
        let conv2 = sc.layers.iter().find(|l| l.node == "conv2").unwrap();
        assert!(conv2.param(Kind::W).is_none() && sc.skipped.is_empty(), "{name}: {:?}", conv2.params);
        let q = &sc.quantized[0];
        assert!(!q.audited && q.reason.contains(why), "{name}: {}", q.reason);
        let out = bin().arg("inspect").arg(&p).assert().success().get_output().stdout.clone();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("not audited: conv2 (Conv, QDQ)"), "{name}: {text}");
    }
}

#[test]
fn qdq_tiny_audit_is_the_same_in_every_strategy_and_gets_a_verdict() {
    // Conv 2's W is the only quantized parameter: with it swapped, W was swapped in every conv
    // layer, so the RN verdict is given; naive (new model per swap) is the reference.
    let dir = tempfile::tempdir().unwrap();
    let t_path = save(&qdq_conv2(&Triple::per_channel()), dir.path(), "t.onnx");
    let other = Triple { q: Triple::per_channel().q.iter().map(|q| -q).collect(), ..Triple::per_channel() };
    let mut source = qdq_conv2(&other);
    for t in source.graph.as_mut().unwrap().initializer.iter_mut().filter(|t| t.data_type == 1) {
        let v: Vec<f32> = t.raw_data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        t.raw_data = v.iter().flat_map(|x| (x * 0.9 + 0.01).to_le_bytes()).collect();
    }
    let s_path = save(&source, dir.path(), "s.onnx");
    let data = dir.path().join("d.npz");
    let labels: Vec<u8> = (0..6 * 8 * 8).map(|i| (i % 3) as u8).collect();
    npz(&data, 6, 8, Some(&labels), 3);
    let run = |strategy: &str| {
        json(audit_cmd(&t_path, &s_path, &data).args(["--json", "-q", "--batch", "4", "--strategy", strategy]))
    };
    let naive = run("naive");
    assert!(naive["summary"]["rn"].is_boolean(), "W swapped in every conv layer: a verdict");
    assert!(row(&naive, 2, "W").unwrap()["swapped_dice"].is_number());
    assert_eq!(naive["target"]["quantized"][0]["audited"], true);
    for strategy in ["shared", "incremental"] {
        let r = run(strategy);
        assert_eq!(r["engine"]["strategy"], strategy, "no fallback");
        assert_eq!(r["baseline"], naive["baseline"], "{strategy}");
        for (a, b) in r["rows"].as_array().unwrap().iter().zip(naive["rows"].as_array().unwrap()) {
            assert_eq!(a["dice_class"], b["dice_class"], "{strategy}: {} {} {}", a["family"], a["layer"], a["kind"]);
        }
    }
}

#[test]
fn qdq_weight_gets_no_noise_budget_and_says_why() {
    // `--budget` searches every float parameter and names the quantized one it leaves out:
    // noise on dequantized values is not what the integer kernels compute.
    let dir = tempfile::tempdir().unwrap();
    let t_path = save(&qdq_conv2(&Triple::per_channel()), dir.path(), "t.onnx");
    let other = Triple { q: Triple::per_channel().q.iter().map(|q| -q).collect(), ..Triple::per_channel() };
    let s_path = save(&qdq_conv2(&other), dir.path(), "s.onnx");
    let data = dir.path().join("d.npz");
    let labels: Vec<u8> = (0..6 * 8 * 8).map(|i| (i % 3) as u8).collect();
    npz(&data, 6, 8, Some(&labels), 3);
    let r = json(audit_cmd(&t_path, &s_path, &data).args([
        "--json",
        "-q",
        "--budget",
        "--kinds",
        "W",
        "--families",
        "conv",
    ]));
    assert_eq!(r["engine"]["strategy"], "incremental");
    let q = row(&r, 2, "W").unwrap();
    assert!(q["rmse_budget"].is_null() && q["rmse_budget_next"].is_null() && q["within_budget"].is_null(), "{q}");
    assert!(q["budget_note"].as_str().unwrap().starts_with("quantized (QDQ) parameter"), "{q}");
    for layer in [1, 3] {
        let f = row(&r, layer, "W").unwrap();
        assert!(f["rmse_budget"].is_number() || f["rmse_budget_next"].is_number(), "float conv {layer}: searched {f}");
    }
    assert_eq!(r["budget"]["searched"], 2);
    assert_eq!(r["budget"]["strategy"], "incremental", "the float layers' probes run downstream only");
}

#[test]
fn qdq_weights_in_external_data_without_length_read_their_own_bytes() {
    // An int8 tensor in external data with no `length` key used to read to the end of the
    // file (its element type was not a float type the reader knew the size of).
    let dir = tempfile::tempdir().unwrap();
    let inline = save(&qdq_conv2(&Triple::per_channel()), dir.path(), "inline.onnx");
    let mut m = qdq_conv2(&Triple::per_channel());
    externalize(&mut m, dir.path(), "w.data", "w.data");
    for t in m.graph.as_mut().unwrap().initializer.iter_mut() {
        t.external_data.retain(|kv| kv.key != "length");
    }
    let external = save(&m, dir.path(), "external.onnx");
    let values = |p: &std::path::Path| {
        let m = Model::load(p).unwrap();
        let sc = layers::scan(&m);
        let w = sc.layers.iter().find(|l| l.node == "conv2").unwrap().param(Kind::W).unwrap().clone();
        m.values(&w).unwrap().iter().copied().collect::<Vec<f64>>()
    };
    let want = Triple::per_channel().dequantized();
    assert_eq!(values(&inline), want);
    assert_eq!(values(&external), want);
}

#[test]
fn qlinearconv_layers_are_named_as_not_audited() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = tiny_cnn(&Spec::default());
    let g = m.graph.as_mut().unwrap();
    for (i, n) in g.node.iter_mut().filter(|n| n.op_type == "Conv").enumerate() {
        n.op_type = if i == 0 { "QLinearConv".into() } else { "ConvInteger".into() };
    }
    let p = save(&m, dir.path(), "q.onnx");
    let sc = layers::scan(&Model::load(&p).unwrap());
    let listed: Vec<(usize, &str, &str)> = sc.quantized.iter().map(|q| (q.layer, q.node.as_str(), q.format)).collect();
    assert_eq!(listed, vec![(1, "conv1", "QOperator"), (2, "conv2", "dynamic"), (3, "conv3", "dynamic")]);
    assert!(sc.quantized.iter().all(|q| !q.audited && q.reason.contains("not implemented")));
}
