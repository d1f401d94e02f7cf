//! Test helpers: the real binary, and tiny ONNX models built in Rust (seeded).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use onnx_protobuf::{
    attribute_proto::AttributeType, tensor_proto::DataLocation, tensor_shape_proto::Dimension, type_proto,
    AttributeProto, Message, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

/// The reuse-audit binary.
pub fn bin() -> Command {
    let mut c = Command::cargo_bin("reuse-audit").expect("binary built");
    c.env_remove("ORT_DYLIB_PATH");
    c
}

/// `reuse-audit audit TARGET SOURCE --data DATA --min-baseline 0`, ready for more flags.
/// The tiny fixtures have random weights and random labels: they do not segment anything,
/// so the baseline guard is off here (`guarded_audit_cmd` keeps it; its tests are in
/// `tests/baseline_guard.rs`).
pub fn audit_cmd(target: &Path, source: &Path, data: &Path) -> Command {
    let mut c = guarded_audit_cmd(target, source, data);
    c.args(["--min-baseline", "0"]);
    c
}

/// `reuse-audit audit TARGET SOURCE --data DATA` with the default baseline guard.
pub fn guarded_audit_cmd(target: &Path, source: &Path, data: &Path) -> Command {
    let mut c = bin();
    c.arg("audit").arg(target).arg(source).arg("--data").arg(data);
    c
}

/// An incremental audit into `out` with the environment variable `var` set to `value`:
/// its report.json without timing, and its stderr (the audit must succeed). The device
/// switches (`REUSE_AUDIT_REDUCE_ON_DEVICE`, `REUSE_AUDIT_CACHE_ON_DEVICE`) are A/B'd this way.
pub fn incremental_report(
    (t, s, data): (&Path, &Path, &Path),
    out: &Path,
    (var, value): (&str, &str),
    extra: &[&str],
) -> (Vec<u8>, String) {
    let o = audit_cmd(t, s, data)
        .args(["--strategy", "incremental", "--format", "json", "--out"])
        .arg(out)
        .args(extra)
        .env(var, value)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    (without_timing(&std::fs::read(out.join("report.json")).unwrap()), err)
}

/// A switch `var` A/B'd on one incremental audit: run with `0` and with `1`, the switched-on
/// run must print `on_says` (so the path under test ran), the other must not print
/// `off_lacks`, and the two reports must be the same bytes (timing aside).
pub fn same_report_either_way(
    (t, s, data): (&Path, &Path, &Path),
    var: &str,
    (on_says, off_lacks): (&str, &str),
    extra: &[&str],
    what: &str,
) {
    let dir = tempfile::tempdir().unwrap();
    let (off, e_off) = incremental_report((t, s, data), &dir.path().join("off"), (var, "0"), extra);
    let (on, e_on) = incremental_report((t, s, data), &dir.path().join("on"), (var, "1"), extra);
    assert!(e_on.contains(on_says), "{what}: {var}=1 did not take its path: {e_on}");
    assert!(!e_off.contains(off_lacks), "{what}: {var}=0: {e_off}");
    assert!(on == off, "{what}: the reports differ with {var}=1");
}

/// A pretty report.json (or `--json` output) without its `timing` block, the one part that
/// differs between runs on the same inputs; panics unless it held exactly one (every audit
/// reports its timing unless `--no-timing`). Everything else stays byte for byte.
pub fn without_timing(json: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(json).expect("report.json is UTF-8");
    let open = ",\n  \"timing\": {\n";
    assert_eq!(text.matches(open).count(), 1, "no single timing block in:\n{text}");
    let start = text.find(open).unwrap();
    let end = start + open.len() + text[start + open.len()..].find("\n  }").expect("the timing block ends") + 4;
    let mut out = text[..start].to_string();
    out.push_str(&text[end..]);
    out.into_bytes()
}

/// Repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Small seeded generator (xorshift), values in [-1, 1).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E3779B97F4A7C15) | 1)
    }
    pub fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next() * scale).collect()
    }
}

/// How a fixture stores its parameters.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Storage {
    /// float32 raw_data initializers.
    Raw,
    /// float32 `float_data` typed fields.
    Typed,
    /// float16 initializers (and a Cast to float32 before use is not needed: the model is fp16 end to end
    /// for parameters only; used for data-free commands).
    Fp16,
}

