//! `rmse TARGET SOURCE`: the data-free report (RMSE/nRMSE/cosine, MRM/MRV/MRW/MRB).

use std::path::Path;

use anyhow::Result;

use super::emit;
use crate::config::Settings;

/// Run `rmse`.
pub fn run(target: &Path, source: &Path, s: &Settings) -> Result<()> {
    let mut inputs = vec![(target, "the target model"), (source, "the source model")];
    inputs.extend(super::mapping_file(&s.options.match_mode).map(|m| (m, "the --match file")));
    super::spare_inputs(s.out.as_deref(), "--out", &inputs)?;
    let report = reuse_audit::pipeline::rmse(target, source, &s.options)?;
    emit(&report, s)
}
