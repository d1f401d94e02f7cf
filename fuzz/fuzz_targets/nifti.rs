//! cargo fuzz target `nifti`: see `fuzz/harness/nifti.rs` (also replayed over the corpus by
//! `tests/fuzz_corpus.rs`).

#![no_main]

#[path = "../harness/common.rs"]
mod common;
#[path = "../harness/nifti.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