/// Options of the tiny CNN: conv1(1->4,3x3) BN1 Relu conv2(4->4,3x3) BN2 Relu convT3(4->4,2x2,s1?) ...
#[derive(Clone, Debug)]
pub struct Spec {
    pub seed: u64,
    /// Prefix of initializer names (different prefixes force position matching).
    pub prefix: String,
    pub storage: Storage,
    /// Drop BN nodes (as if folded at export).
    pub folded: bool,
    /// Route conv2's weight through an Identity node.
    pub identity_weight: bool,
    /// Give conv3's bias through a Constant node instead of an initializer.
    pub constant_bias: bool,
    /// Use ConvTranspose (1x1) for the last layer.
    pub transpose_last: bool,
    /// Extra conv layer (an architecture that differs).
    pub extra_conv: bool,
    /// Image size.
    pub size: i64,
    /// Export-style fixed batch of 1 instead of a dynamic batch.
    pub fixed_batch: bool,
    /// Input channels (1 unless a test needs colour).
    pub channels: i64,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            seed: 1,
            prefix: "net".into(),
            storage: Storage::Raw,
            folded: false,
            identity_weight: false,
            constant_bias: false,
            transpose_last: false,
            extra_conv: false,
            size: 8,
            fixed_batch: false,
            channels: 1,
        }
    }
}

pub fn tensor(name: &str, dims: &[i64], values: &[f32], storage: Storage) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.dims = dims.to_vec();
    match storage {
        Storage::Raw => {
            t.data_type = 1;
            t.raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        }
        Storage::Typed => {
            t.data_type = 1;
            t.float_data = values.to_vec();
        }
        Storage::Fp16 => {
            t.data_type = 10;
            t.raw_data = values.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect();
        }
    }
    t
}

pub fn value_info(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    let mut shape = TensorShapeProto::new();
    for d in dims {
        let mut dim = Dimension::new();
        match d {
            Some(v) => dim.set_dim_value(*v),
            None => dim.set_dim_param("N".into()),
        }
        shape.dim.push(dim);
    }
    let mut tt = type_proto::Tensor::new();
    tt.elem_type = 1;
    tt.shape = Some(shape).into();
    let mut ty = TypeProto::new();
    ty.set_tensor_type(tt);
    let mut v = ValueInfoProto::new();
    v.name = name.into();
    v.type_ = Some(ty).into();
    v
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INTS.into();
    a.ints = v.to_vec();
    a
}

pub fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    let mut n = NodeProto::new();
    n.op_type = op.into();
    n.name = name.into();
    n.input = inputs.iter().map(|s| s.to_string()).collect();
    n.output = outputs.iter().map(|s| s.to_string()).collect();
    n.attribute = attrs;
    n
}

