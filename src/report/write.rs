//! The one place that writes report files: all formats rendered first, then each file
//! written to a temporary name and renamed, so a failure leaves no half-written report.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Write `(file name, bytes)` pairs into `dir` atomically (temp file + rename).
pub fn write_all(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating output folder {}", dir.display()))?;
    let mut tmps = Vec::new();
    for (name, bytes) in files {
        let dest = dir.join(name);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let tmp =
            dest.with_file_name(format!(".{}.tmp", dest.file_name().and_then(|n| n.to_str()).unwrap_or("report")));
        if let Err(e) = std::fs::write(&tmp, bytes) {
            for (t, _) in &tmps {
                let _ = std::fs::remove_file(t);
            }
            let _ = std::fs::remove_file(&tmp);
            return Err(e).with_context(|| format!("writing {}", tmp.display()));
        }
        tmps.push((tmp, dest));
    }
    let mut written = Vec::new();
    for (tmp, dest) in tmps {
        std::fs::rename(&tmp, &dest).with_context(|| format!("renaming {} to {}", tmp.display(), dest.display()))?;
        written.push(dest);
    }
    Ok(written)
}
