//! `plan TARGET SOURCE --report REPORT.json --out DIR [--data PATH]` and the shortcut
//! `audit ... --plan DIR`: a reuse plan made by the library, written through the one
//! writing place, summarized on stdout.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::ValueEnum;

use crate::cli::{CheckArgs, PolicyArgs};
use crate::config::Settings;
use reuse_audit::data::standardize::MeanStd;
use reuse_audit::data::{Fit, Normalize};
use reuse_audit::engine::LazyEngine;
use reuse_audit::error::UserError;
use reuse_audit::metrics::score::Metric;
use reuse_audit::model::layout::LayoutChoice;
use reuse_audit::model::{Family, Kind};
use reuse_audit::pair::MatchMode;
use reuse_audit::pipeline::{Audit, Labels, Options};
use reuse_audit::plan::{self, AuditRecord, Origin, Plan, Policy, Request};
use reuse_audit::report::{self, Report};

/// The flags of `plan`.
pub struct Args {
    /// Target model.
    pub target: PathBuf,
    /// Source model.
    pub source: PathBuf,
    /// The audit's report.json.
    pub report: PathBuf,
    /// Output folder.
    pub out: PathBuf,
    /// Policy flags.
    pub policy: PolicyArgs,
    /// Joint-check flags.
    pub check: CheckArgs,
    /// plan.json on stdout.
    pub json: bool,
    /// No notes on stderr.
    pub quiet: bool,
}

/// Run `plan`.
pub fn run(a: &Args) -> Result<()> {
    check_plan_folder(&a.out, None)?;
    reuse_audit::report::write::check_out_spares(&a.out, "--out", &a.report, "the --report")?;
    let record = AuditRecord::read(&a.report)?;
    let policy = policy_of(&a.policy)?;
    let match_mode = MatchMode::parse(&a.policy.match_mode);
    let check = a.check.data.as_ref().map(|d| check_audit(a, &record, &match_mode, d));
    let engine = LazyEngine::new(a.check.device, a.check.threads, a.quiet);
    let req = Request {
        target: &a.target,
        source: &a.source,
        record,
        origin: Origin::File(a.report.clone()),
        policy,
        match_mode,
        check,
        quiet: a.quiet,
    };
    let made = plan::make(req, &engine)?;
    write(&made, &a.out, if a.json { Say::Json } else { Say::Stdout })
}

/// `audit ... --plan DIR`: the plan of the report just made, checked on the audit's data
/// with the audit's settings, default policy.
pub fn from_audit(
    target: &Path,
    source: &Path,
    report: &Report,
    audit: &Audit,
    s: &Settings,
    dir: &Path,
    engine: &LazyEngine,
) -> Result<()> {
    let req = Request {
        target,
        source,
        record: AuditRecord::of(report)?,
        origin: Origin::Audit,
        policy: Policy::default(),
        match_mode: s.options.match_mode.clone(),
        // The audit has said what it had to say about the models and data already.
        check: Some(audit.clone().quiet(true)),
        quiet: s.options.quiet,
    };
    let made = plan::make(req, engine)?;
    // With --json stdout holds the report's JSON only: the plan's lines go to stderr.
    write(&made, dir, if s.json { Say::Stderr } else { Say::Stdout })
}

/// Where the plan's summary goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Say {
    /// The summary and the files written, on stdout.
    Stdout,
    /// The same on stderr (stdout carries JSON).
    Stderr,
    /// plan.json on stdout.
    Json,
}

/// Refuse a plan folder that is a file, or the report's own folder (each folder is
/// published whole), before any work.
pub fn check_plan_folder(dir: &Path, report_out: Option<&Path>) -> Result<()> {
    let flag = if report_out.is_some() { "--plan" } else { "--out" };
    if dir.exists() && !dir.is_dir() {
        return Err(UserError::BadFlag { flag, reason: format!("{} exists and is not a folder", dir.display()) }.into());
    }
    if let Some(out) = report_out {
        let same = match (dir.canonicalize(), out.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => dir == out,
        };
        if same {
            return Err(UserError::BadFlag {
                flag,
                reason: format!("{} is also --out: give the plan a folder of its own", dir.display()),
            }
            .into());
        }
    }
    Ok(())
}

