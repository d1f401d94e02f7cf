//! `audit --resume` (issue 14): an audit killed with SIGKILL part way (the journal's test hook
//! kills the process right after a given record, or half-way through writing the next one)
//! and resumed writes the same report files, byte for byte, as an audit never interrupted;
//! swaps in the journal are taken from it, not computed again; a journal of other inputs or
//! settings, or damaged before its last line, is refused.

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use common::*;
use predicates::prelude::*;

const KILL: &str = "REUSE_AUDIT_TEST_KILL_AFTER_RECORDS";

/// Every file under `dir` with its bytes, by relative path.
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

/// An audit of `t`/`s` on `data` into `out`, all formats.
fn audit(t: &Path, s: &Path, data: &Path, out: &Path, extra: &[&str]) -> assert_cmd::Command {
    let mut c = audit_cmd(t, s, data);
    c.arg("--out").arg(out).args(["--format", "csv,json,html,md"]).args(extra);
    c
}

/// The same audit killed (SIGKILL) by the test hook after `records` journal records
/// (the baseline is record 1); `torn` also writes half of the next one first.
fn killed(t: &Path, s: &Path, data: &Path, out: &Path, extra: &[&str], records: usize, torn: bool) {
    let mut c = audit(t, s, data, out, extra);
    c.env(KILL, format!("{records}{}", if torn { "+torn" } else { "" }));
    let status = c.output().unwrap().status;
    assert_eq!(status.signal(), Some(9), "the audit was not killed: {status:?}");
    assert!(!out.exists(), "a killed audit published {}", out.display());
}

/// A journal's lines.
fn journal_lines(out: &Path) -> Vec<String> {
    std::fs::read_to_string(journal_of(out)).unwrap().lines().map(String::from).collect()
}

fn journal_of(out: &Path) -> PathBuf {
    out.with_file_name(format!("{}.journal", out.file_name().unwrap().to_string_lossy()))
}

/// A journal line with its checksum redone (a planted edit that is not corruption).
fn resigned(json: &serde_json::Value) -> String {
    use sha2::Digest;
    let text = json.to_string();
    let sum: String = sha2::Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    format!("{sum} {text}")
}

fn json_of(line: &str) -> serde_json::Value {
    serde_json::from_str(line.split_once(' ').unwrap().1).unwrap()
}

/// The bundled UNet pair, conv W and B only (36 swaps).
fn unet() -> (PathBuf, PathBuf, PathBuf) {
    let m = root().join("models");
    (m.join("unet-acdc-seg.onnx"), m.join("unet-acdc-ae.onnx"), m.join("data/acdc-val.npz"))
}

const UNET_KINDS: [&str; 2] = ["--kinds", "W,B"];

#[test]
fn killed_incremental_audit_resumed_equals_a_clean_run() {
    let dir = tempfile::tempdir().unwrap();
    let (t, s, data) = unet();
    let clean = dir.path().join("clean");
    audit(&t, &s, &data, &clean, &UNET_KINDS).assert().success();
    assert!(!journal_of(&clean).exists(), "the journal of a finished audit is removed");
    let out = dir.path().join("resumed");
    killed(&t, &s, &data, &out, &UNET_KINDS, 12, false);
    let lines = journal_lines(&out);
    assert_eq!(lines.len(), 13, "header, baseline and 11 swaps");
    audit(&t, &s, &data, &out, &UNET_KINDS)
        .arg("--resume")
        .assert()
        .success()
        .stderr(predicate::str::contains("resume: 11 of 36 swap(s) kept").and(predicate::str::contains("25 left")));
    assert_same_files(&clean, &out);
    assert!(!journal_of(&out).exists());
}

