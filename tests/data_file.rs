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

/// Writes datasets given as (name, shape, values) to a new file.
fn write_sets(path: &Path, sets: &[(&str, &[usize], &[f64])]) {
    let file = hdf5::File::create(path).unwrap();
    for (name, shape, values) in sets {
        file.new_dataset::<f64>()
            .shape(shape.to_vec())
            .create(*name)
            .unwrap()
            .write_raw(values)
            .unwrap();
    }
}

#[test]
fn bad_data_files_are_refused_with_one_line_and_no_run_file() {
    let dir = scratch("file_bad");
    let x6: Vec<f64> = (0..12).map(f64::from).collect();
    let y6 = [0.0, 1.0, 0.0, 1.0, 0.0, 1.0];
    let mut nan = x6.clone();
    nan[9] = f64::NAN;
    type Sets<'a> = Vec<(&'a str, &'a [usize], &'a [f64])>;
    let cases: Vec<(&str, Sets, &str)> = vec![
        ("no-y.h5", vec![("X", &[6, 2], &x6)], "no dataset y"),
        (
            "flat-x.h5",
            vec![("X", &[12], &x6), ("y", &[6], &y6)],
            "X has 1 dimensions, expected 2",
        ),
        (
            "short-y.h5",
            vec![("X", &[6, 2], &x6), ("y", &[5], &y6[..5])],
            "X has 6 rows but y has 5",
        ),
        (
            "nan.h5",
            vec![("X", &[6, 2], &nan), ("y", &[6], &y6)],
            "X holds NaN or Inf in row 4",
        ),
        (
            "float-y.h5",
            vec![
                ("X", &[6, 2], &x6),
                ("y", &[6], &[0.0, 1.0, 0.5, 1.0, 0.0, 1.0]),
            ],
            "y holds 0.5 at row 2",
        ),
        (
            "huge-y.h5",
            vec![
                ("X", &[6, 2], &x6),
                ("y", &[6], &[0.0, 1.0, 0.0, 1e10, 0.0, 1.0]),
            ],
            "y holds 10000000000 at row 3",
        ),
        (
            "two-to-32-y.h5",
            vec![
                ("X", &[6, 2], &x6),
                ("y", &[6], &[0.0, 4294967296.0, 0.0, 1.0, 0.0, 1.0]),
            ],
            "y holds 4294967296 at row 1",
        ),
        (
            "1e20-y.h5",
            vec![
                ("X", &[6, 2], &x6),
                ("y", &[6], &[0.0, 1.0, 0.0, 1.0, 0.0, 1e20]),
            ],
            "at row 5; labels must be class indices 0..K-1, K at most",
        ),
        (
            "three.h5",
            vec![
                ("X", &[6, 2], &x6),
                ("y", &[6], &[0.0, 1.0, 2.0, 1.0, 0.0, 1.0]),
            ],
            "logistic regression is binary",
        ),
    ];
    std::fs::write(dir.join("empty.h5"), "").unwrap();
    let mut all = vec![("empty.h5".to_string(), "not a readable HDF5 file")];
    for (name, sets, problem) in &cases {
        write_sets(&dir.join(name), sets);
        all.push((name.to_string(), problem));
    }
    for (name, problem) in all {
        let data = dir.join(&name);
        let out = dir.join(format!("run-{name}"));
        let output = mpirun(
            2,
            &[
                "train",
                "--data",
                data.to_str().unwrap(),
                "--batch",
                "2",
                "--out",
                out.to_str().unwrap(),
            ],
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert_eq!(
            stderr.matches("mpi-sgd: error").count(),
            1,
            "{name}: {stderr}"
        );
        assert!(
            stderr.contains(&name) && stderr.contains(problem),
            "{name}: {stderr}"
        );
        assert!(!out.exists(), "{name}: no run file");
    }
}

