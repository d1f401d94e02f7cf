use super::*;

fn touch(root: &Path, rels: &[&str]) {
    for r in rels {
        let p = root.join(r);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"").unwrap();
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// What ONNX Runtime 1.31.1's CUDA 13 provider needs (`needed::provider_libraries`), the
/// driver's libcuda.so.1 aside.
const CUDA13: [&str; 5] =
    ["libcudart.so.13", "libcublasLt.so.13", "libcublas.so.13", "libcurand.so.10", "libcudnn.so.9"];

#[test]
fn everything_found_in_the_pip_packages() {
    let d = tempfile::tempdir().unwrap();
    let libs: Vec<String> = CUDA13.iter().map(|s| s.to_string()).collect();
    let mut files: Vec<String> = CUDA13[..4].iter().map(|s| format!("sp/nvidia/cu13/lib/{s}")).collect();
    files.push("sp/nvidia/cudnn/lib/libcudnn.so.9".into());
    touch(d.path(), &files.iter().map(String::as_str).collect::<Vec<_>>());
    let s = SearchPath::new(&[d.path().join("sp")], None, &[], "");
    let found = locate(Path::new("/x/libonnxruntime_providers_cuda.so"), &libs, &s).unwrap();
    assert_eq!(found.iter().map(|f| f.soname.as_str()).collect::<Vec<_>>(), CUDA13);
    assert!(found.iter().all(|f| f.origin == "pip"));
    assert_eq!(found[4].path, d.path().join("sp/nvidia/cudnn/lib/libcudnn.so.9"));
}

#[test]
fn a_missing_library_is_named_with_its_package() {
    let d = tempfile::tempdir().unwrap();
    touch(d.path(), &["sp/nvidia/cu13/lib/libcudart.so.13", "sp/nvidia/cu13/lib/libcublasLt.so.13"]);
    let s = SearchPath::new(&[d.path().join("sp")], None, &[], "");
    let libs = strings(&["libcudart.so.13", "libcublasLt.so.13", "libcufft.so.12", "libcudnn.so.9"]);
    let e = locate(Path::new("/x/libonnxruntime_providers_cuda.so"), &libs, &s).unwrap_err().to_string();
    assert!(e.contains("built for CUDA 13"), "{e}");
    assert!(e.contains("libcufft.so.12 (nvidia-cufft), libcudnn.so.9 (nvidia-cudnn-cu13)"), "{e}");
    assert!(e.contains("`python3 -m pip install nvidia-cufft nvidia-cudnn-cu13`"), "{e}");
    assert!(e.contains("Looked in: python3's nvidia packages (1 folder(s)"), "{e}");
    assert!(!e.contains("libcudart"), "found libraries are not listed: {e}");
    // A CUDA 12 build: the -cu12 packages.
    let libs = strings(&["libcudart.so.12", "libcudnn.so.9"]);
    let e = locate(Path::new("/p.so"), &libs, &SearchPath::default()).unwrap_err().to_string();
    assert!(e.contains("libcudart.so.12 (nvidia-cuda-runtime-cu12), libcudnn.so.9 (nvidia-cudnn-cu12)"), "{e}");
    // The driver's library is no pip package.
    let e = locate(Path::new("/p.so"), &strings(&["libcuda.so.1"]), &SearchPath::default()).unwrap_err().to_string();
    assert!(e.contains("libcuda.so.1 (from the NVIDIA driver, not pip)") && !e.contains("pip install"), "{e}");
}

#[test]
fn a_cpu_build_is_refused_naming_the_library() {
    let d = tempfile::tempdir().unwrap();
    touch(d.path(), &["libonnxruntime.so.1.31.1"]);
    let e = prepare(&d.path().join("libonnxruntime.so.1.31.1")).unwrap_err().to_string();
    assert!(
        e.contains("is ONNX Runtime's CPU build") && e.contains(PROVIDER_LIB) && e.contains("onnxruntime-gpu"),
        "{e}"
    );
}

#[test]
fn a_library_that_does_not_load_is_named() {
    let d = tempfile::tempdir().unwrap();
    touch(d.path(), &["libcudnn.so.9"]);
    let f = Found { soname: "libcudnn.so.9".into(), path: d.path().join("libcudnn.so.9"), origin: "LD_LIBRARY_PATH" };
    let e = preload(&[f]).unwrap_err().to_string();
    assert!(e.contains("libcudnn.so.9, found via LD_LIBRARY_PATH) does not load"), "{e}");
}

#[test]
fn versions() {
    assert_eq!(cuda_version_string(13000), "13.0");
    assert_eq!(cuda_version_string(12080), "12.8");
    assert_eq!(cudnn_version_string(91400), "9.14.0");
    assert_eq!(cudnn_version_string(90101), "9.1.1");
    assert_eq!(cudnn_version_string(8907), "8.9.7");
    let d = tempfile::tempdir().unwrap();
    touch(d.path(), &["libcudnn.so.9.14.0", "plain/libcudart.so.13"]);
    std::os::unix::fs::symlink(d.path().join("libcudnn.so.9.14.0"), d.path().join("libcudnn.so.9")).unwrap();
    let f = |soname: &str, path: PathBuf| Found { soname: soname.into(), path, origin: "pip" };
    assert_eq!(file_version(&f("libcudnn.so.9", d.path().join("libcudnn.so.9"))), "9.14.0");
    assert_eq!(file_version(&f("libcudart.so.13", d.path().join("plain/libcudart.so.13"))), "13");
}
