//! `merge SHARD_DIR... --out DIR`: join the results of `audit --shard K/N` runs. The shard
//! journals are checked to belong together and be complete (`journal::merge`), then the
//! audit recorded in them runs again with every result taken from them: nothing is
//! computed, the models and data are loaded (their hashes must be the shards') and the
//! report, gates and exit code are those of one unsharded run.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Parser;

use super::journaled::SHARD_FILE;
use crate::cli::{Cli, Command};
use crate::config::Settings;
use reuse_audit::audit::SwapResult;
use reuse_audit::error::{bad_file, UserError};
use reuse_audit::journal::{self, merge::Part};
use reuse_audit::metrics::dice::Dice;
use reuse_audit::pipeline::{JournalPlan, JournalSpec};

/// Run `merge`.
pub fn run(shards: &[PathBuf], out: &Path, quiet: bool) -> Result<()> {
    reuse_audit::report::write::check_out(out)?;
    let mut parts = Vec::with_capacity(shards.len());
    for origin in shards {
        let file = if origin.is_dir() { origin.join(SHARD_FILE) } else { origin.clone() };
        reuse_audit::report::write::check_out_spares(out, "--out", &file, "the shard result")?;
        let loaded = journal::read::<Dice, SwapResult>(&file)?.ok_or_else(|| UserError::Unreadable {
            path: file.clone(),
            reason: format!("no shard result here (an `audit --shard K/N --out DIR` run writes DIR/{SHARD_FILE})"),
        })?;
        if loaded.known.timings.is_empty() && !quiet {
            eprintln!(
                "note: {} recorded no timing (killed after its last swap?): the merged timing leaves it out",
                file.display()
            );
        }
        parts.push(Part { origin: origin.clone(), loaded });
    }
    let (header, known) = journal::merge::join(parts)?;
    let first = shards.first().map(|p| p.display().to_string()).unwrap_or_default();
    let mut argv: Vec<String> = vec!["reuse-audit".into(), "audit".into()];
    argv.extend(header.args.iter().cloned());
    argv.push("--out".into());
    argv.push(out.display().to_string());
    if quiet {
        argv.push("--quiet".into());
    }
    let cli = Cli::try_parse_from(&argv).map_err(|e| {
        bad_file(
            &first,
            format!("the command line recorded in the shards does not parse: {}", e.render().to_string().trim()),
        )
    })?;
    let Command::Audit { target, source, common, run, gates, plan } = cli.command else {
        return Err(bad_file(&first, "the recorded command line is not an audit"));
    };
    let settings = Settings::from_args(&common)?;
    let args = header.args.clone();
    let spec = JournalSpec { plan: JournalPlan::Merged(Box::new((header, known))), shard: None, args };
    super::audit::run_journaled(&target, &source, &settings, &run, &gates, plan.as_deref(), Some(spec))
}
