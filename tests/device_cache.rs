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
