//! Dice per class over a whole validation set (METHOD.md): argmax over class channels (one
//! channel: value > threshold, 0 for logits, 0.5 for probabilities; see `model::head`), 1.0
//! when prediction and truth are both empty. A pixel whose class scores hold NaN or an
//! infinity predicts no class ([`NO_PREDICTION`]): it counts against the class it should
//! have been, never as background. A pixel whose truth is out of range ([`IGNORED`], from
//! `--ignore-label`) is not scored at all: it adds to no class's |P|, |G| or |P∩G|.

use ndarray::{Array3, ArrayView, ArrayView4, Dimension};

/// The class map value of a pixel whose class scores are not all finite: no class (class
/// counts never reach it: at most 255 classes are scored).
pub const NO_PREDICTION: u8 = u8::MAX;

/// The truth map value of a pixel not scored (`--ignore-label`): it counts for no class,
/// predicted or true, whatever the model predicts there.
pub const IGNORED: u8 = u8::MAX;

/// Turn model output `[n, c, h, w]` into a class map `[n, h, w]`: argmax over channels, or
/// for one channel, foreground where the value is above `threshold`; [`NO_PREDICTION`]
/// where a class score is NaN or infinite. A view of the runtime's buffer (standard
/// layout) is read in place; any other layout is copied once.
pub fn predict(output: ArrayView4<f32>, threshold: f32) -> Array3<u8> {
    let (n, c, h, w) = output.dim();
    let hw = h * w;
    let output = output.as_standard_layout();
    let flat = output.as_slice().unwrap_or(&[]);
    let mut out = vec![0u8; n * hw];
    if hw > 0 && c > 0 {
        for (img, dst) in flat.chunks_exact(c * hw).zip(out.chunks_exact_mut(hw)) {
            predict_image(img, c, threshold, dst);
        }
    }
    Array3::from_shape_vec((n, h, w), out).unwrap_or_else(|_| Array3::zeros((n, h, w)))
}

/// Argmax over the `c` channels of one image `[c][hw]` into `dst` (one channel: value >
/// `threshold`), then [`NO_PREDICTION`] at every pixel with a score that is not finite.
fn predict_image(img: &[f32], c: usize, threshold: f32, dst: &mut [u8]) {
    let hw = dst.len();
    if c == 1 {
        for (d, &v) in dst.iter_mut().zip(img) {
            *d = u8::from(v > threshold);
        }
    } else {
        let mut best = img[..hw].to_vec();
        for k in 1..c {
            let ch = &img[k * hw..(k + 1) * hw];
            for p in 0..hw {
                // Strictly greater: ties go to the lower class.
                if ch[p] > best[p] {
                    best[p] = ch[p];
                    dst[p] = k as u8;
                }
            }
        }
    }
    // A finite output (every baseline, nearly every swap) is checked in one pass.
    if img.iter().all(|v| v.is_finite()) {
        return;
    }
    for ch in img.chunks_exact(hw) {
        for (d, v) in dst.iter_mut().zip(ch) {
            if !v.is_finite() {
                *d = NO_PREDICTION;
            }
        }
    }
}

/// The (prediction, truth) table of `add_table` for `k <= 16` classes over contiguous maps of
/// fewer than 2^34 pixels: four interleaved tables (consecutive pixels, mostly of one class,
/// would otherwise wait on each other's increment of the same cell) indexed through lookup
/// tables that fold the range check in: about half the time of one table per image on 16
/// maps of 256x256 (`cargo bench` case `counts`).
fn pair_table(pred: &[u8], truth: &[u8], k: usize) -> Vec<u64> {
    let w = k + 1;
    let cells = w * w;
    let (mut row, mut col) = ([0u16; 256], [0u16; 256]);
    for v in 0..256 {
        // k <= 16: a row offset is at most 16 * 17.
        row[v] = (v.min(k) * w) as u16;
        col[v] = v.min(k) as u16;
    }
    let at = |p: u8, t: u8| usize::from(row[usize::from(p)] + col[usize::from(t)]);
    let mut lanes = vec![0u32; 4 * cells];
    let (l0, rest) = lanes.split_at_mut(cells);
    let (l1, rest) = rest.split_at_mut(cells);
    let (l2, l3) = rest.split_at_mut(cells);
    let (p4, t4) = (pred.chunks_exact(4), truth.chunks_exact(4));
    let (p_rest, t_rest) = (p4.remainder(), t4.remainder());
    for (p, t) in p4.zip(t4) {
        l0[at(p[0], t[0])] += 1;
        l1[at(p[1], t[1])] += 1;
        l2[at(p[2], t[2])] += 1;
        l3[at(p[3], t[3])] += 1;
    }
    let mut table: Vec<u64> =
        (0..cells).map(|i| u64::from(l0[i]) + u64::from(l1[i]) + u64::from(l2[i]) + u64::from(l3[i])).collect();
    for (&p, &t) in p_rest.iter().zip(t_rest) {
        table[at(p, t)] += 1;
    }
    table
}

