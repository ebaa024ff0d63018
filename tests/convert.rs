//! `mpi-sgd convert`: CSV and LIBSVM text into the HDF5 data layout, exactly, and bad input
//! refused with one line naming the file and the problem, nothing written.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use ndarray::Array2;
use rand::{Rng, SeedableRng};

fn convert(args: &[&str]) -> Output {
    singleton(&[&["convert"], args].concat())
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn read<T: hdf5::H5Type>(path: &Path, name: &str) -> Vec<T> {
    hdf5::File::open(path)
        .unwrap()
        .dataset(name)
        .unwrap()
        .read_raw()
        .unwrap()
}

fn read_2d(path: &Path, name: &str) -> Array2<f64> {
    hdf5::File::open(path)
        .unwrap()
        .dataset(name)
        .unwrap()
        .read_2d()
        .unwrap()
}

/// A CSV with a header, `rows` rows of 3 random features (awkward values included) and a
/// label in the middle column, in {3, 7, 9}; returns the features and labels written.
fn write_csv(path: &Path, rows: usize) -> (Array2<f64>, Vec<i64>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut x = Array2::from_shape_simple_fn((rows, 3), || rng.random::<f64>() * 2e3 - 1e3);
    x[[0, 0]] = 1e-300;
    x[[1, 1]] = -0.0;
    x[[2, 2]] = 123_456_789.123_456_78;
    let labels: Vec<i64> = (0..rows).map(|i| [3, 7, 9][i % 3]).collect();
    let mut text = String::from("a,b,target,c\n");
    for (row, label) in x.rows().into_iter().zip(&labels) {
        // Debug prints the shortest text that parses back to the same bits.
        writeln!(text, "{:?},{:?},{label},{:?}", row[0], row[1], row[2]).unwrap();
    }
    std::fs::write(path, text).unwrap();
    (x, labels)
}

#[test]
fn csv_converts_exactly_with_labels_mapped_and_the_mapping_stored() {
    let dir = scratch("convert_csv");
    let (csv, out) = (dir.join("data.csv"), dir.join("data.h5"));
    let (x, labels) = write_csv(&csv, 1000);
    let output = convert(&[path_str(&csv), path_str(&out), "--label-column", "target"]);
    assert_success(&output);
    assert_eq!(read_2d(&out, "X"), x);
    let classes: Vec<u32> = labels
        .iter()
        .map(|l| [3, 7, 9].iter().position(|v| v == l).unwrap() as u32)
        .collect();
    assert_eq!(read::<u32>(&out, "y"), classes);
    assert_eq!(read::<i64>(&out, "label_values"), vec![3, 7, 9]);
    let file = hdf5::File::open(&out).unwrap();
    assert!(!file.link_exists("X_test"));
    let x_set = file.dataset("X").unwrap();
    assert!(x_set.is_chunked(), "X is chunked");
    assert!(!x_set.filters().is_empty(), "X is compressed");
    let names: Vec<hdf5::types::VarLenUnicode> =
        file.dataset("feature_names").unwrap().read_raw().unwrap();
    assert_eq!(
        names.iter().map(|n| n.as_str()).collect::<Vec<_>>(),
        ["a", "b", "c"]
    );

    // The same by column index, as float32, with the last 25% as the test set.
    let out32 = dir.join("data32.h5");
    let output = convert(&[
        path_str(&csv),
        path_str(&out32),
        "--label-column",
        "2",
        "--dtype",
        "f32",
        "--test-fraction",
        "0.25",
    ]);
    assert_success(&output);
    let both = ndarray::concatenate![
        ndarray::Axis(0),
        read_2d(&out32, "X"),
        read_2d(&out32, "X_test")
    ];
    assert_eq!(both, x.mapv(|v| v as f32 as f64));
    assert_eq!(read::<u32>(&out32, "y_test").len(), 250);
}

#[test]
fn shuffling_permutes_whole_rows_with_a_seed() {
    let dir = scratch("convert_shuffle");
    let csv = dir.join("rows.csv");
    // Row i: features [i, -i], label i % 2: a row's parts must stay together.
    let text: String = (0..500)
        .map(|i| format!("{i},{},{}\n", -i, i % 2))
        .collect();
    std::fs::write(&csv, text).unwrap();
    let shuffled = |name: &str, seed: &str| {
        let out = dir.join(name);
        let output = convert(&[
            path_str(&csv),
            path_str(&out),
            "--shuffle",
            "--seed",
            seed,
            "--test-fraction",
            "0.2",
        ]);
        assert_success(&output);
        let x = ndarray::concatenate![
            ndarray::Axis(0),
            read_2d(&out, "X"),
            read_2d(&out, "X_test")
        ];
        let y = [read::<u32>(&out, "y"), read::<u32>(&out, "y_test")].concat();
        (x, y)
    };
    let (x, y) = shuffled("a.h5", "1");
    let mut firsts: Vec<i64> = x.column(0).iter().map(|&v| v as i64).collect();
    assert_ne!(firsts, (0..500).collect::<Vec<_>>(), "rows are shuffled");
    for (row, &label) in x.rows().into_iter().zip(&y) {
        assert_eq!(row[1], -row[0]);
        assert_eq!(label as i64, row[0] as i64 % 2);
    }
    firsts.sort();
    assert_eq!(firsts, (0..500).collect::<Vec<_>>(), "every row once");
    assert_eq!(shuffled("b.h5", "1").0, x, "same seed, same order");
    assert_ne!(shuffled("c.h5", "2").0, x, "another seed, another order");
    assert!(std::fs::read_dir(&dir).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".rows")));
}

