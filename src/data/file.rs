//! Training data from an HDF5 file, each rank reading only its own rows.
//!
//! The file holds `X` [rows, features] (float32 or float64), `y` [rows] (integer class labels
//! 0..K-1) and, optionally, a test set `X_test`, `y_test` of the same width. A rank's training
//! rows (its share of every global batch, see [`super::partition`]) are one strided hyperslab
//! plus, when the last batch is short, one contiguous range: two reads per dataset, and a rank
//! holds only its share of the data in memory. HDF5 converts the stored float type to the
//! run's `--dtype` while reading.

use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::Context;
use hdf5::{Dataset as H5Dataset, Hyperslab, SliceOrIndex};
use ndarray::{concatenate, Array2, Axis};

use super::partition::RowPattern;
use super::Dataset;
use crate::errors::usage;
use crate::real::Real;

pub struct DataFile {
    path: PathBuf,
    file: hdf5::File,
    pub rows: usize,
    pub features: usize,
    pub test_rows: usize,
}

impl DataFile {
    /// Opens the file and checks the datasets' shapes; usage errors name the file and dataset.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let shown = path.display();
        if !path.exists() {
            return Err(usage(format!(
                "--data {shown}: no such file; give an HDF5 file or `synthetic`"
            )));
        }
        let file = hdf5::File::open(path)
            .map_err(|e| usage(format!("--data {shown}: not a readable HDF5 file ({e})")))?;
        let shape = |name: &str, dims: usize| -> anyhow::Result<Option<Vec<usize>>> {
            if !file.link_exists(name) {
                return Ok(None);
            }
            let shape = file
                .dataset(name)
                .map_err(|e| usage(format!("--data {shown}: {name}: {e}")))?
                .shape();
            if shape.len() != dims {
                return Err(usage(format!(
                    "--data {shown}: {name} has {} dimensions, expected {dims}",
                    shape.len()
                )));
            }
            Ok(Some(shape))
        };
        let missing = |name: &str| {
            usage(format!(
                "--data {shown}: no dataset {name}; the file needs X [rows, features] and y [rows]"
            ))
        };
        let x = shape("X", 2)?.ok_or_else(|| missing("X"))?;
        let y = shape("y", 1)?.ok_or_else(|| missing("y"))?;
        if y[0] != x[0] {
            return Err(usage(format!(
                "--data {shown}: X has {} rows but y has {}",
                x[0], y[0]
            )));
        }
        let test_rows = match (shape("X_test", 2)?, shape("y_test", 1)?) {
            (None, None) => 0,
            (Some(xt), Some(yt)) if xt[1] == x[1] && xt[0] == yt[0] => xt[0],
            _ => {
                return Err(usage(format!(
                    "--data {shown}: X_test and y_test must both be present, with {} columns and as many labels as rows",
                    x[1]
                )))
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            file,
            rows: x[0],
            features: x[1],
            test_rows,
        })
    }

    /// The training rows of `pattern`, in that order.
    pub fn read_train<F: Real>(
        &self,
        pattern: &RowPattern,
        classes: usize,
    ) -> anyhow::Result<Dataset<F>> {
        let strided = SliceOrIndex::SliceCount {
            start: pattern.first,
            step: pattern.stride,
            count: pattern.count,
            block: pattern.block,
        };
        let tail = SliceOrIndex::from(pattern.tail.clone());
        let mut parts = vec![self.read_rows("X", "y", strided, classes)?];
        if !pattern.tail.is_empty() {
            parts.push(self.read_rows("X", "y", tail, classes)?);
        }
        Ok(join(parts))
    }

    /// Rows `range` of the test set.
    pub fn read_test<F: Real>(
        &self,
        range: Range<usize>,
        classes: usize,
    ) -> anyhow::Result<Dataset<F>> {
        if range.is_empty() {
            return Ok(Dataset {
                x: Array2::zeros((0, self.features)),
                y: Vec::new(),
            });
        }
        self.read_rows("X_test", "y_test", SliceOrIndex::from(range), classes)
    }

    fn read_rows<F: Real>(
        &self,
        x_name: &str,
        y_name: &str,
        rows: SliceOrIndex,
        classes: usize,
    ) -> anyhow::Result<Dataset<F>> {
        let context = || format!("reading {x_name}, {y_name} of {}", self.path.display());
        let x_set = self.file.dataset(x_name).with_context(context)?;
        let y_set = self.file.dataset(y_name).with_context(context)?;
        let x = x_set
            .read_slice_2d::<F, _>(Hyperslab::from(vec![rows, SliceOrIndex::from(..)]))
            .with_context(context)?;
        let labels = read_labels(&y_set, rows).with_context(context)?;
        let y = labels
            .iter()
            .map(|&label| u32::try_from(label).ok().filter(|&l| (l as usize) < classes))
            .collect::<Option<Vec<u32>>>()
            .ok_or_else(|| {
                let bad = labels.iter().find(|&&l| l < 0 || l as usize >= classes).expect("a bad label");
                usage(format!(
                    "--data {}: {y_name} holds label {bad}, outside the classes 0..{}; set --classes to the number of classes (logistic regression needs 0/1 labels)",
                    self.path.display(),
                    classes - 1
                ))
            })?;
        Ok(Dataset { x, y })
    }
}

