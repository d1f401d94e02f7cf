//! Opt-in timing of an audit's phases: with `REUSE_AUDIT_PROFILE=1` in the environment,
//! `reuse-audit audit` prints on stderr, at the end, how long each phase took (loading,
//! the probe, session builds, the baseline, the swaps, the report). Off, a span costs one
//! relaxed load. Phases may nest and may run on several threads: each line is the sum of
//! its spans and says how many there were, so a line of per-thread work (session builds,
//! region runs) can exceed the wall time of the phase that holds it. `from` and `to` place a
//! phase on the process's timeline: when its first span started and its last one ended.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// 0 = not yet read, 1 = off, 2 = on.
static STATE: AtomicU8 = AtomicU8::new(0);
static START: OnceLock<Instant> = OnceLock::new();
/// One phase: its name, spans, wall time and CPU time of the spanning threads.
struct Entry {
    name: &'static str,
    spans: usize,
    wall: Duration,
    cpu: Duration,
    /// When its first span started and its last one ended, from the clock's start.
    from: Duration,
    to: Duration,
}

/// The phases in the order they were first seen.
static TABLE: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

/// Whether `REUSE_AUDIT_PROFILE` asks for timings (anything but empty or `0`). The first
/// call also starts the clock of the "total" line.
pub fn enabled() -> bool {
    match STATE.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let on = std::env::var("REUSE_AUDIT_PROFILE").is_ok_and(|v| !v.is_empty() && v != "0");
            START.get_or_init(Instant::now);
            STATE.store(if on { 2 } else { 1 }, Ordering::Relaxed);
            on
        }
    }
}

/// Times a phase from now until dropped.
#[must_use = "a span times until it is dropped"]
pub struct Span {
    name: &'static str,
    t0: Option<(Instant, Duration)>,
}

/// Start timing `name` (nothing when profiling is off).
pub fn span(name: &'static str) -> Span {
    Span { name, t0: enabled().then(|| (Instant::now(), thread_cpu())) }
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some((t0, c0)) = self.t0 {
            let origin = START.get().copied().unwrap_or(t0);
            let from = t0.saturating_duration_since(origin);
            add_at(self.name, t0.elapsed(), thread_cpu().saturating_sub(c0), from);
        }
    }
}

/// CPU time of the calling thread: unlike wall time, it does not grow when other
/// processes take the cores, so it compares runs on a busy machine.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer; the clock id is a constant the kernel knows.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Add one span of `wall` (and `cpu` of its thread) to phase `name`.
pub fn add(name: &'static str, wall: Duration, cpu: Duration) {
    let from = START.get().map_or(Duration::ZERO, |t0| t0.elapsed().saturating_sub(wall));
    add_at(name, wall, cpu, from);
}

/// [`add`] for a span that started `from` after the clock's start.
fn add_at(name: &'static str, wall: Duration, cpu: Duration, from: Duration) {
    let to = from + wall;
    if let Ok(mut t) = TABLE.lock() {
        match t.iter_mut().find(|e| e.name == name) {
            Some(e) => {
                e.spans += 1;
                e.wall += wall;
                e.cpu += cpu;
                e.from = e.from.min(from);
                e.to = e.to.max(to);
            }
            None => t.push(Entry { name, spans: 1, wall, cpu, from, to }),
        }
    }
}

/// The table so far, one phase a line (empty when profiling is off).
pub fn table() -> String {
    if !enabled() {
        return String::new();
    }
    let mut out = format!(
        "profile (REUSE_AUDIT_PROFILE; seconds summed over spans and threads; cpu = the spanning thread's own; from/to: first start and last end)\n  {:<34} {:>5} {:>8} {:>8} {:>7} {:>7}\n",
        "phase", "spans", "wall", "cpu", "from", "to"
    );
    if let Ok(t) = TABLE.lock() {
        for e in t.iter() {
            let (w, c) = (e.wall.as_secs_f64(), e.cpu.as_secs_f64());
            let (from, to) = (e.from.as_secs_f64(), e.to.as_secs_f64());
            out.push_str(&format!("  {:<34} {:>5} {w:>8.3} {c:>8.3} {from:>7.3} {to:>7.3}\n", e.name, e.spans));
        }
    }
    if let Some(t0) = START.get() {
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `usage` is a valid out-pointer.
        let cpu = match unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } {
            0 => {
                let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
                secs(usage.ru_utime) + secs(usage.ru_stime)
            }
            _ => f64::NAN,
        };
        out.push_str(&format!(
            "  {:<34} {:>5} {:>8.3} {cpu:>8.3}\n",
            "total (cpu: whole process)",
            "",
            t0.elapsed().as_secs_f64()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_add_up_per_phase() {
        add("test phase", Duration::from_millis(30), Duration::from_millis(20));
        add("test phase", Duration::from_millis(12), Duration::from_millis(2));
        let t = TABLE.lock().unwrap();
        let e = t.iter().find(|e| e.name == "test phase").unwrap();
        assert_eq!((e.spans, e.wall, e.cpu), (2, Duration::from_millis(42), Duration::from_millis(22)));
        assert!(e.from <= e.to);
    }
}
