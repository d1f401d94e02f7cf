//! Running a plan: per round of images (one round when exact) and per chunk of it, the
//! baseline run that fills the cache, then every swap still open on its region only,
//! regions spread over the engine's workers.

use std::collections::HashMap;

use anyhow::Result;
use ndarray::{s, Array3};

use super::swaps::{Chunk, RegionCounts};
use super::{schedule, Plan};
use crate::audit::clock::RunClock;
use crate::audit::forward::{check_finite, class_maps, Feed};
use crate::audit::work_bar::WorkBar;
use crate::audit::{AuditJob, Strategy, Tally, Truth};
use crate::engine::Device;
use crate::journal::ChunkRecord;
use crate::metrics::bootstrap::ImageCounts;

impl Plan {
    /// Run the baseline and every swap, round by round (one round when exact), a chunk of
    /// images at a time; a swap stops after the round that decides it.
    /// `cache_mb`: the cache budget (`None`: the plan's default, see `default_cache_mb`).
    /// A GPU running out of memory is said as such, with the budget to lower.
    pub fn run(&self, job: &AuditJob, feed: &Feed, cache_mb: Option<usize>, bar: &WorkBar) -> Result<Tally> {
        let (cache_mb, lowered) = match cache_mb {
            Some(mb) => (mb, None),
            None => super::default_cache_mb(self.cache_on, feed.data.held_bytes())?,
        };
        self.run_chunks(job, feed, (cache_mb, lowered.as_deref()), bar).map_err(|e| {
            if self.cache_on == Some(crate::engine::Device::Cuda) && out_of_memory(&format!("{e:#}")) {
                e.context(format!(
                    "the GPU ran out of memory with {cache_mb} MiB of cached activations allowed; pass a smaller --cache-mb (or --batch)"
                ))
            } else {
                e
            }
        })
    }

