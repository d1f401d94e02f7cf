//! [`LazyEngine`]: ONNX Runtime loaded on first use, so that bad models, data or flags are
//! reported before the runtime loads; optionally loaded ahead on a thread of its own
//! ([`LazyEngine::preload`]) while the caller reads its models and data.

use std::sync::{Mutex, OnceLock};
use std::thread::JoinHandle;

use anyhow::{anyhow, Result};

use super::{clamp_threads, disable_telemetry, runtime, Device, Engine};

/// An engine loaded on first use (or ahead, see [`LazyEngine::preload`]).
pub struct LazyEngine {
    device: Device,
    threads: usize,
    quiet: bool,
    tf32: bool,
    cell: OnceLock<Engine>,
    /// An engine being loaded ahead; [`LazyEngine::get`] collects it.
    loading: Mutex<Option<JoinHandle<Result<Engine>>>>,
}

impl LazyEngine {
    /// Remember how to load the engine.
    pub fn new(device: Device, threads: usize, quiet: bool) -> Self {
        LazyEngine { device, threads, quiet, tf32: false, cell: OnceLock::new(), loading: Mutex::new(None) }
    }

    /// Allow TF32 on CUDA (`--tf32`; no effect on CPU).
    pub fn with_tf32(mut self, on: bool) -> Self {
        self.tf32 = on;
        self
    }

    /// Start loading the engine on a thread of its own, to overlap the caller's reading of
    /// models and data (about 20 ms of loading the library and creating the environment).
    /// Only where that costs nothing else: on the CPU, with the library already on disk
    /// (none to fetch, no Python to ask). What goes wrong is reported by [`LazyEngine::get`],
    /// as without it; an engine never asked for is waited for and dropped with `self`.
    pub fn preload(&self) {
        if self.device != Device::Cpu || self.cell.get().is_some() || runtime::local_library(false).is_none() {
            return;
        }
        let Ok(mut loading) = self.loading.lock() else { return };
        if loading.is_some() {
            return;
        }
        disable_telemetry();
        // Clamped here without a word: the note on `--threads` comes when the engine is
        // taken ([`LazyEngine::get`]), where it came without the preload, and never from an
        // audit that fails before it needs the engine.
        let (device, threads, quiet) = (self.device, clamp_threads(self.threads, false), self.quiet);
        *loading = Some(std::thread::spawn(move || Engine::new(device, threads, quiet)));
    }

    /// The engine, loaded now if needed.
    pub fn get(&self) -> Result<&Engine> {
        if let Some(e) = self.cell.get() {
            return Ok(e);
        }
        let t = crate::profile::span("engine load (ONNX Runtime)");
        let ahead = self.loading.lock().ok().and_then(|mut l| l.take());
        let loaded = match ahead {
            Some(h) => {
                clamp_threads(self.threads, !self.quiet);
                h.join().map_err(|_| anyhow!("loading ONNX Runtime panicked"))?
            }
            None => Engine::new(self.device, self.threads, self.quiet),
        };
        let mut e = loaded?;
        e.tf32 = self.tf32 && self.device == Device::Cuda;
        drop(t);
        Ok(self.cell.get_or_init(|| e))
    }
}

impl Drop for LazyEngine {
    /// An engine loaded ahead and never asked for: wait for it, so that the process never
    /// exits while ONNX Runtime is starting.
    fn drop(&mut self) {
        let ahead = match self.loading.get_mut() {
            Ok(l) => l.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(h) = ahead {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_engine_loaded_ahead_is_the_one_get_returns_and_one_never_asked_for_is_dropped() {
        let lazy = LazyEngine::new(Device::Cpu, 1, true);
        lazy.preload();
        lazy.preload();
        let e = lazy.get().expect("the CPU runtime");
        assert_eq!(e.provider, "CPUExecutionProvider");
        assert!(lazy.loading.lock().unwrap().is_none());
        let unused = LazyEngine::new(Device::Cpu, 1, true);
        unused.preload();
        drop(unused);
        // CUDA is never loaded ahead (its libraries are looked for with messages of their own).
        let cuda = LazyEngine::new(Device::Cuda, 1, true);
        cuda.preload();
        assert!(cuda.loading.lock().unwrap().is_none());
    }
}
