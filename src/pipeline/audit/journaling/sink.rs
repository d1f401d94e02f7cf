//! Where an audit's finished results go: the journal's sink, and the guard that tidies the
//! journal when an audit fails.

use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;

use crate::audit::{Sink, Strategy, SwapResult};
use crate::journal::{self, ChunkRecord, Record, SwapId, Writer};
use crate::metrics::dice::Dice;

/// Appends each finished result to the journal.
pub struct JournalSink<'a> {
    writer: &'a Writer,
    swaps: &'a [SwapId],
    /// Swaps appended by this run.
    appended: AtomicUsize,
    /// Chunks of counts appended by this run.
    chunks: AtomicUsize,
}

impl<'a> JournalSink<'a> {
    /// A sink into `writer` for an audit of `swaps`.
    pub fn new(writer: &'a Writer, swaps: &'a [SwapId]) -> Self {
        JournalSink { writer, swaps, appended: AtomicUsize::new(0), chunks: AtomicUsize::new(0) }
    }
}

/// On a failed audit (dropped armed): removes the journal when it holds no swap and no chunk
/// of counts (nothing to resume, so a rerun may simply start), else says how to go on from it.
pub struct Guard<'a> {
    sink: Option<&'a JournalSink<'a>>,
    known: usize,
    known_chunks: usize,
    armed: bool,
}

impl<'a> Guard<'a> {
    /// Watch the journal `sink` writes to, which held `known` swaps and `known_chunks`
    /// chunks of counts when opened.
    pub fn new(sink: Option<&'a JournalSink<'a>>, known: usize, known_chunks: usize) -> Self {
        Guard { sink, known, known_chunks, armed: true }
    }

    /// The audit succeeded: the journal is for the caller to publish or remove.
    pub fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let Some(sink) = self.sink.filter(|_| self.armed) else { return };
        let path = sink.writer.path();
        let swaps = self.known + sink.appended.load(Ordering::Relaxed);
        let chunks = self.known_chunks + sink.chunks.load(Ordering::Relaxed);
        if swaps == 0 && chunks == 0 {
            let _ = std::fs::remove_file(path);
        } else {
            let chunks = if chunks > 0 { format!(" and {chunks} chunk(s) of counted images") } else { String::new() };
            eprintln!(
                "note: {swaps} finished swap(s){chunks} are kept in {}: rerun with --resume to go on from them",
                path.display()
            );
        }
    }
}

impl Sink for JournalSink<'_> {
    fn baseline(&self, strategy: Strategy, classes: usize, score: &Dice) -> Result<()> {
        let record: Record<Dice, SwapResult> = Record::Baseline(journal::BaselineRecord {
            strategy: strategy.name().into(),
            classes,
            result: score.clone(),
        });
        self.writer.append(&record)
    }

    fn swap(&self, pair: usize, score: &SwapResult) -> Result<()> {
        let key = self.swaps.iter().find(|s| s.pair == pair).map(|s| s.key.clone()).unwrap_or_default();
        let record: Record<Dice, SwapResult> = Record::Swap(journal::SwapRecord { pair, key, result: score.clone() });
        self.writer.append(&record)?;
        self.appended.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn chunk(&self, record: &ChunkRecord) -> Result<()> {
        self.writer.append(&Record::<Dice, SwapResult>::Chunk(record.clone()))?;
        self.chunks.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
