//! Errors are values until `main`; these types decide the exit code there.
//!
//! Exit codes follow the usual convention: 0 success, 1 runtime failure, 2 usage error.
//!
//! Not where errors are decided to be printed (`main`, once, by the rank the ranks agreed on):
//! only how a line goes out ([`print_line`]).

use std::fmt;
use std::io::Write;

/// Writes `line` and a newline to stderr in one `write`. Standard error is unbuffered, so
/// `eprintln!` with arguments writes in pieces; a launcher that ends the job right after
/// (`MPI_Abort`) forwards what reached its pipe by then, and MPICH's Hydra cut such messages
/// to their first piece (`mpi-sgd: error on rank `).
pub fn print_line(line: fmt::Arguments) {
    let mut text = fmt::format(line);
    text.push('\n');
    std::io::stderr().lock().write_all(text.as_bytes()).ok();
}

/// Ends the whole job from this rank alone (`MPI_Abort`), after the message this rank printed
/// has had time to leave: MPICH's Hydra kills every process as soon as it learns of the abort
/// and drops the output it has not forwarded yet (the message, and other ranks' last lines).
pub fn abort_job(code: i32) -> ! {
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: callers run after MPI_Init; MPI_Abort does not return.
    unsafe {
        mpi::ffi::MPI_Abort(mpi::ffi::RSMPI_COMM_WORLD, code);
    }
    unreachable!("MPI_Abort returned")
}

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