/// Build the tiny CNN. Output: 3 classes at input resolution.
pub fn tiny_cnn(spec: &Spec) -> ModelProto {
    let mut rng = Rng::new(spec.seed);
    let p = &spec.prefix;
    let s = spec.storage;
    let mut g = onnx_protobuf::GraphProto::new();
    g.name = "tiny".into();
    let mut inits = Vec::new();
    let mut nodes = Vec::new();
    let mut cur = "x".to_string();
    let cin = spec.channels;
    let widths: Vec<(i64, i64)> = if spec.extra_conv { vec![(cin, 4), (4, 4), (4, 4)] } else { vec![(cin, 4), (4, 4)] };
    for (i, (cin, cout)) in widths.iter().enumerate() {
        let l = i + 1;
        let w = format!("{p}.conv{l}.weight");
        let b = format!("{p}.conv{l}.bias");
        inits.push(tensor(&w, &[*cout, *cin, 3, 3], &rng.vec((cout * cin * 9) as usize, 0.6), s));
        inits.push(tensor(&b, &[*cout], &rng.vec(*cout as usize, 0.2), s));
        let w_in = if spec.identity_weight && l == 2 {
            nodes.push(node("Identity", "id_w2", &[&w], &["w2_alias"], vec![]));
            "w2_alias".to_string()
        } else {
            w
        };
        let out = format!("conv{l}_out");
        nodes.push(node(
            "Conv",
            &format!("conv{l}"),
            &[&cur, &w_in, &b],
            &[&out],
            vec![ints("pads", &[1, 1, 1, 1]), ints("kernel_shape", &[3, 3])],
        ));
        cur = out;
        if !spec.folded {
            let names = ["weight", "bias", "running_mean", "running_var"].map(|k| format!("{p}.bn{l}.{k}"));
            let c = *cout as usize;
            let gamma: Vec<f32> = rng.vec(c, 0.3).iter().map(|v| 1.0 + v).collect();
            let var: Vec<f32> = rng.vec(c, 0.4).iter().map(|v| 1.0 + v).collect();
            inits.push(tensor(&names[0], &[*cout], &gamma, s));
            inits.push(tensor(&names[1], &[*cout], &rng.vec(c, 0.2), s));
            inits.push(tensor(&names[2], &[*cout], &rng.vec(c, 0.3), s));
            inits.push(tensor(&names[3], &[*cout], &var, s));
            let out = format!("bn{l}_out");
            let mut eps = AttributeProto::new();
            eps.name = "epsilon".into();
            eps.type_ = AttributeType::FLOAT.into();
            eps.f = 1e-5;
            nodes.push(node(
                "BatchNormalization",
                &format!("bn{l}"),
                &[&cur, &names[0], &names[1], &names[2], &names[3]],
                &[&out],
                vec![eps],
            ));
            cur = out;
        }
        let out = format!("relu{l}_out");
        nodes.push(node("Relu", &format!("relu{l}"), &[&cur], &[&out], vec![]));
        cur = out;
    }
    let l = widths.len() + 1;
    let w = format!("{p}.head.weight");
    let b = format!("{p}.head.bias");
    let (op, wdims) = if spec.transpose_last { ("ConvTranspose", [4, 3, 1, 1]) } else { ("Conv", [3, 4, 1, 1]) };
    inits.push(tensor(&w, &wdims, &rng.vec(12, 0.8), s));
    let bias_vals = rng.vec(3, 0.1);
    if spec.constant_bias {
        let mut a = AttributeProto::new();
        a.name = "value".into();
        a.type_ = AttributeType::TENSOR.into();
        a.t = Some(tensor(&b, &[3], &bias_vals, s)).into();
        nodes.push(node("Constant", "head_bias_const", &[], &[&b], vec![a]));
    } else {
        inits.push(tensor(&b, &[3], &bias_vals, s));
    }
    nodes.push(node(op, &format!("conv{l}"), &[&cur, &w, &b], &["y"], vec![ints("kernel_shape", &[1, 1])]));
    g.node = nodes;
    g.initializer = inits;
    let batch = spec.fixed_batch.then_some(1);
    g.input.push(value_info("x", &[batch, Some(cin), Some(spec.size), Some(spec.size)]));
    g.output.push(value_info("y", &[batch, Some(3), Some(spec.size), Some(spec.size)]));
    let mut m = ModelProto::new();
    m.ir_version = 8;
    m.producer_name = "reuse-audit tests".into();
    let mut op = OperatorSetIdProto::new();
    op.version = 17;
    m.opset_import.push(op);
    m.graph = Some(g).into();
    m
}

/// Write a model to `dir/name`.
pub fn save(m: &ModelProto, dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, m.write_to_bytes().expect("serialize")).expect("write model");
    p
}

/// Move every initializer's data to `dir/<data_name>` (external data), with `location` as written.
pub fn externalize(m: &mut ModelProto, dir: &Path, data_name: &str, location: &str) {
    let mut blob = Vec::new();
    for t in m.graph.as_mut().expect("graph").initializer.iter_mut() {
        let offset = blob.len();
        blob.extend_from_slice(&t.raw_data);
        let kv = |k: &str, v: String| {
            let mut e = StringStringEntryProto::new();
            e.key = k.into();
            e.value = v;
            e
        };
        t.external_data = vec![
            kv("location", location.into()),
            kv("offset", offset.to_string()),
            kv("length", t.raw_data.len().to_string()),
        ];
        t.raw_data.clear();
        t.data_location = DataLocation::EXTERNAL.into();
    }
    std::fs::write(dir.join(data_name), blob).expect("write data");
}

/// Set an initializer's float32 values (raw storage).
pub fn set_init(m: &mut ModelProto, name: &str, f: impl Fn(usize, f32) -> f32) {
    let t = m
        .graph
        .as_mut()
        .expect("graph")
        .initializer
        .iter_mut()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no initializer {name}"));
    let vals: Vec<f32> = t.raw_data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    t.raw_data = vals.iter().enumerate().flat_map(|(i, v)| f(i, *v).to_le_bytes()).collect();
}