/// Running counts for Dice per class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiceCounts {
    /// |P_k ∩ G_k| per class.
    pub intersection: Vec<u64>,
    /// |P_k| per class.
    pub predicted: Vec<u64>,
    /// |G_k| per class.
    pub truth: Vec<u64>,
}

impl DiceCounts {
    /// Empty counts for `classes` classes.
    pub fn new(classes: usize) -> Self {
        DiceCounts { intersection: vec![0; classes], predicted: vec![0; classes], truth: vec![0; classes] }
    }

    /// Add predicted and true class maps of the same shape (a batch `[n, h, w]`, one image
    /// `[h, w]`, …). Panics if the shapes differ: callers pair predictions with their truth.
    pub fn add<D: Dimension>(&mut self, pred: ArrayView<u8, D>, truth: ArrayView<u8, D>) {
        assert_eq!(pred.shape(), truth.shape(), "DiceCounts::add: prediction and truth shapes differ");
        match (pred.as_slice(), truth.as_slice()) {
            (Some(p), Some(t)) if self.predicted.len() <= 16 => {
                // Blocks whose per-lane counts fit a u32.
                for (p, t) in p.chunks(1 << 30).zip(t.chunks(1 << 30)) {
                    self.add_table(&pair_table(p, t, self.predicted.len()));
                }
            }
            (Some(p), Some(t)) => self.add_pixels(p.iter().zip(t)),
            _ => self.add_pixels(pred.iter().zip(truth.iter())),
        }
    }

    /// Add a (prediction, truth) table of `(k + 1)^2` counts, row = predicted class, column =
    /// true class, index `k` standing for anything out of range.
    fn add_table(&mut self, table: &[u64]) {
        let k = self.predicted.len();
        let w = k + 1;
        for c in 0..k {
            // Column k (truth out of range: an ignored pixel) counts for nothing.
            self.predicted[c] += table[c * w..c * w + k].iter().sum::<u64>();
            self.truth[c] += (0..w).map(|r| table[r * w + c]).sum::<u64>();
            self.intersection[c] += table[c * w + c];
        }
    }

    fn add_pixels<'a>(&mut self, pixels: impl Iterator<Item = (&'a u8, &'a u8)>) {
        let k = self.predicted.len();
        if k <= 16 {
            // One increment per pixel into a (pred, truth) table, class k standing for
            // anything out of range; the sums come out of the table.
            let w = k + 1;
            let mut table = vec![0u64; w * w];
            for (&p, &g) in pixels {
                table[(p as usize).min(k) * w + (g as usize).min(k)] += 1;
            }
            self.add_table(&table);
            return;
        }
        for (&p, &g) in pixels {
            let (p, g) = (p as usize, g as usize);
            if p < k && g < k {
                self.predicted[p] += 1;
            }
            if g < k {
                self.truth[g] += 1;
                if p == g {
                    self.intersection[g] += 1;
                }
            }
        }
    }

    /// Add counts made elsewhere (another chunk of images, another worker).
    pub fn merge(&mut self, other: &DiceCounts) {
        for (mine, theirs) in [
            (&mut self.intersection, &other.intersection),
            (&mut self.predicted, &other.predicted),
            (&mut self.truth, &other.truth),
        ] {
            for (a, b) in mine.iter_mut().zip(theirs) {
                *a += b;
            }
        }
    }

    /// Dice per class: 2|P∩G| / (|P| + |G|), 1.0 when both are empty.
    pub fn per_class(&self) -> Vec<f64> {
        (0..self.predicted.len())
            .map(|k| {
                let den = self.predicted[k] + self.truth[k];
                if den == 0 {
                    1.0
                } else {
                    2.0 * self.intersection[k] as f64 / den as f64
                }
            })
            .collect()
    }
}

/// Dice summary: per class, mean over all classes, mean over foreground (classes 1..).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Dice {
    /// Dice of each class, background (class 0) included.
    pub per_class: Vec<f64>,
    /// Mean over all classes.
    pub mean: f64,
    /// Mean over classes 1.. (equal to `mean` for a single class).
    pub mean_fg: f64,
}

