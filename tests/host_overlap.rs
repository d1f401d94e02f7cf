//! One worker's host work (counting each run's labels, settling each swap) on a thread of its
//! own beside the runs: the default on CUDA, where the runs are the GPU's (issue 15);
//! `REUSE_AUDIT_OVERLAP_HOST=1` forces it on the CPU, which runs the same code. The report
//! must be the same bytes (timing aside) as with the host work done between runs: bundled
//! pairs, the dynamo smp PSPNet, chunked caches, adaptive rounds, label-free data.

mod common;

use std::path::Path;

use common::*;

const ON: &str = "REUSE_AUDIT_OVERLAP_HOST";

fn same_either_way(t: &Path, s: &Path, data: &Path, extra: &[&str], what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let extra = [&["--threads", "1"][..], extra].concat();
    let (off, e_off) = incremental_report((t, s, data), &dir.path().join("off"), (ON, "0"), &extra);
    let (on, e_on) = incremental_report((t, s, data), &dir.path().join("on"), (ON, "1"), &extra);
    assert!(e_on.contains("host work beside the runs"), "{what}: the pipelined path did not run: {e_on}");
    assert!(!e_off.contains("host work beside"), "{what}: {e_off}");
    assert!(on == off, "{what}: the reports differ with the host work beside the runs");
}

#[test]
fn bundled_pairs_give_the_same_report_with_the_host_work_beside_the_runs() {
    let m = root().join("models");
    let data = m.join("data/acdc-val.npz");
    for arch in ["unet", "pspnet"] {
        let (t, s) = (m.join(format!("{arch}-acdc-seg.onnx")), m.join(format!("{arch}-acdc-ae.onnx")));
        same_either_way(&t, &s, &data, &[], arch);
    }
}

#[test]
fn a_dynamo_export_gives_the_same_report_with_the_host_work_beside_the_runs() {
    let c = root().join("tests/corpus");
    let (t, s, data) = (c.join("smp-pspnet-target.onnx"), c.join("smp-pspnet-source.onnx"), c.join("smp-pspnet.npz"));
    same_either_way(&t, &s, &data, &["--kinds", "W,RV"], "smp PSPNet");
}

#[test]
fn chunks_rounds_and_label_free_data_with_the_host_work_beside_the_runs() {
    let tiny = tiny_pair(7);
    for extra in [
        &["--labels", "baseline", "--cache-mb", "0", "--batch", "2"][..],
        &["--labels", "baseline", "--adaptive", "--cache-mb", "0", "--batch", "3"],
    ] {
        same_either_way(&tiny.t, &tiny.s, &tiny.data, extra, &format!("{extra:?}"));
    }
    let m = root().join("models");
    let (t, s, data) = (m.join("unet-acdc-seg.onnx"), m.join("unet-acdc-ae.onnx"), m.join("data/acdc-val.npz"));
    same_either_way(&t, &s, &data, &["--adaptive", "--kinds", "W", "--cache-mb", "1"], "adaptive, chunked");
}
