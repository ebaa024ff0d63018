//! What rows a run asks for: the data module's own description of its input, filled in by the
//! settings. Sizes left `None` are taken from the data file when it is opened
//! ([`super::Source::open`]).

use std::path::PathBuf;

use clap::Args;

/// Where the training rows come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    Synthetic,
    File(PathBuf),
}

impl std::fmt::Display for DataSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataSource::Synthetic => f.write_str("synthetic"),
            DataSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The rows asked for, before the source is opened.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSpec {
    pub source: DataSource,
    /// Training rows; `None`: every row of the data file, or `samples_per_rank` per rank.
    pub samples: Option<usize>,
    /// Weak scaling: rows per rank (synthetic data only).
    pub samples_per_rank: Option<usize>,
    /// Features; `None`: the data file's width.
    pub features: Option<usize>,
    /// Classes; `None`: a data file's own count.
    pub classes: Option<usize>,
    /// Test rows; `None`: every row of the file's test set.
    pub test_samples: Option<usize>,
    pub names: DatasetNames,
    /// Binary labels (logistic regression): the synthetic generator draws 0/1 labels, and a
    /// file may hold at most two classes.
    pub binary: bool,
    /// Probability that a synthetic binary label is flipped.
    pub label_noise: f64,
    /// Seed of the synthetic rows.
    pub seed: u64,
}

/// Names of the datasets inside a data file.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct DatasetNames {
    /// Dataset of the training features [rows, features].
    #[arg(long, default_value = "X", value_name = "NAME")]
    pub x_name: String,
    /// Dataset of the training labels [rows].
    #[arg(long, default_value = "y", value_name = "NAME")]
    pub y_name: String,
    /// Dataset of the test features (optional in the file).
    #[arg(long, default_value = "X_test", value_name = "NAME")]
    pub x_test_name: String,
    /// Dataset of the test labels (optional in the file).
    #[arg(long, default_value = "y_test", value_name = "NAME")]
    pub y_test_name: String,
}

impl Default for DatasetNames {
    fn default() -> Self {
        Self {
            x_name: "X".into(),
            y_name: "y".into(),
            x_test_name: "X_test".into(),
            y_test_name: "y_test".into(),
        }
    }
}

/// The training or the test part of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Split {
    Train,
    Test,
}
