//! Normalization layers without a trained scale and bias: PyTorch exports
//! `InstanceNorm2d(affine=False)` (the default), `BatchNorm2d(affine=False)` and the like with
//! constant scale 1 and bias 0, because the ONNX operators require both inputs. When both
//! models hold exactly those constants, their RW/RB swap is "delta 0, reusable" and counted
//! in the reuse share, though nothing trained is reused. Such pairs are left out of the scan
//! and listed as not audited with the reason; being no parameters at all, they do not
//! withhold the reuse share (as the GroupNorm placeholders do, whose real parameters are
//! elsewhere). A layer whose scale or bias differs from 1/0 anywhere, in either model, is
//! audited as before; running statistics (RM/RV) are never left out.

use crate::model::layers::Layer;
use crate::model::{Family, Kind, Model};
use crate::pair::Pairing;

/// The `not_audited` reason of such a layer's RW and RB.
pub const REASON: &str = "constant 1/0 in both models: not a trained parameter (affine=False)";

/// Whether a BN or norm layer's scale is all 1 and its bias all 0 (both present).
pub fn is_constant(model: &Model, layer: &Layer) -> bool {
    let all = |kind: Kind, v: f64| {
        layer.param(kind).and_then(|p| model.values(p).ok()).is_some_and(|a| a.iter().all(|&x| x == v))
    };
    matches!(layer.family, Family::Bn | Family::Norm) && all(Kind::RW, 1.0) && all(Kind::RB, 0.0)
}

/// Drop the RW/RB pairs of layers constant in both models; a warning naming them (`None`
/// when there are none).
pub fn leave_out(target: &Model, source: &Model, pairing: &mut Pairing) -> Option<String> {
    let mut names: Vec<String> = Vec::new();
    pairing.pairs.retain(|p| {
        let off = matches!(p.target.kind, Kind::RW | Kind::RB)
            && is_constant(target, &p.layer)
            && is_constant(source, &p.source_layer);
        if off && !names.contains(&p.layer.label()) {
            names.push(p.layer.label());
        }
        !off
    });
    if names.is_empty() {
        return None;
    }
    Some(format!(
        "{} normalization layer(s) ({}) hold scale 1 and bias 0 in both models (exported with affine=False): not trained parameters, so their RW and RB are not swapped; listed as not audited and left out of the reuse share",
        names.len(),
        names.join(", ")
    ))
}
