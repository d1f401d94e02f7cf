//! The bootstrap: counts by hand, the generator against its published stream, the matrix
//! path against a plain loop, and coverage on a population whose loss is known.

use ndarray::{array, Array3};

use super::*;
use crate::metrics::dice::Dice;

#[test]
fn per_image_counts_by_hand_and_their_sum() {
    // Image 0: truth [0,1,1,2], pred [0,1,2,2]; image 1: truth [1,1,0,0], pred [1,0,0,0].
    let pred = array![[[0u8, 1], [2, 2]], [[1, 0], [0, 0]]];
    let truth = array![[[0u8, 1], [1, 2]], [[1, 1], [0, 0]]];
    let c = image_counts(pred.view(), truth.view(), 3);
    // [image, class, (I, P, G)]
    assert_eq!(c.slice(s![0, .., ..]), array![[1u32, 1, 1], [1, 1, 2], [1, 2, 1]]);
    assert_eq!(c.slice(s![1, .., ..]), array![[2u32, 3, 2], [1, 1, 2], [0, 0, 0]]);
    let mut whole = DiceCounts::new(3);
    whole.add(pred.view(), truth.view());
    assert_eq!(totals(c.view()), whole);
}

#[test]
fn images_with_a_pixel_of_no_prediction_by_hand() {
    // Three images of 4 pixels: image 1 has one pixel of no prediction, image 2 all four.
    let none = crate::metrics::dice::NO_PREDICTION;
    let pred = array![[[0u8, 1], [2, 2]], [[1, none], [0, 0]], [[none, none], [none, none]]];
    let truth = array![[[0u8, 1], [1, 2]], [[1, 1], [0, 0]], [[0, 0], [2, 2]]];
    let c = image_counts(pred.view(), truth.view(), 3);
    assert_eq!(images_without_prediction(c.view()), 2);
    assert_eq!(images_without_prediction(c.slice(s![..1, .., ..])), 0);
    // Image 2 predicts nothing: every class has P = 0, and its truth is still counted.
    assert_eq!(c.slice(s![2, .., ..]), array![[0u32, 0, 2], [0, 0, 0], [0, 0, 2]]);
}

#[test]
fn splitmix64_is_the_published_stream() {
    // The reference implementation (Vigna, splitmix64.c) seeded with 0.
    let mut r = SplitMix64::new(0);
    assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
    assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    assert_eq!(r.next_u64(), 0x06c4_5d18_8009_454f);
    // below(n) stays in range and reaches every value.
    let mut seen = [0usize; 7];
    for _ in 0..7000 {
        seen[r.below(7)] += 1;
    }
    assert!(seen.iter().all(|&c| (850..1150).contains(&c)), "{seen:?}");
}

#[test]
fn quantiles_follow_numpys_linear_rule() {
    // numpy.quantile([1, 2, 3, 4, 10], [0.025, 0.5, 0.975]) = [1.1, 3.0, 9.4]
    let v = [1.0, 2.0, 3.0, 4.0, 10.0];
    for (q, want) in [(0.025, 1.1), (0.5, 3.0), (0.975, 9.4), (0.0, 1.0), (1.0, 10.0)] {
        assert!((quantile(&v, q) - want).abs() < 1e-12, "{q}");
    }
    assert_eq!(percentile_interval(vec![f64::NAN, 2.0, 1.0], 0.0), (1.5, 1.5));
}

/// Random per-image counts: `m` images, `classes` classes, (I <= P, I <= G).
fn random_counts(rng: &mut SplitMix64, m: usize, classes: usize) -> Array3<u32> {
    let mut c = Array3::zeros((m, classes, 3));
    for i in 0..m {
        for k in 0..classes {
            let g = rng.below(200) as u32;
            let hit = if g == 0 { 0 } else { rng.below(g as usize + 1) as u32 };
            let p = hit + rng.below(40) as u32;
            c[[i, k, 0]] = hit;
            c[[i, k, 1]] = p;
            c[[i, k, 2]] = g;
        }
    }
    c
}

#[test]
fn the_matrix_path_equals_a_plain_loop_over_resamples() {
    let mut rng = SplitMix64::new(5);
    let (m, classes) = (23, 3);
    let base = random_counts(&mut rng, m, classes);
    let swaps: Vec<Array3<u32>> = (0..3).map(|_| random_counts(&mut rng, m, classes)).collect();
    let views: Vec<_> = swaps.iter().map(|a| a.view()).collect();
    let got = delta_intervals(base.view(), &views, 0.9, 300);
    // The same draws, summed image by image with DiceCounts and Dice::from_counts.
    let mut draw = SplitMix64::new(seed_for(m));
    let mut deltas = vec![Vec::new(); swaps.len()];
    for _ in 0..300 {
        let picks: Vec<usize> = (0..m).map(|_| draw.below(m)).collect();
        let sum = |a: &Array3<u32>| {
            let mut c = DiceCounts::new(classes);
            for &i in &picks {
                let one = totals(a.slice(s![i..i + 1, .., ..]));
                c.merge(&one);
            }
            Dice::from_counts(&c).mean
        };
        let b = sum(&base);
        for (d, sw) in deltas.iter_mut().zip(&swaps) {
            d.push(b - sum(sw));
        }
    }
    for (g, d) in got.iter().zip(deltas) {
        let want = percentile_interval(d, 0.9);
        assert!((g.0 - want.0).abs() < 1e-12 && (g.1 - want.1).abs() < 1e-12, "{g:?} vs {want:?}");
    }
    // The draws depend only on the images: asking about one swap gives its interval.
    assert_eq!(delta_intervals(base.view(), &views[1..2], 0.9, 300)[0], got[1]);
}

