//! Data formats through the real binary: the bundled ACDC slices stored as float64
//! Fortran-order `.npz` with int64 labels, and as int16 NIfTI with `scl_slope`/`scl_inter`,
//! audit to the same Dice as the float32 C-order `.npz` of the same values; broken data files
//! exit 2 naming the file.

mod common;

use std::path::Path;

use common::*;
use ndarray::{s, Array3, ArrayD};
use npyz::{zip::write::FileOptions, zip::CompressionMethod, WriterBuilder};
use predicates::prelude::*;
use reuse_audit::data::{nifti::nii_bytes, npy};
use serde_json::Value;

/// Images in the tests below: two volumes of three slices.
const N: usize = 6;

fn audit_json(data: &Path, extra: &[&str]) -> Value {
    let t = root().join("models/unet-acdc-seg.onnx");
    let out = audit_cmd(&t, &t, data)
        .args(["--json", "-q", "--kinds", "B"])
        .args(extra)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).expect("JSON report")
}

/// The first `N` bundled validation slices: images `N x 64 x 64` (stored float32) and labels.
fn acdc() -> (Array3<f64>, Array3<f64>) {
    let mut npz = npy::Npz::open(&root().join("models/data/acdc-val.npz")).expect("bundled data");
    let images = npz.require("images").unwrap().slice_move(s![..N, 0, .., ..]).into_dimensionality().unwrap();
    let labels = npz.require("labels").unwrap().slice_move(s![..N, .., ..]).into_dimensionality().unwrap();
    (images, labels)
}

/// Write one array into an `.npz` with npyz: as `T`, in C or Fortran order.
fn put<T: npyz::AutoSerialize + Copy>(
    npz: &mut npyz::npz::NpzWriter<std::io::BufWriter<std::fs::File>>,
    name: &str,
    a: &ArrayD<T>,
    fortran: bool,
    method: CompressionMethod,
) {
    let shape: Vec<u64> = a.shape().iter().map(|&d| d as u64).collect();
    let order = if fortran { npyz::Order::Fortran } else { npyz::Order::C };
    let opts = FileOptions::default().compression_method(method);
    let mut w = npz.array::<T>(name, opts).unwrap().default_dtype().shape(&shape).order(order).begin_nd().unwrap();
    // Fortran order lists the first axis fastest: the transpose's C order.
    let values: Vec<T> = if fortran { a.t().iter().copied().collect() } else { a.iter().copied().collect() };
    w.extend(values).unwrap();
    w.finish().unwrap();
}

/// float32 images and uint8 labels, C order, stored: the reference encoding.
fn reference_npz(path: &Path, images: &Array3<f64>, labels: &Array3<f64>) {
    let mut npz = npyz::npz::NpzWriter::create(path).unwrap();
    put(&mut npz, "images", &images.mapv(|v| v as f32).into_dyn(), false, CompressionMethod::Stored);
    put(&mut npz, "labels", &labels.mapv(|v| v as u8).into_dyn(), false, CompressionMethod::Stored);
}

#[test]
fn fortran_order_float64_npz_with_int64_labels_gives_the_float32_c_order_dice() {
    let d = tempfile::tempdir().unwrap();
    let (images, labels) = acdc();
    let reference = d.path().join("c.npz");
    reference_npz(&reference, &images, &labels);
    let want = audit_json(&reference, &[]);
    assert_eq!(want["dataset"]["images"], N);
    // The segmenter knows these slices: a scrambled axis order would not score this.
    assert!(want["baseline"]["mean_fg"].as_f64().unwrap() > 0.85, "{}", want["baseline"]);
    for method in [CompressionMethod::Stored, CompressionMethod::Deflated] {
        let p = d.path().join(format!("f-{method:?}.npz"));
        let mut npz = npyz::npz::NpzWriter::create(&p).unwrap();
        put(&mut npz, "images", &images.clone().insert_axis(ndarray::Axis(1)).into_dyn(), true, method);
        put(&mut npz, "labels", &labels.mapv(|v| v as i64).into_dyn(), true, method);
        drop(npz);
        let got = audit_json(&p, &[]);
        assert_eq!(got["dataset"]["images"], N);
        assert_eq!(got["baseline"], want["baseline"], "{method:?}");
    }
}

