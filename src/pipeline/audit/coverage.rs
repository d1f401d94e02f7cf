//! What the swap scan covered. Every target (layer, kind) group of the audited kinds without
//! a swap result is listed as not audited, with its reason: unmatched (a shape that differs,
//! no counterpart, left out of a mapping file), quantized, or inside an If/Loop/Scan
//! subgraph. Verdicts that would speak for groups never swapped are withheld: the RN
//! verdict unless conv W was swapped in every conv layer, the reuse shares unless every
//! group was. A warning says what the audited part alone gives.

use std::collections::HashSet;

use super::super::PairContext;
use crate::model::control_flow;
use crate::model::quantized::CONV_OPS;
use crate::model::{Family, Kind};
use crate::report::{NotAudited, Report};

/// The target's (layer, kind) groups of `families` and `kinds` with no swap result in
/// `report.rows`.
pub fn not_audited(ctx: &PairContext, families: &[Family], kinds: &[Kind], report: &Report) -> Vec<NotAudited> {
    let audited: HashSet<(String, usize, String)> = report
        .rows
        .iter()
        .filter(|r| r.delta_dice.is_some())
        .map(|r| (r.family.clone(), r.layer, r.kind.clone()))
        .collect();
    let wanted = |f: Family, k: Kind| families.contains(&f) && kinds.contains(&k);
    let mut out = Vec::new();
    let mut push = |family: Family, layer: Option<usize>, node: &str, kind: Kind, reason: String| {
        let key = (family.to_string(), layer.unwrap_or(0), kind.to_string());
        if wanted(family, kind) && !audited.contains(&key) {
            out.push(NotAudited {
                family: family.to_string(),
                layer,
                node: node.into(),
                kind: kind.to_string(),
                reason,
            });
        }
    };
    let is_unmatched = |label: &str, kind: Kind| {
        ctx.pairing.unmatched.iter().any(|u| u.side == "target" && u.layer == label && u.kind == kind.to_string())
    };
    let unmatched_reason = |label: &str, kind: Kind| {
        ctx.pairing
            .unmatched
            .iter()
            .find(|u| u.side == "target" && u.layer == label && u.kind == kind.to_string())
            .map(|u| format!("unmatched: {}", u.reason))
            .unwrap_or_else(|| "no swap result".into())
    };
    let unscored = super::scored::unscored_nodes(&ctx.target);
    let placeholders = super::group_norm::placeholder_nodes(&ctx.target, &ctx.target_layers);
    for l in &ctx.target_layers.layers {
        for p in &l.params {
            let reason = if unscored.contains(&l.node_index) {
                super::scored::reason(&ctx.target)
            } else if placeholders.contains(&l.node_index) {
                super::group_norm::REASON.to_string()
            } else if is_unmatched(&l.label(), p.kind) {
                unmatched_reason(&l.label(), p.kind)
            } else if matches!(p.kind, Kind::RW | Kind::RB) && super::constant_norm::is_constant(&ctx.target, l) {
                // Paired, yet without a swap: left out as constant in both models.
                super::constant_norm::REASON.to_string()
            } else {
                unmatched_reason(&l.label(), p.kind)
            };
            push(l.family, Some(l.index), &l.node, p.kind, reason);
        }
    }
    // Every conv node's W counts, stored or not (the RN verdict is a share of all of them):
    // quantized ones and weights computed in the graph have no parameter in the scan.
    let mut conv = 0;
    for (i, n) in ctx.target.proto.graph.node.iter().enumerate() {
        if !CONV_OPS.contains(&n.op_type.as_str()) {
            continue;
        }
        conv += 1;
        let scanned = ctx.target_layers.layers.iter().any(|l| l.node_index == i && l.param(Kind::W).is_some());
        if scanned {
            continue;
        }
        let node = if n.name.is_empty() { format!("{}_{}", n.op_type, i) } else { n.name.clone() };
        let reason = match ctx.target_layers.quantized.iter().find(|q| q.layer == conv) {
            _ if unscored.contains(&i) => super::scored::reason(&ctx.target),
            Some(q) => format!("quantized ({}): {}", q.format, q.reason),
            None => match n.input.get(1) {
                Some(w) if ctx.target.is_sparse_initializer(w) => {
                    format!("its weight {}", ctx.target.not_stored_reason(w))
                }
                _ => "its weight is computed in the graph, not a stored tensor".into(),
            },
        };
        push(Family::Conv, Some(conv), &node, Kind::W, reason);
    }
    for n in control_flow::nested_layers(&ctx.target) {
        let (family, kinds): (Family, &[Kind]) = if n.is_conv() {
            (Family::Conv, &[Kind::W, Kind::B])
        } else {
            (Family::Bn, &[Kind::RM, Kind::RV, Kind::RW, Kind::RB])
        };
        for &k in kinds {
            push(family, None, &n.node, k, format!("inside the {}: {}", n.inside, n.reason()));
        }
    }
    out
}

