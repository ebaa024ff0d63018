//! The training algorithms besides synchronous SGD, end to end: Elastic Averaging SGD (the
//! centre is the model, its bytes are one allreduce of the parameters per period, a resumed
//! run is bit-identical).

mod common;

use common::*;

const BLOBS: &[&str] = &[
    "train",
    "--model",
    "mlp",
    "--hidden",
    "32",
    "--samples",
    "6000",
    "--test-samples",
    "1000",
    "--batch",
    "120",
    "--epochs",
    "3",
    "--lr",
    "0.05",
    "--momentum",
    "0.9",
];

fn train(ranks: usize, out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut args = BLOBS.to_vec();
    args.extend(["--out", out.to_str().unwrap()]);
    args.extend(extra);
    mpirun(ranks, &args)
}

fn bytes_sent(path: &std::path::Path) -> ndarray::Array2<u64> {
    let file = hdf5::File::open(path).unwrap();
    file.dataset("comm/bytes_sent").unwrap().read_2d().unwrap()
}

fn accuracy(output: &std::process::Output) -> f64 {
    summary_value(output, "test_accuracy")
}

#[test]
fn easgd_learns_and_sends_one_allreduce_of_the_parameters_per_period() {
    let dir = scratch("easgd");
    let sync = dir.join("sync.h5");
    let synced = train(3, &sync, &[]);
    assert_success(&synced);
    let out = dir.join("easgd.h5");
    let output = train(3, &out, &["--algorithm", "easgd", "--average-every", "4"]);
    assert_success(&output);
    assert!(
        accuracy(&output) > accuracy(&synced) - 0.02,
        "EASGD {} vs sync {}",
        accuracy(&output),
        accuracy(&synced)
    );
    // Bytes: nothing on the steps between elastic updates, the parameters' allreduce on them.
    let bytes = bytes_sent(&out);
    let per_update = bytes_sent(&sync)[[0, 0]];
    assert!(per_update > 0);
    for (step, row) in bytes.rows().into_iter().enumerate() {
        let want = if (step + 1) % 4 == 0 { per_update } else { 0 };
        assert_eq!(row[0], want, "step {}", step + 1);
    }
    let file = hdf5::File::open(&out).unwrap();
    let alpha: f64 = file
        .group("config")
        .unwrap()
        .attr("elastic_alpha")
        .unwrap()
        .read_scalar()
        .unwrap();
    assert_eq!(alpha, 0.3, "0.9 / ranks by default");
}

#[test]
fn a_resumed_easgd_run_is_bit_identical_and_too_large_an_alpha_is_refused() {
    let dir = scratch("easgd_resume");
    let rule = [
        "--algorithm",
        "easgd",
        "--average-every",
        "3",
        "--elastic-alpha",
        "0.2",
    ];
    let full = dir.join("full.h5");
    assert_success(&train(2, &full, &rule));
    let part = dir.join("part.h5");
    let mut failing = rule.to_vec();
    failing.extend(["--checkpoint-every", "40", "--fail-at", "0:compute:47"]);
    assert!(!train(2, &part, &failing).status.success());
    let checkpoint = dir.join("part.ckpt.h5");
    let mut resumed = rule.to_vec();
    resumed.extend([
        "--checkpoint-every",
        "40",
        "--resume",
        checkpoint.to_str().unwrap(),
        "--force",
    ]);
    assert_success(&train(2, &part, &resumed));
    assert_eq!(read_params(&part), read_params(&full));

    let refused = train(
        4,
        &dir.join("refused.h5"),
        &["--algorithm", "easgd", "--elastic-alpha", "0.3"],
    );
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("--elastic-alpha 0.25 or less"), "{err}");
}

/// With one client per rank, every client drawn, one local epoch and a minibatch as large as a
/// client's rows, a round of FedAvg is one step of full-batch gradient descent (FedSGD): the
/// row-weighted average of w - lr g_k / n_k is w - lr g / N. So it must give synchronous SGD's
/// model with a batch of every row, to rounding.
#[test]
fn fedavg_with_every_client_and_one_full_minibatch_is_full_batch_sgd() {
    let dir = scratch("fedavg_fedsgd");
    let common = [
        "train",
        "--model",
        "softmax",
        "--classes",
        "4",
        "--samples",
        "600",
        "--test-samples",
        "100",
        "--features",
        "5",
        "--batch",
        "600",
        "--epochs",
        "6",
        "--lr",
        "0.5",
    ];
    let sync = dir.join("sync.h5");
    let mut args = common.to_vec();
    args.extend(["--out", sync.to_str().unwrap()]);
    assert_success(&mpirun(1, &args));
    for ranks in [1, 3] {
        let fed = dir.join(format!("fed{ranks}.h5"));
        let per_round = ranks.to_string();
        let mut args = common.to_vec();
        args.extend(["--algorithm", "fedavg", "--clients", &per_round]);
        args.extend([
            "--clients-per-round",
            &per_round,
            "--out",
            fed.to_str().unwrap(),
        ]);
        assert_success(&mpirun(ranks, &args));
        let diff = relative_difference(&read_params(&sync), &read_params(&fed));
        assert!(diff < 1e-12, "{ranks} ranks: {diff:e}");
    }
}

