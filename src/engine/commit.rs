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
            Err(RuntimeFailure::refused(refusal(what)))
        }
    }
}

/// What a panic inside the binding's session build (its message `what`) says to the user.
/// The binding reads the session's input and output types with `expect("infallible")`:
/// `infallible: Error { code: .., message: "..", ptr: 0x.. }` is that read failing (a shape
/// inferred with a negative dimension). Any other panic is said as it is, not as a shape.
fn refusal(what: &str) -> String {
    let types = what.starts_with("infallible");
    // The message alone (the address would make two runs' errors differ).
    let what = what.split_once("message: \"").and_then(|(_, m)| m.split_once('"')).map_or(what, |(m, _)| m);
    match types {
        true => format!(
            "the session's inputs or outputs have an invalid type or shape ({what}); a shape \
             inferred with a negative dimension comes from a kernel, dilation or padding that \
             does not fit the input"
        ),
        false => format!("the ONNX Runtime binding failed while building the session ({what})"),
    }
}

#[cfg(test)]
mod tests {
    use super::refusal;

    #[test]
    fn only_the_type_read_is_called_a_shape_problem() {
        let types = refusal(r#"infallible: Error { code: Fail, message: "bad dim -3", ptr: 0x55aa }"#);
        assert!(
            types.starts_with("the session's inputs or outputs have an invalid type or shape (bad dim -3)"),
            "{types}"
        );
        assert!(!types.contains("0x55aa"), "{types}");
        // Any other panic was reported as an invalid shape too (regression).
        let other = refusal("index out of bounds: the len is 0 but the index is 0");
        assert_eq!(
            other,
            "the ONNX Runtime binding failed while building the session (index out of bounds: the len is 0 but the index is 0)"
        );
    }
}
