//! cargo fuzz target `npy`: see `fuzz/harness/npy.rs` (also replayed over the corpus by
//! `tests/fuzz_corpus.rs`).

#![no_main]

#[path = "../harness/common.rs"]
mod common;
#[path = "../harness/npy.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
