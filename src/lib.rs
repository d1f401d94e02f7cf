//! reuse-audit: can the parameters of a pretrained CNN be reused for your task?
//!
//! The library behind the `reuse-audit` binary. [`pipeline`] is the entry point: a
//! data-free comparison ([`pipeline::rmse`]) or a full swap audit ([`pipeline::Audit`]),
//! each returning a [`report::Report`]. Underneath: ONNX loading and layer pairing
//! (`model`, `pair`), weight metrics and Dice (`metrics`), validation data (`data`), ONNX
//! Runtime (`engine`), the swap audit (`audit`), verdicts (`verdict`), which data-free
//! metric predicts the measured loss (`predictors`) and report writers
//! (`report`).

pub mod audit;
pub mod data;
pub mod engine;
pub mod error;
pub mod input;
pub mod journal;
pub mod metrics;
pub mod model;
pub mod pair;
pub mod pipeline;
pub mod plan;
pub mod predictors;
pub mod profile;
pub mod report;
pub mod verdict;
