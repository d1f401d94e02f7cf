//! The swap journal: while an audit runs, every finished result is appended to a file, one
//! checksummed line each, so a killed audit can be resumed (`--resume`) and an audit can be
//! split over machines (`--shard K/N`) and joined again (`reuse-audit merge`).
//!
//! The file is text, one line per entry: `<sha256 of the JSON, hex> <JSON>\n`. Line 1 is the
//! [`Header`]: the format version, what the numbers depend on (hashes of both models as
//! evaluated and of the preprocessed data, the resolved settings), the list of swaps of the
//! whole audit and, for a shard, which of them it computes. The other lines are
//! [`Record`]s: the baseline, then one per finished swap (and, in a shard's journal, the
//! timing of each run that finished it), and, when the incremental strategy cuts the set into
//! chunks, the per-image counts of each chunk that does not finish its round. A record holds the audit's whole
//! result value (any serde type), so fields added to it later are journaled as they are.
//! Each line is written with one `write` and synced before the audit goes on: a kill leaves
//! at most a torn last line, which reading drops; a bad line anywhere else is corruption
//! and is refused. See `file` for reading and writing, `shard` for the split, `merge` for
//! joining shards.

pub mod file;
pub mod merge;
pub mod scheduler;
pub mod shard;

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

pub use file::{read, Loaded, Writer};
pub use shard::Shard;

/// The `journal` field of every header.
pub const FORMAT: &str = "reuse-audit swap journal";
/// The version of the format this tool reads and writes.
pub const VERSION: u32 = 1;

/// The first line: what the journaled numbers are numbers of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT`].
    pub journal: String,
    /// Format version ([`VERSION`]).
    pub version: u32,
    /// The tool's version (results of another version are not mixed in).
    pub tool: String,
    /// Hashes of what was evaluated.
    pub inputs: Inputs,
    /// Every resolved setting the numbers depend on, by flag name.
    pub settings: BTreeMap<String, String>,
    /// Every swap of the whole audit (all shards), in pair order.
    pub swaps: Vec<SwapId>,
    /// For a shard: which part of `swaps` it computes.
    pub shard: Option<ShardPart>,
    /// The `audit` command line without the flags that only say where and how a run goes
    /// (`--out`, `--shard`, `--resume`, `--threads`, `--cache-mb`, `--quiet`): what
    /// `merge` runs again, with the results taken from the shards.
    pub args: Vec<String>,
}

/// sha256 of the models and data as evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inputs {
    /// The target: its graph with external data read in, as ONNX Runtime ran it.
    pub target: Fingerprint,
    /// The source, the same way.
    pub source: Fingerprint,
    /// The validation set after preprocessing (images as fed, labels).
    pub data: Fingerprint,
}

/// A named input and the sha256 of its content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// The path given (for messages; not compared).
    pub path: String,
    /// sha256 (hex) of what was evaluated.
    pub sha256: String,
}

/// One swap: its index among the pairing's parameter pairs and a readable key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwapId {
    /// Index into the pairing's pairs.
    pub pair: usize,
    /// `family layer kind target_initializer <- source_initializer`, e.g.
    /// `conv 3 W enc.1.weight <- enc.1.weight`.
    pub key: String,
}

/// The swaps one shard computes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardPart {
    /// 1-based shard number.
    pub index: usize,
    /// Shards in all.
    pub count: usize,
    /// The pairs (indices into the pairing) it computes.
    pub pairs: Vec<usize>,
}

/// A line after the header: the baseline or one finished swap. `B` and `S` are the audit's
/// result types; whatever they serialize is kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Record<B, S> {
    /// The unswapped target's result.
    Baseline(BaselineRecord<B>),
    /// One finished swap.
    Swap(SwapRecord<S>),
    /// How long a run took (written by a shard that computed something, after its last
    /// swap: `merge` adds them up).
    Timing(crate::report::timing::Timing),
    /// The per-image counts of a chunk of images that is not the last of its round (the
    /// incremental strategy with the set cut into chunks by `--cache-mb`): swaps are final,
    /// and journaled as such, only with the round's last chunk, so without these a kill
    /// lost every earlier chunk's work.
    Chunk(ChunkRecord),
}

/// One chunk's per-image Dice counts (`[images, classes, 3]`, row-major): the baseline's and
/// those of every swap open in it. A resumed audit whose chunk has the same images takes
/// them instead of running the chunk; they are whole numbers, so its results are the same bits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRecord {
    /// Its first image.
    pub first: usize,
    /// Its images.
    pub images: usize,
    /// Classes counted.
    pub classes: usize,
    /// The baseline's counts.
    pub baseline: Vec<u32>,
    /// `(pair, counts)` of each swap open in the chunk, in pair order.
    pub swaps: Vec<(usize, Vec<u32>)>,
}

