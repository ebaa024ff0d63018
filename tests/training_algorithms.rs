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
