//! What a swap is scored by (`--metric`): Dice of segmentation maps (the paper's), top-1
//! accuracy of classifiers against class-id labels, or label-free agreement with the
//! unswapped target's predictions.
//!
//! All three come from the same counts ([`DiceCounts`]: per class, items predicted, items
//! true, items both), where an item is a pixel of a map or a whole image of a classifier.
//! Accuracy and agreement are the share of items whose prediction equals the truth,
//! `Σ_k |P_k ∩ G_k| / Σ_k |G_k|`; they differ in the truth (labels, or the baseline's own
//! predictions). The per-class numbers stay Dice (F1 for a classifier) against the same
//! truth, so the `dice_class_K` and `dice_fg` columns keep their meaning under every metric.

use serde::Serialize;

use super::dice::{Dice, DiceCounts};

/// `--metric`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Mean Dice over classes of a segmentation map against the labels (or, with
    /// `--labels baseline`, against the baseline's predictions).
    #[default]
    Dice,
    /// Top-1 accuracy of a classifier (output N x classes) against one class id per image.
    Accuracy,
    /// Label-free: the share of pixels (images, for a classifier) where the swapped model
    /// predicts what the unswapped target predicts; the loss of a swap is 1 - agreement.
    Agreement,
}

impl Metric {
    /// The flag value and report name: `dice`, `accuracy`, `agreement`.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Dice => "dice",
            Metric::Accuracy => "accuracy",
            Metric::Agreement => "agreement",
        }
    }

    /// How reports name the score: `Dice`, `accuracy`, `agreement`.
    pub fn label(self) -> &'static str {
        match self {
            Metric::Dice => "Dice",
            Metric::Accuracy => "accuracy",
            Metric::Agreement => "agreement",
        }
    }

    /// What a delta is a loss of, in sentences: `mean Dice`, `accuracy`, `agreement`.
    pub fn score_name(self) -> &'static str {
        match self {
            Metric::Dice => "mean Dice",
            other => other.label(),
        }
    }

    /// The label at the start of a title: `Dice`, `Accuracy`, `Agreement`.
    pub fn title(self) -> &'static str {
        match self {
            Metric::Dice => "Dice",
            Metric::Accuracy => "Accuracy",
            Metric::Agreement => "Agreement",
        }
    }

    /// Whether the metric compares with the unswapped target instead of labels.
    pub fn label_free(self) -> bool {
        self == Metric::Agreement
    }

    /// Score counts: `mean` is the metric (mean Dice over classes, or the share of items
    /// predicted as their truth); `per_class` and `mean_fg` are Dice against the same truth.
    pub fn score(self, counts: &DiceCounts) -> Dice {
        let dice = Dice::from_counts(counts);
        match self {
            Metric::Dice => dice,
            Metric::Accuracy | Metric::Agreement => Dice { mean: share_correct(counts), ..dice },
        }
    }
}

/// `Σ_k |P_k ∩ G_k| / Σ_k |G_k|`: the share of items (with a truth in range) predicted as
/// their truth; 1.0 when there is no item.
pub fn share_correct(c: &DiceCounts) -> f64 {
    let total: u64 = c.truth.iter().sum();
    if total == 0 {
        return 1.0;
    }
    c.intersection.iter().sum::<u64>() as f64 / total as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::aview1;

    #[test]
    fn accuracy_by_hand_and_dice_per_class_beside_it() {
        // 6 images, 3 classes. truth [0,0,1,1,2,2], pred [0,1,1,1,2,0]: 4 of 6 right.
        let mut c = DiceCounts::new(3);
        c.add(aview1(&[0u8, 1, 1, 1, 2, 0]), aview1(&[0u8, 0, 1, 1, 2, 2]));
        let a = Metric::Accuracy.score(&c);
        assert!((a.mean - 4.0 / 6.0).abs() < 1e-15);
        // Class 0: P=2 G=2 I=1 -> 1/2; class 1: P=3 G=2 I=2 -> 4/5; class 2: P=1 G=2 I=1 -> 2/3.
        let want = [0.5, 0.8, 2.0 / 3.0];
        for (got, want) in a.per_class.iter().zip(want) {
            assert!((got - want).abs() < 1e-15);
        }
        assert!((a.mean_fg - (0.8 + 2.0 / 3.0) / 2.0).abs() < 1e-15);
        // The Dice metric scores the same counts by their mean Dice.
        let d = Metric::Dice.score(&c);
        assert!((d.mean - (0.5 + 0.8 + 2.0 / 3.0) / 3.0).abs() < 1e-15);
        assert_eq!(d.per_class, a.per_class);
    }

    #[test]
    fn agreement_is_the_share_of_unchanged_predictions() {
        // Baseline [1,1,0,0,0], swapped [1,0,0,0,1]: 3 of 5 pixels agree.
        let mut c = DiceCounts::new(2);
        c.add(aview1(&[1u8, 0, 0, 0, 1]), aview1(&[1u8, 1, 0, 0, 0]));
        assert!((Metric::Agreement.score(&c).mean - 0.6).abs() < 1e-15);
        // Against itself: 1.
        let mut same = DiceCounts::new(2);
        same.add(aview1(&[1u8, 0, 1]), aview1(&[1u8, 0, 1]));
        assert_eq!(Metric::Agreement.score(&same).mean, 1.0);
        assert_eq!(share_correct(&DiceCounts::new(4)), 1.0);
    }

    #[test]
    fn names() {
        assert_eq!(Metric::default(), Metric::Dice);
        assert_eq!((Metric::Accuracy.name(), Metric::Agreement.label()), ("accuracy", "agreement"));
        assert!(Metric::Agreement.label_free() && !Metric::Accuracy.label_free());
    }
}
