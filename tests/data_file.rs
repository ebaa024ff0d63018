//! Training on an HDF5 data file: each rank reads its rows, and the result does not depend on
//! the number of ranks.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// Writes a binary problem, `y = 1[x . w > 0]`, with `rows` training and `test_rows` test rows;
/// features stored as `T`, labels as int64.
fn write_binary<T: hdf5::H5Type + Copy>(
    path: &Path,
    rows: usize,
    test_rows: usize,
    cast: fn(f64) -> T,
) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let w = [1.0, -2.0, 0.5, 0.0, 1.5];
    let mut make = |n: usize| {
        let x = Array2::from_shape_simple_fn((n, 5), || rng.sample::<f64, _>(StandardNormal));
        let y: Vec<i64> = x
            .rows()
            .into_iter()
            .map(|r| i64::from(r.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>() > 0.0))
            .collect();
        (x.mapv(cast), y)
    };
    let (x, y) = make(rows);
    let (xt, yt) = make(test_rows);
    let file = hdf5::File::create(path).unwrap();
    file.new_dataset_builder()
        .with_data(&x)
        .create("X")
        .unwrap();
    file.new_dataset_builder()
        .with_data(&y)
        .create("y")
        .unwrap();
    file.new_dataset_builder()
        .with_data(&xt)
        .create("X_test")
        .unwrap();
    file.new_dataset_builder()
        .with_data(&yt)
        .create("y_test")
        .unwrap();
}

fn data_file(test: &str, f32_features: bool) -> (PathBuf, PathBuf) {
    let dir = scratch(test);
    let path = dir.join("data.h5");
    if f32_features {
        write_binary(&path, 1003, 200, |v| v as f32);
    } else {
        write_binary(&path, 1003, 200, |v| v);
    }
    (dir, path)
}

#[test]
fn training_on_a_file_is_independent_of_the_number_of_ranks() {
    let (dir, data) = data_file("file_n_invariance", false);
    let train = |ranks: usize| {
        let out = dir.join(format!("k{ranks}.h5"));
        let output = mpirun(
            ranks,
            &[
                "train",
                "--data",
                data.to_str().unwrap(),
                "--batch",
                "64",
                "--epochs",
                "3",
                "--lr",
                "0.5",
                "--out",
                out.to_str().unwrap(),
            ],
        );
        assert_success(&output);
        (read_params(&out), output)
    };
    let (reference, output) = train(1);
    let accuracy = summary_value(&output, "test_accuracy");
    assert!(accuracy >= 0.9, "test accuracy {accuracy}");
    for ranks in 2..=4 {
        let (params, output) = train(ranks);
        let diff = reference
            .iter()
            .zip(&params)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        assert!(diff < 1e-9, "{ranks} ranks differ by {diff:e}");
        assert_eq!(summary_value(&output, "test_accuracy"), accuracy);
    }
}

#[test]
fn either_stored_float_type_feeds_either_dtype() {
    let (_dir, data) = data_file("file_dtypes", true);
    for dtype in ["f32", "f64"] {
        let output = mpirun(
            2,
            &[
                "train",
                "--data",
                data.to_str().unwrap(),
                "--batch",
                "100",
                "--epochs",
                "2",
                "--dtype",
                dtype,
            ],
        );
        assert_success(&output);
        assert!(summary_value(&output, "test_accuracy") >= 0.85, "{dtype}");
        assert_eq!(summary_value(&output, "samples"), 1003.0);
    }
}

#[test]
fn a_file_that_does_not_fit_the_options_is_refused_once() {
    let (_dir, data) = data_file("file_mismatch", false);
    let data = data.to_str().unwrap();
    for (args, needle) in [
        (vec!["--features", "7"], "--features 7"),
        (vec!["--samples", "5000"], "--samples 5000"),
        (vec!["--test-samples", "500"], "--test-samples 500"),
    ] {
        let mut all = vec!["train", "--data", data];
        all.extend(args.iter());
        let output = mpirun(3, &all);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.matches("mpi-sgd: error").count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    let output = mpirun(2, &["train", "--data", "/nonexistent/data.h5"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no such file"));
}
