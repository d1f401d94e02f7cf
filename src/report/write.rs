//! The one place that writes report files. A report folder is published whole: every file
//! is written into a fresh, uniquely named temporary folder beside `--out`, then that folder
//! replaces `--out` with one rename (an atomic exchange on Linux). A reader, a failure or a
//! `kill -9` at any moment sees the previous report or the new one, never a mix, and no
//! half-written file; two runs on the same `--out` take turns (a lock on the parent folder).
//!
//! Entries of `--out` that this tool did not write (a screenshot beside a report, a
//! subfolder) are carried into the new folder as hard links; the tool's own output names
//! ([`OWNED`]) not written this time are dropped, so a folder never holds two runs' files.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::error::UserError;

/// Top-level names the tool writes into an output folder (reports, matrices, reuse plans,
/// shard results). Those not rewritten by a run are stale and are not carried over.
pub const OWNED: [&str; 14] = [
    "report.json",
    "report.csv",
    "report.html",
    "report.md",
    "figures",
    "matrix.csv",
    "summary.csv",
    "matrix.svg",
    "matrix.html",
    "plan.json",
    "reused.safetensors",
    "grafted.onnx",
    "grafted.onnx.data",
    "shard.journal",
];

/// Write `(relative path, bytes)` pairs as the new contents of `dir`, published at once.
/// Returns the final paths of the files written, in order.
pub fn write_all(out: &Path, files: &[(String, Vec<u8>)]) -> Result<Vec<PathBuf>> {
    let dir = resolve(out)?;
    let (parent, name) = split(&dir)?;
    let _lock = lock(&parent)?;
    sweep(&parent, &name, &dir)?;
    check_existing(&dir, files)?;
    let tmp = fresh_sibling(&parent, &name, "tmp")?;
    let staged = stage(&tmp, &dir, files).and_then(|()| publish(&tmp, &dir, &parent, &name));
    if let Err(e) = staged {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    Ok(files.iter().map(|(n, _)| out.join(n)).collect())
}

fn bad_out(dir: &Path, reason: impl Into<String>) -> anyhow::Error {
    UserError::BadFlag { flag: "--out", reason: format!("{}: {}", dir.display(), reason.into()) }.into()
}

/// Refuse, before any work and without creating anything, an `--out` that [`write_all`]
/// could not publish: a file (or anything but a folder) of that name, the current folder
/// or one holding it (the report folder is replaced as a whole), or a path without a
/// folder name. An audit that found this only at the end had computed every swap first.
pub fn check_out(dir: &Path) -> Result<()> {
    if dir.exists() {
        if !dir.is_dir() {
            return Err(bad_out(dir, "exists and is not a folder"));
        }
        let real = dir.canonicalize().with_context(|| format!("resolving {}", dir.display()))?;
        let cwd = std::env::current_dir().ok().and_then(|c| c.canonicalize().ok());
        if cwd.is_some_and(|c| c.starts_with(&real)) {
            return Err(bad_out(
                dir,
                "is the current folder (or holds it): a report folder is replaced as a whole, so name it from outside",
            ));
        }
    } else if dir.file_name().is_none() {
        return Err(bad_out(dir, "has no folder name"));
    }
    Ok(())
}

/// Refuse, before any work, an `--out` (`flag`) that holds `input`, a file the command reads,
/// under one of the names the tool owns ([`OWNED`]): publishing the folder would drop it
/// (`plan --report DIR/report.json --out DIR` deleted the report it was made from; `merge
/// DIR ... --out DIR` the shard's journal). `what` says what the input is.
pub fn check_out_spares(dir: &Path, flag: &'static str, input: &Path, what: &str) -> Result<()> {
    let (Ok(out), Some(name)) = (dir.canonicalize(), input.file_name().and_then(|n| n.to_str())) else {
        return Ok(());
    };
    let folder = input.canonicalize().ok().and_then(|p| p.parent().map(Path::to_path_buf));
    if folder.as_deref() == Some(out.as_path()) && OWNED.contains(&name) {
        return Err(UserError::BadFlag {
            flag,
            reason: format!(
                "{} holds {what} {}, which publishing the folder would delete ({name} is one of the names the \
                 tool writes there); give another folder",
                dir.display(),
                input.display()
            ),
        }
        .into());
    }
    Ok(())
}

/// The absolute folder to publish: symlinks resolved where it exists, its parent created.
fn resolve(dir: &Path) -> Result<PathBuf> {
    check_out(dir)?;
    if dir.exists() {
        return dir.canonicalize().with_context(|| format!("resolving {}", dir.display()));
    }
    let name = dir.file_name().ok_or_else(|| bad_out(dir, "has no folder name"))?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).with_context(|| format!("creating output folder {}", parent.display()))?;
    let parent = parent.canonicalize().with_context(|| format!("resolving {}", parent.display()))?;
    Ok(parent.join(name))
}