#[test]
fn libsvm_rows_land_in_the_right_columns() {
    let dir = scratch("convert_libsvm");
    let (svm, out) = (dir.join("data.svm"), dir.join("data.h5"));
    std::fs::write(
        &svm,
        "+1 1:0.5 4:2\n-1 2:-1.25 # a comment\n\n+1 qid:3 3:7 5:1e-3\n-1\n",
    )
    .unwrap();
    let output = convert(&[path_str(&svm), path_str(&out)]);
    assert_success(&output);
    let expected = ndarray::array![
        [0.5, 0.0, 0.0, 2.0, 0.0],
        [0.0, -1.25, 0.0, 0.0, 0.0],
        [0.0, 0.0, 7.0, 0.0, 1e-3],
        [0.0, 0.0, 0.0, 0.0, 0.0]
    ];
    assert_eq!(read_2d(&out, "X"), expected);
    assert_eq!(read::<u32>(&out, "y"), vec![1, 0, 1, 0]);
    assert_eq!(read::<i64>(&out, "label_values"), vec![-1, 1]);
    // A wider --features pads with zero columns.
    let wide = dir.join("wide.h5");
    assert_success(&convert(&[
        path_str(&svm),
        path_str(&wide),
        "--features",
        "8",
    ]));
    assert_eq!(read_2d(&wide, "X").ncols(), 8);
}

/// Writes `text` to `name`, converts it with `extra` options, and checks the failure: exit
/// code 2, one line on stderr naming the file and containing `problem`, no output file.
fn refused(dir: &Path, name: &str, text: &str, extra: &[&str], problem: &str) {
    let input = dir.join(name);
    std::fs::write(&input, text).unwrap();
    let out: PathBuf = dir.join(format!("{name}.h5"));
    let output = convert(&[&[path_str(&input), path_str(&out)], extra].concat());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{name}: one line: {stderr}");
    assert!(
        stderr.contains(name) || problem.starts_with("--"),
        "{name}: names the file: {stderr}"
    );
    assert!(
        stderr.contains(problem),
        "{name}: expected '{problem}' in: {stderr}"
    );
    assert!(!out.exists(), "{name}: nothing written");
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "{name}: temporary files left: {leftovers:?}"
    );
}

