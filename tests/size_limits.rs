//! Declared sizes checked before allocating (issue 14): `inspect --flops --size 100000x100000`
//! aborted allocating 40 GB; a small `.nii.gz` declaring 1024^3 voxels was inflated before
//! failing; `.npy` shapes that overflow crashed the reader; `--threads 10000` built thousands
//! of sessions; a NIfTI volume without its `_gt` file was dropped without a word.

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

#[test]
fn inspect_flops_size_100000x100000_aborted_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = tiny_cnn(&Spec::default());
    free_spatial(&mut m);
    let p = save(&m, dir.path(), "free.onnx");
    let limit = ["100000x100000", "more than the 67108864 values (2^26"];
    refused(bin().args(["inspect", "--flops", "--size", "100000x100000"]).arg(&p), &limit);
    // 8192 x 8192 is the most one channel may be; one row more is refused.
    refused(bin().args(["inspect", "--flops", "--size", "8193x8192"]).arg(&p), &["8193x8192", "2^26"]);
    let data = dir.path().join("val.npz");
    npz(&data, 2, 8, Some(&[0u8; 128]), 1);
    refused(audit_cmd(&p, &p, &data).args(["--size", "100000x100000"]), &limit);
}

#[test]
fn model_declaring_a_huge_fixed_input_is_refused_before_feeding() {
    let dir = tempfile::tempdir().unwrap();
    let m = tiny_cnn(&Spec { size: 100_000, ..Spec::default() });
    let p = save(&m, dir.path(), "huge-input.onnx");
    refused(bin().args(["inspect", "--flops"]).arg(&p), &["huge-input.onnx", "1 x 100000 x 100000", "2^26"]);
    let data = dir.path().join("val.npz");
    npz(&data, 2, 8, Some(&[0u8; 128]), 1);
    refused(audit_cmd(&p, &p, &data).args(["--fit", "resize"]), &["huge-input.onnx", "1 x 100000 x 100000"]);
}

/// A NIfTI-1 `.nii.gz` whose header declares `dims` (uint8) but holds `payload` voxel bytes.
fn lying_nii_gz(path: &Path, dims: &[u16], payload: usize) {
    let bytes = reuse_audit::data::nifti::nii_bytes(dims, 2, 8, (1.0, 0.0), &vec![0u8; payload], false);
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(path).unwrap(), flate2::Compression::fast());
    gz.write_all(&bytes).unwrap();
    gz.finish().unwrap();
}

#[test]
fn small_nii_gz_declaring_1024_cubed_voxels_was_inflated() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("vols");
    std::fs::create_dir(&data).unwrap();
    // 2 MiB of zeros (a few KiB compressed) under a header that declares 1 GiB.
    for name in ["big.nii.gz", "big_gt.nii.gz"] {
        lying_nii_gz(&data.join(name), &[1024, 1024, 1024], 2 << 20);
    }
    let m = save(&tiny_cnn(&Spec::default()), dir.path(), "m.onnx");
    let started = std::time::Instant::now();
    refused(
        &mut audit_cmd(&m, &m, &data),
        &["big.nii.gz", "[1024, 1024, 1024] = 1073741824 voxels", "2^27", "refused before reading it"],
    );
    assert!(started.elapsed().as_secs() < 30);
    // Within the limit but longer than the payload: the bounded read says it is truncated.
    for name in ["big.nii.gz", "big_gt.nii.gz"] {
        lying_nii_gz(&data.join(name), &[512, 512, 256], 4096);
    }
    refused(&mut audit_cmd(&m, &m, &data), &["big.nii.gz", "truncated"]);
    // An uncompressed file is held against its length before anything is read.
    let nii = dir.path().join("flat");
    std::fs::create_dir(&nii).unwrap();
    for name in ["a.nii", "a_gt.nii"] {
        let b = reuse_audit::data::nifti::nii_bytes(&[64, 64, 64], 2, 8, (1.0, 0.0), &[0u8; 100], false);
        std::fs::write(nii.join(name), b).unwrap();
    }
    refused(&mut audit_cmd(&m, &m, &nii), &["a.nii", "262144 bytes from offset 352", "the file has 452 bytes"]);
}

