//! Channels-last exports (issue 11): a model wrapped the way tf2onnx exports Keras
//! (N x H x W x C input -> Transpose -> network -> Transpose -> N x H x W x classes output)
//! is the same function as the channels-first model it wraps, so its audit must give the
//! same numbers, whatever layout the data is stored in. And `--size` for free spatial dims.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use predicates::prelude::*;
use serde_json::Value;

const N: usize = 6;
const S: usize = 8;

fn audit_json(t: &Path, s: &Path, data: &Path, extra: &[&str]) -> Value {
    let out = audit_cmd(t, s, data).args(["--json", "-q"]).args(extra).assert().success().get_output().stdout.clone();
    serde_json::from_slice(&out).expect("JSON report")
}

/// Channels-first target/source pair with `channels` input channels, and their
/// channels-last exports (same weights).
fn models(dir: &Path, channels: i64) -> [PathBuf; 4] {
    let t = tiny_cnn(&Spec { channels, ..Spec::default() });
    let s = tiny_cnn(&Spec { seed: 8, channels, ..Spec::default() });
    [
        save(&t, dir, "t.onnx"),
        save(&s, dir, "s.onnx"),
        save(&channels_last(&t), dir, "t-nhwc.onnx"),
        save(&channels_last(&s), dir, "s-nhwc.onnx"),
    ]
}

/// Seeded images `N x c x S x S` (channels-first) with 3-class labels.
fn images(c: usize) -> (Vec<f32>, Vec<u8>) {
    let mut rng = Rng::new(11);
    let x = rng.vec(N * c * S * S, 2.0);
    let labels = (0..N * S * S).map(|_| ((rng.next() + 1.0) * 1.5).min(2.0) as u8).collect();
    (x, labels)
}

/// The same images as `N x S x S x c`.
fn to_nhwc(x: &[f32], c: usize) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    for n in 0..N {
        for ch in 0..c {
            for p in 0..S * S {
                out[(n * S * S + p) * c + ch] = x[(n * c + ch) * S * S + p];
            }
        }
    }
    out
}

/// The numbers of a report: baseline, then every row's swapped Dice.
fn numbers(r: &Value) -> (Value, Vec<Value>) {
    let rows = r["rows"].as_array().expect("rows");
    (r["baseline"].clone(), rows.iter().map(|row| row["swapped_dice"].clone()).collect())
}

#[test]
fn channels_last_export_audits_exactly_like_its_channels_first_model() {
    let d = tempfile::tempdir().unwrap();
    let [t, s, tl, sl] = models(d.path(), 3);
    let (x, labels) = images(3);
    let lab = Some((&[N, S, S][..], &labels[..]));
    let nchw = d.path().join("nchw.npz");
    npz_arrays(&nchw, &[N, 3, S, S], &x, lab);
    let nhwc = d.path().join("nhwc.npz");
    npz_arrays(&nhwc, &[N, S, S, 3], &to_nhwc(&x, 3), lab);
    for strategy in ["naive", "incremental"] {
        let reference = audit_json(&t, &s, &nchw, &["--strategy", strategy]);
        assert_eq!(reference["dataset"]["layout"], "nchw");
        assert_eq!(reference["engine"]["strategy"], strategy);
        let (base, swaps) = numbers(&reference);
        assert_eq!(swaps.len(), 14, "3 conv layers x (W, B) + 2 BN layers x 4");
        assert!(swaps.iter().all(Value::is_number));
        for data in [&nhwc, &nchw] {
            let r = audit_json(&tl, &sl, data, &["--strategy", strategy]);
            assert_eq!(r["dataset"]["layout"], "nhwc", "{strategy} {}", data.display());
            assert_eq!(r["engine"]["strategy"], strategy);
            assert_eq!((r["dataset"]["channels"].as_u64(), r["dataset"]["height"].as_u64()), (Some(3), Some(8)));
            assert_eq!(numbers(&r), (base.clone(), swaps.clone()), "{strategy} {}", data.display());
        }
    }
}

