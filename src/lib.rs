//! reuse-audit: can the parameters of a pretrained CNN be reused for your task?
//!
//! The library behind the `reuse-audit` binary: ONNX loading and layer pairing (`model`,
//! `pair`), weight metrics and Dice (`metrics`), validation data (`data`), ONNX Runtime
//! (`engine`), the swap audit (`audit`), verdicts (`verdict`) and reports (`report`).

pub mod audit;
pub mod cli;
pub mod commands;
pub mod config;
pub mod data;
pub mod engine;
pub mod error;
pub mod metrics;
pub mod model;
pub mod pair;
pub mod report;
pub mod verdict;
