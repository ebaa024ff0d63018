//! Data from an HDF5 file, each rank reading only its own rows.
//!
//! The file holds `X` [rows, features] (float32 or float64), `y` [rows] (integer class labels
//! 0..K-1, stored as any integer or integral float type) and, optionally, a test set `X_test`,
//! `y_test` of the same width; the names can be changed with [`DatasetNames`]. A file written
//! by `mpi-sgd convert` also holds `label_values` [K], the original label of each class.
//!
//! A rank's training rows (its share of every global batch, see [`crate::partition`]) are one
//! strided hyperslab plus, when the last batch is short, one contiguous range: two reads per
//! dataset, and a rank holds only its share of the data in memory. HDF5 converts the stored
//! float type to the run's `--dtype` while reading. Labels are checked once at open, in chunks
//! of constant size, so bad labels are reported before any rank trains.
//!
//! Not the writer of data files (`convert`), nor the choice of rows (`partition`).

use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::Context;
use hdf5::{Hyperslab, SliceOrIndex};
use ndarray::{s, Array2, Axis};

use super::spec::{DatasetNames, Split};
use super::Dataset;
use crate::errors::usage;
use crate::h5;
use crate::partition::RowPattern;
use crate::real::Real;

/// Whether the labels must be present (training, evaluation) or are not read (prediction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Labels {
    Required,
    Ignored,
}

/// Dataset of a converted file: the original label of each class 0..K-1.
pub const LABEL_VALUES: &str = "label_values";

/// Rows of labels checked per read when the file is opened: constant memory for any size.
const LABEL_CHUNK: usize = 1 << 20;

pub struct DataFile {
    path: PathBuf,
    file: hdf5::File,
    names: DatasetNames,
    pub rows: usize,
    pub features: usize,
    pub test_rows: usize,
    /// Classes the file's labels call for: the length of `label_values` when the file has it,
    /// else the largest label + 1 (0 without labels).
    pub classes: usize,
    /// The file lists its classes (`label_values`), so their number is exact.
    pub lists_classes: bool,
}

/// The most classes a label may name: 2^24, the largest count whose every index is exact in
/// float32 (labels stored as floats are exact below it), and far above any classifier this
/// trains; larger integral labels (1e10, 2^32) are corrupt data, not classes.
pub const MAX_CLASSES: usize = 1 << 24;

impl DataFile {
    /// Opens the file, checks the datasets' shapes and (with [`Labels::Required`]) every label;
    /// usage errors name the file, the dataset and the problem.
    pub fn open(path: &Path, names: &DatasetNames, labels: Labels) -> anyhow::Result<Self> {
        let shown = path.display();
        if !path.exists() {
            return Err(usage(format!(
                "{shown}: no such file; give an HDF5 data file (see `mpi-sgd convert` for CSV and LIBSVM)"
            )));
        }
        h5::require_regular_file(
            "--data",
            path,
            "HDF5 reads a file by seeking in it: save the stream to a file first",
        )?;
        h5::require_utf8_name("--data", path)?;
        let file = hdf5::File::open(path)
            .map_err(|e| usage(format!("{shown}: not a readable HDF5 file ({e})")))?;
        let missing = |name: &str| {
            usage(format!(
                "{shown}: no dataset {name}; the file needs {} [rows, features] and {} [rows] (other names: --x-name, --y-name)",
                names.x_name, names.y_name
            ))
        };
        let x = shape_of(&file, path, &names.x_name, 2)?.ok_or_else(|| missing(&names.x_name))?;
        if x[0] == 0 || x[1] == 0 {
            return Err(usage(format!(
                "{shown}: {} is empty ({} x {})",
                names.x_name, x[0], x[1]
            )));
        }
        let x_test = shape_of(&file, path, &names.x_test_name, 2)?;
        if let Some(xt) = x_test.as_ref().filter(|xt| xt[1] != x[1]) {
            return Err(usage(format!(
                "{shown}: {} has {} columns but {} has {}",
                names.x_test_name, xt[1], names.x_name, x[1]
            )));
        }
        let x_test_rows = x_test.map(|xt| xt[0]);
        if labels == Labels::Required {
            let y =
                shape_of(&file, path, &names.y_name, 1)?.ok_or_else(|| missing(&names.y_name))?;
            let y_test = shape_of(&file, path, &names.y_test_name, 1)?;
            check_label_rows(
                path,
                names,
                (x[0], y[0]),
                (x_test_rows, y_test.map(|s| s[0])),
            )?;
        }
        let mut data = Self {
            path: path.to_path_buf(),
            rows: x[0],
            features: x[1],
            test_rows: x_test_rows.unwrap_or(0),
            classes: 0,
            lists_classes: false,
            names: names.clone(),
            file,
        };
        if labels == Labels::Required {
            data.classes = data.label_classes()?;
            data.lists_classes = data.file.link_exists(LABEL_VALUES);
        }
        Ok(data)
    }

