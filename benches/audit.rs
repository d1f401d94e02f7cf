//! `cargo bench`: the exact audit against its compute limit, per strategy, on the bundled
//! acdc UNet and PSPNet pairs and a dynamo-exported smp PSPNet (`tests/corpus/`), plus a
//! hand-written Python peer (onnxruntime + numpy), and `incremental+labels` (the incremental
//! strategy with the swaps' labels computed in their sessions: the default on CUDA, an A/B on
//! CPU). `REUSE_AUDIT_BENCH_PAIRS=unet,smp-pspnet`
//! picks pairs.
//!
//! Per pair and round (`REUSE_AUDIT_BENCH_RUNS`, default 3) it measures, taking turns: one
//! plain forward pass over the validation set (best batch size; also with the swappable
//! initializers exposed as inputs, which blocks Conv+BN fusion) and the FLOPs limit
//! (`ideal_speedup`, forward-pass equivalents) from the graph, in a child process;
//! `reuse-audit audit` per strategy as a child process (wall time, peak RSS); the peer.
//! Medians are reported, except the forward pass: the fastest of the rounds, so that a round
//! slowed by the machine can only make the efficiency look worse, never better.
//! efficiency = ideal_time / actual_time, ideal_time = t_forward x equivalents. Then the
//! incremental audit's peak memory at three cache budgets.
//!
//! `smp-pspnet-240`: the smp pair's incremental audit alone against its compute limit, on
//! the held-out set below (a realistic validation-set size).
//!
//! `unet-240`, `pspnet-240`: the exact audit against `--adaptive` on a held-out set of 240
//! acdc slices (made by `models/make_heldout.py` under `target/`), taking turns, with the
//! decided rows compared. `bootstrap`: the intervals of 100 swaps over 500 images, 2000
//! resamples, in process. `counts`: per-image Dice counts of 16 maps of 256x256 (what every
//! region run of a real-size audit adds up), against a one-table pixel loop. `realsize` (only when named): the 256x256 ResNet-34 UNet of
//! `models/make_realsize.py` on CPU (a subset, extrapolated) and on CUDA where there is a GPU
//! (`benches/realsize/mod.rs`).

#[path = "realsize/mod.rs"]
mod realsize;

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use reuse_audit::audit::cost::{probe_shapes, CostModel};
use reuse_audit::audit::forward::{predictions, Feed};
use reuse_audit::audit::overridable_model;
use reuse_audit::data::{self, Fit, Normalize};
use reuse_audit::engine::{Device, Engine};
use reuse_audit::model::graph::Topology;
use reuse_audit::model::layers::scan;
use reuse_audit::model::layout::detect;
use reuse_audit::model::Model;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The pairs benchmarked: name, target, source, data (relative to the repository root).
/// The bundled UNet and PSPNet, and a segmentation_models_pytorch PSPNet exported with the
/// dynamo exporter (`tests/corpus/`), whose bool masks once kept it off the fast path.
const PAIRS: [(&str, &str, &str, &str); 5] = [
    ("unet", "models/unet-acdc-seg.onnx", "models/unet-acdc-ae.onnx", "models/data/acdc-val.npz"),
    ("pspnet", "models/pspnet-acdc-seg.onnx", "models/pspnet-acdc-ae.onnx", "models/data/acdc-val.npz"),
    (
        "smp-pspnet",
        "tests/corpus/smp-pspnet-target.onnx",
        "tests/corpus/smp-pspnet-source.onnx",
        "tests/corpus/smp-pspnet.npz",
    ),
    // The same smp pair on the 48 acdc validation images the bundled pairs use (the smp
    // target was trained on acdc phantoms): 16 images leave the fixed costs (sessions, the
    // probe) as large as the swaps.
    (
        "smp-pspnet-48",
        "tests/corpus/smp-pspnet-target.onnx",
        "tests/corpus/smp-pspnet-source.onnx",
        "models/data/acdc-val.npz",
    ),
    // And on the 240 held-out acdc slices of the adaptive benchmark (made under `target/`
    // by `models/make_heldout.py`): a validation set of a realistic size, where the fixed
    // costs (sessions, probes, the baseline) are spread over five times the swaps. Only the
    // incremental strategy and its compute limit are measured here.
    ("smp-pspnet-240", "tests/corpus/smp-pspnet-target.onnx", "tests/corpus/smp-pspnet-source.onnx", HELDOUT),
];

