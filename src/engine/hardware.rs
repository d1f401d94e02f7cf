//! What the forwards ran on, for reports: the CPU's model name (`/proc/cpuinfo`) or the
//! GPU's (`nvidia-smi`, else the driver's `/proc/driver/nvidia/gpus/*/information`). The
//! parsers are plain functions over text, tested on samples.

use std::path::Path;
use std::process::Command;

/// The CPU's model name, from `/proc/cpuinfo` (`None` where there is none).
pub fn cpu_model() -> Option<String> {
    cpu_model_in(&std::fs::read_to_string("/proc/cpuinfo").ok()?)
}

/// The first `model name` of a `/proc/cpuinfo` text (ARM kernels write `Model` or
/// `Hardware` instead).
pub fn cpu_model_in(cpuinfo: &str) -> Option<String> {
    ["model name", "Model", "Hardware"].iter().find_map(|key| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == *key && !v.trim().is_empty()).then(|| v.split_whitespace().collect::<Vec<_>>().join(" "))
        })
    })
}

/// The name of the GPU the CUDA provider runs on (device 0): `nvidia-smi`'s, else the
/// kernel driver's; `None` when neither says.
pub fn gpu_name() -> Option<String> {
    let smi = Command::new("nvidia-smi")
        .args(["--query-gpu=name", "--format=csv,noheader", &smi_id()])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|t| t.lines().next().map(|l| l.trim().to_string()))
        .filter(|n| !n.is_empty());
    smi.or_else(|| gpu_name_in_proc(Path::new("/proc/driver/nvidia/gpus")))
}

/// `nvidia-smi`'s `--id` for the GPU the CUDA provider runs on: its device 0 is the first
/// of `CUDA_VISIBLE_DEVICES` when that is set (an index or a UUID), else GPU 0.
fn smi_id() -> String {
    smi_id_for(std::env::var("CUDA_VISIBLE_DEVICES").ok().as_deref())
}

fn smi_id_for(visible: Option<&str>) -> String {
    let first = visible.and_then(|v| v.split(',').next()).map(str::trim).filter(|f| !f.is_empty());
    format!("--id={}", first.unwrap_or("0"))
}

/// Free memory of the GPU the CUDA provider runs on (device 0), MiB, as `nvidia-smi` says;
/// `None` when it cannot be asked.
pub fn gpu_free_mib() -> Option<usize> {
    let out = Command::new("nvidia-smi")
        .args(["--query-gpu=memory.free", "--format=csv,noheader,nounits", &smi_id()])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    free_mib_in(&String::from_utf8_lossy(&out.stdout))
}

/// The first line of `nvidia-smi --query-gpu=memory.free --format=csv,noheader,nounits`.
pub fn free_mib_in(smi: &str) -> Option<usize> {
    smi.lines().next()?.trim().parse().ok()
}

/// The `Model:` line of the first GPU (by bus id) under the driver's folder, e.g.
/// `/proc/driver/nvidia/gpus/0000:3b:00.0/information`.
pub fn gpu_name_in_proc(gpus: &Path) -> Option<String> {
    let mut dirs: Vec<_> = std::fs::read_dir(gpus).ok()?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    dirs.sort();
    dirs.iter().find_map(|d| {
        let text = std::fs::read_to_string(d.join("information")).ok()?;
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "Model" && !v.trim().is_empty()).then(|| v.trim().to_string())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gpu_asked_about_is_the_first_visible_one() {
        assert_eq!(smi_id_for(None), "--id=0");
        assert_eq!(smi_id_for(Some("")), "--id=0");
        assert_eq!(smi_id_for(Some("3,1")), "--id=3");
        assert_eq!(smi_id_for(Some("GPU-34cdde7c-675a")), "--id=GPU-34cdde7c-675a");
    }

    #[test]
    fn gpu_free_memory_is_the_first_line_in_mib() {
        assert_eq!(free_mib_in("143060\n"), Some(143060));
        assert_eq!(free_mib_in(" 81000 \n79000\n"), Some(81000));
        assert_eq!(free_mib_in("[N/A]\n"), None);
        assert_eq!(free_mib_in(""), None);
    }

    #[test]
    fn cpu_model_is_the_first_model_name() {
        let text = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7R13  Processor\n\nprocessor\t: 1\nmodel name\t: other\n";
        assert_eq!(cpu_model_in(text).as_deref(), Some("AMD EPYC 7R13 Processor"));
        assert_eq!(cpu_model_in("processor : 0\nModel : Raspberry Pi 4\n").as_deref(), Some("Raspberry Pi 4"));
        assert_eq!(cpu_model_in("processor : 0\n"), None);
    }

    #[test]
    fn gpu_name_from_the_driver_information_file() {
        let d = tempfile::tempdir().unwrap();
        for (bus, model) in [("0000:b1:00.0", "NVIDIA H200"), ("0000:3b:00.0", "NVIDIA H100 80GB HBM3")] {
            std::fs::create_dir_all(d.path().join(bus)).unwrap();
            let info = format!("Model: \t\t {model}\nIRQ:   \t\t 42\nGPU UUID: \t GPU-1234\nBus Type: \t PCIe\n");
            std::fs::write(d.path().join(bus).join("information"), info).unwrap();
        }
        assert_eq!(gpu_name_in_proc(d.path()).as_deref(), Some("NVIDIA H100 80GB HBM3"), "the lowest bus id");
        assert_eq!(gpu_name_in_proc(&d.path().join("none")), None);
    }
}
