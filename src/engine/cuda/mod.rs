//! Getting the CUDA execution provider ready, as ONNX Runtime's own Python package does
//! (`onnxruntime.preload_dlls`): read which CUDA/cuDNN libraries the provider library needs
//! (`needed`: those it links, and cuDNN, which it opens at run time), find each on this machine (`search`: pip packages of `python3`,
//! `LD_LIBRARY_PATH`, the CUDA toolkit, the loader's cache) and load it (`RTLD_NOW |
//! RTLD_GLOBAL`, never unloaded) before the provider is registered, so the provider's own
//! loading finds them already there. A missing library is exit 2 naming it and the pip
//! package that carries it; the versions that loaded go into the report.

pub mod conv;
pub mod needed;
pub mod search;

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::UserError;
pub use needed::PROVIDER_LIB;
use needed::{cuda_major, dt_needed, package, provider_libraries, soname_major};
pub use search::SearchPath;

/// A CUDA/cuDNN library found (and, once prepared, loaded).
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The name the provider asks for, e.g. `libcudnn.so.9`.
    pub soname: String,
    /// The file.
    pub path: PathBuf,
    /// Where it was found: `pip`, `LD_LIBRARY_PATH`, `CUDA toolkit` or `ldconfig cache`.
    pub origin: &'static str,
}

/// The CUDA provider ready to register.
#[derive(Debug, Clone)]
pub struct CudaSetup {
    /// `libonnxruntime_providers_cuda.so`.
    pub provider: PathBuf,
    /// The libraries loaded for it, in loading order.
    pub libraries: Vec<Found>,
    /// The CUDA runtime's version (`cudaRuntimeGetVersion`, e.g. `13.0`).
    pub cuda_version: Option<String>,
    /// cuDNN's version (`cudnnGetVersion`, e.g. `9.14.0`).
    pub cudnn_version: Option<String>,
}

/// Find and load what the CUDA provider beside `ort_library` needs.
pub fn prepare(ort_library: &Path) -> Result<CudaSetup> {
    let provider = ort_library.with_file_name(PROVIDER_LIB);
    if !provider.is_file() {
        return Err(UserError::Runtime(format!(
            "--device cuda: {} is ONNX Runtime's CPU build: there is no {PROVIDER_LIB} beside it. \
             Install the CUDA build (`python3 -m pip install onnxruntime-gpu=={}`) or point ORT_DYLIB_PATH at the \
             libonnxruntime.so of an onnxruntime-gpu wheel (its onnxruntime/capi folder); use --device cpu otherwise",
            ort_library.display(),
            super::runtime::ORT_VERSION
        ))
        .into());
    }
    let needed = dt_needed(&provider).map_err(|e| UserError::Runtime(format!("--device cuda: {e:#}")))?;
    let (required, optional) = provider_libraries(&needed);
    let search = SearchPath::of_machine();
    let mut libraries = locate(&provider, &required, &search)?;
    // cuFFT and NVRTC when they are there (ONNX Runtime opens them for the few operators that
    // use them, and says so if one is missing then).
    libraries.extend(
        optional.iter().filter_map(|s| search.find(s).map(|(path, origin)| Found { soname: s.clone(), path, origin })),
    );
    let (cuda_version, cudnn_version) = preload(&libraries)?;
    Ok(CudaSetup { provider, libraries, cuda_version, cudnn_version })
}

/// Every library of `libs` along `search`, or one error naming each missing library, the
/// pip package that carries it and where it was looked for.
pub fn locate(provider: &Path, libs: &[String], search: &SearchPath) -> Result<Vec<Found>, UserError> {
    let major = cuda_major(libs);
    let mut found = Vec::new();
    let mut missing: Vec<(&str, String)> = Vec::new();
    for soname in libs {
        match search.find(soname) {
            Some((path, origin)) => found.push(Found { soname: soname.clone(), path, origin }),
            None => missing.push((soname, package(soname, major))),
        }
    }
    if missing.is_empty() {
        return Ok(found);
    }
    let list: Vec<String> = missing.iter().map(|(s, p)| format!("{s} ({p})")).collect();
    let mut pip: Vec<&str> = Vec::new();
    for (_, p) in &missing {
        if p.starts_with("nvidia-") && !pip.contains(&p.as_str()) {
            pip.push(p);
        }
    }
    let install = if pip.is_empty() {
        String::new()
    } else {
        format!(
            " Install with `python3 -m pip install {}` (or `python3 -m pip install \"onnxruntime-gpu[cuda,cudnn]\"`), or put their folder on LD_LIBRARY_PATH.",
            pip.join(" ")
        )
    };
    Err(UserError::Runtime(format!(
        "--device cuda: the CUDA provider ({}, built for CUDA {}) needs {} not found on this machine: {}.{install} Looked in: {}; use --device cpu otherwise",
        provider.display(),
        major.map_or("?".into(), |m| m.to_string()),
        if missing.len() == 1 { "a library" } else { "libraries" },
        list.join(", "),
        search.describe()
    )))
}