#[test]
fn int16_nifti_with_slope_and_intercept_gives_the_dice_of_the_floats_it_encodes() {
    let d = tempfile::tempdir().unwrap();
    let (images, labels) = acdc();
    // value = q / 2048 - 0.25 with q an int16: exact in float32 and in f64.
    let (slope, inter) = (1.0 / 2048.0, -0.25);
    let q = images.mapv(|v| ((v - inter as f64) / slope as f64).round().clamp(-32768.0, 32767.0));
    let floats = q.mapv(|q| q * slope as f64 + inter as f64);
    let reference = d.path().join("floats.npz");
    reference_npz(&reference, &floats, &labels);
    // Two volumes of three slices; slice k of a volume is vol[:, :, k] with rows along x.
    let dir = d.path().join("nifti");
    std::fs::create_dir(&dir).unwrap();
    for (v, name) in ["patient001_frame01", "patient002_frame01"].iter().enumerate() {
        let (mut image, mut gt) = (Vec::new(), Vec::new());
        for k in 3 * v..3 * v + 3 {
            for j in 0..64 {
                for i in 0..64 {
                    image.extend_from_slice(&(q[[k, i, j]] as i16).to_le_bytes());
                    gt.push(labels[[k, i, j]] as u8);
                }
            }
        }
        std::fs::write(dir.join(format!("{name}.nii")), nii_bytes(&[64, 64, 3], 4, 16, (slope, inter), &image, false))
            .unwrap();
        std::fs::write(dir.join(format!("{name}_gt.nii")), nii_bytes(&[64, 64, 3], 2, 8, (0.0, 0.0), &gt, false))
            .unwrap();
    }
    // No normalization: unscaled int16 values would give a different Dice.
    let want = audit_json(&reference, &["--normalize", "none"]);
    let got = audit_json(&dir, &["--normalize", "none"]);
    assert_eq!(got["dataset"]["format"], "nifti");
    assert_eq!(got["dataset"]["images"], N);
    assert_eq!(got["baseline"], want["baseline"]);
}

fn fails_with(data: &Path, needles: &[&str]) {
    let t = root().join("models/unet-acdc-seg.onnx");
    let mut a = audit_cmd(&t, &t, data).arg("-q").assert().code(2).stderr(predicate::str::contains("panicked").not());
    for n in needles {
        a = a.stderr(predicate::str::contains(*n));
    }
}

#[test]
fn broken_data_files_exit_2_naming_file_and_key() {
    let d = tempfile::tempdir().unwrap();
    let write = |name: &str, entries: &[(&str, Vec<u8>)]| {
        let p = d.path().join(name);
        let mut npz = npyz::npz::NpzWriter::create(&p).unwrap();
        for (key, bytes) in entries {
            use std::io::Write;
            npz.zip_writer().start_file(format!("{key}.npy"), FileOptions::default()).unwrap();
            npz.zip_writer().write_all(bytes).unwrap();
        }
        p
    };
    let labels = npy::npy_bytes("|u1", &[1, 2, 2], &[0; 4]);
    let p = write("nokey.npz", &[("pixels", npy::npy_f32_bytes(&[1, 2, 2], &[0.0; 4])), ("labels", labels.clone())]);
    fails_with(&p, &["nokey.npz", "no 'images'", "it has: labels, pixels"]);
    let full = npy::npy_f32_bytes(&[1, 2, 2], &[0.0; 4]);
    let p = write("short.npz", &[("images", full[..full.len() - 5].to_vec()), ("labels", labels.clone())]);
    fails_with(&p, &["short.npz", "images.npy", "truncated"]);
    let p = write("complex.npz", &[("images", npy::npy_bytes("<c16", &[1, 2, 2], &[0; 64])), ("labels", labels)]);
    fails_with(&p, &["complex.npz", "images.npy", "unsupported dtype"]);
    let bytes = std::fs::read(&p).unwrap();
    let cut = d.path().join("cut.npz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    fails_with(&cut, &["cut.npz"]);
    // A NIfTI folder with a truncated label volume.
    let dir = d.path().join("nifti");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("a.nii"), nii_bytes(&[64, 64, 1], 2, 8, (0.0, 0.0), &[1; 4096], false)).unwrap();
    let gt = nii_bytes(&[64, 64, 1], 2, 8, (0.0, 0.0), &[0; 4096], false);
    std::fs::write(dir.join("a_gt.nii"), &gt[..gt.len() - 100]).unwrap();
    fails_with(&dir, &["a_gt.nii", "truncated"]);
}

