//! Finding the ONNX Runtime shared library: `ORT_DYLIB_PATH`, a copy next to the binary,
//! the user cache, an installed Python `onnxruntime`, or a one-time fetch of the PyPI wheel
//! with `python3 -m pip download` (extracted into the cache).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::error::UserError;

/// The ONNX Runtime version `ort` 2.0.0-rc.15 is built for.
pub const ORT_VERSION: &str = "1.31.1";

/// The library file name inside the wheel.
pub fn lib_name() -> String {
    format!("libonnxruntime.so.{ORT_VERSION}")
}

/// The PyPI package that carries the library for a device.
pub fn package(cuda: bool) -> &'static str {
    if cuda {
        "onnxruntime-gpu"
    } else {
        "onnxruntime"
    }
}

/// Cache folder: `$REUSE_AUDIT_CACHE`, else `$XDG_CACHE_HOME/reuse-audit`, else `~/.cache/reuse-audit`.
pub fn cache_dir(cuda: bool) -> PathBuf {
    let base = std::env::var_os("REUSE_AUDIT_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|p| PathBuf::from(p).join("reuse-audit")))
        .or_else(|| std::env::var_os("HOME").map(|p| PathBuf::from(p).join(".cache/reuse-audit")))
        .unwrap_or_else(|| PathBuf::from(".ort"));
    base.join(format!("{}-{ORT_VERSION}", package(cuda)))
}

/// Locate (and if needed fetch) the library; `quiet` silences the one-time fetch notice.
pub fn locate(cuda: bool, quiet: bool) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            return Err(UserError::Runtime(format!("ORT_DYLIB_PATH={} is not a file", p.display())).into());
        }
        return Ok(p);
    }
    if let Some(found) = on_disk(cuda) {
        return Ok(found);
    }
    // Asking Python costs a process start (tens of milliseconds), so only when nothing
    // closer is there (`onnxruntime-gpu` installs the same `onnxruntime` module).
    if let Some(found) = python_package_lib().filter(|p| fits(p, cuda)) {
        return Ok(found);
    }
    fetch_once(cuda, quiet)
}

/// The library [`locate`] would use without asking Python or fetching anything: the
/// `ORT_DYLIB_PATH` file, one beside the executable, or the cached download.
pub fn local_library(cuda: bool) -> Option<PathBuf> {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(p) => Some(PathBuf::from(p)).filter(|p| p.is_file()),
        None => on_disk(cuda),
    }
}

/// Whether `p` is a library [`locate`] can use (for CUDA, one with the CUDA provider beside it).
fn fits(p: &Path, cuda: bool) -> bool {
    p.is_file() && (!cuda || p.with_file_name(super::cuda::PROVIDER_LIB).is_file())
}

/// The library beside the executable (or its parent folder, for test binaries) or in the
/// download cache.
fn on_disk(cuda: bool) -> Option<PathBuf> {
    let name = lib_name();
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            candidates.push(dir.join(&name));
            // target/{debug,release}/deps/.. for test binaries
            if let Some(up) = dir.parent() {
                candidates.push(up.join(&name));
            }
        }
    }
    candidates.push(cache_dir(cuda).join(&name));
    // For CUDA, only a build with the CUDA provider beside it will do.
    candidates.into_iter().find(|p| fits(p, cuda))
}

/// The version the ONNX Runtime library at `path` reports (`OrtGetApiBase()->GetVersionString()`);
/// call after it is loaded (this only adds a reference to it).
pub fn loaded_version(path: &Path) -> Option<String> {
    // SAFETY: the library is ONNX Runtime, already loaded and initialized by `ort`; its
    // documented entry point returns a static API base whose version string is static.
    unsafe {
        let lib = libloading::Library::new(path).ok()?;
        let get = lib.get::<unsafe extern "C" fn() -> *const ort::sys::OrtApiBase>(b"OrtGetApiBase").ok()?;
        let base = get();
        if base.is_null() {
            return None;
        }
        let s = ((*base).GetVersionString)();
        (!s.is_null()).then(|| std::ffi::CStr::from_ptr(s).to_string_lossy().into_owned())
    }
}