#[test]
fn nifti_volume_without_its_gt_file_was_dropped_silently() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("vols");
    std::fs::create_dir(&data).unwrap();
    let vol = |name: &str| {
        let b = reuse_audit::data::nifti::nii_bytes(&[8, 8, 2], 2, 8, (1.0, 0.0), &[1u8; 128], false);
        std::fs::write(data.join(name), b).unwrap();
    };
    for name in ["p1.nii", "p1_gt.nii", "p2.nii", "p2_gt.nii", "p3.nii"] {
        vol(name);
    }
    let m = save(&tiny_cnn(&Spec::default()), dir.path(), "m.onnx");
    refused(
        &mut audit_cmd(&m, &m, &data),
        &["vols", "p3.nii has no label volume p3_gt.nii", "1 volume(s) without _gt"],
    );
    // With its labels the folder loads: 3 volumes of 2 slices.
    vol("p3_gt.nii");
    let out = audit_cmd(&m, &m, &data).args(["--json", "-q", "--kinds", "B"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["dataset"]["images"], 6);
}

fn npy_header_only(shape: &str) -> Vec<u8> {
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&[0u8; 16]);
    out
}

#[test]
fn npy_header_length_of_4_gib_was_allocated() {
    // Found by `cargo fuzz run npy`: a .npy (version 3) declaring a header of 0xffffffe5
    // bytes made the reader allocate 4 GiB for a 100-byte file.
    let dir = tempfile::tempdir().unwrap();
    let m = save(&tiny_cnn(&Spec::default()), dir.path(), "m.onnx");
    let mut bytes = b"\x93NUMPY\x03\x00".to_vec();
    bytes.extend_from_slice(&0xffff_ffe5u32.to_le_bytes());
    bytes.extend_from_slice(&[0xff; 90]);
    let p = dir.path().join("images.npy");
    std::fs::write(&p, &bytes).unwrap();
    let says = "header of 4294967269 bytes, more than the 65536";
    refused(&mut audit_cmd(&m, &m, &p), &["images.npy", says]);
    let z = dir.path().join("data.npz");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&z).unwrap());
    zip.start_file("images.npy", zip::write::SimpleFileOptions::default()).unwrap();
    zip.write_all(&bytes).unwrap();
    zip.finish().unwrap();
    refused(&mut audit_cmd(&m, &m, &z), &["data.npz", "images.npy", says]);
}

#[test]
fn npy_header_nested_16_deep_took_minutes_to_parse() {
    // Found by `cargo fuzz run npy` (a timeout): the header parser backtracks
    // exponentially in the nesting of brackets; a 230-byte file with `{` nested 80 deep hung
    // the audit, 16 deep took over two minutes, 14 deep 36 s. Refused before parsing.
    let dir = tempfile::tempdir().unwrap();
    let m = save(&tiny_cnn(&Spec::default()), dir.path(), "m.onnx");
    for depth in [16, 80] {
        let header = format!("{{'descr':{} '|u1', 'fortran_order': False, 'shape': (2,), }}", "{".repeat(depth));
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&[0, 0]);
        let p = dir.path().join("images.npy");
        std::fs::write(&p, &bytes).unwrap();
        let mut cmd = audit_cmd(&m, &m, &p);
        // The dict, the unclosed braces and the shape tuple under them.
        let says = format!("nests brackets {} deep, more than the 4", depth + 2);
        refused(cmd.timeout(std::time::Duration::from_secs(60)), &["images.npy", &says]);
    }
}

#[test]
fn npy_shape_that_overflows_crashed_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let m = save(&tiny_cnn(&Spec::default()), dir.path(), "m.onnx");
    let labels = dir.path().join("labels.npy");
    std::fs::write(&labels, reuse_audit::data::npy::npy_bytes("|u1", &[2, 8, 8], &[0u8; 128])).unwrap();
    for (shape, needle) in [
        ("(4294967296, 4294967296, 4)", "73786976294838206464 values, more than the 1073741824 (2^30)"),
        ("(1099511627776,)", "1099511627776 values"),
        ("(2, -3)", "negative dimension"),
    ] {
        let p = dir.path().join("images.npy");
        std::fs::write(&p, npy_header_only(shape)).unwrap();
        refused(audit_cmd(&m, &m, &p).arg("--labels").arg(&labels), &["images.npy", needle]);
        // The same array inside an .npz.
        let z = dir.path().join("data.npz");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&z).unwrap());
        zip.start_file("images.npy", zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(&npy_header_only(shape)).unwrap();
        zip.finish().unwrap();
        refused(&mut audit_cmd(&m, &m, &z), &["data.npz", "images.npy", needle]);
    }
}