#[test]
fn a_kill_before_the_last_cache_chunk_lost_every_chunk_counted() {
    // Regression: with the set cut into chunks (`--cache-mb 1`: one image each), swaps are
    // final only with the last chunk, and nothing was journaled before it: a kill on image
    // 47 of 48 lost all the work. Each earlier chunk's counts are journaled now, and a
    // resumed audit takes them instead of running those images again.
    let dir = tempfile::tempdir().unwrap();
    let (t, s, data) = unet();
    let extra = ["--kinds", "W,B", "--cache-mb", "1"];
    let clean = dir.path().join("clean");
    audit(&t, &s, &data, &clean, &extra).assert().success();
    let out = dir.path().join("resumed");
    killed(&t, &s, &data, &out, &extra, 12, false);
    let lines = journal_lines(&out);
    assert_eq!(lines.len(), 13, "header and 12 chunks");
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root().join("schemas/journal.schema.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    for (i, l) in lines[1..].iter().enumerate() {
        assert!(validator.is_valid(&json_of(l)), "line {} does not follow the schema", i + 2);
        let chunk = &json_of(l)["chunk"];
        assert_eq!((chunk["first"].as_u64(), chunk["images"].as_u64()), (Some(i as u64), Some(1)), "{l}");
        assert_eq!(chunk["swaps"].as_array().unwrap().len(), 36, "every swap's counts");
    }
    audit(&t, &s, &data, &out, &extra).arg("--resume").assert().success().stderr(
        predicate::str::contains("with 12 chunk(s) of counted images").and(predicate::str::contains("36 left")),
    );
    assert_same_files(&clean, &out);
    assert!(!journal_of(&out).exists());

    // The counts are taken, not computed again: planted counts (every swap scoring like the
    // baseline on the chunk's image) change the resumed report. Image 0's chunk always runs
    // again (the classes come from the model, never from the journal): planted there, or a
    // re-signed line claiming 2 classes (its counts cut to fit), is not taken, and nothing panics.
    let plant = |at: usize, classes: Option<u64>| {
        std::fs::remove_dir_all(&out).ok();
        killed(&t, &s, &data, &out, &extra, 3, false);
        let mut lines = journal_lines(&out);
        let mut rec = json_of(&lines[at]);
        let base = rec["chunk"]["baseline"].clone();
        for sw in rec["chunk"]["swaps"].as_array_mut().unwrap() {
            sw[1] = base.clone();
        }
        if let Some(c) = classes {
            // Counts cut to fit the claim, so the line reads as whole.
            let cut = |v: &serde_json::Value| serde_json::json!(v.as_array().unwrap()[..3 * c as usize].to_vec());
            rec["chunk"]["classes"] = serde_json::json!(c);
            rec["chunk"]["baseline"] = cut(&rec["chunk"]["baseline"]);
            for sw in rec["chunk"]["swaps"].as_array_mut().unwrap() {
                sw[1] = cut(&sw[1]);
            }
        }
        lines[at] = resigned(&rec);
        std::fs::write(journal_of(&out), lines.join("\n") + "\n").unwrap();
        audit(&t, &s, &data, &out, &extra).arg("--resume").assert().success();
    };
    plant(1, None);
    assert_same_files(&clean, &out);
    plant(3, Some(2));
    assert_same_files(&clean, &out);
    plant(2, None);
    let rows = |dir: &Path| -> Vec<serde_json::Value> {
        let r: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
        r["rows"].as_array().unwrap().clone()
    };
    let (a, b) = (rows(&clean), rows(&out));
    let changed = a.iter().zip(&b).filter(|(x, y)| x["swapped_dice"] != y["swapped_dice"]).count();
    assert!(changed > 0, "the planted counts were not used");
    assert!(a.iter().zip(&b).all(|(x, y)| x["baseline_dice"] == y["baseline_dice"]), "baseline untouched");
}

#[test]
fn a_torn_last_line_is_dropped_and_its_swap_computed_again() {
    let dir = tempfile::tempdir().unwrap();
    let (t, s, data) = unet();
    let clean = dir.path().join("clean");
    audit(&t, &s, &data, &clean, &UNET_KINDS).assert().success();
    let out = dir.path().join("resumed");
    killed(&t, &s, &data, &out, &UNET_KINDS, 5, true);
    let text = std::fs::read_to_string(journal_of(&out)).unwrap();
    assert!(!text.ends_with('\n'), "the hook leaves half a line");
    assert_eq!(text.matches('\n').count(), 6);
    audit(&t, &s, &data, &out, &UNET_KINDS)
        .arg("--resume")
        .assert()
        .success()
        .stderr(predicate::str::contains("cut short").and(predicate::str::contains("resume: 4 of 36 swap(s) kept")));
    assert_same_files(&clean, &out);
}

