//! Which audited rows a plan reuses: by default those the audit judged reusable (its
//! `decision` where it had confidence intervals, else `reusable`), optionally narrowed to
//! some kinds and families, optionally widened to undecided rows.

use crate::model::{Family, Kind};

use super::record::RecordRow;

/// The plan's policy flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Only rows of these kinds (`--kinds`; `None`: every kind audited).
    pub kinds: Option<Vec<Kind>>,
    /// Only rows of these families (`--families`; `None`: every family audited).
    pub families: Option<Vec<Family>>,
    /// Also reuse rows whose confidence interval straddles the tolerance
    /// (`--include-undecided`; needs a report with a `decision` column).
    pub include_undecided: bool,
}

/// What the policy makes of one row.
#[derive(Debug, Clone, PartialEq)]
pub enum Choice {
    /// Reuse the source's tensor.
    Reuse,
    /// Keep the target's, for this reason.
    Drop(String),
}

impl Policy {
    /// Reuse or drop `row` of an audit decided at `tolerance`.
    pub fn choose(&self, row: &RecordRow, tolerance: f64) -> Choice {
        let Some(loss) = row.delta_dice else {
            return Choice::Drop("not audited: the report has no swap score for it".into());
        };
        if let Some(families) = &self.families {
            if !families.iter().any(|f| f.to_string() == row.family) {
                return Choice::Drop(format!("family {} is not in --families", row.family));
            }
        }
        if let Some(kinds) = &self.kinds {
            if !kinds.iter().any(|k| k.to_string() == row.kind) {
                return Choice::Drop(format!("kind {} is not in --kinds", row.kind));
            }
        }
        let not_reusable = || Choice::Drop(format!("not reusable: loss {loss:.6} > tolerance {tolerance}"));
        match row.decision.as_deref() {
            Some("reusable") => Choice::Reuse,
            Some("undecided") if self.include_undecided => Choice::Reuse,
            Some("undecided") => Choice::Drop(format!(
                "undecided: the confidence interval of its loss ({loss:.6}) straddles the tolerance {tolerance} (--include-undecided reuses it)"
            )),
            Some("not_reusable") => not_reusable(),
            Some(other) => Choice::Drop(format!("decision '{other}' is not reusable, not_reusable or undecided")),
            None if row.reusable == Some(true) => Choice::Reuse,
            None => not_reusable(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, loss: Option<f64>, reusable: Option<bool>, decision: Option<&str>) -> RecordRow {
        RecordRow {
            family: "conv".into(),
            layer: 1,
            node: "c1".into(),
            kind: kind.into(),
            target_initializer: "w".into(),
            source_initializer: "w".into(),
            delta_dice: loss,
            reusable,
            decision: decision.map(String::from),
        }
    }

    #[test]
    fn reusable_rows_by_default_decisions_first() {
        let p = Policy::default();
        assert_eq!(p.choose(&row("W", Some(0.01), Some(true), None), 0.02), Choice::Reuse);
        assert!(
            matches!(p.choose(&row("W", Some(0.03), Some(false), None), 0.02), Choice::Drop(r) if r.contains("not reusable: loss 0.030000 > tolerance 0.02"))
        );
        assert!(matches!(p.choose(&row("W", None, None, None), 0.02), Choice::Drop(r) if r.contains("not audited")));
        // With intervals the decision rules, whatever `reusable` says.
        assert!(
            matches!(p.choose(&row("W", Some(0.019), Some(true), Some("undecided")), 0.02), Choice::Drop(r) if r.contains("--include-undecided"))
        );
        let wide = Policy { include_undecided: true, ..Policy::default() };
        assert_eq!(wide.choose(&row("W", Some(0.019), Some(true), Some("undecided")), 0.02), Choice::Reuse);
        assert!(matches!(wide.choose(&row("W", Some(0.001), Some(true), Some("not_reusable")), 0.02), Choice::Drop(_)));
    }

    #[test]
    fn kinds_and_families_narrow() {
        let p = Policy { kinds: Some(vec![Kind::B]), ..Policy::default() };
        assert!(
            matches!(p.choose(&row("W", Some(0.0), Some(true), None), 0.02), Choice::Drop(r) if r == "kind W is not in --kinds")
        );
        assert_eq!(p.choose(&row("B", Some(0.0), Some(true), None), 0.02), Choice::Reuse);
        let p = Policy { families: Some(vec![Family::Bn]), ..Policy::default() };
        assert!(
            matches!(p.choose(&row("B", Some(0.0), Some(true), None), 0.02), Choice::Drop(r) if r.contains("--families"))
        );
    }
}
