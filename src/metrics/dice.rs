//! Dice per class over a whole validation set (METHOD.md): argmax over class channels
//! (one channel: sigmoid > 0.5, i.e. logit > 0), 1.0 when prediction and truth are both empty.

/// Turn model output `[n, c, h, w]` (row-major) into a class map `[n, h, w]`.
pub fn predict(output: &[f32], n: usize, c: usize, hw: usize) -> Vec<u8> {
    let mut out = vec![0u8; n * hw];
    for b in 0..n {
        let img = &output[b * c * hw..(b + 1) * c * hw];
        let dst = &mut out[b * hw..(b + 1) * hw];
        if c == 1 {
            for (d, &v) in dst.iter_mut().zip(img) {
                *d = u8::from(v > 0.0);
            }
            continue;
        }
        let mut best = img[..hw].to_vec();
        for k in 1..c {
            let ch = &img[k * hw..(k + 1) * hw];
            for p in 0..hw {
                // Strictly greater: ties go to the lower class, and NaN never wins.
                if ch[p] > best[p] {
                    best[p] = ch[p];
                    dst[p] = k as u8;
                }
            }
        }
    }
    out
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

    /// Add a batch of predicted and true class maps (same length).
    pub fn add(&mut self, pred: &[u8], truth: &[u8]) {
        let k = self.predicted.len();
        if k <= 16 {
            // One increment per pixel into a (pred, truth) table, class k standing for
            // anything out of range; the sums come out of the table.
            let w = k + 1;
            let mut table = vec![0u64; w * w];
            for (&p, &g) in pred.iter().zip(truth) {
                table[(p as usize).min(k) * w + (g as usize).min(k)] += 1;
            }
            for c in 0..k {
                self.predicted[c] += table[c * w..(c + 1) * w].iter().sum::<u64>();
                self.truth[c] += (0..w).map(|r| table[r * w + c]).sum::<u64>();
                self.intersection[c] += table[c * w + c];
            }
            return;
        }
        for (&p, &g) in pred.iter().zip(truth) {
            let (p, g) = (p as usize, g as usize);
            if p < k {
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
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
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
    use super::*;

    #[test]
    fn argmax_and_sigmoid() {
        // one image, 3 classes, 2 pixels: pixel0 -> class 2, pixel1 -> tie of 0 and 1 -> 0
        let out = [0.0, 5.0, 1.0, 5.0, 3.0, -1.0];
        assert_eq!(predict(&out, 1, 3, 2), vec![2, 0]);
        assert_eq!(predict(&[0.3, -0.2, 0.0], 1, 1, 3), vec![1, 0, 0]);
    }

    #[test]
    fn dice_by_hand() {
        // truth  [0,1,1,2]   pred [0,1,2,2]
        // class0: P=1 G=1 I=1 -> 1; class1: P=1 G=2 I=1 -> 2/3; class2: P=2 G=1 I=1 -> 2/3;
        // class3: empty both -> 1
        let mut c = DiceCounts::new(4);
        c.add(&[0, 1, 2, 2], &[0, 1, 1, 2]);
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
            let pred: Vec<u8> = (0..5000).map(|_| (next() % (k as u32 + 3)) as u8).collect();
            let truth: Vec<u8> = (0..5000).map(|_| (next() % (k as u32 + 3)) as u8).collect();
            let mut want = DiceCounts::new(k);
            for (&p, &g) in pred.iter().zip(&truth) {
                let (p, g) = (p as usize, g as usize);
                if p < k {
                    want.predicted[p] += 1;
                }
                if g < k {
                    want.truth[g] += 1;
                    want.intersection[g] += u64::from(p == g);
                }
            }
            let mut got = DiceCounts::new(k);
            got.add(&pred[..1234], &truth[..1234]);
            got.add(&pred[1234..], &truth[1234..]);
            assert_eq!(got, want, "{k} classes");
        }
    }

    #[test]
    fn counts_accumulate_over_batches() {
        let mut a = DiceCounts::new(2);
        a.add(&[1, 0], &[1, 1]);
        a.add(&[1], &[0]);
        let mut b = DiceCounts::new(2);
        b.add(&[1, 0, 1], &[1, 1, 0]);
        assert_eq!(a, b);
        let (mut first, mut second) = (DiceCounts::new(2), DiceCounts::new(2));
        first.add(&[1, 0], &[1, 1]);
        second.add(&[1], &[0]);
        first.merge(&second);
        assert_eq!(first, b);
    }
}
