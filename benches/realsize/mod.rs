//! `realsize` (issue 15), run only when `REUSE_AUDIT_BENCH_PAIRS` names it: the
//! segmentation_models_pytorch UNet (ResNet-34 encoder, 1 channel in, 4 classes, 256x256)
//! of `models/make_realsize.py`, made beforehand under `target/realsize/` (it needs torch).
//!
//! - CPU exact on the first 16 and the first 50 of the 500 validation slices
//!   (`val-16.npz`, `val-50.npz`), extrapolated to the 500 with the straight line through
//!   the two (an audit's cost is fixed costs plus a cost per image). With
//!   `REUSE_AUDIT_REALSIZE_CPU=16` only the 16-slice run, extrapolated in proportion.
//! - CPU `--adaptive` on all 500 when `REUSE_AUDIT_REALSIZE_ADAPTIVE=1` (long on a CPU).
//! - With an NVIDIA driver: `--device cuda` exact on all 500 and on the 16 (Dice compared
//!   with the CPU's, at most 1e-3 apart), and the GPU's own forward pass over the 500 in a
//!   child process, so `efficiency = t_forward x forward-pass equivalents / wall` as for
//!   the CPU pairs.
//!
//! Times come from each report's `timing` (and the process's wall time).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use reuse_audit::audit::cost::{probe_shapes, CostModel};
use reuse_audit::data::{self, Fit, Normalize};
use reuse_audit::engine::{Device, LazyEngine};
use reuse_audit::model::graph::Topology;
use reuse_audit::model::layers::scan;
use reuse_audit::model::Model;

fn dir() -> PathBuf {
    super::root().join("target/realsize")
}

/// Best time of a forward pass over `data` on `device` (batches of 4 and 16, best of 2
/// after a warm-up), and the forward-pass equivalents of the exact incremental audit; one
/// line `t_forward,batch,equivalents,swaps,images` (run in a child process).
pub fn measure(device: &str, data_path: &Path) {
    let device = if device == "cuda" { Device::Cuda } else { Device::Cpu };
    // REUSE_AUDIT_BENCH_TF32=1: the forward pass with TF32 allowed (as `--tf32` audits).
    let tf32 = std::env::var("REUSE_AUDIT_BENCH_TF32").is_ok_and(|v| v == "1");
    let lazy = LazyEngine::new(device, 0, true).with_tf32(tf32);
    let engine = lazy.get().expect("ONNX Runtime");
    let model = Model::load(&dir().join("unet34-target.onnx")).expect("model");
    let input = model.input_spec().expect("input");
    let loaded = data::load(data_path, None).expect("data");
    let ds = data::preprocess::prepare(&loaded.samples, &input, Normalize::Zscore, Fit::None).expect("prepare");
    let best = super::best_forward(engine, &model, &ds, &[4, 16], 2);
    let layers = scan(&model);
    let probe = probe_shapes(engine, &model, &input.name, ds.layout, [ds.c(), ds.h(), ds.w()]).expect("probe");
    let cost = CostModel::new(&model, &probe.shapes);
    let nodes: Vec<usize> = layers.layers.iter().flat_map(|l| l.params.iter().map(move |_| l.node_index)).collect();
    let equivalents = cost.forward_equivalents(&Topology::of(&model), &model, &nodes);
    println!("{},{},{equivalents},{},{}", best.0, best.1, nodes.len(), ds.n());
}

/// One audit: wall seconds and its report.
fn audit(bin: &str, data: &Path, out: &Path, extra: &[&str]) -> (f64, serde_json::Value) {
    let d = dir();
    let t0 = Instant::now();
    let status = Command::new(bin)
        .arg("audit")
        .arg(d.join("unet34-target.onnx"))
        .arg(d.join("unet34-source.onnx"))
        .arg("--data")
        .arg(data)
        .args(["-q", "--min-baseline", "0", "--format", "json", "--out"])
        .arg(out)
        .args(extra)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("audit");
    let wall = t0.elapsed().as_secs_f64();
    assert!(status.success(), "realsize audit {extra:?} failed");
    let report = serde_json::from_slice(&std::fs::read(out.join("report.json")).expect("report")).expect("JSON");
    (wall, report)
}

fn line(what: &str, wall: f64, r: &serde_json::Value) {
    let t = &r["timing"];
    println!(
        "{what:<34} wall {wall:>8.1}s  total {:>8.1}s  baseline {:>7.1}s  swaps {:>8.1}s  {:>8} image forwards  {:>7.1}/s  rows {}  on {}",
        t["total_s"].as_f64().unwrap_or(f64::NAN),
        t["baseline_s"].as_f64().unwrap_or(f64::NAN),
        t["swaps_s"].as_f64().unwrap_or(f64::NAN),
        t["image_forwards"],
        t["image_forwards_per_s"].as_f64().unwrap_or(f64::NAN),
        r["rows"].as_array().map_or(0, Vec::len),
        t["device"]
    );
}

