//! Metrics: data-free weight comparisons and Dice.

pub mod bootstrap;
pub mod dice;
pub mod spectral;
pub mod weights;