    /// The datasets of `split`: (features, labels).
    fn names_of(&self, split: Split) -> (&str, &str) {
        match split {
            Split::Train => (&self.names.x_name, &self.names.y_name),
            Split::Test => (&self.names.x_test_name, &self.names.y_test_name),
        }
    }

    pub fn split_rows(&self, split: Split) -> usize {
        match split {
            Split::Train => self.rows,
            Split::Test => self.test_rows,
        }
    }

    /// The original label of each class, when the file lists them (`mpi-sgd convert`).
    pub fn label_values(&self) -> anyhow::Result<Option<Vec<i64>>> {
        if !self.file.link_exists(LABEL_VALUES) {
            return Ok(None);
        }
        Ok(Some(self.file.dataset(LABEL_VALUES)?.read_raw()?))
    }

    /// Checks every label in constant memory and returns the number of classes.
    fn label_classes(&self) -> anyhow::Result<usize> {
        let mut largest = 0;
        for split in [Split::Train, Split::Test] {
            let (_, y_name) = self.names_of(split);
            let rows = self.split_rows(split);
            for start in (0..rows).step_by(LABEL_CHUNK) {
                let range = start..rows.min(start + LABEL_CHUNK);
                let labels = self.read_label_values(y_name, range.into())?;
                for (i, &label) in labels.iter().enumerate() {
                    if !(label.fract() == 0.0 && (0.0..MAX_CLASSES as f64).contains(&label)) {
                        return Err(usage(format!(
                            "{}: {y_name} holds {label} at row {}; labels must be class indices 0..K-1, K at most {MAX_CLASSES} (`mpi-sgd convert` maps other labels)",
                            self.path.display(),
                            start + i
                        )));
                    }
                    largest = largest.max(label as usize);
                }
            }
        }
        if self.file.link_exists(LABEL_VALUES) {
            let values = self.file.dataset(LABEL_VALUES)?.shape();
            let stored = values.first().copied().unwrap_or(0);
            if largest >= stored {
                return Err(usage(format!(
                    "{}: label {largest} but label_values lists only {stored} classes",
                    self.path.display()
                )));
            }
            return Ok(stored);
        }
        Ok(largest + 1)
    }

    /// Labels as f64, whatever their stored type, so that non-integers can be reported.
    fn read_label_values(&self, y_name: &str, rows: SliceOrIndex) -> anyhow::Result<Vec<f64>> {
        let set = self.file.dataset(y_name)?;
        let descriptor = set.dtype()?.to_descriptor()?;
        use hdf5::types::TypeDescriptor::*;
        if !matches!(descriptor, Integer(_) | Unsigned(_) | Float(_)) {
            return Err(usage(format!(
                "{}: {y_name} holds {descriptor:?}; labels must be numbers",
                self.path.display()
            )));
        }
        Ok(set
            .read_slice_1d::<f64, _>(Hyperslab::from(vec![rows]))?
            .to_vec())
    }

