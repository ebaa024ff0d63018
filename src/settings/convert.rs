//! `convert`'s options -> [`ConvertSettings`]: the input format and CSV delimiter resolved
//! from the file name, the numbers checked, before any file is read.

use std::path::{Path, PathBuf};

use crate::cli::ConvertArgs;
use crate::errors::usage;
use crate::h5;
use crate::kinds::{Dtype, InputFormat};

#[derive(Debug, Clone)]
pub struct ConvertSettings {
    pub input: PathBuf,
    pub output: PathBuf,
    pub format: InputFormat,
    /// IDX: the labels file, and the test images and labels (`X_test`, `y_test`).
    pub labels: Option<PathBuf>,
    pub test: Option<(PathBuf, PathBuf)>,
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
        let format = args.format.unwrap_or_else(|| format_of(&args.input));
        check_idx(&args, format)?;
        let mut inputs = vec![("INPUT", args.input.as_path())];
        inputs.extend(args.labels.as_deref().map(|p| ("--labels", p)));
        inputs.extend(args.test_images.as_deref().map(|p| ("--test-images", p)));
        inputs.extend(args.test_labels.as_deref().map(|p| ("--test-labels", p)));
        h5::refuse_output_over_input("OUTPUT", &args.output, &inputs)?;
        Ok(Self {
            format,
            delimiter: delimiter(&args)?,
            test: args.test_images.zip(args.test_labels),
            labels: args.labels,
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

/// LIBSVM for `.svm`, `.libsvm` and `.svmlight` files, IDX for names with `idx` in them (as
/// MNIST's are), CSV otherwise.
fn format_of(input: &Path) -> InputFormat {
    let extension = input
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase());
    let idx = input
        .file_name()
        .is_some_and(|n| n.to_string_lossy().to_lowercase().contains("idx"));
    match extension.as_deref() {
        Some("svm" | "libsvm" | "svmlight") => InputFormat::Libsvm,
        _ if idx => InputFormat::Idx,
        _ => InputFormat::Csv,
    }
}

/// IDX images need their labels; the IDX options go with IDX input only; a test set from files
/// is not also cut from the rows or shuffled into them.
fn check_idx(args: &ConvertArgs, format: InputFormat) -> anyhow::Result<()> {
    let idx = format == InputFormat::Idx;
    if idx && args.labels.is_none() {
        return Err(usage(
            "IDX images need their labels: add --labels train-labels-idx1-ubyte (and for a test set --test-images, --test-labels)",
        ));
    }
    if !idx && (args.labels.is_some() || args.test_images.is_some()) {
        return Err(usage(format!(
            "--labels, --test-images and --test-labels apply to IDX input, not {} (use --format idx if INPUT is IDX)",
            format.name()
        )));
    }
    if args.test_images.is_some() && (args.test_fraction > 0.0 || args.shuffle) {
        return Err(usage(
            "--test-images gives the test rows; leave out --test-fraction and --shuffle",
        ));
    }
    Ok(())
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
            labels: None,
            test_images: None,
            test_labels: None,
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
        let labels = ConvertArgs {
            format: Some(InputFormat::Idx),
            labels: Some(dir.join("labels-idx1-ubyte")),
            ..args(dir.join("images.h5"))
        };
        let refused = ConvertSettings::from_args(ConvertArgs {
            output: dir.join("labels-idx1-ubyte"),
            ..labels.clone()
        });
        assert!(refused.unwrap_err().to_string().contains("--labels"));
        for (args, needle) in [
            (
                ConvertArgs {
                    labels: None,
                    ..labels.clone()
                },
                "need their labels",
            ),
            (
                ConvertArgs {
                    format: None,
                    ..labels.clone()
                },
                "apply to IDX input",
            ),
            (
                ConvertArgs {
                    test_images: Some(dir.join("t")),
                    test_labels: Some(dir.join("tl")),
                    test_fraction: 0.1,
                    ..labels.clone()
                },
                "--test-fraction",
            ),
        ] {
            let refused = ConvertSettings::from_args(args).unwrap_err().to_string();
            assert!(refused.contains(needle), "{needle}: {refused}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
