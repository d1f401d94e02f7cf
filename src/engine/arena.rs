//! Memory arenas shared by every session of the environment. Sessions opt in with
//! `session.use_env_allocators`: dozens of sessions (one per swap region) then draw on one
//! arena per device instead of each growing its own and keeping its peak forever. On a GPU
//! that is the difference between fitting and not: 93 region sessions of a ResNet-34 UNet at
//! 16 images of 256x256 each kept arenas of up to a few GiB and ran an H200 (141 GiB) out of
//! memory, where one shared arena needs one region's working memory plus the cache.

use anyhow::{anyhow, Result};
use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
use ort::AsPointer;

/// Register one CPU arena allocator on the environment.
pub(super) fn share_cpu_arena(env: &ort::environment::Environment) -> Result<()> {
    let info = MemoryInfo::new(AllocationDevice::CPU, 0, AllocatorType::Arena, MemoryType::Default)
        .map_err(|e| anyhow!("{e}"))?;
    // SAFETY: both pointers are valid for the call; a null arena config means defaults.
    let status = unsafe { (ort::api().CreateAndRegisterAllocator)(env.ptr().cast_mut(), info.ptr(), std::ptr::null()) };
    if !status.0.is_null() {
        // SAFETY: a non-null status is ours to release.
        unsafe { (ort::api().ReleaseStatus)(status.0) };
        anyhow::bail!("ONNX Runtime refused to register a shared CPU allocator");
    }
    Ok(())
}

/// Register one CUDA arena (GPU 0) on the environment. It grows in steps that double up to
/// 1 GiB and then stay at 1 GiB (ONNX Runtime's defaults, set explicitly: the CUDA branch of
/// `CreateAndRegisterAllocatorV2` reads the config without checking it for null; a step the
/// GPU cannot give is retried smaller): at most 1 GiB beyond what is asked, and a few dozen
/// device allocations for tens of GiB of cache instead of one per cached tensor. (Run 3 on
/// an H200 grew by exactly what was asked: ~3,000 allocations while its baseline pass filled
/// 43 GiB in 6.3 s against a 0.84 s forward pass; the steps are not yet measured.) When ONNX
/// Runtime refuses, sessions keep their own arenas (the numbers are the same; large caches
/// may not fit): said on stderr unless quiet.
pub(super) fn share_cuda_arena(env: &ort::environment::Environment, quiet: bool) {
    if let Err(e) = register_cuda_arena(env) {
        if !quiet {
            eprintln!("note: no shared GPU memory arena ({e}); each session keeps its own");
        }
    }
}

fn register_cuda_arena(env: &ort::environment::Environment) -> Result<()> {
    let info = MemoryInfo::new(AllocationDevice::CUDA, 0, AllocatorType::Arena, MemoryType::Default)
        .map_err(|e| anyhow!("{e}"))?;
    // arena_extend_strategy 0 = kNextPowerOfTwo, its steps capped at 1 GiB.
    let keys = [c"arena_extend_strategy".as_ptr(), c"max_power_of_two_extend_bytes".as_ptr()];
    let values = [0usize, 1 << 30];
    let mut cfg: *mut ort::sys::OrtArenaCfg = std::ptr::null_mut();
    // SAFETY: keys and values hold two valid entries each; `cfg` receives a config released
    // below.
    let status = unsafe { (ort::api().CreateArenaCfgV2)(keys.as_ptr(), values.as_ptr(), keys.len(), &mut cfg) };
    check(status, "CreateArenaCfgV2")?;
    // SAFETY: env, info and cfg are valid (the CUDA branch dereferences cfg: never null
    // here); no provider options (null arrays, zero keys).
    let status = unsafe {
        (ort::api().CreateAndRegisterAllocatorV2)(
            env.ptr().cast_mut(),
            c"CUDAExecutionProvider".as_ptr(),
            info.ptr(),
            cfg,
            std::ptr::null(),
            std::ptr::null(),
            0,
        )
    };
    // SAFETY: the config was created above; ONNX Runtime copied what it needs from it.
    unsafe { (ort::api().ReleaseArenaCfg)(cfg) };
    check(status, "CreateAndRegisterAllocatorV2")
}

/// Turn an ONNX Runtime status into an error with its message, releasing it.
fn check(status: ort::sys::OrtStatusPtr, call: &str) -> Result<()> {
    if status.0.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null status is ours; its message lives until it is released.
    let msg = unsafe {
        let m = (ort::api().GetErrorMessage)(status.0);
        let text = if m.is_null() { String::new() } else { std::ffi::CStr::from_ptr(m).to_string_lossy().into_owned() };
        (ort::api().ReleaseStatus)(status.0);
        text
    };
    Err(anyhow!("{call}: {msg}"))
}