#[test]
fn threads_10000_built_thousands_of_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let t = save(&tiny_cnn(&Spec::default()), dir.path(), "t.onnx");
    let s = save(&tiny_cnn(&Spec { seed: 2, ..Spec::default() }), dir.path(), "s.onnx");
    let data = dir.path().join("val.npz");
    npz(&data, 4, 8, Some(&(0..256).map(|i| (i % 3) as u8).collect::<Vec<_>>()), 3);
    let one = audit_cmd(&t, &s, &data).args(["--json", "-q", "--threads", "1"]).output().unwrap();
    assert!(one.status.success());
    let started = std::time::Instant::now();
    let many = audit_cmd(&t, &s, &data).args(["--json", "--threads", "10000"]).output().unwrap();
    let e = String::from_utf8_lossy(&many.stderr);
    assert!(many.status.success(), "{e}");
    let cores = std::thread::available_parallelism().unwrap().get();
    assert!(e.contains(&format!("note: --threads 10000 is more than the {cores} core(s) here: using {cores}")), "{e}");
    // Ten thousand sessions took minutes; the clamped run is a tiny audit.
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
    assert_eq!(
        without_timing(&one.stdout),
        without_timing(&many.stdout),
        "the thread count does not change the report"
    );
}

#[test]
fn small_nii_gz_of_millions_of_slices_exhausted_memory() {
    // 1 x 1 x 32767 x 64 voxels (2 million one-pixel slices; 2 KB gzipped) took 600 MB of
    // bookkeeping, 1 x 1 x 32767 x 4096 (130 KB) would take 40 GB: refused by count.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("vols");
    std::fs::create_dir(&data).unwrap();
    let dims = [1u16, 1, 32767, 64];
    lying_nii_gz(&data.join("p1.nii.gz"), &dims, 32767 * 64);
    lying_nii_gz(&data.join("p1_gt.nii.gz"), &dims, 32767 * 64);
    let t = save(&tiny_cnn(&Spec::default()), dir.path(), "t.onnx");
    let mut cmd = audit_cmd(&t, &t, &data);
    refused(cmd.timeout(std::time::Duration::from_secs(120)), &["p1.nii.gz", "2097088 images", "2^20"]);
}

#[test]
fn npz_of_millions_of_images_or_a_dataset_beyond_memory_is_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let t = save(&tiny_cnn(&Spec::default()), dir.path(), "t.onnx");
    // 2^20 + 1 images of one pixel: a 1 MB array.
    let many = dir.path().join("many.npz");
    let n = (1 << 20) + 1;
    npz_arrays(&many, &[n, 1, 1], &vec![0.5; n], None);
    refused(&mut audit_cmd(&t, &t, &many), &["many.npz", "1048577 images", "2^20"]);
    // 40 images of 2 x 2 fed at 8192 x 8192 (each within the 2^26 per image): 10 GiB of
    // float32 was allocated and filled; refused before.
    let mut m = tiny_cnn(&Spec::default());
    free_spatial(&mut m);
    let free = save(&m, dir.path(), "free.onnx");
    let small = dir.path().join("small.npz");
    npz_arrays(&small, &[40, 1, 2, 2], &[0.25; 160], None);
    let mut cmd = audit_cmd(&free, &free, &small);
    cmd.args(["--size", "8192x8192", "--fit", "resize", "--labels", "baseline"]);
    refused(cmd.timeout(std::time::Duration::from_secs(120)), &["40 images of 1 x 8192 x 8192", "2^31"]);
}

