//! What ONNX Runtime's CUDA provider needs: the CUDA libraries its
//! `libonnxruntime_providers_cuda.so` links (ELF `DT_NEEDED`), cuDNN (and, when there,
//! cuFFT and NVRTC), which it opens itself at run time; the CUDA major they belong to; and
//! the pip package that carries each, for messages.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use object::read::elf::{ElfFile64, FileHeader};
use object::read::ReadCache;

/// The CUDA provider's library, beside `libonnxruntime.so.*` in an `onnxruntime-gpu` build.
pub const PROVIDER_LIB: &str = "libonnxruntime_providers_cuda.so";

/// Every `DT_NEEDED` entry of an ELF shared library, in order (read through a cache: the
/// provider is hundreds of MB, the entries a few KB).
pub fn dt_needed(path: &Path) -> Result<Vec<String>> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let cache = ReadCache::new(file);
    let elf = ElfFile64::<object::Endianness, _>::parse(&cache)
        .map_err(|e| anyhow!("{} is not a 64-bit ELF shared library: {e}", path.display()))?;
    let endian = elf.endian();
    let sections = elf.elf_header().sections(endian, &cache).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let table = sections.dynamic_table(endian, &cache).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for d in table.iter() {
        if d.tag == object::elf::DT_NEEDED {
            let name = table.string(d).map_err(|e| anyhow!("{}: {e}", path.display()))?;
            out.push(String::from_utf8_lossy(name).into_owned());
        }
    }
    Ok(out)
}

/// The cuDNN the CUDA 12 and 13 builds of ONNX Runtime 1.x load.
pub const CUDNN: &str = "libcudnn.so.9";

/// What the provider needs, from its `DT_NEEDED` list: `(required, optional)`, each in
/// loading order (a library before those that depend on it: cuBLASLt before cuBLAS).
/// Required: the CUDA libraries it links (`libcu*`, `libnv*`: the runtime, cuBLAS, cuRAND,
/// the driver's `libcuda.so.1`) and cuDNN, which it opens itself at run time (a convolution
/// needs it). Optional, loaded when found, as ONNX Runtime's Python package does: cuFFT and
/// NVRTC, which it opens only for the operators that use them.
pub fn provider_libraries(needed: &[String]) -> (Vec<String>, Vec<String>) {
    const ORDER: [&str; 8] =
        ["libcuda.", "libcudart.", "libcublasLt.", "libcublas.", "libnvrtc.", "libcurand.", "libcufft.", "libcudnn."];
    let rank = |n: &String| ORDER.iter().position(|p| n.starts_with(p)).unwrap_or(ORDER.len());
    let mut required: Vec<String> =
        needed.iter().filter(|n| n.starts_with("libcu") || n.starts_with("libnv")).cloned().collect();
    if !required.iter().any(|n| n.starts_with("libcudnn.")) {
        required.push(CUDNN.into());
    }
    let mut optional: Vec<String> = Vec::new();
    if let Some(m) = cuda_major(&required) {
        // cuFFT's soname runs one behind CUDA's since CUDA 12 (CUDA 13 ships libcufft.so.12).
        for lib in [format!("libnvrtc.so.{m}"), format!("libcufft.so.{}", m.saturating_sub(1))] {
            if !required.contains(&lib) {
                optional.push(lib);
            }
        }
    }
    required.sort_by_key(rank);
    optional.sort_by_key(rank);
    (required, optional)
}

/// The major version a library's soname carries: `libcudart.so.13` -> 13.
pub fn soname_major(soname: &str) -> Option<u32> {
    soname.split(".so.").nth(1)?.split('.').next()?.parse().ok()
}

/// The CUDA major the provider was built for: the runtime's (or cuBLAS's) soname major.
pub fn cuda_major(libs: &[String]) -> Option<u32> {
    ["libcudart.so.", "libcublas.so."]
        .iter()
        .find_map(|p| libs.iter().find(|l| l.starts_with(p)))
        .and_then(|l| soname_major(l))
}

