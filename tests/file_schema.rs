//! The layout of every file mpi-sgd writes (run file, checkpoint, benchmark file) is compared,
//! group by group, dataset by dataset and attribute by attribute (name, shape, type), with a
//! listing kept in `tests/golden/`. Values are not compared: they change from run to run.
//!
//! A change of layout must be deliberate: update docs/output-format.md, bump the format string
//! where readers would break, and regenerate the listings with
//! `MPI_SGD_BLESS=1 cargo test --release --test file_schema`.

mod common;

use std::fmt::Write;
use std::path::Path;

use common::{assert_success, mpirun, scratch};

/// Every group, dataset and attribute of `file`, one per line, sorted by path.
fn listing(file: &Path) -> String {
    let file = hdf5::File::open(file).expect("the file opens");
    let mut lines = Vec::new();
    list_group(&file, "", &mut lines);
    lines.sort();
    lines.join("\n") + "\n"
}

fn list_group(group: &hdf5::Group, path: &str, lines: &mut Vec<String>) {
    lines.push(format!("group {}/", path));
    list_attributes(group, path, lines);
    for dataset in group.datasets().expect("datasets") {
        let name = format!("{path}/{}", short_name(&dataset.name()));
        let dtype = dataset
            .dtype()
            .expect("dtype")
            .to_descriptor()
            .expect("type");
        lines.push(format!("dataset {name} {:?} {dtype:?}", dataset.shape()));
        list_attributes(&dataset, &name, lines);
    }
    for child in group.groups().expect("groups") {
        let name = format!("{path}/{}", short_name(&child.name()));
        list_group(&child, &name, lines);
    }
}

fn list_attributes(location: &hdf5::Location, path: &str, lines: &mut Vec<String>) {
    for name in location.attr_names().expect("attribute names") {
        let attr = location.attr(&name).expect("attribute");
        let dtype = attr.dtype().expect("dtype").to_descriptor().expect("type");
        let mut line = String::new();
        write!(line, "attr {path}@{name} {:?} {dtype:?}", attr.shape()).unwrap();
        lines.push(line);
    }
}

fn short_name(full: &str) -> &str {
    full.rsplit('/').next().unwrap_or(full)
}

/// Compares `actual` with `tests/golden/<name>.txt` (or rewrites it with MPI_SGD_BLESS=1).
fn check_against_golden(name: &str, actual: &str) {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{name}.txt"));
    if std::env::var_os("MPI_SGD_BLESS").is_some() {
        std::fs::write(&golden, actual).expect("write the golden listing");
        return;
    }
    let expected = std::fs::read_to_string(&golden).expect("the golden listing exists");
    if expected != actual {
        let diff: Vec<String> = diff_lines(&expected, actual);
        panic!(
            "{name}: the file layout differs from {}:\n{}",
            golden.display(),
            diff.join("\n")
        );
    }
}

fn diff_lines(expected: &str, actual: &str) -> Vec<String> {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let gone = e
        .iter()
        .filter(|l| !a.contains(l))
        .map(|l| format!("- {l}"));
    let new = a
        .iter()
        .filter(|l| !e.contains(l))
        .map(|l| format!("+ {l}"));
    gone.chain(new).collect()
}

#[test]
fn run_and_checkpoint_files_keep_their_layout() {
    let dir = scratch("file_schema_run");
    let out = dir.join("run.h5");
    let checkpoint = dir.join("run.ckpt.h5");
    let output = mpirun(
        2,
        &[
            "train",
            "--model",
            "mlp",
            "--hidden",
            "6,4",
            "--classes",
            "3",
            "--samples",
            "400",
            "--features",
            "5",
            "--test-samples",
            "40",
            "--batch",
            "64",
            "--epochs",
            "2",
            "--standardize",
            "--checkpoint-every",
            "3",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_success(&output);
    check_against_golden("run", &listing(&out));
    check_against_golden("checkpoint", &listing(&checkpoint));
}

#[test]
fn the_benchmark_file_keeps_its_layout() {
    let dir = scratch("file_schema_bench");
    let out = dir.join("bench.h5");
    let output = mpirun(
        2,
        &[
            "bench-allreduce",
            "--sizes",
            "8,64",
            "--iterations",
            "2",
            "--warmup",
            "0",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_success(&output);
    check_against_golden("bench", &listing(&out));
}
