//! How cuDNN picks convolution algorithms on `--device cuda` (`REUSE_AUDIT_CUDNN_SEARCH`).

use crate::error::UserError;

/// How cuDNN picks each convolution's algorithm, from `REUSE_AUDIT_CUDNN_SEARCH`:
/// `exhaustive` (the default, as in ONNX Runtime: every algorithm timed on the first run of
/// each shape in each session), `heuristic` (one lookup per shape) or `default` (implicit
/// precomputed GEMM); any other value is refused. On an H200 (README "Running on a GPU")
/// heuristic cut a 16-slice audit of the real-size pair from 59 s to 35 s, the ~100 region
/// sessions each paying the exhaustive search; the 500-slice runs (206 s exhaustive, 224 s
/// heuristic) were on two machine starts and two trainings of the model, so they do not
/// rank the modes. The choice changes rounding only (no TF32 either way).
pub fn conv_search() -> Result<ort::ep::cuda::ConvAlgorithmSearch, UserError> {
    conv_search_of(std::env::var("REUSE_AUDIT_CUDNN_SEARCH").ok().as_deref())
}

/// [`conv_search`] for a given value of the variable.
fn conv_search_of(value: Option<&str>) -> Result<ort::ep::cuda::ConvAlgorithmSearch, UserError> {
    use ort::ep::cuda::ConvAlgorithmSearch as S;
    match value {
        None | Some("exhaustive") => Ok(S::Exhaustive),
        Some("heuristic") => Ok(S::Heuristic),
        Some("default") => Ok(S::Default),
        Some(other) => Err(UserError::Runtime(format!(
            "REUSE_AUDIT_CUDNN_SEARCH={other}: expected exhaustive, heuristic or default"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::conv_search_of;
    use ort::ep::cuda::ConvAlgorithmSearch as S;

    #[test]
    fn the_cudnn_search_is_exhaustive_unless_named_and_a_typo_is_refused() {
        assert!(matches!(conv_search_of(None), Ok(S::Exhaustive)));
        assert!(matches!(conv_search_of(Some("exhaustive")), Ok(S::Exhaustive)));
        assert!(matches!(conv_search_of(Some("heuristic")), Ok(S::Heuristic)));
        assert!(matches!(conv_search_of(Some("default")), Ok(S::Default)));
        let e = conv_search_of(Some("HEURISTIC")).unwrap_err().to_string();
        assert!(e.contains("REUSE_AUDIT_CUDNN_SEARCH=HEURISTIC") && e.contains("heuristic"), "{e}");
    }
}
