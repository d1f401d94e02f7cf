//! Data memory (found and left: "a 4.7 MB npz of 2^30 uint8 values aborts on memory"): within
//! the per-file limits, a small compressed file could still take more memory than the
//! machine had (f64 values of the whole array, and a copy of each image beside them: 16
//! bytes a value), and the process died on an allocation failure. Now images stream in one
//! at a time, are held as float32 where that is exact (4 bytes a uint8 value), and what the
//! headers declare is held against the memory available before anything is allocated: more
//! is refused with exit 2, naming the file and the size. `REUSE_AUDIT_MEMORY_MB` sets the
//! memory the data may take, which makes these cases small.

mod common;

use std::io::Write;
use std::path::Path;

use common::*;

fn refused(cmd: &mut assert_cmd::Command, needles: &[&str]) {
    let out = cmd.output().unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{e}");
    for n in needles {
        assert!(e.contains(n), "'{n}' missing from: {e}");
    }
    assert!(!e.contains("panicked") && !e.contains("memory allocation"), "{e}");
}

/// A deflated `.npz` of `n` uint8 images of `size` x `size` (all 0) and, when given, uint8
/// label maps (all `label`).
fn u8_npz(path: &Path, n: usize, size: usize, label: Option<u8>) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let zeros = vec![0u8; n * size * size];
    zip.start_file("images.npy", opts).unwrap();
    zip.write_all(&reuse_audit::data::npy::npy_bytes("|u1", &[n, size, size], &zeros)).unwrap();
    if let Some(l) = label {
        zip.start_file("labels.npy", opts).unwrap();
        zip.write_all(&reuse_audit::data::npy::npy_bytes("|u1", &[n, size, size], &vec![l; n * size * size])).unwrap();
    }
    zip.finish().unwrap();
}

#[test]
fn npz_of_2_30_uint8_values_aborted_on_memory() {
    let dir = tempfile::tempdir().unwrap();
    let m = save(&tiny_cnn(&Spec::default()), dir.path(), "m.onnx");
    // 64 x 256 x 256 uint8 (2^22 values, a few KB deflated) is 16 MiB held as float32.
    let data = dir.path().join("val.npz");
    u8_npz(&data, 64, 256, None);
    assert!(std::fs::metadata(&data).unwrap().len() < 100_000);
    let out = dir.path().join("out");
    refused(
        audit_cmd(&m, &m, &data)
            .args(["--fit", "resize", "--labels", "baseline"])
            .arg("--out")
            .arg(&out)
            .env("REUSE_AUDIT_MEMORY_MB", "8"),
        &[
            "val.npz",
            "images [64, 256, 256]",
            "16.0 MiB (16777216 bytes)",
            "8.0 MiB available (REUSE_AUDIT_MEMORY_MB=8)",
            "refused before allocating",
        ],
    );
    assert!(!out.exists(), "nothing is written");
    // Labels count too: 32 MiB with them.
    u8_npz(&data, 64, 256, Some(0));
    refused(
        audit_cmd(&m, &m, &data).args(["--fit", "resize"]).env("REUSE_AUDIT_MEMORY_MB", "24"),
        &["labels [64, 256, 256]", "32.0 MiB (33554432 bytes)"],
    );
    // With room for them the same data is audited.
    let ok = audit_cmd(&m, &m, &data).args(["--fit", "resize", "--quiet"]).env("REUSE_AUDIT_MEMORY_MB", "64").output();
    let ok = ok.unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    refused(
        audit_cmd(&m, &m, &data).env("REUSE_AUDIT_MEMORY_MB", "lots"),
        &["REUSE_AUDIT_MEMORY_MB", "'lots' is not a whole number of MiB"],
    );
}

#[test]
fn images_fed_at_a_larger_size_are_held_against_what_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let mut net = tiny_cnn(&Spec::default());
    free_spatial(&mut net);
    let m = save(&net, dir.path(), "free.onnx");
    // 64 images of 8 x 8 (16 KiB held) fed at 512 x 512: 64 MiB of float32.
    let data = dir.path().join("val.npz");
    u8_npz(&data, 64, 8, None);
    refused(
        audit_cmd(&m, &m, &data)
            .args(["--size", "512x512", "--fit", "resize", "--labels", "baseline"])
            .env("REUSE_AUDIT_MEMORY_MB", "32"),
        &[
            "val.npz",
            "64 images fed to the model's input",
            "64.0 MiB (67108864 bytes)",
            "less the 16.0 KiB the data holds already",
            "--size",
        ],
    );
}

/// A NIfTI-1 `.nii.gz` of uint8 zeros of `dims`.
fn zeros_nii_gz(path: &Path, dims: &[u16]) {
    let voxels = dims.iter().map(|&d| usize::from(d)).product();
    let bytes = reuse_audit::data::nifti::nii_bytes(dims, 2, 8, (1.0, 0.0), &vec![0u8; voxels], false);
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(path).unwrap(), flate2::Compression::fast());
    gz.write_all(&bytes).unwrap();
    gz.finish().unwrap();
}

