//! What rows a run asks for: the data module's own description of its input, filled in by the
//! settings. Sizes left `None` are taken from the data file when it is opened
//! ([`super::Source::open`]).

use std::path::PathBuf;

use super::file::DatasetNames;

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
