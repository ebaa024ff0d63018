//! The trainer end to end under `mpirun -n K`: N-invariance, accuracy, and the run file.

mod common;

use common::*;

/// A small problem with every unevenness: samples not divisible by the batch, batch not
/// divisible by 3, and a last batch (1003 mod 64 = 43 rows) of uneven shares.
const SMALL: &[&str] = &[
    "--samples",
    "1003",
    "--batch",
    "64",
    "--features",
    "5",
    "--test-samples",
    "101",
    "--epochs",
    "2",
    "--lr",
    "0.2",
];

fn train_small(ranks: usize, model_args: &[&str], out: &std::path::Path) {
    let mut args = vec!["train", "--out", out.to_str().unwrap()];
    args.extend(SMALL);
    args.extend(model_args);
    assert_success(&mpirun(ranks, &args));
}

fn check_n_invariance(name: &str, model_args: &[&str]) {
    let dir = scratch(name);
    let reference_path = dir.join("k1.h5");
    train_small(1, model_args, &reference_path);
    let reference = read_params(&reference_path);
    assert!(
        reference.iter().any(|&p| p != 0.0),
        "training moved the parameters"
    );
    for ranks in 2..=4 {
        let path = dir.join(format!("k{ranks}.h5"));
        train_small(ranks, model_args, &path);
        let diff = relative_difference(&reference, &read_params(&path));
        assert!(
            diff < 1e-9,
            "{name}: {ranks} ranks differ from 1 rank by {diff:e}"
        );
    }
}

#[test]
fn logistic_on_k_ranks_matches_one_rank() {
    check_n_invariance(
        "n_invariance_logistic",
        &["--model", "logistic", "--momentum", "0.9"],
    );
}

#[test]
fn softmax_on_k_ranks_matches_one_rank() {
    check_n_invariance(
        "n_invariance_softmax",
        &["--model", "softmax", "--classes", "4"],
    );
}

#[test]
fn mlp_on_k_ranks_matches_one_rank() {
    check_n_invariance(
        "n_invariance_mlp",
        &[
            "--model",
            "mlp",
            "--hidden",
            "16,8",
            "--classes",
            "3",
            "--l2",
            "1e-4",
        ],
    );
}

/// Trains on `ranks` ranks and returns the final test accuracy.
fn test_accuracy(ranks: usize, args: &[&str]) -> f64 {
    let mut all = vec!["train"];
    all.extend(args);
    let output = mpirun(ranks, &all);
    assert_success(&output);
    summary_value(&output, "test_accuracy")
}

#[test]
fn logistic_reaches_99_percent_on_the_default_generator() {
    let accuracy = test_accuracy(
        2,
        &["--samples", "200000", "--epochs", "4", "--batch", "1024"],
    );
    assert!(accuracy >= 0.99, "test accuracy {accuracy}");
}

#[test]
fn mlp_reaches_95_percent_on_blobs() {
    let args = [
        "--model",
        "mlp",
        "--samples",
        "30000",
        "--epochs",
        "4",
        "--batch",
        "256",
        "--hidden",
        "64,32",
    ];
    let accuracy = test_accuracy(3, &args);
    assert!(accuracy >= 0.95, "test accuracy {accuracy}");
}

#[test]
fn f32_runs_and_learns() {
    let accuracy = test_accuracy(
        2,
        &["--dtype", "f32", "--samples", "50000", "--epochs", "2"],
    );
    assert!(accuracy >= 0.98, "test accuracy {accuracy}");
}

#[test]
fn the_summary_line_is_last_on_stdout_and_complete() {
    let output = mpirun(
        2,
        &[
            "train",
            "--samples",
            "2000",
            "--batch",
            "100",
            "--epochs",
            "1",
        ],
    );
    assert_success(&output);
    let keys: Vec<String> = summary(&output).into_iter().map(|(k, _)| k).collect();
    for key in [
        "ranks",
        "model",
        "allreduce",
        "wall_s",
        "loss",
        "train_accuracy",
        "test_accuracy",
    ] {
        assert!(
            keys.iter().any(|k| k == key),
            "summary lacks {key}: {keys:?}"
        );
    }
    assert_eq!(summary_value(&output, "ranks"), 2.0);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.lines().count(),
        1,
        "stdout holds only the summary: {stdout}"
    );
}

