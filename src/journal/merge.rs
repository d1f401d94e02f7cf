//! Joining shard journals (`reuse-audit merge`): they must come from the same audit (same
//! inputs, settings, command line and shard count), be complete, hold every shard exactly
//! once, cover every swap exactly once, and agree on the baseline. The result is one
//! journal's content, as if a single run had written it.

use std::path::PathBuf;

use anyhow::Result;

use super::{Header, Known, Loaded, Scope};
use crate::error::UserError;

/// A shard journal and where it came from (for messages).
pub struct Part<B, S> {
    /// The folder or file given.
    pub origin: PathBuf,
    /// Its content.
    pub loaded: Loaded<B, S>,
}

fn refuse(why: String) -> anyhow::Error {
    UserError::Merge(why).into()
}

/// Check that `parts` make one whole audit; returns its header (no shard) and every result.
pub fn join<B: PartialEq, S>(parts: Vec<Part<B, S>>) -> Result<(Header, Known<B, S>)> {
    let Some(first) = parts.first() else { return Err(refuse("no shard results given".into())) };
    let name = |p: &Part<B, S>| p.origin.display().to_string();
    for p in &parts {
        if let Some(t) = &p.loaded.torn {
            return Err(refuse(format!("{} ends in a torn line ('{t}…'): it is not a finished shard result", name(p))));
        }
        if p.loaded.header.shard.is_none() {
            return Err(refuse(format!("{} is not a shard result (its audit ran without --shard)", name(p))));
        }
        let diff = first.loaded.header.differences(&p.loaded.header, Scope::Shards);
        if !diff.is_empty() {
            return Err(refuse(format!(
                "{} does not belong with {} (another audit): {}",
                name(p),
                name(first),
                diff.join("; ")
            )));
        }
    }
    let header = &first.loaded.header;
    let count = header.shard.as_ref().map_or(1, |s| s.count);
    let mut by_index: Vec<Option<&Part<B, S>>> = (0..count).map(|_| None).collect();
    for p in &parts {
        let Some(s) = &p.loaded.header.shard else { continue };
        let slot =
            by_index.get_mut(s.index - 1).ok_or_else(|| refuse(format!("{} is shard {}/{count}", name(p), s.index)))?;
        if let Some(other) = slot.replace(p) {
            return Err(refuse(format!("shard {}/{count} is given twice: {} and {}", s.index, name(other), name(p))));
        }
    }
    let missing: Vec<String> =
        by_index.iter().enumerate().filter(|(_, p)| p.is_none()).map(|(i, _)| format!("{}/{count}", i + 1)).collect();
    if !missing.is_empty() {
        return Err(refuse(format!("shard(s) {} missing ({} of {count} given)", missing.join(", "), parts.len())));
    }
    // Every swap in exactly one shard, every shard finished.
    let key = |pair: usize| header.swaps.iter().find(|s| s.pair == pair).map_or("?", |s| s.key.as_str());
    let mut owner: Vec<Option<&Part<B, S>>> = vec![None; header.swaps.iter().map(|s| s.pair + 1).max().unwrap_or(0)];
    for p in &parts {
        let Some(s) = &p.loaded.header.shard else { continue };
        let undone: Vec<usize> = s.pairs.iter().copied().filter(|i| !p.loaded.known.swaps.contains_key(i)).collect();
        if let Some(&i) = undone.first() {
            return Err(refuse(format!(
                "{} (shard {}/{count}) is unfinished: {} of its {} swaps missing, e.g. '{}'",
                name(p),
                s.index,
                undone.len(),
                s.pairs.len(),
                key(i)
            )));
        }
        for &i in &s.pairs {
            let slot =
                owner.get_mut(i).ok_or_else(|| refuse(format!("{} holds swap {i}, not in the audit", name(p))))?;
            if let Some(other) = slot.replace(p) {
                return Err(refuse(format!("swap '{}' is in {} and in {}", key(i), name(other), name(p))));
            }
        }
    }
    if let Some(s) = header.swaps.iter().find(|s| owner.get(s.pair).is_none_or(|o| o.is_none())) {
        return Err(refuse(format!("swap '{}' is in no shard", s.key)));
    }
    // One baseline for all.
    for p in &parts {
        let (a, b) = (&first.loaded.known.baseline, &p.loaded.known.baseline);
        let Some(b) = b else { return Err(refuse(format!("{} has no baseline", name(p)))) };
        let Some(a) = a else { return Err(refuse(format!("{} has no baseline", name(first)))) };
        if a.result != b.result || a.classes != b.classes || a.strategy != b.strategy {
            return Err(refuse(format!(
                "the baselines of {} and {} differ (strategy {} vs {}): the machines computed differently (another ONNX Runtime build or device?)",
                name(first),
                name(p),
                a.strategy,
                b.strategy
            )));
        }
    }
    let merged = Header { shard: None, ..header.clone() };
    let mut known = Known::default();
    for p in parts {
        let Loaded { known: k, .. } = p.loaded;
        if known.baseline.is_none() {
            known.baseline = k.baseline;
        }
        known.swaps.extend(k.swaps);
        known.timings.extend(k.timings);
    }
    Ok((merged, known))
}
