//! Bad input ends the job with one clear line and a non-zero exit, never a hang or a half file.

mod common;

use std::process::Output;

use common::*;

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The lines the program itself printed (the launcher adds its own banner).
fn own_lines(output: &Output) -> Vec<String> {
    stderr(output)
        .lines()
        .filter(|l| l.starts_with("mpi-sgd") || l.starts_with("error:"))
        .map(str::to_string)
        .collect()
}

#[test]
fn bad_options_fail_before_any_work_with_exit_code_2() {
    for (args, needle) in [
        (vec!["train", "--model", "svm"], "svm"),
        (vec!["train", "--lr", "-1"], "--lr"),
        (
            vec!["train", "--hidden", "12,x", "--model", "mlp"],
            "--hidden",
        ),
        (vec!["train", "--samples", "0"], "--samples"),
        (
            vec!["train", "--model", "softmax", "--classes", "1"],
            "--classes",
        ),
        (vec!["train", "--lr", "nan"], "--lr"),
        (vec!["train", "--lr", "inf"], "--lr"),
        (vec!["train", "--allreduce", "butterfly"], "butterfly"),
        (vec!["train", "--batch", "0"], "--batch"),
        (vec!["train", "--features", "-3"], "--features"),
        (vec!["train", "--epochs", "0"], "--epochs"),
        (
            vec!["train", "--samples", "10", "--batch", "20"],
            "--batch (20)",
        ),
        (vec!["train", "--stall-timeout", "-1"], "--stall-timeout"),
        (
            vec!["train", "--stall-timeout", "1e20"],
            "--stall-timeout 1e20",
        ),
        (
            vec!["train", "--checkpoint-seconds", "1e300", "--out", "x.h5"],
            "--checkpoint-seconds 1e300",
        ),
        // Sizes checked against the rank's memory before anything is allocated.
        (
            vec!["train", "--samples", "10000000000", "--features", "1000"],
            "use fewer --samples",
        ),
        (
            vec![
                "train",
                "--model",
                "mlp",
                "--hidden",
                "1000000,1000000",
                "--samples",
                "100",
                "--batch",
                "10",
            ],
            "use narrower layers",
        ),
        (
            vec![
                "train",
                "--samples",
                "100",
                "--batch",
                "10",
                "--epochs",
                "1000000000000000",
            ],
            "use fewer --epochs",
        ),
        (
            vec!["train", "--checkpoint-every", "5"],
            "--checkpoint PATH or --out",
        ),
        (
            vec!["train", "--checkpoint-every", "0", "--out", "x.h5"],
            "--checkpoint-every",
        ),
        (vec!["train", "--fail-at", "1:nowhere"], "RANK:PHASE"),
        (
            vec!["bench-allreduce", "--iterations", "0"],
            "--iterations 0",
        ),
        (
            vec!["bench-allreduce", "--sizes", "100000000000000"],
            "use smaller --sizes",
        ),
        (
            vec!["train", "--resume", "/nonexistent/ckpt.h5"],
            "no such file",
        ),
    ] {
        for output in [singleton(&args), mpirun(3, &args)] {
            assert_eq!(
                output.status.code(),
                Some(2),
                "{args:?}: {}",
                stderr(&output)
            );
            assert!(
                stderr(&output).contains(needle),
                "{args:?}: {}",
                stderr(&output)
            );
            assert_eq!(
                own_lines(&output).len(),
                1,
                "{args:?}: printed once: {}",
                stderr(&output)
            );
            assert!(!stderr(&output).contains("panicked"));
        }
    }
}

