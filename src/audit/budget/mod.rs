//! The noise budget (`audit --budget`; METHOD.md "Beyond the paper"): for each audited
//! (layer, kind), the largest RMSE of Gaussian noise on the target's own tensor whose mean
//! loss (baseline minus noisy score, the swap's metric) stays within the tolerance. It turns
//! the paper's second condition, "the RMSE between kernels is small enough", into a number
//! per layer: a swap whose `rmse` is within its layer's budget should be reusable.
//!
//! Search: a bisection on a geometric grid of RMSEs ([`grid`]), each probe averaging a few
//! seeded draws (`--budget-draws`, default [`noise::DEFAULT_DRAWS`]) ([`noise`]). Every probe is a swap like the audit's, with
//! the target's tensor plus noise in place of the source's, so it runs the way the swaps
//! ran: with the incremental strategy, only the layer's downstream region from cached
//! activations (one plan, its sessions built once for every step); where incremental does
//! not apply, or with `--strategy shared|naive`, through that strategy (same numbers).
//! All groups bisect in lockstep: each step is one run of every group's probes.

mod grid;
pub mod noise;
mod probe;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

use super::compare::PairValues;
use super::{AuditJob, Scoring, Strategy};
use crate::engine::Engine;
use crate::model::{DType, Kind, ParamSource};
use crate::pair::Pairing;
pub use grid::{Bisection, Bracket, Grid, HIGH, LOW, POINTS, STEPS};

/// One (layer, kind)'s budget: the grid it was searched on and where the search ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Found {
    /// The grid (`LOW` to `HIGH` times the target tensor's RMS).
    pub grid: Grid,
    /// The largest grid RMSE whose mean loss is within the tolerance, and that loss; None
    /// when even the smallest costs more (the budget is below the grid).
    pub within: Option<(f64, f64)>,
    /// The next grid RMSE, whose mean loss is over the tolerance, and that loss; None when
    /// even the largest grid RMSE is within it (the budget is above the grid).
    pub next: Option<(f64, f64)>,
    /// A running variance (RV) that the noise at `next` made negative in some draw: BN's
    /// `sqrt(var + eps)` then fails (NaN), so `next` marks where variances turn negative, not
    /// how the loss grows.
    pub next_negative_variance: bool,
}

/// What `--budget` found, per pair.
#[derive(Debug, Clone)]
pub struct BudgetOutcome {
    /// Per pair (`Pairing::pairs` order): None for kinds not audited, `Err(why)` for a
    /// parameter the budget cannot be searched for.
    pub pairs: Vec<Option<std::result::Result<Found, String>>>,
    /// The strategy the probes ran with.
    pub strategy: Strategy,
    /// Noise draws averaged per probe.
    pub draws: usize,
    /// Probe runs: steps x draws x groups (each a swap run over every image).
    pub probe_runs: usize,
    /// Unswapped runs over every image: one per step (the baseline and, incremental, the
    /// cached activations).
    pub baseline_runs: usize,
}

/// Why pair `i`'s budget cannot be searched for, or its grid.
fn grid_of(job: &AuditJob, i: usize) -> std::result::Result<Grid, String> {
    let p = &job.pairing.pairs[i].target;
    if job.values.triples[i].is_some() {
        return Err("quantized (QDQ) parameter: noise on its dequantized values is not what the integer kernels compute; no budget".into());
    }
    if !matches!(p.source, ParamSource::Initializer(_)) || p.dtype != DType::Float32 {
        return Err(format!("'{}' is not a float32 initializer: no budget", p.name));
    }
    Grid::of(job.values.target[i].iter().copied())
        .ok_or_else(|| format!("'{}' is all zeros (or not finite): no scale for the noise grid, no budget", p.name))
}

