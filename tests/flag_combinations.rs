//! Odd flag combinations of `plan` and `merge` (found trying them): an output folder that
//! holds the command's own input destroyed it, and `plan`'s scoring flags without `--data`
//! were silently ignored (`--device cuda` "worked" on a machine without a GPU). So were
//! `audit`'s `--strict` without a gate it applies to, `--ignore-label` label-free and
//! `--format` without `--out` (a CI job asking for `report.md` got none, exit 0); a negative
//! `--max-delta` failed swaps that lose nothing. Each is now exit 2 before any work, nothing
//! written, the input left as it was. A missing `--labels` file now names the flag.

mod common;

use std::path::Path;

use common::*;
use predicates::prelude::*;

/// A finished audit of the tiny pair into `out` (report.json only).
fn report(t: &Tiny, out: &Path) {
    audit_cmd(&t.t, &t.s, &t.data)
        .args(["--labels", "baseline", "-q", "--format", "json"])
        .arg("--out")
        .arg(out)
        .assert()
        .success();
}

#[test]
fn plan_out_holding_its_report_deleted_the_report() {
    let t = tiny_pair(4);
    let folder = t.dir.path().join("run");
    report(&t, &folder);
    let before = std::fs::read(folder.join("report.json")).unwrap();
    bin()
        .arg("plan")
        .arg(&t.t)
        .arg(&t.s)
        .arg("--report")
        .arg(folder.join("report.json"))
        .arg("--out")
        .arg(&folder)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--out"))
        .stderr(predicate::str::contains("holds the --report"))
        .stderr(predicate::str::contains("report.json is one of the names the tool writes there"));
    assert_eq!(std::fs::read(folder.join("report.json")).unwrap(), before, "the report is left as it was");
    assert!(!folder.join("plan.json").exists());
    // Beside it, the plan is made.
    let plan = t.dir.path().join("plan");
    let mut ok = bin();
    ok.arg("plan")
        .arg(&t.t)
        .arg(&t.s)
        .arg("--report")
        .arg(folder.join("report.json"))
        .arg("--out")
        .arg(&plan)
        .arg("-q");
    ok.assert().success();
    assert!(plan.join("plan.json").is_file());
}

#[test]
fn merge_out_in_a_shard_folder_deleted_its_journal() {
    let t = tiny_pair(4);
    let shards: Vec<_> = (1..=2).map(|k| t.dir.path().join(format!("shard-{k}"))).collect();
    for (k, out) in shards.iter().enumerate() {
        audit_cmd(&t.t, &t.s, &t.data)
            .args(["--labels", "baseline", "-q", "--shard", &format!("{}/2", k + 1)])
            .arg("--out")
            .arg(out)
            .assert()
            .success();
    }
    let journal = std::fs::read(shards[1].join("shard.journal")).unwrap();
    bin()
        .arg("merge")
        .args(&shards)
        .arg("--out")
        .arg(&shards[1])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("holds the shard result"))
        .stderr(predicate::str::contains("shard.journal"));
    assert_eq!(std::fs::read(shards[1].join("shard.journal")).unwrap(), journal);
    assert!(!shards[1].join("report.json").exists());
    let merged = t.dir.path().join("merged");
    bin().arg("merge").args(&shards).arg("--out").arg(&merged).arg("-q").assert().success();
    assert!(merged.join("report.json").is_file());
}

#[test]
fn plan_scoring_flags_without_data_were_ignored() {
    let t = tiny_pair(4);
    let folder = t.dir.path().join("run");
    report(&t, &folder);
    let out = t.dir.path().join("plan");
    for flags in [
        vec!["--device", "cuda"],
        vec!["--labels", "baseline"],
        vec!["--normalize", "none"],
        vec!["--fit", "pad"],
        vec!["--threads", "2"],
        vec!["--batch", "4"],
        vec!["--mean", "0.5"],
    ] {
        bin()
            .arg("plan")
            .arg(&t.t)
            .arg(&t.s)
            .arg("--report")
            .arg(folder.join("report.json"))
            .arg("--out")
            .arg(&out)
            .args(&flags)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--data <DATA>"))
            .stderr(predicate::str::contains(flags[0]));
        assert!(!out.exists(), "{flags:?}");
    }
}

#[test]
fn out_holding_a_grafted_model_deleted_the_model() {
    // A plan folder's grafted.onnx audited (or compared) with --out the plan folder: the
    // report replaced the folder and grafted.onnx, one of the tool's own names, was gone.
    let t = tiny_pair(4);
    let plan = t.dir.path().join("plan");
    std::fs::create_dir(&plan).unwrap();
    let grafted = plan.join("grafted.onnx");
    std::fs::copy(&t.t, &grafted).unwrap();
    let bytes = std::fs::read(&grafted).unwrap();
    let says = ["holds the target model", "grafted.onnx is one of the names the tool writes there"];
    let mut runs = [audit_cmd(&grafted, &t.s, &t.data), {
        let mut c = bin();
        c.arg("rmse").arg(&grafted).arg(&t.s);
        c
    }];
    for c in runs.iter_mut() {
        c.arg("--out")
            .arg(&plan)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(says[0]))
            .stderr(predicate::str::contains(says[1]));
    }
    bin()
        .arg("matrix")
        .arg(&grafted)
        .arg(&t.s)
        .arg("--out")
        .arg(&plan)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("holds a model"));
    // An audit's --plan folder is held to the same.
    let mut c2 = audit_cmd(&grafted, &t.s, &t.data);
    c2.arg("--out").arg(t.dir.path().join("report")).arg("--plan").arg(&plan);
    c2.assert()
        .code(2)
        .stderr(predicate::str::contains("--plan"))
        .stderr(predicate::str::contains("holds the target model"));
    assert_eq!(std::fs::read(&grafted).unwrap(), bytes, "the model is left as it was");
    assert_eq!(std::fs::read_dir(&plan).unwrap().count(), 1, "nothing written beside it");
    assert!(!t.dir.path().join("report").exists());
}