#[test]
fn nii_gz_bitpix_larger_than_its_datatype_was_inflated() {
    // Found by `cargo fuzz run nifti` (an allocation of 285 GB): the reader sizes the voxel
    // data by `bitpix`, not by the datatype, and the voxel limit was applied to the datatype
    // (the declared 2^27 voxels at up to 4 KiB each). A 1 MB `.nii.gz` of uint8 voxels with
    // `bitpix` 4096 inflated 1 GiB, then said "truncated: 2097152 bytes expected, 1073741824
    // found". Refused from the header now.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("vols");
    std::fs::create_dir(&data).unwrap();
    let voxels = 64 * 64 * 64;
    for name in ["p1.nii.gz", "p1_gt.nii.gz"] {
        let mut bytes = reuse_audit::data::nifti::nii_bytes(&[64, 64, 64], 2, 4096, (1.0, 0.0), &[], false);
        bytes.extend(std::iter::repeat_n(0u8, voxels * 512));
        let mut gz =
            flate2::write::GzEncoder::new(std::fs::File::create(data.join(name)).unwrap(), flate2::Compression::fast());
        gz.write_all(&bytes).unwrap();
        gz.finish().unwrap();
    }
    let t = save(&tiny_cnn(&Spec::default()), dir.path(), "t.onnx");
    refused(
        &mut audit_cmd(&t, &t, &data),
        &["p1.nii.gz", "corrupt header: bitpix = 4096 but datatype Uint8 has 8 bits"],
    );
}

/// A gray 8-bit PNG whose header declares `w x h` pixels over a few bytes of pixel data.
fn lying_png(w: u32, h: u32) -> Vec<u8> {
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        c.extend_from_slice(&crc.sum().to_be_bytes());
        c
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(&[0u8; 100]).unwrap();
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(chunk(b"IHDR", &ihdr));
    out.extend(chunk(b"IDAT", &z.finish().unwrap()));
    out.extend(chunk(b"IEND", &[]));
    out
}

#[test]
fn png_of_16000x16000_or_a_folder_of_many_large_pngs_was_decoded_before_any_limit() {
    // A 500 KB PNG of 16000 x 16000 zeros took 10 GB before the fit check refused its size;
    // PNG folders had no limit at all (a thousand small 8192 x 8192 files: 512 GB as f64).
    // Now each header is held to 2^27 values and the folder's sum to 2^30 before decoding;
    // these PNGs hold a few bytes of pixels, which the old reader reported as truncated.
    let dir = tempfile::tempdir().unwrap();
    let m = save(&tiny_cnn(&Spec::default()), dir.path(), "m.onnx");
    let folder = |name: &str, count: usize, side: u32| {
        let d = dir.path().join(name);
        for sub in ["images", "masks"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
            for i in 0..count {
                std::fs::write(d.join(sub).join(format!("{i:02}.png")), lying_png(side, side)).unwrap();
            }
        }
        d
    };
    let one = folder("one", 1, 16000);
    refused(&mut audit_cmd(&m, &m, &one), &["00.png", "16000 x 16000 pixels", "2^27", "refused before decoding"]);
    // 8 images and 8 masks of 8192 x 8192 (2^26 values each): 2^30, the most a folder may hold.
    let many = folder("many", 9, 8192);
    refused(&mut audit_cmd(&m, &m, &many), &["many/images/08.png", "1207959552 values", "2^30", "refused before"]);
    // A NIfTI folder likewise: pairs of 512^3 volumes (2^27 voxels each, the most one may have).
    let vols = dir.path().join("vols");
    std::fs::create_dir(&vols).unwrap();
    for p in 1..=5 {
        for name in [format!("p{p}.nii.gz"), format!("p{p}_gt.nii.gz")] {
            lying_nii_gz(&vols.join(name), &[512, 512, 512], 4096);
        }
    }
    refused(&mut audit_cmd(&m, &m, &vols), &["p5.nii.gz", "1342177280 values", "2^30"]);
}

#[test]
fn fixed_batch_of_2_pow_40_aborted_allocating_the_padded_feed() {
    // A tiny file whose input fixes the batch at 2^40: every run is zero-padded to the
    // fixed batch, so the first probe allocated 2^40 images (abort, exit 134).
    let dir = tempfile::tempdir().unwrap();
    let mut m = tiny_cnn(&Spec { fixed_batch: true, ..Spec::default() });
    let g = m.graph.as_mut().unwrap();
    g.input[0].type_.mut_or_insert_default().mut_tensor_type().shape.mut_or_insert_default().dim[0]
        .set_dim_value(1 << 40);
    let p = save(&m, dir.path(), "batch-2-40.onnx");
    let s = save(&tiny_cnn(&Spec { seed: 2, ..Spec::default() }), dir.path(), "s.onnx");
    let data = dir.path().join("val.npz");
    npz(&data, 2, 8, Some(&[0u8; 128]), 1);
    refused(&mut audit_cmd(&p, &s, &data), &["batch-2-40.onnx", "fixed batch of 1099511627776", "2^31"]);
}