#[test]
fn journaled_swaps_are_taken_from_the_journal_not_recomputed() {
    // A swap's journaled result replaced by a value no computation gives (checksum redone):
    // the resumed report shows it, so the swap was not run again.
    let dir = tempfile::tempdir().unwrap();
    let (t, s, data) = unet();
    let out = dir.path().join("out");
    killed(&t, &s, &data, &out, &UNET_KINDS, 4, false);
    let mut lines = journal_lines(&out);
    let mut rec = json_of(&lines[3]);
    let key = rec["swap"]["key"].as_str().unwrap().to_string();
    rec["swap"]["result"]["swapped"]["mean"] = serde_json::json!(0.123456789);
    lines[3] = resigned(&rec);
    std::fs::write(journal_of(&out), lines.join("\n") + "\n").unwrap();
    audit(&t, &s, &data, &out, &UNET_KINDS).arg("--resume").assert().success();
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let mut parts = key.split(' ');
    let (family, layer, kind) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    let row = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["family"] == family
                && r["layer"].as_u64().map(|l| l.to_string()).as_deref() == Some(layer)
                && r["kind"] == kind
        })
        .unwrap();
    assert_eq!(row["swapped_dice"], 0.123456789, "{row}");
}

#[test]
fn every_strategy_resumes_to_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let t = save(&tiny_cnn(&Spec::default()), dir.path(), "t.onnx");
    let s = save(&tiny_cnn(&Spec { seed: 2, ..Spec::default() }), dir.path(), "s.onnx");
    let data = dir.path().join("val.npz");
    npz(&data, 6, 8, None, 3);
    for strategy in ["naive", "shared", "incremental"] {
        let extra = ["--strategy", strategy, "--labels", "baseline"];
        let clean = dir.path().join(format!("clean-{strategy}"));
        audit(&t, &s, &data, &clean, &extra).assert().success();
        for records in [1, 6] {
            let out = dir.path().join(format!("resumed-{strategy}-{records}"));
            killed(&t, &s, &data, &out, &extra, records, false);
            audit(&t, &s, &data, &out, &extra)
                .arg("--resume")
                .assert()
                .success()
                .stderr(predicate::str::contains(format!("resume: {} of 14 swap(s) kept", records - 1)));
            assert_same_files(&clean, &out);
        }
    }
}

#[test]
fn a_journal_of_other_inputs_or_settings_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let t = save(&tiny_cnn(&Spec::default()), dir.path(), "t.onnx");
    let s = save(&tiny_cnn(&Spec { seed: 2, ..Spec::default() }), dir.path(), "s.onnx");
    let s2 = save(&tiny_cnn(&Spec { seed: 5, ..Spec::default() }), dir.path(), "s2.onnx");
    let data = dir.path().join("val.npz");
    let data2 = dir.path().join("val2.npz");
    npz(&data, 6, 8, None, 3);
    npz(&data2, 6, 8, None, 4);
    let out = dir.path().join("out");
    let lf = ["--labels", "baseline"];
    killed(&t, &s, &data, &out, &lf, 4, false);
    let before = std::fs::read(journal_of(&out)).unwrap();
    let refused = |s: &Path, data: &Path, extra: &[&str], says: &str| {
        audit(&t, s, data, &out, &lf)
            .args(extra)
            .arg("--resume")
            .assert()
            .code(2)
            .stderr(predicate::str::contains("the journal is of another audit").and(predicate::str::contains(says)));
        assert!(!out.exists());
        assert_eq!(std::fs::read(journal_of(&out)).unwrap(), before, "a refused resume leaves the journal as it was");
    };
    refused(&s2, &data, &[], "source model:");
    refused(&s, &data2, &[], "validation data (as preprocessed):");
    refused(&s, &data, &["--kinds", "W"], "--kinds: W,B,RM,RV,RW,RB vs W");
    refused(&s, &data, &["--normalize", "minmax"], "--normalize: zscore vs minmax");
    refused(&s, &data, &["--strategy", "naive"], "--strategy: incremental vs naive");
    // A flag that changes no number (the tolerance) may change: the report follows it.
    audit(&t, &s, &data, &out, &lf).args(["--tolerance", "0.5", "--resume"]).assert().success();
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["settings"]["tolerance"], 0.5);
}

