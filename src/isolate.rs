//! Panic isolation: one feed's or one file's processing is run so that a panic in it
//! (a bug the input found; the code aims to have none, see ARCHITECTURE.md,
//! "Nothing panics on input") becomes that feed's or file's error, and the daemon or
//! `scan` goes on with the rest. Callers count it (`metrics::Metrics::panicked`) and
//! name the feed or file.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A panic caught by [`isolate`], with its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("internal error: {message}")]
pub struct Panicked {
    pub message: String,
}

/// Runs `f`, turning a panic in it into [`Panicked`].
///
/// The closure's captures are asserted unwind-safe: the callers hand it one feed's
/// or file's input and drop what it was building when it panics, so no half-updated
/// state outlives the panic.
pub fn isolate<T>(f: impl FnOnce() -> T) -> Result<T, Panicked> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| Panicked {
        message: panic_message(payload.as_ref()),
    })
}

/// The message a panic carried (`panic!("…")` gives a `&str` or a `String`).
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_with_its_message() {
        assert_eq!(isolate(|| 7), Ok(7));
        let err = isolate(|| -> u32 { panic!("byte index 9 is not a char boundary") }).unwrap_err();
        assert_eq!(
            err.to_string(),
            "internal error: byte index 9 is not a char boundary"
        );
        let n = 3;
        let err = isolate(|| -> u32 { panic!("formatted {n}") }).unwrap_err();
        assert_eq!(err.message, "formatted 3");
    }
}
