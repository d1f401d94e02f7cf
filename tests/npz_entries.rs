//! `.npz` entry names (found and left: "duplicate zip entries in an npz are read from the
//! last one silently"). A zip file may hold two members of one name; `np.load` and the zip
//! reader both take the last, so which images were audited depended on the writer. An entry
//! named `x` is the array `x` to NumPy as much as `x.npy` is, so both at once are as
//! ambiguous. Both are refused naming the file and the entries; a lone `images` entry is read
//! as NumPy reads it; a missing array and arrays the tool does not read are named.

mod common;

use std::io::Write;
use std::path::Path;

use common::*;

/// An `.npz` of the given (entry name, `.npy` bytes), written with the zip writer NumPy's
/// archives resemble (it keeps duplicate names).
fn archive(path: &Path, entries: &[(&str, Vec<u8>)]) {
    let mut zip = npyz::zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, bytes) in entries {
        zip.start_file(*name, npyz::zip::write::FileOptions::default()).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

/// `n` 8 x 8 float32 images, all `v`.
fn images(n: usize, v: f32) -> Vec<u8> {
    reuse_audit::data::npy::npy_f32_bytes(&[n, 1, 8, 8], &vec![v; n * 64])
}

/// `n` 8 x 8 label maps: class `(i + j) % 3`.
fn labels(n: usize) -> Vec<u8> {
    let l: Vec<u8> = (0..n * 64).map(|k| ((k % 8 + (k / 8) % 8) % 3) as u8).collect();
    reuse_audit::data::npy::npy_bytes("|u1", &[n, 8, 8], &l)
}

fn refused(cmd: &mut assert_cmd::Command, needles: &[&str]) {
    let out = cmd.output().unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{e}");
    for n in needles {
        assert!(e.contains(n), "'{n}' missing from: {e}");
    }
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn npz_with_two_entries_of_one_name_was_read_from_the_last() {
    let t = tiny_pair(4);
    let data = t.dir.path().join("dup.npz");
    archive(&data, &[("images.npy", images(4, 1.0)), ("images.npy", images(4, 5.0)), ("labels.npy", labels(4))]);
    let out = t.dir.path().join("out");
    refused(
        audit_cmd(&t.t, &t.s, &data).arg("--out").arg(&out),
        &["dup.npz", "two entries named 'images.npy'", "rewrite the archive with one"],
    );
    assert!(!out.exists());
    // `labels` beside `labels.npy`: the one array twice.
    archive(&data, &[("images.npy", images(4, 1.0)), ("labels", labels(4)), ("labels.npy", labels(4))]);
    refused(
        &mut audit_cmd(&t.t, &t.s, &data),
        &["dup.npz", "both 'labels' and 'labels.npy'", "the one array 'labels'"],
    );
}

#[test]
fn npz_entry_named_without_npy_is_the_array_as_numpy_reads_it() {
    let t = tiny_pair(4);
    let run = |name: &str, entries: &[(&str, Vec<u8>)]| {
        let data = t.dir.path().join(name);
        archive(&data, entries);
        let out = t.dir.path().join(format!("{name}.out"));
        audit_cmd(&t.t, &t.s, &data).args(["--quiet", "--format", "csv"]).arg("--out").arg(&out).assert().success();
        std::fs::read(out.join("report.csv")).unwrap()
    };
    let plain = run("plain.npz", &[("images", images(4, 0.5)), ("labels", labels(4))]);
    let named = run("named.npz", &[("images.npy", images(4, 0.5)), ("labels.npy", labels(4))]);
    assert_eq!(plain, named, "the same arrays under either name give the same report");
}

#[test]
fn npz_missing_arrays_and_arrays_not_read_are_named() {
    let t = tiny_pair(4);
    let data = t.dir.path().join("keras.npz");
    archive(&data, &[("x.npy", images(4, 1.0)), ("y.npy", labels(4))]);
    refused(&mut audit_cmd(&t.t, &t.s, &data), &["keras.npz", "no 'images' array (it has: x, y)", "images=x"]);
    archive(&data, &[]);
    refused(&mut audit_cmd(&t.t, &t.s, &data), &["keras.npz", "no 'images' array (no arrays at all)"]);
    // Label maps saved as `masks` are not labels: said before the audit asks for labels.
    archive(&data, &[("images.npy", images(4, 1.0)), ("masks.npy", labels(4))]);
    refused(
        &mut audit_cmd(&t.t, &t.s, &data),
        &["array(s) 'masks' not read", "'labels' (which it has not)", "the data has no labels"],
    );
    // Beside labels, an extra array is a warning in the report too.
    archive(&data, &[("images.npy", images(4, 1.0)), ("labels.npy", labels(4)), ("ids.npy", labels(4))]);
    let out = t.dir.path().join("out");
    audit_cmd(&t.t, &t.s, &data).args(["--format", "json"]).arg("--out").arg(&out).assert().success();
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let warnings = report["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("array(s) 'ids' not read: the tool reads 'images' and 'labels'")),
        "{warnings:?}"
    );
}