    /// `cache`: the budget in MiB, and why a default budget was lowered (said with the plan).
    fn run_chunks(&self, job: &AuditJob, feed: &Feed, cache: (usize, Option<&str>), bar: &WorkBar) -> Result<Tally> {
        let (cache_mb, lowered) = cache;
        let data = feed.data;
        let budget = cache_mb << 20;
        // With a dynamic batch, shrink the batch until one batch's cache fits the budget.
        let mut feed = feed.clone();
        if feed.input.batch.is_none() {
            feed.batch = feed.batch.min((budget / self.bytes_per_image.max(1)).max(1));
            feed.batch = feed.batch.min(self.batch_cap.unwrap_or(usize::MAX));
        }
        let feed = &feed;
        let per_batch = self.bytes_per_image.max(1) * feed.batch;
        let batches_per_chunk = (budget / per_batch).max(1);
        let n = data.n();
        let rounds = job.scoring.rounds(n);
        let level = job.scoring.level(n);
        if !job.quiet {
            eprintln!(
                "incremental: {} regions on {} worker(s), {} image(s) per run, {:.1} MiB of cached activations per image, chunks of up to {} images (--cache-mb {cache_mb}{}){}{}{}{}",
                self.regions.len(),
                self.workers,
                feed.batch,
                self.bytes_per_image as f64 / (1 << 20) as f64,
                (batches_per_chunk * feed.batch).min(n),
                lowered.map(|why| format!(": {why}")).unwrap_or_default(),
                if rounds.len() > 1 { format!(", adaptive rounds ending at images {rounds:?}") } else { String::new() },
                if self.reduced { "; swap labels computed in the session" } else { "" },
                if self.overlap_host && self.workers == 1 { "; host work beside the runs" } else { "" },
                match self.cache_on {
                    Some(d) => format!(
                        "; cache bound to {} memory{}",
                        match d {
                            Device::Cpu => "host",
                            Device::Cuda => "GPU",
                        },
                        if self.kept_image.is_some() { ", images kept with it" } else { "" }
                    ),
                    None => String::new(),
                }
            );
        }
        let mut clock = RunClock::default();
        let mut labels: Option<Array3<u8>> = None;
        let mut tally: Option<Tally> = None;
        let mut open: Vec<usize> = self.regions.iter().flat_map(|r| r.pairs.iter().copied()).collect();
        open.sort_unstable();
        let mut start = 0;
        let input = feed.input.name.as_str();
        let last_round = rounds.len().saturating_sub(1);
        for (round, &end) in rounds.iter().enumerate() {
            let batches: Vec<(usize, usize)> = feed.batches_in(start..end).collect();
            let is_open = |p: usize| open.binary_search(&p).is_ok();
            // The regions with a swap still open, costliest first.
            let order: Vec<usize> =
                self.order.iter().copied().filter(|&r| self.regions[r].pairs.iter().any(|&p| is_open(p))).collect();
            let chunks = batches.chunks(batches_per_chunk).count();
            for (ci, chunk) in batches.chunks(batches_per_chunk).enumerate() {
                // The last chunk of a round completes each open swap's counts for the round.
                let completes = ci + 1 == chunks;
                let (first, images) = (chunk[0].0, chunk.iter().map(|b| b.1).sum::<usize>());
                // A chunk a killed run of this audit counted already: its counts, not its runs.
                // The first chunk always runs: the classes come from the model's output, never
                // from the journal (a line edited and re-signed could claim any number).
                if let Some(known) = job.known_chunk(first, images, &open).filter(|_| !completes) {
                    if let Some(tl) = tally.as_mut().filter(|tl| tl.classes() == known.classes) {
                        restore_chunk(tl, known, &open)?;
                        bar.ran(images * (1 + open.len()));
                        continue;
                    }
                }
                // Baseline over the chunk, keeping the frontier tensors; batches spread over
                // the workers, each with its own baseline session.
                let t = crate::profile::span("  baseline + cache (wall)");
                let runs = clock.baseline(|| {
                    schedule::parallel_map(self.workers, chunk, |w, &(start, count)| {
                        let mut runner = self.cache_runners[w]
                            .lock()
                            .map_err(|_| anyhow::anyhow!("a baseline session was poisoned"))?;
                        let x = feed.tensor(start, count);
                        let kept = match self.cache_on {
                            Some(device) => runner.run_keep_on(input, x.view().into_dyn(), &self.output, device)?,
                            None => runner.run_keep(input, x.view().into_dyn())?,
                        };
                        let mut outs: HashMap<String, ort::value::DynValue> = kept.into_iter().collect();
                        // Only the plan's own copy: a model's tensor may bear any name.
                        if let Some(image) = self.kept_image.as_ref().and_then(|k| outs.remove(k)) {
                            outs.insert(input.to_string(), image);
                        }
                        let logits = outs
                            .remove(&self.output)
                            .ok_or_else(|| anyhow::anyhow!("the model output '{}' is missing", self.output))?;
                        let logits = logits
                            .try_extract_array::<f32>()
                            .map_err(|e| anyhow::anyhow!("the model output is not float32: {e}"))?;
                        let (h, w) = feed.map_size();
                        check_finite(&logits, feed, start, count)?;
                        let (pred, c) = class_maps(logits, feed.output, count, h, w, feed.threshold)?;
                        Ok((pred, c, outs))
                    })
                })?;
                let mut cache: Vec<HashMap<String, ort::value::DynValue>> = Vec::with_capacity(chunk.len());
                let mut truth: Vec<Array3<u8>> = Vec::with_capacity(chunk.len());
                for (&(start, count), (pred, c, outs)) in chunk.iter().zip(runs) {
                    if tally.is_none() {
                        labels = match job.truth {
                            Truth::Labels => Some(crate::audit::labels(data, c)?),
                            Truth::Baseline => None,
                        };
                        tally = Some(Tally::new(c, n, job.pairing.pairs.len(), &open));
                    }
                    let t = match &labels {
                        Some(l) => l.slice(s![start..start + count, .., ..]).to_owned(),
                        None => pred.clone(),
                    };
                    if let Some(tl) = tally.as_mut() {
                        tl.add_baseline(start, pred.view(), t.view());
                    }
                    truth.push(t);
                    cache.push(outs);
                }
                drop(t);
                bar.ran(images);
                if chunks > 1 {
                    bar.say(format!("chunk {}/{chunks} of images {}..{}", ci + 1, first, first + images));
                }
                let classes = tally.as_ref().map_or(0, Tally::classes);
                if let (true, true, Some(tl)) = (completes, round == last_round, tally.as_ref()) {
                    job.record_baseline(Strategy::Incremental, classes, &tl.baseline_score(job.metric))?;
                }
                // Every open swap on its region only, regions spread over the workers; a swap
                // that is final with this chunk is journaled as soon as its region ends.
                let t = crate::profile::span("  swaps (wall)");
                let swaps_chunk = Chunk { batches: chunk, cache: &cache, truth: &truth, classes };
                let settle = |counts: RegionCounts| {
                    bar.ran(counts.pairs.len() * images);
                    let counts = counts.into_pairs();
                    if let (true, Some(tl)) = (completes, tally.as_ref()) {
                        for (p, c) in &counts {
                            let laid = Some((chunk[0].0, c.view()));
                            if let Some(result) = tl.settled(*p, end, laid, &job.scoring, level, job.metric) {
                                job.record_swap(*p, &result)?;
                            }
                        }
                    }
                    Ok(counts)
                };
                let per_region = clock.swaps(|| self.chunk_swaps(&order, &open, job, feed, &swaps_chunk, settle))?;
                drop(t);
                if let Some(tl) = tally.as_mut() {
                    let counted: Vec<(usize, ImageCounts)> = per_region.into_iter().flatten().collect();
                    if !completes {
                        job.record_chunk(|| chunk_record(tl, first, images, &counted))?;
                    }
                    for (p, c) in counted {
                        tl.add_counts(Some(p), first, c.view());
                    }
                }
            }
            if let Some(tl) = tally.as_mut() {
                open = tl.close_round(end, &job.scoring, level, &open);
            }
            bar.round_closed(end, open.len());
            start = end;
        }
        let mut tally = tally.ok_or_else(|| anyhow::anyhow!("no data"))?;
        tally.clock = clock;
        Ok(tally)
    }
}

