//! `audit --shard K/N` and `merge` (issue 14): shards computed apart and merged write the
//! report files of one unsharded run, byte for byte, and apply its gates; a set with a shard
//! missing, given twice, from another audit, or inputs changed since, is refused (exit 2)
//! with nothing written.

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use common::*;
use predicates::prelude::*;

fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                // report.json's timing differs between runs: the rest must not.
                let bytes = std::fs::read(&p).unwrap();
                let bytes = if p.ends_with("report.json") { without_timing(&bytes) } else { bytes };
                out.insert(p.strip_prefix(root).unwrap().to_string_lossy().into_owned(), bytes);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn assert_same_files(a: &Path, b: &Path) {
    let (sa, sb) = (snapshot(a), snapshot(b));
    assert_eq!(sa.keys().collect::<Vec<_>>(), sb.keys().collect::<Vec<_>>());
    for (name, bytes) in &sa {
        assert!(bytes == &sb[name], "{name} differs between {} and {}", a.display(), b.display());
    }
    assert!(sa.len() >= 3, "too few files to compare: {:?}", sa.keys());
}

fn audit(t: &Path, s: &Path, data: &Path, out: &Path, extra: &[&str]) -> assert_cmd::Command {
    let mut c = audit_cmd(t, s, data);
    c.arg("--out").arg(out).args(["--format", "csv,json,html,md"]).args(extra);
    c
}

fn merge(shards: &[PathBuf], out: &Path) -> assert_cmd::Command {
    let mut c = bin();
    c.arg("merge").args(shards).arg("--out").arg(out);
    c
}

/// The shard journal's header, as JSON.
fn header(shard_dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(shard_dir.join("shard.journal")).unwrap();
    serde_json::from_str(text.lines().next().unwrap().split_once(' ').unwrap().1).unwrap()
}

/// Run shards 1..=n of an audit into `dir/shard-K`; returns their folders.
fn shards(t: &Path, s: &Path, data: &Path, dir: &Path, n: usize, extra: &[&str]) -> Vec<PathBuf> {
    (1..=n)
        .map(|k| {
            let out = dir.join(format!("shard-{k}"));
            audit(t, s, data, &out, extra)
                .args(["--shard", &format!("{k}/{n}")])
                .assert()
                .success()
                .stdout(predicate::str::contains(format!("shard {k}/{n}: ")));
            out
        })
        .collect()
}

