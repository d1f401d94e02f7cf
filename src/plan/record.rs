//! The audit a plan is made from: the fields of `report.json` a plan reads, checked — a
//! report of this model pair (sha256 of both files), of an audit (not a data-free `rmse`),
//! with every field the plan needs.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Deserialize;

use crate::error::bad_file;
use crate::model::Model;
use crate::report::Report;

/// What a plan reads of an audit report.
#[derive(Debug, Clone, Deserialize)]
pub struct AuditRecord {
    /// `audit` (a data-free `rmse` report has no verdicts to plan from).
    pub command: String,
    /// The target as audited.
    pub target: ModelRef,
    /// The source as audited.
    pub source: ModelRef,
    /// The settings that decided the verdicts.
    pub settings: RecordSettings,
    /// The unswapped target's score.
    pub baseline: Option<RecordScore>,
    /// The validation data as fed (audit only).
    pub dataset: Option<RecordDataset>,
    /// One row per matched (layer, kind).
    pub rows: Vec<RecordRow>,
}

/// A model as the report names it.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelRef {
    /// Path as given to the audit.
    pub path: String,
    /// sha256 of the file.
    pub sha256: String,
}

/// The report's settings.
#[derive(Debug, Clone, Deserialize)]
pub struct RecordSettings {
    /// Kinds audited.
    pub kinds: Vec<String>,
    /// Families paired (absent: all).
    #[serde(default)]
    pub families: Option<Vec<String>>,
    /// Loss a reusable swap may have.
    pub tolerance: f64,
    /// `name`, `position` or `file`.
    pub match_method: String,
    /// `dice`, `accuracy` or `agreement` (null data-free).
    #[serde(default)]
    pub metric: Option<String>,
}

/// A score of the report (the baseline).
#[derive(Debug, Clone, Deserialize)]
pub struct RecordScore {
    /// The metric's value.
    pub mean: f64,
}

/// How the audit fed its data: the defaults of the plan's joint check.
#[derive(Debug, Clone, Deserialize)]
pub struct RecordDataset {
    /// `--data` as given.
    pub path: String,
    /// Height fed.
    pub height: usize,
    /// Width fed.
    pub width: usize,
    /// `file` or `baseline`.
    pub labels: String,
    /// The scaling used.
    pub normalize: String,
    /// `--fit`.
    pub fit: String,
    /// `nchw`, `nhwc`, or `input/output`.
    pub layout: String,
    /// `--mean`/`--std`.
    #[serde(default)]
    pub mean_std: Option<RecordMeanStd>,
    /// `--ignore-label`.
    #[serde(default)]
    pub ignore_label: Option<u8>,
}

/// `--mean`/`--std` as recorded.
#[derive(Debug, Clone, Deserialize)]
pub struct RecordMeanStd {
    /// Per-channel mean.
    pub mean: Vec<f32>,
    /// Per-channel std.
    pub std: Vec<f32>,
}

/// One audited (layer, kind).
#[derive(Debug, Clone, Deserialize)]
pub struct RecordRow {
    /// conv, bn, linear or norm.
    pub family: String,
    /// Layer number within the family.
    pub layer: usize,
    /// Target node.
    pub node: String,
    /// W, B, RM, RV, RW or RB.
    pub kind: String,
    /// Target initializer.
    pub target_initializer: String,
    /// Source initializer.
    pub source_initializer: String,
    /// The swap's loss (null: not audited).
    pub delta_dice: Option<f64>,
    /// delta <= tolerance (null: not audited).
    pub reusable: Option<bool>,
    /// `reusable`, `not_reusable` or `undecided`, where the audit had confidence intervals.
    #[serde(default)]
    pub decision: Option<String>,
}

impl RecordRow {
    /// `conv 3 W (node)`, for messages.
    pub fn label(&self) -> String {
        format!("{} {} {} ({})", self.family, self.layer, self.kind, self.node)
    }
}

/// Where a record came from, for messages: a file, or the audit just run.
#[derive(Debug, Clone)]
pub enum Origin {
    /// `--report FILE`.
    File(PathBuf),
    /// `audit --plan`: the report in memory.
    Audit,
}

impl Origin {
    /// The path errors name.
    pub fn path(&self) -> PathBuf {
        match self {
            Origin::File(p) => p.clone(),
            Origin::Audit => PathBuf::from("(the audit's report)"),
        }
    }
}

impl AuditRecord {
    /// Read and check `report.json`.
    pub fn read(path: &Path) -> Result<AuditRecord> {
        let bytes = crate::input::read(path)?;
        let r: AuditRecord = serde_json::from_slice(&bytes)
            .map_err(|e| bad_file(path, format!("not a reuse-audit report.json this plan can read: {e}")))?;
        r.check(path)?;
        Ok(r)
    }

    /// The record of a report in memory (`audit --plan`).
    pub fn of(report: &Report) -> Result<AuditRecord> {
        let r: AuditRecord = serde_json::from_value(serde_json::to_value(report)?)?;
        r.check(&Origin::Audit.path())?;
        Ok(r)
    }

    fn check(&self, path: &Path) -> Result<()> {
        if self.command != "audit" {
            return Err(bad_file(
                path,
                format!(
                    "a `{}` report has no swap verdicts; a plan is made from the report.json of `reuse-audit audit`",
                    self.command
                ),
            ));
        }
        if self.baseline.is_none() || self.dataset.is_none() {
            return Err(bad_file(path, "an audit report without `baseline` or `dataset`: was it edited?"));
        }
        if !(self.settings.tolerance.is_finite() && self.settings.tolerance >= 0.0) {
            return Err(bad_file(path, format!("settings.tolerance {} is not a number >= 0", self.settings.tolerance)));
        }
        if self.rows.is_empty() {
            return Err(bad_file(path, "the report has no rows: nothing was audited"));
        }
        // An audit writes one row per (family, layer, kind): a second would count its tensor twice.
        let mut seen = std::collections::HashSet::new();
        if let Some(r) = self.rows.iter().find(|r| !seen.insert((&r.family, r.layer, &r.kind))) {
            return Err(bad_file(path, format!("row {} is given twice: was the report edited?", r.label())));
        }
        Ok(())
    }

    /// Refuse a model that is not the one the report audited (by sha256).
    pub fn check_model(&self, side: &str, model: &Model, origin: &Origin) -> Result<()> {
        let r = if side == "target" { &self.target } else { &self.source };
        if r.sha256 != model.sha256 {
            return Err(bad_file(
                &model.path,
                format!(
                    "its sha256 {} differs from the {side} of {} ({}, sha256 {}): the report is of another model pair",
                    short(&model.sha256),
                    origin.path().display(),
                    r.path,
                    short(&r.sha256)
                ),
            ));
        }
        Ok(())
    }

    /// Whether the audit decided with confidence intervals (rows have a `decision`).
    pub fn has_decisions(&self) -> bool {
        self.rows.iter().any(|r| r.decision.is_some())
    }
}

/// The first 12 characters of a sha256 (as a report holds it: any text, cut on a character).
fn short(sha: &str) -> &str {
    sha.char_indices().nth(12).map_or(sha, |(at, _)| &sha[..at])
}