#[test]
fn labels_declaring_a_billion_values_beside_eight_images_were_inflated_before_the_shape_check() {
    // A 1 MB `.npz` whose labels.npy declared 1000000 x 32 x 32 uint8 (within the 2^30 limit
    // of one array) beside 8 images of 64 x 64 took 50 s and 7.8 GB (as f64) before saying
    // the shapes do not fit. The labels' header is now checked against the images first:
    // here its data is cut off after the header, which the old order reported as truncated.
    let d = tempfile::tempdir().unwrap();
    let (images, _) = acdc();
    let header = |shape: &str| {
        let mut h = format!("{{'descr': '|u1', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&[0u8; 4096]);
        out
    };
    let image_bytes = npy::npy_f32_bytes(&[N, 64, 64], &images.iter().map(|&v| v as f32).collect::<Vec<_>>());
    let z = d.path().join("bomb.npz");
    let mut npz = npyz::npz::NpzWriter::create(&z).unwrap();
    for (key, bytes) in [("images", image_bytes.clone()), ("labels", header("(1000000, 32, 32)"))] {
        use std::io::Write;
        npz.zip_writer().start_file(format!("{key}.npy"), FileOptions::default()).unwrap();
        npz.zip_writer().write_all(&bytes).unwrap();
    }
    drop(npz);
    fails_with(&z, &["bomb.npz", "labels of shape [1000000, 32, 32] do not fit images of 6 x 64 x 64"]);
    // The same as a pair of .npy files.
    let (i, l) = (d.path().join("images.npy"), d.path().join("labels.npy"));
    std::fs::write(&i, &image_bytes).unwrap();
    std::fs::write(&l, header("(1000000, 32, 32)")).unwrap();
    let t = root().join("models/unet-acdc-seg.onnx");
    audit_cmd(&t, &t, &i)
        .arg("--labels")
        .arg(&l)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("labels of shape [1000000, 32, 32] do not fit images of 6 x 64 x 64"));
}

#[test]
fn nii_beside_its_own_nii_gz_was_audited_twice() {
    // A folder holding `p.nii` and `p.nii.gz` (a `gunzip -k`) fed every slice twice: twice
    // the images, the same mean, and bootstrap intervals narrower than the data supports.
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("vols");
    std::fs::create_dir(&dir).unwrap();
    let image = nii_bytes(&[64, 64, 2], 2, 8, (0.0, 0.0), &[7; 2 * 4096], false);
    let gt = nii_bytes(&[64, 64, 2], 2, 8, (0.0, 0.0), &[1; 2 * 4096], false);
    for (name, bytes) in [("p.nii", &image), ("p_gt.nii", &gt)] {
        std::fs::write(dir.join(name), bytes).unwrap();
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut z, bytes).unwrap();
        std::fs::write(dir.join(format!("{name}.gz")), z.finish().unwrap()).unwrap();
    }
    fails_with(&dir, &["vols", "p.nii and p.nii.gz are both here", "audited twice"]);
    // Either one alone is two slices.
    for name in ["p.nii", "p_gt.nii"] {
        std::fs::remove_file(dir.join(name)).unwrap();
    }
    let t = root().join("models/unet-acdc-seg.onnx");
    let out = audit_cmd(&t, &t, &dir).args(["--json", "-q", "--kinds", "B"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["dataset"]["images"], 2);
}

