//! How cuDNN picks convolution algorithms on `--device cuda` (`REUSE_AUDIT_CUDNN_SEARCH`).

use crate::error::UserError;

/// How cuDNN picks each convolution's algorithm, from `REUSE_AUDIT_CUDNN_SEARCH`:
/// `heuristic` (the default: one lookup per shape), `exhaustive` (ONNX Runtime's own default:
/// every algorithm timed on the first run of each shape in each session) or `default`
/// (implicit precomputed GEMM); any other value is refused. Measured on one H200 with one
/// pair and one machine start (README "Running on a GPU", run 4): the exact 500-slice audit
/// of the real-size pair took 88 s heuristic against 128 s exhaustive, the adaptive one 23 s
/// against 43 s (the ~100 region sessions each pay the exhaustive search on their first
/// runs), with the same decisions and Dice within 2.2e-7. Runs 1-2, on two machine starts
/// and two trainings of the model, had ranked exhaustive first on 500 slices (206 s vs
/// 224 s); run 4 compared both on one machine. The choice changes rounding only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvSearch {
    /// One cuDNN heuristic lookup per convolution shape.
    Heuristic,
    /// Every algorithm timed on the first run of each shape in each session.
    Exhaustive,
    /// cuDNN's implicit precomputed GEMM, no search.
    Default,
}

impl ConvSearch {
    /// The search `REUSE_AUDIT_CUDNN_SEARCH` asks for (heuristic when unset).
    pub fn from_env() -> Result<ConvSearch, UserError> {
        ConvSearch::of(std::env::var("REUSE_AUDIT_CUDNN_SEARCH").ok().as_deref())
    }

    /// The search for a given value of the variable (unset or empty: the default, as the
    /// other `REUSE_AUDIT_*` variables read it; the variable is read on every device).
    fn of(value: Option<&str>) -> Result<ConvSearch, UserError> {
        match value.map(str::trim) {
            None | Some("" | "heuristic") => Ok(ConvSearch::Heuristic),
            Some("exhaustive") => Ok(ConvSearch::Exhaustive),
            Some("default") => Ok(ConvSearch::Default),
            Some(other) => Err(UserError::Runtime(format!(
                "REUSE_AUDIT_CUDNN_SEARCH={other}: expected heuristic, exhaustive or default"
            ))),
        }
    }

    /// The name the report records (`engine.cudnn_conv_search`).
    pub fn name(self) -> &'static str {
        match self {
            ConvSearch::Heuristic => "heuristic",
            ConvSearch::Exhaustive => "exhaustive",
            ConvSearch::Default => "default",
        }
    }

    /// ONNX Runtime's CUDA provider option for it.
    pub fn provider_option(self) -> ort::ep::cuda::ConvAlgorithmSearch {
        use ort::ep::cuda::ConvAlgorithmSearch as S;
        match self {
            ConvSearch::Heuristic => S::Heuristic,
            ConvSearch::Exhaustive => S::Exhaustive,
            ConvSearch::Default => S::Default,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ConvSearch;
    use ort::ep::cuda::ConvAlgorithmSearch as S;

    #[test]
    fn the_cudnn_search_is_heuristic_unless_named_and_a_typo_is_refused() {
        assert_eq!(ConvSearch::of(None).unwrap(), ConvSearch::Heuristic);
        // Regression: an empty value (`REUSE_AUDIT_CUDNN_SEARCH= reuse-audit ...`) was refused,
        // on the CPU too, where the switches read empty as unset.
        assert_eq!(ConvSearch::of(Some("")).unwrap(), ConvSearch::Heuristic);
        assert_eq!(ConvSearch::of(Some(" exhaustive ")).unwrap(), ConvSearch::Exhaustive);
        for (v, want, name) in [
            ("heuristic", ConvSearch::Heuristic, "heuristic"),
            ("exhaustive", ConvSearch::Exhaustive, "exhaustive"),
            ("default", ConvSearch::Default, "default"),
        ] {
            let got = ConvSearch::of(Some(v)).unwrap();
            assert_eq!(got, want);
            assert_eq!(got.name(), name);
        }
        assert!(matches!(ConvSearch::Heuristic.provider_option(), S::Heuristic));
        assert!(matches!(ConvSearch::Exhaustive.provider_option(), S::Exhaustive));
        assert!(matches!(ConvSearch::Default.provider_option(), S::Default));
        let e = ConvSearch::of(Some("HEURISTIC")).unwrap_err().to_string();
        assert!(e.contains("REUSE_AUDIT_CUDNN_SEARCH=HEURISTIC") && e.contains("heuristic"), "{e}");
    }
}
