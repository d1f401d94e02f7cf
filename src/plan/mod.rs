//! Reuse plans: from an audit's verdicts to the files a transfer needs — `plan.json` (what
//! to load, what to freeze, what was left out and why), `reused.safetensors` (the source's
//! reused tensors under the target's names) and `grafted.onnx` (the target file with them
//! written in), optionally checked jointly on the validation data ([`verify`]).
//!
//! [`make`] computes every file's bytes; the caller writes them (`report::write`).

pub mod conflicts;
mod document;
pub mod files;
pub mod graft;
pub mod policy;
pub mod record;
pub mod stored;
pub mod verify;

use std::path::Path;

use anyhow::Result;

pub use document::{Dropped, Plan, PlanFiles, PlanModel, PlanReport, PlanSettings, Reused, PLAN_SCHEMA_VERSION};
pub use policy::Policy;
pub use record::{AuditRecord, Origin};

use crate::audit::compare::{pair_values, PairValues};
use crate::engine::LazyEngine;
use crate::error::UserError;
use crate::model::{Family, Kind};
use crate::pair::MatchMode;
use crate::pipeline::{load_pair_of, warn, Audit, PairContext};
use graft::Graft;
use stored::RawModel;

/// What to plan.
pub struct Request<'a> {
    /// The target model (the report's).
    pub target: &'a Path,
    /// The source model (the report's).
    pub source: &'a Path,
    /// The audit's report.
    pub record: AuditRecord,
    /// Where the report came from.
    pub origin: Origin,
    /// Which rows to reuse.
    pub policy: Policy,
    /// Pairing (`--match`): the audit's.
    pub match_mode: MatchMode,
    /// The audit whose data and settings check the plan jointly; `None`: not checked.
    pub check: Option<Audit>,
    /// No notes on stderr.
    pub quiet: bool,
}

/// A plan and the bytes of its files, `(file name, bytes)`.
pub struct Made {
    /// plan.json's contents.
    pub plan: Plan,
    /// plan.json, reused.safetensors, grafted.onnx (and grafted.onnx.data).
    pub files: Vec<(String, Vec<u8>)>,
}

/// One report row with the pair it names.
struct Planned<'r> {
    row: &'r record::RecordRow,
    pair: usize,
}

/// Make a plan (see the module documentation).
pub fn make(req: Request, engine: &LazyEngine) -> Result<Made> {
    let rec = &req.record;
    let families = record_families(rec)?;
    let ctx = load_pair_of(req.target, req.source, &req.match_mode, &families)?;
    rec.check_model("target", &ctx.target, &req.origin)?;
    rec.check_model("source", &ctx.source, &req.origin)?;
    if req.policy.include_undecided && !rec.has_decisions() {
        return Err(UserError::BadFlag {
            flag: "--include-undecided",
            reason: format!(
                "{} has no `decision` column (an audit without confidence intervals): its rows are reusable or not",
                req.origin.path().display()
            ),
        }
        .into());
    }
    let values = pair_values(&ctx.target, &ctx.source, &ctx.pairing)?;
    let planned = rows_to_pairs(rec, &ctx, &req.origin)?;
    let tolerance = rec.settings.tolerance;
    let mut dropped: Vec<Dropped> = Vec::new();
    let mut candidates = Vec::new();
    for p in &planned {
        match req.policy.choose(p.row, tolerance) {
            policy::Choice::Reuse => candidates.push(p),
            policy::Choice::Drop(reason) => dropped.push(Dropped::of(p.row, reason, None)),
        }
    }
    let raw_t = RawModel::read(req.target, &ctx.target.sha256)?;
    let raw_s = RawModel::read(req.source, &ctx.source.sha256)?;
    let mut grafts: Vec<Graft> = Vec::new();
    for p in &candidates {
        match graft::plan_graft(&raw_t, &raw_s, &ctx, &values, p.pair) {
            Ok(g) => grafts.push(g),
            Err(why) => dropped.push(Dropped::of(p.row, format!("cannot be grafted: {why}"), None)),
        }
    }
    let row_of = |pair: usize| planned.iter().find(|p| p.pair == pair).map(|p| p.row).expect("every graft has a row");
    settle(&raw_t, &ctx, &values, &mut grafts, &mut |pair, why| dropped.push(Dropped::of(row_of(pair), why, None)))?;
    let mut warnings = Vec::new();
    let verification = match &req.check {
        None => None,
        Some(audit) => {
            let scorer = audit.scorer(engine)?;
            let report_baseline = rec.baseline.as_ref().map_or(f64::NAN, |b| b.mean);
            let base = scorer.baseline().mean;
            if (base - report_baseline).abs() > 1e-5 {
                let w = format!(
                    "the joint check's baseline {base:.6} differs from the report's {report_baseline:.6}: the data or its preprocessing differ from the audit's; losses are measured against {base:.6}"
                );
                warn(std::slice::from_ref(&w), req.quiet);
                warnings.push(w);
            }
            let loss_of = |g: &Graft| row_of(g.pair).delta_dice.unwrap_or(f64::NAN);
            let label_of = |g: &Graft| row_of(g.pair).label();
            let (steps, out) = verify::joint(&scorer, &raw_t, &mut grafts, tolerance, &loss_of, &label_of)?;
            for (g, step) in out {
                let r = row_of(g.pair);
                let reason = format!(
                    "joint check: the grafted model lost {:.6} > tolerance {tolerance} with it; its own loss {:.6} was the largest",
                    steps[step - 1].loss,
                    r.delta_dice.unwrap_or(f64::NAN)
                );
                dropped.push(Dropped::of(r, reason, Some(step)));
            }
            let last = steps.last().expect("one step at least");
            if !last.within_tolerance {
                let w = format!(
                    "the grafted model loses {:.6} > tolerance {tolerance} even with nothing reused",
                    last.loss
                );
                warn(std::slice::from_ref(&w), req.quiet);
                warnings.push(w);
            }
            Some(verify::Verification {
                data: scorer.data().display().to_string(),
                images: scorer.images(),
                metric: scorer.metric().name().to_string(),
                labels: if scorer.label_free() { "baseline" } else { "file" }.into(),
                normalize: scorer.normalize(),
                baseline: base,
                report_baseline,
                tolerance,
                score: last.score,
                loss: last.loss,
                within_tolerance: last.within_tolerance,
                steps,
            })
        }
    };
    document::assemble(&req, &ctx, &values, &raw_t, &grafts, &row_of, dropped, verification, warnings)
}