/// Largest |swapped Dice difference| between two reports of the same swaps.
fn max_diff(a: &serde_json::Value, b: &serde_json::Value) -> f64 {
    let rows = |v: &serde_json::Value| v["rows"].as_array().cloned().unwrap_or_default();
    rows(a)
        .iter()
        .zip(rows(b))
        .map(|(x, y)| {
            (x["swapped_dice"].as_f64().unwrap_or(f64::NAN) - y["swapped_dice"].as_f64().unwrap_or(f64::NAN)).abs()
        })
        .fold(
            (a["baseline"]["mean"].as_f64().unwrap_or(0.0) - b["baseline"]["mean"].as_f64().unwrap_or(0.0)).abs(),
            f64::max,
        )
}

/// The forward-pass child: `(t_forward, batch, equivalents, swaps, images)`.
fn limits(device: &str, data: &Path) -> (f64, usize, f64, usize, usize) {
    let v = super::child_numbers("REUSE_AUDIT_BENCH_REALSIZE", &format!("{device},{}", data.display()));
    (v[0], v[1] as usize, v[2], v[3] as usize, v[4] as usize)
}

/// The `realsize` case.
pub fn run(bin: &str, tmp: &Path) {
    let d = dir();
    let files = ["unet34-target.onnx", "unet34-source.onnx", "val-16.npz", "val-50.npz", "val-500.npz"];
    if let Some(f) = files.iter().find(|f| !d.join(f).is_file()) {
        println!(
            "\nrealsize: SKIPPED: {} is missing; make the pair first: nice -n 15 /work/corpus-venv/bin/python models/make_realsize.py (torch, segmentation_models_pytorch)",
            d.join(f).display()
        );
        return;
    }
    println!("\nrealsize: smp Unet(resnet34), 1 -> 4 classes, 256x256 (target/realsize/MANIFEST.json)");
    let only16 = std::env::var("REUSE_AUDIT_REALSIZE_CPU").is_ok_and(|v| v == "16");
    let (w16, r16) = audit(bin, &d.join("val-16.npz"), &tmp.join("rs-cpu-16"), &[]);
    line("CPU exact, 16 slices", w16, &r16);
    let (fwd16, _, eq, swaps, _) = limits("cpu", &d.join("val-16.npz"));
    let total16 = r16["timing"]["total_s"].as_f64().unwrap_or(w16);
    let estimate = if only16 {
        total16 * 500.0 / 16.0
    } else {
        let (w50, r50) = audit(bin, &d.join("val-50.npz"), &tmp.join("rs-cpu-50"), &[]);
        line("CPU exact, 50 slices", w50, &r50);
        let total50 = r50["timing"]["total_s"].as_f64().unwrap_or(w50);
        let per_image = (total50 - total16) / 34.0;
        total16 + per_image * (500.0 - 16.0)
    };
    println!(
        "CPU: forward pass over 16 slices {fwd16:.2}s; {swaps} swaps, {eq:.1} forward-pass equivalents; efficiency on 16 = {:.2}; exact audit of 500 slices estimated {:.0}s ({:.1} h)",
        fwd16 * eq / total16,
        estimate,
        estimate / 3600.0
    );
    if std::env::var("REUSE_AUDIT_REALSIZE_ADAPTIVE").is_ok_and(|v| v == "1") {
        let (w, r) = audit(bin, &d.join("val-500.npz"), &tmp.join("rs-cpu-adaptive"), &["--adaptive"]);
        line("CPU --adaptive, 500 slices", w, &r);
    }
    if !(Path::new("/proc/driver/nvidia/version").exists() || Path::new("/dev/nvidia0").exists()) {
        println!("realsize on CUDA: SKIPPED (no NVIDIA driver here)");
        return;
    }
    let (g16w, g16) = audit(bin, &d.join("val-16.npz"), &tmp.join("rs-gpu-16"), &["--device", "cuda"]);
    line("CUDA exact, 16 slices", g16w, &g16);
    println!("CUDA vs CPU on 16 slices: max |Dice diff| {:.1e} (at most 1e-3 wanted)", max_diff(&g16, &r16));
    let (gw, g) = audit(bin, &d.join("val-500.npz"), &tmp.join("rs-gpu-500"), &["--device", "cuda"]);
    line("CUDA exact, 500 slices", gw, &g);
    let (fwd, batch, eq, swaps, images) = limits("cuda", &d.join("val-500.npz"));
    let total = g["timing"]["total_s"].as_f64().unwrap_or(gw);
    println!(
        "CUDA: {} ({}), forward pass over {images} slices {fwd:.2}s (batch {batch}); {swaps} swaps, {eq:.1} forward-pass equivalents, ideal {:.1}s; efficiency {:.2}; report: {}",
        g["engine"]["device"],
        g["engine"]["cuda_version"],
        fwd * eq,
        fwd * eq / total,
        tmp.join("rs-gpu-500/report.json").display()
    );
}