fn policy_of(p: &PolicyArgs) -> Result<Policy> {
    let kinds = match &p.kinds {
        None => None,
        Some(ks) => Some(
            ks.iter()
                .map(|k| {
                    Kind::parse(k).ok_or_else(|| UserError::BadFlag {
                        flag: "--kinds",
                        reason: format!("'{k}' is not one of W, B, RM, RV, RW, RB"),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let families = match &p.families {
        None => None,
        Some(fs) => Some(
            fs.iter()
                .map(|f| {
                    Family::parse(f).ok_or_else(|| UserError::BadFlag {
                        flag: "--families",
                        reason: format!("'{f}' is not one of conv, bn, linear, norm"),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok(Policy { kinds, families, include_undecided: p.include_undecided })
}

/// The audit whose data and settings score the grafted model: the report's, flags first.
fn check_audit(a: &Args, rec: &AuditRecord, match_mode: &MatchMode, data: &Path) -> Audit {
    let c = &a.check;
    let ds = rec.dataset.as_ref();
    let labels = match (c.labels.as_deref(), ds.map(|d| d.labels.as_str())) {
        (Some("baseline"), _) | (None, Some("baseline")) => Labels::Baseline,
        (Some(file), _) => Labels::File(file.into()),
        (None, _) => Labels::InData,
    };
    let parse = |s: Option<&str>| s.and_then(|s| Normalize::from_str(s, true).ok());
    let normalize = c.normalize.or_else(|| parse(ds.map(|d| d.normalize.as_str()))).unwrap_or(Normalize::Auto);
    let fit = c.fit.or_else(|| ds.and_then(|d| Fit::from_str(&d.fit, true).ok())).unwrap_or(Fit::None);
    let layout = c.layout.unwrap_or(match ds.map(|d| d.layout.as_str()) {
        Some("nchw") => LayoutChoice::Nchw,
        Some("nhwc") => LayoutChoice::Nhwc,
        _ => LayoutChoice::Auto,
    });
    let mean_std = match (&c.mean, &c.std) {
        (None, None) => {
            ds.and_then(|d| d.mean_std.as_ref()).map(|m| MeanStd { mean: m.mean.clone(), std: m.std.clone() })
        }
        (m, s) => Some(MeanStd { mean: m.clone().unwrap_or(vec![0.0]), std: s.clone().unwrap_or(vec![1.0]) }),
    };
    let metric = rec.settings.metric.as_deref().and_then(|m| Metric::from_str(m, true).ok()).unwrap_or_default();
    let families = rec
        .settings
        .families
        .as_ref()
        .map(|f| f.iter().filter_map(|f| Family::parse(f)).collect())
        .unwrap_or_else(|| Family::ALL.to_vec());
    let options = Options {
        match_mode: match_mode.clone(),
        families,
        tolerance: rec.settings.tolerance,
        quiet: a.quiet,
        ..Options::default()
    };
    Audit::new(&a.target, &a.source)
        .data(data)
        .labels(labels)
        .options(options)
        .normalize(normalize)
        .fit(fit)
        .layout(layout)
        .size(c.size.or(ds.map(|d| (d.height, d.width))))
        .batch(c.batch)
        .device(c.device)
        .threads(c.threads)
        .threshold(c.threshold)
        .output(c.output.clone())
        .min_baseline(0.0)
        .ignore_label(ds.and_then(|d| d.ignore_label))
        .metric(metric)
        .mean_std(mean_std)
}

/// Write the plan's files and say what it holds.
fn write(made: &plan::Made, dir: &Path, say: Say) -> Result<()> {
    let written = report::write::write_all(dir, &made.files)?;
    if say == Say::Json {
        std::io::stdout().lock().write_all(&report::json(&made.plan)?)?;
        return Ok(());
    }
    let mut text = summary(&made.plan);
    for w in written {
        text.push_str(&format!("wrote {}\n", w.display()));
    }
    match say {
        Say::Stderr => eprint!("{text}"),
        _ => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(())
}

/// A few lines on what a plan reuses and how it was checked.
pub fn summary(p: &Plan) -> String {
    let mut groups: Vec<(String, usize)> = Vec::new();
    for r in &p.reuse {
        let g = reuse_audit::model::layers::parse_group(&format!("{}.{}", r.family, r.kind))
            .map(|(f, k)| reuse_audit::model::layers::group_name(f, k))
            .unwrap_or_else(|| r.kind.clone());
        match groups.iter_mut().find(|(n, _)| *n == g) {
            Some((_, c)) => *c += 1,
            None => groups.push((g, 1)),
        }
    }
    let list: Vec<String> = groups.iter().map(|(g, c)| format!("{g} {c}")).collect();
    let mut s = format!(
        "plan: {} tensor(s) reused{}, {} left out (plan.json says why)\n",
        p.reuse.len(),
        if list.is_empty() { String::new() } else { format!(" ({})", list.join(", ")) },
        p.dropped.len()
    );
    match &p.verification {
        None => s.push_str("joint check: not run (give --data to score grafted.onnx on the validation set)\n"),
        Some(v) => {
            // `conv 1 B (node)` -> `conv 1 B`: the node names of some exporters are long.
            let dropped: Vec<&str> = v
                .steps
                .iter()
                .filter_map(|st| st.dropped.as_deref())
                .map(|d| d.split(" (").next().unwrap_or(d))
                .collect();
            s.push_str(&format!(
                "joint check: grafted.onnx scores {:.4} {} against the target's {:.4}: loss {:.4} {} tolerance {}{}\n",
                v.score,
                v.metric,
                v.baseline,
                v.loss,
                if v.within_tolerance { "<=" } else { ">" },
                v.tolerance,
                match dropped.len() {
                    0 => String::new(),
                    1..=3 => format!(" after dropping {} ({} steps)", dropped.join(", "), v.steps.len()),
                    n => format!(
                        " after dropping {n}, largest own loss first: {}, ... ({} steps)",
                        dropped[..3].join(", "),
                        v.steps.len()
                    ),
                }
            ));
        }
    }
    s
}