#[test]
fn a_damaged_journal_or_one_left_behind_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let t = save(&tiny_cnn(&Spec::default()), dir.path(), "t.onnx");
    let s = save(&tiny_cnn(&Spec { seed: 2, ..Spec::default() }), dir.path(), "s.onnx");
    let data = dir.path().join("val.npz");
    npz(&data, 6, 8, None, 3);
    let out = dir.path().join("out");
    let lf = ["--labels", "baseline"];
    killed(&t, &s, &data, &out, &lf, 5, false);
    // Without --resume, the journal is neither overwritten nor ignored.
    audit(&t, &s, &data, &out, &lf).assert().code(2).stderr(
        predicate::str::contains("add --resume to continue it").and(predicate::str::contains("4 swap(s) done")),
    );
    // One byte changed in a middle line: corruption, not a torn write.
    let mut lines = journal_lines(&out);
    lines[2] = lines[2].replacen("0.", "1.", 1);
    std::fs::write(journal_of(&out), lines.join("\n") + "\n").unwrap();
    audit(&t, &s, &data, &out, &lf)
        .arg("--resume")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("journal line 3 fails its checksum"));
    assert!(!out.exists());
    // A planted baseline unlike the one computed now (checksum redone): refused, since the
    // journal's swaps would be compared with another baseline.
    let mut lines = journal_lines(&out);
    lines.truncate(2);
    let mut base = json_of(&lines[1]);
    base["baseline"]["result"]["mean"] = serde_json::json!(0.5);
    lines[1] = resigned(&base);
    std::fs::write(journal_of(&out), lines.join("\n") + "\n").unwrap();
    audit(&t, &s, &data, &out, &lf)
        .arg("--resume")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not the journal's (mean 0.5"));
    assert!(!out.exists());
}

