//! `convert`'s options -> [`ConvertSettings`]: the input format and CSV delimiter resolved
//! from the file name, the numbers checked, before any file is read.

use std::path::{Path, PathBuf};

use crate::cli::ConvertArgs;
use crate::errors::usage;
use crate::h5;
use crate::kinds::{Dtype, TextFormat};

#[derive(Debug, Clone)]
pub struct ConvertSettings {
    pub input: PathBuf,
    pub output: PathBuf,
    pub format: TextFormat,
    /// CSV field delimiter, one ASCII byte.
    pub delimiter: u8,
    /// The CSV's first line is a header (`Some(true)`), data (`Some(false)`), or decided by
    /// its fields (`None`).
    pub header: Option<bool>,
    pub label_column: Option<String>,
    /// LIBSVM: number of features; `None`: the largest index in the file.
    pub features: Option<usize>,
    pub test_fraction: f64,
    pub shuffle: bool,
    pub seed: u64,
    pub dtype: Dtype,
    pub compression: u8,
    pub force: bool,
}

impl ConvertSettings {
    pub fn from_args(args: ConvertArgs) -> anyhow::Result<Self> {
        if !(0.0..1.0).contains(&args.test_fraction) {
            return Err(usage(format!(
                "--test-fraction {}: must be in [0, 1)",
                args.test_fraction
            )));
        }
        if args.compression > 9 {
            return Err(usage(format!(
                "--compression {}: gzip levels are 0..9",
                args.compression
            )));
        }
        h5::refuse_output_over_input("OUTPUT", &args.output, &[("INPUT", &args.input)])?;
        Ok(Self {
            format: args.format.unwrap_or_else(|| format_of(&args.input)),
            delimiter: delimiter(&args)?,
            header: match (args.header, args.no_header) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            },
            input: args.input,
            output: args.output,
            label_column: args.label_column,
            features: args.features,
            test_fraction: args.test_fraction,
            shuffle: args.shuffle,
            seed: args.seed,
            dtype: args.dtype,
            compression: args.compression,
            force: args.force,
        })
    }
}

/// LIBSVM for `.svm`, `.libsvm` and `.svmlight` files, CSV otherwise.
fn format_of(input: &Path) -> TextFormat {
    let extension = input
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase());
    match extension.as_deref() {
        Some("svm" | "libsvm" | "svmlight") => TextFormat::Libsvm,
        _ => TextFormat::Csv,
    }
}

/// `--delimiter`, or tab for `.tsv` files and comma otherwise.
fn delimiter(args: &ConvertArgs) -> anyhow::Result<u8> {
    let tsv = args
        .input
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
    let delimiter = args.delimiter.unwrap_or(if tsv { '\t' } else { ',' });
    u8::try_from(delimiter)
        .ok()
        .filter(u8::is_ascii)
        .ok_or_else(|| {
            usage(format!(
                "--delimiter {delimiter:?}: must be one ASCII character"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_may_not_replace_the_input() {
        let dir = std::env::temp_dir().join(format!("mpi-sgd-convert-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let input = dir.join("rows.csv");
        std::fs::write(&input, "a,b\n1,0\n").unwrap();
        let args = |output: PathBuf| ConvertArgs {
            input: input.clone(),
            output,
            format: None,
            delimiter: None,
            header: false,
            no_header: false,
            label_column: None,
            features: None,
            test_fraction: 0.0,
            shuffle: false,
            seed: 42,
            dtype: Dtype::F64,
            compression: 4,
            force: true,
        };
        let refused = ConvertSettings::from_args(args(dir.join("./rows.csv"))).unwrap_err();
        assert!(refused.is::<crate::errors::UsageError>());
        assert!(refused.to_string().contains("INPUT"), "{refused}");
        assert!(ConvertSettings::from_args(args(dir.join("rows.h5"))).is_ok());
        std::fs::remove_dir_all(&dir).ok();
    }
}
