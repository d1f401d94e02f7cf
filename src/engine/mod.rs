//! ONNX Runtime through `ort` (`load-dynamic`): one environment, sessions built from
//! in-memory models, CPU or CUDA execution provider (never a silent fallback).

mod arena;
mod commit;
pub mod cuda;
pub mod hardware;
mod lazy;
pub mod logging;
pub mod runtime;
pub mod switches;

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use ndarray::ArrayViewD;
use ort::session::Session;

use crate::error::UserError;
pub use lazy::LazyEngine;
pub use logging::{RuntimeFailure, UnusableOutput};

/// `--device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// CPU execution provider.
    Cpu,
    /// CUDA execution provider (from `onnxruntime-gpu`), registered with error-on-failure.
    Cuda,
}

/// The loaded runtime: one per process.
pub struct Engine {
    env: ort::environment::Environment,
    /// Path of the shared library in use.
    pub library: PathBuf,
    /// The execution provider sessions run on: `CPUExecutionProvider` or `CUDAExecutionProvider`.
    pub provider: &'static str,
    device: Device,
    threads: usize,
    /// The CUDA libraries loaded for the CUDA provider, and their versions (CUDA only).
    pub cuda: Option<self::cuda::CudaSetup>,
    /// ONNX Runtime's version, as the loaded library reports it.
    pub version: String,
    device_name: String,
    tf32: bool,
    /// Workers on CUDA (`REUSE_AUDIT_CUDA_WORKERS`, 1 to 8; 1 when unset).
    cuda_workers: usize,
    /// Whether the CUDA provider prefers channels-last kernels (`REUSE_AUDIT_CUDA_NHWC=1`;
    /// off by default: not yet measured, and a different kernel choice changes rounding).
    cuda_nhwc: bool,
    /// How cuDNN picks convolution algorithms on CUDA (`REUSE_AUDIT_CUDNN_SEARCH`; recorded in
    /// the report's `engine.cudnn_conv_search`).
    pub conv_search: self::cuda::conv::ConvSearch,
    /// Threads releasing sessions handed to [`Engine::release`], joined when the engine
    /// drops (before its environment goes).
    releasing: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Engine {
    /// Load ONNX Runtime for a device; `threads` = intra-op threads (0 = all cores).
    pub fn new(device: Device, threads: usize, quiet: bool) -> Result<Engine> {
        let cuda = device == Device::Cuda;
        if cuda && !nvidia_driver_present() {
            return Err(UserError::Runtime(
                "--device cuda: no NVIDIA GPU driver on this machine (no /proc/driver/nvidia/version); use --device cpu".into(),
            )
            .into());
        }
        let library = runtime::locate(cuda, quiet)?;
        // The CUDA and cuDNN libraries the provider needs, found and loaded before it is
        // registered (a missing one is an error naming it).
        let cuda_setup = if cuda { Some(self::cuda::prepare(&library)?) } else { None };
        let threads = clamp_threads(threads, !quiet);
        let cuda_workers = switches::count("REUSE_AUDIT_CUDA_WORKERS", 1, 8)?.unwrap_or(1);
        switches::check()?;
        let cuda_nhwc = switches::switch("REUSE_AUDIT_CUDA_NHWC")?.unwrap_or(false);
        let conv_search = self::cuda::conv::ConvSearch::from_env()?;
        disable_telemetry();
        if cuda {
            pci_bus_device_order();
        }
        // One intra-op pool shared by the sessions of full forward passes (naive, shared):
        // per-session pools would spin against each other. Worker sessions (incremental)
        // run on their caller's thread instead. (The library must be loaded before any
        // other ort call.)
        let builder = ort::init_from(&library)
            .map_err(|e| UserError::Runtime(format!("cannot load ONNX Runtime from {}: {e}", library.display())))?;
        let pool = ort::environment::GlobalThreadPoolOptions::default()
            .with_intra_threads(threads)
            .and_then(|p| p.with_inter_threads(1))
            .map_err(|e| anyhow!("configuring the ONNX Runtime thread pool: {e}"))?;
        // ONNX Runtime's log goes to our logger (silent unless ORT_LOG asks): what it refuses
        // reaches the user once, in our error, without its colour codes.
        let requested = logging::requested_level()?;
        let env = builder
            .with_name("reuse-audit")
            .with_telemetry(false)
            .with_global_thread_pool(pool)
            .with_logger(logging::logger(requested.filter(|_| !quiet)))
            .build()
            .map_err(|e| anyhow!("creating the ONNX Runtime environment: {e}"))?;
        // A custom logger starts at verbose; raise it so ONNX Runtime does not even format
        // the messages nobody will read.
        env.set_log_level(requested.unwrap_or(ort::logging::LogLevel::Fatal));
        arena::share_cpu_arena(&env)?;
        if cuda {
            arena::share_cuda_arena(&env, quiet);
        }
        let provider = if cuda { "CUDAExecutionProvider" } else { "CPUExecutionProvider" };
        let version = runtime::loaded_version(&library).unwrap_or_else(|| runtime::ORT_VERSION.into());
        let device_name = Engine::name_device(device, threads);
        Ok(Engine {
            env,
            library,
            provider,
            device,
            threads,
            cuda: cuda_setup,
            version,
            device_name,
            tf32: false,
            cuda_workers,
            cuda_nhwc,
            conv_search,
            releasing: Default::default(),
        })
    }

    /// The device sessions run on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// What runs the forwards, for reports: the GPU's name on CUDA, else the CPU's model
    /// name with the thread count.
    pub fn device_name(&self) -> String {
        self.device_name.clone()
    }

    fn name_device(device: Device, threads: usize) -> String {
        match device {
            Device::Cuda => hardware::gpu_name().unwrap_or_else(|| "NVIDIA GPU (name not found)".into()),
            Device::Cpu => format!(
                "{} ({} thread{})",
                hardware::cpu_model().unwrap_or_else(|| "CPU".into()),
                threads,
                if threads == 1 { "" } else { "s" }
            ),
        }
    }

    /// Whether the CUDA provider may use TF32 (tensor-core float32 with a 10-bit mantissa)
    /// for convolutions and matrix products (`--tf32`); always false on CPU.
    pub fn tf32(&self) -> bool {
        self.tf32
    }

    /// Whether the CUDA provider prefers channels-last kernels (`REUSE_AUDIT_CUDA_NHWC=1`).
    pub fn cuda_nhwc(&self) -> bool {
        self.cuda_nhwc
    }

    /// Intra-op threads per session.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// How many sessions may run side by side, each on one thread of its own: every core
    /// on CPU (small convolutions scale better across swaps than within one); on CUDA one,
    /// or `REUSE_AUDIT_CUDA_WORKERS` (each worker's sessions run on their own CUDA stream,
    /// so one's host-side work overlaps another's kernels).
    pub fn workers(&self) -> usize {
        if self.device == Device::Cuda {
            self.cuda_workers
        } else {
            self.threads
        }
    }

    /// How many threads build sessions side by side: the workers on CPU; on CUDA, where one
    /// worker runs them, up to 4 (a build is mostly single-threaded host work).
    pub fn build_threads(&self) -> usize {
        if self.device == Device::Cuda {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            self.workers().max(cores.min(4))
        } else {
            self.workers()
        }
    }

    /// Build a session from model bytes. Sessions share the environment's intra-op thread
    /// pool and its CPU arena.
    pub fn session(&self, model: &[u8]) -> Result<Runner> {
        self.build(model, false)
    }

    /// Build a session for one of [`Engine::workers`]: with several workers it runs on the
    /// calling thread alone (no pool), so workers never wait on each other's threads.
    pub fn worker_session(&self, model: &[u8]) -> Result<Runner> {
        self.build(model, self.workers() > 1)
    }

    /// A [`Engine::worker_session`] without ONNX Runtime's graph optimizations, for a run
    /// whose outputs' shapes and types are all it is for (the shape probe: every node output
    /// exposed, one image): a quicker build, and the graph run as written.
    pub fn probe_session(&self, model: &[u8]) -> Result<Runner> {
        self.build_with(model, self.workers() > 1, false)
    }

    /// Drop `sessions` (anything holding [`Runner`]s) on a thread of its own, so that what
    /// comes next need not wait for ONNX Runtime to free them; the engine waits for it
    /// when it drops.
    pub fn release<T: Send + 'static>(&self, sessions: T) {
        let handle = std::thread::spawn(move || {
            let _t = crate::profile::span("session release (thread)");
            drop(sessions);
        });
        match self.releasing.lock() {
            Ok(mut v) => v.push(handle),
            // A poisoned list (a panic elsewhere): wait here instead.
            Err(_) => drop(handle.join()),
        }
    }