    /// The training rows of `pattern`, in that order, into one array (no copy of the whole).
    ///
    /// Features: one strided hyperslab when `X` is stored contiguously; one read per block
    /// when it is chunked, because HDF5 1.10 reads a strided selection of a chunked dataset
    /// about 10x slower than the same blocks one by one (measured: 1M x 100 f64, 2 ranks,
    /// 4.1 s against 0.43 s; contiguous: 0.17 s strided, 0.29 s by block).
    pub fn read_train<F: Real>(&self, pattern: &RowPattern) -> anyhow::Result<Dataset<F>> {
        let strided = SliceOrIndex::SliceCount {
            start: pattern.first,
            step: pattern.stride,
            count: pattern.count,
            block: pattern.block,
        };
        let tail = pattern.tail.clone();
        let chunked = self.file.dataset(&self.names.x_name)?.is_chunked();
        let mut x;
        let mut y = Vec::with_capacity(pattern.count * pattern.block + tail.len());
        if pattern.count > 0 {
            y = self.read_y(Split::Train, strided)?;
        }
        if chunked {
            x = Array2::zeros((pattern.count * pattern.block + tail.len(), self.features));
            for k in 0..pattern.count {
                let (start, at) = (pattern.first + k * pattern.stride, k * pattern.block);
                let block =
                    self.read_x::<F>(Split::Train, (start..start + pattern.block).into())?;
                x.slice_mut(s![at..at + pattern.block, ..]).assign(&block);
            }
        } else if pattern.count > 0 {
            x = self.read_x::<F>(Split::Train, strided)?;
        } else {
            x = Array2::zeros((0, self.features));
        }
        if !tail.is_empty() {
            let rows = SliceOrIndex::from(tail.clone());
            let tail_x = self.read_x::<F>(Split::Train, rows)?;
            if chunked {
                x.slice_mut(s![pattern.count * pattern.block.., ..])
                    .assign(&tail_x);
            } else {
                // Grows in place where the allocator can (large blocks are remapped, not copied).
                x.append(Axis(0), tail_x.view())?;
            }
            y.extend(self.read_y(Split::Train, rows)?);
        }
        Ok(Dataset { x, y })
    }

    /// Rows `range` of `split`, features and labels.
    pub fn read_block<F: Real>(
        &self,
        split: Split,
        range: Range<usize>,
    ) -> anyhow::Result<Dataset<F>> {
        if range.is_empty() {
            return Ok(Dataset {
                x: Array2::zeros((0, self.features)),
                y: Vec::new(),
            });
        }
        self.read_rows(split, range.into())
    }

    /// Rows `range` of `split`, features only.
    pub fn read_features<F: Real>(
        &self,
        split: Split,
        range: Range<usize>,
    ) -> anyhow::Result<Array2<F>> {
        if range.is_empty() {
            return Ok(Array2::zeros((0, self.features)));
        }
        self.read_x(split, range.into())
    }

    fn read_rows<F: Real>(&self, split: Split, rows: SliceOrIndex) -> anyhow::Result<Dataset<F>> {
        Ok(Dataset {
            x: self.read_x(split, rows)?,
            y: self.read_y(split, rows)?,
        })
    }

    /// Labels of `rows`; checked at open (non-negative integers), so HDF5's conversion to u32
    /// is exact.
    fn read_y(&self, split: Split, rows: SliceOrIndex) -> anyhow::Result<Vec<u32>> {
        let (_, y_name) = self.names_of(split);
        Ok(self
            .file
            .dataset(y_name)
            .and_then(|set| set.read_slice_1d::<u32, _>(Hyperslab::from(vec![rows])))
            .with_context(|| format!("reading {y_name} of {}", self.path.display()))?
            .to_vec())
    }

    /// Features of `rows`; NaN or Inf is refused (it would poison every gradient sum).
    fn read_x<F: Real>(&self, split: Split, rows: SliceOrIndex) -> anyhow::Result<Array2<F>> {
        let (x_name, _) = self.names_of(split);
        let x = self
            .file
            .dataset(x_name)
            .and_then(|set| {
                set.read_slice_2d::<F, _>(Hyperslab::from(vec![rows, SliceOrIndex::from(..)]))
            })
            .with_context(|| format!("reading {x_name} of {}", self.path.display()))?;
        let bad = x
            .rows()
            .into_iter()
            .position(|r| r.iter().any(|v| !v.is_finite()));
        if let Some(local) = bad {
            return Err(usage(format!(
                "{}: {x_name} holds NaN or Inf in row {}; clean the data first",
                self.path.display(),
                file_row(&rows, local)
            )));
        }
        Ok(x)
    }
}