impl Dice {
    /// Summarize counts.
    pub fn from_counts(c: &DiceCounts) -> Dice {
        let per_class = c.per_class();
        let mean = per_class.iter().sum::<f64>() / per_class.len().max(1) as f64;
        let fg = &per_class[1.min(per_class.len())..];
        let mean_fg = if fg.is_empty() { mean } else { fg.iter().sum::<f64>() / fg.len() as f64 };
        Dice { per_class, mean, mean_fg }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_ignored_truth_pixel_counts_for_no_class() {
        // 2 classes; pixels (pred, truth): (0,0) (1,1) (1,0) (0,IGNORED) (1,IGNORED):
        // the last two are left out, so class 0: |P|=1 |G|=2 |P∩G|=1, class 1: |P|=2 |G|=1 |P∩G|=1.
        // The same with 20 classes takes the other (per-pixel) path.
        use super::{DiceCounts, IGNORED};
        use ndarray::arr1;
        let pred = arr1(&[0u8, 1, 1, 0, 1]);
        let truth = arr1(&[0u8, 1, 0, IGNORED, IGNORED]);
        for classes in [2, 20] {
            let mut c = DiceCounts::new(classes);
            c.add(pred.view(), truth.view());
            assert_eq!((c.predicted[0], c.truth[0], c.intersection[0]), (1, 2, 1), "{classes} classes");
            assert_eq!((c.predicted[1], c.truth[1], c.intersection[1]), (2, 1, 1), "{classes} classes");
        }
        // Over many pixels (the 4-lane table): every ignored pixel is left out.
        let n = 1003;
        let pred: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
        let truth: Vec<u8> = (0..n).map(|i| if i % 5 == 0 { IGNORED } else { (i % 2) as u8 }).collect();
        let mut fast = DiceCounts::new(3);
        fast.add(ndarray::aview1(&pred), ndarray::aview1(&truth));
        let kept: Vec<usize> = (0..n).filter(|i| i % 5 != 0).collect();
        for k in 0..3u8 {
            let p = kept.iter().filter(|&&i| pred[i] == k).count() as u64;
            let g = kept.iter().filter(|&&i| truth[i] == k).count() as u64;
            let both = kept.iter().filter(|&&i| pred[i] == k && truth[i] == k).count() as u64;
            assert_eq!(
                (fast.predicted[k as usize], fast.truth[k as usize], fast.intersection[k as usize]),
                (p, g, both)
            );
        }
    }

    use super::*;
    use ndarray::{array, aview1, Array2};

    #[test]
    fn argmax_and_sigmoid() {
        // one image, 3 classes, 2 pixels: pixel0 -> class 2, pixel1 -> tie of 0 and 1 -> 0
        let out = array![[[[0.0f32, 5.0]], [[1.0, 5.0]], [[3.0, -1.0]]]];
        assert_eq!(predict(out.view(), 0.0), array![[[2u8, 0]]]);
        let one = array![[[[0.3f32, -0.2, 0.0]]]];
        assert_eq!(predict(one.view(), 0.0), array![[[1u8, 0, 0]]]);
        // Probabilities: foreground above 0.5 only.
        let probs = array![[[[0.3f32, 0.5, 0.51, 0.99]]]];
        assert_eq!(predict(probs.view(), 0.5), array![[[0u8, 0, 1, 1]]]);
        // A non-standard layout (channels-last data viewed as NCHW) gives the same maps.
        let nhwc = array![[[[0.0f32, 1.0, 3.0], [5.0, 5.0, -1.0]]]];
        let nchw = nhwc.view().permuted_axes([0, 3, 1, 2]);
        assert_eq!(predict(nchw, 0.0), array![[[2u8, 0]]]);
    }

    #[test]
    fn a_swap_whose_output_is_nan_predicted_background() {
        // 3 classes, 4 pixels: NaN in class 0 at pixel 0 (class 2 would win), +inf in class 1
        // at pixel 1, NaN in every class at pixel 2, pixel 3 finite (class 1).
        let nan = f32::NAN;
        let out = array![[[[nan, 0.0, nan, 0.0]], [[1.0, f32::INFINITY, nan, 2.0]], [[3.0, 0.0, nan, 1.0]]]];
        let none = NO_PREDICTION;
        assert_eq!(predict(out.view(), 0.0), array![[[none, none, none, 1u8]]]);
        let one = array![[[[nan, 0.3, f32::NEG_INFINITY, -0.2]]]];
        assert_eq!(predict(one.view(), 0.0), array![[[none, 1u8, none, 0]]]);
        // Scored: a pixel without a prediction counts for no class, so it costs the class it
        // should have been (truth all background: class 0 has P=0 of G=4, Dice 0, where
        // NaN read as background gave it 3 of 4 right).
        let mut c = DiceCounts::new(3);
        c.add(predict(out.view(), 0.0).view(), array![[[0u8, 0, 0, 0]]].view());
        assert_eq!(
            (c.predicted.clone(), c.truth.clone(), c.intersection.clone()),
            (vec![0, 1, 0], vec![4, 0, 0], vec![0, 0, 0])
        );
    }

    #[test]
    fn dice_by_hand() {
        // truth  [0,1,1,2]   pred [0,1,2,2]
        // class0: P=1 G=1 I=1 -> 1; class1: P=1 G=2 I=1 -> 2/3; class2: P=2 G=1 I=1 -> 2/3;
        // class3: empty both -> 1
        let mut c = DiceCounts::new(4);
        c.add(aview1(&[0u8, 1, 2, 2]), aview1(&[0u8, 1, 1, 2]));
        let d = Dice::from_counts(&c);
        let want = [1.0, 2.0 / 3.0, 2.0 / 3.0, 1.0];
        for (a, b) in d.per_class.iter().zip(want) {
            assert!((a - b).abs() < 1e-12);
        }
        assert!((d.mean - (1.0 + 4.0 / 3.0 + 1.0) / 4.0).abs() < 1e-12);
        assert!((d.mean_fg - (4.0 / 3.0 + 1.0) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn table_counts_match_pixel_by_pixel_counts() {
        // A second implementation, pixel by pixel, on pseudo-random maps with labels and
        // predictions out of range, for class counts on both sides of the table's limit.
        let mut x: u32 = 12345;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for k in [1usize, 2, 4, 16, 17, 40] {
            // Mostly near the class range, now and then anything up to 255.
            let mut label = || if next() % 10 == 0 { (next() % 256) as u8 } else { (next() % (k as u32 + 3)) as u8 };
            let pred: Vec<u8> = (0..5000).map(|_| label()).collect();
            let truth: Vec<u8> = (0..5000).map(|_| label()).collect();
            let mut want = DiceCounts::new(k);
            for (&p, &g) in pred.iter().zip(&truth) {
                let (p, g) = (p as usize, g as usize);
                // A truth out of range is an ignored pixel: no count at all.
                if p < k && g < k {
                    want.predicted[p] += 1;
                }
                if g < k {
                    want.truth[g] += 1;
                    want.intersection[g] += u64::from(p == g);
                }
            }
            let mut got = DiceCounts::new(k);
            got.add(aview1(&pred[..1234]), aview1(&truth[..1234]));
            got.add(aview1(&pred[1234..]), aview1(&truth[1234..]));
            // Strided views (not contiguous) count the same pixels.
            let (p2, t2) = (
                Array2::from_shape_vec((50, 100), pred.clone()).unwrap(),
                Array2::from_shape_vec((50, 100), truth.clone()).unwrap(),
            );
            let mut strided = DiceCounts::new(k);
            strided.add(p2.t(), t2.t());
            assert_eq!(strided, want, "{k} classes, transposed views");
            assert_eq!(got, want, "{k} classes");
        }
    }

    #[test]
    fn counts_accumulate_over_batches() {
        let mut a = DiceCounts::new(2);
        a.add(aview1(&[1u8, 0]), aview1(&[1u8, 1]));
        a.add(aview1(&[1u8]), aview1(&[0u8]));
        let mut b = DiceCounts::new(2);
        b.add(aview1(&[1u8, 0, 1]), aview1(&[1u8, 1, 0]));
        assert_eq!(a, b);
        let (mut first, mut second) = (DiceCounts::new(2), DiceCounts::new(2));
        first.add(aview1(&[1u8, 0]), aview1(&[1u8, 1]));
        second.add(aview1(&[1u8]), aview1(&[0u8]));
        first.merge(&second);
        assert_eq!(first, b);
    }

    #[test]
    fn every_label_pair_and_every_tail_length_count_as_pixel_by_pixel() {
        // All 65,536 (prediction, truth) byte pairs, cut at every length from 0 to 9 and
        // past the four lanes (remainders 0 to 3), against counting each pixel by hand.
        let pred: Vec<u8> = (0..=255u8).flat_map(|p| std::iter::repeat_n(p, 256)).collect();
        let truth: Vec<u8> = (0..256).flat_map(|_| 0..=255u8).collect();
        let by_hand = |k: usize, p: &[u8], t: &[u8]| {
            let mut want = DiceCounts::new(k);
            for (&p, &g) in p.iter().zip(t) {
                let (p, g) = (usize::from(p), usize::from(g));
                if p < k && g < k {
                    want.predicted[p] += 1;
                }
                if g < k {
                    want.truth[g] += 1;
                    want.intersection[g] += u64::from(p == g);
                }
            }
            want
        };
        for k in [0usize, 1, 4, 15, 16, 17] {
            let ends = (0..=9).chain((0..4).map(|r| pred.len() - r));
            for end in ends {
                // The truth from the end of its array: a short cut pairs other labels.
                let (p, t) = (&pred[..end], &truth[pred.len() - end..]);
                let mut got = DiceCounts::new(k);
                got.add(aview1(p), aview1(t));
                assert_eq!(got, by_hand(k, p, t), "{k} classes, {end} pixels");
            }
        }
    }
}
