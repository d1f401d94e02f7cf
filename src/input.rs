//! Files the user names (models, data, labels, mapping files, reports, journals): each is
//! checked to be a regular file before it is opened. Opening a FIFO waits for a writer
//! forever, and a device such as `/dev/zero` never ends, so reading it whole would grow
//! without bound; both are refused, naming the file (exit 2). Folders are left to the
//! caller, which knows what a folder means there.

use std::path::Path;

use crate::error::UserError;

/// Refuse `path` when it exists and is neither a regular file nor a folder (a FIFO, a
/// socket, a device; a symlink is judged by what it points at). A path that cannot be
/// examined is left to the caller's open, which names the error.
pub fn check_regular(path: &Path) -> Result<(), UserError> {
    let Ok(meta) = std::fs::metadata(path) else { return Ok(()) };
    let t = meta.file_type();
    if t.is_file() || t.is_dir() {
        return Ok(());
    }
    Err(UserError::Unreadable {
        path: path.to_path_buf(),
        reason: format!("not a regular file ({}): give a file", kind(&t)),
    })
}

/// What a file that is not regular is, in words.
#[cfg(unix)]
fn kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_fifo() {
        "a FIFO: opening it would wait for a writer"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

#[cfg(not(unix))]
fn kind(_: &std::fs::FileType) -> &'static str {
    "not a file"
}

/// Read a whole user-given file, after [`check_regular`]; a failure names the file.
pub fn read(path: &Path) -> Result<Vec<u8>, UserError> {
    check_regular(path)?;
    std::fs::read(path).map_err(|e| UserError::Unreadable { path: path.to_path_buf(), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_refused_files_and_folders_are_not() {
        let e = check_regular(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(e.contains("/dev/zero") && e.contains("a device"), "{e}");
        assert!(check_regular(Path::new("/")).is_ok());
        assert!(check_regular(Path::new("/no/such/file")).is_ok());
        let f = tempfile::NamedTempFile::new().unwrap();
        assert_eq!(read(f.path()).unwrap(), Vec::<u8>::new());
    }
}
