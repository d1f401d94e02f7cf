//! The memory a data set will take, held against what the machine has before anything is
//! allocated: a 5 MB `.npz` can declare 2^30 values (4 GiB as held, as much again as fed),
//! and running out of memory aborts the process with no message and no exit code worth
//! reading. What the data needs is worked out from the files' headers; what the machine has
//! is the kernel's `MemAvailable`, lowered to a cgroup's limit (containers), or
//! `REUSE_AUDIT_MEMORY_MB` when set (a cap of one's own; tests use it).

use std::path::Path;

use anyhow::Result;

use crate::error::UserError;

/// The environment variable that sets the memory the data may take, in MiB.
pub const MEMORY_VAR: &str = "REUSE_AUDIT_MEMORY_MB";

/// What the data may take.
#[derive(Debug, Clone, PartialEq)]
pub struct Room {
    /// Bytes.
    pub bytes: u64,
    /// Where the figure comes from, for messages.
    pub source: String,
    /// A cap on all the data holds (`REUSE_AUDIT_MEMORY_MB`), not what is free right now:
    /// what the data already holds counts against it.
    pub cap: bool,
}

/// Bytes the data may take, and where that figure comes from; `None` when nothing says (no
/// `/proc/meminfo`): then nothing is refused.
pub fn available() -> Result<Option<Room>> {
    if let Some(v) = std::env::var_os(MEMORY_VAR) {
        let text = v.to_string_lossy();
        let mb: u64 = text.trim().parse().map_err(|_| UserError::BadFlag {
            flag: MEMORY_VAR,
            reason: format!("'{text}' is not a whole number of MiB"),
        })?;
        return Ok(Some(Room { bytes: mb.saturating_mul(1 << 20), source: format!("{MEMORY_VAR}={mb}"), cap: true }));
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| mem_available_in(&t));
    let cgroup = cgroup_room();
    let room = |bytes, source: &str| Some(Room { bytes, source: source.into(), cap: false });
    let cgroup_source = "the room left under this cgroup's memory limit";
    Ok(match (meminfo, cgroup) {
        (Some(m), Some(c)) if c < m => room(c, cgroup_source),
        (Some(m), _) => room(m, "MemAvailable in /proc/meminfo"),
        (None, Some(c)) => room(c, cgroup_source),
        (None, None) => None,
    })
}

/// `MemAvailable` of a `/proc/meminfo` text, in bytes.
pub fn mem_available_in(meminfo: &str) -> Option<u64> {
    meminfo.lines().find_map(|l| {
        let rest = l.strip_prefix("MemAvailable:")?;
        let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb.saturating_mul(1024))
    })
}

/// Bytes left under this process's cgroup memory limit (v2 `memory.max` less
/// `memory.current`, or v1 `memory.limit_in_bytes` less `memory.usage_in_bytes`); `None`
/// without a limit.
fn cgroup_room() -> Option<u64> {
    let read = |p: &str| std::fs::read_to_string(p).ok().and_then(|t| t.trim().parse::<u64>().ok());
    let pairs = [
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ];
    pairs.iter().find_map(|(limit, used)| {
        let limit = read(limit).filter(|&l| l < 1 << 60)?;
        Some(limit.saturating_sub(read(used).unwrap_or(0)))
    })
}

/// Bytes in words: `4.0 GiB`, `12.5 MiB`, `900 bytes`.
pub fn human(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    match UNITS.iter().find(|(_, u)| bytes >= *u) {
        Some((name, u)) => format!("{:.1} {name}", bytes as f64 / *u as f64),
        None => format!("{bytes} bytes"),
    }
}

/// Refuse `need` bytes for `what` (read from `path`) when they are more than the machine
/// has ([`available`]), before they are allocated; `held` is what the data holds already
/// (it counts against a cap, and is already out of what is free); `advice` says what to do
/// instead.
pub fn check(need: u64, held: u64, what: &str, path: &Path, advice: &str) -> Result<()> {
    let Some(room) = available()? else { return Ok(()) };
    let have = if room.cap { room.bytes.saturating_sub(held) } else { room.bytes };
    if need <= have {
        return Ok(());
    }
    let source = match room.cap && held > 0 {
        true => format!("{}, less the {} the data holds already", room.source, human(held)),
        false => room.source,
    };
    Err(UserError::BadFile {
        path: path.into(),
        reason: format!(
            "{what} would take about {} ({need} bytes) of memory, more than the {} available ({source}); \
             refused before allocating it: {advice}",
            human(need),
            human(have),
        ),
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_available_in_bytes() {
        let t = "MemTotal:       24000000 kB\nMemFree:          500000 kB\nMemAvailable:   23068672 kB\n";
        assert_eq!(mem_available_in(t), Some(23_068_672 * 1024));
        assert_eq!(mem_available_in("MemTotal: 1 kB\n"), None);
    }

    #[test]
    fn bytes_in_words() {
        assert_eq!(human(900), "900 bytes");
        assert_eq!(human(3 << 19), "1.5 MiB");
        assert_eq!(human(1 << 32), "4.0 GiB");
    }
}