fn split(dir: &Path) -> Result<(PathBuf, String)> {
    let parent = dir.parent().ok_or_else(|| bad_out(dir, "is the root folder"))?.to_path_buf();
    let name = dir.file_name().and_then(|n| n.to_str()).ok_or_else(|| bad_out(dir, "has no UTF-8 folder name"))?;
    Ok((parent, name.to_string()))
}

/// An exclusive lock on the parent folder, held until dropped: writers of the same folder
/// take turns, so neither sweeps the other's temporary folder.
fn lock(parent: &Path) -> Result<fs::File> {
    let f = fs::File::open(parent).with_context(|| format!("opening {} to lock it", parent.display()))?;
    f.lock().with_context(|| format!("locking {}", parent.display()))?;
    Ok(f)
}

/// Remove what an earlier, killed run left beside `dir` (the lock is held, so nobody is
/// using it). A previous report parked under an `old` name while `dir` is missing (killed
/// between the two renames of the portable fallback) is put back first.
fn sweep(parent: &Path, name: &str, dir: &Path) -> Result<()> {
    let prefix = format!(".{name}.");
    let mut stale: Vec<PathBuf> = Vec::new();
    for entry in fs::read_dir(parent).with_context(|| format!("listing {}", parent.display()))? {
        let entry = entry?;
        let n = entry.file_name();
        let Some(rest) = n.to_str().and_then(|n| n.strip_prefix(&prefix)) else { continue };
        if rest.starts_with("tmp-") || rest.starts_with("old-") {
            stale.push(entry.path());
        }
    }
    stale.sort();
    if !dir.exists() {
        if let Some(old) = stale.iter().rev().find(|p| p.to_string_lossy().contains(&format!("{prefix}old-"))) {
            fs::rename(old, dir).with_context(|| format!("restoring {} from {}", dir.display(), old.display()))?;
        }
    }
    for p in stale.iter().filter(|p| p.exists()) {
        fs::remove_dir_all(p).with_context(|| format!("removing the leftover {}", p.display()))?;
    }
    Ok(())
}

/// Refuse before writing anything when an output name is taken by something of another
/// kind (a folder named `report.json`).
fn check_existing(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    for (rel, _) in files {
        let mut at = dir.to_path_buf();
        let parts: Vec<&str> = rel.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            at.push(part);
            let Ok(meta) = fs::symlink_metadata(&at) else { break };
            let want_dir = i + 1 < parts.len();
            if meta.is_dir() != want_dir {
                let (is, wanted) = if meta.is_dir() { ("a folder", "a file") } else { ("not a folder", "a folder") };
                return Err(bad_out(
                    dir,
                    format!("'{}' is {is}, where the report writes {wanted}; move it away and run again", at.display()),
                ));
            }
        }
    }
    Ok(())
}

/// A new, empty, uniquely named folder `.<name>.<kind>-<pid>-<n>` in `parent`.
fn fresh_sibling(parent: &Path, name: &str, kind: &str) -> Result<PathBuf> {
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    for n in 0..1000u32 {
        let p = parent.join(format!(".{name}.{kind}-{}-{stamp}-{n}", std::process::id()));
        match fs::create_dir(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", p.display())),
        }
    }
    anyhow::bail!("could not create a temporary folder in {}", parent.display())
}