/// The held-out set of 240 acdc slices, relative to the repository root (made on first use).
const HELDOUT: &str = "target/heldout/acdc-heldout-240.npz";

/// Make the held-out set with `py` unless it exists; whether it does now.
fn heldout_ready(py: Option<&std::path::Path>) -> bool {
    let data = root().join(HELDOUT);
    if !data.exists() {
        let Some(py) = py else { return false };
        if let Some(dir) = data.parent() {
            std::fs::create_dir_all(dir).expect("target/heldout");
        }
        let made = Command::new(py).arg(root().join("models/make_heldout.py")).arg(&data).status();
        assert!(made.is_ok_and(|s| s.success()), "models/make_heldout.py failed");
    }
    true
}

/// Whether a pair measures only the incremental strategy (the large held-out set: the
/// naive strategy and the peer would take minutes a round there).
fn incremental_only(arch: &str) -> bool {
    arch.ends_with("-240")
}

/// Target, source and data paths of a pair by name.
fn pair_paths(arch: &str) -> (PathBuf, PathBuf, PathBuf) {
    let (_, t, s, d) = PAIRS.iter().find(|p| p.0 == arch).expect("a benchmarked pair");
    (root().join(t), root().join(s), root().join(d))
}

/// Runs per measurement (`REUSE_AUDIT_BENCH_RUNS`, default 3): the median wall time and
/// the largest peak RSS are reported, so one disturbed run does not decide the numbers.
fn runs() -> usize {
    std::env::var("REUSE_AUDIT_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(3)
}

/// Median wall seconds and largest peak RSS of (wall, rss) samples.
fn median(samples: &[(f64, f64)]) -> (f64, f64) {
    let mut walls: Vec<f64> = samples.iter().map(|s| s.0).collect();
    walls.sort_by(f64::total_cmp);
    (walls[walls.len() / 2], samples.iter().map(|s| s.1).fold(0.0, f64::max))
}

/// Wall seconds and peak RSS (MiB) of a child process (reaped by `wait4`).
#[allow(clippy::zombie_processes)]
fn measure_once(cmd: &mut Command) -> (f64, f64) {
    let t0 = Instant::now();
    let child = cmd.spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting on our own child; `usage` is a valid out-pointer.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let secs = t0.elapsed().as_secs_f64();
    assert!(r == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "{cmd:?} failed");
    (secs, usage.ru_maxrss as f64 / 1024.0)
}

/// Best time of a full forward pass over the data set, over batch sizes 1 to 48, 5 timed
/// runs each after a warm-up.
fn forward_time(engine: &Engine, model: &Model, ds: &data::preprocess::Dataset) -> (f64, usize) {
    best_forward(engine, model, ds, &[1, 2, 4, 8, 16, 48], 5)
}

/// Best time of a full forward pass over `ds` and the batch that gave it, over `batches`,
/// `reps` timed runs each after a warm-up.
fn best_forward(
    engine: &Engine,
    model: &Model,
    ds: &data::preprocess::Dataset,
    batches: &[usize],
    reps: usize,
) -> (f64, usize) {
    let input = model.input_spec().expect("input");
    let mut runner = engine.session(&model.to_bytes().expect("bytes")).expect("session");
    let mut best = (f64::INFINITY, 0);
    for &batch in batches {
        let feed = Feed {
            data: ds,
            input: &input,
            batch,
            threshold: 0.0,
            output: detect(model).output.layout,
            per_image: false,
        };
        predictions(&mut runner, &feed, &[]).expect("warm-up");
        for _ in 0..reps {
            let t0 = Instant::now();
            predictions(&mut runner, &feed, &[]).expect("forward");
            let t = t0.elapsed().as_secs_f64();
            if t < best.0 {
                best = (t, batch);
            }
        }
    }
    best
}

/// The forward-pass and FLOPs measurements of one pair: t_forward, best batch, t_forward with
/// every parameter exposed, swaps, images, ideal_speedup, forward-pass equivalents.
type Limits = (f64, usize, f64, usize, usize, f64, f64);

/// Measured in a child process (`REUSE_AUDIT_BENCH_LIMITS=arch`): an ONNX Runtime loaded in
/// this process would keep its thread pool beside the audits it times.
fn limits(arch: &str) -> Limits {
    let v = child_numbers("REUSE_AUDIT_BENCH_LIMITS", arch);
    (v[0], v[1] as usize, v[2], v[3] as usize, v[4] as usize, v[5], v[6])
}

/// Run this bench executable again with `key=value` in its environment (a measurement in a
/// process of its own) and read the comma-separated numbers of its last stdout line.
fn child_numbers(key: &str, value: &str) -> Vec<f64> {
    let exe = std::env::current_exe().expect("bench executable");
    let out = Command::new(exe).env(key, value).output().expect("measurement child");
    assert!(out.status.success(), "{key} child failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .split(',')
        .map(|x| x.trim().parse().expect("number"))
        .collect()
}

fn measure_limits(arch: &str) {
    let engine = Engine::new(Device::Cpu, 0, true).expect("ONNX Runtime");
    let (t, _, data_path) = pair_paths(arch);
    let model = Model::load(&t).expect("model");
    let layers = scan(&model);
    let loaded = data::load(&data_path, None).expect("data");
    let input = model.input_spec().expect("input");
    let ds = data::preprocess::prepare(&loaded.samples, &input, Normalize::Zscore, Fit::None).expect("prepare");
    let (t_fwd, best_batch) = forward_time(&engine, &model, &ds);
    let params: Vec<_> = layers.layers.iter().flat_map(|l| l.params.iter()).collect();
    let (t_fwd_exposed, _) = forward_time(&engine, &overridable_model(&model, &params), &ds);
    let probe = probe_shapes(&engine, &model, &input.name, ds.layout, [ds.c(), ds.h(), ds.w()]).expect("probe");
    let cost = CostModel::new(&model, &probe.shapes);
    let topo = Topology::of(&model);
    let swap_nodes: Vec<usize> =
        layers.layers.iter().flat_map(|l| l.params.iter().map(move |_| l.node_index)).collect();
    let ideal = cost.ideal_speedup(&topo, &model, &swap_nodes);
    let equivalents = cost.forward_equivalents(&topo, &model, &swap_nodes);
    println!("{t_fwd},{best_batch},{t_fwd_exposed},{},{},{ideal},{equivalents}", swap_nodes.len(), ds.n());
}

/// The adaptive benchmark's pairs: name, target, source (on the 240-slice held-out set).
const ADAPTIVE_PAIRS: [(&str, &str, &str); 2] = [
    ("unet-240", "models/unet-acdc-seg.onnx", "models/unet-acdc-ae.onnx"),
    ("pspnet-240", "models/pspnet-acdc-seg.onnx", "models/pspnet-acdc-ae.onnx"),
];

/// The exact audit and `--adaptive` on 240 held-out slices, taking turns: median wall
/// times, image forwards, and decided rows that differ (there should be none).
fn adaptive(bin: &str, py: &std::path::Path, tmp: &std::path::Path, picked: &dyn Fn(&str) -> bool) {
    let data = root().join(HELDOUT);
    for (name, t, s) in ADAPTIVE_PAIRS.into_iter().filter(|p| picked(p.0)) {
        heldout_ready(Some(py));
        let out = |mode: &str| tmp.join(format!("{name}-{mode}"));
        let audit = |mode: &str| {
            let mut c = Command::new(bin);
            c.stdout(std::process::Stdio::null()).arg("audit").arg(root().join(t)).arg(root().join(s));
            c.arg("--data").arg(&data).args(["-q", "--format", "json", "--out"]).arg(out(mode));
            if mode == "adaptive" {
                c.arg("--adaptive");
            }
            c
        };
        let (mut exact, mut fast) = (Vec::new(), Vec::new());
        for _ in 0..runs() {
            exact.push(measure_once(&mut audit("exact")));
            fast.push(measure_once(&mut audit("adaptive")));
        }
        let read = |mode: &str| -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(out(mode).join("report.json")).expect("report")).expect("JSON")
        };
        let (e, a) = (read("exact"), read("adaptive"));
        let (rows_e, rows_a) = (e["rows"].as_array().expect("rows"), a["rows"].as_array().expect("rows"));
        let decided = |r: &serde_json::Value| r["decision"] != "undecided";
        let both = rows_e.iter().zip(rows_a).filter(|(x, y)| decided(x) && decided(y));
        let differ = both.clone().filter(|(x, y)| x["decision"] != y["decision"]).count();
        let undecided = |rows: &[serde_json::Value]| rows.iter().filter(|r| !decided(r)).count();
        let (te, ta) = (median(&exact).0, median(&fast).0);
        let info = &a["adaptive"];
        println!(
            "\n{name}: {} swaps on 240 held-out slices; exact {te:.2}s, --adaptive {ta:.2}s: {:.1}x faster (median of {}); image forwards {} vs {} ({:.1}x fewer); rows decided by both {}, differing {differ}; undecided exact {}, adaptive {}; rounds {}",
            rows_e.len(),
            te / ta,
            runs(),
            info["image_forwards"],
            info["exact_image_forwards"],
            info["exact_image_forwards"].as_f64().unwrap_or(0.0) / info["image_forwards"].as_f64().unwrap_or(1.0),
            both.count(),
            undecided(rows_e),
            undecided(rows_a),
            info["rounds"]
        );
    }
}