/// Every line of a journal: its checksum is the sha256 of its JSON, and the JSON follows
/// schemas/journal.schema.json (header first, then baseline and swap records, timing last).
fn journal_lines_are_valid(path: &Path) {
    use sha2::Digest;
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root().join("schemas/journal.schema.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.ends_with('\n'));
    let last = text.lines().count() - 1;
    for (n, line) in text.lines().enumerate() {
        let (sum, json) = line.split_once(' ').unwrap();
        let want: String = sha2::Sha256::digest(json.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(sum, want, "line {}", n + 1);
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "line {}: {errors:#?}", n + 1);
        let first_key = v.as_object().unwrap().keys().next().unwrap().clone();
        match n {
            0 => assert!(v.get("journal").is_some(), "line 1 is the header"),
            1 => assert_eq!(first_key, "baseline"),
            // A finished shard ends with the timing of the run that finished it.
            n if n == last => assert_eq!(first_key, "timing"),
            _ => assert_eq!(first_key, "swap"),
        }
    }
}

fn tiny() -> Tiny {
    tiny_pair(6)
}

#[test]
fn three_shards_of_the_bundled_unet_merge_into_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let m = root().join("models");
    let (t, s, data) = (m.join("unet-acdc-seg.onnx"), m.join("unet-acdc-ae.onnx"), m.join("data/acdc-val.npz"));
    let kinds = ["--kinds", "W,B"];
    let clean = dir.path().join("clean");
    audit(&t, &s, &data, &clean, &kinds).assert().success();
    // Per-machine flags (threads, cache) differ between shards: they change no number.
    let parts: Vec<PathBuf> = (1..=3)
        .map(|k| {
            let out = dir.path().join(format!("shard-{k}"));
            let threads = k.to_string();
            audit(&t, &s, &data, &out, &kinds)
                .args(["--shard", &format!("{k}/3"), "--threads", &threads])
                .assert()
                .success();
            out
        })
        .collect();
    // A shard's folder holds its journal only; the shards split the 36 swaps, each layer's
    // swaps in one shard, and each shard gets some.
    let mut all: Vec<u64> = Vec::new();
    for p in &parts {
        assert_eq!(snapshot(p).keys().collect::<Vec<_>>(), vec!["shard.journal"]);
        let h = header(p);
        let pairs: Vec<u64> = h["shard"]["pairs"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
        assert!(!pairs.is_empty());
        all.extend(pairs);
        assert_eq!(h["swaps"].as_array().unwrap().len(), 36);
    }
    all.sort_unstable();
    let want: Vec<u64> =
        header(&parts[0])["swaps"].as_array().unwrap().iter().map(|s| s["pair"].as_u64().unwrap()).collect();
    assert_eq!(all, want, "every swap in exactly one shard");
    let merged = dir.path().join("merged");
    merge(&parts, &merged).assert().success();
    assert_same_files(&clean, &merged);
    // Adaptive rounds too: each swap stops where it would in one run.
    let adaptive = ["--kinds", "W,B", "--adaptive"];
    let clean_adaptive = dir.path().join("clean-adaptive");
    audit(&t, &s, &data, &clean_adaptive, &adaptive).assert().success();
    let parts_adaptive = shards(&t, &s, &data, &dir.path().join("adaptive"), 2, &adaptive);
    let merged_adaptive = dir.path().join("merged-adaptive");
    merge(&parts_adaptive, &merged_adaptive).assert().success();
    assert_same_files(&clean_adaptive, &merged_adaptive);
    // The order the shards are given in does not matter.
    let reversed: Vec<PathBuf> = parts.iter().rev().cloned().collect();
    let merged2 = dir.path().join("merged2");
    merge(&reversed, &merged2).assert().success();
    assert_same_files(&clean, &merged2);
}

#[test]
fn more_shards_than_layers_and_a_killed_shard_resumed() {
    let f = tiny();
    let lf = ["--labels", "baseline"];
    let clean = f.dir.path().join("clean");
    audit(&f.t, &f.s, &f.data, &clean, &lf).assert().success();
    // 5 layers over 7 shards: two shards compute nothing but the baseline.
    let parts = shards(&f.t, &f.s, &f.data, &f.dir.path().join("seven"), 7, &lf);
    let empty = parts.iter().filter(|p| header(p)["shard"]["pairs"].as_array().unwrap().is_empty()).count();
    assert_eq!(empty, 2);
    for p in &parts {
        journal_lines_are_valid(&p.join("shard.journal"));
    }
    let merged = f.dir.path().join("merged7");
    merge(&parts, &merged).assert().success();
    assert_same_files(&clean, &merged);
    // Shard 1/2 killed after its baseline and one swap, resumed, merged.
    let two = f.dir.path().join("two");
    let first = two.join("shard-1");
    let status = audit(&f.t, &f.s, &f.data, &first, &lf)
        .args(["--shard", "1/2"])
        .env("REUSE_AUDIT_TEST_KILL_AFTER_RECORDS", "2")
        .output()
        .unwrap()
        .status;
    assert_eq!(status.signal(), Some(9));
    assert!(!first.exists());
    audit(&f.t, &f.s, &f.data, &first, &lf)
        .args(["--shard", "1/2", "--resume"])
        .assert()
        .success()
        .stderr(predicate::str::contains("resume: 1 of"));
    let second = two.join("shard-2");
    audit(&f.t, &f.s, &f.data, &second, &lf).args(["--shard", "2/2"]).assert().success();
    let merged = f.dir.path().join("merged2");
    merge(&[first, second], &merged).assert().success();
    assert_same_files(&clean, &merged);
}

#[test]
fn merge_refuses_a_set_that_is_not_one_whole_audit() {
    let f = tiny();
    let lf = ["--labels", "baseline"];
    let parts = shards(&f.t, &f.s, &f.data, &f.dir.path().join("a"), 3, &lf);
    let out = f.dir.path().join("merged");
    let refused = |given: &[PathBuf], says: &str| {
        merge(given, &out).assert().code(2).stderr(predicate::str::contains(says));
        assert!(!out.exists(), "a refused merge wrote {}", out.display());
    };
    refused(&parts[..2], "cannot merge: shard(s) 3/3 missing (2 of 3 given)");
    refused(&[parts[0].clone(), parts[1].clone(), parts[1].clone(), parts[2].clone()], "shard 2/3 is given twice");
    // Shards of another audit: other kinds, another shard count.
    let other = shards(&f.t, &f.s, &f.data, &f.dir.path().join("b"), 3, &["--labels", "baseline", "--kinds", "W"]);
    refused(&[parts[0].clone(), parts[1].clone(), other[2].clone()], "does not belong with");
    refused(&[parts[0].clone(), parts[1].clone(), other[2].clone()], "--kinds: W,B,RM,RV,RW,RB vs W");
    let four = shards(&f.t, &f.s, &f.data, &f.dir.path().join("c"), 4, &lf);
    refused(&[parts[0].clone(), parts[1].clone(), four[2].clone()], "shards: 3 shards vs 4 shards");
    // A folder that is no shard result.
    let clean = f.dir.path().join("clean");
    audit(&f.t, &f.s, &f.data, &clean, &lf).assert().success();
    refused(&[parts[0].clone(), parts[1].clone(), clean], "no shard result here");
    // The source changed after the shards ran: their numbers are not this source's.
    save(&tiny_cnn(&Spec { seed: 9, ..Spec::default() }), f.dir.path(), "s.onnx");
    refused(&parts, "the shards were computed from other inputs than merge finds now");
    refused(&parts, "source model:");
}

#[test]
fn merge_applies_the_gates_of_the_recorded_command() {
    let f = tiny();
    let gate = ["--labels", "baseline", "--max-delta", "0"];
    let clean = f.dir.path().join("clean");
    audit(&f.t, &f.s, &f.data, &clean, &gate).assert().code(1).stderr(predicate::str::contains("--max-delta 0"));
    // Shards do not gate (they see part of the swaps); the merge does, like one run.
    let parts = shards(&f.t, &f.s, &f.data, f.dir.path(), 2, &gate);
    let merged = f.dir.path().join("merged");
    merge(&parts, &merged).assert().code(1).stderr(predicate::str::contains("--max-delta 0"));
    assert_same_files(&clean, &merged);
}

#[test]
fn shard_flags_are_checked() {
    let f = tiny();
    audit_cmd(&f.t, &f.s, &f.data)
        .args(["--shard", "1/2"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--shard: needs --out (the shard's result is written as OUT/shard.journal)"));
    for bad in ["0/2", "3/2", "2", "x/y"] {
        audit(&f.t, &f.s, &f.data, &f.dir.path().join("o"), &["--shard", bad])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("is not K/N"));
    }
    bin().args(["merge", "--out"]).arg(f.dir.path().join("m")).assert().code(2);
    audit(&f.t, &f.s, &f.data, &f.dir.path().join("o"), &["--shard", "1/2", "--plan"])
        .arg(f.dir.path().join("plan"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--plan: a shard sees part of the swaps"));
}

/// Rewrite a shard journal's header line with `edit` applied to its JSON text, with a
/// checksum that fits (the checksum guards against damage, not against an edited file).
fn edit_header(shard_dir: &Path, edit: impl Fn(&str) -> String) {
    use sha2::Digest;
    let path = shard_dir.join("shard.journal");
    let text = std::fs::read_to_string(&path).unwrap();
    let (first, rest) = text.split_once('\n').unwrap();
    let json = edit(first.split_once(' ').unwrap().1);
    let sum: String = sha2::Sha256::digest(json.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&path, format!("{sum} {json}\n{rest}")).unwrap();
}

#[test]
fn shard_count_of_2_pow_64_panicked_allocating_the_split() {
    let f = tiny();
    // `--shard 1/18446744073709551615` panicked (capacity overflow, exit 101); 1/2^32
    // aborted allocating 32 GiB for the list of shards.
    for bad in ["1/18446744073709551615", "1/4294967296", "auto/100001"] {
        let out = f.dir.path().join("o");
        audit(&f.t, &f.s, &f.data, &out, &["--shard", bad])
            .env("SLURM_ARRAY_TASK_ID", "0")
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--shard").and(predicate::str::contains("more than the 100000")));
        assert!(!out.exists());
    }
    // A journal whose header claims 2^64 - 1 shards (or shard 0) panicked `merge` the same way.
    let lf = ["--labels", "baseline"];
    for (claim, says) in [("18446744073709551615", "more than the 100000"), ("0", "shard 0/2 is not K/N")] {
        let parts = shards(&f.t, &f.s, &f.data, &f.dir.path().join(format!("c{claim}")), 2, &lf);
        for p in &parts {
            let edit = |json: &str| match claim {
                "0" => json.replace("\"index\":1,", "\"index\":0,").replace("\"index\":2,", "\"index\":0,"),
                _ => json.replace("\"count\":2,", &format!("\"count\":{claim},")),
            };
            edit_header(p, edit);
        }
        let merged = f.dir.path().join("merged");
        merge(&parts, &merged)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("shard.journal").and(predicate::str::contains(says)));
        assert!(!merged.exists());
    }
}

#[test]
fn bootstrap_of_2_pow_64_panicked_allocating_the_resamples() {
    let f = tiny();
    let out = f.dir.path().join("o");
    audit(&f.t, &f.s, &f.data, &out, &["--bootstrap", "18446744073709551615"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--bootstrap").and(predicate::str::contains("panicked").not()));
    assert!(!out.exists());
    audit(&f.t, &f.s, &f.data, &out, &["--labels", "baseline", "--bootstrap", "100000"]).assert().success();
}
