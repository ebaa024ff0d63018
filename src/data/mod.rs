//! Training and test rows: where they come from ([`synthetic`] generators or an HDF5
//! [`file`]), for the rows a rank owns.
//!
//! Not the choice of rows ([`crate::partition`]), nor the model they feed.

pub mod file;
pub mod spec;
pub mod standardize;
pub mod synthetic;

use std::ops::Range;

use ndarray::{Array2, ArrayView2};

use crate::errors::usage;
use crate::partition::BatchPlan;
use crate::real::Real;
use file::{DataFile, Labels};
use spec::{DataSource, DataSpec, Split};
use synthetic::Generator;

/// The sizes of the data a run trains on, final once the source is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataShape {
    pub samples: usize,
    pub features: usize,
    pub test_samples: usize,
    pub classes: usize,
}

/// An opened source of rows.
pub enum Source {
    Synthetic(Generator),
    File(DataFile),
}

impl Source {
    /// Opens the configured source for `ranks` ranks and checks the requested sizes against
    /// it.
    pub fn open(spec: &DataSpec, ranks: usize) -> anyhow::Result<(Self, DataShape)> {
        match &spec.source {
            DataSource::Synthetic => {
                let requested =
                    |value: Option<usize>| value.expect("synthetic sizes have defaults");
                let per_rank = spec.samples_per_rank.map(|rows| rows * ranks);
                let shape = DataShape {
                    samples: requested(per_rank.or(spec.samples)),
                    features: requested(spec.features),
                    test_samples: requested(spec.test_samples),
                    classes: requested(spec.classes),
                };
                let generator = match spec.binary {
                    true => Generator::binary(shape.features, spec.label_noise, spec.seed),
                    false => Generator::blobs(shape.features, shape.classes, spec.seed),
                };
                Ok((Source::Synthetic(generator), shape))
            }
            DataSource::File(path) => {
                let file = DataFile::open(path, &spec.names, Labels::Required)?;
                let shown = path.display();
                let shape = DataShape {
                    samples: spec.samples.unwrap_or(file.rows),
                    features: file.features,
                    test_samples: spec.test_samples.unwrap_or(file.test_rows),
                    classes: spec.classes.unwrap_or(file.classes),
                };
                check_classes(spec, &file, shape.classes)?;
                if let Some(features) = spec.features.filter(|&f| f != file.features) {
                    return Err(usage(format!(
                        "--features {features}: {shown} has {} features; leave --features out to use the file's",
                        file.features
                    )));
                }
                if shape.samples > file.rows {
                    return Err(usage(format!(
                        "--samples {}: {shown} has only {} rows",
                        shape.samples, file.rows
                    )));
                }
                if shape.test_samples > file.test_rows {
                    return Err(usage(format!(
                        "--test-samples {}: {shown} has {} test rows ({}, {})",
                        shape.test_samples,
                        file.test_rows,
                        spec.names.x_test_name,
                        spec.names.y_test_name
                    )));
                }
                Ok((Source::File(file), shape))
            }
        }
    }

    /// The training rows of the plan's rank `train_rank` (its share of every global batch, in
    /// local order; none for `None`, a rank without training data) and the test rows
    /// `test_rows`.
    pub fn load<F: Real>(
        &self,
        spec: &DataSpec,
        shape: &DataShape,
        plan: &BatchPlan,
        train_rank: Option<usize>,
        test_rows: Range<usize>,
    ) -> anyhow::Result<(Dataset<F>, Dataset<F>)> {
        let train = match (self, train_rank) {
            (_, None) => Dataset {
                x: Array2::zeros((0, shape.features)),
                y: Vec::new(),
            },
            (Source::Synthetic(generator), Some(rank)) => {
                generator.generate(spec.seed, plan.global_rows(rank))
            }
            (Source::File(file), Some(rank)) => file.read_train(&plan.row_pattern(rank))?,
        };
        let test = match self {
            // Test rows follow the training rows in the global index space.
            Source::Synthetic(generator) => generator.generate(
                spec.seed,
                test_rows.start + shape.samples..test_rows.end + shape.samples,
            ),
            Source::File(file) => file.read_block(Split::Test, test_rows)?,
        };
        Ok((train, test))
    }
}

/// A usage error when the file's labels and the classes asked for disagree: a label the model
/// cannot output, a file that lists another number of classes, or more than two classes for
/// logistic regression.
fn check_classes(spec: &DataSpec, file: &DataFile, classes: usize) -> anyhow::Result<()> {
    let shown = spec.source.to_string();
    if spec.binary && file.classes > 2 {
        return Err(usage(format!(
            "{shown}: the labels have {} classes but logistic regression is binary; use --model softmax or mlp",
            file.classes
        )));
    }
    if classes < file.classes {
        return Err(usage(format!(
            "--classes {classes}: {shown} has labels up to {}; set --classes {} or leave it out",
            file.classes - 1,
            file.classes
        )));
    }
    if classes != file.classes && file.lists_classes {
        return Err(usage(format!(
            "--classes {classes}: {shown} lists {} classes (label_values); leave --classes out",
            file.classes
        )));
    }
    if classes < 2 {
        return Err(usage(format!(
            "{shown}: all labels are 0; a classifier needs at least 2 classes (set --classes)"
        )));
    }
    Ok(())
}

/// A rank's rows: features `x` [rows, features] and integer class labels `y` [rows].
#[derive(Debug, Clone)]
pub struct Dataset<F> {
    pub x: Array2<F>,
    pub y: Vec<u32>,
}

impl<F: Real> Dataset<F> {
    pub fn rows(&self) -> usize {
        self.y.len()
    }

    /// Rows `range` of the set, without copying.
    pub fn slice(&self, range: std::ops::Range<usize>) -> (ArrayView2<'_, F>, &[u32]) {
        (self.x.slice(ndarray::s![range.clone(), ..]), &self.y[range])
    }

    /// Bytes held by the feature matrix and labels.
    pub fn bytes(&self) -> usize {
        self.x.len() * std::mem::size_of::<F>() + self.y.len() * std::mem::size_of::<u32>()
    }
}