#[test]
fn the_run_file_holds_every_documented_dataset() {
    let dir = scratch("run_file");
    let path = dir.join("run.h5");
    let ranks = 3;
    let output = mpirun(
        ranks,
        &[
            "train",
            "--model",
            "mlp",
            "--hidden",
            "6",
            "--classes",
            "3",
            "--samples",
            "1003",
            "--batch",
            "64",
            "--features",
            "5",
            "--epochs",
            "2",
            "--test-samples",
            "50",
            "--out",
            path.to_str().unwrap(),
        ],
    );
    assert_success(&output);
    let (steps, epochs) = (2 * 16, 2);
    let file = hdf5::File::open(&path).unwrap();
    let shape = |name: &str| file.dataset(name).unwrap().shape();
    for phase in ["compute", "allreduce", "update", "step"] {
        assert_eq!(
            shape(&format!("timings/{phase}")),
            [steps, ranks],
            "{phase}"
        );
    }
    assert_eq!(shape("timings/eval"), [epochs, ranks]);
    assert_eq!(shape("timings/mpi_init"), [ranks]);
    assert_eq!(shape("timings/data"), [ranks]);
    assert_eq!(shape("comm/bytes_sent"), [steps, ranks]);
    assert_eq!(shape("comm/messages_sent"), [steps, ranks]);
    assert_eq!(shape("ranks/hostname"), [ranks]);
    assert_eq!(shape("ranks/rows"), [ranks]);
    assert_eq!(shape("metrics/loss"), [steps]);
    for metric in ["train_loss", "train_accuracy", "test_loss", "test_accuracy"] {
        assert_eq!(shape(&format!("metrics/{metric}")), [epochs], "{metric}");
    }
    let n_params = 5 * 6 + 6 + 6 * 3 + 3;
    assert_eq!(shape("model/params"), [n_params]);

    // The rows add up, each rank's timings are positive, and the bytes are the gradient's.
    let rows = file
        .dataset("ranks/rows")
        .unwrap()
        .read_raw::<u64>()
        .unwrap();
    assert_eq!(rows.iter().sum::<u64>(), 1003);
    let step = file
        .dataset("timings/step")
        .unwrap()
        .read_raw::<f64>()
        .unwrap();
    assert!(step.iter().all(|&t| t > 0.0));
    let bytes = file
        .dataset("comm/bytes_sent")
        .unwrap()
        .read_raw::<u64>()
        .unwrap();
    assert!(bytes.iter().all(|&b| b == 8 * n_params as u64));

    let text = |location: &hdf5::Location, name: &str| -> String {
        let value: hdf5::types::VarLenUnicode = location.attr(name).unwrap().read_scalar().unwrap();
        value.as_str().to_string()
    };
    assert_eq!(text(&file, "format"), "mpi-sgd/1");
    for attr in [
        "version",
        "command_line",
        "git_revision",
        "mpi_library",
        "started_utc",
        "hostname_list",
    ] {
        assert!(!text(&file, attr).is_empty(), "/{attr} is empty");
    }
    assert!(text(&file, "command_line").contains("--hidden 6"));
    let config = file.group("config").unwrap();
    assert_eq!(text(&config, "model"), "mlp");
    assert_eq!(
        config.attr("ranks").unwrap().read_scalar::<u64>().unwrap(),
        ranks as u64
    );
    let params = file.dataset("model/params").unwrap();
    assert_eq!(text(&params, "tensors"), "W1,b1,W2,b2");
    let w2: Vec<u64> = params.attr("W2_shape").unwrap().read_raw().unwrap();
    assert_eq!(w2, [6, 3]);
    let summary = file.group("summary").unwrap();
    for attr in [
        "wall_s",
        "samples_per_s",
        "mean_compute_s",
        "mean_allreduce_s",
        "mean_update_s",
    ] {
        let value: f64 = summary.attr(attr).unwrap().read_scalar().unwrap();
        assert!(value > 0.0, "/summary {attr} = {value}");
    }
    assert_eq!(
        summary
            .attr("replicas_identical")
            .unwrap()
            .read_scalar::<u8>()
            .unwrap(),
        1
    );
    // The last epoch's test accuracy is the summary line's.
    let test_accuracy = file
        .dataset("metrics/test_accuracy")
        .unwrap()
        .read_raw::<f64>()
        .unwrap();
    assert!((test_accuracy[1] - summary_value(&output, "test_accuracy")).abs() < 1e-6);
}

#[test]
fn samples_per_rank_scales_the_data_with_the_ranks() {
    for ranks in [1, 3] {
        let output = mpirun(
            ranks,
            &[
                "train",
                "--samples-per-rank",
                "500",
                "--batch",
                "60",
                "--epochs",
                "1",
            ],
        );
        assert_success(&output);
        assert_eq!(summary_value(&output, "samples"), 500.0 * ranks as f64);
    }
}
