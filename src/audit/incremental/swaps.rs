//! One chunk's swaps, region by region: the runs of a region's open swaps over the chunk's
//! cached batches, and the host work on their labels (per-image Dice counts, then, when the
//! chunk completes a round, each swap's interval and journal entry).
//!
//! Regions spread over the engine's workers, each worker doing its own host work. With one
//! worker on a GPU that host work would leave the GPU idle between runs (in the first
//! 500-slice run on an H200, ~20 s of 147 s), so there the work is pipelined: the worker
//! only runs sessions and hands each run's labels to a host thread, which counts them and
//! settles each region as it ends, in the order the runs were made (the same journal order,
//! the same numbers).

use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, Receiver};

use anyhow::{anyhow, Result};
use ndarray::{s, Array3, ArrayD};

use super::{schedule, Plan, Region};
use crate::audit::forward::{class_maps, Feed};
use crate::audit::strategy::param_f32;
use crate::audit::AuditJob;
use crate::engine::View;
use crate::metrics::bootstrap::{image_counts, ImageCounts};

/// What a chunk's swaps read: its batches `(first image, count)`, their cached tensors and
/// the truth per batch.
pub(super) struct Chunk<'a> {
    pub batches: &'a [(usize, usize)],
    pub cache: &'a [HashMap<String, ort::value::DynValue>],
    pub truth: &'a [Array3<u8>],
    pub classes: usize,
}

/// One region's open swaps and their per-image counts (`[chunk images, classes, 3]`), filled
/// run by run.
pub(super) struct RegionCounts {
    pub pairs: Vec<usize>,
    counts: Vec<ImageCounts>,
}

impl RegionCounts {
    fn new(pairs: Vec<usize>, chunk: &Chunk) -> RegionCounts {
        let images: usize = chunk.batches.iter().map(|b| b.1).sum();
        let counts = vec![ImageCounts::zeros((images, chunk.classes, 3)); pairs.len()];
        RegionCounts { pairs, counts }
    }

    /// Count swap `pos`'s labels of batch `b`.
    fn add(&mut self, chunk: &Chunk, pos: usize, b: usize, pred: &Array3<u8>) {
        let (first, (start, count)) = (chunk.batches[0].0, chunk.batches[b]);
        let at = start - first;
        let c = image_counts(pred.view(), chunk.truth[b].view(), chunk.classes);
        self.counts[pos].slice_mut(s![at..at + count, .., ..]).assign(&c);
    }

    /// `(pair, counts)` per open swap.
    pub fn into_pairs(self) -> Vec<(usize, ImageCounts)> {
        self.pairs.into_iter().zip(self.counts).collect()
    }
}

/// A run's labels on their way to the host thread, or the end of a region.
enum Made {
    Run { pos: usize, b: usize, pred: Array3<u8> },
    RegionEnd,
}

impl Plan {
    /// Every open swap of the regions in `order` over one chunk; `settle` gets each region's
    /// counts when its runs are done (on the thread that counted them) and returns them.
    pub(super) fn chunk_swaps<F>(
        &self,
        order: &[usize],
        open: &[usize],
        job: &AuditJob,
        feed: &Feed,
        chunk: &Chunk,
        settle: F,
    ) -> Result<Vec<Vec<(usize, ImageCounts)>>>
    where
        F: Fn(RegionCounts) -> Result<Vec<(usize, ImageCounts)>> + Sync,
    {
        let open_pairs = |r: usize| -> Vec<usize> {
            self.regions[r].pairs.iter().copied().filter(|p| open.binary_search(p).is_ok()).collect()
        };
        if !(self.overlap_host && self.workers == 1) {
            return schedule::parallel_map(self.workers, order, |_, &r| {
                let mut counts = RegionCounts::new(open_pairs(r), chunk);
                let pairs = counts.pairs.clone();
                self.region_runs(&self.regions[r], &pairs, job, feed, chunk, |pos, b, pred| {
                    counts.add(chunk, pos, b, &pred);
                    Ok(())
                })?;
                settle(counts)
            });
        }
        // One worker: the runs here, the host work on a thread of its own.
        let (tx, rx) = sync_channel::<Made>(8);
        std::thread::scope(|scope| {
            let host = scope.spawn(|| host_work(rx, order, &open_pairs, chunk, &settle));
            let runs = order.iter().try_for_each(|&r| {
                let pairs = open_pairs(r);
                self.region_runs(&self.regions[r], &pairs, job, feed, chunk, |pos, b, pred| {
                    tx.send(Made::Run { pos, b, pred }).map_err(|_| anyhow!("the host thread stopped"))
                })?;
                tx.send(Made::RegionEnd).map_err(|_| anyhow!("the host thread stopped"))
            });
            drop(tx);
            let counted = host.join().map_err(|_| anyhow!("the host thread panicked"))?;
            // The host thread's own error first: a failed send only says it stopped.
            let counted = counted?;
            runs.map(|()| counted)
        })
    }

