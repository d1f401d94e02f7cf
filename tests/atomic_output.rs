//! Atomic, exclusive output (issue 14): a report folder is published whole, so a failure, a
//! `kill -9` or a second run on the same `--out` leaves the previous report or the new one,
//! never a mix, and no temporary files.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;

/// Every file under `dir` with its bytes, by relative path (empty when `dir` is missing).
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Names beside `dir` that a run may have left (`.NAME.tmp-*`, `.NAME.old-*`).
fn leftovers(dir: &Path) -> Vec<String> {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!(".{name}.")))
        .collect()
}

/// A target and two sources whose reports differ in every format.
fn models(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let t = save(&tiny_cnn(&Spec::default()), dir, "t.onnx");
    let a = save(&tiny_cnn(&Spec { seed: 2, ..Spec::default() }), dir, "a.onnx");
    let b = save(&tiny_cnn(&Spec { seed: 3, ..Spec::default() }), dir, "b.onnx");
    (t, a, b)
}

fn rmse_cmd(t: &Path, s: &Path, out: &Path) -> assert_cmd::Command {
    let mut c = bin();
    c.arg("rmse").arg(t).arg(s).arg("--out").arg(out).args(["--format", "csv,json,html,md", "-q"]);
    c
}

/// `rmse_cmd` started in the background (stdout discarded).
fn spawn_rmse(t: &Path, s: &Path, out: &Path) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("reuse-audit"))
        .arg("rmse")
        .arg(t)
        .arg(s)
        .arg("--out")
        .arg(out)
        .args(["--format", "csv,json,html,md", "-q"])
        .env_remove("ORT_DYLIB_PATH")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// The report of one run into a fresh folder, as the reference a published folder must equal.
fn reference(t: &Path, s: &Path, dir: &Path, name: &str) -> BTreeMap<String, Vec<u8>> {
    let out = dir.join(name);
    rmse_cmd(t, s, &out).assert().success();
    let snap = snapshot(&out);
    assert!(snap.keys().any(|k| k.starts_with("figures/")), "html brings figures: {:?}", snap.keys());
    snap
}

#[test]
fn report_json_as_a_folder_left_temp_files_and_renamed_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (t, a, _) = models(dir.path());
    let out = dir.path().join("out");
    std::fs::create_dir_all(out.join("report.json")).unwrap();
    std::fs::write(out.join("report.json").join("keep.txt"), "mine").unwrap();
    std::fs::write(out.join("report.csv"), "old csv").unwrap();
    let before = snapshot(&out);
    let res = rmse_cmd(&t, &a, &out).output().unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("report.json") && stderr.contains("is a folder"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(snapshot(&out), before, "the previous contents are untouched");
    assert!(leftovers(&out).is_empty(), "{:?}", leftovers(&out));
}

#[test]
fn out_that_is_a_file_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (t, a, _) = models(dir.path());
    let out = dir.path().join("out");
    std::fs::write(&out, "not a folder").unwrap();
    let res = rmse_cmd(&t, &a, &out).output().unwrap();
    assert_eq!(res.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&res.stderr).contains("is not a folder"));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "not a folder");
    assert!(leftovers(&out).is_empty());
}

#[test]
fn rerun_replaces_the_report_whole_and_keeps_files_it_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let (t, a, b) = models(dir.path());
    let ref_b = reference(&t, &b, dir.path(), "ref-b");
    let out = dir.path().join("out");
    rmse_cmd(&t, &a, &out).assert().success();
    // Files a user put beside the report, and a stale figure of an older run.
    std::fs::write(out.join("screenshot.png"), "png bytes").unwrap();
    std::fs::create_dir(out.join("notes")).unwrap();
    std::fs::write(out.join("notes").join("n.txt"), "notes").unwrap();
    std::fs::write(out.join("figures").join("stale.svg"), "<svg/>").unwrap();
    rmse_cmd(&t, &b, &out).assert().success();
    let mut want = ref_b.clone();
    want.insert("screenshot.png".into(), b"png bytes".to_vec());
    want.insert("notes/n.txt".into(), b"notes".to_vec());
    assert_eq!(snapshot(&out), want, "run b's report exactly, the user's files kept, no stale figure");
    // A narrower rerun drops the formats it did not write: no file from the older run stays.
    bin().arg("rmse").arg(&t).arg(&a).arg("--out").arg(&out).args(["--format", "csv", "-q"]).assert().success();
    let names: Vec<String> = snapshot(&out).into_keys().collect();
    assert_eq!(names, ["notes/n.txt", "report.csv", "screenshot.png"]);
    assert!(leftovers(&out).is_empty(), "{:?}", leftovers(&out));
}

#[test]
fn two_runs_on_one_out_interleaved_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let (t, a, b) = models(dir.path());
    let refs = [reference(&t, &a, dir.path(), "ref-a"), reference(&t, &b, dir.path(), "ref-b")];
    let out = dir.path().join("out");
    for round in 0..3 {
        let children: Vec<_> = (0..6).map(|i| spawn_rmse(&t, if i % 2 == 0 { &a } else { &b }, &out)).collect();
        for mut c in children {
            assert!(c.wait().unwrap().success());
        }
        let got = snapshot(&out);
        assert!(refs.contains(&got), "round {round}: the folder holds one run's report, whole");
        assert!(leftovers(&out).is_empty(), "{:?}", leftovers(&out));
    }
}

