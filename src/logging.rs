//! Console output: `log` records through env_logger, each line tagged with the rank.
//!
//! `RUST_LOG` works as usual (default `info`). Messages about the whole job are logged by rank 0
//! only ([`info_root!`]); per-rank details are at `debug`, so other ranks stay quiet unless
//! asked with `RUST_LOG=debug`. Logs go to stderr; stdout carries only the final summary line.
//!
//! Not the run file: logs are for people watching, the run file for analysis.

use std::io::Write;
use std::time::Instant;

/// Starts the logger for this rank; timestamps are seconds since `start`.
pub fn init(rank: usize, start: Instant) {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(move |buf, record| {
            writeln!(
                buf,
                "[{:>8.3}s {:<5} rank {}] {}",
                start.elapsed().as_secs_f64(),
                record.level(),
                rank,
                record.args()
            )
        })
        .init();
}

/// `info!` on rank 0 only: `info_root!(comm, "format", args...)`.
#[macro_export]
macro_rules! info_root {
    ($comm:expr, $($arg:tt)+) => {
        if $comm.is_root() {
            log::info!($($arg)+);
        }
    };
}
