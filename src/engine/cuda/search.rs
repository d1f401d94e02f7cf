//! Where the CUDA/cuDNN user libraries are looked for, in this order: the `nvidia-*` pip
//! packages of the machine's `python3` (`site-packages/nvidia/*/lib`: `cu13/lib` for the
//! CUDA 13 packages, `cudnn/lib`, `cublas/lib`, ... for cuDNN and CUDA 12), the folders of
//! `LD_LIBRARY_PATH`, the CUDA toolkit (`$CUDA_HOME`, `$CUDA_PATH`, `/usr/local/cuda`), and
//! the dynamic loader's cache (`ldconfig -p`). [`SearchPath::new`] is a plain function of
//! those inputs, so the search is tested on fake folder trees.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Folders to look in, in order, each with where it came from; then the loader's cache.
#[derive(Debug, Clone, Default)]
pub struct SearchPath {
    /// `(folder, origin)`: origin is `pip`, `LD_LIBRARY_PATH` or `CUDA toolkit`.
    pub dirs: Vec<(PathBuf, &'static str)>,
    /// `(soname, path)` from `ldconfig -p`, for this machine's architecture.
    pub cache: Vec<(String, PathBuf)>,
}

impl SearchPath {
    /// The search path from its inputs: site-packages folders, `LD_LIBRARY_PATH`'s value,
    /// toolkit roots (their `lib64` and `targets/<arch>-linux/lib`) and `ldconfig -p`'s text.
    pub fn new(
        site_packages: &[PathBuf],
        ld_library_path: Option<&OsStr>,
        toolkits: &[PathBuf],
        ldconfig: &str,
    ) -> SearchPath {
        let mut dirs: Vec<(PathBuf, &'static str)> = Vec::new();
        let mut add = |d: PathBuf, origin: &'static str| {
            if d.is_dir() && !dirs.iter().any(|(x, _)| *x == d) {
                dirs.push((d, origin));
            }
        };
        for sp in site_packages {
            let Ok(entries) = std::fs::read_dir(sp.join("nvidia")) else { continue };
            let mut libs: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path().join("lib"))).collect();
            libs.sort();
            for d in libs {
                add(d, "pip");
            }
        }
        for d in ld_library_path.map(std::env::split_paths).into_iter().flatten() {
            if !d.as_os_str().is_empty() {
                add(d, "LD_LIBRARY_PATH");
            }
        }
        let arch = std::env::consts::ARCH;
        for t in toolkits {
            add(t.join("lib64"), "CUDA toolkit");
            add(t.join("targets").join(format!("{arch}-linux")).join("lib"), "CUDA toolkit");
        }
        SearchPath { dirs, cache: parse_ldconfig(ldconfig, arch) }
    }

    /// This machine's search path (asks `python3` for its site-packages and `ldconfig` for
    /// its cache; either missing only shortens the path).
    pub fn of_machine() -> SearchPath {
        let mut toolkits: Vec<PathBuf> =
            ["CUDA_HOME", "CUDA_PATH"].iter().filter_map(|v| std::env::var_os(v).map(PathBuf::from)).collect();
        toolkits.push(PathBuf::from("/usr/local/cuda"));
        let ldconfig = ["ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"]
            .iter()
            .find_map(|exe| Command::new(exe).arg("-p").output().ok().filter(|o| o.status.success()))
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        SearchPath::new(&python_site_packages(), std::env::var_os("LD_LIBRARY_PATH").as_deref(), &toolkits, &ldconfig)
    }

    /// The first file named `soname` along the path, with where it was found.
    pub fn find(&self, soname: &str) -> Option<(PathBuf, &'static str)> {
        self.dirs.iter().map(|(d, o)| (d.join(soname), *o)).find(|(p, _)| p.is_file()).or_else(|| {
            self.cache.iter().find(|(n, p)| n == soname && p.is_file()).map(|(_, p)| (p.clone(), "ldconfig cache"))
        })
    }

    /// The places searched, for messages: `pip (3 folders under …), LD_LIBRARY_PATH, …`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        let pip: Vec<&PathBuf> = self.dirs.iter().filter(|(_, o)| *o == "pip").map(|(d, _)| d).collect();
        match pip.first() {
            Some(first) => {
                parts.push(format!("python3's nvidia packages ({} folder(s), e.g. {})", pip.len(), first.display()))
            }
            None => parts.push("python3's nvidia packages (none installed)".into()),
        }
        for (d, o) in self.dirs.iter().filter(|(_, o)| *o != "pip") {
            parts.push(format!("{} ({o})", d.display()));
        }
        parts.push(format!("the ldconfig cache ({} entries)", self.cache.len()));
        parts.join(", ")
    }
}

/// `(soname, path)` of `ldconfig -p` lines for `arch` (`x86_64` keeps `x86-64` entries,
/// `aarch64` the `AArch64` ones), e.g.
/// `\tlibcudart.so.12 (libc6,x86-64) => /usr/local/cuda/lib64/libcudart.so.12`.
pub fn parse_ldconfig(text: &str, arch: &str) -> Vec<(String, PathBuf)> {
    let tag = match arch {
        "x86_64" => Some("x86-64"),
        "aarch64" => Some("AArch64"),
        _ => None,
    };
    text.lines()
        .filter_map(|l| {
            let (left, path) = l.split_once(" => ")?;
            let (name, flags) = left.trim().split_once(' ')?;
            tag.is_none_or(|t| flags.contains(t)).then(|| (name.to_string(), PathBuf::from(path.trim())))
        })
        .collect()
}

/// The site-packages folders of the machine's `python3` (global, user and the running
/// environment's), in its own order; empty without a `python3`.
pub fn python_site_packages() -> Vec<PathBuf> {
    let code = "import site,sys\n\
                dirs=list(getattr(site,'getsitepackages',lambda:[])())+[site.getusersitepackages()]\n\
                dirs+=[p for p in sys.path if p.endswith(('site-packages','dist-packages'))]\n\
                print('\\n'.join(dict.fromkeys(dirs)))";
    Command::new("python3")
        .args(["-c", code])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().filter(|l| !l.is_empty()).map(PathBuf::from).collect())
        .unwrap_or_default()
}

/// Where a file lies after following symbolic links (itself when it is not one).
pub fn real_path(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests;
