//! `audit TARGET SOURCE --data PATH`: the full protocol, report, and CI gates.

use std::path::Path;

use anyhow::Result;

use super::emit;
use crate::cli::{GateArgs, RunArgs};
use crate::config::Settings;
use reuse_audit::data::standardize::MeanStd;
use reuse_audit::engine::{Device, LazyEngine};
use reuse_audit::error::{GateFailed, UserError};
use reuse_audit::model::layers::{group_name, parse_group};
use reuse_audit::model::{Family, Kind};
use reuse_audit::pipeline::{Audit, JournalPlan, JournalSpec, Labels};
use reuse_audit::report::{NotAudited, Report};
use reuse_audit::verdict::Decision;

/// Run `audit` (and with `--plan DIR`, make the plan from its report).
pub fn run(target: &Path, source: &Path, s: &Settings, a: &RunArgs, g: &GateArgs, plan: Option<&Path>) -> Result<()> {
    let journal = super::journaled::spec(s, a)?;
    run_journaled(target, source, s, a, g, plan, journal)
}

/// Run `audit` with this journal (a merge gives the shards' results).
pub fn run_journaled(
    target: &Path,
    source: &Path,
    s: &Settings,
    a: &RunArgs,
    g: &GateArgs,
    plan: Option<&Path>,
    journal: Option<JournalSpec>,
) -> Result<()> {
    if let Some(dir) = plan {
        if a.shard.is_some() {
            return Err(UserError::BadFlag {
                flag: "--plan",
                reason: "a shard sees part of the swaps: make the plan from the merged report (`reuse-audit plan TARGET SOURCE --report DIR/report.json --out PLAN`)".into(),
            }
            .into());
        }
        super::plan::check_plan_folder(dir, s.out.as_deref())?;
    }
    let labels = a.labels.as_deref().filter(|l| *l != "baseline").map(Path::new);
    let mut inputs = vec![(target, "the target model"), (source, "the source model"), (a.data.as_path(), "the --data")];
    inputs.extend(labels.map(|l| (l, "the --labels")));
    inputs.extend(super::mapping_file(&s.options.match_mode).map(|m| (m, "the --match file")));
    super::spare_inputs(s.out.as_deref(), "--out", &inputs)?;
    super::spare_inputs(plan, "--plan", &inputs)?;
    if a.budget && a.shard.is_some() {
        return Err(UserError::BadFlag {
            flag: "--budget",
            reason: "a shard computes part of the swaps and its budget would not be journaled: run --budget on the whole audit (without --shard)".into(),
        }
        .into());
    }
    if let Some(m) = g.max_delta {
        if !m.is_finite() {
            return Err(
                UserError::BadFlag { flag: "--max-delta", reason: format!("{m} is not a finite number") }.into()
            );
        }
        if m < 0.0 {
            // A loss bound below 0 fails swaps that gain: every unchanged swap fails.
            return Err(UserError::BadFlag {
                flag: "--max-delta",
                reason: format!(
                    "{m} is negative: the gate fails a swap losing more than this, so it would fail swaps that lose \
                     nothing; give a loss >= 0 (0: no swap may lose at all)"
                ),
            }
            .into());
        }
    }
    if g.strict && !g.fail_if_not_reusable && g.require_reusable.is_none() {
        return Err(nothing_to_check(
            "--strict",
            "it makes undecided fail --fail-if-not-reusable and --require-reusable, and neither is given \
             (--max-delta takes the point estimate, never undecided)"
                .into(),
        ));
    }
    // Refuse a bad spec, or a gate on kinds or families not audited, before any work.
    let o = &s.options;
    if let Some(spec) = &g.require_reusable {
        for ((family, kind), _) in parse_requirement(spec)? {
            let group = group_name(family, kind);
            if !o.kinds.contains(&kind) {
                return Err(nothing_to_check(
                    "--require-reusable",
                    format!("{group}: {kind} is not among the audited --kinds"),
                ));
            }
            if !o.families.contains(&family) {
                return Err(nothing_to_check(
                    "--require-reusable",
                    format!("{group}: {family} is not among the audited --families"),
                ));
            }
        }
    }
    if g.fail_if_not_reusable && !(o.kinds.contains(&Kind::W) && o.families.contains(&Family::Conv)) {
        return Err(nothing_to_check(
            "--fail-if-not-reusable",
            "the RN verdict needs conv W (--kinds, --families)".into(),
        ));
    }
    if g.fail_if_not_reusable && o.rn_threshold <= 0.0 {
        return Err(nothing_to_check(
            "--fail-if-not-reusable",
            format!(
                "--rn-threshold {} calls every network an RN (a conv W reusable share of 0 reaches it)",
                o.rn_threshold
            ),
        ));
    }
    if a.tf32 && a.device != Device::Cuda {
        return Err(UserError::BadFlag {
            flag: "--tf32",
            reason: "TF32 is a CUDA setting: it needs --device cuda (the CPU computes in float32)".into(),
        }
        .into());
    }
    reuse_audit::profile::enabled(); // starts the profile's clock
    let audit = audit_of(target, source, s, a).journal(journal.clone());
    // One ONNX Runtime environment per process: the plan's joint check shares the audit's.
    let engine = LazyEngine::new(a.device, a.threads, s.options.quiet).with_tf32(a.tf32);
    let mut report = audit.run_with(&engine)?;
    if a.no_timing {
        report.timing = None;
    }
    if let Some(JournalSpec { plan: JournalPlan::Fresh(path) | JournalPlan::Resume(path), shard, .. }) = &journal {
        if let (Some(shard), Some(out)) = (shard, &s.out) {
            // The gates need every swap: `merge` applies them.
            return super::journaled::publish_shard(path, out, *shard, s.options.quiet);
        }
        if let Err(e) = emit(&report, s) {
            eprintln!(
                "note: every swap's result is kept in {}: rerun with --resume to write the report from it",
                path.display()
            );
            return Err(e);
        }
        // The report is published: the journal has served.
        super::journaled::remove(path)?;
    } else {
        let _t = reuse_audit::profile::span("report (write)");
        emit(&report, s)?;
    }
    eprint!("{}", reuse_audit::profile::table());
    if let Some(dir) = plan {
        super::plan::from_audit(target, source, &report, &audit, s, dir, &engine)?;
    }
    gates(&report, g)
}

