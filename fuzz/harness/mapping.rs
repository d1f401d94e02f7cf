//! `--match FILE` mappings: text -> `pair::mapping::parse` and `pair::by_mapping` against
//! a fixed model pair (the bundled tiny classifier of `tests/corpus`, paired with itself),
//! as `audit --match FILE` pairs them. Input: the file's bytes (not UTF-8: refused as
//! `--match` refuses it).

use std::path::Path;
use std::sync::OnceLock;

use reuse_audit::model::layers::{scan, LayerScan};
use reuse_audit::model::Model;
use reuse_audit::pair::{by_mapping, mapping};

/// The layers of `tests/corpus/classifier-target.onnx` (linear and conv, with BN).
fn layers() -> &'static LayerScan {
    static SCAN: OnceLock<LayerScan> = OnceLock::new();
    SCAN.get_or_init(|| {
        let bytes = include_bytes!("../../tests/corpus/classifier-target.onnx");
        let m = Model::from_bytes(bytes, Path::new("classifier-target.onnx")).expect("the bundled model loads");
        scan(&m)
    })
}

/// One input.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = Path::new("map.csv");
    let _ = mapping::parse(text, path);
    let _ = by_mapping(layers(), layers(), text, path);
}
