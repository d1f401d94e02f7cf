//! Journal files on disk: checksummed lines (`<sha256 hex> <JSON>\n`), each appended with
//! one write and synced; an exclusive lock so two runs never write one journal; on reading,
//! a torn last line (no newline: the process died mid-write) is dropped, and a bad line
//! anywhere else is refused as corruption.
//!
//! For tests, `REUSE_AUDIT_TEST_KILL_AFTER_RECORDS=N` makes a writer kill its own process
//! (SIGKILL) right after the N-th record (the baseline is record 1), and `N+torn` writes half
//! of record N+1 before the kill: a real `kill -9` at a known point.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Header, Known, Record, FORMAT, VERSION};
use crate::error::bad_file;
use crate::model::hex;

/// A journal read back.
#[derive(Debug)]
pub struct Loaded<B, S> {
    /// Its first line.
    pub header: Header,
    /// Its records.
    pub known: Known<B, S>,
    /// Bytes of the intact lines: what a resumed run keeps.
    pub intact: u64,
    /// A torn last line that was dropped (its first bytes), if any.
    pub torn: Option<String>,
}

/// One line of the file for this JSON text.
pub fn line(json: &str) -> String {
    format!("{} {json}\n", hex(&Sha256::digest(json.as_bytes())))
}

/// The JSON of a line (without its newline) whose checksum holds.
fn checked(line: &str) -> Option<&str> {
    let (sum, json) = line.split_once(' ')?;
    (sum.len() == 64 && hex(&Sha256::digest(json.as_bytes())) == sum).then_some(json)
}