/// The file row of the `local`-th row a selection reads.
fn file_row(rows: &SliceOrIndex, local: usize) -> usize {
    match *rows {
        SliceOrIndex::Index(i) => i,
        SliceOrIndex::SliceTo {
            start, step, block, ..
        }
        | SliceOrIndex::SliceCount {
            start, step, block, ..
        }
        | SliceOrIndex::Unlimited { start, step, block } => {
            start + local / block * step + local % block
        }
    }
}

/// The shape of dataset `name`, `None` if the file has none; a usage error if it is not a
/// dataset of `dims` dimensions.
fn shape_of(
    file: &hdf5::File,
    path: &Path,
    name: &str,
    dims: usize,
) -> anyhow::Result<Option<Vec<usize>>> {
    if !file.link_exists(name) {
        return Ok(None);
    }
    let shown = path.display();
    let shape = file
        .dataset(name)
        .map_err(|e| usage(format!("{shown}: {name} is not a dataset ({e})")))?
        .shape();
    if shape.len() != dims {
        return Err(usage(format!(
            "{shown}: {name} has {} dimensions, expected {dims}",
            shape.len()
        )));
    }
    Ok(Some(shape))
}

/// Features and labels come in pairs of the same length: (X rows, y rows) of the training set
/// and, when present, of the test set.
fn check_label_rows(
    path: &Path,
    names: &DatasetNames,
    train: (usize, usize),
    test: (Option<usize>, Option<usize>),
) -> anyhow::Result<()> {
    let shown = path.display();
    let pairs = [
        (&names.x_name, Some(train.0), &names.y_name, Some(train.1)),
        (&names.x_test_name, test.0, &names.y_test_name, test.1),
    ];
    for (x_name, x_rows, y_name, y_rows) in pairs {
        match (x_rows, y_rows) {
            (Some(a), Some(b)) if a != b => {
                return Err(usage(format!(
                    "{shown}: {x_name} has {a} rows but {y_name} has {b}"
                )))
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(usage(format!(
                    "{shown}: {x_name} and {y_name} must both be present or both absent"
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::BatchPlan;

    /// A file whose row i is [i, -i] (stored as f32) with label i % 3.
    /// With `chunked`, X is stored in chunks of 7 rows (the layout `convert` writes).
    fn write_file_as(path: &Path, rows: usize, test_rows: usize, chunked: bool) {
        let file = hdf5::File::create(path).unwrap();
        let x = Array2::from_shape_fn(
            (rows, 2),
            |(i, j)| if j == 0 { i as f32 } else { -(i as f32) },
        );
        let y: Vec<i32> = (0..rows as i32).map(|i| i % 3).collect();
        let mut builder = file.new_dataset_builder();
        if chunked {
            builder = builder.chunk((7, 2));
        }
        builder.with_data(&x).create("X").unwrap();
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

    fn open(path: &Path) -> anyhow::Result<DataFile> {
        DataFile::open(path, &DatasetNames::default(), Labels::Required)
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mpi-sgd-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn each_rank_reads_exactly_its_rows() {
        let path = scratch("rows.h5");
        for chunked in [false, true] {
            write_file_as(&path, 103, 7, chunked);
            let file = open(&path).unwrap();
            assert_eq!(file.file.dataset("X").unwrap().is_chunked(), chunked);
            check_rows_of_every_rank(&file);
        }
    }

    fn check_rows_of_every_rank(file: &DataFile) {
        assert_eq!((file.rows, file.features, file.test_rows), (103, 2, 7));
        assert_eq!(file.classes, 3);
        for (batch, ranks) in [(10, 1), (10, 3), (16, 4), (103, 5), (7, 7)] {
            let plan = BatchPlan::new(103, batch, ranks).unwrap();
            for rank in 0..ranks {
                let data: Dataset<f64> = file.read_train(&plan.row_pattern(rank)).unwrap();
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
        let test: Dataset<f32> = file.read_block(Split::Test, 2..5).unwrap();
        assert_eq!(test.x.column(0).to_vec(), vec![1002.0, 1003.0, 1004.0]);
        assert_eq!(test.y, vec![1, 1, 1]);
    }

    #[test]
    fn labels_that_are_not_class_indices_are_refused_at_open() {
        for (label, shown) in [
            (-1.0, "-1 at row 4"),
            (1.5, "1.5 at row 4"),
            (f64::NAN, "NaN at row 4"),
        ] {
            let path = scratch("labels.h5");
            let file = hdf5::File::create(&path).unwrap();
            file.new_dataset_builder()
                .with_data(&Array2::<f64>::zeros((6, 2)))
                .create("X")
                .unwrap();
            let mut y = vec![0.0, 1.0, 2.0, 1.0, 0.0, 1.0];
            y[4] = label;
            file.new_dataset_builder()
                .with_data(&y)
                .create("y")
                .unwrap();
            drop(file);
            let err = open(&path).err().unwrap();
            assert!(err.is::<crate::errors::UsageError>());
            assert!(
                err.to_string().contains(&format!("y holds {shown}")),
                "{err}"
            );
        }
    }

    #[test]
    fn nan_in_the_features_is_refused_naming_the_file_row() {
        let path = scratch("nan.h5");
        let file = hdf5::File::create(&path).unwrap();
        let mut x = Array2::<f64>::zeros((10, 2));
        x[[7, 1]] = f64::INFINITY;
        file.new_dataset_builder()
            .with_data(&x)
            .create("X")
            .unwrap();
        file.new_dataset_builder()
            .with_data(&[0u8; 10])
            .create("y")
            .unwrap();
        drop(file);
        let file = open(&path).unwrap();
        let plan = BatchPlan::new(10, 4, 2).unwrap();
        let err = file.read_train::<f64>(&plan.row_pattern(1)).unwrap_err();
        assert!(
            err.to_string().contains("X holds NaN or Inf in row 7"),
            "{err}"
        );
    }

    #[test]
    fn other_dataset_names_can_be_given() {
        let path = scratch("names.h5");
        let file = hdf5::File::create(&path).unwrap();
        file.new_dataset_builder()
            .with_data(&Array2::<f32>::ones((4, 3)))
            .create("features")
            .unwrap();
        file.new_dataset_builder()
            .with_data(&[0u8, 1, 1, 0])
            .create("target")
            .unwrap();
        drop(file);
        let names = DatasetNames {
            x_name: "features".into(),
            y_name: "target".into(),
            ..DatasetNames::default()
        };
        let file = DataFile::open(&path, &names, Labels::Required).unwrap();
        assert_eq!((file.rows, file.features, file.classes), (4, 3, 2));
        let err = open(&path).err().unwrap();
        assert!(
            err.to_string().contains("no dataset X") && err.to_string().contains("--x-name"),
            "{err}"
        );
    }

    #[test]
    fn malformed_files_get_usage_errors_naming_the_problem() {
        let missing = open(Path::new("/nonexistent/data.h5")).err().unwrap();
        assert!(missing.to_string().contains("no such file"));
        let path = scratch("no-y.h5");
        let file = hdf5::File::create(&path).unwrap();
        file.new_dataset_builder()
            .with_data(&Array2::<f64>::zeros((3, 2)))
            .create("X")
            .unwrap();
        drop(file);
        let err = open(&path).err().unwrap();
        assert!(err.to_string().contains("no dataset y"), "{err}");
        let text = scratch("text.h5");
        std::fs::write(&text, "a,b\n1,2\n").unwrap();
        let err = open(&text).err().unwrap();
        assert!(
            err.to_string().contains("not a readable HDF5 file"),
            "{err}"
        );
    }
}
