//! The update rules and learning-rate schedules end to end: Adam and AdamW give the same model on
//! any number of ranks, and a run stopped and resumed from its checkpoint ends bit-identical to
//! one never stopped (the moments are saved, the step count and the schedule follow the step).

mod common;

use common::*;

const RUN: &[&str] = &[
    "train",
    "--model",
    "mlp",
    "--hidden",
    "16,8",
    "--classes",
    "3",
    "--samples",
    "1003",
    "--features",
    "5",
    "--test-samples",
    "101",
    "--batch",
    "64",
    "--epochs",
    "3",
    "--lr",
    "0.01",
];

fn train(ranks: usize, out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut args = RUN.to_vec();
    args.extend(["--out", out.to_str().unwrap()]);
    args.extend(extra);
    mpirun(ranks, &args)
}

#[test]
fn adam_and_adamw_give_the_same_model_on_any_number_of_ranks() {
    for (case, rule) in [
        &["--optimizer", "adam", "--l2", "1e-3"][..],
        &[
            "--optimizer",
            "adamw",
            "--lr-schedule",
            "cosine",
            "--warmup-epochs",
            "0.5",
        ],
    ]
    .into_iter()
    .enumerate()
    {
        let dir = scratch(&format!("adam_n_invariance_{case}"));
        let reference_path = dir.join("k1.h5");
        assert_success(&train(1, &reference_path, rule));
        let reference = read_params(&reference_path);
        let sgd_path = dir.join("sgd.h5");
        assert_success(&train(1, &sgd_path, &[]));
        assert!(
            relative_difference(&reference, &read_params(&sgd_path)) > 1e-3,
            "{rule:?} is not SGD"
        );
        for ranks in 2..=4 {
            let path = dir.join(format!("k{ranks}.h5"));
            assert_success(&train(ranks, &path, rule));
            let diff = relative_difference(&reference, &read_params(&path));
            assert!(diff < 1e-9, "{rule:?} on {ranks} ranks: {diff:e}");
        }
    }
}

/// A rank that fails after the checkpoint of step 20 ends the job; resuming from that
/// checkpoint (without the failure) ends with the bits of the run never stopped.
#[test]
fn a_resumed_adam_run_with_a_schedule_is_bit_identical() {
    for (case, rule) in [
        &[
            "--optimizer",
            "adam",
            "--lr-schedule",
            "cosine",
            "--warmup-epochs",
            "1",
        ][..],
        &[
            "--optimizer",
            "adamw",
            "--lr-schedule",
            "step",
            "--lr-step-epochs",
            "1",
        ],
    ]
    .into_iter()
    .enumerate()
    {
        let dir = scratch(&format!("adam_resume_{case}"));
        let full = dir.join("full.h5");
        assert_success(&train(2, &full, rule));
        let part = dir.join("part.h5");
        let checkpoint = dir.join("part.ckpt.h5");
        let mut failing = rule.to_vec();
        failing.extend(["--checkpoint-every", "20", "--fail-at", "1:compute:23"]);
        let failed = train(2, &part, &failing);
        assert!(!failed.status.success(), "the planned failure ends the job");
        let mut resumed = rule.to_vec();
        resumed.extend([
            "--checkpoint-every",
            "20",
            "--resume",
            checkpoint.to_str().unwrap(),
            "--force",
        ]);
        assert_success(&train(2, &part, &resumed));
        assert_eq!(read_params(&part), read_params(&full), "{rule:?}");
    }
}