/// The library audit the flags describe.
pub fn audit_of(target: &Path, source: &Path, s: &Settings, a: &RunArgs) -> Audit {
    let labels = match a.labels.as_deref() {
        None => Labels::InData,
        Some("baseline") => Labels::Baseline,
        Some(file) => Labels::File(file.into()),
    };
    let mut options = s.options.clone();
    options.confidence = a.confidence;
    options.bootstrap = a.bootstrap;
    Audit::new(target, source)
        .data(&a.data)
        .labels(labels)
        .options(options)
        .adaptive(a.adaptive)
        .budget(a.budget.then_some(a.budget_draws as usize))
        .normalize(a.normalize)
        .fit(a.fit)
        .layout(a.layout)
        .size(a.size)
        .batch(a.batch)
        .strategy(a.strategy)
        .cache_mb(a.cache_mb)
        .dynamic_batch(a.dynamic_batch)
        .device(a.device)
        .tf32(a.tf32)
        .threads(a.threads)
        .threshold(a.threshold)
        .output(a.output.clone())
        .min_baseline(a.min_baseline)
        .ignore_label(a.ignore_label)
        .metric(a.metric)
        .mean_std(mean_std(a))
}

/// `--mean`/`--std` (either alone: the other is 0 or 1).
fn mean_std(a: &RunArgs) -> Option<MeanStd> {
    if a.mean.is_none() && a.std.is_none() {
        return None;
    }
    Some(MeanStd { mean: a.mean.clone().unwrap_or(vec![0.0]), std: a.std.clone().unwrap_or(vec![1.0]) })
}

