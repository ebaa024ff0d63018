//! Launching the built binary under its MPI family's launcher, as a user would, for the
//! integration tests: Open MPI's `mpirun`, or MPICH's Hydra `mpiexec` for a binary built with
//! MPICH (`make test MPI=mpich`); `mpi-sgd --version` names the library.

#![allow(dead_code)] // each test file uses its own part of this module

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const BINARY: &str = env!("CARGO_BIN_EXE_mpi-sgd");

/// A run that did not finish within this is a hang, and fails the test.
pub const TIME_LIMIT: Duration = Duration::from_secs(120);

/// The MPI family the binary is built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    OpenMpi,
    Mpich,
}

/// The family of [`BINARY`], from its `--version` line.
pub fn family() -> Family {
    static FAMILY: OnceLock<Family> = OnceLock::new();
    *FAMILY.get_or_init(|| {
        let output = Command::new(BINARY)
            .arg("--version")
            .output()
            .expect("the binary runs");
        let version = String::from_utf8_lossy(&output.stdout);
        if version.contains("Open MPI") {
            Family::OpenMpi
        } else {
            Family::Mpich
        }
    })
}

/// The first of `names` found on PATH, else the last (the generic name).
fn first_on_path(names: &[&'static str]) -> &'static str {
    let path = std::env::var_os("PATH").unwrap_or_default();
    names
        .iter()
        .copied()
        .find(|name| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
        .unwrap_or(names[names.len() - 1])
}

/// `mpirun -n ranks mpi-sgd args...` (or MPICH's `mpiexec`), with Open MPI's root and
/// oversubscription permissions set only where they are needed (running as root; more ranks
/// than cores). MPICH needs neither.
pub fn mpirun(ranks: usize, args: &[&str]) -> Output {
    mpirun_mpmd(&[(ranks, args)])
}

/// `mpirun -n k1 mpi-sgd args1... : -n k2 mpi-sgd args2...` (MPMD: ranks with other options).
pub fn mpirun_mpmd(parts: &[(usize, &[&str])]) -> Output {
    run_with_limit(mpirun_command(parts))
}

/// The launcher command of [`mpirun_mpmd`], not started. Each Open MPI job gets its own
/// session directory: the tests run many jobs at once, and Open MPI 4 jobs sharing the default
/// one can remove it under each other (`orte_session_dir failed`).
pub fn mpirun_command(parts: &[(usize, &[&str])]) -> Command {
    let mut command = match family() {
        Family::OpenMpi => {
            let mut command = Command::new(first_on_path(&["mpirun.openmpi", "mpirun"]));
            own_session_directory(&mut command);
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            if parts.iter().map(|(ranks, _)| ranks).sum::<usize>() > cores {
                command.arg("--oversubscribe");
            }
            if is_root() {
                command
                    .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
                    .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
            }
            command
        }
        Family::Mpich => Command::new(first_on_path(&["mpiexec.mpich", "mpiexec"])),
    };
    for (i, (ranks, args)) in parts.iter().enumerate() {
        if i > 0 {
            command.arg(":");
        }
        command
            .arg("-n")
            .arg(ranks.to_string())
            .arg(BINARY)
            .args(*args);
    }
    command
}

/// Gives the Open MPI job of `command` a session directory of its own.
fn own_session_directory(command: &mut Command) {
    static JOBS: AtomicUsize = AtomicUsize::new(0);
    let session = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "ompi-{}-{}",
        std::process::id(),
        JOBS.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&session).expect("a session directory");
    command.env("OMPI_MCA_orte_tmpdir_base", &session);
}

/// The binary alone, without a launcher (MPI singleton).
pub fn singleton(args: &[&str]) -> Output {
    let mut command = Command::new(BINARY);
    own_session_directory(&mut command);
    command.args(args);
    run_with_limit(command)
}

fn run_with_limit(command: Command) -> Output {
    wait_with_limit(spawn(command), TIME_LIMIT)
}

/// Starts `command` with its output captured.
pub fn spawn(mut command: Command) -> Child {
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the MPI launcher is installed (make deps)")
}

/// Waits for `child`; fails the test (a hang) if it runs longer than `limit`.
pub fn wait_with_limit(mut child: Child, limit: Duration) -> Output {
    let begin = Instant::now();
    while child.try_wait().expect("child status").is_none() {
        if begin.elapsed() > limit {
            child.kill().ok();
            let output = child.wait_with_output().expect("child output");
            panic!(
                "still running after {limit:?}: a hang\nstderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("child output")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Fails the test with the run's output unless it succeeded.
pub fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "run failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The `key=value` summary line (last line of stdout) as pairs.
pub fn summary(output: &Output) -> Vec<(String, String)> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().expect("a summary line");
    line.split_whitespace()
        .map(|pair| {
            let (k, v) = pair.split_once('=').expect("key=value");
            (k.to_string(), v.to_string())
        })
        .collect()
}

pub fn summary_value(output: &Output, key: &str) -> f64 {
    summary(output)
        .into_iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("summary has no {key}"))
        .1
        .parse()
        .expect("a number")
}

/// The names of the files in `dir`, sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Sends `signal` (`TERM`, `INT`, `STOP`, `CONT`) to process `pid` with `kill`.
pub fn send_signal(pid: impl std::fmt::Display, signal: &str) {
    let sent = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{signal} {pid}");
}

/// A fresh directory for one test's files.
pub fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(test);
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// max |a - b| / max |a|: how far a model is from a reference, relative to its largest value.
pub fn relative_difference(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let diff = a
        .iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    diff / scale
}

pub fn read_params(path: &Path) -> Vec<f64> {
    let file = hdf5::File::open(path).expect("run file opens");
    file.dataset("model/params")
        .unwrap()
        .read_raw::<f64>()
        .unwrap()
}

/// The [rows, columns] float dataset `name` of an HDF5 file (a run file's step columns).
pub fn read_table(path: &Path, name: &str) -> ndarray::Array2<f64> {
    let file = hdf5::File::open(path).expect("run file opens");
    file.dataset(name).unwrap().read_2d().unwrap()
}

/// The allreduce algorithms the binary registers (`mpi-sgd algorithms`), in its order.
pub fn algorithms() -> Vec<String> {
    let output = Command::new(BINARY)
        .arg("algorithms")
        .output()
        .expect("the binary runs");
    assert_success(&output);
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.starts_with(' '))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect()
}