#[test]
fn nii_gt_gt_made_a_label_an_image() {
    // `a_gt.nii` beside `a.nii` and `a_gt_gt.nii` was the label of `a.nii` and, paired with
    // `a_gt_gt.nii`, an image too: its label map audited as if it were a scan.
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("vols");
    std::fs::create_dir(&dir).unwrap();
    let image = nii_bytes(&[64, 64, 2], 2, 8, (0.0, 0.0), &[7; 2 * 4096], false);
    let gt = nii_bytes(&[64, 64, 2], 2, 8, (0.0, 0.0), &[1; 2 * 4096], false);
    for (name, bytes) in [("a.nii", &image), ("a_gt.nii", &gt), ("a_gt_gt.nii", &gt)] {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    fails_with(
        &dir,
        &["vols", "a_gt_gt.nii would be the label of a_gt.nii, itself a label", "rename or move a_gt_gt.nii"],
    );
    // Without `a.nii` it is refused too: `a_gt.nii` has no image.
    std::fs::remove_file(dir.join("a.nii")).unwrap();
    fails_with(&dir, &["vols", "a_gt_gt.nii"]);
    // Moved away, the pair is two slices.
    std::fs::write(dir.join("a.nii"), &image).unwrap();
    std::fs::remove_file(dir.join("a_gt_gt.nii")).unwrap();
    let t = root().join("models/unet-acdc-seg.onnx");
    let out = audit_cmd(&t, &t, &dir).args(["--json", "-q", "--kinds", "B"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["dataset"]["images"], 2);
}

/// A PNG of `w x h` `values` (one sample a pixel) at `bits` bits, gray or palette-indexed.
fn png_of(w: usize, h: usize, values: &[u8], bits: u8, palette: bool) -> Vec<u8> {
    let depth = match bits {
        1 => png::BitDepth::One,
        2 => png::BitDepth::Two,
        4 => png::BitDepth::Four,
        _ => png::BitDepth::Eight,
    };
    // Rows packed most significant bits first, each starting on a byte.
    let per = 8 / usize::from(bits);
    let mut data = Vec::new();
    for row in values.chunks(w) {
        for group in row.chunks(per) {
            data.push(group.iter().enumerate().fold(0u8, |b, (k, &v)| b | (v << (8 - usize::from(bits) * (k + 1)))));
        }
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w as u32, h as u32);
    enc.set_depth(depth);
    if palette {
        enc.set_color(png::ColorType::Indexed);
        // Colours unrelated to the indices, as VOC's are.
        enc.set_palette(
            (0..(1usize << bits)).flat_map(|i| [(i * 97 % 256) as u8, 40, (255 - i) as u8]).collect::<Vec<_>>(),
        );
    } else {
        enc.set_color(png::ColorType::Grayscale);
    }
    let mut writer = enc.write_header().unwrap();
    writer.write_image_data(&data).unwrap();
    writer.finish().unwrap();
    out
}

#[test]
fn png_masks_below_8_bits_or_with_a_palette_were_read_as_colours_not_classes() {
    let d = tempfile::tempdir().unwrap();
    let (images, labels) = acdc();
    // 8-bit image levels (exact in every format), the same levels in the reference .npz.
    let (lo, hi) = images.fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let levels = images.mapv(|v| ((v - lo) / (hi - lo) * 255.0).round());
    let (h, w) = (labels.dim().1, labels.dim().2);
    let folder = |name: &str, labels: &Array3<f64>, bits: u8, palette: bool| {
        let dir = d.path().join(name);
        std::fs::create_dir_all(dir.join("images")).unwrap();
        std::fs::create_dir_all(dir.join("masks")).unwrap();
        for i in 0..N {
            let file = format!("s{i}.png");
            let img: Vec<u8> = levels.slice(s![i, .., ..]).iter().map(|&v| v as u8).collect();
            std::fs::write(dir.join("images").join(&file), png_of(w, h, &img, 8, false)).unwrap();
            let mask: Vec<u8> = labels.slice(s![i, .., ..]).iter().map(|&v| v as u8).collect();
            std::fs::write(dir.join("masks").join(&file), png_of(w, h, &mask, bits, palette)).unwrap();
        }
        dir
    };
    let reference = d.path().join("levels.npz");
    reference_npz(&reference, &levels, &labels);
    let want = audit_json(&reference, &[]);
    assert!(want["baseline"]["mean_fg"].as_f64().unwrap() > 0.85, "{}", want["baseline"]);
    // Classes 0..3 as 2-bit gray were scaled to 0, 85, 170, 255 (out of range); as a
    // palette they were expanded to colours (refused as "not gray").
    for (name, bits, palette) in
        [("gray8", 8, false), ("gray2", 2, false), ("gray4", 4, false), ("pal8", 8, true), ("pal2", 2, true)]
    {
        let got = audit_json(&folder(name, &labels, bits, palette), &[]);
        assert_eq!(got["dataset"]["format"], "png");
        assert_eq!(got["baseline"], want["baseline"], "{name}");
    }
    // A 1-bit mask of classes 0 and 1 was 0 and 255, and the tool's hint, --ignore-label
    // 255, left only the background scored.
    let binary = labels.mapv(|v| f64::from(v > 0.0));
    let reference = d.path().join("binary.npz");
    reference_npz(&reference, &levels, &binary);
    let want = audit_json(&reference, &[]);
    let got = audit_json(&folder("gray1", &binary, 1, false), &[]);
    assert_eq!(got["baseline"], want["baseline"], "1-bit");
}

#[test]
fn float64_images_beyond_1e154_were_z_scored_to_zeros() {
    let d = tempfile::tempdir().unwrap();
    let (images, labels) = acdc();
    let reference = d.path().join("c.npz");
    reference_npz(&reference, &images, &labels);
    // The same images times 1e300 (finite float64): their squares overflowed, the standard
    // deviation was infinite and every pixel became 0 (label-free, every swap then agreed
    // with the baseline). Min-max failed where max - min is beyond f64 (values either side
    // of 0, each finite). Neither depends on the scale: the Dice of the float32 reference
    // must come back (the baseline's counts are integers, equal here).
    for (normalize, shift, scale) in [("zscore", 0.0, 1e300), ("minmax", 0.6, 1.6e308)] {
        let want = audit_json(&reference, &["--normalize", normalize]);
        // (This segmenter was trained on z-scored slices: min-max scores low, but equally.)
        assert!(normalize != "zscore" || want["baseline"]["mean_fg"].as_f64().unwrap() > 0.85, "{}", want["baseline"]);
        let huge = d.path().join(format!("huge-{normalize}.npz"));
        let mut npz = npyz::npz::NpzWriter::create(&huge).unwrap();
        let scaled = images.mapv(|v| (f64::from(v as f32) - shift) * scale);
        assert!(scaled.iter().all(|v| v.is_finite()));
        let first = scaled.slice(s![0, .., ..]);
        let (lo, hi) = first.fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        assert!(normalize == "zscore" || (hi - lo).is_infinite(), "the test's range must overflow");
        put(&mut npz, "images", &scaled.into_dyn(), false, CompressionMethod::Stored);
        put(&mut npz, "labels", &labels.mapv(|v| v as u8).into_dyn(), false, CompressionMethod::Stored);
        drop(npz);
        let got = audit_json(&huge, &["--normalize", normalize]);
        assert_eq!(got["baseline"], want["baseline"], "{normalize}");
    }
}

#[test]
fn png_folder_mask_without_image_or_beside_nifti_volumes_was_dropped_silently() {
    let d = tempfile::tempdir().unwrap();
    let (images, labels) = acdc();
    let (h, w) = (labels.dim().1, labels.dim().2);
    let dir = d.path().join("png");
    std::fs::create_dir_all(dir.join("images")).unwrap();
    std::fs::create_dir_all(dir.join("masks")).unwrap();
    for i in 0..N {
        let file = format!("s{i}.png");
        let img: Vec<u8> = images.slice(s![i, .., ..]).iter().map(|&v| (v.clamp(0.0, 1.0) * 255.0) as u8).collect();
        let mask: Vec<u8> = labels.slice(s![i, .., ..]).iter().map(|&v| v as u8).collect();
        // The last image is missing: its mask was skipped and five images audited.
        if i + 1 < N {
            std::fs::write(dir.join("images").join(&file), png_of(w, h, &img, 8, false)).unwrap();
        }
        std::fs::write(dir.join("masks").join(&file), png_of(w, h, &mask, 8, false)).unwrap();
    }
    let orphan = format!("s{}.png", N - 1);
    fails_with(&dir, &[&format!("masks/{orphan}"), &format!("a mask without its image images/{orphan}")]);
    std::fs::remove_file(dir.join("masks").join(&orphan)).unwrap();
    assert_eq!(audit_json(&dir, &[])["dataset"]["images"], N - 1);
    // NIfTI volumes beside images/: the PNG set was audited, the volumes never read.
    let nifti = root().join("models/data/acdc-nifti");
    for name in ["patient001_frame01.nii.gz", "patient001_frame01_gt.nii.gz"] {
        std::fs::copy(nifti.join(name), dir.join(name)).unwrap();
    }
    fails_with(&dir, &["holds both a PNG set", "patient001_frame01.nii.gz"]);
}

#[test]
fn a_negative_label_suggested_an_ignore_label_the_flag_cannot_take() {
    let d = tempfile::tempdir().unwrap();
    let (images, labels) = acdc();
    let data = d.path().join("neg.npz");
    let mut npz = npyz::npz::NpzWriter::create(&data).unwrap();
    put(&mut npz, "images", &images.mapv(|v| v as f32).into_dyn(), false, CompressionMethod::Stored);
    put(&mut npz, "labels", &labels.mapv(|v| v as i16 - 1).into_dyn(), false, CompressionMethod::Stored);
    drop(npz);
    // `--ignore-label` takes 0..=255: "pass --ignore-label -1" was a command that cannot run.
    let t = root().join("models/unet-acdc-seg.onnx");
    audit_cmd(&t, &t, &data)
        .arg("-q")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("has label -1 at pixel 0"))
        .stderr(predicate::str::contains("--ignore-label").not());
}

#[test]
fn float64_pixels_beyond_float32_were_fed_as_inf_under_normalize_none() {
    let d = tempfile::tempdir().unwrap();
    let (images, labels) = acdc();
    // The slices times 1e39: finite float64, beyond float32's largest (3.4e38). As stored,
    // they reached the model as inf and the error blamed its NaN output.
    let huge = d.path().join("beyond-f32.npz");
    let mut npz = npyz::npz::NpzWriter::create(&huge).unwrap();
    put(&mut npz, "images", &images.mapv(|v| f64::from(v as f32) * 1e39).into_dyn(), false, CompressionMethod::Stored);
    put(&mut npz, "labels", &labels.mapv(|v| v as u8).into_dyn(), false, CompressionMethod::Stored);
    drop(npz);
    let t = root().join("models/unet-acdc-seg.onnx");
    let out = d.path().join("out");
    let assert = audit_cmd(&t, &t, &huge).args(["--normalize", "none", "--out"]).arg(&out).assert().code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(stderr.contains("beyond float32's range after --normalize none"), "{stderr}");
    assert!(stderr.contains("--normalize zscore or minmax") && !stderr.contains("NaN"), "{stderr}");
    assert!(!out.exists(), "nothing written");
    // `auto` does not try values as stored there, and z-score (scale-free) gives the Dice of
    // the float32 slices.
    let reference = d.path().join("c.npz");
    reference_npz(&reference, &images, &labels);
    let want = audit_json(&reference, &["--normalize", "zscore"]);
    let got = audit_json(&huge, &[]);
    let tried: Vec<&str> = got["dataset"]["normalize_scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["normalize"].as_str().unwrap())
        .collect();
    assert_eq!(tried, ["zscore", "minmax"], "{}", got["dataset"]);
    assert_eq!(got["dataset"]["normalize"], "zscore");
    assert_eq!(got["baseline"], want["baseline"]);
}
