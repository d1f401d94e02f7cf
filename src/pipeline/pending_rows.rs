//! A report's weight rows computed on a thread of their own.
//!
//! The rows of an audit's report (RMSE, nRMSE, cosine, and the spectral metrics, which
//! take an eigendecomposition per conv filter bank) do not depend on the data. An audit
//! starts them as soon as the pair is loaded and the values are checked, and collects them
//! when it fills in the swap results: meanwhile it loads the data and runs the probes and
//! builds its sessions, phases that leave a core idle for stretches. The numbers are those
//! of [`compare::rows`] on the calling thread.

use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{anyhow, Result};

use crate::audit::compare::{self, PairValues};
use crate::model::Kind;
use crate::pair::Pairing;
use crate::report::Row;

/// Weight rows being computed; [`PendingRows::join`] waits for them.
pub struct PendingRows(JoinHandle<Vec<Row>>);

impl PendingRows {
    /// Start computing the rows of `kinds` (in pairing order, spectral metrics included).
    pub fn spawn(pairing: Pairing, values: Arc<PairValues>, kinds: Vec<Kind>) -> PendingRows {
        PendingRows(std::thread::spawn(move || {
            let _t = crate::profile::span("weight + spectral metrics (thread)");
            compare::rows(&pairing, &values, &kinds, true)
        }))
    }

    /// The rows, once computed.
    pub fn join(self) -> Result<Vec<Row>> {
        self.0.join().map_err(|_| anyhow!("the weight comparison thread panicked"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Family;
    use crate::pair::MatchMode;

    #[test]
    fn rows_from_the_thread_equal_the_rows_computed_in_place() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let (t, s) = (root.join("models/unet-acdc-seg.onnx"), root.join("models/unet-acdc-ae.onnx"));
        let ctx = crate::pipeline::load_pair_of(&t, &s, &MatchMode::Auto, &Family::ALL).unwrap();
        let pairing = ctx.pairing.clone();
        let values = Arc::new(compare::pair_values(&ctx.target, &ctx.source, &pairing).unwrap());
        let kinds = Kind::ALL.to_vec();
        let here = compare::rows(&pairing, &values, &kinds, true);
        let there = PendingRows::spawn(pairing, values, kinds).join().unwrap();
        assert!(!here.is_empty() && here.iter().any(|r| r.spectral_rel.is_some()));
        assert_eq!(serde_json::to_string(&here).unwrap(), serde_json::to_string(&there).unwrap());
    }
}
