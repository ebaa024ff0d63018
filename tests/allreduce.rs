//! Our allreduce algorithms against MPI_Allreduce, under `mpirun -n P` for P = 1..6, and in
//! training.

mod common;

use common::*;

/// Lengths that catch the edge cases: empty, shorter than P, around P, uneven, large.
fn lengths(p: usize) -> Vec<usize> {
    vec![0, 1, p - 1, p, p + 1, 1000, (1 << 20) + 3]
}

#[test]
fn every_algorithm_equals_mpi_allreduce_for_p_1_to_6() {
    for p in 1..=6 {
        for (dtype, elem) in [("f64", 8), ("f32", 4)] {
            let sizes: Vec<String> = lengths(p).iter().map(|n| (n * elem).to_string()).collect();
            let sizes = sizes.join(",");
            let output = mpirun(
                p,
                &[
                    "bench-allreduce",
                    "--sizes",
                    &sizes,
                    "--iterations",
                    "1",
                    "--warmup",
                    "0",
                    "--dtype",
                    dtype,
                ],
            );
            assert_success(&output);
            let stdout = String::from_utf8_lossy(&output.stdout);
            let rows: Vec<&str> = stdout
                .lines()
                .filter(|l| !l.starts_with('#') && !l.trim_start().starts_with("bytes"))
                .collect();
            assert_eq!(
                rows.len(),
                algorithms().len() * lengths(p).len(),
                "P={p} {dtype}:\n{stdout}"
            );
            for row in rows {
                assert!(row.ends_with("ok"), "P={p} {dtype}: {row}");
            }
        }
    }
}

#[test]
fn the_benchmark_file_holds_every_latency() {
    let dir = scratch("bench_file");
    let path = dir.join("bench.h5");
    let output = mpirun(
        3,
        &[
            "bench-allreduce",
            "--algorithms",
            "mpi,ring",
            "--min-bytes",
            "8",
            "--max-bytes",
            "64",
            "--iterations",
            "5",
            "--out",
            path.to_str().unwrap(),
        ],
    );
    assert_success(&output);
    let file = hdf5::File::open(&path).unwrap();
    let sizes = file
        .dataset("bench/sizes_bytes")
        .unwrap()
        .read_raw::<u64>()
        .unwrap();
    assert_eq!(sizes, [8, 16, 32, 64]);
    for algo in ["mpi", "ring"] {
        let latency = file.dataset(&format!("bench/{algo}/latency_s")).unwrap();
        assert_eq!(latency.shape(), [4, 5, 3]);
        assert!(latency.read_raw::<f64>().unwrap().iter().all(|&t| t > 0.0));
        assert_eq!(
            file.dataset(&format!("bench/{algo}/bytes_sent"))
                .unwrap()
                .shape(),
            [4, 3]
        );
    }
    // Ring at P = 3 sends 2n - two segments: for 8 doubles (64 bytes), segments 3,3,2.
    let ring = file
        .dataset("bench/ring/bytes_sent")
        .unwrap()
        .read_2d::<u64>()
        .unwrap();
    assert_eq!(
        ring.row(3).to_vec(),
        [(16 - 3 - 2) * 8, (16 - 2 - 3) * 8, (16 - 3 - 3) * 8]
    );
}

#[test]
fn bad_sizes_are_refused() {
    let output = mpirun(2, &["bench-allreduce", "--sizes", "12", "--dtype", "f64"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("multiples of 8"));
}

/// A small MLP problem with uneven shares, run with one algorithm.
fn train_mlp(ranks: usize, algorithm: &str, out: &std::path::Path) {
    let args = [
        "train",
        "--model",
        "mlp",
        "--hidden",
        "12",
        "--classes",
        "3",
        "--features",
        "5",
        "--samples",
        "1003",
        "--batch",
        "64",
        "--epochs",
        "2",
        "--test-samples",
        "50",
        "--allreduce",
        algorithm,
        "--out",
        out.to_str().unwrap(),
    ];
    assert_success(&mpirun(ranks, &args));
}

#[test]
fn training_with_each_algorithm_matches_the_library() {
    let dir = scratch("train_algorithms");
    let reference_path = dir.join("k1.h5");
    train_mlp(1, "mpi", &reference_path);
    let reference = read_params(&reference_path);
    for ranks in [3, 4] {
        for algorithm in &algorithms() {
            let path = dir.join(format!("{algorithm}-{ranks}.h5"));
            train_mlp(ranks, algorithm, &path);
            let params = read_params(&path);
            let scale = reference.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let diff = reference
                .iter()
                .zip(&params)
                .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                diff / scale < 1e-9,
                "{algorithm} on {ranks} ranks: {:e}",
                diff / scale
            );
        }
    }
}

#[test]
fn local_sgd_converges_and_sends_less() {
    let dir = scratch("local_sgd");
    let mut bytes = Vec::new();
    for every in [None, Some("8"), Some("0")] {
        let path = dir.join(format!("avg-{}.h5", every.unwrap_or("grad")));
        let mut args = vec![
            "train",
            "--samples",
            "60000",
            "--epochs",
            "3",
            "--batch",
            "600",
            "--allreduce",
            "ring",
            "--out",
            path.to_str().unwrap(),
        ];
        if let Some(k) = every {
            args.extend(["--average-every", k]);
        }
        let output = mpirun(3, &args);
        assert_success(&output);
        let accuracy = summary_value(&output, "test_accuracy");
        assert!(
            accuracy >= 0.98,
            "--average-every {every:?}: accuracy {accuracy}"
        );
        let file = hdf5::File::open(&path).unwrap();
        let sent: u64 = file
            .dataset("comm/bytes_sent")
            .unwrap()
            .read_raw::<u64>()
            .unwrap()
            .iter()
            .sum();
        assert_eq!(
            file.group("summary")
                .unwrap()
                .attr("replicas_identical")
                .unwrap()
                .read_scalar::<u8>()
                .unwrap(),
            1
        );
        bytes.push(sent);
    }
    // 300 steps: every step, every 8th (+ the last), once.
    assert_eq!(bytes[0] / bytes[2], 300, "{bytes:?}");
    assert_eq!(bytes[1] / bytes[2], 38, "{bytes:?}");
}