/// An `.npz` with `images` (n x 1 x s x s float32, seeded) and optionally `labels`.
pub fn npz(path: &Path, n: usize, size: usize, labels: Option<&[u8]>, seed: u64) {
    use std::io::Write;
    let mut rng = Rng::new(seed);
    let images = rng.vec(n * size * size, 2.0);
    let file = std::fs::File::create(path).expect("create npz");
    let mut zip = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default();
    zip.start_file("images.npy", opts).expect("zip");
    zip.write_all(&reuse_audit::data::npy::npy_f32_bytes(&[n, 1, size, size], &images)).expect("zip");
    if let Some(l) = labels {
        zip.start_file("labels.npy", opts).expect("zip");
        zip.write_all(&reuse_audit::data::npy::npy_bytes("|u1", &[n, size, size], l)).expect("zip");
    }
    zip.finish().expect("zip");
}

/// Give a tiny CNN a one-channel head: a fixed 1x1 conv of its 3 channels into one logit,
/// then, with `sigmoid`, a `Sigmoid` (probabilities), as binary segmentation models end.
pub fn one_channel_head(m: &mut ModelProto, sigmoid: bool, size: i64) {
    let g = m.graph.as_mut().expect("graph");
    let batch = value_dims_of(&g.output[0]);
    g.initializer.push(tensor("head.weight", &[1, 3, 1, 1], &[1.0, -0.5, 0.25], Storage::Raw));
    g.initializer.push(tensor("head.bias", &[1], &[0.05], Storage::Raw));
    g.node.push(node("Conv", "head", &["y", "head.weight", "head.bias"], &["logit"], vec![]));
    let out = if sigmoid {
        g.node.push(node("Sigmoid", "prob", &["logit"], &["prob"], vec![]));
        "prob"
    } else {
        "logit"
    };
    g.output.clear();
    g.output.push(value_info(out, &[batch, Some(1), Some(size), Some(size)]));
}

fn value_dims_of(v: &ValueInfoProto) -> Option<i64> {
    use onnx_protobuf::tensor_shape_proto::dimension::Value;
    match &v.type_.tensor_type().shape.dim.first()?.value {
        Some(Value::DimValue(n)) => Some(*n),
        _ => None,
    }
}

/// Append a 1x1 conv (3 -> 3 channels, seeded weights) after a tiny CNN's output; the
/// graph's output moves to it.
pub fn append_conv1x1(m: &mut ModelProto, name: &str, seed: u64) {
    let mut rng = Rng::new(seed);
    let g = m.graph.as_mut().expect("graph");
    let out = g.output[0].name.clone();
    let next = format!("{name}_out");
    let (w, b) = (format!("{name}.weight"), format!("{name}.bias"));
    g.initializer.push(tensor(&w, &[3, 3, 1, 1], &rng.vec(9, 0.5), Storage::Raw));
    g.initializer.push(tensor(&b, &[3], &rng.vec(3, 0.1), Storage::Raw));
    g.node.push(node("Conv", name, &[&out, &w, &b], &[&next], vec![ints("kernel_shape", &[1, 1])]));
    g.output[0].name = next;
}

/// Remove one BatchNormalization node, wiring its input straight to its consumers.
pub fn drop_bn(m: &mut ModelProto, node_name: &str) {
    let g = m.graph.as_mut().expect("graph");
    let i = g.node.iter().position(|n| n.name == node_name).unwrap_or_else(|| panic!("no node {node_name}"));
    let bn = g.node.remove(i);
    for n in g.node.iter_mut() {
        for input in n.input.iter_mut() {
            if *input == bn.output[0] {
                *input = bn.input[0].clone();
            }
        }
    }
}

