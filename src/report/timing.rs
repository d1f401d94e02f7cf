//! `timing` in report.json: how long an audit took and how fast it put images through the
//! model. The one part of a report that differs between two runs on the same inputs: it is
//! written to report.json only (CSV, Markdown, HTML and the table stay byte-identical), and
//! `--no-timing` leaves it out.

use serde::{Deserialize, Serialize};

use crate::audit::clock::RunClock;

/// What the timing covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimingScope {
    /// One audit run from start to report.
    Run,
    /// A run that resumed a journal: the swaps taken from it (computed by the killed run)
    /// are not in it.
    Resumed,
    /// `merge`: the shards' runs added up (machine time: shards that ran side by side
    /// took less wall time); the merge itself computes nothing.
    Shards,
}

/// An audit's timing (seconds rounded to milliseconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// What the numbers cover: `run`, `resumed` or `shards` (summed over the shards).
    pub scope: TimingScope,
    /// Wall time from the audit's start (models and data loaded, ONNX Runtime loaded,
    /// sessions built) until its report was ready, before files are written.
    pub total_s: f64,
    /// Wall time of the baseline's forward passes (incremental: those that also cache the
    /// activations the swaps start from).
    pub baseline_s: f64,
    /// Wall time of the swaps' forward passes (workers side by side count once).
    pub swaps_s: f64,
    /// Images put through the model by this run: the baseline's and every swap's computed
    /// here (a swap's incremental run over its downstream region counts one per image), as
    /// `adaptive.image_forwards` counts them.
    pub image_forwards: usize,
    /// image_forwards / (baseline_s + swaps_s) (null when no time was measured).
    pub image_forwards_per_s: Option<f64>,
    /// What ran the forwards: the GPU's name on CUDA, else the CPU's model name, with the
    /// thread count.
    pub device: String,
}

/// Seconds rounded to milliseconds.
fn ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

impl Timing {
    /// The timing of one run: `total` seconds overall, its forward passes' `clock`.
    pub fn of_run(scope: TimingScope, total: f64, clock: &RunClock, device: String) -> Timing {
        Timing::new(scope, total, clock.baseline.as_secs_f64(), clock.swaps.as_secs_f64(), clock.image_forwards, device)
    }

    fn new(scope: TimingScope, total: f64, baseline: f64, swaps: f64, forwards: usize, device: String) -> Timing {
        let (baseline_s, swaps_s) = (ms(baseline), ms(swaps));
        let busy = baseline_s + swaps_s;
        let rate = (busy > 0.0).then(|| (forwards as f64 / busy * 10.0).round() / 10.0);
        Timing {
            scope,
            total_s: ms(total),
            baseline_s,
            swaps_s,
            image_forwards: forwards,
            image_forwards_per_s: rate,
            device,
        }
    }

    /// The shards' timings added up (`scope` shards); the devices, when they differ, joined
    /// with "; ". `None` for no timing at all.
    pub fn sum(parts: &[Timing]) -> Option<Timing> {
        let first = parts.first()?;
        let mut devices: Vec<&str> = vec![first.device.as_str()];
        for p in parts {
            if !devices.contains(&p.device.as_str()) {
                devices.push(&p.device);
            }
        }
        let total = |f: fn(&Timing) -> f64| parts.iter().map(f).sum::<f64>();
        Some(Timing::new(
            TimingScope::Shards,
            total(|t| t.total_s),
            total(|t| t.baseline_s),
            total(|t| t.swaps_s),
            parts.iter().map(|t| t.image_forwards).sum(),
            devices.join("; "),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn seconds_round_to_milliseconds_and_the_rate_is_forwards_per_busy_second() {
        let clock = RunClock {
            baseline: Duration::from_micros(250_400),
            swaps: Duration::from_micros(1_749_600),
            image_forwards: 48,
        };
        let t = Timing::of_run(TimingScope::Run, 2.64159, &clock, "cpu".into());
        assert_eq!((t.total_s, t.baseline_s, t.swaps_s), (2.642, 0.25, 1.75));
        // 48 images in 0.25 + 1.75 = 2 s.
        assert_eq!(t.image_forwards_per_s, Some(24.0));
        let idle = Timing::of_run(TimingScope::Resumed, 0.5, &RunClock::default(), "cpu".into());
        assert_eq!(idle.image_forwards_per_s, None, "no forwards timed: no rate");
    }

    #[test]
    fn shards_add_up() {
        let a = Timing::new(TimingScope::Run, 3.0, 1.0, 1.0, 10, "cpu A".into());
        let b = Timing::new(TimingScope::Run, 5.0, 1.0, 2.0, 50, "cpu B".into());
        let s = Timing::sum(&[a.clone(), b, a]).unwrap();
        assert_eq!(s.scope, TimingScope::Shards);
        assert_eq!((s.total_s, s.baseline_s, s.swaps_s, s.image_forwards), (11.0, 3.0, 4.0, 70));
        assert_eq!(s.image_forwards_per_s, Some(10.0), "70 forwards in 7 busy seconds");
        assert_eq!(s.device, "cpu A; cpu B");
        assert!(Timing::sum(&[]).is_none());
    }
}