/// Search the budget of every audited (layer, kind) of `job` (an audit job; its journal, if
/// any, is not touched), each probe averaging `draws` noise draws (at least 1).
pub fn run(engine: &Engine, job: &AuditJob, draws: usize) -> Result<BudgetOutcome> {
    let draws = draws.max(1);
    let _span = crate::profile::span("budget (wall)");
    let pairs = &job.pairing.pairs;
    let mut out: Vec<Option<std::result::Result<Found, String>>> = vec![None; pairs.len()];
    let mut groups: Vec<(usize, Grid)> = Vec::new();
    for i in (0..pairs.len()).filter(|&i| job.audits(i)) {
        match grid_of(job, i) {
            Ok(g) => groups.push((i, g)),
            Err(why) => out[i] = Some(Err(why)),
        }
    }
    if groups.is_empty() {
        return Ok(BudgetOutcome { pairs: out, strategy: job.strategy, draws, probe_runs: 0, baseline_runs: 0 });
    }
    // Every group's pair, once per draw: probe k is group k / draws, draw k % draws.
    let probes = Pairing {
        method: job.pairing.method,
        pairs: groups.iter().flat_map(|&(i, _)| std::iter::repeat_n(pairs[i].clone(), draws)).collect(),
        unmatched: Vec::new(),
    };
    let mut values = PairValues {
        target: groups.iter().flat_map(|&(i, _)| std::iter::repeat_n(job.values.target[i].clone(), draws)).collect(),
        source: Vec::new(),
        triples: vec![None; probes.pairs.len()],
    };
    let tolerance = job.scoring.tolerance;
    let mut bisections: Vec<Bisection> = groups.iter().map(|(_, g)| Bisection::new(g.points, tolerance)).collect();
    // Per group, the grid indices whose noise made a running variance negative.
    let mut negative: Vec<Vec<usize>> = vec![Vec::new(); groups.len()];
    if !job.quiet {
        eprintln!(
            "budget: {} (layer, kind) group(s), {STEPS} bisection steps x {draws} noise draws = {} probe runs",
            groups.len(),
            STEPS as usize * draws * groups.len()
        );
    }
    let bar = progress(job.quiet);
    let mut prober: Option<probe::Prober> = None;
    let scoring = Scoring { adaptive: false, resamples: 0, ..job.scoring };
    for _ in 0..STEPS {
        let mids: Vec<usize> = bisections.iter().filter_map(Bisection::next).collect();
        if mids.len() != groups.len() {
            anyhow::bail!("budget: a bisection ended before the others (grids of different sizes)");
        }
        values.source = (0..probes.pairs.len())
            .map(|k| {
                let (g, d) = (k / draws, k % draws);
                let (i, grid) = &groups[g];
                let t = &job.values.target[*i];
                noise::perturbed(t, &noise::direction(&pairs[*i].target.name, d, t.len()), grid.r(mids[g]))
            })
            .collect();
        let step = AuditJob { pairing: &probes, values: &values, quiet: true, progress: None, scoring, ..*job };
        let prober = match &mut prober {
            Some(p) => p,
            None => prober.insert(probe::Prober::new(engine, &step, job.quiet)),
        };
        let losses = prober.losses(engine, &step)?;
        for (g, (i, _)) in groups.iter().enumerate() {
            let probed = &values.source[g * draws..(g + 1) * draws];
            if pairs[*i].kind() == Kind::RV && probed.iter().any(|v| v.iter().any(|x| *x < 0.0)) {
                negative[g].push(mids[g]);
            }
        }
        for (g, b) in bisections.iter_mut().enumerate() {
            let mean = losses[g * draws..(g + 1) * draws].iter().sum::<f64>() / draws as f64;
            b.record(mids[g], mean);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    for (((i, grid), b), negative) in groups.iter().zip(&bisections).zip(&negative) {
        let Bracket { within, over } = b.bracket();
        out[*i] = Some(Ok(Found {
            grid: *grid,
            within: within.map(|(j, loss)| (grid.r(j), loss)),
            next: over.map(|(j, loss)| (grid.r(j), loss)),
            next_negative_variance: over.is_some_and(|(j, _)| negative.contains(&j)),
        }));
    }
    let strategy = prober.as_ref().map_or(job.strategy, |p| p.strategy());
    if let Some(p) = prober {
        p.close(engine);
    }
    Ok(BudgetOutcome {
        pairs: out,
        strategy,
        draws,
        probe_runs: STEPS as usize * draws * groups.len(),
        baseline_runs: STEPS as usize,
    })
}

fn progress(quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(u64::from(STEPS));
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} budget step {pos}/{len} [{bar:30}] {elapsed} (ETA {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
