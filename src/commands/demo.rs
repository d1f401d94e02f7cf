//! `demo`: audit the bundled acdc UNet and PSPNet (seg target, ae source) and write reports/.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::audit::{audit_report, AuditRequest};
use super::emit;
use crate::audit::Strategy;
use crate::config::Settings;
use crate::data::{Fit, Normalize};
use crate::engine::{Device, LazyEngine};
use crate::error::UserError;
use crate::model::Kind;
use crate::pair::MatchMode;
use crate::report::Format;

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
            match_mode: MatchMode::Auto,
            kinds: Kind::ALL.to_vec(),
            tolerance: 0.02,
            rn_threshold: 0.5,
            out: Some(out.join(format!("{arch}-acdc"))),
            formats: vec![Format::Csv, Format::Json, Format::Md, Format::Html],
            json: false,
            quiet,
        };
        writeln!(
            stdout,
            "== {arch}: target {} <- source {} on {}",
            target.display(),
            source.display(),
            data.display()
        )?;
        let started = std::time::Instant::now();
        let req = AuditRequest {
            target: &target,
            source: &source,
            settings: &settings,
            data: data.clone(),
            labels_file: None,
            label_free: false,
            normalize: Normalize::Zscore,
            fit: Fit::None,
            batch: 16,
            strategy,
            cache_mb: 1024,
            dynamic_batch: false,
        };
        let report = audit_report(&req, &engine)?;
        if let Some(b) = &report.baseline {
            writeln!(
                stdout,
                "baseline Dice: mean {:.4}, foreground {:.4}; {} swaps in {:.1}s",
                b.mean,
                b.mean_fg,
                report.rows.len(),
                started.elapsed().as_secs_f64()
            )?;
        }
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
        crate::report::write::write_all(&dir, &m.files()?)?;
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
