//! Reader tests: every `.npy` dtype and byte order, Fortran order, `.npz` archives, NIfTI
//! datatypes, scaling and slicing, and broken files. Values are planted, never read back from
//! the tool's own output.

use std::path::Path;

use half::f16;
use ndarray::{array, ArrayD, IxDyn};

use super::nifti::{self, nii_bytes};
use super::npy::{npy_bytes, npy_bytes_in_order, parse_npy, Npz};

fn flat(a: &ArrayD<f64>) -> Vec<f64> {
    a.iter().copied().collect()
}

/// Encode each value with `enc` and parse the `.npy` of `dtype`.
fn parsed<T: Copy, const N: usize>(dtype: &str, values: &[T], enc: fn(T) -> [u8; N]) -> Vec<f64> {
    let data: Vec<u8> = values.iter().flat_map(|&v| enc(v)).collect();
    let a = parse_npy(&npy_bytes(dtype, &[values.len()], &data)).unwrap_or_else(|e| panic!("{dtype}: {e:#}"));
    assert_eq!(a.shape(), &[values.len()], "{dtype}");
    flat(&a)
}

#[test]
fn every_numeric_dtype_in_both_byte_orders() {
    let halves = [f16::from_f32(1.5), f16::from_f32(-2.25), f16::MAX];
    for (dtype, enc) in [("<f2", f16::to_le_bytes as fn(f16) -> [u8; 2]), (">f2", f16::to_be_bytes)] {
        assert_eq!(parsed(dtype, &halves, enc), [1.5, -2.25, 65504.0]);
    }
    assert_eq!(parsed("<f4", &[0.1f32, -3.0], f32::to_le_bytes), [0.1f32 as f64, -3.0]);
    assert_eq!(parsed(">f4", &[0.1f32, -3.0], f32::to_be_bytes), [0.1f32 as f64, -3.0]);
    assert_eq!(parsed("<f8", &[0.1, -1e300], f64::to_le_bytes), [0.1, -1e300]);
    assert_eq!(parsed(">f8", &[0.1, -1e300], f64::to_be_bytes), [0.1, -1e300]);
    assert_eq!(parsed("|i1", &[-128i8, 127], i8::to_le_bytes), [-128.0, 127.0]);
    assert_eq!(parsed("|u1", &[0u8, 255], u8::to_le_bytes), [0.0, 255.0]);
    assert_eq!(parsed("<i2", &[-300i16, 7], i16::to_le_bytes), [-300.0, 7.0]);
    assert_eq!(parsed(">i2", &[-300i16, 7], i16::to_be_bytes), [-300.0, 7.0]);
    assert_eq!(parsed("<u2", &[65535u16, 3], u16::to_le_bytes), [65535.0, 3.0]);
    assert_eq!(parsed(">u2", &[65535u16, 3], u16::to_be_bytes), [65535.0, 3.0]);
    assert_eq!(parsed("<i4", &[-70000i32, 2], i32::to_le_bytes), [-70000.0, 2.0]);
    assert_eq!(parsed(">i4", &[-70000i32, 2], i32::to_be_bytes), [-70000.0, 2.0]);
    assert_eq!(parsed("<u4", &[4_000_000_000u32], u32::to_le_bytes), [4e9]);
    assert_eq!(parsed(">u4", &[4_000_000_000u32], u32::to_be_bytes), [4e9]);
    assert_eq!(parsed("<i8", &[-5i64, 1 << 40], i64::to_le_bytes), [-5.0, (1u64 << 40) as f64]);
    assert_eq!(parsed(">i8", &[-5i64, 1 << 40], i64::to_be_bytes), [-5.0, (1u64 << 40) as f64]);
    assert_eq!(parsed("<u8", &[9u64], u64::to_le_bytes), [9.0]);
    assert_eq!(parsed(">u8", &[9u64], u64::to_be_bytes), [9.0]);
    assert_eq!(parsed("|b1", &[1u8, 0, 1], u8::to_le_bytes), [1.0, 0.0, 1.0]);
}

