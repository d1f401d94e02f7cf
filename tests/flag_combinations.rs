//! Odd flag combinations of `plan` and `merge` (found trying them): an output folder that
//! holds the command's own input destroyed it, and `plan`'s scoring flags without `--data`
//! were silently ignored (`--device cuda` "worked" on a machine without a GPU). Each is now
//! exit 2 before any work, nothing written, the input left as it was.

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