/// Read the journal at `path`; `None` when there is none, or not even its header was
/// written whole.
pub fn read<B: DeserializeOwned, S: DeserializeOwned>(path: &Path) -> Result<Option<Loaded<B, S>>> {
    crate::input::check_regular(path)?;
    match std::fs::read(path) {
        Ok(bytes) => parse(&bytes, path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading the journal {}", path.display())),
    }
}

/// Parse a journal's bytes (`path` names it in messages).
pub fn parse<B: DeserializeOwned, S: DeserializeOwned>(bytes: &[u8], path: &Path) -> Result<Option<Loaded<B, S>>> {
    let corrupt = |n: usize, why: String| {
        bad_file(path, format!("journal line {n} {why}: the journal is damaged; delete it to start the audit over"))
    };
    let (complete, tail) = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(end) => bytes.split_at(end + 1),
        None => (&bytes[..0], bytes),
    };
    let torn = (!tail.is_empty()).then(|| String::from_utf8_lossy(&tail[..tail.len().min(60)]).into_owned());
    let text = std::str::from_utf8(complete).map_err(|e| {
        // The 1-based line holding the first byte that is not UTF-8.
        let line = 1 + complete[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count();
        corrupt(line, format!("is not UTF-8 text ({e})"))
    })?;
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let Some((_, first)) = lines.next() else { return Ok(None) };
    let json = checked(first).ok_or_else(|| corrupt(1, "(the header) fails its checksum".into()))?;
    let header: Header = serde_json::from_str(json).map_err(|e| {
        bad_file(path, format!("not a journal of this tool (its first line does not read as a {FORMAT} header: {e})"))
    })?;
    if header.journal != FORMAT || header.version != VERSION {
        return Err(bad_file(
            path,
            format!(
                "a journal of format '{}' v{}; this tool reads '{FORMAT}' v{VERSION}",
                header.journal, header.version
            ),
        ));
    }
    // A header's shard (a file the user hands over) is checked before `merge` lists every shard.
    if let Some(p) = &header.shard {
        let fits = (1..=p.count).contains(&p.index);
        super::shard::check_count(p.count)
            .and_then(|()| {
                if fits {
                    Ok(())
                } else {
                    Err(format!("shard {}/{} is not K/N with 1 <= K <= N", p.index, p.count))
                }
            })
            .map_err(|why| corrupt(1, format!("(the header) is not a shard of an audit: {why}")))?;
    }
    let mut known = Known::default();
    let key_of = |pair: usize| header.swaps.iter().find(|s| s.pair == pair).map(|s| s.key.as_str());
    for (n, l) in lines {
        let json = checked(l).ok_or_else(|| corrupt(n, "fails its checksum".into()))?;
        let record: Record<B, S> =
            serde_json::from_str(json).map_err(|e| corrupt(n, format!("does not read as a record ({e})")))?;
        match record {
            Record::Baseline(b) => {
                if known.baseline.replace(b).is_some() {
                    return Err(corrupt(n, "is a second baseline".into()));
                }
            }
            Record::Swap(s) => {
                if key_of(s.pair) != Some(s.key.as_str()) {
                    return Err(corrupt(n, format!("is swap {} '{}', which the header does not list", s.pair, s.key)));
                }
                if header.shard.as_ref().is_some_and(|p| !p.pairs.contains(&s.pair)) {
                    return Err(corrupt(n, format!("is swap '{}', which is not this shard's", s.key)));
                }
                if known.swaps.insert(s.pair, s.result).is_some() {
                    return Err(corrupt(n, format!("records swap '{}' a second time", s.key)));
                }
            }
            Record::Timing(t) => known.timings.push(t),
            Record::Chunk(c) => {
                let fits = |v: &[u32]| v.len() == c.values();
                if !fits(&c.baseline) || !c.swaps.iter().all(|(_, v)| fits(v)) {
                    return Err(corrupt(n, format!("is a chunk of {} image(s) whose counts do not fit it", c.images)));
                }
                if let Some((p, _)) = c.swaps.iter().find(|(p, _)| key_of(*p).is_none()) {
                    return Err(corrupt(n, format!("counts swap {p}, which the header does not list")));
                }
                known.chunks.push(c);
            }
        }
    }
    Ok(Some(Loaded { header, known, intact: complete.len() as u64, torn }))
}

/// Appends records to a journal, each line synced before `append` returns. Shared by the
/// audit's workers.
#[derive(Debug)]
pub struct Writer {
    file: Mutex<(File, usize)>,
    path: PathBuf,
    kill: Option<(usize, bool)>,
}

impl Writer {
    /// Open `path` for writing, locked: `Ok(None)` when it does not exist (nothing to resume),
    /// an error when another run holds it. Returns the file and its bytes.
    pub fn open_locked(path: &Path) -> Result<Option<(File, Vec<u8>)>> {
        let mut f = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("opening the journal {}", path.display())),
        };
        lock(&f, path)?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).with_context(|| format!("reading the journal {}", path.display()))?;
        Ok(Some((f, bytes)))
    }

    /// Start a new journal at `path` with `header`; `Ok(None)` when a file is there already.
    pub fn create(path: &Path, header: &Header) -> Result<Option<Writer>> {
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating the folder {}", dir.display()))?;
        }
        let f = match OpenOptions::new().read(true).write(true).create_new(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("creating the journal {}", path.display())),
        };
        lock(&f, path)?;
        let w = Writer::start(f, path, header)?;
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            #[cfg(unix)]
            File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("syncing {}", dir.display()))?;
        }
        Ok(Some(w))
    }

    /// Write `header` as the only content of a locked file (a new journal, or one whose
    /// header never got written whole).
    pub fn start(mut f: File, path: &Path, header: &Header) -> Result<Writer> {
        let json = serde_json::to_string(header)?;
        let ctx = || format!("writing the journal {}", path.display());
        f.set_len(0).with_context(ctx)?;
        f.seek(SeekFrom::Start(0)).with_context(ctx)?;
        f.write_all(line(&json).as_bytes()).with_context(ctx)?;
        f.sync_all().with_context(ctx)?;
        Ok(Writer::of(f, path))
    }

    /// Continue a locked journal after its first `intact` bytes (a torn line after them is cut).
    pub fn resume(mut f: File, path: &Path, intact: u64) -> Result<Writer> {
        let ctx = || format!("cutting the torn last line of the journal {}", path.display());
        f.set_len(intact).with_context(ctx)?;
        f.seek(SeekFrom::Start(intact)).with_context(ctx)?;
        f.sync_all().with_context(ctx)?;
        Ok(Writer::of(f, path))
    }

    fn of(f: File, path: &Path) -> Writer {
        let kill = std::env::var("REUSE_AUDIT_TEST_KILL_AFTER_RECORDS").ok().and_then(|v| {
            let (n, torn) = v.strip_suffix("+torn").map_or((v.as_str(), false), |n| (n, true));
            n.parse().ok().map(|n| (n, torn))
        });
        Writer { file: Mutex::new((f, 0)), path: path.to_path_buf(), kill }
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one record and sync it. The record must read back as itself (serde_json
    /// writes NaN as null, which would not): what cannot be resumed is not journaled.
    pub fn append<T: Serialize + DeserializeOwned>(&self, record: &T) -> Result<()> {
        let json = serde_json::to_string(record)?;
        let back: T = serde_json::from_str(&json)
            .with_context(|| format!("a journal record does not read back (a non-finite number?): {json}"))?;
        anyhow::ensure!(
            serde_json::to_string(&back)? == json,
            "a journal record does not read back as written: {json}"
        );
        let text = line(&json);
        let mut guard = self.file.lock().map_err(|_| anyhow::anyhow!("the journal writer was poisoned"))?;
        let (f, written) = &mut *guard;
        let number = *written + 1;
        let ctx = || format!("appending to the journal {}", self.path.display());
        if self.kill == Some((number - 1, true)) {
            f.write_all(&text.as_bytes()[..text.len() / 2]).with_context(ctx)?;
            f.sync_data().with_context(ctx)?;
            kill_self();
        }
        f.write_all(text.as_bytes()).with_context(ctx)?;
        f.sync_data().with_context(ctx)?;
        *written = number;
        if self.kill == Some((number, false)) {
            kill_self();
        }
        Ok(())
    }
}

fn lock(f: &File, path: &Path) -> Result<()> {
    f.try_lock().map_err(|e| match e {
        std::fs::TryLockError::WouldBlock => bad_file(
            path,
            "another audit is writing this journal (the same --out is being audited); wait for it or choose another --out",
        ),
        std::fs::TryLockError::Error(e) => anyhow::Error::new(e).context(format!("locking {}", path.display())),
    })
}

/// The test hook's `kill -9` of this process.
fn kill_self() -> ! {
    #[cfg(target_os = "linux")]
    // SAFETY: sends a signal to this process; touches no memory.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    std::process::abort()
}
