//! `--shard K/N`: a deterministic part of an audit's swaps. Swaps come in units (all swaps
//! of one layer together: they share the incremental strategy's region session), each with
//! a cost (downstream FLOPs x swaps where known). Units are dealt costliest first, each to
//! the shard with the least cost so far (longest-processing-time-first), ties to the lower
//! shard and the lower pair: every machine computes the same split from the same inputs.

use std::fmt;
use std::str::FromStr;

/// The most shards an audit may be split into (`--shard K/N`, and a journal's header): far
/// more than any job array runs, few enough that a list of every shard (the split, and
/// `merge`'s check that none is missing) stays small.
pub const MAX_SHARDS: usize = 100_000;

/// Why `count` shards are too many, if they are.
pub fn check_count(count: usize) -> Result<(), String> {
    match count <= MAX_SHARDS {
        true => Ok(()),
        false => Err(format!("{count} shards are more than the {MAX_SHARDS} an audit may be split into")),
    }
}

/// Shard `index` of `count` (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1..=count.
    pub index: usize,
    /// Shards in all (at least 1).
    pub count: usize,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("'{s}' is not K/N with 1 <= K <= N (e.g. 2/4)");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) =
            (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        check_count(count).map_err(|why| format!("'{s}': {why}"))?;
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A unit of work: pairs that go to the same shard, and what they cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// Indices into the pairing's pairs, ascending.
    pub pairs: Vec<usize>,
    /// Relative cost (any positive scale).
    pub cost: f64,
}

/// The pairs of every shard (index 0 is shard 1), each list ascending.
pub fn partition(units: &[Unit], count: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..units.len()).collect();
    let first = |u: &Unit| u.pairs.first().copied().unwrap_or(usize::MAX);
    order.sort_by(|&a, &b| units[b].cost.total_cmp(&units[a].cost).then(first(&units[a]).cmp(&first(&units[b]))));
    let mut load = vec![0.0f64; count.max(1)];
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); count.max(1)];
    for u in order {
        let mut best = 0;
        for s in 1..load.len() {
            if load[s] < load[best] {
                best = s;
            }
        }
        load[best] += units[u].cost;
        out[best].extend(&units[u].pairs);
    }
    for pairs in &mut out {
        pairs.sort_unstable();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        assert_eq!("1/1".parse::<Shard>(), Ok(Shard { index: 1, count: 1 }));
        for bad in ["0/3", "4/3", "3", "a/b", "1/0", "-1/2", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!(Shard { index: 2, count: 3 }.to_string(), "2/3");
    }

    #[test]
    fn costliest_first_to_the_lightest_shard() {
        // Costs 8, 5, 4, 3, 2 over 2 shards by hand: 8 -> s1 (8); 5 -> s2 (5); 4 -> s2 (9);
        // 3 -> s1 (11); 2 -> s2 (11).
        let units: Vec<Unit> = [(0, 4.0), (1, 8.0), (2, 2.0), (3, 5.0), (4, 3.0)]
            .iter()
            .map(|&(p, cost)| Unit { pairs: vec![p], cost })
            .collect();
        assert_eq!(partition(&units, 2), vec![vec![1, 4], vec![0, 2, 3]]);
    }

    #[test]
    fn every_pair_exactly_once_and_units_kept_whole() {
        let units: Vec<Unit> =
            (0..10).map(|u| Unit { pairs: vec![2 * u, 2 * u + 1], cost: 1.0 + (u % 3) as f64 }).collect();
        for n in 1..=12 {
            let parts = partition(&units, n);
            assert_eq!(parts.len(), n);
            let mut all: Vec<usize> = parts.concat();
            all.sort_unstable();
            assert_eq!(all, (0..20).collect::<Vec<_>>(), "{n} shards");
            for p in &parts {
                for pair in p {
                    let mate = pair ^ 1;
                    assert!(p.contains(&mate), "{n} shards: a layer's swaps split");
                }
            }
        }
        // Equal costs: dealt in pair order, one unit each, round robin.
        let even: Vec<Unit> = (0..6).map(|u| Unit { pairs: vec![u], cost: 1.0 }).collect();
        assert_eq!(partition(&even, 3), vec![vec![0, 3], vec![1, 4], vec![2, 5]]);
    }
}