#[test]
fn bad_text_files_get_one_line_naming_file_and_problem_and_no_output() {
    let dir = scratch("convert_bad");
    refused(&dir, "empty.csv", "", &[], "empty file");
    refused(&dir, "header-only.csv", "a,b,label\n", &[], "no data rows");
    refused(
        &dir,
        "truncated.csv",
        "a,b,label\n1,2,0\n3,4,1\n5,6",
        &[],
        "truncated.csv:4: 2 fields, expected 3",
    );
    refused(
        &dir,
        "text.csv",
        "a,b,label\n1,2,0\n3,red,1\n",
        &[],
        "text.csv:3: column 'b' holds 'red', not a finite number",
    );
    for (name, field) in [
        ("nan.csv", "nan"),
        ("inf.csv", "inf"),
        ("minus-inf.csv", "-inf"),
    ] {
        refused(
            &dir,
            name,
            &format!("a,b,label\n1,2,0\n3,{field},1\n"),
            &[],
            &format!("{name}:3: column 'b' holds '{field}', not a finite number"),
        );
    }
    refused(
        &dir,
        "twice.csv",
        "y,a,y\n1,2,0\n3,4,1\n",
        &["--label-column", "y"],
        "--label-column y: columns 0 and 2 of",
    );
    refused(
        &dir,
        "column.csv",
        "1,2,0\n",
        &["--label-column", "3"],
        "--label-column 3: ",
    );
    refused(
        &dir,
        "name.csv",
        "a,b,label\n1,2,0\n",
        &["--label-column", "nope"],
        "--label-column nope: no such column",
    );
    refused(
        &dir,
        "float-label.csv",
        "a,label\n1,0.5\n",
        &[],
        "holds '0.5', not an integer class label",
    );
    refused(
        &dir,
        "zero.svm",
        "1 1:1\n-1 0:2\n",
        &[],
        "zero.svm:2: index 0: LIBSVM indices start at 1",
    );
    refused(
        &dir,
        "wide.svm",
        "1 1:1\n-1 9:2\n",
        &["--features", "4"],
        "wide.svm:2: index 9 is beyond --features 4",
    );
    refused(
        &dir,
        "order.svm",
        "1 3:1 2:2\n",
        &[],
        "indices must increase",
    );
    refused(
        &dir,
        "all.csv",
        "1,2,0\n",
        &["--test-fraction", "1.0"],
        "--test-fraction 1: must be in [0, 1)",
    );
}

#[test]
fn streams_are_refused_with_a_line_saying_a_regular_file_is_needed() {
    let dir = scratch("convert_fifo");
    let fifo = dir.join("rows.csv");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let out = dir.join("out.h5");
    for command in [
        vec!["convert", path_str(&fifo), path_str(&out)],
        vec!["train", "--data", path_str(&fifo), "--out", path_str(&out)],
    ] {
        let output = singleton(&command);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{command:?}: {stderr}");
        assert!(
            stderr.contains("not a regular file") && stderr.contains("save the stream to a file"),
            "{stderr}"
        );
        assert!(!out.exists());
    }
}

#[test]
fn an_interrupted_conversion_cleans_up_and_says_why() {
    // Large enough that the output is still being written when the signal comes.
    let dir = scratch("convert_signal");
    let input = dir.join("big.csv");
    let mut text = String::from("a,b,c,d,e,label\n");
    for i in 0..400_000u64 {
        writeln!(
            text,
            "{},{}.5,{},{},{}.25,{}",
            i,
            i % 97,
            i % 13,
            i * 7,
            i % 5,
            i % 2
        )
        .unwrap();
    }
    std::fs::write(&input, text).unwrap();
    for (signal, code, shuffle) in [
        ("TERM", 143, false),
        ("INT", 130, true),
        ("TERM", 143, true),
    ] {
        let out = dir.join("big.h5");
        let mut command = std::process::Command::new(BINARY);
        command.args(["convert", path_str(&input), path_str(&out)]);
        if shuffle {
            command.arg("--shuffle");
        }
        let child = spawn(command);
        // Wait until the temporary output exists (the second pass), then interrupt.
        let temporary_exists = || {
            std::fs::read_dir(&dir).unwrap().any(|e| {
                e.unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".big.h5")
            })
        };
        let begin = std::time::Instant::now();
        while !temporary_exists() {
            assert!(
                begin.elapsed().as_secs() < 60,
                "no temporary output appeared"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        send_signal(child.id(), signal);
        let output = wait_with_limit(child, std::time::Duration::from_secs(60));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "SIG{signal}: {stderr}");
        assert!(
            stderr.contains(&format!("interrupted by SIG{signal}"))
                && stderr.contains("not written"),
            "{stderr}"
        );
        assert_eq!(files_in(&dir), ["big.csv"], "SIG{signal} shuffle={shuffle}");
    }
}