#[test]
fn fortran_order_comes_back_in_logical_c_order() {
    // Logical [[0, 1, 2], [3, 4, 5]], stored column by column.
    let stored: Vec<u8> = [0.0f64, 3.0, 1.0, 4.0, 2.0, 5.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let a = parse_npy(&npy_bytes_in_order("<f8", true, &[2, 3], &stored)).unwrap();
    assert_eq!(a, array![[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]].into_dyn());
    assert!(a.is_standard_layout());
    // 3D: element (i, j, k) = 100 i + 10 j + k, first axis fastest in the file.
    let mut data = Vec::new();
    for k in 0..4 {
        for j in 0..3 {
            for i in 0..2 {
                data.extend_from_slice(&((100 * i + 10 * j + k) as i16).to_be_bytes());
            }
        }
    }
    let a = parse_npy(&npy_bytes_in_order(">i2", true, &[2, 3, 4], &data)).unwrap();
    assert_eq!(a, ArrayD::from_shape_fn(IxDyn(&[2, 3, 4]), |d| (100 * d[0] + 10 * d[1] + d[2]) as f64));
}

#[test]
fn unsupported_truncated_and_foreign_npy() {
    let e = parse_npy(&npy_bytes("<c8", &[1], &[0; 8])).unwrap_err().to_string();
    assert!(e.contains("unsupported dtype") && e.contains("c8"), "{e}");
    let e = parse_npy(&npy_bytes("|S4", &[1], b"abcd")).unwrap_err().to_string();
    assert!(e.contains("unsupported dtype"), "{e}");
    let b = npy_bytes("<f4", &[4], &[0; 16]);
    let e = parse_npy(&b[..b.len() - 3]).unwrap_err().to_string();
    assert!(e.contains("truncated"), "{e}");
    assert!(parse_npy(b"hello world").is_err());
}

/// An `.npz` with the given `(name, .npy bytes)` entries.
fn write_npz(path: &Path, entries: &[(&str, Vec<u8>)], deflate: bool) {
    use std::io::Write;
    let method = if deflate { npyz::zip::CompressionMethod::Deflated } else { npyz::zip::CompressionMethod::Stored };
    let mut zip = npyz::zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, bytes) in entries {
        zip.start_file(format!("{name}.npy"), npyz::zip::write::FileOptions::default().compression_method(method))
            .unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

#[test]
fn npz_stored_and_deflated_by_name() {
    let dir = tempfile::tempdir().unwrap();
    for deflate in [false, true] {
        let p = dir.path().join(format!("a{deflate}.npz"));
        let images = npy_bytes("<f4", &[2], &[0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]); // 1.0, 2.0
        write_npz(&p, &[("images", images), ("labels", npy_bytes("|u1", &[2], &[3, 4]))], deflate);
        let mut npz = Npz::open(&p).unwrap();
        assert_eq!(npz.names(), ["images", "labels"]);
        assert_eq!(flat(&npz.require("images").unwrap()), [1.0, 2.0]);
        assert_eq!(flat(&npz.get("labels").unwrap().unwrap()), [3.0, 4.0]);
        assert!(npz.get("weights").unwrap().is_none());
    }
}

#[test]
fn npz_missing_key_lists_keys_and_bad_entries_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.npz");
    write_npz(&p, &[("x", npy_bytes("|u1", &[1], &[1])), ("y", npy_bytes("<c8", &[1], &[0; 8]))], true);
    let mut npz = Npz::open(&p).unwrap();
    let e = npz.require("images").unwrap_err().to_string();
    assert!(e.contains("x.npz") && e.contains("no 'images'") && e.contains("it has: x, y"), "{e}");
    let e = npz.require("y").unwrap_err().to_string();
    assert!(e.contains("x.npz") && e.contains("y.npy") && e.contains("unsupported dtype"), "{e}");
    std::fs::write(&p, b"PK not really").unwrap();
    let e = Npz::open(&p).err().unwrap().to_string();
    assert!(e.contains("x.npz") && e.contains("not a valid .npz"), "{e}");
}

/// Write a `.nii` and read it back.
fn nii(dir: &Path, dims: &[u16], datatype: i16, bitpix: i16, scl: (f32, f32), data: &[u8], big: bool) -> ArrayD<f64> {
    let p = dir.join("v.nii");
    std::fs::write(&p, nii_bytes(dims, datatype, bitpix, scl, data, big)).unwrap();
    nifti::read(&p).unwrap_or_else(|e| panic!("datatype {datatype}: {e:#}")).into_dyn()
}

#[test]
fn nifti_datatypes_byte_orders_and_scaling() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    let none = (0.0, 0.0);
    assert_eq!(flat(&nii(d, &[2], 2, 8, none, &[7, 255], false)), [7.0, 255.0]);
    assert_eq!(flat(&nii(d, &[2], 256, 8, none, &[0xff, 3], false)), [-1.0, 3.0]);
    let i16s: Vec<u8> = [-2i16, 300].iter().flat_map(|v| v.to_be_bytes()).collect();
    assert_eq!(flat(&nii(d, &[2], 4, 16, none, &i16s, true)), [-2.0, 300.0]);
    let u16s: Vec<u8> = [65535u16, 1].iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(flat(&nii(d, &[2], 512, 16, none, &u16s, false)), [65535.0, 1.0]);
    let i32s: Vec<u8> = [-70000i32].iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(flat(&nii(d, &[1], 8, 32, none, &i32s, false)), [-70000.0]);
    let f32s: Vec<u8> = [0.1f32, -4.5].iter().flat_map(|v| v.to_be_bytes()).collect();
    assert_eq!(flat(&nii(d, &[2], 16, 32, none, &f32s, true)), [0.1f32 as f64, -4.5]);
    let f64s: Vec<u8> = [0.1f64].iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(flat(&nii(d, &[1], 64, 64, none, &f64s, false)), [0.1]);
    // int16 scaled: x * 0.5 - 3 (exact); slope 0 and a NaN slope mean "not scaled".
    let q: Vec<u8> = [-6i16, 0, 9].iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(flat(&nii(d, &[3], 4, 16, (0.5, -3.0), &q, false)), [-6.0, -3.0, 1.5]);
    assert_eq!(flat(&nii(d, &[3], 4, 16, (0.0, -3.0), &q, false)), [-6.0, 0.0, 9.0]);
    assert_eq!(flat(&nii(d, &[3], 4, 16, (f32::NAN, -3.0), &q, false)), [-6.0, 0.0, 9.0]);
    // The identity pair keeps a stored -0.0 as it is.
    let z = nii(d, &[1], 16, 32, (1.0, 0.0), &(-0.0f32).to_le_bytes(), false);
    assert!(z[[0, 0, 0]].is_sign_negative());
}

