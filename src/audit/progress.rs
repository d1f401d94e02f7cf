//! What an audit takes from a journal and gives to it: results already known (not computed
//! again), the pairs one shard computes, and a sink told of every result as it is final.
//!
//! Which pairs *run* (`AuditJob::runs`) never depends on this: the sessions, the parameters
//! exposed as inputs and the tensors cached are those of the whole audit, so a resumed or
//! sharded run computes every swap with the very graphs a single run uses, and its numbers
//! are the same bits. Only which of them are *computed* now (`AuditJob::computes`) does.

use anyhow::{bail, Result};

use super::{AuditJob, AuditOutcome, Strategy, SwapResult};
use crate::journal::ChunkRecord;
use crate::metrics::dice::Dice;

/// Results already known: the journal's baseline and swaps.
pub type Known = crate::journal::Known<Dice, SwapResult>;

/// Told of each result as soon as it is final; called from any worker.
pub trait Sink: Sync {
    /// The baseline on every image.
    fn baseline(&self, strategy: Strategy, classes: usize, score: &Dice) -> Result<()>;
    /// One finished swap.
    fn swap(&self, pair: usize, result: &SwapResult) -> Result<()>;
    /// The counts of a chunk of images that does not finish its round.
    fn chunk(&self, record: &ChunkRecord) -> Result<()>;
}

/// An audit's link to its journal.
pub struct Progress<'a> {
    /// What is known already.
    pub known: &'a Known,
    /// The only pairs to compute (a shard's, ascending); `None`: every pair that runs.
    pub only: Option<&'a [usize]>,
    /// Where finished results go.
    pub sink: Option<&'a dyn Sink>,
}

impl AuditJob<'_> {
    /// Whether pair `i` is computed by this run: it runs, its result is not known yet, and
    /// it is this shard's.
    pub fn computes(&self, i: usize) -> bool {
        self.runs(i)
            && self
                .progress
                .is_none_or(|p| !p.known.swaps.contains_key(&i) && p.only.is_none_or(|o| o.binary_search(&i).is_ok()))
    }

    /// The baseline is final: journal it, or, when the journal has it already, check that it
    /// is the same (else the journal's swaps would be compared with another baseline).
    pub fn record_baseline(&self, strategy: Strategy, classes: usize, score: &Dice) -> Result<()> {
        let Some(p) = self.progress else { return Ok(()) };
        match &p.known.baseline {
            Some(b) if b.result != *score || b.classes != classes || b.strategy != strategy.name() => bail!(
                "the baseline computed now (mean {}, {classes} classes, {} strategy) is not the journal's (mean {}, {} classes, {} strategy): the results would not be comparable",
                score.mean,
                strategy.name(),
                b.result.mean,
                b.classes,
                b.strategy
            ),
            Some(_) => Ok(()),
            None => p.sink.map_or(Ok(()), |s| s.baseline(strategy, classes, score)),
        }
    }

    /// Swap `i` is final: journal it.
    pub fn record_swap(&self, i: usize, result: &SwapResult) -> Result<()> {
        match self.progress.and_then(|p| p.sink) {
            Some(s) => s.swap(i, result),
            None => Ok(()),
        }
    }

    /// A chunk that does not finish its round is counted: journal it (when journaling).
    pub fn record_chunk(&self, record: impl FnOnce() -> ChunkRecord) -> Result<()> {
        match self.progress.and_then(|p| p.sink) {
            Some(s) => s.chunk(&record()),
            None => Ok(()),
        }
    }

    /// The journal's counts of the chunk of `images` images from `first`, if they cover every
    /// pair of `open` (a resumed audit takes them instead of running the chunk).
    pub fn known_chunk(&self, first: usize, images: usize, open: &[usize]) -> Option<&ChunkRecord> {
        self.progress?.known.chunk(first, images, open)
    }

    /// The outcome from the journal alone, when it holds the baseline and nothing is left
    /// to compute; `skipped` pairs (source equal to target) score the baseline.
    pub fn from_journal(&self, skipped: &[usize]) -> Result<Option<(AuditOutcome, Strategy)>> {
        let Some(p) = self.progress else { return Ok(None) };
        let Some(b) = &p.known.baseline else { return Ok(None) };
        if (0..self.pairing.pairs.len()).any(|i| self.computes(i)) {
            return Ok(None);
        }
        let Ok(strategy) = <Strategy as clap::ValueEnum>::from_str(&b.strategy, false) else {
            bail!("the journal names an unknown strategy '{}'", b.strategy)
        };
        let n = self.data.n();
        let mut swaps = vec![None; self.pairing.pairs.len()];
        for &i in skipped {
            let base = b.result.clone();
            swaps[i] = Some(SwapResult {
                baseline: base.clone(),
                swapped: base,
                images: n,
                interval: (0.0, 0.0),
                non_finite_images: 0,
            });
        }
        let mut outcome = AuditOutcome {
            classes: b.classes,
            baseline: b.result.clone(),
            swaps,
            images: n,
            image_forwards: n,
            exact_image_forwards: n,
            rounds: self.scoring.rounds(n),
            level: self.scoring.level(n),
            clock: Default::default(),
        };
        self.absorb_known(&mut outcome);
        Ok(Some((outcome, strategy)))
    }

    /// Put the journal's swaps (those this audit runs) into the outcome, counted as run.
    pub fn absorb_known(&self, outcome: &mut AuditOutcome) {
        let Some(p) = self.progress else { return };
        let mut known: Vec<(&usize, &SwapResult)> = p.known.swaps.iter().collect();
        known.sort_by_key(|(i, _)| **i);
        for (&i, result) in known {
            if i < outcome.swaps.len() && self.runs(i) {
                outcome.swaps[i] = Some(result.clone());
                outcome.image_forwards += result.images;
                outcome.exact_image_forwards += outcome.images;
            }
        }
    }
}

