//! `timing` in report.json (issue 15): every audit reports its seconds and image forwards;
//! a resumed run counts only what it computed; `merge` adds up the shards' timings, which
//! each finished shard journals; `--no-timing` and data-free reports have none.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

const KILL: &str = "REUSE_AUDIT_TEST_KILL_AFTER_RECORDS";

/// 6 images of 8x8, a target and a source of different seeds (every swap runs: 14 of them).
fn tiny() -> Tiny {
    tiny_pair(6)
}

const IMAGES: u64 = 6;
const SWAPS: u64 = 14;

fn validate(v: &Value) {
    let schema: Value =
        serde_json::from_slice(&std::fs::read(root().join("schemas/report.schema.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    let errors: Vec<String> = validator.iter_errors(v).map(|e| format!("{} at {}", e, e.instance_path)).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

fn report(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap()
}

fn audit(f: &Tiny, out: &Path, extra: &[&str]) -> assert_cmd::Command {
    let mut c = audit_cmd(&f.t, &f.s, &f.data);
    c.args(["-q", "--labels", "baseline", "--format", "json", "--out"]).arg(out).args(extra);
    c
}

fn secs(t: &Value, k: &str) -> f64 {
    t[k].as_f64().unwrap_or_else(|| panic!("{k}: {t}"))
}

/// The invariants of any timing: seconds are milliseconds, parts within the whole, the rate
/// is forwards per busy second.
fn consistent(t: &Value) {
    for k in ["total_s", "baseline_s", "swaps_s"] {
        let x = secs(t, k);
        assert!(x >= 0.0 && (x * 1000.0 - (x * 1000.0).round()).abs() < 1e-6, "{k} = {x} is not whole ms");
    }
    let busy = secs(t, "baseline_s") + secs(t, "swaps_s");
    assert!(busy <= secs(t, "total_s") + 1e-9, "{t}");
    let forwards = t["image_forwards"].as_u64().unwrap() as f64;
    let rate = secs(t, "image_forwards_per_s");
    assert!((rate - forwards / busy).abs() <= 0.05 + 1e-9, "{rate} vs {forwards} / {busy}");
    assert!(!t["device"].as_str().unwrap().is_empty());
}

#[test]
fn every_audit_reports_its_timing_and_counts_its_image_forwards() {
    let f = tiny();
    for strategy in ["naive", "shared", "incremental"] {
        let out = f.dir.path().join(strategy);
        audit(&f, &out, &["--strategy", strategy]).assert().success();
        let v = report(&out);
        validate(&v);
        let t = &v["timing"];
        assert_eq!(t["scope"], "run", "{strategy}");
        // Exact: every image through the baseline and through each of the 14 swaps.
        assert_eq!(t["image_forwards"], IMAGES * (SWAPS + 1), "{strategy}");
        assert!(secs(t, "swaps_s") > 0.0, "{strategy}: 14 swaps take a millisecond at least: {t}");
        consistent(t);
    }
    // Adaptive: the forwards it counts for what it saved are the ones timed.
    let out = f.dir.path().join("adaptive");
    audit(&f, &out, &["--adaptive"]).assert().success();
    let v = report(&out);
    assert_eq!(v["timing"]["image_forwards"], v["adaptive"]["image_forwards"]);
    consistent(&v["timing"]);
}

#[test]
fn no_timing_and_data_free_reports_have_none() {
    let f = tiny();
    let out = f.dir.path().join("quiet");
    audit(&f, &out, &["--no-timing"]).assert().success();
    assert!(report(&out).get("timing").is_none());
    let rmse = bin().arg("rmse").arg(&f.t).arg(&f.s).arg("--json").output().unwrap();
    let v: Value = serde_json::from_slice(&rmse.stdout).unwrap();
    assert!(v.get("timing").is_none(), "rmse runs no forward pass");
}

#[test]
fn a_resumed_audit_times_only_what_it_computed() {
    let f = tiny();
    let out = f.dir.path().join("out");
    // Killed after the baseline and 3 swaps.
    let status = audit(&f, &out, &["--strategy", "shared"]).env(KILL, "4").output().unwrap().status;
    assert!(!status.success());
    audit(&f, &out, &["--strategy", "shared", "--resume"]).assert().success();
    let t = &report(&out)["timing"];
    assert_eq!(t["scope"], "resumed");
    // The baseline again (the swaps are compared with it) and the 11 swaps left.
    assert_eq!(t["image_forwards"], IMAGES * (1 + SWAPS - 3));
    consistent(t);
}

/// The timing record a finished shard's journal ends with.
fn shard_timing(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("shard.journal")).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap().split_once(' ').unwrap().1).unwrap();
    last["timing"].clone()
}

#[test]
fn merge_adds_up_the_shards_timings() {
    let f = tiny();
    let parts: Vec<PathBuf> = (1..=2)
        .map(|k| {
            let out = f.dir.path().join(format!("shard-{k}"));
            audit(&f, &out, &["--shard", &format!("{k}/2")]).assert().success();
            out
        })
        .collect();
    let (a, b) = (shard_timing(&parts[0]), shard_timing(&parts[1]));
    let (fa, fb) = (a["image_forwards"].as_u64().unwrap(), b["image_forwards"].as_u64().unwrap());
    // Each shard runs the baseline and its own swaps; together, every swap once.
    assert_eq!(fa + fb, IMAGES * (SWAPS + 2), "{a} {b}");
    let merged = f.dir.path().join("merged");
    bin().arg("merge").args(&parts).arg("--out").arg(&merged).arg("-q").assert().success();
    let v = report(&merged);
    validate(&v);
    let t = &v["timing"];
    assert_eq!(t["scope"], "shards");
    assert_eq!(t["image_forwards"], fa + fb);
    for k in ["total_s", "baseline_s", "swaps_s"] {
        assert!((secs(t, k) - secs(&a, k) - secs(&b, k)).abs() < 1e-6, "{k}: {t} = {a} + {b}");
    }
    consistent(t);
}