/// Fetch under a lock file, so processes started together download once; the others wait
/// for the library to appear (a lock older than ten minutes is taken as stale).
fn fetch_once(cuda: bool, quiet: bool) -> Result<PathBuf> {
    let dest = cache_dir(cuda);
    let lib = dest.join(lib_name());
    let _ = std::fs::create_dir_all(&dest);
    let lock = dest.join(".fetch.lock");
    let started = std::time::Instant::now();
    loop {
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&lock) {
            Ok(_) => {
                let result = if lib.is_file() { Ok(lib.clone()) } else { fetch(cuda, quiet) };
                let _ = std::fs::remove_file(&lock);
                return result;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if lib.is_file() {
                    return Ok(lib);
                }
                let stale = std::fs::metadata(&lock)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age.as_secs() > 600);
                if stale || started.elapsed().as_secs() > 900 {
                    let _ = std::fs::remove_file(&lock);
                }
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
            // An unwritable cache: try without the lock; fetch reports the real problem.
            Err(_) => return fetch(cuda, quiet),
        }
    }
}

/// The library of an installed Python `onnxruntime` of the right version, if any.
fn python_package_lib() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import onnxruntime,os;print(onnxruntime.__version__);print(os.path.dirname(onnxruntime.__file__))",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let mut lines = text.lines();
    let (version, dir) = (lines.next()?, lines.next()?);
    (version == ORT_VERSION).then(|| Path::new(dir).join("capi").join(lib_name()))
}

/// Download the wheel with pip and extract its shared libraries into the cache.
fn fetch(cuda: bool, quiet: bool) -> Result<PathBuf> {
    let dest = cache_dir(cuda);
    let pkg = package(cuda);
    let how = format!(
        "ONNX Runtime {ORT_VERSION} was not found and could not be fetched: {{}}. \
         Install it with `python3 -m pip download --no-deps {pkg}=={ORT_VERSION}` and unzip \
         onnxruntime/capi/{} from the wheel, then point ORT_DYLIB_PATH at it.",
        lib_name()
    );
    let fail = |why: String| -> anyhow::Error { UserError::Runtime(how.replace("{}", &why)).into() };
    std::fs::create_dir_all(&dest).map_err(|e| fail(format!("cannot create {}: {e}", dest.display())))?;
    let tmp = tempdir_in(&dest).map_err(|e| fail(format!("cannot create a folder in {}: {e}", dest.display())))?;
    if !quiet {
        eprintln!("reuse-audit: fetching {pkg}=={ORT_VERSION} with pip (one time, into {})", dest.display());
    }
    let status = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-q"])
        .arg(format!("{pkg}=={ORT_VERSION}"))
        .arg("-d")
        .arg(&tmp)
        .status()
        .map_err(|e| fail(format!("cannot run python3 -m pip: {e}")))?;
    if !status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(fail(format!("pip download exited with {status}")));
    }
    let wheel = std::fs::read_dir(&tmp)
        .ok()
        .and_then(|mut d| {
            d.find_map(|e| e.ok().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "whl")))
        })
        .ok_or_else(|| fail("pip produced no wheel".into()))?;
    let result = extract(&wheel, &dest).map_err(|e| fail(format!("{e:#}")));
    let _ = std::fs::remove_dir_all(&tmp);
    result?;
    Ok(dest.join(lib_name()))
}

/// Extract `onnxruntime/capi/lib*.so*` from a wheel into `dest`, each file atomically.
fn extract(wheel: &Path, dest: &Path) -> Result<()> {
    let file = std::fs::File::open(wheel)?;
    let mut zip = zip::ZipArchive::new(file).context("the wheel is not a zip archive")?;
    let mut found = false;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i)?;
        let Some(name) = entry.name().strip_prefix("onnxruntime/capi/").map(str::to_string) else {
            continue;
        };
        if !name.starts_with("lib") || !name.contains(".so") || name.contains('/') {
            continue;
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes)?;
        let part = dest.join(format!(".{name}.{}.part", std::process::id()));
        std::fs::write(&part, &bytes)?;
        std::fs::rename(&part, dest.join(&name))?;
        found |= name == lib_name();
    }
    anyhow::ensure!(found, "the wheel has no onnxruntime/capi/{}", lib_name());
    Ok(())
}

fn tempdir_in(dir: &Path) -> std::io::Result<PathBuf> {
    let p = dir.join(format!(".download-{}", std::process::id()));
    std::fs::create_dir_all(&p)?;
    Ok(p)
}
