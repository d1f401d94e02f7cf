//! `match TARGET SOURCE`: how the layers pair up and what is unmatched.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use reuse_audit::model::Family;
use reuse_audit::pair::{MatchMode, Unmatched};
use reuse_audit::pipeline::load_pair_of;
use reuse_audit::report::table::{printable, terminal_safe};

/// One pair in `match --json`.
#[derive(Debug, Serialize)]
struct PairOut {
    family: String,
    layer: usize,
    source_layer: usize,
    kind: String,
    target_initializer: String,
    source_initializer: String,
    shape: Vec<i64>,
}

/// `match --json` output.
#[derive(Debug, Serialize)]
struct MatchOut {
    target: String,
    source: String,
    method: String,
    pairs: Vec<PairOut>,
    unmatched: Vec<Unmatched>,
    warnings: Vec<String>,
}

/// Run `match`.
pub fn run(target: &Path, source: &Path, mode: &MatchMode, families: &[Family], json: bool) -> Result<()> {
    let ctx = load_pair_of(target, source, mode, families)?;
    let out = MatchOut {
        target: ctx.target.display_name(),
        source: ctx.source.display_name(),
        method: ctx.pairing.method.to_string(),
        pairs: ctx
            .pairing
            .pairs
            .iter()
            .map(|p| PairOut {
                family: p.layer.family.to_string(),
                layer: p.layer.index,
                source_layer: p.source_layer.index,
                kind: p.kind().to_string(),
                target_initializer: p.target.name.clone(),
                source_initializer: p.source.name.clone(),
                shape: p.target.dims.clone(),
            })
            .collect(),
        unmatched: ctx.pairing.unmatched.clone(),
        warnings: ctx.warnings.clone(),
    };
    let mut stdout = std::io::stdout().lock();
    if json {
        stdout.write_all(&reuse_audit::report::json(&out)?)?;
        return Ok(());
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "target: {}\nsource: {}\npaired by {}: {} parameters, {} unmatched\n",
        printable(&out.target),
        printable(&out.source),
        out.method,
        out.pairs.len(),
        out.unmatched.len()
    );
    for p in &out.pairs {
        let _ = writeln!(
            s,
            "  {:<4} {:>3} {:<3} {:<36} <- {:<36} {:?}",
            p.family,
            p.layer,
            p.kind,
            printable(&p.target_initializer),
            printable(&p.source_initializer),
            p.shape
        );
    }
    for u in &out.unmatched {
        let _ = writeln!(
            s,
            "  unmatched {}: {} {} '{}': {}",
            u.side,
            u.layer,
            u.kind,
            printable(&u.initializer),
            printable(&u.reason)
        );
    }
    for w in &out.warnings {
        let _ = writeln!(s, "\nwarning: {}", terminal_safe(w));
    }
    stdout.write_all(s.as_bytes())?;
    Ok(())
}
