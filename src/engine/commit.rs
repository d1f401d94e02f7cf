//! Building a session without the `ort` binding's panics. `commit_from_memory` reads the
//! types of the session's inputs and outputs and `expect`s them to be valid: a model whose
//! shapes ONNX Runtime infers with a negative dimension (a Conv kernel or dilation far larger
//! than its input) made it panic instead of returning an error. The panic is caught here,
//! its default message silenced, and it becomes the refusal it is.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use ort::session::{builder::SessionBuilder, Session};

use super::logging::RuntimeFailure;

thread_local! {
    /// Set while this thread commits a session: its panic is caught, so not printed.
    static COMMITTING: Cell<bool> = const { Cell::new(false) };
}

/// `builder.commit_from_memory(model)`, with a panic inside the binding as an error.
pub fn commit(mut builder: SessionBuilder, model: &[u8]) -> anyhow::Result<Session> {
    static QUIET: Once = Once::new();
    QUIET.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !COMMITTING.with(Cell::get) {
                default(info);
            }
        }));
    });
    COMMITTING.with(|c| c.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(|| builder.commit_from_memory(model)));
    COMMITTING.with(|c| c.set(false));
    match result {
        Ok(built) => built.map_err(RuntimeFailure::refused),
        Err(payload) => {
            let what = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            // `infallible: Error { code: .., message: "..", ptr: 0x.. }`: the message alone
            // (the address would make two runs' errors differ).
            let what = what.split_once("message: \"").and_then(|(_, m)| m.split_once('"')).map_or(what, |(m, _)| m);
            Err(RuntimeFailure::refused(format!(
                "the session's inputs or outputs have an invalid type or shape ({what}); a shape \
                 inferred with a negative dimension comes from a kernel, dilation or padding that \
                 does not fit the input"
            )))
        }
    }
}
