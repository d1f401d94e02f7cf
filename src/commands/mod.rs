//! The subcommands: each builds a result with the library and prints or writes it.

mod audit;
mod demo;
mod inspect;
mod matching;
mod matrix;
mod rmse;

use std::io::Write;
use std::path::Path;

use anyhow::Result;

use crate::cli::Command;
use crate::config::Settings;
use crate::model::layers::{scan, LayerScan, FOLDED_BN_HINT};
use crate::model::{Family, Model};
use crate::pair::{pair, MatchMode, Pairing};
use crate::report::{self, ModelInfo, Report};

pub use audit::{audit_report, AuditRequest};

/// Run one subcommand.
pub fn dispatch(cmd: Command) -> Result<()> {
    match cmd {
        Command::Inspect { model, json, flops, size } => inspect::run(&model, json, flops, size.as_deref()),
        Command::Match { target, source, match_mode, json } => {
            matching::run(&target, &source, &MatchMode::parse(&match_mode), json)
        }
        Command::Rmse { target, source, common } => rmse::run(&target, &source, &Settings::from_args(&common)?),
        Command::Audit { target, source, common, run, gates } => {
            audit::run(&target, &source, &Settings::from_args(&common)?, &run, &gates)
        }
        Command::Matrix { models, match_mode, out, quiet } => {
            matrix::run(&models, &MatchMode::parse(&match_mode), out.as_deref(), quiet)
        }
        Command::Demo { models, out, strategy, threads, quiet } => demo::run(&models, &out, strategy, threads, quiet),
    }
}

/// Two loaded models, their layers and how they pair.
pub struct PairContext {
    /// Target model.
    pub target: Model,
    /// Source model.
    pub source: Model,
    /// Target layers.
    pub target_layers: LayerScan,
    /// Source layers.
    pub source_layers: LayerScan,
    /// The pairing.
    pub pairing: Pairing,
    /// Warnings to show and record.
    pub warnings: Vec<String>,
}

/// Load both models and pair them.
pub fn load_pair(target: &Path, source: &Path, mode: &MatchMode) -> Result<PairContext> {
    let t = Model::load(target)?;
    let s = Model::load(source)?;
    let (ts, ss) = (scan(&t), scan(&s));
    let mut warnings = Vec::new();
    for (m, sc) in [(&t, &ts), (&s, &ss)] {
        if sc.bn_probably_folded() {
            warnings.push(format!("{}: {FOLDED_BN_HINT}", m.display_name()));
        }
        if let Some(first) = sc.skipped.first() {
            warnings.push(format!(
                "{}: {} Conv/BN parameter input(s) are computed in the graph, not stored (e.g. a zero bias made for a bias-free conv); they are not audited. First: {first}",
                m.display_name(),
                sc.skipped.len()
            ));
        }
    }
    let pairing = pair(&ts, &ss, mode)?;
    if matches!(mode, MatchMode::Auto) && pairing.method == "position" {
        warnings.push("initializer names differ between the models: paired by family, position and role (--match position); check `reuse-audit match`".into());
    }
    Ok(PairContext { target: t, source: s, target_layers: ts, source_layers: ss, pairing, warnings })
}

/// Model summary for a report.
pub fn model_info(m: &Model, sc: &LayerScan) -> ModelInfo {
    ModelInfo {
        path: m.display_name(),
        sha256: m.sha256.clone(),
        conv_layers: sc.of(Family::Conv).count(),
        bn_layers: sc.of(Family::Bn).count(),
        bn_probably_folded: sc.bn_probably_folded(),
    }
}

/// Print warnings on stderr.
pub fn warn(warnings: &[String], quiet: bool) {
    if !quiet {
        for w in warnings {
            eprintln!("warning: {w}");
        }
    }
}

/// Print and/or write a report as the settings ask.
pub fn emit(r: &Report, s: &Settings) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    if let Some(dir) = &s.out {
        let files = report::files(r, &s.formats)?;
        let written = report::write::write_all(dir, &files)?;
        if !s.json {
            stdout.write_all(report::table::verdict_lines(r).as_bytes())?;
            let figures = written.iter().filter(|w| w.parent().is_some_and(|p| p.ends_with("figures"))).count();
            for w in written.iter().filter(|w| !w.parent().is_some_and(|p| p.ends_with("figures"))) {
                writeln!(stdout, "wrote {}", w.display())?;
            }
            if figures > 0 {
                writeln!(stdout, "wrote {figures} figures to {}", dir.join("figures").display())?;
            }
        }
    } else if !s.json {
        stdout.write_all(report::table::render(r).as_bytes())?;
    }
    if s.json {
        stdout.write_all(&report::json(r)?)?;
    }
    Ok(())
}