impl ChunkRecord {
    /// Values each counts array holds.
    pub fn values(&self) -> usize {
        self.images * self.classes * 3
    }
}

/// The baseline's line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaselineRecord<B> {
    /// The strategy that ran (`incremental`, or `shared` where incremental did not apply).
    pub strategy: String,
    /// Classes scored.
    pub classes: usize,
    /// The result.
    pub result: B,
}

/// A swap's line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SwapRecord<S> {
    /// Index into the pairing's pairs.
    pub pair: usize,
    /// The swap's key, as in the header.
    pub key: String,
    /// The result.
    pub result: S,
}

/// What a journal holds: the baseline (once written) and the finished swaps by pair.
#[derive(Debug, Clone)]
pub struct Known<B, S> {
    /// The baseline's line, if written.
    pub baseline: Option<BaselineRecord<B>>,
    /// Finished swaps by pair index.
    pub swaps: HashMap<usize, S>,
    /// The timings of the runs that wrote it (a shard's; joined shards: all of them).
    pub timings: Vec<crate::report::timing::Timing>,
    /// Chunks of images counted before the last chunk of their round (see [`Record::Chunk`]).
    pub chunks: Vec<ChunkRecord>,
}

impl<B, S> Known<B, S> {
    /// The chunk of `images` images from `first` counted for every pair of `open`, if any.
    pub fn chunk(&self, first: usize, images: usize, open: &[usize]) -> Option<&ChunkRecord> {
        self.chunks.iter().rev().find(|c| {
            c.first == first && c.images == images && open.iter().all(|p| c.swaps.iter().any(|(q, _)| q == p))
        })
    }
}

impl<B, S> Default for Known<B, S> {
    fn default() -> Self {
        Known { baseline: None, swaps: HashMap::new(), timings: Vec::new(), chunks: Vec::new() }
    }
}

/// Which fields two headers must share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Resuming: the numbers' inputs (a new run may change report-only flags).
    Numbers,
    /// Merging shards: the numbers' inputs and the command line, and the shard count.
    Shards,
}

impl Header {
    /// Readable differences between `self` (`was`, e.g. the journal's) and `now`, empty when
    /// they agree on everything `scope` covers.
    pub fn differences(&self, now: &Header, scope: Scope) -> Vec<String> {
        let mut out = Vec::new();
        let short = |h: &str| h.chars().take(12).collect::<String>();
        if self.journal != now.journal || self.version != now.version {
            out.push(format!("journal format: {} v{} vs {} v{}", self.journal, self.version, now.journal, now.version));
        }
        if self.tool != now.tool {
            out.push(format!("tool version: {} vs {}", self.tool, now.tool));
        }
        let inputs = [
            ("target model", &self.inputs.target, &now.inputs.target),
            ("source model", &self.inputs.source, &now.inputs.source),
            ("validation data (as preprocessed)", &self.inputs.data, &now.inputs.data),
        ];
        for (what, a, b) in inputs {
            if a.sha256 != b.sha256 {
                out.push(format!(
                    "{what}: {} (sha256 {}…) vs {} ({}…)",
                    a.path,
                    short(&a.sha256),
                    b.path,
                    short(&b.sha256)
                ));
            }
        }
        let keys: std::collections::BTreeSet<&String> = self.settings.keys().chain(now.settings.keys()).collect();
        for k in keys {
            let (a, b) = (self.settings.get(k), now.settings.get(k));
            if a != b {
                let show = |v: Option<&String>| v.map_or("(unset)".to_string(), |v| v.clone());
                out.push(format!("{k}: {} vs {}", show(a), show(b)));
            }
        }
        if self.swaps != now.swaps {
            let first = self.swaps.iter().zip(&now.swaps).find(|(a, b)| a != b);
            let at = match first {
                Some((a, b)) => format!(", first: '{}' vs '{}'", a.key, b.key),
                None => String::new(),
            };
            out.push(format!("swaps: {} vs {}{at}", self.swaps.len(), now.swaps.len()));
        }
        if scope == Scope::Shards {
            if self.args != now.args {
                out.push(format!("command line: `{}` vs `{}`", self.args.join(" "), now.args.join(" ")));
            }
            let count = |h: &Header| h.shard.as_ref().map(|s| s.count);
            if count(self) != count(now) {
                let show = |c: Option<usize>| c.map_or("not a shard".to_string(), |c| format!("{c} shards"));
                out.push(format!("shards: {} vs {}", show(count(self)), show(count(now))));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