/// The journal's line for a chunk that does not finish its round: the baseline's counts
/// (already in `tally`) and each open swap's, in pair order.
fn chunk_record(tally: &Tally, first: usize, images: usize, counted: &[(usize, ImageCounts)]) -> ChunkRecord {
    let flat = |a: ndarray::ArrayView3<u32>| a.iter().copied().collect::<Vec<u32>>();
    let mut swaps: Vec<(usize, Vec<u32>)> = counted.iter().map(|(p, c)| (*p, flat(c.view()))).collect();
    swaps.sort_unstable_by_key(|s| s.0);
    ChunkRecord { first, images, classes: tally.classes(), baseline: flat(tally.baseline_counts(first, images)), swaps }
}

/// Lay a journaled chunk's counts (the baseline's and those of the `open` swaps) into
/// `tally`, as if the chunk had run.
fn restore_chunk(tally: &mut Tally, known: &ChunkRecord, open: &[usize]) -> Result<()> {
    let shape = (known.images, known.classes, 3);
    let counts = |v: &[u32]| ImageCounts::from_shape_vec(shape, v.to_vec());
    tally.add_counts(None, known.first, counts(&known.baseline)?.view());
    for (p, v) in known.swaps.iter().filter(|(p, _)| open.binary_search(p).is_ok()) {
        tally.add_counts(Some(*p), known.first, counts(v)?.view());
    }
    tally.add_restored(known.images * (1 + open.len()));
    Ok(())
}

/// Whether an ONNX Runtime error says a device allocation failed (its arena, CUDA, cuBLAS or
/// cuDNN: cuDNN 9 names a failed GPU allocation `..._DEVICE_ALLOCATION_FAILED`, cuDNN 8
/// `CUDNN_STATUS_ALLOC_FAILED`).
fn out_of_memory(message: &str) -> bool {
    [
        "Failed to allocate memory",
        "out of memory",
        "cudaErrorMemoryAllocation",
        "CUBLAS failure 3",
        "CUBLAS_STATUS_ALLOC_FAILED",
        "CUDNN_STATUS_ALLOC_FAILED",
        "DEVICE_ALLOCATION_FAILED",
    ]
    .iter()
    .any(|m| message.contains(m))
}

#[cfg(test)]
mod tests {
    #[test]
    fn device_allocation_failures_are_recognised() {
        // Messages as ONNX Runtime 1.31's CUDA provider printed them on an H200.
        assert!(super::out_of_memory("Non-zero status code returned while running Conv node. Name:'node_conv2d_44' Status Message: /onnxruntime_src/onnxruntime/core/framework/bfc_arena.cc:360 void* onnxruntime::BFCArena::AllocateRawInternal(size_t, bool, onnxruntime::Stream*) Failed to allocate memory for requested buffer of size 201345280"));
        assert!(super::out_of_memory("CUBLAS failure 3: the resource allocation failed ; GPU=0"));
        assert!(!super::out_of_memory("Non-zero status code returned while running Conv node: invalid dimensions"));
    }

    #[test]
    fn a_cudnn_allocation_failure_is_recognised_as_out_of_memory() {
        // ONNX Runtime's CUDA_CALL message, "<lib> failure <code>: <the library's string>",
        // with cuDNN 9's and cuDNN 8's strings for a failed GPU allocation.
        let cudnn9 = "CUDNN failure 4004: CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED ; GPU=0 ; hostname=h ; expr=cudnnFindConvolutionForwardAlgorithmEx(...);";
        assert!(super::out_of_memory(cudnn9));
        assert!(super::out_of_memory("CUDNN failure 2: CUDNN_STATUS_ALLOC_FAILED ; GPU=0"));
        assert!(super::out_of_memory("CUBLAS failure 3: CUBLAS_STATUS_ALLOC_FAILED ; GPU=0"));
        // Host memory is not the GPU's: no --cache-mb hint for it.
        assert!(!super::out_of_memory(
            "CUDNN failure 4003: CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED ; GPU=0"
        ));
    }
}
