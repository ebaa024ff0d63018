//! Errors are values until `main`; these types decide the exit code there.
//!
//! Exit codes follow the usual convention: 0 success, 1 runtime failure, 2 usage error.
//!
//! Not where errors are printed (`main`, once, by the rank the ranks agreed on).

use std::fmt;

/// The user asked for something that cannot work (bad option, existing output without
/// `--force`). Exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Another rank failed and printed why; this rank only exits with the same code.
#[derive(Debug)]
pub struct ReportedElsewhere(pub u8);

impl fmt::Display for ReportedElsewhere {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "another rank failed (exit code {})", self.0)
    }
}

impl std::error::Error for ReportedElsewhere {}

/// Shorthand for returning a [`UsageError`].
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// The process exit code an error calls for.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    if let Some(ReportedElsewhere(code)) = error.downcast_ref() {
        *code
    } else if error.is::<UsageError>() {
        2
    } else {
        1
    }
}
