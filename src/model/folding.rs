//! The BatchNormalization folding check: a model whose BN was folded into its convolutions
//! at export (all of it, or most of it), and how to re-export it with BN kept, told for the
//! tool that produced it (`ModelProto.producer_name`).
//!
//! The rule: **folded** when the model has Conv layers and no BatchNormalization; **partly
//! folded** when it has some BN but fewer than a quarter as many BN as Conv layers
//! (`0 < bn` and `4 * bn < conv`). CNNs that keep BN have about one BN per conv; heads,
//! shortcuts and squeeze-excitation convs without BN bring that down to roughly one BN for
//! two convs (EfficientNet: 3 of 5), never below a quarter. A model with Instance-, Group-
//! or LayerNormalization layers is never flagged: those normalize with statistics of the
//! data, cannot be folded, and take BN's place in nets built on them.

use super::layers::{Family, LayerScan};
use super::Model;

/// How much of a model's BatchNormalization seems folded into its convolutions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folding {
    /// BN present in proportion to the convolutions (or no convolutions at all, or other
    /// normalization layers).
    Kept,
    /// Conv layers and no BatchNormalization.
    Folded,
    /// Some BN, but fewer than a quarter as many BN as Conv layers.
    Partial {
        /// Conv/ConvTranspose layers.
        conv: usize,
        /// BatchNormalization layers.
        bn: usize,
    },
}

impl Folding {
    /// Classify a model's layers (see the module doc for the rule).
    pub fn of(scan: &LayerScan) -> Folding {
        let conv = scan.of(Family::Conv).count();
        let bn = scan.of(Family::Bn).count();
        if scan.of(Family::Norm).next().is_some() {
            return Folding::Kept;
        }
        match (conv, bn) {
            (0, _) => Folding::Kept,
            (_, 0) => Folding::Folded,
            _ if 4 * bn < conv => Folding::Partial { conv, bn },
            _ => Folding::Kept,
        }
    }
}

/// The tool that wrote a model, as far as re-exporting advice goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Producer {
    /// `pytorch` (TorchScript or dynamo exporter).
    PyTorch,
    /// `tf2onnx` (TensorFlow, Keras, TFLite).
    Tf2onnx,
    /// `PaddlePaddle` / `paddle2onnx`.
    Paddle,
    /// Anything else, or no producer recorded.
    Unknown,
}

impl Producer {
    /// The producer a `producer_name` stands for (case-insensitive).
    pub fn from_name(name: &str) -> Producer {
        let n = name.to_ascii_lowercase();
        if n.contains("pytorch") || n == "torch" {
            Producer::PyTorch
        } else if n.contains("tf2onnx") {
            Producer::Tf2onnx
        } else if n.contains("paddle") {
            Producer::Paddle
        } else {
            Producer::Unknown
        }
    }

    /// How to re-export with BatchNormalization kept.
    pub fn keep_bn_advice(self) -> &'static str {
        match self {
            Producer::PyTorch => {
                "Re-export with BN kept: torch.onnx.export(model, args, f, dynamo=True, optimize=False) \
                 (or the TorchScript exporter with do_constant_folding=False and \
                 training=torch.onnx.TrainingMode.PRESERVE)."
            }
            Producer::Tf2onnx => {
                "tf2onnx's optimizer 'remove_back_to_back' fuses Conv+BatchNormalization; re-convert with the \
                 Python API and leave it out: import tf2onnx.optimizer (import tf2onnx alone does not load it), then \
                 tf2onnx.convert.from_keras(model, ..., optimizers={k: v for k, v in \
                 tf2onnx.optimizer._get_optimizers().items() if k != 'remove_back_to_back'}) (from_function and \
                 from_graph_def take the same optimizers argument; the command line has no switch for it). A Keras 3 \
                 model (tf.keras of TensorFlow 2.16 and later) reaches tf2onnx with BN already folded into the \
                 Conv by TensorFlow, whatever the optimizers: build it with tf_keras (Keras 2: import tf_keras as \
                 keras, or TF_USE_LEGACY_KERAS=1) and convert that, as above."
            }
            Producer::Paddle => {
                "paddle2onnx does not fold BN itself (its optimizer has no Conv+BN fusion): convert a Paddle \
                 inference model saved without BN fusion (not one from a quantized or inference-optimized \
                 program), and skip BN fusion in any later step (onnx-simplifier: --skip-fuse-bn)."
            }
            Producer::Unknown => {
                "Re-export with BN kept: turn off Conv+BatchNormalization fusion (constant folding) in the \
                 exporter, and in any later optimizer (onnx-simplifier: --skip-fuse-bn; onnxoptimizer: leave \
                 out fuse_bn_into_conv). From PyTorch: torch.onnx.export(..., dynamo=True, optimize=False)."
            }
        }
    }
}

