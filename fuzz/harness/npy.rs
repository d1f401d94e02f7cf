//! `.npy` images (and labels): bytes -> `data::npy_samples` (what `--data X.npy --labels
//! Y.npy` reads) -> preprocessing. Input: a settings byte, a split point, then the images'
//! bytes and the labels' bytes (none when the split is 0).

/// One input.
pub fn run(data: &[u8]) {
    let [settings, split, rest @ ..] = data else { return };
    let (images, labels) = match usize::from(*split) * 64 {
        0 => (rest, None),
        at if at < rest.len() => (&rest[..at], Some(&rest[at..])),
        _ => (rest, None),
    };
    let (path, labels_path) = (crate::common::path("images.npy"), crate::common::path("labels.npy"));
    let labels = labels.map(|l| (l, labels_path.as_path()));
    if let Ok(samples) = reuse_audit::data::npy_samples(images, &path, labels, &crate::common::hint(*settings)) {
        crate::common::preprocess(&samples, settings.rotate_left(3));
    }
}