/// The pip package that carries a library for CUDA `major` (CUDA 12 packages end in
/// `-cu12`; the CUDA 13 ones have no suffix, except cuDNN's `nvidia-cudnn-cu13`), or what
/// else provides it.
pub fn package(soname: &str, major: Option<u32>) -> String {
    let stem = soname.split(".so").next().unwrap_or(soname);
    let suffix = match major {
        Some(m) if m <= 12 => format!("-cu{m}"),
        _ => String::new(),
    };
    let name = match stem {
        "libcuda" => return "from the NVIDIA driver, not pip".into(),
        "libcudnn" => return format!("nvidia-cudnn-cu{}", major.unwrap_or(13)),
        "libcudart" => "nvidia-cuda-runtime",
        "libcublas" | "libcublasLt" => "nvidia-cublas",
        "libcufft" => "nvidia-cufft",
        "libcurand" => "nvidia-curand",
        "libcusparse" => "nvidia-cusparse",
        "libcusolver" => "nvidia-cusolver",
        "libnvrtc" => "nvidia-cuda-nvrtc",
        "libnvJitLink" => "nvidia-nvjitlink",
        _ => return format!("the CUDA toolkit {}", major.map_or(String::new(), |m| m.to_string())).trim().into(),
    };
    format!("{name}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn what_the_onnxruntime_gpu_1_31_1_provider_needs() {
        // `readelf -d` of onnxruntime_gpu-1.31.1-cp312-cp312-manylinux_2_28_x86_64.whl's
        // onnxruntime/capi/libonnxruntime_providers_cuda.so (built for CUDA 13.0): it links
        // no cuDNN and no cuFFT (it opens them at run time).
        let needed = strings(&[
            "libcublasLt.so.13",
            "libcublas.so.13",
            "libcurand.so.10",
            "libcudart.so.13",
            "libcuda.so.1",
            "libdl.so.2",
            "librt.so.1",
            "libpthread.so.0",
            "libstdc++.so.6",
            "libm.so.6",
            "libgcc_s.so.1",
            "libc.so.6",
            "ld-linux-x86-64.so.2",
        ]);
        let (required, optional) = provider_libraries(&needed);
        assert_eq!(
            required,
            strings(&[
                "libcuda.so.1",
                "libcudart.so.13",
                "libcublasLt.so.13",
                "libcublas.so.13",
                "libcurand.so.10",
                "libcudnn.so.9"
            ])
        );
        assert_eq!(optional, strings(&["libnvrtc.so.13", "libcufft.so.12"]));
        assert_eq!(cuda_major(&required), Some(13));
        assert_eq!(cuda_major(&strings(&["libcudnn.so.9"])), None);
        // A CUDA 12 build: cuFFT 11.
        let (_, optional) = provider_libraries(&strings(&["libcudart.so.12", "libcublas.so.12"]));
        assert_eq!(optional, strings(&["libnvrtc.so.12", "libcufft.so.11"]));
    }

    #[test]
    fn packages_by_cuda_major() {
        assert_eq!(package("libcudnn.so.9", Some(13)), "nvidia-cudnn-cu13");
        assert_eq!(package("libcudnn.so.9", Some(12)), "nvidia-cudnn-cu12");
        assert_eq!(package("libcudart.so.13", Some(13)), "nvidia-cuda-runtime");
        assert_eq!(package("libcudart.so.12", Some(12)), "nvidia-cuda-runtime-cu12");
        assert_eq!(package("libcublasLt.so.13", Some(13)), "nvidia-cublas");
        assert_eq!(package("libcufft.so.11", Some(12)), "nvidia-cufft-cu12");
        assert_eq!(package("libnvrtc.so.13", Some(13)), "nvidia-cuda-nvrtc");
        assert!(package("libcuda.so.1", Some(13)).contains("driver"));
        assert_eq!(soname_major("libcudnn.so.9.14.0"), Some(9));
    }

    #[test]
    fn dt_needed_reads_what_readelf_reads() {
        // Any shared library of this machine, checked against binutils' readelf where it is.
        let lib = ["/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1", "/lib64/libz.so.1"]
            .iter()
            .map(Path::new)
            .find(|p| p.is_file());
        let (Some(lib), Ok(out)) =
            (lib, std::process::Command::new("readelf").args(["-d", "-W"]).arg(lib.unwrap_or(Path::new("/"))).output())
        else {
            println!("SKIPPED: no libz.so.1 or no readelf here");
            return;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let want: Vec<String> = text
            .lines()
            .filter(|l| l.contains("(NEEDED)"))
            .filter_map(|l| l.split('[').nth(1)?.split(']').next().map(str::to_string))
            .collect();
        assert!(!want.is_empty(), "readelf found no NEEDED entry in {}", lib.display());
        assert_eq!(dt_needed(lib).unwrap(), want);
        let not_elf = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(not_elf.path(), b"not an ELF file").unwrap();
        assert!(format!("{:#}", dt_needed(not_elf.path()).unwrap_err()).contains("not a 64-bit ELF"));
    }
}
