//! What the validation set can support, said as warnings (on stderr and in the report):
//! too few images for the bootstrap intervals to mean much, and classes the labels never
//! contain, whose Dice is all-or-nothing and still weighs as much as any other class in the
//! mean.

use ndarray::Ix3;

use crate::data::Values;

/// Below this many images the paired bootstrap over images has too few distinct resamples
/// for its intervals to be trusted (with one image every resample is that image: zero width).
pub const MIN_IMAGES_FOR_INTERVALS: usize = 10;

/// A warning when `images` is below [`MIN_IMAGES_FOR_INTERVALS`]: the decisions "at
/// confidence" come from intervals that are too narrow.
pub fn few_images(images: usize, confidence: f64) -> Option<String> {
    (images < MIN_IMAGES_FOR_INTERVALS).then(|| {
        let why = if images == 1 {
            "with one image every bootstrap resample is that image, so every interval has zero width".to_string()
        } else {
            format!("{images} images give too few distinct bootstrap resamples, so the intervals are too narrow")
        };
        format!(
            "only {images} validation image(s): the {:.0}% intervals and the decisions at confidence are not to be trusted ({why}); use at least {MIN_IMAGES_FOR_INTERVALS} images",
            confidence * 100.0
        )
    })
}

/// One warning per class of `0..classes` that never occurs in `labels` (label maps scored by
/// Dice): its Dice is 0 on every image set where the model predicts it anywhere and 1
/// otherwise, and counts 1/`classes` of every mean Dice on its own.
pub fn absent_classes(labels: &Values<Ix3>, classes: usize) -> Vec<String> {
    let mut seen = vec![false; classes];
    for v in labels.iter() {
        if let Some(s) = (v >= 0.0).then_some(v as usize).and_then(|c| seen.get_mut(c)) {
            *s = true;
        }
    }
    seen.iter()
        .enumerate()
        .filter(|(_, &s)| !s)
        .map(|(c, _)| {
            format!(
                "class {c} never occurs in the labels: its Dice is 0 wherever the model predicts it at all and 1 otherwise, yet it counts 1/{classes} of every mean Dice; check the labels and the class count (or that the validation set covers every class)"
            )
        })
        .collect()
}

/// With `--ignore-label`: a warning when no label has that value (every pixel is scored,
/// perhaps not what was meant), an error when every label does (nothing would be scored:
/// every Dice 1, every swap "reusable").
pub fn ignored_labels(labels: &Values<Ix3>, ignore: u8) -> Result<Option<String>, String> {
    let (mut ignored, mut total) = (0usize, 0usize);
    for v in labels.iter() {
        total += 1;
        ignored += usize::from(v == f64::from(ignore));
    }
    if total > 0 && ignored == total {
        return Err(format!(
            "every label is {ignore}, the --ignore-label value: no pixel would be scored (every Dice 1, every swap free); check the labels and the value"
        ));
    }
    Ok((ignored == 0).then(|| {
        format!("--ignore-label {ignore}: no label has that value, so every pixel is scored; check the value")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ignore_label_on_no_pixel_warns_and_on_every_pixel_is_refused() {
        let some = Values::narrowed(ndarray::array![[[0.0, 255.0], [1.0, 2.0]]]);
        assert_eq!(ignored_labels(&some, 255), Ok(None));
        assert!(ignored_labels(&some, 200).unwrap().unwrap().contains("no label has that value"));
        let all = Values::narrowed(ndarray::Array3::from_elem((2, 2, 2), 255.0));
        assert!(ignored_labels(&all, 255).unwrap_err().contains("every label is 255"));
    }

    #[test]
    fn one_image_says_the_intervals_have_zero_width_and_ten_say_nothing() {
        let w = few_images(1, 0.95).unwrap();
        assert!(w.contains("only 1 validation image") && w.contains("zero width") && w.contains("95%"), "{w}");
        assert!(few_images(9, 0.9).unwrap().contains("9 images give too few"));
        assert_eq!(few_images(10, 0.95), None);
    }

    #[test]
    fn a_class_absent_from_every_label_map_is_named_once() {
        // Classes 0 and 2 occur, 1 and 3 do not.
        let labels =
            Values::narrowed(ndarray::Array3::from_shape_vec((2, 1, 3), vec![0.0, 2.0, 0.0, 2.0, 2.0, 0.0]).unwrap());
        let w = absent_classes(&labels, 4);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].starts_with("class 1 never occurs") && w[0].contains("1/4"), "{}", w[0]);
        assert!(w[1].starts_with("class 3 never occurs"), "{}", w[1]);
        assert!(absent_classes(&labels, 3).len() == 1 && absent_classes(&labels, 1).is_empty());
    }
}
