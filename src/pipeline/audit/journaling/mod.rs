//! The audit's journal (see [`crate::journal`]): opening it fresh, resumed or from merged
//! shards; its header (`header`: hashes of what is evaluated, the resolved settings, every
//! swap, a shard's part); the sink that appends each finished result (`sink`).

mod header;
mod sink;

use std::path::PathBuf;

use anyhow::Result;

pub use header::{data_sha256, model_sha256, swap_ids};
pub use sink::{Guard, JournalSink};

use crate::audit::{Known, SwapResult};
use crate::error::{bad_file, UserError};
use crate::journal::{self, Header, Scope, Shard, ShardPart, Writer};
use crate::metrics::dice::Dice;

/// Where an audit's results are journaled.
#[derive(Debug, Clone)]
pub enum JournalPlan {
    /// A new journal at this path (refused when one is there: resume it or delete it).
    Fresh(PathBuf),
    /// Continue the journal at this path (a fresh start when there is none).
    Resume(PathBuf),
    /// Every result from joined shard journals (`merge`): nothing computed, nothing written.
    Merged(Box<(Header, Known)>),
}

/// An audit's journal: where, which shard, and the command line to record.
#[derive(Debug, Clone)]
pub struct JournalSpec {
    /// Where results come from and go.
    pub plan: JournalPlan,
    /// Compute only this shard's swaps.
    pub shard: Option<Shard>,
    /// The command line to record (see [`Header::args`]).
    pub args: Vec<String>,
}

/// An opened journal.
pub struct Opened {
    /// Results known already.
    pub known: Known,
    /// Where new results go (none when merging).
    pub writer: Option<Writer>,
    /// The shard's pairs.
    pub only: Option<Vec<usize>>,
}

/// Open the journal `spec` names for an audit whose header is `now`.
pub fn open(spec: &JournalSpec, now: &Header, quiet: bool) -> Result<Opened> {
    let only = now.shard.as_ref().map(|s| s.pairs.clone());
    let scope = if now.shard.is_some() { Scope::Shards } else { Scope::Numbers };
    let note = |s: String| {
        if !quiet {
            eprintln!("{s}");
        }
    };
    match &spec.plan {
        JournalPlan::Merged(merged) => {
            let (was, known) = &**merged;
            let diff = was.differences(now, Scope::Shards);
            if !diff.is_empty() {
                return Err(UserError::Merge(format!(
                    "the shards were computed from other inputs than merge finds now (shards vs now: {})",
                    diff.join("; ")
                ))
                .into());
            }
            Ok(Opened { known: known.clone(), writer: None, only })
        }
        JournalPlan::Fresh(path) => match Writer::create(path, now)? {
            Some(w) => Ok(Opened { known: Known::default(), writer: Some(w), only }),
            None => {
                // Held by a running audit: say so rather than call it unfinished.
                drop(Writer::open_locked(path)?);
                let done = journal::read::<Dice, SwapResult>(path).ok().flatten().map(|l| l.known.swaps.len());
                Err(bad_file(
                    path,
                    format!(
                        "the journal of an unfinished audit ({}) is there: add --resume to continue it, or delete it to start over",
                        done.map_or("unreadable".to_string(), |n| format!("{n} swap(s) done"))
                    ),
                ))
            }
        },
        JournalPlan::Resume(path) => {
            let Some((file, bytes)) = Writer::open_locked(path)? else {
                note(format!("resume: no journal at {}: nothing to resume, the audit starts", path.display()));
                let w = Writer::create(path, now)?
                    .ok_or_else(|| bad_file(path, "appeared while this audit started; is another audit running?"))?;
                return Ok(Opened { known: Known::default(), writer: Some(w), only });
            };
            let Some(loaded) = journal::file::parse::<Dice, SwapResult>(&bytes, path)? else {
                note(format!("resume: the journal {} has no whole header: the audit starts over", path.display()));
                return Ok(Opened { known: Known::default(), writer: Some(Writer::start(file, path, now)?), only });
            };
            let mut diff = loaded.header.differences(now, scope);
            if loaded.header.shard != now.shard {
                let show =
                    |p: &Option<ShardPart>| p.as_ref().map_or("none".into(), |p| format!("{}/{}", p.index, p.count));
                diff.push(format!("shard: {} vs {}", show(&loaded.header.shard), show(&now.shard)));
            }
            if !diff.is_empty() {
                return Err(bad_file(
                    path,
                    format!(
                        "the journal is of another audit (journal vs now: {}); delete it to start over",
                        diff.join("; ")
                    ),
                ));
            }
            if let Some(t) = &loaded.torn {
                note(format!("resume: the journal's last line was cut short by the kill ('{t}…'): dropped"));
            }
            let total = now.shard.as_ref().map_or(now.swaps.len(), |s| s.pairs.len());
            let kept = loaded.known.swaps.len();
            let chunks = loaded.known.chunks.len();
            note(format!(
                "resume: {kept} of {total} swap(s) kept from {}{}{}; {} left to compute",
                path.display(),
                if loaded.known.baseline.is_some() { " (and the baseline)" } else { "" },
                if chunks > 0 { format!(", with {chunks} chunk(s) of counted images") } else { String::new() },
                total - kept
            ));
            let w = Writer::resume(file, path, loaded.intact)?;
            Ok(Opened { known: loaded.known, writer: Some(w), only })
        }
    }
}
