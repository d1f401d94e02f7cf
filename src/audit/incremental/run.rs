//! Running a plan: per chunk of images, the baseline run that fills the cache, then every
//! swap on its region only, regions spread over the engine's workers.

use std::collections::HashMap;

use anyhow::Result;
use indicatif::ProgressBar;
use ndarray::{s, Array3, ArrayD};

use super::{schedule, Plan, Region};
use crate::audit::forward::{check_finite, class_maps, Feed};
use crate::audit::strategy::param_f32;
use crate::audit::{AuditJob, AuditOutcome, Strategy, Truth};
use crate::engine::View;
use crate::metrics::dice::DiceCounts;

impl Plan {
    /// Run the baseline and every swap, a chunk of images at a time.
    pub fn run(&self, job: &AuditJob, feed: &Feed, cache_mb: usize, bar: &ProgressBar) -> Result<AuditOutcome> {
        let data = feed.data;
        let budget = cache_mb << 20;
        // With a dynamic batch, shrink the batch until one batch's cache fits the budget.
        let mut feed = feed.clone();
        if feed.input.batch.is_none() {
            feed.batch = feed.batch.min((budget / self.bytes_per_image.max(1)).max(1));
            feed.batch = feed.batch.min(self.batch_cap.unwrap_or(usize::MAX));
        }
        let feed = &feed;
        let batches: Vec<(usize, usize)> = feed.batches().collect();
        let per_batch = self.bytes_per_image.max(1) * feed.batch;
        let batches_per_chunk = (budget / per_batch).max(1);
        let chunks: Vec<&[(usize, usize)]> = batches.chunks(batches_per_chunk).collect();
        let swaps: usize = self.regions.iter().map(|r| r.pairs.len()).sum();
        bar.set_length((chunks.len() * (swaps + 1)) as u64);
        if !job.quiet {
            eprintln!(
                "incremental: {} regions on {} worker(s), {} image(s) per run, {:.1} MiB of cached activations per image, {} chunk(s) of up to {} images (--cache-mb {cache_mb})",
                self.regions.len(),
                self.workers,
                feed.batch,
                self.bytes_per_image as f64 / (1 << 20) as f64,
                chunks.len(),
                (batches_per_chunk * feed.batch).min(data.n())
            );
        }
        let mut classes = 0;
        let mut labels: Option<Array3<u8>> = None;
        let mut base_counts: Option<DiceCounts> = None;
        let mut swap_counts: HashMap<usize, DiceCounts> = HashMap::new();
        let input = feed.input.name.as_str();
        let last = chunks.len().saturating_sub(1);
        for (ci, chunk) in chunks.into_iter().enumerate() {
            // Baseline over the chunk, keeping the frontier tensors; batches spread over the
            // workers, each with its own baseline session.
            let runs = schedule::parallel_map(self.workers, chunk, |w, &(start, count)| {
                let mut runner =
                    self.cache_runners[w].lock().map_err(|_| anyhow::anyhow!("a baseline session was poisoned"))?;
                let x = feed.tensor(start, count);
                let mut outs: HashMap<String, ort::value::DynValue> =
                    runner.run_keep(input, x.view().into_dyn())?.into_iter().collect();
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
            })?;
            let mut cache: Vec<HashMap<String, ort::value::DynValue>> = Vec::with_capacity(chunk.len());
            let mut truth: Vec<Array3<u8>> = Vec::with_capacity(chunk.len());
            for (&(start, count), (pred, c, outs)) in chunk.iter().zip(runs) {
                if classes == 0 {
                    classes = c;
                    labels = match job.truth {
                        Truth::Labels => Some(crate::audit::labels(data, classes)?),
                        Truth::Baseline => None,
                    };
                    base_counts = Some(DiceCounts::new(classes));
                }
                let t = match &labels {
                    Some(l) => l.slice(s![start..start + count, .., ..]).to_owned(),
                    None => pred.clone(),
                };
                if let Some(bc) = base_counts.as_mut() {
                    bc.add(pred.view(), t.view());
                }
                truth.push(t);
                cache.push(outs);
            }
            bar.inc(1);
            if ci == last {
                if let Some(bc) = &base_counts {
                    job.record_baseline(Strategy::Incremental, classes, &job.metric.score(bc))?;
                }
            }
            // Every swap on its region only, regions spread over the workers; on the last
            // chunk each result is final as its region ends.
            let per_region = schedule::parallel_map(self.workers, &self.order, |_, &r| {
                let counts = self.swaps_of(&self.regions[r], job, feed, chunk, &cache, &truth, classes, bar)?;
                if ci == last {
                    for (p, c) in &counts {
                        let mut total = swap_counts.get(p).cloned().unwrap_or_else(|| DiceCounts::new(classes));
                        total.merge(c);
                        job.record_swap(*p, &job.metric.score(&total))?;
                    }
                }
                Ok(counts)
            })?;
            for (p, c) in per_region.into_iter().flatten() {
                swap_counts.entry(p).or_insert_with(|| DiceCounts::new(classes)).merge(&c);
            }
        }
        let baseline = job.metric.score(&base_counts.ok_or_else(|| anyhow::anyhow!("no data"))?);
        let mut swaps_out = vec![None; job.pairing.pairs.len()];
        for (p, c) in swap_counts {
            swaps_out[p] = Some(job.metric.score(&c));
        }
        Ok(AuditOutcome { classes, baseline, swaps: swaps_out })
    }