#[test]
fn resume_needs_out_and_starts_when_there_is_no_journal() {
    let dir = tempfile::tempdir().unwrap();
    let t = save(&tiny_cnn(&Spec::default()), dir.path(), "t.onnx");
    let data = dir.path().join("val.npz");
    npz(&data, 6, 8, None, 3);
    audit_cmd(&t, &t, &data)
        .args(["--labels", "baseline", "--resume"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--resume: needs --out"));
    let out = dir.path().join("out");
    audit(&t, &t, &data, &out, &["--labels", "baseline", "--resume"])
        .assert()
        .success()
        .stderr(predicate::str::contains("nothing to resume"));
    assert!(out.join("report.json").exists());
    assert!(!journal_of(&out).exists());
}

#[test]
fn a_failed_audit_keeps_a_journal_only_when_it_holds_swaps() {
    let dir = tempfile::tempdir().unwrap();
    // The target's output is NaN on image 19 only (the probe batch does not see it): the
    // baseline fails after the journal is opened, before any swap.
    let mut m = tiny_cnn(&Spec::default());
    let g = m.graph.as_mut().unwrap();
    g.initializer.push(tensor("shift", &[1], &[1.0], Storage::Raw));
    g.initializer.push(tensor("zero", &[1], &[0.0], Storage::Raw));
    g.node.push(node("Add", "shifted", &["x", "shift"], &["xs"], vec![]));
    g.node.push(node("Sqrt", "root", &["xs"], &["r"], vec![]));
    g.node.push(node("Mul", "nothing", &["r", "zero"], &["r0"], vec![]));
    g.node.iter_mut().find(|n| n.name == "conv3").unwrap().output[0] = "y0".into();
    g.node.push(node("Add", "out", &["y0", "r0"], &["y"], vec![]));
    let t = save(&m, dir.path(), "t.onnx");
    let s = save(&tiny_cnn(&Spec { seed: 2, ..Spec::default() }), dir.path(), "s.onnx");
    let n = 20;
    let mut images: Vec<f32> = Rng::new(5).vec(n * 64, 1.0).iter().map(|v| v.abs() + 0.1).collect();
    images[19 * 64 + 2 * 8 + 3] = -5.0;
    let data = dir.path().join("val.npz");
    npz_arrays(&data, &[n, 1, 8, 8], &images, None);
    let out = dir.path().join("out");
    let args = ["--labels", "baseline", "--normalize", "none"];
    for _ in 0..2 {
        // Refused both times for the NaN, never for a journal left behind.
        audit(&t, &s, &data, &out, &args).assert().code(2).stderr(predicate::str::contains("NaN"));
        assert!(!journal_of(&out).exists(), "a journal without swaps is removed");
    }
    // Publishing fails after every swap (report.json is a folder): the journal stays, and
    // --resume writes the report from it once the way is clear.
    let t = save(&tiny_cnn(&Spec::default()), dir.path(), "t.onnx");
    let data = dir.path().join("ok.npz");
    npz(&data, 6, 8, None, 3);
    let clean = dir.path().join("clean");
    audit(&t, &s, &data, &clean, &args).assert().success();
    std::fs::create_dir_all(out.join("report.json")).unwrap();
    audit(&t, &s, &data, &out, &args)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("every swap's result is kept in").and(predicate::str::contains("--resume")));
    assert!(journal_of(&out).exists());
    std::fs::remove_dir_all(&out).unwrap();
    audit(&t, &s, &data, &out, &args)
        .arg("--resume")
        .assert()
        .success()
        .stderr(predicate::str::contains("resume: 14 of 14 swap(s) kept").and(predicate::str::contains("0 left")));
    assert_same_files(&clean, &out);
}

#[test]
fn two_audits_never_write_one_journal() {
    let dir = tempfile::tempdir().unwrap();
    let (t, s, data) = unet();
    let out = dir.path().join("out");
    // A slow audit (a new session per swap), left running while a second one tries.
    let mut first = std::process::Command::new(assert_cmd::cargo::cargo_bin("reuse-audit"))
        .arg("audit")
        .arg(&t)
        .arg(&s)
        .arg("--data")
        .arg(&data)
        .args(["--kinds", "W,B", "--strategy", "naive", "-q", "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let journal = journal_of(&out);
    let start = std::time::Instant::now();
    while std::fs::read_to_string(&journal).map_or(0, |t| t.lines().count()) < 2 {
        assert!(start.elapsed().as_secs() < 120, "the first audit wrote no baseline");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for resume in [false, true] {
        let mut c = audit(&t, &s, &data, &out, &["--kinds", "W,B", "--strategy", "naive"]);
        if resume {
            c.arg("--resume");
        }
        c.assert().code(2).stderr(predicate::str::contains("another audit is writing this journal"));
    }
    first.kill().unwrap();
    first.wait().unwrap();
}

#[test]
fn an_adaptive_audit_resumes_to_the_same_bytes() {
    // Adaptive rounds (32 images, then all 48): swaps decided on the first round are
    // journaled before the baseline, which is final only after the last round.
    let dir = tempfile::tempdir().unwrap();
    let (t, s, data) = unet();
    let extra = ["--kinds", "W,B", "--adaptive"];
    let clean = dir.path().join("clean");
    audit(&t, &s, &data, &clean, &extra).assert().success();
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(clean.join("report.json")).unwrap()).unwrap();
    assert!(report.to_string().contains("\"images_used\":32"), "swaps stop after the first round");
    let out = dir.path().join("resumed");
    killed(&t, &s, &data, &out, &extra, 6, false);
    let lines = journal_lines(&out);
    assert!(lines[1..].iter().all(|l| json_of(l).get("swap").is_some()), "six swaps, no baseline yet");
    audit(&t, &s, &data, &out, &extra)
        .arg("--resume")
        .assert()
        .success()
        .stderr(predicate::str::contains("resume: 6 of 36 swap(s) kept"));
    assert_same_files(&clean, &out);
    // In chunks of one image: killed in the second round, after its first chunks.
    let extra = ["--kinds", "W,B", "--adaptive", "--cache-mb", "1"];
    let out = dir.path().join("chunked");
    audit(&t, &s, &data, &out, &extra).assert().success();
    assert_same_files(&clean, &out);
    std::fs::remove_dir_all(&out).unwrap();
    // 31 chunks and the 36 swaps of the first round, then the second round's chunks (the
    // baseline's only: every swap is decided on 32 images).
    killed(&t, &s, &data, &out, &extra, 70, false);
    let lines = journal_lines(&out);
    assert_eq!(lines.iter().filter(|l| json_of(l).get("swap").is_some()).count(), 36, "first-round swaps journaled");
    assert!(lines.iter().any(|l| json_of(l)["chunk"]["first"].as_u64() > Some(31)), "a second-round chunk");
    audit(&t, &s, &data, &out, &extra).arg("--resume").assert().success();
    assert_same_files(&clean, &out);
}

#[test]
fn a_journal_line_that_is_not_utf8_was_called_line_0() {
    // A byte that is not UTF-8 in line 3 was reported as `journal line 0`.
    let dir = tempfile::tempdir().unwrap();
    let t = save(&tiny_cnn(&Spec::default()), dir.path(), "t.onnx");
    let s = save(&tiny_cnn(&Spec { seed: 2, ..Spec::default() }), dir.path(), "s.onnx");
    let data = dir.path().join("val.npz");
    npz(&data, 6, 8, None, 3);
    let out = dir.path().join("out");
    let lf = ["--labels", "baseline"];
    killed(&t, &s, &data, &out, &lf, 3, false);
    let mut bytes = std::fs::read(journal_of(&out)).unwrap();
    let third = bytes.iter().enumerate().filter(|(_, &b)| b == b'\n').nth(1).unwrap().0 + 10;
    bytes[third] = 0xff;
    std::fs::write(journal_of(&out), bytes).unwrap();
    audit(&t, &s, &data, &out, &lf)
        .arg("--resume")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("journal line 3 is not UTF-8 text"));
}

#[test]
fn a_resume_before_the_baseline_was_journaled_timed_itself_as_a_whole_run() {
    // Found on 1000 held-out slices: a chunked audit killed before its last chunk (chunks
    // counted, no baseline yet) or an adaptive one killed in its first rounds (swaps
    // journaled, the baseline only after the last round) resumed with `timing.scope: "run"`,
    // while `image_forwards` counted only what the resumed run computed (15580 of 19000):
    // a whole run's scope on a part of its work. Anything taken from the journal makes it
    // `resumed` now; a `--resume` that found no journal, or took nothing from it, stays `run`.
    let dir = tempfile::tempdir().unwrap();
    let (t, s, data) = unet();
    let timing = |out: &Path| -> serde_json::Value {
        let r: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
        r["timing"].clone()
    };
    // 48 images x (18 conv W swaps + the baseline), in chunks of one image.
    let chunked = ["--kinds", "W", "--cache-mb", "1"];
    let out = dir.path().join("chunked");
    killed(&t, &s, &data, &out, &chunked, 5, false);
    assert!(journal_lines(&out)[1..].iter().all(|l| json_of(l).get("chunk").is_some()), "five chunks, no baseline");
    let out2 = dir.path().join("rechunked");
    std::fs::copy(journal_of(&out), journal_of(&out2)).unwrap();
    audit(&t, &s, &data, &out, &chunked).arg("--resume").assert().success();
    let tm = timing(&out);
    // Chunks 2-5 (images 1..5) were taken from the journal: 4 x 19 image forwards not run.
    assert_eq!(tm["image_forwards"].as_u64(), Some(48 * 19 - 4 * 19), "{tm}");
    assert_eq!(tm["scope"], "resumed", "{tm}");
    // The same journal resumed in other chunks (30 images each): none is taken, all is run.
    audit(&t, &s, &data, &out2, &["--kinds", "W", "--cache-mb", "64"]).arg("--resume").assert().success();
    let tm = timing(&out2);
    assert_eq!((tm["scope"].as_str(), tm["image_forwards"].as_u64()), (Some("run"), Some(48 * 19)), "{tm}");
    // Adaptive: four swaps decided on the first 32 images journaled, no baseline.
    let adaptive = ["--kinds", "W", "--adaptive"];
    let out = dir.path().join("adaptive");
    killed(&t, &s, &data, &out, &adaptive, 4, false);
    assert!(journal_lines(&out)[1..].iter().all(|l| json_of(l).get("swap").is_some()), "four swaps, no baseline");
    audit(&t, &s, &data, &out, &adaptive).arg("--resume").assert().success();
    assert_eq!(timing(&out)["scope"], "resumed", "{}", timing(&out));
    // A --resume with no journal to resume from is a whole run.
    let out = dir.path().join("fresh");
    audit(&t, &s, &data, &out, &adaptive).arg("--resume").assert().success();
    assert_eq!(timing(&out)["scope"], "run", "{}", timing(&out));
}