/// Per-image Dice counts of one real-size run (16 maps of 256x256, 4 classes, blobs with
/// 6% of pixels mislabelled) against the simple loop (one (prediction, truth) table per
/// image), which must give the same counts.
fn counts_time() {
    use reuse_audit::metrics::bootstrap::{image_counts, SplitMix64};
    let mut rng = SplitMix64::new(7);
    let truth = ndarray::Array3::from_shape_fn((16, 256, 256), |(_, y, x)| {
        if (90..170).contains(&y) && (100..160).contains(&x) {
            1 + (x / 20 % 3) as u8
        } else {
            0
        }
    });
    let pred = truth.mapv(|c| if rng.below(16) == 0 { (c + 1) % 4 } else { c });
    let simple = || {
        let mut out = ndarray::Array3::<u32>::zeros((16, 4, 3));
        for (i, (p, t)) in pred.outer_iter().zip(truth.outer_iter()).enumerate() {
            let mut table = [[0u32; 5]; 5];
            for (&a, &b) in p.iter().zip(t.iter()) {
                table[usize::from(a).min(4)][usize::from(b).min(4)] += 1;
            }
            for k in 0..4 {
                out[[i, k, 0]] = table[k][k];
                out[[i, k, 1]] = table[k].iter().sum();
                out[[i, k, 2]] = table.iter().map(|r| r[k]).sum();
            }
        }
        out
    };
    let best = |f: &dyn Fn() -> ndarray::Array3<u32>| {
        (0..20)
            .map(|_| {
                let t0 = Instant::now();
                std::hint::black_box(f());
                t0.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    assert_eq!(image_counts(pred.view(), truth.view(), 4), simple(), "the counts differ from the simple loop");
    let (fast, slow) = (best(&|| image_counts(pred.view(), truth.view(), 4)), best(&simple));
    println!(
        "\ncounts: 16 maps of 256x256, 4 classes: {:.2} ms (simple loop {:.2} ms, {:.2}x; best of 20)",
        fast * 1e3,
        slow * 1e3,
        slow / fast
    );
}

/// The paired bootstrap alone: 100 swaps over 500 images of 4 classes, 2000 resamples.
fn bootstrap_time() {
    use reuse_audit::metrics::bootstrap::{delta_intervals, SplitMix64};
    let mut rng = SplitMix64::new(1);
    let mut counts = || ndarray::Array3::from_shape_fn((500, 4, 3), |(_, _, j)| (rng.below(500) + 100 * j) as u32);
    let base = counts();
    let swaps: Vec<_> = (0..100).map(|_| counts()).collect();
    let views: Vec<_> = swaps.iter().map(|a| a.view()).collect();
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t0 = Instant::now();
        let iv = delta_intervals(base.view(), &views, 0.95, 2000);
        best = best.min(t0.elapsed().as_secs_f64());
        assert_eq!(iv.len(), 100);
    }
    println!("\nbootstrap: 100 swaps x 500 images x 2000 resamples (4 classes): {best:.3}s (best of 3)");
}

fn main() {
    if let Ok(arch) = std::env::var("REUSE_AUDIT_BENCH_LIMITS") {
        return measure_limits(&arch);
    }
    if let Some((device, data)) =
        std::env::var("REUSE_AUDIT_BENCH_REALSIZE").ok().as_deref().and_then(|v| v.split_once(','))
    {
        return realsize::measure(device, std::path::Path::new(data));
    }
    let bin = env!("CARGO_BIN_EXE_reuse-audit");
    let py = Command::new("bash")
        .arg(root().join("scripts/pyenv.sh"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let tmp = std::env::temp_dir().join(format!("reuse-audit-bench-{}", std::process::id()));
    let mut lines = Vec::new();
    let wanted = std::env::var("REUSE_AUDIT_BENCH_PAIRS").ok();
    let picked = |arch: &str| wanted.as_deref().is_none_or(|w| w.split(',').any(|p| p.trim() == arch));
    for (arch, ..) in PAIRS.into_iter().filter(|p| picked(p.0)) {
        let (t, s, data_path) = pair_paths(arch);
        if data_path == root().join(HELDOUT) && !heldout_ready(py.as_deref()) {
            println!("\n{arch}: skipped (scripts/pyenv.sh could not make the environment that makes the held-out set)");
            continue;
        }
        let only = incremental_only(arch);
        // `incremental+labels`: the incremental strategy with the swaps' labels computed in
        // their sessions (ArgMax + Cast appended; the default on CUDA), the A/B of issue 15.
        let audit = |strategy: &str, extra: &[&str], out: &std::path::Path| {
            let mut c = Command::new(bin);
            c.stdout(std::process::Stdio::null()).arg("audit").arg(&t).arg(&s).arg("--data").arg(&data_path);
            let labels = strategy == "incremental+labels";
            c.env("REUSE_AUDIT_REDUCE_ON_DEVICE", if labels { "1" } else { "0" });
            let strategy = if labels { "incremental" } else { strategy };
            c.args(["-q", "--format", "json", "--strategy", strategy]).args(extra).arg("--out").arg(out);
            c
        };
        // Everything takes turns, round after round: the plain forward pass (the ideal's
        // yardstick), each strategy and the peer, so a slow spell of the machine (shared
        // CPUs, throttling) hits them alike; each reports its median.
        let all = ["naive", "shared", "incremental", "incremental+labels"];
        let strategies: &[&str] = if only { &all[2..3] } else { &all };
        let mut limit_samples: Vec<Limits> = Vec::new();
        let mut samples: Vec<Vec<(f64, f64)>> = vec![Vec::new(); strategies.len()];
        let mut peer_samples: Vec<(f64, f64)> = Vec::new();
        let peer_out = tmp.join(format!("{arch}-peer.json"));
        std::fs::create_dir_all(&tmp).expect("tmp");
        for _ in 0..runs() {
            limit_samples.push(limits(arch));
            for (k, strategy) in strategies.iter().enumerate() {
                samples[k].push(measure_once(&mut audit(strategy, &[], &tmp.join(format!("{arch}-{strategy}")))));
            }
            if let Some(py) = py.as_ref().filter(|_| !only) {
                peer_samples.push(measure_once(
                    Command::new(py)
                        .arg(root().join("benches/python/peer_audit.py"))
                        .arg(&t)
                        .arg(&s)
                        .arg(&data_path)
                        .arg(&peer_out),
                ));
            }
        }
        let (_, best_batch, t_fwd_exposed, swaps, images, ideal, equivalents) = limit_samples[0];
        // The fastest round's forward pass: the strictest yardstick (a round slowed by the
        // machine would otherwise raise the ideal time and flatter every audit).
        let t_fwd = limit_samples.iter().map(|l| l.0).fold(f64::INFINITY, f64::min);
        let ideal_time = t_fwd * equivalents;
        println!(
            "\n{arch}: {} swaps, {} images; forward pass {:.3}s (fastest of {} rounds, best batch {best_batch}), {:.3}s with every parameter exposed as input ({:.2}x slower); {:.1} forward-pass equivalents, ideal_speedup {:.2}x, ideal_time {:.2}s",
            swaps,
            images,
            t_fwd,
            runs(),
            t_fwd_exposed,
            t_fwd_exposed / limit_samples[0].0,
            equivalents,
            ideal,
            ideal_time
        );
        println!(
            "{:<18} {:>8} {:>10} {:>12} {:>10} {:>10}",
            "strategy", "wall s", "vs naive", "fwd-eq/s", "peak MiB", "efficiency"
        );
        // Not measured on an incremental-only pair: the speed-up column stays empty.
        let mut naive_time = f64::NAN;
        let mut incremental_time = f64::NAN;
        for (k, strategy) in strategies.iter().enumerate() {
            let (wall, rss) = median(&samples[k]);
            if *strategy == "naive" {
                naive_time = wall;
            }
            if *strategy == "incremental" {
                incremental_time = wall;
            }
            let vs_naive = if only { "-".to_string() } else { format!("{:.2}x", naive_time / wall) };
            let vs_naive_csv = if only { String::new() } else { format!("{:.3}", naive_time / wall) };
            println!(
                "{strategy:<18} {wall:>8.2} {vs_naive:>10} {:>12.1} {rss:>10.0} {:>10.2}",
                equivalents / wall,
                ideal_time / wall
            );
            lines.push(format!(
                "{arch},{strategy},{wall:.3},{vs_naive_csv},{ideal:.3},{:.3},{rss:.0}",
                ideal_time / wall
            ));
        }
        if only {
            continue;
        }
        if py.is_some() {
            let (wall, rss) = median(&peer_samples);
            let peer: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&peer_out).expect("peer output")).expect("peer JSON");
            let report = tmp.join(format!("{arch}-incremental")).join("report.json");
            let ours: serde_json::Value =
                serde_json::from_slice(&std::fs::read(report).expect("report")).expect("JSON");
            let max_diff = max_dice_diff(&ours, &peer);
            println!(
                "python peer        {wall:>8.2} {:>10} {:>12.1} {rss:>10.0} {:>10.2}   (incremental is {:.2}x faster; max |Dice diff| {max_diff:.1e})",
                "",
                equivalents / wall,
                ideal_time / wall,
                wall / incremental_time
            );
            lines.push(format!(
                "{arch},python-peer,{wall:.3},{:.3},{ideal:.3},{:.3},{rss:.0}",
                naive_time / wall,
                ideal_time / wall
            ));
        } else {
            println!("python peer: skipped (scripts/pyenv.sh could not make its environment)");
        }
        memory(arch, &audit, &tmp, images, median(&samples[2]).1);
    }
    if picked("bootstrap") {
        bootstrap_time();
    }
    if picked("counts") {
        counts_time();
    }
    // Never by default: hours of CPU (see benches/realsize/mod.rs).
    if wanted.as_deref().is_some_and(|w| w.split(',').any(|p| p.trim() == "realsize")) {
        std::fs::create_dir_all(&tmp).expect("tmp");
        realsize::run(bin, &tmp);
    }
    match &py {
        Some(py) => {
            std::fs::create_dir_all(&tmp).expect("tmp");
            adaptive(bin, py, &tmp, &picked);
        }
        None => {
            println!("adaptive: skipped (scripts/pyenv.sh could not make the environment that makes the held-out set)")
        }
    }
    // REUSE_AUDIT_BENCH_KEEP=1 keeps the audits' reports (scripts/gpu/realsize.sh copies them).
    if std::env::var("REUSE_AUDIT_BENCH_KEEP").is_ok_and(|v| v == "1") {
        println!("reports kept in {}", tmp.display());
    } else {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    println!("\narch,strategy,wall_s,speedup_vs_naive,ideal_speedup,efficiency,peak_mib");
    for l in lines {
        println!("{l}");
    }
}

/// Makes the `reuse-audit audit` command of one pair: strategy, extra flags, output folder.
type Auditor<'a> = dyn Fn(&str, &[&str], &std::path::Path) -> Command + 'a;

/// Peak RSS of the incremental audit against its cache: with `--cache-mb 0` one batch is
/// cached at a time, so peak(default) - peak(0) is what the cache costs; it must stay within
/// the cache the audit reports using (and that within the budget).
fn memory(arch: &str, audit: &Auditor, tmp: &std::path::Path, images: usize, peak: f64) {
    let out = tmp.join(format!("{arch}-memory"));
    let (_, peak0) = measure_once(&mut audit("incremental", &["--cache-mb", "0"], &out));
    let (_, peak64) = measure_once(&mut audit("incremental", &["--cache-mb", "64"], &out));
    // The audit states its cache per image on stderr (without -q).
    let c = audit("incremental", &[], &out);
    let args: Vec<_> = c.get_args().filter(|a| *a != "-q").map(|a| a.to_os_string()).collect();
    let text = Command::new(c.get_program()).args(args).output().expect("audit");
    let stderr = String::from_utf8_lossy(&text.stderr);
    let per_image: f64 = stderr
        .split(" MiB of cached activations per image")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    let cache = per_image * images as f64;
    println!(
        "memory: peak {peak:.0} MiB at --cache-mb 1024 (cache {cache:.0} MiB = {per_image:.1} MiB/image x {images}), {peak64:.0} MiB at --cache-mb 64, {peak0:.0} MiB at --cache-mb 0 (one batch); cache cost {:.0} MiB <= cache {cache:.0} MiB: {}",
        peak - peak0,
        if peak - peak0 <= cache + 8.0 { "yes" } else { "NO" }
    );
}

/// Largest |Dice difference| between our report and the peer's, baseline included.
fn max_dice_diff(ours: &serde_json::Value, peer: &serde_json::Value) -> f64 {
    let mut d =
        (ours["baseline"]["mean"].as_f64().unwrap_or(f64::NAN) - peer["baseline"].as_f64().unwrap_or(f64::NAN)).abs();
    for row in ours["rows"].as_array().into_iter().flatten() {
        if let (Some(a), Some(b)) =
            (row["swapped_dice"].as_f64(), peer["swaps"][row["target_initializer"].as_str().unwrap_or("")].as_f64())
        {
            d = d.max((a - b).abs());
        }
    }
    d
}
