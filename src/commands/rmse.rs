//! `rmse TARGET SOURCE`: the data-free report (RMSE/nRMSE/cosine, MRM/MRV/MRW/MRB).

use std::path::Path;

use anyhow::Result;

use super::emit;
use crate::config::Settings;

/// Run `rmse`.
pub fn run(target: &Path, source: &Path, s: &Settings) -> Result<()> {
    let report = reuse_audit::pipeline::rmse(target, source, &s.options)?;
    emit(&report, s)
}