    fn build(&self, model: &[u8], single_threaded: bool) -> Result<Runner> {
        self.build_with(model, single_threaded, true)
    }

    fn build_with(&self, model: &[u8], single_threaded: bool, optimize: bool) -> Result<Runner> {
        let _t = crate::profile::span("session build (each, any thread)");
        let mut b = Session::builder(&self.env)
            .map_err(|e| anyhow!("{e}"))?
            .with_config_entry("session.use_env_allocators", "1")
            .map_err(|e| anyhow!("{e}"))?;
        if !optimize {
            b = b
                .with_optimization_level(ort::session::builder::GraphOptimizationLevel::Disable)
                .map_err(|e| anyhow!("{e}"))?;
        }
        if single_threaded {
            b = b.with_independent_thread_pool().map_err(|e| anyhow!("{e}"))?;
            b = b.with_intra_threads(1).map_err(|e| anyhow!("{e}"))?;
            b = b.with_inter_threads(1).map_err(|e| anyhow!("{e}"))?;
        }
        if self.device == Device::Cuda {
            // TF32 off unless asked for: its 10-bit mantissa moves Dice away from the CPU's.
            let cuda = ort::ep::CUDA::default()
                .with_tf32(self.tf32)
                .with_prefer_nhwc(self.cuda_nhwc)
                .with_conv_algorithm_search(self.conv_search.provider_option());
            b = b.with_execution_providers([cuda.build().error_on_failure()]).map_err(|e| {
                UserError::Runtime(format!(
                    "--device cuda: the CUDA execution provider could not be registered ({e}). \
                         It needs an NVIDIA GPU, the CUDA/cuDNN libraries and the onnxruntime-gpu \
                         library; use --device cpu otherwise."
                ))
            })?;
        }
        let session = commit::commit(b, model)?;
        Ok(Runner { session })
    }
}