#[test]
fn fedavg_learns_with_skewed_clients_and_reports_every_round() {
    let dir = scratch("fedavg");
    let out = dir.join("fed.h5");
    // BLOBS without its --epochs: the rounds are given as --rounds (local minibatches of 120).
    let at = BLOBS.iter().position(|&a| a == "--epochs").unwrap();
    let mut args = [&BLOBS[..at], &BLOBS[at + 2..]].concat();
    args.extend([
        "--out",
        out.to_str().unwrap(),
        "--algorithm",
        "fedavg",
        "--clients",
        "30",
    ]);
    args.extend([
        "--clients-per-round",
        "6",
        "--local-epochs",
        "2",
        "--non-iid",
        "0.5",
    ]);
    args.extend(["--rounds", "15"]);
    let output = mpirun(3, &args);
    assert_success(&output);
    assert!(
        accuracy(&output) > 0.85,
        "test accuracy {}",
        accuracy(&output)
    );
    let file = hdf5::File::open(&out).unwrap();
    let per_round: Vec<f64> = file
        .dataset("metrics/test_accuracy")
        .unwrap()
        .read_raw()
        .unwrap();
    assert_eq!(per_round.len(), 15, "accuracy after every round");
    drop(file);
    // One allreduce of the parameters per round, from every rank (drawn clients or not).
    let bytes = bytes_sent(&out);
    assert_eq!(bytes.dim(), (15, 3));
    assert!(bytes.iter().all(|&b| b == bytes[[0, 0]] && b > 0));

    for (extra, needle) in [
        (
            &["--clients", "2", "--clients-per-round", "1"][..],
            "--clients 3 or more",
        ),
        (&["--overlap"], "does not apply to --algorithm fedavg"),
        (&["--clients-per-round", "200"], "more than the --clients"),
    ] {
        let mut args = vec!["--algorithm", "fedavg"];
        args.extend(extra);
        let refused = train(3, &dir.join("refused.h5"), &args);
        assert_eq!(refused.status.code(), Some(2), "{extra:?}");
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(err.contains(needle), "{extra:?}: {err}");
    }
}

/// Async-ps reads a run file's `/async` tables.
fn async_table(path: &std::path::Path, name: &str) -> ndarray::Array2<u64> {
    let file = hdf5::File::open(path).unwrap();
    file.dataset(&format!("async/{name}"))
        .unwrap()
        .read_2d()
        .unwrap()
}

/// One server and two workers, then two servers (sharded) and two workers: the model learns,
/// every worker's every gradient is applied exactly once by every server, staleness is
/// recorded for each, and the final model is the same on every rank.
#[test]
fn async_ps_applies_every_gradient_once_and_learns() {
    let dir = scratch("async_ps");
    for (ranks, servers) in [(3, 1), (4, 2)] {
        let out = dir.join(format!("ps{ranks}.h5"));
        let servers_text = servers.to_string();
        let output = train(
            ranks,
            &out,
            &["--algorithm", "async-ps", "--servers", &servers_text],
        );
        assert_success(&output);
        assert!(
            accuracy(&output) > 0.9,
            "{ranks} ranks: test accuracy {}",
            accuracy(&output)
        );
        let steps = summary_value(&output, "steps") as usize;
        let workers = ranks - servers;
        let from = async_table(&out, "update_worker");
        let staleness = async_table(&out, "staleness");
        assert_eq!(from.dim(), (workers * steps, ranks));
        for server in 0..servers {
            for worker in servers..ranks {
                let applied = from
                    .column(server)
                    .iter()
                    .filter(|&&w| w == worker as u64)
                    .count();
                assert_eq!(
                    applied, steps,
                    "server {server} applied worker {worker}'s gradients"
                );
            }
            // With two workers a gradient can be a few updates old, never more than the
            // updates in one epoch.
            assert!(staleness
                .column(server)
                .iter()
                .all(|&s| s < (workers * steps) as u64));
        }
        let file = hdf5::File::open(&out).unwrap();
        let identical: u8 = file
            .group("summary")
            .unwrap()
            .attr("replicas_identical")
            .unwrap()
            .read_scalar()
            .unwrap();
        assert_eq!(identical, 1, "every rank holds the servers' model");
    }
}

/// A worker or a server that fails ends the whole job with one message, never a hang.
#[test]
fn a_failing_worker_or_server_ends_the_async_job() {
    let dir = scratch("async_ps_fail");
    for (fail_at, who) in [("2:compute:5", "rank 2"), ("0:update:7", "rank 0")] {
        let begin = std::time::Instant::now();
        let output = train(
            3,
            &dir.join("failed.h5"),
            &["--algorithm", "async-ps", "--fail-at", fail_at],
        );
        assert!(!output.status.success(), "{fail_at}");
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(
            err.contains("injected fault") && err.contains(who),
            "{fail_at}: {err}"
        );
        assert!(
            begin.elapsed() < std::time::Duration::from_secs(60),
            "{fail_at}: ended quickly"
        );
        assert!(!dir.join("failed.h5").exists(), "no run file");
    }
    let refused = train(
        2,
        &dir.join("refused.h5"),
        &["--algorithm", "async-ps", "--servers", "2"],
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("leaves no worker"));
}
