//! The subcommands: each builds a result with the library and prints or writes it.

mod audit;
mod demo;
mod inspect;
mod journaled;
mod matching;
mod matrix;
mod merge;
mod plan;
mod rmse;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::cli::Command;
use crate::config::Settings;
use reuse_audit::pair::MatchMode;
use reuse_audit::report::{self, Report};

/// Refuse an output folder (`flag`) that holds one of the command's inputs under a name the
/// tool writes there (see [`reuse_audit::report::write::check_out_spares`]): a model (and
/// its external data), the data, a labels or mapping file, given as (path, what it is).
fn spare_inputs(out: Option<&Path>, flag: &'static str, inputs: &[(&Path, &str)]) -> Result<()> {
    let Some(out) = out else { return Ok(()) };
    for (path, what) in inputs {
        reuse_audit::report::write::check_out_spares(out, flag, path, what)?;
        let external = PathBuf::from(format!("{}.data", path.display()));
        reuse_audit::report::write::check_out_spares(out, flag, &external, &format!("the external data of {what}"))?;
    }
    Ok(())
}

/// The files a pairing reads: a `--match` mapping file, if one is given.
fn mapping_file(mode: &MatchMode) -> Option<&Path> {
    match mode {
        MatchMode::File(p) => Some(p.as_path()),
        _ => None,
    }
}

/// Run one subcommand.
pub fn dispatch(cmd: Command) -> Result<()> {
    match cmd {
        Command::Inspect { model, json, flops, size } => inspect::run(&model, json, flops, size.as_deref()),
        Command::Match { target, source, match_mode, families, json } => matching::run(
            &target,
            &source,
            &MatchMode::parse(&match_mode),
            &crate::config::parse_families(&families)?,
            json,
        ),
        Command::Rmse { target, source, common } => rmse::run(&target, &source, &Settings::for_rmse(&common)?),
        Command::Audit { target, source, common, run, gates, plan } => {
            audit::run(&target, &source, &Settings::from_args(&common)?, &run, &gates, plan.as_deref())
        }
        Command::Plan { target, source, report, out, policy, check, json, quiet } => {
            plan::run(&plan::Args { target, source, report, out, policy, check, json, quiet })
        }
        Command::Matrix { models, match_mode, out, quiet } => {
            matrix::run(&models, &MatchMode::parse(&match_mode), out.as_deref(), quiet)
        }
        Command::Merge { shards, out, quiet } => merge::run(&shards, &out, quiet),
        Command::Demo { models, out, strategy, threads, quiet } => demo::run(&models, &out, strategy, threads, quiet),
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
            if s.options.quiet && !r.warnings.is_empty() {
                writeln!(stdout, "{} warning(s) not shown (--quiet); the report keeps them", r.warnings.len())?;
            }
            let figures = written.iter().filter(|w| w.parent().is_some_and(|p| p.ends_with("figures"))).count();
            for w in written.iter().filter(|w| !w.parent().is_some_and(|p| p.ends_with("figures"))) {
                writeln!(stdout, "wrote {}", w.display())?;
            }
            if figures > 0 {
                writeln!(stdout, "wrote {figures} figures to {}", dir.join("figures").display())?;
            }
        }
    } else if !s.json {
        // The warnings went to stderr already (pipeline::warn): not again on stdout.
        stdout.write_all(report::table::render_after_warnings(r, s.options.quiet).as_bytes())?;
    }
    if s.json {
        stdout.write_all(&report::json(r)?)?;
    }
    Ok(())
}