/// `inspect --size HxW` without `--flops` was accepted and ignored (the size only feeds the
/// FLOPs probe): the user believed the model was inspected at that size. Now exit 2 naming
/// both flags; with `--flops` it is used as before.
#[test]
fn inspect_size_without_flops_was_silently_ignored() {
    let t = tiny_pair(4);
    bin()
        .arg("inspect")
        .arg(&t.t)
        .args(["--size", "8x8"])
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("--size").and(predicate::str::contains("--flops")));
    bin().arg("inspect").arg(&t.t).assert().success();
}

/// `audit` with the tiny pair, label-free, `extra` flags, into `out`.
fn gated(t: &Tiny, out: &Path, extra: &[&str]) -> assert_cmd::assert::Assert {
    audit_cmd(&t.t, &t.s, &t.data)
        .args(["--labels", "baseline", "-q", "--format", "json"])
        .args(extra)
        .arg("--out")
        .arg(out)
        .assert()
}

#[test]
fn strict_without_a_gate_it_applies_to_checked_nothing() {
    let t = tiny_pair(4);
    let out = t.dir.path().join("run");
    // --strict alone, or beside --max-delta (a point estimate, never undecided), changed
    // nothing, and the run passed as if a gate had held.
    for extra in [&["--strict"][..], &["--strict", "--max-delta", "0.5"]] {
        gated(&t, &out, extra)
            .code(2)
            .stderr(predicate::str::contains("--strict").and(predicate::str::contains("the gate would check nothing")));
        assert!(!out.exists(), "nothing is written");
    }
    gated(&t, &out, &["--strict", "--require-reusable", "W:*", "--tolerance", "1"]).success();
}

#[test]
fn negative_max_delta_failed_swaps_that_lose_nothing() {
    let t = tiny_pair(4);
    let out = t.dir.path().join("run");
    // Every swap of a pair with itself loses exactly 0: `--max-delta -0.01` failed them all.
    let mut cmd = bin();
    cmd.arg("audit").arg(&t.t).arg(&t.t).arg("--data").arg(&t.data);
    cmd.args(["--labels", "baseline", "-q", "--max-delta=-0.01", "--out"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--max-delta").and(predicate::str::contains("-0.01 is negative")));
    assert!(!out.exists(), "nothing is written");
    let mut cmd = bin();
    cmd.arg("audit").arg(&t.t).arg(&t.t).arg("--data").arg(&t.data);
    cmd.args(["--labels", "baseline", "-q", "--max-delta", "0"]).assert().success();
}

#[test]
fn ignore_label_without_labels_was_dropped_without_a_word() {
    let t = tiny_pair(4);
    let out = t.dir.path().join("run");
    // Label-free the truth is the target's own class map: no pixel carries the value, and
    // the flag vanished from the report.
    for extra in [&["--ignore-label", "255"][..], &["--metric", "agreement", "--ignore-label", "255"]] {
        let mut cmd = audit_cmd(&t.t, &t.s, &t.data);
        if extra[0] != "--metric" {
            cmd.args(["--labels", "baseline"]);
        }
        cmd.args(["-q"])
            .args(extra)
            .arg("--out")
            .arg(&out)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--ignore-label").and(predicate::str::contains("label-free")));
        assert!(!out.exists(), "nothing is written");
    }
}

#[test]
fn format_without_out_wrote_nothing_and_passed() {
    let t = tiny_pair(4);
    let mut rmse = bin();
    rmse.arg("rmse").arg(&t.t).arg(&t.s).args(["--format", "md"]);
    rmse.assert().code(2).stdout(predicate::str::is_empty()).stderr(predicate::str::contains("--out"));
    audit_cmd(&t.t, &t.s, &t.data)
        .args(["--labels", "baseline", "-q", "--json", "--format", "md"])
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("--out"));
    // The default formats need no --out: a table (or --json) is printed.
    bin().arg("rmse").arg(&t.t).arg(&t.s).assert().success();
}

#[test]
fn a_missing_labels_file_did_not_name_the_flag() {
    let t = tiny_pair(4);
    let images = t.dir.path().join("x.npy");
    std::fs::write(&images, reuse_audit::data::npy::npy_f32_bytes(&[4, 1, 8, 8], &[0.5; 256])).unwrap();
    // `Baseline` (capitalised) is a path: "cannot read Baseline: No such file or directory".
    audit_cmd(&t.t, &t.s, &images).args(["-q", "--labels", "Baseline"]).assert().code(2).stderr(
        predicate::str::contains("cannot read Baseline")
            .and(predicate::str::contains("--labels takes a .npy file"))
            .and(predicate::str::contains("`baseline`")),
    );
}