#[test]
fn nifti_slices_follow_the_third_axis_with_x_as_rows_and_time_after() {
    let d = tempfile::tempdir().unwrap();
    // x=2, y=3, z=2, t=2; value = 1000 t + 100 k + 10 i + j at (i, j, k, t), x fastest.
    let mut vals = Vec::new();
    for t in 0..2 {
        for k in 0..2 {
            for j in 0..3 {
                for i in 0..2 {
                    vals.extend_from_slice(&((1000 * t + 100 * k + 10 * i + j) as i16).to_le_bytes());
                }
            }
        }
    }
    let v = nii(d.path(), &[2, 3, 2, 2], 4, 16, (0.0, 0.0), &vals, false);
    assert_eq!(v.shape(), &[2, 3, 4]);
    let v = v.into_dimensionality::<ndarray::Ix3>().unwrap();
    assert_eq!(v.index_axis(ndarray::Axis(2), 1), array![[100.0, 101.0, 102.0], [110.0, 111.0, 112.0]]);
    assert_eq!(v[[1, 2, 3]], 1112.0);
}

#[test]
fn nifti_truncated_foreign_and_unsupported_files_name_the_file() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("bad.nii");
    let b = nii_bytes(&[2, 2, 2], 2, 8, (0.0, 0.0), &[0; 8], false);
    std::fs::write(&p, &b[..b.len() - 1]).unwrap();
    let e = nifti::read(&p).unwrap_err().to_string();
    assert!(e.contains("bad.nii") && e.contains("truncated"), "{e}");
    std::fs::write(&p, [0u8; 400]).unwrap();
    assert!(nifti::read(&p).unwrap_err().to_string().contains("bad.nii"));
    std::fs::write(&p, nii_bytes(&[1], 32, 64, (0.0, 0.0), &[0; 8], false)).unwrap(); // complex64
    let e = nifti::read(&p).unwrap_err().to_string();
    assert!(e.contains("unsupported NIfTI datatype"), "{e}");
    let gz = d.path().join("bad.nii.gz");
    std::fs::write(&gz, &b).unwrap(); // named .gz but not compressed
    let e = nifti::read(&gz).unwrap_err().to_string();
    assert!(e.contains("bad.nii.gz") && e.contains("gzip"), "{e}");
}

/// The same result, or the same message, from a file and from its bytes.
fn same<T: PartialEq + std::fmt::Debug>(file: anyhow::Result<T>, bytes: anyhow::Result<T>, what: &str) {
    match (file, bytes) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{what}"),
        (Err(a), Err(b)) => assert_eq!(format!("{a:#}"), format!("{b:#}"), "{what}"),
        (a, b) => panic!("{what}: file {a:?}, bytes {b:?}"),
    }
}

