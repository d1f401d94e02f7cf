//! The RN verdict speaks for the whole network or not at all (regression: a `--match` file
//! pairing one conv layer of 18 gave "NOT a reusable network (0% of layers)").

mod common;

use common::*;
use predicates::prelude::*;
use serde_json::Value;

#[test]
fn partial_mapping_gives_no_rn_verdict() {
    let m = root().join("models");
    let d = tempfile::tempdir().unwrap();
    let map = d.path().join("map.csv");
    std::fs::write(&map, "enc1.0.weight,enc1.0.weight\nenc1.0.bias,enc1.0.bias\n").unwrap();
    let (t, s, data) = (m.join("unet-acdc-seg.onnx"), m.join("unet-acdc-ae.onnx"), m.join("data/acdc-val.npz"));
    let out = guarded_audit_cmd(&t, &s, &data)
        .args(["--json", "--match"])
        .arg(&map)
        .assert()
        .success()
        .stderr(predicate::str::contains("no RN verdict: conv W was swapped in 1 of the target's 18 conv layers"))
        .get_output()
        .stdout
        .clone();
    let r: Value = serde_json::from_slice(&out).unwrap();
    assert!(r["summary"]["rn"].is_null());
    // The gate does not pass on a verdict that was not given.
    guarded_audit_cmd(&t, &s, &data)
        .args(["-q", "--fail-if-not-reusable", "--match"])
        .arg(&map)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("there is no RN verdict"));
    // The full pairing still gives the verdict.
    let full = guarded_audit_cmd(&t, &s, &data).args(["--json", "-q", "--kinds", "W"]).assert().success();
    let r: Value = serde_json::from_slice(&full.get_output().stdout).unwrap();
    assert_eq!(r["summary"]["rn"], false);
}
