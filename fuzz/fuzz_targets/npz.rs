//! cargo fuzz target `npz`: see `fuzz/harness/npz.rs` (also replayed over the corpus by
//! `tests/fuzz_corpus.rs`).

#![no_main]

#[path = "../harness/common.rs"]
mod common;
#[path = "../harness/npz.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