#[test]
fn one_channel_data_loads_as_n_h_w_either_channel_axis_and_feeds_a_channels_last_model() {
    let d = tempfile::tempdir().unwrap();
    let [t, s, tl, sl] = models(d.path(), 1);
    let (x, labels) = images(1);
    let lab = Some((&[N, S, S][..], &labels[..]));
    let files: Vec<PathBuf> = [vec![N, S, S], vec![N, 1, S, S], vec![N, S, S, 1]]
        .iter()
        .enumerate()
        .map(|(i, shape)| {
            let p = d.path().join(format!("d{i}.npz"));
            npz_arrays(&p, shape, &x, lab); // one channel: the same bytes in every layout
            p
        })
        .collect();
    let reference = numbers(&audit_json(&t, &s, &files[0], &["--strategy", "naive"]));
    for f in &files {
        assert_eq!(numbers(&audit_json(&t, &s, f, &["--strategy", "naive"])), reference, "{}", f.display());
        for strategy in ["naive", "incremental"] {
            let r = audit_json(&tl, &sl, f, &["--strategy", strategy]);
            assert_eq!(numbers(&r), reference, "{strategy} {}", f.display());
        }
    }
    // Forced back to channels-first, the model's N x 8 x 8 x 1 input reads as 8 channels of
    // 8 x 1: the data does not fit, and the error says which flag contradicts the graph.
    audit_cmd(&tl, &sl, &files[0])
        .args(["-q", "--layout", "nchw"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--layout nchw overrides what the model says"))
        .stderr(predicate::str::contains("Transpose 'to_nchw' perm [0, 3, 1, 2]"))
        .stderr(predicate::str::contains("8x8, the model takes 8x1"));
    // Forcing what the graph says changes nothing.
    let r = audit_json(&tl, &sl, &files[0], &["--strategy", "naive", "--layout", "nhwc"]);
    assert_eq!(numbers(&r), reference);
    // No layout warning (with this few images, only the one that the intervals are too narrow).
    let warnings: Vec<&str> = r["warnings"].as_array().unwrap().iter().filter_map(|w| w.as_str()).collect();
    assert!(warnings.iter().all(|w| w.starts_with("only ") && w.contains("validation image(s)")), "{warnings:?}");
}

/// A strided (total stride 2) target/source pair: fixed 8 x 8, and with free H x W.
fn strided_models(dir: &Path) -> [PathBuf; 4] {
    let mut t = tiny_cnn(&Spec::default());
    let mut s = tiny_cnn(&Spec { seed: 8, ..Spec::default() });
    strided(&mut t);
    strided(&mut s);
    let fixed = [save(&t, dir, "t8.onnx"), save(&s, dir, "s8.onnx")];
    free_spatial(&mut t);
    free_spatial(&mut s);
    [fixed[0].clone(), fixed[1].clone(), save(&t, dir, "t-free.onnx"), save(&s, dir, "s-free.onnx")]
}

#[test]
fn free_spatial_dims_take_size_and_refuse_a_size_off_the_stride() {
    let d = tempfile::tempdir().unwrap();
    let [t8, s8, tf, sf] = strided_models(d.path());
    let v10 = d.path().join("v10.npz");
    let mut rng = Rng::new(5);
    let labels: Vec<u8> = (0..N * 100).map(|_| u8::from(rng.next() > 0.2)).collect();
    npz(&v10, N, 10, Some(&labels), 3);
    // --size 8x8 on the free model = the fixed 8x8 model, data resized the same way.
    let fixed = audit_json(&t8, &s8, &v10, &["--fit", "resize", "--strategy", "naive"]);
    for strategy in ["naive", "incremental"] {
        let free = audit_json(&tf, &sf, &v10, &["--size", "8x8", "--fit", "resize", "--strategy", strategy]);
        assert_eq!(numbers(&free), numbers(&fixed), "{strategy}");
        assert_eq!((free["dataset"]["height"].as_u64(), free["dataset"]["width"].as_u64()), (Some(8), Some(8)));
    }
    // Without --size the data's own 10 x 10 (a multiple of 2) is fed.
    let own = audit_json(&tf, &sf, &v10, &["--strategy", "naive"]);
    assert_eq!(own["dataset"]["height"].as_u64(), Some(10));
    // 9 x 9 comes back 8 x 8: refused, naming the size and the stride.
    audit_cmd(&tf, &sf, &v10)
        .args(["-q", "--size", "9x9", "--fit", "resize"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("invalid value for --size: 9x9"))
        .stderr(predicate::str::contains("a 9x9 input to a 8x8 output"))
        .stderr(predicate::str::contains("multiples of the network's total stride, 2"));
    let v9 = d.path().join("v9.npz");
    npz(&v9, N, 9, Some(&labels[..N * 81]), 3);
    audit_cmd(&tf, &sf, &v9)
        .args(["-q"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("the data's images are 9x9"))
        .stderr(predicate::str::contains("pass --size HxW"));
    // A fixed-size model refuses another --size; a malformed one is a usage error.
    audit_cmd(&t8, &s8, &v10)
        .args(["-q", "--size", "16x16", "--fit", "resize"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is fixed at 8x8"));
    audit_cmd(&tf, &sf, &v10).args(["-q", "--size", "8"]).assert().code(2).stderr(predicate::str::contains("HxW"));
}

#[test]
fn channels_last_export_with_free_size_takes_size_too() {
    let d = tempfile::tempdir().unwrap();
    let [t8, s8, tf, sf] = strided_models(d.path());
    let tl = save(&channels_last(&onnx(&tf)), d.path(), "t-free-nhwc.onnx");
    let sl = save(&channels_last(&onnx(&sf)), d.path(), "s-free-nhwc.onnx");
    let v10 = d.path().join("v10.npz");
    let mut rng = Rng::new(6);
    let labels: Vec<u8> = (0..N * 100).map(|_| u8::from(rng.next() > 0.2)).collect();
    npz(&v10, N, 10, Some(&labels), 3);
    let fixed = audit_json(&t8, &s8, &v10, &["--fit", "resize", "--strategy", "naive"]);
    let r = audit_json(&tl, &sl, &v10, &["--size", "8x8", "--fit", "resize"]);
    assert_eq!(r["dataset"]["layout"], "nhwc");
    assert_eq!(numbers(&r), numbers(&fixed));
    audit_cmd(&tl, &sl, &v10)
        .args(["-q", "--size", "7x8", "--fit", "resize"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("7x8").and(predicate::str::contains("total stride, 2")));
}

fn onnx(p: &Path) -> onnx_protobuf::ModelProto {
    use onnx_protobuf::Message;
    onnx_protobuf::ModelProto::parse_from_bytes(&std::fs::read(p).unwrap()).unwrap()
}
