//! Faults: a rank that fails anywhere ends the job quickly with one message; a stuck rank is
//! reported by the stall watchdog; SIGTERM/SIGINT stop every rank at the same step with a
//! checkpoint; a resumed run ends bit-identical to one never stopped.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::*;

/// Within this, a failed job must have ended (oversubscribed start-up included).
const FAILURE_LIMIT: Duration = Duration::from_secs(10);

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A small MLP run of 4 ranks, 20 steps per epoch.
fn small_run(out: &Path) -> Vec<String> {
    [
        "train",
        "--model",
        "mlp",
        "--hidden",
        "16",
        "--samples",
        "8000",
        "--test-samples",
        "400",
        "--batch",
        "400",
        "--epochs",
        "2",
        "--checkpoint-every",
        "4",
        "--out",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([out.to_str().unwrap().to_string()])
    .collect()
}

#[test]
fn a_rank_failing_in_any_phase_ends_the_job_quickly_with_one_message() {
    let dir = scratch("fault_matrix");
    let out = dir.join("run.h5");
    let phases = [
        ("startup", ""),
        ("data", ""),
        ("compute", ":3"),
        ("allreduce", ":3"),
        ("update", ":3"),
        ("checkpoint", ":8"),
        ("write", ""),
    ];
    for (phase, step) in phases {
        for rank in [0, 2, 3] {
            let plan = format!("{rank}:{phase}{step}");
            let checkpoint = dir.join("run.ckpt.h5");
            std::fs::remove_file(&checkpoint).ok();
            let mut args = small_run(&out);
            args.extend(["--fail-at".into(), plan.clone()]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let begin = Instant::now();
            let output = wait_with_limit(spawn(mpirun_command(&[(4, &args)])), FAILURE_LIMIT);
            let err = stderr(&output);
            assert!(!output.status.success(), "{plan}: the job failed");
            assert!(
                begin.elapsed() < FAILURE_LIMIT,
                "{plan}: ended within {FAILURE_LIMIT:?}"
            );
            let ours: Vec<&str> = err.lines().filter(|l| l.starts_with("mpi-sgd")).collect();
            assert_eq!(ours.len(), 1, "{plan}: one message: {err}");
            assert!(
                ours[0].contains(&format!("error on rank {rank}"))
                    && ours[0].contains("injected fault"),
                "{plan}: names the rank and the cause: {err}"
            );
            assert!(!out.exists(), "{plan}: no run file");
            if phase == "checkpoint" {
                let kept: u64 = hdf5::File::open(&checkpoint)
                    .unwrap()
                    .attr("next_step")
                    .unwrap()
                    .read_scalar()
                    .unwrap();
                assert_eq!(kept, 4, "{plan}: the last good checkpoint stays");
            }
            let temporary: Vec<String> = files_in(&dir)
                .into_iter()
                .filter(|n| n.ends_with(".tmp"))
                .collect();
            assert!(
                temporary.is_empty(),
                "{plan}: no temporary file left: {temporary:?}"
            );
        }
    }
}

#[test]
fn a_panicking_rank_ends_the_job_with_mpi_abort() {
    let dir = scratch("fault_panic");
    let mut args = small_run(&dir.join("run.h5"));
    args.extend(["--fail-at", "2:update:5", "--fail-mode", "panic"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = wait_with_limit(spawn(mpirun_command(&[(4, &args)])), FAILURE_LIMIT);
    let err = stderr(&output);
    assert!(!output.status.success());
    let ours: Vec<&str> = err.lines().filter(|l| l.starts_with("mpi-sgd")).collect();
    assert_eq!(ours.len(), 1, "{err}");
    assert!(
        ours[0].contains("rank 2 panicked") && ours[0].contains("injected panic"),
        "{err}"
    );
}

#[test]
fn the_watchdog_names_the_rank_that_has_not_arrived() {
    let dir = scratch("fault_stall");
    let mut args = small_run(&dir.join("run.h5"));
    args.extend(
        [
            "--fail-at",
            "3:compute:2",
            "--fail-mode",
            "hang",
            "--stall-timeout",
            "2",
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let begin = Instant::now();
    let output = wait_with_limit(spawn(mpirun_command(&[(4, &args)])), FAILURE_LIMIT);
    let err = stderr(&output);
    assert!(!output.status.success());
    assert!(begin.elapsed() < FAILURE_LIMIT);
    let ours: Vec<&str> = err.lines().filter(|l| l.starts_with("mpi-sgd")).collect();
    assert_eq!(ours.len(), 1, "one report: {err}");
    assert!(
        ours[0].contains("stalled") && ours[0].contains("in the allreduce of step 2"),
        "{err}"
    );
    assert!(
        ours[0].contains("not arrived: rank 3 (in compute of step 2)"),
        "{err}"
    );
}

/// Epochs of [`long_run`]: long enough (about 1.6 s of steps here, unloaded) that a signal
/// sent after the first checkpoint reaches the ranks well before the last step, even with the
/// other tests competing for the cores.
const LONG_RUN_EPOCHS: usize = 64;
/// Steps of [`long_run`]: 40000 rows in batches of 500 is 80 steps an epoch.
const LONG_RUN_STEPS: usize = 80 * LONG_RUN_EPOCHS;

/// A longer run for the signal tests: [`LONG_RUN_STEPS`] steps of a small MLP on 3 ranks.
fn long_run(out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "train",
        "--model",
        "mlp",
        "--hidden",
        "32",
        "--samples",
        "40000",
        "--test-samples",
        "1000",
        "--batch",
        "500",
        "--lr",
        "0.05",
        "--momentum",
        "0.9",
        "--out",
    ]
    .map(String::from)
    .to_vec();
    args.push(out.to_str().unwrap().to_string());
    args.extend(["--epochs".to_string(), LONG_RUN_EPOCHS.to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn run_to_end(args: &[String]) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = mpirun(3, &args);
    assert_success(&output);
    output
}

/// Starts the run, waits for its first checkpoint, sends `signal` to one rank (found by the
/// unique output path on its command line) and returns the job's output.
fn interrupt(args: &[String], checkpoint: &Path, signal: &str) -> Output {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = spawn(mpirun_command(&[(3, &refs)]));
    let begin = Instant::now();
    while !checkpoint.exists() {
        assert!(
            begin.elapsed() < Duration::from_secs(60),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = args
        .iter()
        .position(|a| a == "--out")
        .map(|i| &args[i + 1])
        .unwrap();
    let pattern = format!("^{} train.*--out {out}", BINARY);
    let ranks = std::process::Command::new("pgrep")
        .args(["-f", &pattern])
        .output()
        .unwrap();
    let pid = String::from_utf8_lossy(&ranks.stdout)
        .lines()
        .next()
        .expect("a rank's pid")
        .to_string();
    send_signal(&pid, signal);
    wait_with_limit(child, Duration::from_secs(60))
}

fn params(path: &Path) -> Vec<f64> {
    read_params(path)
}

fn attr<T: hdf5::H5Type>(path: &Path, group: &str, name: &str) -> T {
    hdf5::File::open(path)
        .unwrap()
        .group(group)
        .unwrap()
        .attr(name)
        .unwrap()
        .read_scalar()
        .unwrap()
}

#[test]
fn sigterm_stops_every_rank_with_a_checkpoint_and_resume_is_bit_identical() {
    let dir = scratch("signal_resume");
    let full = dir.join("full.h5");
    run_to_end(&long_run(&full, &[]));

    let part = dir.join("part.h5");
    let checkpoint: PathBuf = dir.join("part.ckpt.h5");
    let args = long_run(&part, &["--checkpoint-every", "100"]);
    let stopped = interrupt(&args, &checkpoint, "TERM");
    let err = stderr(&stopped);
    assert_eq!(stopped.status.code(), Some(143), "128 + SIGTERM: {err}");
    assert!(
        err.contains("interrupted by SIGTERM") && err.contains("--resume"),
        "{err}"
    );
    assert_eq!(attr::<u8>(&part, "summary", "interrupted"), 1);
    let steps_done = attr::<u64>(&part, "summary", "steps");
    assert!(
        steps_done > 0 && steps_done < LONG_RUN_STEPS as u64,
        "stopped early: {steps_done}"
    );
    let timings: ndarray::Array2<f64> = hdf5::File::open(&part)
        .unwrap()
        .dataset("timings/step")
        .unwrap()
        .read_2d()
        .unwrap();
    assert_eq!(
        timings.dim(),
        (steps_done as usize, 3),
        "the timings so far, every rank"
    );

    let mut resumed = args.clone();
    resumed.extend([
        "--resume".into(),
        checkpoint.to_str().unwrap().into(),
        "--force".into(),
    ]);
    run_to_end(&resumed);
    assert_eq!(
        params(&part),
        params(&full),
        "bit-identical to the run never stopped"
    );
    assert_eq!(attr::<u8>(&part, "summary", "interrupted"), 0);
    let restarts: Vec<u64> = hdf5::File::open(&part)
        .unwrap()
        .dataset("restarts/step")
        .unwrap()
        .read_raw()
        .unwrap();
    assert_eq!(restarts, vec![steps_done]);
    let history: ndarray::Array2<f64> = hdf5::File::open(&part)
        .unwrap()
        .dataset("timings/step")
        .unwrap()
        .read_2d()
        .unwrap();
    assert_eq!(history.dim(), (LONG_RUN_STEPS, 3), "the whole history");
    assert!(history.iter().all(|&t| t > 0.0));
}

#[test]
fn sigint_exits_130_and_marks_the_run_file() {
    let dir = scratch("signal_int");
    let out = dir.join("int.h5");
    let stopped = interrupt(
        &long_run(&out, &["--checkpoint-every", "50"]),
        &dir.join("int.ckpt.h5"),
        "INT",
    );
    assert_eq!(stopped.status.code(), Some(130), "{}", stderr(&stopped));
    assert_eq!(attr::<u8>(&out, "summary", "interrupted"), 1);
    let by: hdf5::types::VarLenUnicode = attr(&out, "summary", "interrupted_by");
    assert_eq!(by.as_str(), "SIGINT");
}

#[test]
fn a_checkpoint_from_another_configuration_is_refused_naming_the_difference() {
    let dir = scratch("resume_mismatch");
    let out = dir.join("run.h5");
    let mut args = small_run(&out);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_success(&mpirun(2, &refs));
    let checkpoint = dir.join("run.ckpt.h5");
    args.extend(
        [
            "--resume",
            checkpoint.to_str().unwrap(),
            "--force",
            "--lr",
            "0.3",
        ]
        .map(String::from),
    );
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = mpirun(2, &refs);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("another configuration (lr 0.1 (now 0.3))"),
        "{}",
        stderr(&output)
    );
    let other_ranks = mpirun(3, &refs[..refs.len() - 2]);
    assert_eq!(other_ranks.status.code(), Some(2));
    assert!(
        stderr(&other_ranks).contains("ranks 2 (now 3)"),
        "{}",
        stderr(&other_ranks)
    );
    // A checkpoint of an older format is named as such, not as a broken file.
    {
        let file = hdf5::File::open_rw(&checkpoint).unwrap();
        file.delete_attr("format").unwrap();
        let old: hdf5::types::VarLenUnicode = "mpi-sgd-checkpoint/1".parse().unwrap();
        file.new_attr::<hdf5::types::VarLenUnicode>()
            .create("format")
            .unwrap()
            .write_scalar(&old)
            .unwrap();
    }
    let older = mpirun(2, &refs[..refs.len() - 2]);
    assert_eq!(older.status.code(), Some(2));
    assert!(
        stderr(&older).contains("format mpi-sgd-checkpoint/1, written by another version"),
        "{}",
        stderr(&older)
    );
}

#[test]
fn a_checkpoint_killed_mid_write_leaves_the_previous_one_whole() {
    let dir = scratch("checkpoint_kill");
    let out = dir.join("run.h5");
    let checkpoint = dir.join("run.ckpt.h5");
    let args = long_run(&out, &["--checkpoint-every", "1"]);
    // SIGKILL cannot be caught: the process dies wherever it is, often inside a checkpoint.
    let killed = interrupt(&args, &checkpoint, "KILL");
    assert!(!killed.status.success());
    let file = hdf5::File::open(&checkpoint).expect("the checkpoint opens");
    let next: u64 = file.attr("next_step").unwrap().read_scalar().unwrap();
    assert!(next >= 1);
    drop(file);
    let resumed = long_run(&out, &["--resume", checkpoint.to_str().unwrap(), "--force"]);
    run_to_end(&resumed);
}

#[test]
fn a_rank_paused_past_the_stall_timeout_is_reported_once_with_the_real_wait() {
    // Rank 2 of 3 is stopped (SIGSTOP) for 2.5 s, longer than --stall-timeout, then continued while
    // the others' watchdogs are collecting answers.
    let dir = scratch("fault_sigstop");
    let checkpoint = dir.join("run.ckpt.h5");
    let extra = ["--stall-timeout", "1", "--checkpoint-every", "40"];
    let args = long_run(&dir.join("run.h5"), &extra);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = spawn(mpirun_command(&[(3, &refs)]));
    let out = dir.join("run.h5");
    let pattern = format!("^{} train.*--out {}", BINARY, out.display());
    let begin = Instant::now();
    let pids = loop {
        let found = std::process::Command::new("pgrep")
            .args(["-f", &pattern])
            .output()
            .unwrap();
        let pids: Vec<String> = String::from_utf8_lossy(&found.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        if pids.len() == 3 {
            break pids;
        }
        assert!(
            begin.elapsed() < Duration::from_secs(60),
            "ranks not started"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    while !checkpoint.exists() {
        // In the training loop (start-up's collectives are not watched).
        assert!(begin.elapsed() < Duration::from_secs(60), "no checkpoint");
        std::thread::sleep(Duration::from_millis(20));
    }
    send_signal(&pids[2], "STOP");
    std::thread::sleep(Duration::from_millis(2500));
    send_signal(&pids[2], "CONT");
    let output = wait_with_limit(child, FAILURE_LIMIT);
    let err = stderr(&output);
    let reports: Vec<&str> = err.lines().filter(|l| l.contains("stalled")).collect();
    assert_eq!(reports.len(), 1, "one report: {err}");
    let waited: f64 = reports[0]
        .split("waited ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a waiting time in: {}", reports[0]));
    assert!(
        waited >= 1.4,
        "the real wait (about 2.5 s), not 0: {}",
        reports[0]
    );
    assert!(!output.status.success());
}

#[test]
fn checkpoint_seconds_takes_one_checkpoint_per_period() {
    // A vote's result arrives at the next vote: rank 0 must not ask twice for one period.
    let dir = scratch("checkpoint_period");
    let out = dir.join("run.h5");
    let args = long_run(&out, &["--checkpoint-seconds", "0.3"]);
    run_to_end(&args);
    let file = hdf5::File::open(&out).unwrap();
    let steps: Vec<u64> = file
        .dataset("timings/checkpoint_step")
        .unwrap()
        .read_raw()
        .unwrap();
    assert!(!steps.is_empty(), "no checkpoint in the run");
    for pair in steps.windows(2) {
        assert!(
            pair[1] - pair[0] > 16,
            "two checkpoints two votes apart: {steps:?}"
        );
    }
}