#[test]
fn nii_gz_and_png_folders_are_held_against_the_memory_too() {
    let dir = tempfile::tempdir().unwrap();
    let m = save(&tiny_cnn(&Spec::default()), dir.path(), "m.onnx");
    // Two 256 x 256 x 64 uint8 volumes (a few KB compressed): 32 MiB of slices as held, and
    // the pair read (raw and f64: 9 bytes a voxel) beside them, 104 MiB in all.
    let vols = dir.path().join("vols");
    std::fs::create_dir(&vols).unwrap();
    for name in ["a.nii.gz", "a_gt.nii.gz"] {
        zeros_nii_gz(&vols.join(name), &[256, 256, 64]);
    }
    refused(
        audit_cmd(&m, &m, &vols).args(["--fit", "resize"]).env("REUSE_AUDIT_MEMORY_MB", "100"),
        &["vols", "1 volume pair(s)", "104.0 MiB (109051904 bytes)", "refused before allocating"],
    );
    // A PNG folder: 16 gray 512 x 512 images and masks, 32 MiB as held.
    let png = dir.path().join("png");
    for sub in ["images", "masks"] {
        std::fs::create_dir_all(png.join(sub)).unwrap();
        for i in 0..16 {
            let bytes = reuse_audit::data::png_folder::gray_png_bytes(512, 512, &vec![0u8; 512 * 512]).unwrap();
            std::fs::write(png.join(sub).join(format!("{i:02}.png")), bytes).unwrap();
        }
    }
    refused(
        audit_cmd(&m, &m, &png).args(["--fit", "resize"]).env("REUSE_AUDIT_MEMORY_MB", "16"),
        &["png", "16 image(s) and their masks", "32.0 MiB (33554432 bytes)"],
    );
}

/// Holding uint8 data as f64 twice over (16 bytes a value) is what aborted: with the data
/// segment of the process capped at 560 MiB, 2 x 2^25 uint8 values (images and labels, 64
/// KB deflated) were 1 GiB of f64 and copies, and the audit died on an allocation failure;
/// held as float32 and streamed, they take 256 MiB and the audit runs.
#[cfg(target_os = "linux")]
#[test]
fn uint8_data_is_held_as_float32_without_copies() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let m = save(&tiny_cnn(&Spec::default()), dir.path(), "m.onnx");
    let data = dir.path().join("val.npz");
    u8_npz(&data, 512, 256, Some(0));
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("reuse-audit"));
    cmd.arg("audit").arg(&m).arg(&m).arg("--data").arg(&data);
    cmd.args(["--fit", "resize", "--min-baseline", "0", "--quiet", "--kinds", "W"]).env_remove("ORT_DYLIB_PATH");
    let cap = 560 * 1024 * 1024;
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit { rlim_cur: cap, rlim_max: cap };
            match libc::setrlimit(libc::RLIMIT_DATA, &limit) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    let out = cmd.output().unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{e}");
}

/// Found at scale (1000 held-out slices: peak RSS 1.3 GB, the default 1024 MiB activation
/// cache in use whatever the machine had): the incremental strategy's default cache budget
/// did not look at the memory there is, so on a machine (or cgroup) with less room than
/// 1 GiB a large set was killed by the kernel mid-audit, no message, no report, where a
/// smaller budget only cuts the set into more chunks. The default is now at most half the
/// room (here `REUSE_AUDIT_MEMORY_MB` less the data), said on stderr, and the report is the
/// same bytes as with the full budget.
#[test]
fn default_cache_outgrew_the_memory_available() {
    let dir = tempfile::tempdir().unwrap();
    let (t, s) = (root().join("models/unet-acdc-seg.onnx"), root().join("models/unet-acdc-ae.onnx"));
    let data = root().join("models/data/acdc-val.npz");
    // 48 slices x 2.1 MiB of cached activations (conv W only) = 101 MiB in one chunk by default.
    let run = |out: &str, extra: &[&str], cap: Option<&str>| {
        let mut c = guarded_audit_cmd(&t, &s, &data);
        c.args(["--kinds", "W", "--no-timing", "--format", "csv,json", "--out"]).arg(dir.path().join(out)).args(extra);
        if let Some(mb) = cap {
            c.env("REUSE_AUDIT_MEMORY_MB", mb);
        }
        let o = c.output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{err}");
        let read = |f: &str| std::fs::read(dir.path().join(out).join(f)).unwrap();
        ((read("report.json"), read("report.csv")), err)
    };
    let (capped, err) = run("capped", &[], Some("100"));
    // 100 MiB less the data (1.5 MiB), halved: 49 MiB, chunks of 22 images.
    assert!(
        err.contains("chunks of up to 22 images (--cache-mb 49: half the 98.5 MiB of memory available, REUSE_AUDIT_MEMORY_MB=100)"),
        "{err}"
    );
    let (full, err) = run("full", &["--cache-mb", "1024"], Some("100"));
    assert!(err.contains("chunks of up to 48 images (--cache-mb 1024)"), "an explicit budget stands: {err}");
    assert!(capped == full, "the lowered budget changed the report");
    // With room to spare the default stays 1024 MiB, and says nothing more.
    let (_, err) = run("roomy", &[], Some("8192"));
    assert!(err.contains("(--cache-mb 1024)"), "{err}");
}