/// Withhold the verdicts `report.not_audited` makes partial; returns the warnings that say
/// so, with what the audited groups alone give.
pub fn withhold(report: &mut Report) -> Vec<String> {
    let mut warnings = Vec::new();
    // Layers that cannot change the scored output are not part of the network it measures.
    // Nor are constants that are no trained parameter (a norm layer without affine ones).
    let missing: Vec<NotAudited> = report
        .not_audited
        .iter()
        .filter(|n| !n.reason.starts_with(super::scored::REASON) && n.reason != super::constant_norm::REASON)
        .cloned()
        .collect();
    let missing = &missing;
    let s = &mut report.summary;
    let conv_w = |n: &&NotAudited| n.family == "conv" && n.kind == "W";
    let w_missing = missing.iter().filter(conv_w).count();
    if s.rn.is_some() && w_missing > 0 {
        s.rn = None;
        s.rn_decision = None;
        s.conv_w_reusable_share_lo = None;
        s.conv_w_reusable_share_hi = None;
        let w_audited = report.rows.iter().filter(|r| crate::verdict::is_conv_w(r) && r.delta_dice.is_some()).count();
        warnings.push(format!(
            "no RN verdict: conv W was swapped in {w_audited} of the target's {} conv layers ({} not audited: {}); the reusable share of those {w_audited} is {:.0}%",
            w_audited + w_missing,
            w_missing,
            first_reasons(missing.iter().filter(conv_w)),
            100.0 * s.conv_w_reusable_share.unwrap_or(0.0)
        ));
    }
    if let (Some(g), Some(sc), false) = (s.reuse_share_groups, s.reuse_share_scalars, missing.is_empty()) {
        s.reuse_share_groups = None;
        s.reuse_share_scalars = None;
        let audited = report.rows.iter().filter(|r| r.delta_dice.is_some()).count();
        warnings.push(format!(
            "no reuse share: {} (layer, kind) group(s) of the audited kinds were not audited ({}); of the {audited} audited, {:.1}% are reusable ({:.1}% of their scalars)",
            missing.len(),
            first_reasons(missing.iter()),
            100.0 * g,
            100.0 * sc
        ));
    }
    warnings
}

/// `conv 2 W (node): reason` for the first two, and how many more.
fn first_reasons<'a>(items: impl Iterator<Item = &'a NotAudited>) -> String {
    let items: Vec<&NotAudited> = items.collect();
    let mut parts: Vec<String> = items
        .iter()
        .take(2)
        .map(|n| {
            let at = n.layer.map(|l| format!("{} {l}", n.family)).unwrap_or_else(|| n.family.clone());
            format!("{at} {} ({}): {}", n.kind, n.node, n.reason)
        })
        .collect();
    if items.len() > 2 {
        parts.push(format!("{} more", items.len() - 2));
    }
    parts.join("; ")
}