/// The model as tf2onnx exports a Keras model by default: a channels-last input
/// `x_nhwc` (N x H x W x C) -> `Transpose(perm=[0,3,1,2])` -> the same network ->
/// `Transpose(perm=[0,2,3,1])` -> a channels-last output `y_nhwc` (N x H x W x classes).
/// Same weights, same declared sizes (permuted).
pub fn channels_last(m: &ModelProto) -> ModelProto {
    let mut m = m.clone();
    let g = m.graph.as_mut().expect("graph");
    let (x, y) = (g.input[0].name.clone(), g.output[0].name.clone());
    let permute = |v: &ValueInfoProto, name: &str| {
        let mut v = v.clone();
        v.name = name.into();
        let dims = &mut v.type_.as_mut().expect("type").mut_tensor_type().shape.as_mut().expect("shape").dim;
        let c = dims.remove(1);
        dims.push(c);
        v
    };
    g.input[0] = permute(&g.input[0], "x_nhwc");
    g.output[0] = permute(&g.output[0], "y_nhwc");
    g.node.insert(0, node("Transpose", "to_nchw", &["x_nhwc"], &[&x], vec![ints("perm", &[0, 3, 1, 2])]));
    g.node.push(node("Transpose", "to_nhwc", &[&y], &["y_nhwc"], vec![ints("perm", &[0, 2, 3, 1])]));
    m
}

/// Give a tiny CNN a total stride of 2: `MaxPool(2x2, stride 2)` after the first block and
/// a nearest `Resize` x2 before the head, so only even sizes come back at their own size.
pub fn strided(m: &mut ModelProto) {
    let g = m.graph.as_mut().expect("graph");
    let rewire = |g: &mut onnx_protobuf::GraphProto, from: &str, to: &str| {
        for n in g.node.iter_mut().filter(|n| n.op_type != "MaxPool" && n.op_type != "Resize") {
            for i in n.input.iter_mut().filter(|i| *i == from) {
                *i = to.into();
            }
        }
    };
    rewire(g, "relu1_out", "pool1_out");
    rewire(g, "relu2_out", "up_out");
    let pool = node(
        "MaxPool",
        "pool1",
        &["relu1_out"],
        &["pool1_out"],
        vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
    );
    let at = g.node.iter().position(|n| n.name == "relu1").expect("relu1") + 1;
    g.node.insert(at, pool);
    g.initializer.push(tensor("up.scales", &[4], &[1.0, 1.0, 2.0, 2.0], Storage::Raw));
    let at = g.node.iter().position(|n| n.name == "relu2").expect("relu2") + 1;
    g.node.insert(at, node("Resize", "up", &["relu2_out", "", "up.scales"], &["up_out"], vec![]));
}

/// Make the height and width of a channels-first model's input and output free (`H`, `W`).
pub fn free_spatial(m: &mut ModelProto) {
    let g = m.graph.as_mut().expect("graph");
    for v in g.input.iter_mut().chain(g.output.iter_mut()) {
        let dims = &mut v.type_.as_mut().expect("type").mut_tensor_type().shape.as_mut().expect("shape").dim;
        dims[2].set_dim_param("H".into());
        dims[3].set_dim_param("W".into());
    }
}

/// An `.npz` with float32 `images` of any shape and optionally uint8 `labels` of any shape.
pub fn npz_arrays(path: &Path, shape: &[usize], images: &[f32], labels: Option<(&[usize], &[u8])>) {
    use std::io::Write;
    let file = std::fs::File::create(path).expect("create npz");
    let mut zip = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default();
    zip.start_file("images.npy", opts).expect("zip");
    zip.write_all(&reuse_audit::data::npy::npy_f32_bytes(shape, images)).expect("zip");
    if let Some((shape, l)) = labels {
        zip.start_file("labels.npy", opts).expect("zip");
        zip.write_all(&reuse_audit::data::npy::npy_bytes("|u1", shape, l)).expect("zip");
    }
    zip.finish().expect("zip");
}

/// A target and a source of the tiny CNN (seeds 1 and 2: every swap runs) and `images`
/// unlabelled 8x8 images, in a temporary folder that lives as long as the value.
pub struct Tiny {
    pub dir: tempfile::TempDir,
    pub t: PathBuf,
    pub s: PathBuf,
    pub data: PathBuf,
}

/// [`Tiny`] with `images` images.
pub fn tiny_pair(images: usize) -> Tiny {
    let dir = tempfile::tempdir().unwrap();
    let t = save(&tiny_cnn(&Spec::default()), dir.path(), "t.onnx");
    let s = save(&tiny_cnn(&Spec { seed: 2, ..Spec::default() }), dir.path(), "s.onnx");
    let data = dir.path().join("val.npz");
    npz(&data, images, 8, None, 3);
    Tiny { dir, t, s, data }
}
