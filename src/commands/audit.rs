//! `audit TARGET SOURCE --data PATH`: the full protocol, report, and CI gates.

use std::path::Path;

use anyhow::Result;

use super::emit;
use crate::cli::{GateArgs, RunArgs};
use crate::config::Settings;
use reuse_audit::error::{GateFailed, UserError};
use reuse_audit::model::Kind;
use reuse_audit::pipeline::{Audit, Labels};
use reuse_audit::report::Report;
use reuse_audit::verdict::Decision;

/// Run `audit`.
pub fn run(target: &Path, source: &Path, s: &Settings, a: &RunArgs, g: &GateArgs) -> Result<()> {
    if let Some(m) = g.max_delta {
        if !m.is_finite() {
            return Err(
                UserError::BadFlag { flag: "--max-delta", reason: format!("{m} is not a finite number") }.into()
            );
        }
    }
    if let Some(spec) = &g.require_reusable {
        parse_requirement(spec)?; // refuse a bad spec before any work
    }
    let audit = audit_of(target, source, s, a);
    let report = audit.run()?;
    emit(&report, s)?;
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
        .normalize(a.normalize)
        .fit(a.fit)
        .layout(a.layout)
        .size(a.size)
        .batch(a.batch)
        .strategy(a.strategy)
        .cache_mb(a.cache_mb)
        .dynamic_batch(a.dynamic_batch)
        .device(a.device)
        .threads(a.threads)
        .threshold(a.threshold)
        .min_baseline(a.min_baseline)
}

/// Apply the CI gates; a failure lists the failing rows.
pub fn gates(r: &Report, g: &GateArgs) -> Result<()> {
    let mut failures = Vec::new();
    let sm = &r.summary;
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
                        "--max-delta {max}: {} {} {} ({}) loses {d:.4} mean Dice",
                        row.family, row.layer, row.kind, row.node
                    ));
                }
            }
        }
    }
    if let Some(spec) = &g.require_reusable {
        for (kind, layers) in parse_requirement(spec)? {
            for row in r.rows.iter().filter(|row| row.kind == kind.to_string()) {
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

/// Parse `W:1-5,7,B:*`: per kind, the layers required (None = every layer).
pub fn parse_requirement(spec: &str) -> Result<Vec<(Kind, Option<Vec<usize>>)>> {
    let bad = |why: String| -> anyhow::Error { UserError::BadFlag { flag: "--require-reusable", reason: why }.into() };
    let mut out: Vec<(Kind, Option<Vec<usize>>)> = Vec::new();
    for token in spec.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let range = match token.split_once(':') {
            Some((k, range)) => {
                let kind = Kind::parse(k).ok_or_else(|| bad(format!("'{k}' is not one of W, B, RM, RV, RW, RB")))?;
                out.push((kind, Some(Vec::new())));
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
        assert_eq!(r, vec![(Kind::W, Some(vec![1, 2, 3, 5])), (Kind::B, None)]);
        assert!(parse_requirement("5").is_err());
        assert!(parse_requirement("Q:1").is_err());
        assert!(parse_requirement("W:3-1").is_err());
    }
}