#[test]
fn classes_must_agree_with_the_labels() {
    let dir = scratch("file_classes");
    let path = dir.join("k3.h5");
    let x: Vec<f64> = (0..12).map(f64::from).collect();
    write_sets(
        &path,
        &[
            ("X", &[6, 2], &x),
            ("y", &[6], &[0.0, 1.0, 2.0, 1.0, 0.0, 2.0]),
        ],
    );
    let data = path.to_str().unwrap();
    let run = |classes: &str| {
        mpirun(
            1,
            &[
                "train",
                "--data",
                data,
                "--model",
                "softmax",
                "--batch",
                "2",
                "--epochs",
                "1",
                "--classes",
                classes,
            ],
        )
    };
    let too_few = run("2");
    assert_eq!(too_few.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&too_few.stderr);
    assert!(
        stderr.contains(&format!("--classes 2: {data} has labels up to 2")),
        "{stderr}"
    );
    assert_success(&run("3"));
    // Without --classes, the labels decide: 3 classes.
    let inferred = mpirun(
        1,
        &[
            "train", "--data", data, "--model", "softmax", "--batch", "2", "--epochs", "1",
        ],
    );
    assert_success(&inferred);
    // A converted file lists its classes: another count is refused.
    let listed = dir.join("listed.h5");
    write_sets(
        &listed,
        &[
            ("X", &[6, 2], &x),
            ("y", &[6], &[0.0, 1.0, 2.0, 1.0, 0.0, 2.0]),
        ],
    );
    hdf5::File::open_rw(&listed)
        .unwrap()
        .new_dataset_builder()
        .with_data(&[-1i64, 5, 9, 12])
        .create("label_values")
        .unwrap();
    let output = mpirun(
        1,
        &[
            "train",
            "--data",
            listed.to_str().unwrap(),
            "--model",
            "softmax",
            "--batch",
            "2",
            "--classes",
            "5",
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("lists 4 classes"));
}

#[test]
fn standardize_uses_the_statistics_of_all_ranks_and_stores_them() {
    let (dir, data) = data_file("file_standardize", false);
    let train = |ranks: usize| {
        let out = dir.join(format!("std{ranks}.h5"));
        let output = mpirun(
            ranks,
            &[
                "train",
                "--data",
                data.to_str().unwrap(),
                "--batch",
                "64",
                "--epochs",
                "2",
                "--standardize",
                "--out",
                out.to_str().unwrap(),
            ],
        );
        assert_success(&output);
        let file = hdf5::File::open(&out).unwrap();
        let mean: Vec<f64> = file
            .dataset("preprocessing/mean")
            .unwrap()
            .read_raw()
            .unwrap();
        let std: Vec<f64> = file
            .dataset("preprocessing/std")
            .unwrap()
            .read_raw()
            .unwrap();
        (mean, std, read_params(&out))
    };
    let x: Array2<f64> = hdf5::File::open(&data)
        .unwrap()
        .dataset("X")
        .unwrap()
        .read_2d()
        .unwrap();
    let expected_mean = x.mean_axis(ndarray::Axis(0)).unwrap();
    let expected_std = x.std_axis(ndarray::Axis(0), 0.0);
    let runs: Vec<_> = [1, 3].into_iter().map(train).collect();
    for (ranks, (mean, std, params)) in [1, 3].into_iter().zip(&runs) {
        assert_eq!((mean.len(), std.len()), (5, 5));
        for (a, b) in mean
            .iter()
            .zip(&expected_mean)
            .chain(std.iter().zip(&expected_std))
        {
            assert!(
                (a - b).abs() < 1e-12,
                "{ranks} ranks: {a} vs numpy-style {b}"
            );
        }
        let diff = params
            .iter()
            .zip(&runs[0].2)
            .fold(0.0f64, |d, (a, b)| d.max((a - b).abs()));
        assert!(diff < 1e-9, "{ranks} ranks: parameters differ by {diff:e}");
    }
}

#[test]
fn evaluate_and_predict_agree_with_training_on_any_number_of_ranks() {
    let (dir, data) = data_file("file_inference", false);
    let (data, run) = (data.to_str().unwrap(), dir.join("run.h5"));
    let trained = mpirun(
        2,
        &[
            "train",
            "--data",
            data,
            "--batch",
            "64",
            "--epochs",
            "3",
            "--standardize",
            "--out",
            run.to_str().unwrap(),
        ],
    );
    assert_success(&trained);
    let run = run.to_str().unwrap();
    let mut predictions = Vec::new();
    for ranks in [1, 3] {
        let evaluated = mpirun(ranks, &["evaluate", "--model", run, "--data", data]);
        assert_success(&evaluated);
        assert_eq!(
            summary_value(&evaluated, "accuracy"),
            summary_value(&trained, "test_accuracy")
        );
        assert_eq!(summary_value(&evaluated, "rows"), 200.0);
        let stdout = String::from_utf8_lossy(&evaluated.stdout);
        assert!(stdout.contains("confusion matrix"), "{stdout}");
        let out = dir.join(format!("pred{ranks}.h5"));
        assert_success(&mpirun(
            ranks,
            &[
                "predict",
                "--model",
                run,
                "--data",
                data,
                "--out",
                out.to_str().unwrap(),
            ],
        ));
        let file = hdf5::File::open(&out).unwrap();
        let labels: Vec<u32> = file.dataset("label").unwrap().read_raw().unwrap();
        let p: Array2<f64> = file.dataset("probability").unwrap().read_2d().unwrap();
        assert_eq!(p.dim(), (200, 2));
        for (row, &label) in p.rows().into_iter().zip(&labels) {
            assert!((row.sum() - 1.0).abs() < 1e-12);
            assert_eq!(label, u32::from(row[1] > row[0]));
        }
        predictions.push(p);
    }
    assert_eq!(
        predictions[0], predictions[1],
        "1 and 3 ranks predict the same"
    );
    let truth: Vec<i64> = hdf5::File::open(data)
        .unwrap()
        .dataset("y_test")
        .unwrap()
        .read_raw()
        .unwrap();
    let correct = predictions[0]
        .rows()
        .into_iter()
        .zip(&truth)
        .filter(|(p, &t)| i64::from(p[1] > p[0]) == t)
        .count();
    assert_eq!(
        correct as f64 / 200.0,
        summary_value(&trained, "test_accuracy")
    );
    let wrong = mpirun(1, &["evaluate", "--model", data, "--data", data]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("not a run file"));
}

#[test]
fn an_interrupted_prediction_cleans_up_and_says_why() {
    // Rows enough that reading and predicting them outlast the signal's delivery.
    let dir = scratch("predict_signal");
    let data = dir.join("data.h5");
    write_binary(&data, 2_000_000, 0, |v| v);
    let model = dir.join("model.h5");
    // The file was closed above, but this test process's HDF5 may hold its lock a moment
    // longer while the binary's other tests use the library: the children do not lock.
    let command = |args: &[&str]| {
        let mut command = std::process::Command::new(BINARY);
        command.args(args).env("HDF5_USE_FILE_LOCKING", "FALSE");
        command
    };
    let (data_arg, model_arg) = (data.to_str().unwrap(), model.to_str().unwrap());
    let train = [
        "train",
        "--data",
        data_arg,
        "--samples",
        "1000",
        "--test-samples",
        "0",
        "--epochs",
        "1",
        "--batch",
        "100",
        "--out",
        model_arg,
    ];
    let trained = wait_with_limit(spawn(command(&train)), std::time::Duration::from_secs(60));
    assert_success(&trained);
    let out = dir.join("predictions.h5");
    let mut command = command(&[]);
    command.args(["predict", "--model", model.to_str().unwrap(), "--data"]);
    command.args([
        data.to_str().unwrap(),
        "--split",
        "train",
        "--out",
        out.to_str().unwrap(),
    ]);
    let child = spawn(command);
    // The data file is opened after the handlers are installed: once it is open, interrupt.
    let fds = format!("/proc/{}/fd", child.id());
    let data_open = || {
        std::fs::read_dir(&fds)
            .into_iter()
            .flatten()
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == data))
    };
    let begin = std::time::Instant::now();
    while !data_open() {
        assert!(
            begin.elapsed().as_secs() < 60,
            "the data file was never opened"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    send_signal(child.id(), "TERM");
    let output = wait_with_limit(child, std::time::Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(143), "{stderr}");
    assert!(
        stderr.contains("interrupted by SIGTERM") && stderr.contains("not written"),
        "{stderr}"
    );
    assert_eq!(files_in(&dir), ["data.h5", "model.h5"]);
}

#[test]
fn a_file_whose_header_asks_for_more_than_the_memory_is_refused_before_reading() {
    // A chunked X of 10^10 rows of 5 features with nothing written: a few kilobytes on disk,
    // 400 GB (at least) to read.
    let dir = scratch("file_huge_header");
    let huge = dir.join("huge.h5");
    {
        let file = hdf5::File::create(&huge).unwrap();
        file.new_dataset::<f64>()
            .chunk((1024, 5))
            .shape((10_000_000_000usize, 5))
            .create("X")
            .unwrap();
        file.new_dataset::<i64>()
            .chunk(1024)
            .shape(10_000_000_000usize)
            .create("y")
            .unwrap();
    }
    let (model_dir, data) = data_file("huge_header_model", false);
    let model = model_dir.join("run.h5");
    let trained = mpirun(
        1,
        &[
            "train",
            "--data",
            data.to_str().unwrap(),
            "--out",
            model.to_str().unwrap(),
            "--batch",
            "100",
        ],
    );
    assert_success(&trained);
    let out = dir.join("p.h5");
    let output = mpirun(
        2,
        &[
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--data",
            huge.to_str().unwrap(),
            "--split",
            "train",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("10000000000 rows of 5 features: needs") && stderr.contains("available"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("mpi-sgd: error").count(), 1, "{stderr}");
    assert!(!out.exists());
}
