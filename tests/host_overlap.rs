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
    let extra = [&["--threads", "1"][..], extra].concat();
    same_report_either_way((t, s, data), ON, ("host work beside the runs", "host work beside"), &extra, what);
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

/// The journal is written by the host thread on the pipelined path: the same records in the
/// same order as with the host work between runs (both killed by the journal's test hook
/// after the same record), and a pipelined audit killed part way resumes, pipelined, to the
/// report of an uninterrupted run.
#[test]
fn the_host_thread_journals_the_same_records_in_the_same_order_and_resumes() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let m = root().join("models");
    let (t, s, data) = (m.join("unet-acdc-seg.onnx"), m.join("unet-acdc-ae.onnx"), m.join("data/acdc-val.npz"));
    let audit = |out: &Path, overlap: &str| {
        let mut c = audit_cmd(&t, &s, &data);
        c.args(["--kinds", "W,B", "--threads", "1", "--format", "json", "--out"]).arg(out).env(ON, overlap);
        c
    };
    let journal = |out: &Path| std::fs::read_to_string(out.with_file_name("killed.journal")).unwrap();
    let mut lines = Vec::new();
    for overlap in ["0", "1"] {
        let out = dir.path().join(overlap).join("killed");
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        let status = audit(&out, overlap).env("REUSE_AUDIT_TEST_KILL_AFTER_RECORDS", "12").output().unwrap().status;
        assert_eq!(status.signal(), Some(9), "the audit was not killed: {status:?}");
        lines.push(journal(&out));
    }
    assert_eq!(lines[0].lines().count(), 13, "header, baseline and 11 swaps");
    assert!(lines[0] == lines[1], "the journals differ:\n{}\n---\n{}", lines[0], lines[1]);
    let killed = dir.path().join("1/killed");
    let o = audit(&killed, "1").arg("--resume").output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("resume: 11 of 36 swap(s) kept") && err.contains("host work beside the runs"), "{err}");
    let clean = dir.path().join("clean");
    audit(&clean, "0").assert().success();
    let report = |out: &Path| without_timing(&std::fs::read(out.join("report.json")).unwrap());
    assert!(report(&killed) == report(&clean), "the resumed pipelined audit differs from a clean run");
}

/// Regression (review of issue 15's switches): a tuning variable with a value it cannot take
/// used to be read as its default without a word; now it is exit 2 naming the variable, with
/// no report written.
#[test]
fn a_tuning_variable_with_a_bad_value_is_refused() {
    let tiny = tiny_pair(3);
    for (var, value, says) in [
        (ON, "yes", "REUSE_AUDIT_OVERLAP_HOST=yes: expected 0 or 1"),
        ("REUSE_AUDIT_CACHE_ON_DEVICE", "2", "REUSE_AUDIT_CACHE_ON_DEVICE=2: expected 0 or 1"),
        ("REUSE_AUDIT_REDUCE_ON_DEVICE", "on", "REUSE_AUDIT_REDUCE_ON_DEVICE=on: expected 0 or 1"),
        ("REUSE_AUDIT_CUDA_WORKERS", "0", "REUSE_AUDIT_CUDA_WORKERS=0: expected a whole number from 1 to 8"),
    ] {
        let out = tiny.dir.path().join(format!("out-{var}"));
        let o = audit_cmd(&tiny.t, &tiny.s, &tiny.data)
            .args(["--labels", "baseline", "--out"])
            .arg(&out)
            .env(var, value)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{var}={value}: {err}");
        assert!(err.contains(says), "{var}={value}: {err}");
        assert!(!out.join("report.json").exists(), "{var}={value}: a report was written");
    }
}