/// The families the audit paired (`settings.families`, all when absent).
fn record_families(rec: &AuditRecord) -> Result<Vec<Family>> {
    match &rec.settings.families {
        None => Ok(Family::ALL.to_vec()),
        Some(names) => names
            .iter()
            .map(|n| {
                Family::parse(n).ok_or_else(|| {
                    UserError::BadData(format!("the report's settings.families names an unknown family '{n}'")).into()
                })
            })
            .collect(),
    }
}

/// Find the pair each report row names; a row the pairing does not have means another
/// `--match` than the audit's.
fn rows_to_pairs<'r>(rec: &'r AuditRecord, ctx: &PairContext, origin: &Origin) -> Result<Vec<Planned<'r>>> {
    let mut out = Vec::new();
    for row in &rec.rows {
        let Some(kind) = Kind::parse(&row.kind) else {
            return Err(crate::error::bad_file(
                origin.path(),
                format!("row {}: unknown kind '{}'", row.label(), row.kind),
            ));
        };
        let found = ctx.pairing.pairs.iter().position(|p| {
            p.kind() == kind
                && p.layer.family.to_string() == row.family
                && p.target.name == row.target_initializer
                && p.source.name == row.source_initializer
        });
        match found {
            Some(pair) => out.push(Planned { row, pair }),
            None => {
                return Err(crate::error::bad_file(
                    origin.path(),
                    format!(
                        "row {} pairs '{}' with '{}', which these models paired by --match {} do not: plan with the pairing the audit used (method '{}'; for a mapping file give --match FILE)",
                        row.label(),
                        row.target_initializer,
                        row.source_initializer,
                        ctx.pairing.method,
                        rec.settings.match_method
                    ),
                ))
            }
        }
    }
    Ok(out)
}

/// Drop grafts that conflict over shared stored tensors or do not reproduce the audit's
/// swap, until the rest graft cleanly.
fn settle(
    raw: &RawModel,
    ctx: &PairContext,
    values: &PairValues,
    grafts: &mut Vec<Graft>,
    drop: &mut dyn FnMut(usize, String),
) -> Result<()> {
    loop {
        let refs: Vec<&Graft> = grafts.iter().collect();
        let mut bad = conflicts::conflicts(raw, ctx, &refs);
        if bad.is_empty() {
            let proto = graft::apply(raw, &refs)?;
            bad = graft::disagreements(ctx, values, &refs, &proto)?;
        }
        if bad.is_empty() {
            return Ok(());
        }
        grafts.retain(|g| match bad.remove(&g.pair) {
            Some(why) => {
                drop(g.pair, format!("cannot be grafted: {why}"));
                false
            }
            None => true,
        });
    }
}
