//! `.npz` archives: bytes -> `data::npz_samples` (what `--data X.npz` reads: the `images`
//! and `labels` arrays) -> preprocessing. Input: a settings byte, then the archive.

use reuse_audit::data::npy::Npz;

/// One input.
pub fn run(data: &[u8]) {
    let [settings, archive @ ..] = data else { return };
    let path = crate::common::path("val.npz");
    let Ok(mut npz) = Npz::from_bytes(archive, &path) else { return };
    let _ = npz.names();
    if let Ok(samples) = reuse_audit::data::npz_samples(&mut npz, &path, &crate::common::hint(*settings)) {
        crate::common::preprocess(&samples, settings.rotate_left(3));
    }
}