#[test]
fn an_unchanged_swap_has_the_interval_zero() {
    let mut rng = SplitMix64::new(1);
    let base = random_counts(&mut rng, 10, 4);
    assert_eq!(delta_intervals(base.view(), &[base.view()], 0.95, 200), vec![(0.0, 0.0)]);
}

/// A population of images with known pooled Dice: per image, 2 classes; the swap loses
/// foreground hits on some images. Returns (baseline, swap) counts.
fn population(rng: &mut SplitMix64, n: usize) -> (Array3<u32>, Array3<u32>) {
    let mut base = Array3::zeros((n, 2, 3));
    let mut swap = Array3::zeros((n, 2, 3));
    for i in 0..n {
        let pixels = 1024u32;
        let g = 50 + rng.below(300) as u32;
        let miss = rng.below(1 + g as usize / 10) as u32;
        // The swap misses more, strongly on some images (a skewed per-image loss).
        let extra = if rng.unit() < 0.3 { rng.below(1 + g as usize / 3) as u32 } else { 0 };
        for (dst, missed) in [(&mut base, miss), (&mut swap, (miss + extra).min(g))] {
            let hit = g - missed;
            // Foreground: predicted = hits; background takes the missed pixels.
            dst[[i, 1, 0]] = hit;
            dst[[i, 1, 1]] = hit;
            dst[[i, 1, 2]] = g;
            dst[[i, 0, 0]] = pixels - g;
            dst[[i, 0, 1]] = pixels - hit;
            dst[[i, 0, 2]] = pixels - g;
        }
    }
    (base, swap)
}

#[test]
fn intervals_cover_the_known_loss_at_about_the_nominal_rate() {
    // The truth: the pooled loss over a population of 20000 images. Each trial scores a
    // validation set of 40 images drawn from it and asks whether the 95% interval holds
    // the truth; over 400 trials the share should be near 0.95 (the percentile bootstrap
    // runs a little short at small n).
    let mut rng = SplitMix64::new(2024);
    let (pb, ps) = population(&mut rng, 20_000);
    let mean = |a: &Array3<u32>| Dice::from_counts(&totals(a.view())).mean;
    let truth = mean(&pb) - mean(&ps);
    assert!(truth > 0.005, "a loss to find: {truth}");
    let (trials, m) = (400, 40);
    let mut covered = 0;
    for _ in 0..trials {
        let picks: Vec<usize> = (0..m).map(|_| rng.below(20_000)).collect();
        let (b, s) = (pb.select(ndarray::Axis(0), &picks), ps.select(ndarray::Axis(0), &picks));
        let (lo, hi) = delta_intervals(b.view(), &[s.view()], 0.95, 400)[0];
        covered += usize::from(lo <= truth && truth <= hi);
    }
    let rate = covered as f64 / trials as f64;
    eprintln!("coverage {rate} (truth {truth:.5})");
    assert!((0.91..=0.985).contains(&rate), "coverage {rate}");
    // And a 50% interval covers about half as often: the level is what it says.
    let mut half = 0;
    for _ in 0..trials {
        let picks: Vec<usize> = (0..m).map(|_| rng.below(20_000)).collect();
        let (b, s) = (pb.select(ndarray::Axis(0), &picks), ps.select(ndarray::Axis(0), &picks));
        let (lo, hi) = delta_intervals(b.view(), &[s.view()], 0.5, 400)[0];
        half += usize::from(lo <= truth && truth <= hi);
    }
    let rate = half as f64 / trials as f64;
    assert!((0.42..=0.58).contains(&rate), "50% coverage {rate}");
}

#[test]
fn scores_of_pooled_sums_by_hand() {
    // Two classes: (I, P, G) = (1, 2, 2) and (0, 0, 0): Dice 2/4 and 1 (empty): mean 0.75;
    // share correct = 1 / 2.
    let sums = [1.0, 2.0, 2.0, 0.0, 0.0, 0.0];
    assert!((mean_dice(&sums) - 0.75).abs() < 1e-15);
    assert!((share_correct(&sums) - 0.5).abs() < 1e-15);
    assert_eq!(share_correct(&[0.0; 6]), 1.0);
    // The interval of another score: an unchanged swap still has the interval zero.
    let mut rng = SplitMix64::new(2);
    let base = random_counts(&mut rng, 12, 3);
    assert_eq!(delta_intervals_by(base.view(), &[base.view()], 0.9, 200, share_correct), vec![(0.0, 0.0)]);
}