/// The warning for a model whose BN seems folded, or partly folded; `None` when BN is kept.
pub fn warning(model: &Model, scan: &LayerScan) -> Option<String> {
    let producer = Producer::from_name(&model.proto.producer_name);
    let by = match model.proto.producer_name.trim() {
        "" => String::new(),
        name => format!(" (producer: {name})"),
    };
    match Folding::of(scan) {
        Folding::Kept => None,
        Folding::Folded => Some(format!(
            "this model has Conv layers but no BatchNormalization: BN was probably folded into the \
             convolutions at export, so RM/RV/RW/RB cannot be audited and conv W/B values include the folded \
             BN{by}. {}",
            producer.keep_bn_advice()
        )),
        Folding::Partial { conv, bn } => Some(format!(
            "this model has {conv} Conv layers but only {bn} BatchNormalization (fewer than one BN per 4 convs): \
             BN was probably partly folded into the convolutions at export, so those convs' W/B include the \
             folded BN and pair badly with a model that kept it{by}. {}",
            producer.keep_bn_advice()
        )),
    }
}

/// The warning for a pair whose BN is folded in one model and kept in the other (or folded
/// to a different extent), when their convolutions are paired (`--families conv` gets past
/// the BN layer counts that differ): a folded conv's W and B carry its BN's scale and shift,
/// so the two models' conv W/B are different quantities; `None` when both fold alike.
pub fn pair_warning(target: (&Model, &LayerScan), source: (&Model, &LayerScan)) -> Option<String> {
    let (ft, fs) = (Folding::of(target.1), Folding::of(source.1));
    if ft == fs || (ft != Folding::Kept && fs != Folding::Kept) {
        return None;
    }
    let bn = |sc: &LayerScan| sc.of(Family::Bn).count();
    let (folded, kept) = if ft == Folding::Kept { (source, target) } else { (target, source) };
    Some(format!(
        "{} has {} BatchNormalization layer(s) and {} has {}: BN is folded into the convolutions of {} and kept in \
         {}, so their conv W and B are not like for like (a folded conv's W and B carry its BN's scale and \
         shift): the RMSE compares different quantities, and a swap puts the source's {} weights into the target's \
         {} network; export both models the same way",
        target.0.display_name(),
        bn(target.1),
        source.0.display_name(),
        bn(source.1),
        folded.0.display_name(),
        kept.0.display_name(),
        if ft == Folding::Kept { "folded" } else { "unfolded" },
        if ft == Folding::Kept { "BN-keeping" } else { "folded" },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::layers::Layer;

    fn scan_of(conv: usize, bn: usize) -> LayerScan {
        scan_with(conv, bn, 0)
    }

    fn scan_with(conv: usize, bn: usize, norm: usize) -> LayerScan {
        let layer = |family, index| Layer {
            family,
            index,
            node_index: 0,
            node: String::new(),
            op: String::new(),
            epsilon: 0.0,
            w_in_out: false,
            params: Vec::new(),
        };
        let mut layers: Vec<Layer> = (1..=conv).map(|i| layer(Family::Conv, i)).collect();
        layers.extend((1..=bn).map(|i| layer(Family::Bn, i)));
        layers.extend((1..=norm).map(|i| layer(Family::Norm, i)));
        LayerScan { layers, skipped: Vec::new(), quantized: Vec::new() }
    }

    #[test]
    fn folding_rule() {
        assert_eq!(Folding::of(&scan_of(0, 0)), Folding::Kept);
        assert_eq!(Folding::of(&scan_of(3, 0)), Folding::Folded);
        assert_eq!(Folding::of(&scan_of(19, 14)), Folding::Kept);
        // EfficientNet-like: 3 BN per 5 convs.
        assert_eq!(Folding::of(&scan_of(5, 3)), Folding::Kept);
        // A quarter exactly is still kept; below it is partial.
        assert_eq!(Folding::of(&scan_of(20, 5)), Folding::Kept);
        assert_eq!(Folding::of(&scan_of(20, 4)), Folding::Partial { conv: 20, bn: 4 });
        assert_eq!(Folding::of(&scan_of(53, 1)), Folding::Partial { conv: 53, bn: 1 });
        // Nets normalized by GroupNorm/LayerNorm (with or without a BN) fold nothing.
        assert_eq!(Folding::of(&scan_with(12, 0, 6)), Folding::Kept);
        assert_eq!(Folding::of(&scan_with(20, 1, 3)), Folding::Kept);
    }

    #[test]
    fn producers() {
        assert_eq!(Producer::from_name("pytorch"), Producer::PyTorch);
        assert_eq!(Producer::from_name("tf2onnx"), Producer::Tf2onnx);
        assert_eq!(Producer::from_name("PaddlePaddle"), Producer::Paddle);
        assert_eq!(Producer::from_name("paddle2onnx"), Producer::Paddle);
        assert_eq!(Producer::from_name("skl2onnx"), Producer::Unknown);
        assert_eq!(Producer::from_name(""), Producer::Unknown);
    }
}
