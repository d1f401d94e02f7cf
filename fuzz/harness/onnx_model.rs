//! ONNX models: bytes -> `Model::from_bytes` (what `Model::load` does with a file: decode,
//! validate names, graph, dims and data, read external data from the model's folder and no
//! further) -> what `inspect` and `rmse` compute without ONNX Runtime: layer scan, folding,
//! quantized and control-flow summaries, input spec, head, topology, pairing with itself,
//! the data-free report, every naive swap written back to bytes.
//!
//! The model's folder is a fresh temporary folder holding one external data file,
//! `weights.bin` (4 KiB), so external data can be found; nothing else is read.

use std::path::PathBuf;
use std::sync::OnceLock;

use reuse_audit::model::graph::Topology;
use reuse_audit::model::head::Head;
use reuse_audit::model::layers::scan;
use reuse_audit::model::{control_flow, folding, quantized, Model};
use reuse_audit::pair::MatchMode;
use reuse_audit::pipeline::{data_free_report, pair_models, Options};

/// `DIR/model.onnx`, `DIR` holding `weights.bin` only.
fn model_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("reuse-audit-fuzz-onnx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temporary folder");
        let weights: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        std::fs::write(dir.join("weights.bin"), weights).expect("weights.bin");
        dir.join("model.onnx")
    })
}

/// One input.
pub fn run(data: &[u8]) {
    let Ok(m) = Model::from_bytes(data, model_path()) else { return };
    let sc = scan(&m);
    let _ = folding::warning(&m, &sc);
    let _ = quantized::summary(&sc.quantized);
    let _ = control_flow::summary(&control_flow::nested_layers(&m));
    let _ = m.input_spec();
    let head = Head::of(&m);
    let _ = (head.rule(1, None), head.rule(4, None));
    let topo = Topology::of(&m);
    for l in sc.layers.iter().take(8) {
        let _ = topo.downstream(&m, l.node_index);
    }
    let Ok(ctx) = pair_models(m.clone(), m.clone(), &MatchMode::Auto) else { return };
    let _ = data_free_report(&ctx, &Options::default(), "rmse");
    // The naive strategy's swap: the source's values written into the target, then bytes.
    for p in ctx.pairing.pairs.iter().take(8) {
        let mut swapped = m.clone();
        if let Ok(v) = m.values(&p.source) {
            if swapped.set_values(&p.target, v.iter()).is_ok() {
                let _ = swapped.to_bytes();
            }
        }
    }
}