#[test]
fn kill_9_while_writing_left_a_partial_report() {
    let dir = tempfile::tempdir().unwrap();
    let (t, a, b) = models(dir.path());
    let refs = [reference(&t, &a, dir.path(), "ref-a"), reference(&t, &b, dir.path(), "ref-b")];
    let out = dir.path().join("out");
    rmse_cmd(&t, &a, &out).assert().success();
    // How long a run takes here, then kills spread over it (seeded).
    let started = std::time::Instant::now();
    rmse_cmd(&t, &b, &out).assert().success();
    let span = started.elapsed().as_micros() as u64;
    let mut rng = Rng::new(14);
    for i in 0..24 {
        let mut child = spawn_rmse(&t, if i % 2 == 0 { &a } else { &b }, &out);
        let at = (span as f32 * (0.5 + rng.next().abs() * 0.7)) as u64;
        std::thread::sleep(std::time::Duration::from_micros(at));
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        assert!(refs.contains(&snapshot(&out)), "kill {i} at {at} us: a whole report is in place");
    }
    // Whatever the kills left beside the folder is swept by the next run.
    rmse_cmd(&t, &a, &out).assert().success();
    assert_eq!(snapshot(&out), refs[0]);
    assert!(leftovers(&out).is_empty(), "{:?}", leftovers(&out));
}

#[test]
fn a_report_parked_by_a_killed_publish_is_restored_and_temp_folders_swept() {
    let dir = tempfile::tempdir().unwrap();
    let (t, a, _) = models(dir.path());
    let ref_a = reference(&t, &a, dir.path(), "ref-a");
    let out = dir.path().join("out");
    // As a run killed between the two renames of the portable fallback leaves it: the old
    // report parked, the new one complete in its temporary folder, `out` missing.
    std::fs::create_dir(dir.path().join(".out.old-1-1-0")).unwrap();
    std::fs::write(dir.path().join(".out.old-1-1-0").join("screenshot.png"), "png").unwrap();
    std::fs::create_dir_all(dir.path().join(".out.tmp-1-2-0").join("figures")).unwrap();
    std::fs::write(dir.path().join(".out.tmp-1-2-0").join("report.csv"), "half").unwrap();
    rmse_cmd(&t, &a, &out).assert().success();
    let mut want = ref_a;
    want.insert("screenshot.png".into(), b"png".to_vec());
    assert_eq!(snapshot(&out), want, "the parked folder's own file came back");
    assert!(leftovers(&out).is_empty(), "{:?}", leftovers(&out));
}

#[test]
fn a_run_waits_for_the_lock_on_the_parent_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (t, a, _) = models(dir.path());
    let parent = dir.path().join("reports");
    std::fs::create_dir(&parent).unwrap();
    let out = parent.join("out");
    let lock = std::fs::File::open(&parent).unwrap();
    lock.lock().unwrap();
    let mut child = spawn_rmse(&t, &a, &out);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(child.try_wait().unwrap().is_none(), "the run waits while another writer holds the lock");
    assert!(!out.exists());
    lock.unlock().unwrap();
    assert!(child.wait().unwrap().success());
    assert!(snapshot(&out).len() > 2, "the report was published after the lock was released");
}

#[test]
fn out_naming_a_file_or_the_current_folder_was_refused_only_after_the_whole_audit() {
    // `--out report.txt` (an existing file) or `--out $PWD` computed every swap, then failed
    // to publish and left `report.txt.journal` behind with a note to rerun with --resume
    // (for `--out /dev/null`, `/dev/null.journal`). Now refused before any work.
    let dir = tempfile::tempdir().unwrap();
    let t = save(&tiny_cnn(&Spec::default()), dir.path(), "t.onnx");
    let s = save(&tiny_cnn(&Spec { seed: 2, ..Spec::default() }), dir.path(), "s.onnx");
    let data = dir.path().join("val.npz");
    npz(&data, 2, 8, Some(&[1u8; 2 * 64]), 5);
    let file = dir.path().join("report.txt");
    std::fs::write(&file, b"keep me").unwrap();
    let here = dir.path().join("here");
    std::fs::create_dir(&here).unwrap();
    let check = |cmd: &mut assert_cmd::Command, needle: &str| {
        let out = cmd.output().unwrap();
        let e = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{e}");
        assert!(e.contains(needle) && !e.contains("journal") && !e.contains("panicked"), "{e}");
        assert!(out.stdout.is_empty(), "no table before the refusal: {}", String::from_utf8_lossy(&out.stdout));
    };
    let is_file = "report.txt: exists and is not a folder";
    check(audit_cmd(&t, &s, &data).arg("--out").arg(&file), is_file);
    check(bin().arg("rmse").arg(&t).arg(&s).arg("--out").arg(&file), is_file);
    check(bin().arg("matrix").arg(&t).arg(&s).arg("--out").arg(&file), is_file);
    check(bin().arg("merge").arg(&here).arg("--out").arg(&file), is_file);
    check(audit_cmd(&t, &s, &data).arg("--out").arg(&here).current_dir(&here), "is the current folder");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    let mut names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["here", "report.txt", "s.onnx", "t.onnx", "val.npz"], "nothing written beside them");
}
