//! Where an audit's time goes: the wall time of its baseline forward passes (with the
//! incremental strategy, the runs that also fill the activation cache) and of its swap
//! runs, and how many image forwards this run put through the model. Only what this
//! process computed counts: results taken from a journal cost nothing here.

use std::time::{Duration, Instant};

/// Time and work of one run of the audit's forward passes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RunClock {
    /// Wall time of the baseline's forward passes.
    pub baseline: Duration,
    /// Wall time of the swaps' forward passes (all workers together: wall, not summed).
    pub swaps: Duration,
    /// Images put through the model (or a swap's downstream region) by this run: the
    /// baseline's and every swap's computed here, as `AuditOutcome::image_forwards` counts them.
    pub image_forwards: usize,
}

impl RunClock {
    /// Time `f` and add it to the baseline's wall time.
    pub fn baseline<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let t = Instant::now();
        let r = f();
        self.baseline += t.elapsed();
        r
    }

    /// Time `f` and add it to the swaps' wall time.
    pub fn swaps<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let t = Instant::now();
        let r = f();
        self.swaps += t.elapsed();
        r
    }
}
