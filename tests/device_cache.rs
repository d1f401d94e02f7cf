//! The incremental cache bound to the engine's device (issue 15: on CUDA the baseline run's
//! cached tensors stay in the GPU's memory, so regions read them without crossing the bus).
//! `REUSE_AUDIT_CACHE_ON_DEVICE=1` turns the I/O-binding path on; on the CPU it binds to host
//! memory, which runs the same code: the report must be the same bytes (timing aside) as
//! without it, for the bundled pairs, a dynamo export whose cache holds bool and int64
//! tensors, chunked caches and several workers.

mod common;

use std::path::Path;

use common::*;

const ON: &str = "REUSE_AUDIT_CACHE_ON_DEVICE";

fn same_either_way(t: &Path, s: &Path, data: &Path, extra: &[&str], what: &str) {
    // Every pair here has a swap in its first layer, whose region reads the image: the
    // baseline run keeps the image batches with the cache too.
    same_report_either_way(
        (t, s, data),
        ON,
        ("cache bound to host memory, images kept with it", "cache bound to"),
        extra,
        what,
    );
}

#[test]
fn bundled_pairs_give_the_same_report_with_the_cache_bound() {
    let m = root().join("models");
    let data = m.join("data/acdc-val.npz");
    for arch in ["unet", "pspnet"] {
        let (t, s) = (m.join(format!("{arch}-acdc-seg.onnx")), m.join(format!("{arch}-acdc-ae.onnx")));
        same_either_way(&t, &s, &data, &["--kinds", "W,RM"], arch);
    }
}

#[test]
fn a_dynamo_export_with_bool_and_int64_cached_tensors() {
    let c = root().join("tests/corpus");
    let (t, s, data) = (c.join("smp-pspnet-target.onnx"), c.join("smp-pspnet-source.onnx"), c.join("smp-pspnet.npz"));
    same_either_way(&t, &s, &data, &["--kinds", "W,RV"], "smp PSPNet");
}

#[test]
fn chunked_caches_and_more_workers() {
    let tiny = tiny_pair(7);
    let labels_free = ["--labels", "baseline"];
    for extra in [
        &["--cache-mb", "0", "--batch", "2"][..],
        &["--threads", "1"],
        &["--threads", "3", "--cache-mb", "0", "--batch", "3"],
    ] {
        let args = [&labels_free[..], extra].concat();
        same_either_way(&tiny.t, &tiny.s, &tiny.data, &args, &format!("{extra:?}"));
    }
}

/// Regression: the baseline run's copy of the image was always named
/// `reuse_audit/kept_image`, so a model with a tensor of that name (an intermediate, or the
/// image input itself) got a second producer (or an Identity reading its own output) and
/// ONNX Runtime refused the baseline model, with the cache bound to the device only (so by
/// default on CUDA).
#[test]
fn a_tensor_named_like_the_kept_image_was_defined_twice() {
    for taken in ["relu1_out", "x"] {
        let dir = tempfile::tempdir().unwrap();
        let renamed = |seed| {
            let mut m = tiny_cnn(&Spec { seed, ..Spec::default() });
            let g = m.graph.as_mut().unwrap();
            let rename = |n: &mut String| {
                if n == taken {
                    *n = "reuse_audit/kept_image".into();
                }
            };
            for node in &mut g.node {
                node.input.iter_mut().for_each(rename);
                node.output.iter_mut().for_each(rename);
            }
            g.input.iter_mut().for_each(|v| rename(&mut v.name));
            m
        };
        let t = save(&renamed(1), dir.path(), "t.onnx");
        let s = save(&renamed(2), dir.path(), "s.onnx");
        let data = dir.path().join("val.npz");
        npz(&data, 5, 8, None, 3);
        same_either_way(&t, &s, &data, &["--labels", "baseline"], taken);
    }
}