    /// Dice counts of every swap of one region over one chunk of cached batches.
    #[allow(clippy::too_many_arguments)]
    fn swaps_of(
        &self,
        region: &Region,
        job: &AuditJob,
        feed: &Feed,
        chunk: &[(usize, usize)],
        cache: &[HashMap<String, ort::value::DynValue>],
        truth: &[Array3<u8>],
        classes: usize,
        bar: &ProgressBar,
    ) -> Result<Vec<(usize, DiceCounts)>> {
        let input = feed.input.name.as_str();
        let mut runner = region.runner.lock().map_err(|_| anyhow::anyhow!("a region session was poisoned"))?;
        let needs_image = region.frontier.iter().any(|n| n == input);
        // Batches outside, swaps inside: a batch's cached tensors stay in the core's cache
        // while every kind of this layer is tried on it.
        // (A QDQ swap is baked into its region: nothing to feed.)
        let swapped: Vec<Option<(&str, ArrayD<f32>)>> = region
            .pairs
            .iter()
            .map(|&p| {
                let t = &job.pairing.pairs[p].target;
                job.values.triples[p].is_none().then(|| (t.name.as_str(), param_f32(&job.values.source[p])))
            })
            .collect();
        let mut counts = vec![DiceCounts::new(classes); region.pairs.len()];
        for (b, &(start, count)) in chunk.iter().enumerate() {
            // The image itself only when the region reads it (the first layer's).
            let x = needs_image.then(|| feed.tensor(start, count));
            let mut feeds: Vec<(&str, View)> = Vec::with_capacity(region.frontier.len() + 1);
            for name in &region.frontier {
                if let (true, Some(x)) = (name == input, &x) {
                    feeds.push((input, View::F32(x.view().into_dyn())));
                    continue;
                }
                let t = cache[b].get(name).ok_or_else(|| anyhow::anyhow!("tensor '{name}' missing from the cache"))?;
                feeds.push((name.as_str(), View::Value(t)));
            }
            for (swap, c) in swapped.iter().zip(&mut counts) {
                if let Some((name, values)) = swap {
                    feeds.push((name, View::F32(values.view())));
                }
                let ((h, w), at, layout) = (feed.map_size(), feed.threshold, feed.output);
                let pred =
                    runner.run_views_first(&feeds, |output| Ok(class_maps(output, layout, count, h, w, at)?.0))?;
                if swap.is_some() {
                    feeds.pop();
                }
                c.add(pred.view(), truth[b].view());
            }
        }
        bar.inc(region.pairs.len() as u64);
        let out = region.pairs.iter().copied().zip(counts).collect();
        Ok(out)
    }
}
