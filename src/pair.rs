//! Pairing target and source parameters: by initializer name, by family + position + role,
//! or from a mapping file (`target_initializer,source_initializer`, see `mapping`).

pub mod mapping;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::error::{bad_file, UserError};
use crate::model::layers::LayerScan;
use crate::model::{Family, Kind, Layer, Param};

/// How to pair parameters (`--match`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchMode {
    /// Name when every parameter matches by name, else position.
    Auto,
    /// By initializer name.
    Name,
    /// By family, position and role.
    Position,
    /// From a CSV mapping file.
    File(PathBuf),
}

impl MatchMode {
    /// Parse the `--match` flag value.
    pub fn parse(s: &str) -> MatchMode {
        match s {
            "auto" => MatchMode::Auto,
            "name" => MatchMode::Name,
            "position" => MatchMode::Position,
            other => MatchMode::File(PathBuf::from(other)),
        }
    }
}

/// One matched parameter pair.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamPair {
    /// The target layer (numbering and node name come from the target).
    pub layer: Layer,
    /// The source layer it was paired with.
    pub source_layer: Layer,
    /// The target's parameter.
    pub target: Param,
    /// The source's parameter.
    pub source: Param,
}

impl ParamPair {
    /// The parameter kind.
    pub fn kind(&self) -> Kind {
        self.target.kind
    }
}

/// The result of pairing two models.
#[derive(Debug, Clone)]
pub struct Pairing {
    /// The method actually used: `name`, `position` or `file`.
    pub method: &'static str,
    /// Matched pairs in target layer order, then kind order.
    pub pairs: Vec<ParamPair>,
    /// Target parameters left unmatched, with the reason.
    pub unmatched: Vec<Unmatched>,
}

/// A parameter that could not be paired.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unmatched {
    /// `target` or `source`.
    pub side: &'static str,
    /// Layer label, e.g. `conv 3 (node)`.
    pub layer: String,
    /// Parameter kind.
    pub kind: String,
    /// Initializer name.
    pub initializer: String,
    /// Why it is unmatched.
    pub reason: String,
}

fn unmatched(side: &'static str, layer: &Layer, p: &Param, reason: String) -> Unmatched {
    Unmatched { side, layer: layer.label(), kind: p.kind.to_string(), initializer: p.name.clone(), reason }
}

/// Pair the parameters of two scanned models.
pub fn pair(target: &LayerScan, source: &LayerScan, mode: &MatchMode) -> Result<Pairing> {
    let p = match mode {
        MatchMode::Name => by_name(target, source),
        MatchMode::Position => by_position(target, source)?,
        MatchMode::File(path) => by_file(target, source, path)?,
        MatchMode::Auto => {
            let named = by_name(target, source);
            let all_target = target.layers.iter().map(|l| l.params.len()).sum::<usize>();
            let all_source = source.layers.iter().map(|l| l.params.len()).sum::<usize>();
            if named.unmatched.is_empty() && named.pairs.len() == all_target && all_target == all_source {
                named
            } else {
                by_position(target, source)?
            }
        }
    };
    if p.pairs.is_empty() {
        return Err(UserError::Mismatch(format!(
            "not a single parameter could be paired (method: {}); {}",
            p.method,
            p.unmatched
                .first()
                .map(|u| format!("first: {} {} '{}': {}", u.layer, u.kind, u.initializer, u.reason))
                .unwrap_or_else(
                    || "the models have no Conv, BatchNormalization, linear or normalization parameters".into()
                )
        ))
        .into());
    }
    Ok(p)
}

fn params(scan: &LayerScan) -> impl Iterator<Item = (&Layer, &Param)> {
    scan.layers.iter().flat_map(|l| l.params.iter().map(move |p| (l, p)))
}

fn make_pair(tl: &Layer, tp: &Param, sl: &Layer, sp: &Param) -> Result<ParamPair, String> {
    if tp.dims != sp.dims {
        return Err(format!("shape {:?} vs source {:?}", tp.dims, sp.dims));
    }
    Ok(ParamPair { layer: tl.clone(), source_layer: sl.clone(), target: tp.clone(), source: sp.clone() })
}

