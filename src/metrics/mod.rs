//! Metrics: data-free weight comparisons, Dice, and the swap metric (`--metric`).

pub mod bootstrap;
pub mod dice;
pub mod score;
pub mod spectral;
pub mod weights;