impl Drop for Engine {
    /// Wait for the sessions being released, which must go before the environment.
    fn drop(&mut self) {
        let handles = match self.releasing.get_mut() {
            Ok(v) => std::mem::take(v),
            Err(poisoned) => std::mem::take(poisoned.into_inner()),
        };
        for h in handles {
            // A panic while freeing leaves nothing to do but go on.
            let _ = h.join();
        }
    }
}

/// `--threads` as the engine uses it: 0 is every core. More threads than cores only adds
/// sessions and contention (each worker builds its own sessions): clamped to the cores, and
/// with `note`, said so on stderr.
fn clamp_threads(threads: usize, note: bool) -> usize {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    match threads {
        0 => cores,
        t if t > cores => {
            if note {
                eprintln!("note: --threads {t} is more than the {cores} core(s) here: using {cores}");
            }
            cores
        }
        t => t,
    }
}

/// No telemetry: Microsoft's builds otherwise keep an event store and a device id under
/// ~/.cache/Microsoft from the moment the environment exists. A user's own setting of the
/// variable is left alone. (Set on the thread that starts a load, before any other thread
/// touches ONNX Runtime.)
fn disable_telemetry() {
    if std::env::var_os("ORT_DISABLE_TELEMETRY").is_none() {
        std::env::set_var("ORT_DISABLE_TELEMETRY", "1");
    }
}

