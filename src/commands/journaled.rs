//! Where `audit`'s journal lives and what becomes of it. The journal is `OUT.journal`,
//! beside the `--out` folder, not in it: the folder is published whole by one rename at the
//! end (`report::write`), and the journal must outlive a kill before that. After the report
//! is published the journal is removed; a shard instead publishes it as `OUT/shard.journal`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cli::RunArgs;
use crate::config::Settings;
use reuse_audit::audit::SwapResult;
use reuse_audit::error::{bad_file, UserError};
use reuse_audit::journal::scheduler::ShardArg;
use reuse_audit::journal::{self, Shard};
use reuse_audit::metrics::dice::Dice;
use reuse_audit::pipeline::{JournalPlan, JournalSpec};
use reuse_audit::report;

/// The file a shard result is published as, inside its `--out` folder.
pub const SHARD_FILE: &str = "shard.journal";

/// The journal of an `audit` with these flags: none without `--out`.
pub fn spec(s: &Settings, a: &RunArgs) -> Result<Option<JournalSpec>> {
    let Some(out) = &s.out else {
        let needs_out = |flag: &'static str, why: &str| -> anyhow::Error {
            UserError::BadFlag { flag, reason: format!("needs --out ({why})") }.into()
        };
        if a.shard.is_some() {
            return Err(needs_out("--shard", "the shard's result is written as OUT/shard.journal"));
        }
        if a.resume {
            return Err(needs_out("--resume", "the journal lives beside the report folder"));
        }
        return Ok(None);
    };
    let shard = a.shard.map(|arg| shard_of(arg, s.options.quiet)).transpose()?;
    let path = journal_path(out)?;
    let plan = if a.resume { JournalPlan::Resume(path) } else { JournalPlan::Fresh(path) };
    Ok(Some(JournalSpec { plan, shard, args: recorded_args(std::env::args().skip(2)) }))
}

/// The shard `--shard` names, K read from the scheduler's variable for `auto/N` (said on
/// stderr, so a task's log shows which part it computed).
fn shard_of(arg: ShardArg, quiet: bool) -> Result<Shard> {
    let resolved = arg
        .resolve(|name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()))
        .map_err(|reason| UserError::BadFlag { flag: "--shard", reason })?;
    if let (Some(from), false) = (&resolved.from, quiet) {
        eprintln!("shard {} ({from})", resolved.shard);
    }
    Ok(resolved.shard)
}

/// `OUT.journal`, beside the `--out` folder.
pub fn journal_path(out: &Path) -> Result<PathBuf> {
    let name = out.file_name().and_then(|n| n.to_str()).ok_or_else(|| UserError::BadFlag {
        flag: "--out",
        reason: format!("{}: has no UTF-8 folder name", out.display()),
    })?;
    Ok(out.with_file_name(format!("{name}.journal")))
}

/// The `audit` arguments without those that only say where and how this run goes.
pub fn recorded_args(args: impl Iterator<Item = String>) -> Vec<String> {
    const WITH_VALUE: [&str; 4] = ["--out", "--shard", "--threads", "--cache-mb"];
    const ALONE: [&str; 3] = ["--resume", "--quiet", "-q"];
    let mut out = Vec::new();
    let mut args = args.peekable();
    while let Some(a) = args.next() {
        if a == "--" {
            out.push(a);
            out.extend(args.by_ref());
            break;
        }
        if ALONE.contains(&a.as_str()) || WITH_VALUE.iter().any(|f| a.starts_with(&format!("{f}="))) {
            continue;
        }
        if WITH_VALUE.contains(&a.as_str()) {
            args.next();
            continue;
        }
        out.push(a);
    }
    out
}

/// Remove a journal whose audit is done.
pub fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing the finished journal {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Publish a finished shard's journal as `OUT/shard.journal` (the whole folder at once, as
/// reports are), then remove the working journal.
pub fn publish_shard(path: &Path, out: &Path, shard: Shard, quiet: bool) -> Result<()> {
    reuse_audit::input::check_regular(path)?;
    let bytes = std::fs::read(path).with_context(|| format!("reading the journal {}", path.display()))?;
    let loaded = journal::file::parse::<Dice, SwapResult>(&bytes, path)?
        .ok_or_else(|| bad_file(path, "the journal has no header"))?;
    let pairs = loaded.header.shard.as_ref().map_or(0, |p| p.pairs.len());
    let complete = loaded.torn.is_none()
        && loaded.known.baseline.is_some()
        && loaded.header.shard.as_ref().is_some_and(|p| p.pairs.iter().all(|i| loaded.known.swaps.contains_key(i)));
    anyhow::ensure!(complete, "shard {shard}: the journal {} is not complete after the audit", path.display());
    let written = report::write::write_all(out, &[(SHARD_FILE.to_string(), bytes)])?;
    remove(path)?;
    if !quiet {
        for w in written {
            println!("shard {shard}: {pairs} swap(s); wrote {}", w.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn run_only_flags_are_not_recorded() {
        let args = strings(&[
            "t.onnx",
            "s.onnx",
            "--data",
            "d.npz",
            "--out",
            "o",
            "--shard=2/3",
            "--threads",
            "4",
            "-q",
            "--resume",
            "--kinds",
            "W",
            "--cache-mb=64",
            "--quiet",
            "--format",
            "csv",
        ]);
        assert_eq!(
            recorded_args(args.into_iter()),
            strings(&["t.onnx", "s.onnx", "--data", "d.npz", "--kinds", "W", "--format", "csv"])
        );
        // After `--`, every argument is a value.
        assert_eq!(recorded_args(strings(&["--", "--out"]).into_iter()), strings(&["--", "--out"]));
    }

    #[test]
    fn the_journal_sits_beside_the_folder() {
        assert_eq!(journal_path(Path::new("runs/unet")).unwrap(), PathBuf::from("runs/unet.journal"));
        assert_eq!(journal_path(Path::new("runs/unet/")).unwrap(), PathBuf::from("runs/unet.journal"));
        assert_eq!(journal_path(Path::new("r")).unwrap(), PathBuf::from("r.journal"));
        assert!(journal_path(Path::new("/")).is_err());
    }
}