/// Labels of any integer type, as i64; floats are refused (labels are class indices).
fn read_labels(set: &H5Dataset, rows: SliceOrIndex) -> anyhow::Result<Vec<i64>> {
    let descriptor = set.dtype()?.to_descriptor()?;
    anyhow::ensure!(
        matches!(
            descriptor,
            hdf5::types::TypeDescriptor::Integer(_) | hdf5::types::TypeDescriptor::Unsigned(_)
        ),
        "labels must be integers (class indices 0..K-1), not {descriptor:?}"
    );
    Ok(set
        .read_slice_1d::<i64, _>(Hyperslab::from(vec![rows]))?
        .to_vec())
}

fn join<F: Real>(parts: Vec<Dataset<F>>) -> Dataset<F> {
    let views: Vec<_> = parts.iter().map(|p| p.x.view()).collect();
    let x = concatenate(Axis(0), &views).expect("parts share the width");
    let y = parts.iter().flat_map(|p| p.y.iter().copied()).collect();
    Dataset { x, y }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::partition::BatchPlan;

    /// A file whose row i is [i, -i] (stored as f32) with label i % 3.
    fn write_file(path: &Path, rows: usize, test_rows: usize) {
        let file = hdf5::File::create(path).unwrap();
        let x = Array2::from_shape_fn(
            (rows, 2),
            |(i, j)| if j == 0 { i as f32 } else { -(i as f32) },
        );
        let y: Vec<i32> = (0..rows as i32).map(|i| i % 3).collect();
        file.new_dataset_builder()
            .with_data(&x)
            .create("X")
            .unwrap();
        file.new_dataset_builder()
            .with_data(&y)
            .create("y")
            .unwrap();
        if test_rows > 0 {
            let xt = Array2::from_shape_fn((test_rows, 2), |(i, _)| 1000.0 + i as f64);
            file.new_dataset_builder()
                .with_data(&xt)
                .create("X_test")
                .unwrap();
            file.new_dataset_builder()
                .with_data(&vec![1u8; test_rows])
                .create("y_test")
                .unwrap();
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mpi-sgd-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn each_rank_reads_exactly_its_rows() {
        let path = scratch("rows.h5");
        write_file(&path, 103, 7);
        let file = DataFile::open(&path).unwrap();
        assert_eq!((file.rows, file.features, file.test_rows), (103, 2, 7));
        for (batch, ranks) in [(10, 1), (10, 3), (16, 4), (103, 5), (7, 7)] {
            let plan = BatchPlan::new(103, batch, ranks).unwrap();
            for rank in 0..ranks {
                let data: Dataset<f64> = file.read_train(&plan.row_pattern(rank), 3).unwrap();
                let expected: Vec<usize> = plan.global_rows(rank).collect();
                let firsts: Vec<usize> = data.x.column(0).iter().map(|&v| v as usize).collect();
                assert_eq!(firsts, expected, "batch {batch} ranks {ranks} rank {rank}");
                assert!(data
                    .x
                    .column(1)
                    .iter()
                    .zip(&expected)
                    .all(|(&v, &i)| v == -(i as f64)));
                assert!(data
                    .y
                    .iter()
                    .zip(&expected)
                    .all(|(&l, &i)| l as usize == i % 3));
            }
        }
        let test: Dataset<f32> = file.read_test(2..5, 3).unwrap();
        assert_eq!(test.x.column(0).to_vec(), vec![1002.0, 1003.0, 1004.0]);
        assert_eq!(test.y, vec![1, 1, 1]);
    }

    #[test]
    fn labels_outside_the_classes_are_refused_with_a_hint() {
        let path = scratch("labels.h5");
        write_file(&path, 20, 0);
        let file = DataFile::open(&path).unwrap();
        let plan = BatchPlan::new(20, 5, 1).unwrap();
        let err = file.read_train::<f64>(&plan.row_pattern(0), 2).unwrap_err();
        assert!(err.is::<crate::errors::UsageError>());
        assert!(
            err.to_string().contains("label 2") && err.to_string().contains("--classes"),
            "{err}"
        );
    }

    #[test]
    fn malformed_files_get_usage_errors_naming_the_problem() {
        let missing = DataFile::open(Path::new("/nonexistent/data.h5"))
            .err()
            .unwrap();
        assert!(missing.to_string().contains("no such file"));
        let path = scratch("no-y.h5");
        let file = hdf5::File::create(&path).unwrap();
        file.new_dataset_builder()
            .with_data(&Array2::<f64>::zeros((3, 2)))
            .create("X")
            .unwrap();
        drop(file);
        let err = DataFile::open(&path).err().unwrap();
        assert!(err.to_string().contains("no dataset y"), "{err}");
        let text = scratch("text.h5");
        std::fs::write(&text, "a,b\n1,2\n").unwrap();
        let err = DataFile::open(&text).err().unwrap();
        assert!(
            err.to_string().contains("not a readable HDF5 file"),
            "{err}"
        );
    }
}