#[test]
fn a_line_longer_than_the_memory_allows_is_refused_not_grown() {
    // No line break in 150 MB, under `ulimit -v` 500 MB: a quarter of what the process can
    // still map is well below the line, which is refused when its length passes that.
    let dir = scratch("convert_long_line");
    for name in ["long.svm", "long.csv"] {
        let input = dir.join(name);
        std::fs::write(&input, vec![b'1'; 150_000_000]).unwrap();
        let out = dir.join("long.h5");
        let script = format!(
            "ulimit -v 500000; exec {BINARY} convert {} {}",
            input.display(),
            out.display()
        );
        let mut command = std::process::Command::new("bash");
        command.args(["-c", &script]);
        let output = wait_with_limit(spawn(command), std::time::Duration::from_secs(60));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains("a line longer than"), "{name}: {stderr}");
        assert!(stderr.len() < 400, "{name}: a short message: {stderr}");
        assert!(!out.exists());
        std::fs::remove_file(&input).unwrap();
    }
}

/// IDX bytes (MNIST's format): unsigned bytes of these sizes.
fn idx(sizes: &[u32], values: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, sizes.len() as u8];
    for size in sizes {
        bytes.extend(size.to_be_bytes());
    }
    bytes.extend(values);
    bytes
}

/// `count` 8x8 images of digits-like classes 0..9: noise, and a bright band where the class is.
fn mnist_like(count: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let labels: Vec<u8> = (0..count).map(|i| (i % 10) as u8).collect();
    let mut pixels = Vec::with_capacity(count * 64);
    for &label in &labels {
        let band = 6 * label as usize..6 * label as usize + 6;
        pixels.extend((0..64).map(|p| match band.contains(&p) {
            true => 200 + rng.random_range(0..56u8),
            false => rng.random_range(0..60u8),
        }));
    }
    (pixels, labels)
}

/// MNIST's four files, the training pair gzipped as distributed, the test pair not: the
/// format is found from the names, pixels are scaled to [0, 1], the test files become
/// X_test/y_test, and an MLP trains on the result.
#[test]
fn mnist_idx_files_convert_and_train() {
    let dir = scratch("convert_idx");
    let gzip = |bytes: &[u8]| {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    };
    let (train_x, train_y) = mnist_like(500, 1);
    let (test_x, test_y) = mnist_like(100, 2);
    let files = [
        (
            "train-images-idx3-ubyte.gz",
            gzip(&idx(&[500, 8, 8], &train_x)),
        ),
        ("train-labels-idx1-ubyte.gz", gzip(&idx(&[500], &train_y))),
        ("t10k-images-idx3-ubyte", idx(&[100, 8, 8], &test_x)),
        ("t10k-labels-idx1-ubyte", idx(&[100], &test_y)),
    ];
    for (name, bytes) in &files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let at = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let out = dir.join("mnist.h5");
    let output = convert(&[
        &at(files[0].0),
        path_str(&out),
        "--labels",
        &at(files[1].0),
        "--test-images",
        &at(files[2].0),
        "--test-labels",
        &at(files[3].0),
    ]);
    assert_success(&output);
    let x = read_2d(&out, "X");
    assert_eq!(x.dim(), (500, 64));
    assert_eq!(x[[3, 20]], f64::from(train_x[3 * 64 + 20]) / 255.0);
    assert_eq!(
        read::<u32>(&out, "y"),
        train_y.iter().map(|&l| u32::from(l)).collect::<Vec<_>>()
    );
    assert_eq!(read_2d(&out, "X_test").dim(), (100, 64));
    assert_eq!(read::<u32>(&out, "y_test")[..3], [0, 1, 2]);

    let trained = mpirun(
        2,
        &[
            "train",
            "--data",
            path_str(&out),
            "--model",
            "mlp",
            "--hidden",
            "32",
            "--optimizer",
            "adam",
            "--lr",
            "0.01",
            "--batch",
            "50",
            "--epochs",
            "5",
        ],
    );
    assert_success(&trained);
    let accuracy: f64 = summary(&trained)
        .into_iter()
        .find(|(k, _)| k == "test_accuracy")
        .unwrap()
        .1
        .parse()
        .unwrap();
    assert!(accuracy > 0.9, "test accuracy {accuracy}");

    // The labels of other images are refused, naming both files; nothing is written.
    let other = dir.join("other.h5");
    let refused = convert(&[
        &at(files[0].0),
        path_str(&other),
        "--labels",
        &at(files[3].0),
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("500 images and"));
    assert!(!other.exists());
}