/// Load every library (each before those needing it; one that fails is tried again after
/// the others), keep them loaded for the process, and read the CUDA and cuDNN versions.
fn preload(libs: &[Found]) -> Result<(Option<String>, Option<String>)> {
    use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};
    let mut loaded: Vec<(usize, Library)> = Vec::new();
    let mut errors: Vec<(usize, String)> = Vec::new();
    let mut pending: Vec<usize> = (0..libs.len()).collect();
    // A library whose dependency is loaded later fails the first time: try until no progress.
    while !pending.is_empty() {
        errors.clear();
        let before = pending.len();
        pending.retain(|&i| {
            // SAFETY: loading a CUDA library runs its initializers, as ONNX Runtime's provider
            // would when it loads it; nothing of ours runs in between.
            match unsafe { Library::open(Some(&libs[i].path), RTLD_NOW | RTLD_GLOBAL) } {
                Ok(lib) => {
                    loaded.push((i, lib));
                    false
                }
                Err(e) => {
                    errors.push((i, e.to_string()));
                    true
                }
            }
        });
        if pending.len() == before {
            break;
        }
    }
    if let Some((i, why)) = errors.first() {
        let f = &libs[*i];
        return Err(UserError::Runtime(format!(
            "--device cuda: {} ({}, found via {}) does not load: {why}; use --device cpu otherwise",
            f.path.display(),
            f.soname,
            f.origin
        ))
        .into());
    }
    let stem = |i: usize| libs[i].soname.split(".so").next().unwrap_or("").to_string();
    let mut cuda = None;
    let mut cudnn = None;
    for (i, lib) in &loaded {
        match stem(*i).as_str() {
            // SAFETY: the CUDA runtime's documented `cudaError_t cudaRuntimeGetVersion(int*)`.
            "libcudart" => unsafe {
                if let Ok(f) = lib.get::<unsafe extern "C" fn(*mut i32) -> i32>(b"cudaRuntimeGetVersion") {
                    let mut v = 0;
                    cuda = (f(&mut v) == 0).then(|| cuda_version_string(v));
                }
            },
            // SAFETY: cuDNN's documented `size_t cudnnGetVersion(void)`.
            "libcudnn" => unsafe {
                if let Ok(f) = lib.get::<unsafe extern "C" fn() -> usize>(b"cudnnGetVersion") {
                    cudnn = Some(cudnn_version_string(f()));
                }
            },
            _ => {}
        }
    }
    let from_file = |prefix: &str| libs.iter().find(|f| f.soname.starts_with(prefix)).map(file_version);
    let cuda = cuda.or_else(|| from_file("libcudart."));
    let cudnn = cudnn.or_else(|| from_file("libcudnn."));
    // Loaded for the rest of the process: the provider links against them.
    for (_, lib) in loaded {
        std::mem::forget(lib);
    }
    Ok((cuda, cudnn))
}

/// `cudaRuntimeGetVersion`'s number as text: 13000 -> `13.0`, 12080 -> `12.8`.
pub fn cuda_version_string(v: i32) -> String {
    format!("{}.{}", v / 1000, (v % 1000) / 10)
}

/// `cudnnGetVersion`'s number as text: 91400 -> `9.14.0` (cuDNN 9 and later:
/// major x 10000 + minor x 100 + patch), 8907 -> `8.9.7` (cuDNN 8: major x 1000 + ...).
pub fn cudnn_version_string(v: usize) -> String {
    let (major, rest) = if v >= 90000 { (v / 10000, v % 10000) } else { (v / 1000, v % 1000) };
    format!("{major}.{}.{}", rest / 100, rest % 100)
}

/// A library's version from its file name after links, `libcudnn.so.9.14.0` -> `9.14.0`,
/// else the soname's major (`libcudnn.so.9` -> `9`).
pub fn file_version(f: &Found) -> String {
    let real = search::real_path(&f.path);
    let name = real.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    match name.split_once(".so.") {
        Some((_, v)) if v.contains('.') => v.to_string(),
        _ => soname_major(&f.soname).map_or_else(String::new, |m| m.to_string()),
    }
}

#[cfg(test)]
mod tests;
