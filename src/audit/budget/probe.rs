//! Running one bisection step's probes: each probe is a swap (the target's tensor plus
//! noise in place of the source's), run by the incremental plan, built once and kept for
//! every step, or by the shared/naive strategy where incremental does not apply.

use anyhow::Result;

use crate::audit::forward::Feed;
use crate::audit::{incremental, AuditJob, AuditOutcome, Strategy};
use crate::engine::Engine;

/// How probes run.
pub enum Prober {
    /// The downstream regions of the probed layers, from cached activations.
    Incremental(incremental::Plan),
    /// Full forward passes with this strategy.
    Full(Strategy),
}

impl Prober {
    /// The prober of a step's job: its strategy, incremental falling back to shared (with a
    /// note unless `quiet`) as the audit does.
    pub fn new(engine: &Engine, job: &AuditJob, quiet: bool) -> Prober {
        if job.strategy != Strategy::Incremental {
            return Prober::Full(job.strategy);
        }
        let plan = crate::audit::plan_probe(engine, job).and_then(|probe| incremental::Plan::new(engine, job, &probe));
        match plan {
            Ok(plan) => Prober::Incremental(plan),
            Err(why) => {
                if !quiet {
                    eprintln!(
                        "note: budget: incremental evaluation does not apply ({why:#}); probing with --strategy shared"
                    );
                }
                Prober::Full(Strategy::Shared)
            }
        }
    }

    /// Release the plan's sessions (see [`incremental::Plan::close`]).
    pub fn close(self, engine: &Engine) {
        if let Prober::Incremental(plan) = self {
            plan.close(engine);
        }
    }

    /// The strategy the probes run with.
    pub fn strategy(&self) -> Strategy {
        match self {
            Prober::Incremental(_) => Strategy::Incremental,
            Prober::Full(s) => *s,
        }
    }

    /// Every probe's loss (baseline minus probed score, the job's metric), in pair order.
    pub fn losses(&self, engine: &Engine, job: &AuditJob) -> Result<Vec<f64>> {
        let outcome = self.outcome(engine, job)?;
        outcome
            .swaps
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let s = s.as_ref().ok_or_else(|| anyhow::anyhow!("budget: probe {k} has no result"))?;
                Ok(s.baseline.mean - s.swapped.mean)
            })
            .collect()
    }

    fn outcome(&self, engine: &Engine, job: &AuditJob) -> Result<AuditOutcome> {
        match self {
            Prober::Incremental(plan) => {
                let feed = Feed {
                    data: job.data,
                    input: job.input,
                    batch: job.input.batch.unwrap_or(job.batch.max(1)),
                    threshold: job.threshold,
                    output: job.output,
                    per_image: job.per_image,
                };
                let tally = plan.run(job, &feed, job.cache_mb, &crate::audit::work_bar::WorkBar::hidden())?;
                let n = job.data.n();
                Ok(tally.finish(&[], vec![n], job.scoring.level(n), job.metric))
            }
            Prober::Full(strategy) => Ok(crate::audit::run(engine, &AuditJob { strategy: *strategy, ..*job })?.0),
        }
    }
}