#[test]
fn in_memory_readers_give_what_the_file_readers_give() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = nii_bytes(&[3, 2, 2], 2, 8, (2.0, 1.0), &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], false);
    let gz = |b: &[u8]| {
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(b).unwrap();
        z.finish().unwrap()
    };
    let mut bad_magic = good.clone();
    bad_magic[344] = b'x';
    let mut huge = good.clone();
    huge[42..44].copy_from_slice(&30000u16.to_le_bytes());
    for (name, bytes) in [
        ("good", good.clone()),
        ("truncated", good[..360].to_vec()),
        ("bad magic", bad_magic),
        ("huge", huge.clone()),
        ("header only", good[..100].to_vec()),
    ] {
        for compressed in [false, true] {
            let (file, data) = if compressed { ("v.nii.gz", gz(&bytes)) } else { ("v.nii", bytes.clone()) };
            let p = d.join(file);
            std::fs::write(&p, &data).unwrap();
            same(nifti::read(&p), nifti::read_bytes(&data, compressed, &p), &format!("{name} {file}"));
        }
    }
    // A corrupt gzip stream.
    let p = d.join("c.nii.gz");
    let mut broken = gz(&good);
    broken.truncate(30);
    std::fs::write(&p, &broken).unwrap();
    same(nifti::read(&p), nifti::read_bytes(&broken, true, &p), "corrupt gzip");

    let hint = super::LayoutHint::default();
    let images = npy_bytes("<f4", &[2, 1, 1], &[0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]);
    let labels = npy_bytes("|u1", &[2, 1, 1], &[3, 4]);
    for (name, entries) in [
        ("images and labels", vec![("images", images.clone()), ("labels", labels.clone())]),
        ("no images", vec![("labels", labels.clone())]),
        ("bad labels", vec![("images", images.clone()), ("labels", b"\x93NUMPY junk".to_vec())]),
    ] {
        let p = d.join("val.npz");
        write_npz(&p, &entries, true);
        let bytes = std::fs::read(&p).unwrap();
        let from_file = super::load(&p, None).map(|l| l.samples);
        let from_bytes = Npz::from_bytes(&bytes, &p).and_then(|mut z| super::npz_samples(&mut z, &p, &hint));
        same(from_file, from_bytes, name);
    }
    let p = d.join("junk.npz");
    std::fs::write(&p, b"PK junk").unwrap();
    same(Npz::open(&p).map(|_| ()), Npz::from_bytes(b"PK junk", &p).map(|_| ()), "junk npz");

    let (ip, lp) = (d.join("x.npy"), d.join("y.npy"));
    for (name, i, l) in [
        ("images and labels", images.clone(), Some(labels.clone())),
        ("images", images.clone(), None),
        ("bad images", b"\x93NUMPY\x01\x00".to_vec(), Some(labels.clone())),
        ("bad labels", images.clone(), Some(b"nope".to_vec())),
    ] {
        std::fs::write(&ip, &i).unwrap();
        if let Some(l) = &l {
            std::fs::write(&lp, l).unwrap();
        }
        let from_file = super::load(&ip, l.as_ref().map(|_| lp.as_path())).map(|x| x.samples);
        let from_bytes = super::npy_samples(&i, &ip, l.as_deref().map(|b| (b, lp.as_path())), &hint);
        same(from_file, from_bytes, name);
    }
}

#[test]
fn header_nesting_outside_strings() {
    use super::npy::check_declared_shape;
    let npy = |header: &str| {
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(header.len() as u16).to_le_bytes());
        b.extend_from_slice(header.as_bytes());
        b
    };
    // NumPy's own header nests 2 deep; a structured dtype with a subarray 4: both pass (the
    // structured one is refused later, by its dtype).
    assert!(check_declared_shape(&npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }")[..]).is_ok());
    let structured = "{'descr': [('a', '<f4', (2,))], 'fortran_order': False, 'shape': (2,), }";
    assert!(check_declared_shape(&npy(structured)[..]).is_ok());
    // Brackets inside quotes do not count (an escaped quote stays inside).
    let quoted = "{'descr': '<f4', 'x': '((((((\\'((((', 'fortran_order': False, 'shape': (2,), }";
    assert!(check_declared_shape(&npy(quoted)[..]).is_ok());
    let e = check_declared_shape(&npy("{'descr': [[[[('a', '<f4')]]]], 'shape': (1,), }")[..]).unwrap_err();
    assert!(e.to_string().contains("nests brackets 6 deep"), "{e}");
}
