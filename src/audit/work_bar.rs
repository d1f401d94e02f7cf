//! The audit's progress bar, in image forwards: the baseline's and each swap's images count
//! as they are run (a region's swaps when the region ends, a naive swap when its pass ends),
//! so a long exact audit moves all along instead of sitting at 0 until its round ends. An
//! adaptive round that decides swaps takes their remaining images off the total.
//!
//! Off a terminal (a CI log, `2> file`) the bar is hidden, and a plain line says where the
//! audit is every [`LOG_EVERY`] (`REUSE_AUDIT_PROGRESS_SECS` overrides it; 0: at every
//! step), so a long audit in a log does not look stuck; short audits print none.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::error::UserError;

/// How often the plain progress line is printed off a terminal.
pub const LOG_EVERY: Duration = Duration::from_secs(30);

/// A progress bar over the image forwards an audit still has to run.
pub struct WorkBar {
    bar: ProgressBar,
    /// Images in the set.
    n: usize,
    /// Off a terminal: how often a plain line is printed, when the bar started and when the
    /// last line was printed (or the bar started).
    log: Option<(Duration, Instant, Mutex<Instant>)>,
}

/// The plain line's interval: `REUSE_AUDIT_PROGRESS_SECS` (0 to 86400 seconds), else [`LOG_EVERY`].
pub fn log_every() -> Result<Duration, UserError> {
    Ok(crate::engine::switches::count("REUSE_AUDIT_PROGRESS_SECS", 0, 86_400)?
        .map_or(LOG_EVERY, |s| Duration::from_secs(s as u64)))
}

impl WorkBar {
    /// A bar for `n` images and `swaps` swaps to compute (hidden when `quiet`, or when stderr
    /// is not a terminal).
    pub fn new(n: usize, swaps: usize, quiet: bool) -> WorkBar {
        let len = (n * (swaps + 1)) as u64;
        let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(len) };
        bar.set_length(len);
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} {pos}/{len} image forwards [{bar:30}] {elapsed} (ETA {eta}) {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        WorkBar { bar, n, log: None }
    }

    /// The same bar, which off a terminal (and unless `quiet`) prints a plain line every `every`.
    pub fn logged(n: usize, swaps: usize, quiet: bool, every: Duration) -> WorkBar {
        let mut w = WorkBar::new(n, swaps, quiet);
        if !quiet && !std::io::stderr().is_terminal() {
            w.log = Some((every, Instant::now(), Mutex::new(Instant::now())));
        }
        w
    }

    /// A bar that shows nothing (work inside another step, e.g. a budget search's probe).
    pub fn hidden() -> WorkBar {
        WorkBar::new(0, 0, true)
    }

    /// `images` image forwards were run (or counted from a journal).
    pub fn ran(&self, images: usize) {
        self.bar.inc(images as u64);
        let Some((every, started, last)) = &self.log else { return };
        let Ok(mut last) = last.lock() else { return };
        if last.elapsed() >= *every {
            *last = Instant::now();
            let (done, total) = self.counts();
            let elapsed = started.elapsed().as_secs();
            eprintln!(
                "progress: {done}/{total} image forwards ({:.0}%), {}m{:02}s elapsed",
                100.0 * done as f64 / total.max(1) as f64,
                elapsed / 60,
                elapsed % 60
            );
        }
    }

    /// Say what runs now (a swap's layer, a chunk).
    pub fn say(&self, what: String) {
        self.bar.set_message(what);
    }

    /// A round ended at image `end` with `open` swaps still to run on the images after it:
    /// what is left is their images and the baseline's.
    pub fn round_closed(&self, end: usize, open: usize) {
        let left = self.n.saturating_sub(end) * (open + 1);
        self.bar.set_length(self.bar.position() + left as u64);
    }

    /// Done: clear the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// Image forwards counted so far and the total now expected.
    pub fn counts(&self) -> (u64, u64) {
        (self.bar.position(), self.bar.length().unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::WorkBar;

    #[test]
    fn an_exact_audit_moves_by_images_and_ends_full() {
        // 10 images, 3 swaps, chunks of 4/4/2: baseline then each swap per chunk.
        let w = WorkBar::new(10, 3, true);
        assert_eq!(w.counts(), (0, 40));
        for chunk in [4, 4, 2] {
            w.ran(chunk);
            for _ in 0..3 {
                w.ran(chunk);
            }
        }
        w.round_closed(10, 0);
        assert_eq!(w.counts(), (40, 40));
    }

    #[test]
    fn an_adaptive_round_that_decides_swaps_takes_their_images_off() {
        // 48 images, 5 swaps; round 1 ends at 32 with 2 still open: 32 x 6 run, then 16 x 3 left.
        let w = WorkBar::new(48, 5, true);
        w.ran(32 * 6);
        w.round_closed(32, 2);
        assert_eq!(w.counts(), (192, 192 + 48));
        w.ran(16 * 3);
        w.round_closed(48, 0);
        assert_eq!(w.counts(), (240, 240));
    }
}