fn by_name(target: &LayerScan, source: &LayerScan) -> Pairing {
    let index: HashMap<(&str, Kind), (&Layer, &Param)> =
        params(source).map(|(l, p)| ((p.name.as_str(), p.kind), (l, p))).collect();
    let mut out = Pairing { method: "name", pairs: vec![], unmatched: vec![] };
    let mut used = std::collections::HashSet::new();
    for (tl, tp) in params(target) {
        match index.get(&(tp.name.as_str(), tp.kind)) {
            Some((sl, sp)) => match make_pair(tl, tp, sl, sp) {
                Ok(pp) => {
                    used.insert(sp.name.clone());
                    out.pairs.push(pp)
                }
                Err(why) => out.unmatched.push(unmatched("target", tl, tp, why)),
            },
            None => out.unmatched.push(unmatched("target", tl, tp, "no source parameter of that name".into())),
        }
    }
    for (sl, sp) in params(source) {
        if !used.contains(&sp.name) {
            out.unmatched.push(unmatched("source", sl, sp, "no target parameter of that name".into()));
        }
    }
    out
}

fn describe(l: &Layer) -> String {
    let shapes: Vec<String> = l.params.iter().map(|p| format!("{} {:?}", p.kind, p.dims)).collect();
    format!("'{}' ({}, {})", l.node, l.op, shapes.join(", "))
}

fn by_position(target: &LayerScan, source: &LayerScan) -> Result<Pairing> {
    let mut out = Pairing { method: "position", pairs: vec![], unmatched: vec![] };
    for family in Family::ALL {
        let t: Vec<&Layer> = target.of(family).collect();
        let s: Vec<&Layer> = source.of(family).collect();
        if t.len() != s.len() {
            // Name the first point where the two architectures diverge.
            let first = t.iter().zip(&s).position(|(a, b)| !same_shape(a, b)).unwrap_or(t.len().min(s.len()));
            let at =
                |v: &[&Layer]| v.get(first).map(|l| describe(l)).unwrap_or_else(|| "nothing (no more layers)".into());
            return Err(UserError::Mismatch(format!(
                "different architectures: target has {} {family} layers, source has {}; first divergence at {family} {}: target {} vs source {}",
                t.len(),
                s.len(),
                first + 1,
                at(&t),
                at(&s)
            ))
            .into());
        }
        for (tl, sl) in t.iter().zip(&s) {
            for tp in &tl.params {
                match sl.param(tp.kind) {
                    Some(sp) => match make_pair(tl, tp, sl, sp) {
                        Ok(pp) => out.pairs.push(pp),
                        Err(why) => out.unmatched.push(unmatched("target", tl, tp, why)),
                    },
                    None => out.unmatched.push(unmatched(
                        "target",
                        tl,
                        tp,
                        format!("source layer {} has no {}", sl.node, tp.kind),
                    )),
                }
            }
            for sp in &sl.params {
                if tl.param(sp.kind).is_none() {
                    out.unmatched.push(unmatched(
                        "source",
                        sl,
                        sp,
                        format!("target layer {} has no {}", tl.node, sp.kind),
                    ));
                }
            }
        }
    }
    out.pairs.sort_by_key(|p| (p.layer.node_index, p.target.kind));
    Ok(out)
}

fn same_shape(a: &Layer, b: &Layer) -> bool {
    a.op == b.op && a.params.iter().map(|p| &p.dims).eq(b.params.iter().map(|p| &p.dims))
}

fn by_file(target: &LayerScan, source: &LayerScan, path: &PathBuf) -> Result<Pairing> {
    crate::input::check_regular(path)?;
    let text = std::fs::read_to_string(path).map_err(|e| UserError::Unreadable {
        path: path.clone(),
        reason: format!("{e} (--match takes auto, name, position or a CSV mapping file)"),
    })?;
    by_mapping(target, source, &text, path)
}

