//! `demo`: audit the bundled acdc UNet and PSPNet (seg target, ae source) and write reports/.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::emit;
use crate::config::Settings;
use reuse_audit::audit::Strategy;
use reuse_audit::engine::{Device, LazyEngine};
use reuse_audit::error::UserError;
use reuse_audit::pair::MatchMode;
use reuse_audit::pipeline::{Audit, Options};
use reuse_audit::report::Format;

/// The networks the demo audits.
pub const DEMO_ARCHS: [&str; 2] = ["unet", "pspnet"];

/// Run `demo`.
pub fn run(models: &Path, out: &Path, strategy: Strategy, threads: usize, quiet: bool) -> Result<()> {
    let data = models.join("data").join("acdc-val.npz");
    if !data.is_file() {
        return Err(UserError::Unreadable {
            path: data,
            reason: "bundled data not found (run from the repository root or pass --models)".into(),
        }
        .into());
    }
    let engine = LazyEngine::new(Device::Cpu, threads, quiet);
    let mut stdout = std::io::stdout().lock();
    for arch in DEMO_ARCHS {
        let target = models.join(format!("{arch}-acdc-seg.onnx"));
        let source = models.join(format!("{arch}-acdc-ae.onnx"));
        let settings = Settings {
            options: Options { quiet, ..Options::default() },
            out: Some(out.join(format!("{arch}-acdc"))),
            formats: vec![Format::Csv, Format::Json, Format::Md, Format::Html],
            json: false,
        };
        writeln!(
            stdout,
            "== {arch}: target {} <- source {} on {}",
            target.display(),
            source.display(),
            data.display()
        )?;
        let started = std::time::Instant::now();
        let audit = Audit::new(&target, &source).data(&data).options(settings.options.clone()).strategy(strategy);
        let mut report = audit.run_with(&engine)?;
        // The bundled reports are examples kept in git: the same bytes on every run.
        report.timing = None;
        writeln!(stdout, "{} swaps in {:.1}s", report.rows.len(), started.elapsed().as_secs_f64())?;
        emit(&report, &settings)?;
        writeln!(stdout)?;
    }
    // RMSE matrices of every bundled model of each architecture (paper Figs. 11-12).
    for arch in DEMO_ARCHS {
        let models: Vec<PathBuf> = ["acdc", "t1", "rvsc"]
            .iter()
            .flat_map(|d| ["seg", "ae"].map(|t| models.join(format!("{arch}-{d}-{t}.onnx"))))
            .collect();
        let m = super::matrix::compute(&models, &MatchMode::Auto, quiet)?;
        let dir = out.join("matrix").join(arch);
        reuse_audit::report::write::write_all(&dir, &m.files()?)?;
        let reference = format!("{arch}-acdc-seg");
        let i = m.names.iter().position(|n| *n == reference).unwrap_or(0);
        let ranked: Vec<String> = m.closest(i).iter().map(|(j, v)| format!("{} {v:.3}", m.names[*j])).collect();
        writeln!(
            stdout,
            "== {arch} RMSE matrix -> {}: closest to {reference} (mean nRMSE of conv W): {}",
            dir.display(),
            ranked.join(", ")
        )?;
    }
    Ok(())
}
