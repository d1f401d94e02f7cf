//! `.npz` archives (plain or compressed zip files of `.npy` entries), read the way NumPy's
//! `np.load` names their arrays: the entry `NAME.npy` is the array `NAME`, and so is an
//! entry called `NAME` alone. An archive where one name means two entries is refused, naming
//! the entry: two entries called `x.npy` (a zip may hold both; `np.load` and the zip reader
//! quietly take the last one), or `x` beside `x.npy`.

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek};
use std::path::{Path, PathBuf};

use anyhow::Result;
use ndarray::{ArrayD, Ix1};
use npyz::zip::{self, ZipArchive};
use npyz::NpyFile;

use super::npy::{check_declared_shape, declared_strict, decode, Declared, MAX_HEADER_BYTES};
use super::values::Values;
use crate::error::{bad_file, UserError};

/// An open `.npz` archive (a file, or bytes in memory); arrays are read by name.
pub struct Npz<R: Read + Seek = BufReader<File>> {
    path: PathBuf,
    archive: ZipArchive<R>,
    /// The archive's entry names, in the order the archive lists them.
    entries: Vec<String>,
}

impl Npz {
    /// Open an archive (stored or deflated entries).
    pub fn open(path: &Path) -> Result<Self> {
        crate::input::check_regular(path)?;
        let file = File::open(path).map_err(|e| UserError::Unreadable { path: path.into(), reason: e.to_string() })?;
        Npz::new(BufReader::new(file), path)
    }
}

impl<'a> Npz<Cursor<&'a [u8]>> {
    /// An archive's bytes, read as [`Npz::open`] reads its file; `path` names it in messages.
    pub fn from_bytes(bytes: &'a [u8], path: &Path) -> Result<Self> {
        Npz::new(Cursor::new(bytes), path)
    }
}

/// The array an entry holds, as `np.load` names it (`x.npy` and `x` are both `x`).
fn array_name(entry: &str) -> &str {
    entry.strip_suffix(".npy").unwrap_or(entry)
}

impl<R: Read + Seek> Npz<R> {
    fn new(reader: R, path: &Path) -> Result<Self> {
        let mut archive =
            ZipArchive::new(reader).map_err(|e| bad_file(path, format!("not a valid .npz archive: {e}")))?;
        let mut entries = Vec::with_capacity(archive.len());
        for i in 0..archive.len() {
            let entry =
                archive.by_index_raw(i).map_err(|e| bad_file(path, format!("not a valid .npz archive: {e}")))?;
            entries.push(entry.name().to_string());
        }
        let mut sorted: Vec<&String> = entries.iter().collect();
        sorted.sort();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(bad_file(
                path,
                format!(
                    "the archive holds two entries named '{}': which one is the array is anyone's guess (NumPy reads \
                     the last); rewrite the archive with one",
                    w[0]
                ),
            ));
        }
        let mut by_array: Vec<(&str, &String)> = entries.iter().map(|e| (array_name(e), e)).collect();
        by_array.sort();
        if let Some(w) = by_array.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(bad_file(
                path,
                format!(
                    "the archive holds both '{}' and '{}', two entries for the one array '{}'; rewrite the archive \
                     with one",
                    w[0].1, w[1].1, w[0].0
                ),
            ));
        }
        Ok(Npz { path: path.into(), archive, entries })
    }

    /// The names of the arrays in the archive, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.entries.iter().map(|e| array_name(e).to_string()).collect();
        names.sort();
        names
    }

    /// The entry that holds array `name`: `name.npy`, else `name`.
    fn entry(&self, name: &str) -> Option<String> {
        let npy = format!("{name}.npy");
        self.entries.iter().find(|e| **e == npy || *e == name).cloned()
    }

    /// What the header of array `name` declares, its data unread, after the checks of
    /// [`check_declared_shape`] (`None`: no such array, or an entry that is not a `.npy`,
    /// which reading it then refuses).
    pub fn declared(&mut self, name: &str) -> Result<Option<Declared>> {
        let Some(entry) = self.entry(name) else { return Ok(None) };
        let mut header = self.archive.by_name(&entry).map_err(|e| bad_file(&self.path, format!("{entry}: {e}")))?;
        // At most the longest header allowed, and the 12 bytes in front of it.
        let mut start = Vec::new();
        (&mut header)
            .take(MAX_HEADER_BYTES as u64 + 12)
            .read_to_end(&mut start)
            .map_err(|e| bad_file(&self.path, format!("{entry}: {e}")))?;
        declared_strict(&start).map(Some).map_err(|e| bad_file(&self.path, format!("{entry}: {e:#}")))
    }

    /// The shape the header of array `name` declares (see [`Npz::declared`]).
    pub fn shape(&mut self, name: &str) -> Result<Option<Vec<usize>>> {
        Ok(self.declared(name)?.map(|d| d.shape))
    }

    /// Read array `name` through `read` (`None` when the archive has no such array), after
    /// its header's checks; an error names the archive and the entry.
    fn with_array<T>(
        &mut self,
        name: &str,
        read: impl FnOnce(NpyFile<zip::read::ZipFile<'_>>) -> Result<T>,
    ) -> Result<Option<T>> {
        let Some(entry) = self.entry(name) else { return Ok(None) };
        let fail = |e: &dyn std::fmt::Display| bad_file(&self.path, format!("{entry}: {e}"));
        // The header first, read alone: its shape is checked before the reader sizes it.
        let header = self.archive.by_name(&entry).map_err(|e| fail(&e))?;
        check_declared_shape(header).map_err(|e| fail(&format!("{e:#}")))?;
        let file = self.archive.by_name(&entry).map_err(|e| fail(&e))?;
        let npy = NpyFile::new(file).map_err(|e| fail(&format!("not a .npy array: {e}")))?;
        read(npy).map(Some).map_err(|e| fail(&format!("{e:#}")))
    }

    /// The array `name`, or `None` when the archive has no such array.
    pub fn get(&mut self, name: &str) -> Result<Option<ArrayD<f64>>> {
        // A closure, not `decode` itself: the reader's lifetime is the call's own.
        #[allow(clippy::redundant_closure)]
        self.with_array(name, |npy| decode(npy))
    }

    /// The array `name` handed to `each` one image (index of its first axis) at a time, as it
    /// streams in (see [`super::stream::for_each_image`]); `false` when there is no such
    /// array.
    pub fn for_each_image(&mut self, name: &str, each: impl FnMut(Values<Ix1>) -> Result<()>) -> Result<bool> {
        Ok(self.with_array(name, |npy| super::stream::for_each_image(npy, each))?.is_some())
    }

    /// The array `name`; its absence is an error that lists the arrays the archive has.
    pub fn require(&mut self, name: &str) -> Result<ArrayD<f64>> {
        match self.get(name)? {
            Some(a) => Ok(a),
            None => Err(self.missing(name)),
        }
    }

    /// Array `name` is not in the archive: say which are.
    pub fn missing(&self, name: &str) -> anyhow::Error {
        let names = self.names();
        let has =
            if names.is_empty() { "no arrays at all".to_string() } else { format!("it has: {}", names.join(", ")) };
        bad_file(
            &self.path,
            format!(
                "the archive has no '{name}' array ({has}); the tool reads arrays saved as \
                 np.savez(path, images=x, labels=y)"
            ),
        )
    }
}
