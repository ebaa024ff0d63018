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
pub use train::{FederatedSettings, TrainSettings};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::{CommandFactory, Parser};
    use proptest::prelude::*;

    /// Every subcommand with its `--options`.
    fn subcommands() -> Vec<(String, Vec<String>)> {
        Cli::command()
            .get_subcommands()
            .map(|sub| {
                let options = sub.get_arguments().filter_map(|a| a.get_long());
                let options = options.map(|long| format!("--{long}")).collect();
                (sub.get_name().to_string(), options)
            })
            .collect()
    }

    /// Values that probe the edges: empty, negative, huge, non-finite, past u64, lists, paths.
    const VALUES: [&str; 33] = [
        "",
        "0",
        "1",
        "-1",
        "2",
        "3",
        "8",
        "0.5",
        "1e20",
        "-1e300",
        "1e-320",
        "nan",
        "inf",
        "-inf",
        "18446744073709551616",
        "4294967296",
        "1,2",
        "0,0",
        "64,,3",
        "synthetic",
        "f32",
        "f64",
        "mlp",
        "softmax",
        "logistic",
        "ring",
        "mpi",
        "1:compute:2",
        "x.h5",
        "/",
        ".",
        "..",
        "--force",
    ];

    /// Parses and validates like `main` (no command is run): errors are fine, panics are not.
    fn parse_and_validate(argv: &[String]) {
        let Ok(cli) = Cli::try_parse_from(argv) else {
            return;
        };
        let _ = match cli.command {
            Command::Train(args) => TrainSettings::from_args(*args).map(drop),
            Command::BenchAllreduce(args) => BenchSettings::from_args(args).map(drop),
            Command::Convert(args) => ConvertSettings::from_args(args).map(drop),
            Command::Evaluate(args) => {
                ModelInput::from_args(args);
                Ok(())
            }
            Command::Predict(args) => PredictSettings::from_args(args).map(drop),
            Command::Algorithms(_) | Command::Timeline(_) => Ok(()),
        };
    }

    proptest! {
        #[test]
        fn fuzz_argument_vectors_never_panic(
            (command, pairs) in proptest::sample::select(subcommands()).prop_flat_map(
                |(command, options)| {
                    let value = prop_oneof![
                        4 => proptest::sample::select(VALUES.to_vec()).prop_map(String::from),
                        1 => "\\PC{0,12}",
                    ];
                    let pair = (proptest::sample::select(options), value);
                    (Just(command), proptest::collection::vec(pair, 0..8))
                },
            )
        ) {
            let mut argv = vec!["mpi-sgd".to_string(), command];
            for (option, value) in pairs {
                argv.extend([option, value]);
            }
            parse_and_validate(&argv);
        }
    }
}