#[test]
fn a_batch_smaller_than_the_ranks_is_refused_once() {
    let output = mpirun(4, &["train", "--samples", "100", "--batch", "3"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let lines = own_lines(&output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("--batch (3)") && lines[0].contains("ranks (4)"),
        "{lines:?}"
    );
}

#[test]
fn an_existing_run_file_is_kept_without_force() {
    let dir = scratch("keep_existing");
    let path = dir.join("run.h5");
    std::fs::write(&path, b"precious").unwrap();
    let args = [
        "train",
        "--samples",
        "500",
        "--batch",
        "50",
        "--epochs",
        "1",
        "--out",
        path.to_str().unwrap(),
    ];
    let output = mpirun(2, &args);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("--force"));
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");

    let mut forced = args.to_vec();
    forced.push("--force");
    assert_success(&mpirun(2, &forced));
    assert!(hdf5::File::open(&path).is_ok());
}

#[test]
fn an_unwritable_out_fails_on_rank_0_without_hanging_the_others() {
    let dir = scratch("unwritable");
    let not_a_dir = dir.join("plain-file");
    std::fs::write(&not_a_dir, b"").unwrap();
    let out = not_a_dir.join("run.h5");
    let output = mpirun(
        3,
        &[
            "train",
            "--samples",
            "500",
            "--batch",
            "50",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let lines = own_lines(&output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("rank 0") && lines[0].contains("plain-file"),
        "{lines:?}"
    );
    // Nothing left behind: no run file, no temporary.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
}

#[test]
fn training_that_diverges_stops_with_a_hint_and_no_run_file() {
    let dir = scratch("diverges");
    let out = dir.join("run.h5");
    let args = [
        "train",
        "--model",
        "mlp",
        "--lr",
        "1e30",
        "--samples",
        "5000",
        "--batch",
        "500",
        "--out",
        out.to_str().unwrap(),
    ];
    let output = mpirun(3, &args);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let lines = own_lines(&output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("diverged at step") && lines[0].contains("--lr"),
        "{lines:?}"
    );
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "no run file, no temporary"
    );
}

#[test]
fn a_loss_that_overflows_while_the_gradient_stays_finite_is_divergence() {
    // float32 logits beyond 3.4e38: the loss is Inf, the sigmoid's residuals stay in [-1, 1].
    let dir = scratch("loss-diverges");
    let out = dir.join("run.h5");
    let args = [
        "train",
        "--dtype",
        "f32",
        "--lr",
        "3e38",
        "--samples",
        "2000",
        "--batch",
        "100",
        "--epochs",
        "2",
        "--out",
        out.to_str().unwrap(),
    ];
    let output = mpirun(2, &args);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let lines = own_lines(&output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("the epoch's loss holds NaN or Inf"),
        "{lines:?}"
    );
    assert!(!out.exists());
}

#[test]
fn ranks_started_with_different_options_are_refused() {
    let same = [
        "train",
        "--samples",
        "1000",
        "--batch",
        "100",
        "--epochs",
        "1",
    ];
    let mut other = same.to_vec();
    other.extend(["--lr", "0.2"]);
    let output = mpirun_mpmd(&[(1, &same), (2, &other)]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let lines = own_lines(&output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("ranks 1,2") && lines[0].contains("same command"),
        "{lines:?}"
    );
}

/// An output that is an input of the same command (spelled another way: a symlink, `./`) is
/// refused with one line and exit 2, even with `--force`, and the input is left as it was.
#[test]
fn an_output_that_is_an_input_is_refused_and_the_input_kept() {
    let dir = scratch("output_is_input");
    let data = dir.join("data.h5");
    let text = dir.join("rows.csv");
    std::fs::write(&text, "a,b,label\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n").unwrap();
    let converted = singleton(&["convert", text.to_str().unwrap(), data.to_str().unwrap()]);
    assert_success(&converted);
    let link = dir.join("link.h5");
    std::os::unix::fs::symlink(&data, &link).unwrap();
    let before = std::fs::read(&data).unwrap();
    let (d, l) = (data.to_str().unwrap(), link.to_str().unwrap());
    let dotted = format!("{}/./rows.csv", dir.display());
    for (ranks, args) in [
        (2, vec!["train", "--data", d, "--out", l, "--force"]),
        (
            1,
            vec!["predict", "--model", d, "--data", d, "--out", l, "--force"],
        ),
    ] {
        let output = mpirun(ranks, &args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        let lines = own_lines(&output);
        assert_eq!(lines.len(), 1, "{args:?}: {lines:?}");
        assert!(lines[0].contains("may not replace an input"), "{lines:?}");
    }
    let output = singleton(&["convert", text.to_str().unwrap(), &dotted, "--force"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("INPUT"), "{}", stderr(&output));
    assert_eq!(
        std::fs::read(&data).unwrap(),
        before,
        "the data file changed"
    );
    assert!(std::fs::read_to_string(&text)
        .unwrap()
        .starts_with("a,b,label"));
}

#[test]
fn two_jobs_started_on_the_same_new_out_keep_both_results() {
    // Both pass the check before work (the file does not exist yet: each run takes about two
    // seconds); the one that finishes second must not replace the first one's run file.
    let dir = scratch("same-out");
    let out = dir.join("run.h5");
    let args = [
        "train",
        "--model",
        "mlp",
        "--hidden",
        "64",
        "--samples",
        "20000",
        "--batch",
        "64",
        "--epochs",
        "4",
        "--out",
        out.to_str().unwrap(),
    ];
    let jobs: Vec<_> = (0..2)
        .map(|_| spawn(mpirun_command(&[(1, &args)])))
        .collect();
    let outputs: Vec<Output> = jobs
        .into_iter()
        .map(|job| wait_with_limit(job, std::time::Duration::from_secs(120)))
        .collect();
    let (won, lost): (Vec<&Output>, Vec<&Output>) =
        outputs.iter().partition(|o| o.status.success());
    assert_eq!((won.len(), lost.len()), (1, 1), "{}", stderr(&outputs[1]));
    let message = stderr(lost[0]);
    assert!(message.contains("another job wrote this file"), "{message}");
    // The loser's result is kept beside, under the name its message gives; no temporary.
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    let kept = files.iter().find(|p| **p != out).unwrap();
    assert!(message.contains(&kept.display().to_string()), "{message}");
    for file in [&out, kept] {
        assert!(hdf5::File::open(file).is_ok(), "{}", file.display());
    }
}

#[test]
fn file_names_that_are_not_utf8_are_written_or_refused_with_a_line() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = scratch("not-utf8");
    let odd = |name: &[u8]| dir.join(OsStr::from_bytes(name));
    let run = |args: &[&OsStr]| {
        let mut command = std::process::Command::new(BINARY);
        command.args(args);
        wait_with_limit(spawn(command), std::time::Duration::from_secs(60))
    };
    let os = OsStr::new;
    // Outputs: written under exactly that name.
    let (out, csv, h5) = (
        odd(b"run-\xff.h5"),
        odd(b"rows-\xfe.csv"),
        odd(b"rows-\xfd.h5"),
    );
    let trained = run(&[
        os("train"),
        os("--samples"),
        os("1000"),
        os("--batch"),
        os("100"),
        os("--out"),
        out.as_os_str(),
    ]);
    assert_success(&trained);
    assert!(out.exists());
    std::fs::write(&csv, "a,b,label\n1,2,0\n3,4,1\n5,6,0\n").unwrap();
    let converted = run(&[os("convert"), csv.as_os_str(), h5.as_os_str()]);
    assert_success(&converted);
    assert!(h5.exists());
    // HDF5 inputs: refused with one line (the library takes names as UTF-8).
    for args in [
        vec![os("train"), os("--data"), h5.as_os_str()],
        vec![os("train"), os("--resume"), out.as_os_str()],
        vec![
            os("predict"),
            os("--model"),
            out.as_os_str(),
            os("--data"),
            h5.as_os_str(),
            os("--out"),
            os("p.h5"),
        ],
        vec![
            os("evaluate"),
            os("--model"),
            out.as_os_str(),
            os("--data"),
            h5.as_os_str(),
        ],
    ] {
        let output = run(&args);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("is not valid UTF-8") && !err.contains("panicked"),
            "{err}"
        );
        assert_eq!(own_lines(&output).len(), 1, "{err}");
    }
}