/// Serde for a pair of numbers that may be NaN (an interval without resamples): JSON has no
/// NaN, so it is written as null and read back as NaN.
pub mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    fn to(x: f64) -> Option<f64> {
        (!x.is_nan()).then_some(x)
    }

    /// Write each NaN as null.
    pub fn serialize<S: Serializer>(v: &(f64, f64), s: S) -> Result<S::Ok, S::Error> {
        (to(v.0), to(v.1)).serialize(s)
    }

    /// Read each null as NaN.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<(f64, f64), D::Error> {
        let (a, b) = <(Option<f64>, Option<f64>)>::deserialize(d)?;
        Ok((a.unwrap_or(f64::NAN), b.unwrap_or(f64::NAN)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_swap_result_reads_back_as_written_nan_interval_included() {
        let d = Dice { per_class: vec![0.25, 1.0 / 3.0], mean: 0.1 + 0.2, mean_fg: 1.0 / 3.0 };
        for interval in [(-0.001, 0.0123456789012345), (f64::NAN, f64::NAN)] {
            let r = SwapResult { baseline: d.clone(), swapped: d.clone(), images: 48, interval, non_finite_images: 2 };
            let json = serde_json::to_string(&r).unwrap();
            let back: SwapResult = serde_json::from_str(&json).unwrap();
            assert_eq!(serde_json::to_string(&back).unwrap(), json);
            assert_eq!((back.baseline, back.swapped, back.images), (d.clone(), d.clone(), 48));
            assert_eq!(back.interval.0.to_bits(), interval.0.to_bits(), "{json}");
            assert_eq!(back.interval.1.to_bits(), interval.1.to_bits(), "{json}");
        }
        let json = serde_json::to_string(&(f64::NAN, 1.5)).unwrap();
        assert_eq!(json, "[null,1.5]", "serde_json has no NaN: why the interval needs nan_as_null");
    }
}
