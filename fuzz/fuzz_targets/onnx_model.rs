//! cargo fuzz target `onnx_model`: see `fuzz/harness/onnx_model.rs` (also replayed over the corpus by
//! `tests/fuzz_corpus.rs`).

#![no_main]

#[path = "../harness/onnx_model.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