/// Pair by the text of a `--match FILE` mapping (`path` names it in messages): every row
/// must name a target and a source parameter of the same family and kind, each tensor
/// once. The fuzz target `mapping` enters here.
pub fn by_mapping(target: &LayerScan, source: &LayerScan, text: &str, path: &Path) -> Result<Pairing> {
    let t_index: HashMap<&str, (&Layer, &Param)> = params(target).map(|(l, p)| (p.name.as_str(), (l, p))).collect();
    let s_index: HashMap<&str, (&Layer, &Param)> = params(source).map(|(l, p)| (p.name.as_str(), (l, p))).collect();
    let mut out = Pairing { method: "file", pairs: vec![], unmatched: vec![] };
    let mut mapped: HashMap<String, u64> = HashMap::new();
    let mut sources: HashMap<String, u64> = HashMap::new();
    for row in mapping::parse(text, path)? {
        let (n, t, s) = (row.line, row.target.as_str(), row.source.as_str());
        let Some((tl, tp)) = t_index.get(t) else {
            return Err(bad_file(path, format!("line {n}: target has no layer parameter '{t}'")));
        };
        let Some((sl, sp)) = s_index.get(s) else {
            return Err(bad_file(path, format!("line {n}: source has no layer parameter '{s}'")));
        };
        if (tl.family, tp.kind) != (sl.family, sp.kind) {
            return Err(bad_file(
                path,
                format!("line {n}: '{t}' is {} {} but '{s}' is {} {}", tl.family, tp.kind, sl.family, sp.kind),
            ));
        }
        if let Some(first) = mapped.get(t) {
            return Err(bad_file(path, format!("line {n}: target '{t}' is already mapped on line {first}")));
        }
        // One source tensor for two targets would give two rows that are one swap's source.
        if let Some(first) = sources.get(s) {
            return Err(bad_file(
                path,
                format!("line {n}: source '{s}' is already mapped on line {first}; map each source tensor once"),
            ));
        }
        let pp = make_pair(tl, tp, sl, sp).map_err(|why| bad_file(path, format!("line {n}: {t} -> {s}: {why}")))?;
        mapped.insert(t.to_string(), n);
        sources.insert(s.to_string(), n);
        out.pairs.push(pp);
    }
    for (tl, tp) in params(target) {
        if !mapped.contains_key(&tp.name) {
            out.unmatched.push(unmatched("target", tl, tp, "not in the mapping file".into()));
        }
    }
    out.pairs.sort_by_key(|p| (p.layer.node_index, p.target.kind));
    Ok(out)
}

impl Pairing {
    /// Move to `unmatched` the pairs whose quantized (QDQ) parameters cannot be swapped one
    /// for the other: a quantized triple against a float tensor, or triples whose types,
    /// shapes, axis or zero point differ (a swap must leave the dequantized target equal to
    /// the source's dequantized tensor).
    pub fn drop_mismatched_triples(&mut self, target: &crate::model::Model, source: &crate::model::Model) {
        use crate::model::quantized::qdq;
        use crate::model::ParamSource::Dequantized;
        let why = |p: &ParamPair| -> Option<String> {
            match (p.target.source, p.source.source) {
                (Dequantized(t), Dequantized(s)) => match (qdq::at(target, t), qdq::at(source, s)) {
                    (Ok(t), Ok(s)) => qdq::mismatch(target, &t, source, &s),
                    (Err(e), _) | (_, Err(e)) => Some(format!("{e:#}")),
                },
                (Dequantized(_), _) => Some("the target's is quantized (QDQ), the source's is not".into()),
                (_, Dequantized(_)) => Some("the source's is quantized (QDQ), the target's is not".into()),
                _ => None,
            }
        };
        let mut kept = Vec::with_capacity(self.pairs.len());
        for p in std::mem::take(&mut self.pairs) {
            match why(&p) {
                Some(reason) => self.unmatched.push(unmatched("target", &p.layer, &p.target, reason)),
                None => kept.push(p),
            }
        }
        self.pairs = kept;
    }
}