/// CUDA numbers GPUs fastest first unless `CUDA_DEVICE_ORDER=PCI_BUS_ID`, while `nvidia-smi`
/// (asked for the card's name and free memory) numbers them by PCI bus: on a machine with
/// GPUs of different kinds, device 0 (and `CUDA_VISIBLE_DEVICES=1`) meant two different
/// cards. Unless the user chose an order, the bus order is set before CUDA starts, so
/// both number alike. (Set on the thread that loads the engine, before CUDA is touched.)
fn pci_bus_device_order() {
    if let Some(order) = device_order_to_set(std::env::var("CUDA_DEVICE_ORDER").ok().as_deref()) {
        std::env::set_var("CUDA_DEVICE_ORDER", order);
    }
}

/// The `CUDA_DEVICE_ORDER` to set given the current one: the bus order when none is set.
fn device_order_to_set(current: Option<&str>) -> Option<&'static str> {
    current.is_none_or(|c| c.trim().is_empty()).then_some("PCI_BUS_ID")
}

/// Whether an NVIDIA kernel driver is loaded (checked before fetching a GPU runtime).
/// `REUSE_AUDIT_TEST_ASSUME_NVIDIA_DRIVER=1` is a test hook: the tests of what comes after
/// the driver (finding the CUDA build and libraries) run on machines without one.
fn nvidia_driver_present() -> bool {
    std::env::var_os("REUSE_AUDIT_TEST_ASSUME_NVIDIA_DRIVER").is_some_and(|v| v == "1")
        || std::path::Path::new("/proc/driver/nvidia/version").exists()
        || std::path::Path::new("/dev/nvidia0").exists()
}

/// A session ready to run batches.
pub struct Runner {
    session: Session,
}