    /// Run every swap in `pairs` (open swaps of `region`) over the chunk's batches, handing
    /// each run's labels to `emit(position in pairs, batch index, labels)`.
    fn region_runs(
        &self,
        region: &Region,
        pairs: &[usize],
        job: &AuditJob,
        feed: &Feed,
        chunk: &Chunk,
        mut emit: impl FnMut(usize, usize, Array3<u8>) -> Result<()>,
    ) -> Result<()> {
        let input = feed.input.name.as_str();
        let mut runner = region.runner.lock().map_err(|_| anyhow!("a region session was poisoned"))?;
        let needs_image = region.frontier.iter().any(|n| n == input);
        // Batches outside, swaps inside: a batch's cached tensors stay in the core's cache
        // while every kind of this layer is tried on it.
        // (A QDQ swap is baked into its region: nothing to feed.)
        let swapped: Vec<Option<(&str, ArrayD<f32>)>> = pairs
            .iter()
            .map(|&p| {
                let t = &job.pairing.pairs[p].target;
                job.values.triples[p].is_none().then(|| (t.name.as_str(), param_f32(&job.values.source[p])))
            })
            .collect();
        for (b, &(start, count)) in chunk.batches.iter().enumerate() {
            // The image itself only when the region reads it (the first layer's) and the
            // baseline run did not keep it with the cache (on the device).
            let x = (needs_image && !chunk.cache[b].contains_key(input)).then(|| feed.tensor(start, count));
            let mut feeds: Vec<(&str, View)> = Vec::with_capacity(region.frontier.len() + 1);
            for name in &region.frontier {
                if let (true, Some(x)) = (name == input, &x) {
                    feeds.push((input, View::F32(x.view().into_dyn())));
                    continue;
                }
                let t = chunk.cache[b].get(name).ok_or_else(|| anyhow!("tensor '{name}' missing from the cache"))?;
                feeds.push((name.as_str(), View::Value(t)));
            }
            for (pos, swap) in swapped.iter().enumerate() {
                if let Some((name, values)) = swap {
                    feeds.push((name, View::F32(values.view())));
                }
                let ((h, w), at, layout) = (feed.map_size(), feed.threshold, feed.output);
                let t = crate::profile::span("  region run (each, any thread)");
                let pred = if self.reduced {
                    runner.run_first(&feeds, "uint8 labels", |l| super::labels::class_maps(l, count, h, w))?
                } else {
                    runner.run_views_first(&feeds, |output| Ok(class_maps(output, layout, count, h, w, at)?.0))?
                };
                drop(t);
                if swap.is_some() {
                    feeds.pop();
                }
                emit(pos, b, pred)?;
            }
        }
        Ok(())
    }
}

/// The host thread of the pipelined path: counts each run's labels and settles each region
/// at its end, regions in `order`.
fn host_work<F>(
    rx: Receiver<Made>,
    order: &[usize],
    open_pairs: &(dyn Fn(usize) -> Vec<usize> + Sync),
    chunk: &Chunk,
    settle: &F,
) -> Result<Vec<Vec<(usize, ImageCounts)>>>
where
    F: Fn(RegionCounts) -> Result<Vec<(usize, ImageCounts)>> + Sync,
{
    let _t = crate::profile::span("  host work (thread)");
    let mut done = Vec::with_capacity(order.len());
    let mut regions = order.iter();
    let mut current: Option<RegionCounts> = None;
    for made in rx {
        let counts = match current.as_mut() {
            Some(c) => c,
            None => {
                let &r = regions.next().ok_or_else(|| anyhow!("labels for no region"))?;
                current.insert(RegionCounts::new(open_pairs(r), chunk))
            }
        };
        match made {
            Made::Run { pos, b, pred } => counts.add(chunk, pos, b, &pred),
            Made::RegionEnd => {
                let finished = current.take().ok_or_else(|| anyhow!("a region ended twice"))?;
                done.push(settle(finished)?);
            }
        }
    }
    Ok(done)
}
