//! Validated settings, one struct per subcommand, made from the command line before MPI
//! starts: every default resolved, every value checked, a usage error (exit 2) naming the
//! option otherwise. What the rest of the program reads instead of the command line.
//!
//! Not the command line's types ([`crate::cli`]), and no checks that need the data file or the
//! number of ranks (those happen where the file is opened and the batch is planned).

pub mod bench;
pub mod convert;
pub mod inference;
pub mod train;

pub use bench::BenchSettings;
pub use convert::ConvertSettings;
pub use inference::{ModelInput, PredictSettings};
pub use train::TrainSettings;

/// A value of a resolved option, as stored in the run file's `/config` attributes.
#[derive(Debug, Clone, PartialEq)]
pub enum Setting {
    Text(String),
    Int(u64),
    Float(f64),
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Setting::Text(s) => f.write_str(s),
            Setting::Int(v) => write!(f, "{v}"),
            Setting::Float(v) => write!(f, "{v}"),
        }
    }
}

/// A float option's value as a message shows it: as typed for everyday values, in exponent
/// form for huge ones (1e300, not 301 digits).
pub(crate) fn shown(value: f64) -> String {
    match value.abs() >= 1e15 {
        true => format!("{value:e}"),
        false => format!("{value}"),
    }
}