/// A borrowed input, handed to the runtime without copying.
#[derive(Debug, Clone)]
pub enum View<'a> {
    /// float32 values in standard (C-contiguous) layout, e.g. a batch sliced out of the
    /// validation set.
    F32(ArrayViewD<'a, f32>),
    /// A value a session returned, fed back as it is.
    Value(&'a ort::value::DynValue),
}

impl Runner {
    /// Run with one float input; returns every output as the runtime's own values (kept
    /// without copying, to be fed to other sessions with [`View::Value`]).
    pub fn run_keep(&mut self, name: &str, values: ArrayViewD<'_, f32>) -> Result<Vec<(String, ort::value::DynValue)>> {
        let t = ort::value::TensorRef::from_array_view(values).map_err(|e| anyhow!("input '{name}': {e}"))?;
        let outputs = self
            .session
            .run(vec![(std::borrow::Cow::from(name), ort::session::SessionInputValue::from(t))])
            .map_err(RuntimeFailure::run)?;
        Ok(outputs.into_iter().map(|(n, v)| (n.to_string(), v)).collect())
    }

    /// [`Runner::run_keep`] through an I/O binding: every output but `host_output` stays in
    /// the memory of `keep` (the GPU's, for a CUDA session: the incremental strategy's cache
    /// then never crosses the bus when regions read it), `host_output` comes back in host
    /// memory.
    pub fn run_keep_on(
        &mut self,
        name: &str,
        values: ArrayViewD<'_, f32>,
        host_output: &str,
        keep: Device,
    ) -> Result<Vec<(String, ort::value::DynValue)>> {
        use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
        let info = |device: Device| {
            let d = match device {
                Device::Cpu => AllocationDevice::CPU,
                Device::Cuda => AllocationDevice::CUDA,
            };
            MemoryInfo::new(d, 0, AllocatorType::Device, MemoryType::Default).map_err(|e| anyhow!("{e}"))
        };
        let (host, kept) = (info(Device::Cpu)?, info(keep)?);
        // An owned copy of the batch: ort 2.0.0-rc.15 clones a borrowed tensor bound as an
        // input through a helper session whose lock it already holds (a deadlock).
        let owned = values.as_standard_layout().into_owned();
        let t = ort::value::Tensor::from_array(owned).map_err(|e| anyhow!("input '{name}': {e}"))?;
        let mut binding = self.session.create_binding().map_err(|e| anyhow!("I/O binding: {e}"))?;
        binding.bind_input(name, &t).map_err(|e| anyhow!("binding input '{name}': {e}"))?;
        let names: Vec<String> = self.session.outputs().iter().map(|o| o.name().to_string()).collect();
        for o in &names {
            let at = if o == host_output { &host } else { &kept };
            binding.bind_output_to_device(o.as_str(), at).map_err(|e| anyhow!("binding output '{o}': {e}"))?;
        }
        let outputs = self.session.run_binding(&binding).map_err(RuntimeFailure::run)?;
        Ok(outputs.into_iter().map(|(n, v)| (n.to_string(), v)).collect())
    }

    /// Run with borrowed inputs; returns the shape and element type (ONNX code) of every
    /// tensor output of the session, by name (the values stay where the runtime put them;
    /// sequence and map outputs are left out).
    pub fn run_shapes(&mut self, inputs: &[(&str, View<'_>)]) -> Result<Vec<(String, Vec<usize>, i32)>> {
        let feed = session_inputs(inputs)?;
        let outputs = self.session.run(feed).map_err(RuntimeFailure::run)?;
        let mut out = Vec::with_capacity(outputs.len());
        for (name, value) in &outputs {
            if let ort::value::ValueType::Tensor { ty, shape, .. } = value.dtype() {
                let code = ort::sys::ONNXTensorElementDataType::from(*ty) as i32;
                out.push((name.to_string(), shape.iter().map(|&d| d.max(0) as usize).collect(), code));
            }
        }
        Ok(out)
    }

    /// Run with borrowed inputs and hand the first output (float32) to `f` as a view of
    /// where the runtime left it, without copying.
    pub fn run_views_first<R>(
        &mut self,
        inputs: &[(&str, View<'_>)],
        f: impl FnOnce(ArrayViewD<'_, f32>) -> Result<R>,
    ) -> Result<R> {
        self.run_first(inputs, "float32", f)
    }

    /// [`Runner::run_views_first`] for a first output of element type `T` (`what` names
    /// it in the error when it is another).
    pub fn run_first<T: ort::value::PrimitiveTensorElementType, R>(
        &mut self,
        inputs: &[(&str, View<'_>)],
        what: &str,
        f: impl FnOnce(ArrayViewD<'_, T>) -> Result<R>,
    ) -> Result<R> {
        let outputs = self.session.run(session_inputs(inputs)?).map_err(RuntimeFailure::run)?;
        if outputs.len() == 0 {
            return Err(UnusableOutput("the model has no output".into()).into());
        }
        let view = outputs[0]
            .try_extract_array::<T>()
            .map_err(|e| UnusableOutput(format!("the model's first output is not a {what} tensor: {e}")))?;
        f(view)
    }
}

/// Borrowed inputs as the runtime takes them.
fn session_inputs<'s, 'v: 's>(
    inputs: &'s [(&'s str, View<'v>)],
) -> Result<Vec<(std::borrow::Cow<'s, str>, ort::session::SessionInputValue<'s>)>> {
    let mut feed = Vec::with_capacity(inputs.len());
    for (name, view) in inputs {
        let v: ort::session::SessionInputValue<'_> = match view {
            View::F32(values) => ort::value::TensorRef::from_array_view(values.clone())
                .map_err(|e| anyhow!("input '{name}': {e}"))?
                .into(),
            View::Value(v) => (*v).into(),
        };
        feed.push((std::borrow::Cow::from(*name), v));
    }
    Ok(feed)
}

#[cfg(test)]
mod tests {
    #[test]
    fn cuda_numbers_gpus_by_bus_unless_the_user_chose_an_order() {
        // Regression: CUDA's default (fastest first) and nvidia-smi's (PCI bus) numbering
        // named another card's name and free memory on a machine with mixed GPUs.
        assert_eq!(super::device_order_to_set(None), Some("PCI_BUS_ID"));
        assert_eq!(super::device_order_to_set(Some("")), Some("PCI_BUS_ID"));
        assert_eq!(super::device_order_to_set(Some("FASTEST_FIRST")), None);
        assert_eq!(super::device_order_to_set(Some("PCI_BUS_ID")), None);
    }
}