/// Fill `tmp`: the new files (synced), then what `dir` holds that is not the tool's.
fn stage(tmp: &Path, dir: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    for (rel, bytes) in files {
        let dest = tmp.join(rel);
        if let Some(p) = dest.parent() {
            fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
        }
        write_synced(&dest, bytes).with_context(|| format!("writing {}", dir.join(rel).display()))?;
    }
    if dir.is_dir() {
        let written: Vec<&str> = files.iter().filter_map(|(n, _)| n.split('/').next()).collect();
        fs::set_permissions(tmp, fs::metadata(dir)?.permissions())?;
        for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
            let entry = entry?;
            let n = entry.file_name();
            let owned = n.to_str().is_some_and(|n| written.contains(&n) || OWNED.contains(&n));
            if !owned {
                carry(&entry.path(), &tmp.join(&n))?;
            }
        }
    }
    sync_dir(tmp)
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    fs::File::open(dir).and_then(|f| f.sync_all()).with_context(|| format!("syncing {}", dir.display()))?;
    let _ = dir;
    Ok(())
}

/// Bring an entry the tool did not write into the new folder: files as hard links (a copy
/// where links are not possible), symlinks as symlinks, folders entry by entry.
fn carry(from: &Path, to: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(from)?;
    let what = || format!("keeping {} in the new report folder", from.display());
    if meta.is_dir() {
        fs::create_dir(to).with_context(what)?;
        fs::set_permissions(to, meta.permissions()).with_context(what)?;
        for entry in fs::read_dir(from).with_context(what)? {
            let entry = entry?;
            carry(&entry.path(), &to.join(entry.file_name()))?;
        }
        return Ok(());
    }
    #[cfg(unix)]
    if meta.file_type().is_symlink() {
        return std::os::unix::fs::symlink(fs::read_link(from)?, to).with_context(what);
    }
    if fs::hard_link(from, to).is_err() {
        fs::copy(from, to).with_context(what)?;
    }
    Ok(())
}

/// Make `tmp` the folder at `dir`: a plain rename when `dir` does not exist, an atomic
/// exchange where the system has one, else `dir` parked under an `old` name, `tmp` renamed
/// in, the old one removed (a kill in between leaves the old report parked; the next run
/// puts it back).
fn publish(tmp: &Path, dir: &Path, parent: &Path, name: &str) -> Result<()> {
    let ctx = || format!("publishing the report folder {}", dir.display());
    if !dir.exists() {
        fs::rename(tmp, dir).with_context(ctx)?;
        return sync_dir(parent);
    }
    if exchange(tmp, dir) {
        sync_dir(parent)?;
        // The new report is in place; a previous one that cannot be removed now is swept
        // by the next run.
        let _ = fs::remove_dir_all(tmp);
        return Ok(());
    }
    let old = fresh_sibling(parent, name, "old")?;
    fs::remove_dir(&old)?;
    fs::rename(dir, &old).with_context(ctx)?;
    if let Err(e) = fs::rename(tmp, dir) {
        let _ = fs::rename(&old, dir);
        return Err(e).with_context(ctx);
    }
    sync_dir(parent)?;
    let _ = fs::remove_dir_all(&old);
    Ok(())
}

/// Swap two folders atomically (Linux `renameat2(RENAME_EXCHANGE)`); false where the
/// system or file system cannot.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> bool {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let (Ok(a), Ok(b)) = (CString::new(a.as_os_str().as_bytes()), CString::new(b.as_os_str().as_bytes())) else {
        return false;
    };
    // SAFETY: two valid NUL-terminated paths; the call reads them and touches no memory of ours.
    let rc = unsafe { libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), libc::RENAME_EXCHANGE) };
    rc == 0
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> bool {
    false
}