/// Apply the CI gates; a failure lists the failing rows.
pub fn gates(r: &Report, g: &GateArgs) -> Result<()> {
    let mut failures = Vec::new();
    let sm = &r.summary;
    if g.fail_if_not_reusable && sm.rn.is_none() {
        return Err(partly_unchecked(
            "--fail-if-not-reusable",
            "there is no RN verdict (not every conv layer could be audited; see the warnings)".into(),
        ));
    }
    let fails = |d: Option<Decision>| match d {
        Some(Decision::Reusable) => false,
        Some(Decision::Undecided) => g.strict,
        Some(Decision::NotReusable) | None => true,
    };
    // Without intervals (none were computed) the point verdict decides.
    let rn = sm.rn_decision.or(sm.rn.map(|rn| if rn { Decision::Reusable } else { Decision::NotReusable }));
    if g.fail_if_not_reusable && fails(rn) {
        let why = match (rn, sm.conv_w_reusable_share_lo, sm.conv_w_reusable_share_hi) {
            (None, ..) => "there is no RN verdict (see the warnings)".to_string(),
            (Some(d), Some(lo), Some(hi)) => format!(
                "the RN verdict is {} at {:.0}% confidence (conv W reusable share {:.2}-{:.2}, threshold {}){}",
                d.name(),
                100.0 * r.settings.confidence,
                lo,
                hi,
                r.settings.rn_threshold,
                if d == Decision::Undecided { "; undecided fails under --strict" } else { "" }
            ),
            (Some(_), ..) => format!(
                "the network is not an RN (conv W reusable share {:.2} < {})",
                sm.conv_w_reusable_share.unwrap_or(0.0),
                r.settings.rn_threshold
            ),
        };
        failures.push(format!("--fail-if-not-reusable: {why}"));
    }
    if let Some(max) = g.max_delta {
        for row in &r.rows {
            if let Some(d) = row.delta_dice {
                if d.is_nan() || d > max {
                    failures.push(format!(
                        "--max-delta {max}: {} {} {} ({}) loses {d:.4} {}",
                        row.family,
                        row.layer,
                        row.kind,
                        row.node,
                        r.metric().score_name()
                    ));
                }
            }
        }
    }
    if let Some(spec) = &g.require_reusable {
        for ((family, kind), layers) in parse_requirement(spec)? {
            unchecked(r, family, kind, layers.as_deref())?;
            let rows = r.rows.iter().filter(|row| row.family == family.to_string() && row.kind == kind.to_string());
            for row in rows {
                let wanted = layers.as_ref().is_none_or(|l| l.contains(&row.layer));
                let decision =
                    row.decision.or(row.reusable.map(|ok| if ok { Decision::Reusable } else { Decision::NotReusable }));
                if wanted && fails(decision) {
                    failures.push(format!(
                        "--require-reusable: {} {} {} ({}) is {} (delta {:.4}, interval {:.4} to {:.4})",
                        row.family,
                        row.layer,
                        row.kind,
                        row.node,
                        decision.map_or("not audited", |d| match d {
                            Decision::Undecided => "undecided (--strict)",
                            _ => "not reusable",
                        }),
                        row.delta_dice.unwrap_or(f64::NAN),
                        row.delta_dice_lo.unwrap_or(f64::NAN),
                        row.delta_dice_hi.unwrap_or(f64::NAN)
                    ));
                }
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(GateFailed(failures.join("\n  ")).into())
    }
}

/// A gate that would pass without checking anything: exit 2.
fn nothing_to_check(flag: &'static str, why: String) -> anyhow::Error {
    UserError::BadFlag { flag, reason: format!("{why}: the gate would check nothing") }.into()
}

/// A gate that could check only part of what it asks for: exit 2.
fn partly_unchecked(flag: &'static str, why: String) -> anyhow::Error {
    UserError::BadFlag { flag, reason: format!("{why}: the gate cannot check what it asks for") }.into()
}

/// Refuse a `--require-reusable` entry that names groups without a swap result: layers the
/// target does not have, or groups not audited (`*` covers every group of the kind).
fn unchecked(r: &Report, family: Family, kind: Kind, layers: Option<&[usize]>) -> Result<()> {
    let (f, k) = (family.to_string(), kind.to_string());
    let group = group_name(family, kind);
    let flag = "--require-reusable";
    let missing: Vec<&NotAudited> = r.not_audited.iter().filter(|n| n.family == f && n.kind == k).collect();
    let of_group = |row: &&reuse_audit::report::Row| row.family == f && row.kind == k;
    let has_row = |l: usize| r.rows.iter().filter(of_group).any(|row| row.layer == l && row.delta_dice.is_some());
    let Some(layers) = layers else {
        if let Some(n) = missing.first() {
            let at = n.layer.map(|l| format!("{f} {l}")).unwrap_or_else(|| f.clone());
            return Err(partly_unchecked(
                flag,
                format!(
                    "{group}:* covers {} {f} {k} group(s) that were not audited, e.g. {at} ({}): {}",
                    missing.len(),
                    n.node,
                    n.reason
                ),
            ));
        }
        if !r.rows.iter().filter(of_group).any(|row| row.delta_dice.is_some()) {
            return Err(nothing_to_check(flag, format!("{group}:* matches no audited {f} {k} group")));
        }
        return Ok(());
    };
    if let Some(&l) = layers.iter().find(|&&l| !has_row(l)) {
        if let Some(n) = missing.iter().find(|n| n.layer == Some(l)) {
            return Err(partly_unchecked(
                flag,
                format!("{group}:{l}: {f} {l} ({}) was not audited: {}", n.node, n.reason),
            ));
        }
        let mut known: Vec<usize> =
            r.rows.iter().filter(of_group).map(|row| row.layer).chain(missing.iter().filter_map(|n| n.layer)).collect();
        known.sort_unstable();
        known.dedup();
        let why = format!("{group}:{l}: the target has no {f} layer {l} with {k} (its {f} layers with {k}: {known:?})");
        return Err(if layers.iter().any(|&l| has_row(l)) {
            partly_unchecked(flag, why)
        } else {
            nothing_to_check(flag, why)
        });
    }
    Ok(())
}

/// One `--require-reusable` entry: a (family, kind) group and its layers (None = every layer).
pub type Requirement = ((Family, Kind), Option<Vec<usize>>);

/// Parse `W:1-5,7,B:*,linear.W:1`: per group, the layers required (None = every layer). A
/// bare kind is the conv (W, B) or BN (RM, RV, RW, RB) one; `family.kind` names any family.
pub fn parse_requirement(spec: &str) -> Result<Vec<Requirement>> {
    let bad = |why: String| -> anyhow::Error { UserError::BadFlag { flag: "--require-reusable", reason: why }.into() };
    let mut out: Vec<Requirement> = Vec::new();
    for token in spec.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let range = match token.split_once(':') {
            Some((k, range)) => {
                let group = parse_group(k).ok_or_else(|| {
                    bad(format!(
                        "'{k}' is not one of W, B, RM, RV, RW, RB, or family.kind (conv.W, conv.B, bn.RM, bn.RV, bn.RW, bn.RB, linear.W, linear.B, norm.RW, norm.RB)"
                    ))
                })?;
                out.push((group, Some(Vec::new())));
                range
            }
            None if !out.is_empty() => token,
            None => return Err(bad(format!("'{token}' has no kind: write e.g. W:1-5"))),
        };
        let Some((_, layers)) = out.last_mut() else { unreachable!("pushed above") };
        if range == "*" {
            *layers = None;
            continue;
        }
        let (a, b) = range.split_once('-').unwrap_or((range, range));
        let (a, b): (usize, usize) = match (a.parse(), b.parse()) {
            (Ok(a), Ok(b)) if a >= 1 && a <= b => (a, b),
            _ => return Err(bad(format!("'{range}' is not a layer, a range like 1-5, or *"))),
        };
        if let Some(l) = layers.as_mut() {
            l.extend(a..=b);
        }
    }
    if out.is_empty() {
        return Err(bad("empty requirement".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirement_spec() {
        let r = parse_requirement("W:1-3,5,B:*").unwrap();
        assert_eq!(r, vec![((Family::Conv, Kind::W), Some(vec![1, 2, 3, 5])), ((Family::Conv, Kind::B), None)]);
        let r = parse_requirement("RM:2,linear.W:1-2,norm.RB:*,conv.B:1").unwrap();
        assert_eq!(
            r,
            vec![
                ((Family::Bn, Kind::RM), Some(vec![2])),
                ((Family::Linear, Kind::W), Some(vec![1, 2])),
                ((Family::Norm, Kind::RB), None),
                ((Family::Conv, Kind::B), Some(vec![1])),
            ]
        );
        assert!(parse_requirement("5").is_err());
        assert!(parse_requirement("Q:1").is_err());
        assert!(parse_requirement("W:3-1").is_err());
        // Families without that kind.
        assert!(parse_requirement("norm.W:1").is_err());
        assert!(parse_requirement("linear.RM:1").is_err());
    }
}
