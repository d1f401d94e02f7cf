//! cargo fuzz target `mapping`: see `fuzz/harness/mapping.rs` (also replayed over the corpus by
//! `tests/fuzz_corpus.rs`).

#![no_main]

#[path = "../harness/mapping.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
