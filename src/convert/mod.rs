//! `mpi-sgd convert INPUT OUTPUT.h5`: CSV or LIBSVM text, or MNIST's IDX files, into the HDF5
//! layout `train --data` reads (`X`, `y`, optionally `X_test`, `y_test`; see [`crate::data::file`]).
//!
//! Streaming, so files larger than memory convert:
//!
//! ```text
//! pass 1 (scan):  count rows; LIBSVM: widest index; the set of distinct labels
//! pass 2 (write): parse each row, map its label to 0..K-1, append it to X/y or X_test/y_test
//!                 in blocks of BLOCK_ROWS rows (chunked, compressed datasets)
//! --shuffle:      pass 2 writes fixed-width rows to a raw scratch file beside the output, and
//!                 pass 3 copies them into place in a seeded random order (positioned reads)
//! ```
//! Memory: one block of rows, the label set, and with `--shuffle` 8 bytes per row for the
//! permutation. The output is written to a temporary name and renamed when complete, so an
//! error (reported with the file and line) leaves nothing at the output path.
//!
//! Not a reader for training (`data::file` reads what this writes).

mod csv_rows;
mod idx;
mod libsvm;

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use hdf5::Dataset as H5Dataset;
use ndarray::{s, Array2};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::data::file::LABEL_VALUES;
use crate::errors::{usage, ReportedElsewhere};
use crate::h5;
use crate::interrupt::{Interrupted, Signals};
use crate::kinds::{Dtype, InputFormat};
use crate::memory;
use crate::settings::ConvertSettings;

/// Rows written to HDF5 per call (and parsed per block).
const BLOCK_ROWS: usize = 4096;
/// Target size of one HDF5 chunk.
const CHUNK_BYTES: usize = 1 << 20;
/// More distinct labels than this is a regression target or the wrong column, not classes.
const MAX_CLASSES: usize = 65_536;

/// What pass 1 learned about the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Scan {
    pub rows: usize,
    pub features: usize,
    /// Distinct labels, sorted: class k is `labels[k]`.
    pub labels: Vec<i64>,
    /// CSV header names of the feature columns.
    pub feature_names: Option<Vec<String>>,
    /// Rows at the end that are test rows by the input's own split (IDX test files); `None`:
    /// `--test-fraction` decides.
    pub test_rows: Option<usize>,
}

/// One parsed row: `features` dense, `label` as written in the input.
pub type RowSink<'a> = dyn FnMut(&[f64], i64) -> anyhow::Result<()> + 'a;

/// A text format: a scan (pass 1) and a parse that hands every row to a sink (pass 2).
trait TextReader {
    fn scan(&self) -> anyhow::Result<Scan>;
    fn parse(&self, scan: &Scan, sink: &mut RowSink) -> anyhow::Result<()>;
}

/// Runs the conversion; prints one summary line. SIGTERM or SIGINT stop it at the next row:
/// the temporary output and the scratch file are removed, a line says so, and the exit code is
/// the signal's (128 + signal), as `train` does.
pub fn run(args: &ConvertSettings) -> anyhow::Result<()> {
    h5::require_regular_file(
        "INPUT",
        &args.input,
        "convert reads its input twice (a scan, then the rows): save the stream to a file first",
    )?;
    h5::check_destination("OUTPUT", &args.output, args.force)?;
    let signals = Signals::catch().context("cannot catch SIGTERM/SIGINT")?;
    let converted = convert(args, &signals);
    if let Some(interrupted) = converted.as_ref().err().and_then(Interrupted::in_chain) {
        eprintln!(
            "mpi-sgd: {interrupted}: {} not written, no temporary or scratch file left",
            args.output.display()
        );
        return Err(ReportedElsewhere(interrupted.exit_code()).into());
    }
    converted
}

fn convert(args: &ConvertSettings, signals: &Signals) -> anyhow::Result<()> {
    let format = args.format;
    let begin = std::time::Instant::now();
    let reader: Box<dyn TextReader> = match format {
        InputFormat::Csv => Box::new(csv_rows::CsvFile::new(args, signals)?),
        InputFormat::Libsvm => Box::new(libsvm::LibsvmFile::new(args, signals)),
        InputFormat::Idx => Box::new(idx::IdxFiles::new(args, signals)),
    };
    let scan = reader.scan()?;
    let shown = args.input.display();
    if scan.rows == 0 {
        return Err(usage(format!("{shown}: no data rows")));
    }
    if scan.labels.len() > MAX_CLASSES {
        return Err(usage(format!(
            "{shown}: the label column has more than {MAX_CLASSES} distinct values; labels must be classes (pick another column with --label-column)"
        )));
    }
    let test_rows = scan
        .test_rows
        .unwrap_or((scan.rows as f64 * args.test_fraction).round() as usize);
    if test_rows == scan.rows {
        return Err(usage(format!(
            "--test-fraction {}: leaves no training rows of {}",
            args.test_fraction, scan.rows
        )));
    }
    let layout = Layout {
        train_rows: scan.rows - test_rows,
        test_rows,
        features: scan.features,
    };
    h5::write_atomically(&args.output, args.force, |file| {
        let mut out = Destination::create(file, args, &layout)?;
        write_metadata(file, args, format, &scan)?;
        if args.shuffle {
            write_shuffled(reader.as_ref(), &scan, args, signals, &mut out)
        } else {
            reader.parse(&scan, &mut |row, label| {
                out.push(row, class_of(&scan.labels, label))
            })?;
            out.flush()
        }
    })?;
    let bytes = fs::metadata(&args.input).map_or(0, |m| m.len());
    let seconds = begin.elapsed().as_secs_f64();
    println!(
        "input={shown} output={} rows={} test_rows={test_rows} features={} classes={} seconds={seconds:.3} mb_per_s={:.1}",
        args.output.display(),
        layout.train_rows,
        layout.features,
        scan.labels.len(),
        bytes as f64 / 1e6 / seconds
    );
    Ok(())
}

/// `text` as an error message quotes it: whole up to 40 characters, else its start and `...`
/// (a corrupt field can be megabytes long).
pub fn excerpt(text: &str) -> String {
    const SHOWN: usize = 40;
    match text.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_string(),
    }
}

/// The input file, read through a check that no line is longer than a quarter of the memory
/// this process can have (the text, its parsed values and the dense row must all fit): a file
/// with no line breaks (a binary file, the wrong format) is refused at that length with a line,
/// instead of growing one line's buffer until the machine runs out of memory.
fn open_lines(path: &Path) -> std::io::Result<LineLimit<fs::File>> {
    Ok(LineLimit {
        inner: fs::File::open(path)?,
        since_newline: 0,
        limit: (memory::available().0 / 4).max(1 << 20),
    })
}

pub struct LineLimit<R> {
    inner: R,
    since_newline: u64,
    limit: u64,
}

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.since_newline = match buf[..n].iter().rposition(|&b| b == b'\n') {
            Some(at) => (n - at - 1) as u64,
            None => self.since_newline + n as u64,
        };
        if self.since_newline > self.limit {
            return Err(std::io::Error::other(format!(
                "a line longer than {}, a quarter of the memory available; is the file in the right format?",
                memory::human(self.limit)
            )));
        }
        Ok(n)
    }
}

/// Class index of a label found by the scan.
fn class_of(labels: &[i64], label: i64) -> u32 {
    labels
        .binary_search(&label)
        .expect("the scan saw every label") as u32
}

/// Labels are class identifiers: integers, written as such or as integral floats ("1.0").
pub fn parse_label(text: &str) -> Option<i64> {
    let text = text.trim();
    text.parse::<i64>().ok().or_else(|| {
        let value = text.parse::<f64>().ok()?;
        (value.fract() == 0.0 && value.abs() < 9.0e15).then_some(value as i64)
    })
}

/// Adds a label to the scan's set.
fn note_label(labels: &mut BTreeSet<i64>, label: i64) {
    if labels.len() <= MAX_CLASSES {
        labels.insert(label);
    }
}

/// Sizes of the output datasets.
struct Layout {
    train_rows: usize,
    test_rows: usize,
    features: usize,
}

/// The output datasets and a block of rows on its way into them. Row `j` of the output goes
/// to `X[j]` while `j < train_rows`, else to `X_test[j - train_rows]`.
struct Destination {
    train: (H5Dataset, H5Dataset),
    test: Option<(H5Dataset, H5Dataset)>,
    train_rows: usize,
    block: Array2<f64>,
    labels: Vec<u32>,
    /// Output row of `block`'s first row.
    start: usize,
}

impl Destination {
    fn create(file: &hdf5::File, args: &ConvertSettings, layout: &Layout) -> anyhow::Result<Self> {
        let pair = |x_name: &str, y_name: &str, rows: usize| -> anyhow::Result<_> {
            Ok((
                features_dataset(file, x_name, rows, layout.features, args)?,
                labels_dataset(file, y_name, rows, args)?,
            ))
        };
        Ok(Self {
            train: pair("X", "y", layout.train_rows)?,
            test: match layout.test_rows {
                0 => None,
                rows => Some(pair("X_test", "y_test", rows)?),
            },
            train_rows: layout.train_rows,
            // No larger than the data: a few very wide rows need no block of BLOCK_ROWS.
            block: Array2::zeros((
                BLOCK_ROWS.min(layout.train_rows + layout.test_rows),
                layout.features,
            )),
            labels: Vec::with_capacity(BLOCK_ROWS),
            start: 0,
        })
    }

    fn push(&mut self, row: &[f64], class: u32) -> anyhow::Result<()> {
        let filled = self.labels.len();
        self.block
            .row_mut(filled)
            .assign(&ndarray::ArrayView1::from(row));
        self.labels.push(class);
        let at_split = self.start + filled + 1 == self.train_rows;
        if self.labels.len() == BLOCK_ROWS || at_split {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the rows held so far (never across the train/test boundary: `push` flushes at it).
    fn flush(&mut self) -> anyhow::Result<()> {
        let n = self.labels.len();
        if n == 0 {
            return Ok(());
        }
        let (pair, first) = if self.start < self.train_rows {
            (&self.train, self.start)
        } else {
            let test = self.test.as_ref().expect("rows past the training rows");
            (test, self.start - self.train_rows)
        };
        pair.0
            .write_slice(self.block.slice(s![..n, ..]), s![first..first + n, ..])?;
        pair.1.write_slice(&self.labels, s![first..first + n])?;
        self.start += n;
        self.labels.clear();
        Ok(())
    }
}

fn chunk_rows(rows: usize, row_bytes: usize) -> usize {
    (CHUNK_BYTES / row_bytes.max(1)).clamp(1, rows.max(1))
}

fn features_dataset(
    file: &hdf5::File,
    name: &str,
    rows: usize,
    features: usize,
    args: &ConvertSettings,
) -> anyhow::Result<H5Dataset> {
    let chunk = chunk_rows(rows, features * args.dtype.bytes());
    let mut builder = match args.dtype {
        Dtype::F64 => file.new_dataset::<f64>(),
        Dtype::F32 => file.new_dataset::<f32>(),
    };
    builder = builder.chunk((chunk, features));
    if args.compression > 0 {
        builder = builder.shuffle().deflate(args.compression);
    }
    Ok(builder.shape((rows, features)).create(name)?)
}

fn labels_dataset(
    file: &hdf5::File,
    name: &str,
    rows: usize,
    args: &ConvertSettings,
) -> anyhow::Result<H5Dataset> {
    let mut builder = file.new_dataset::<u32>().chunk(chunk_rows(rows, 4));
    if args.compression > 0 {
        builder = builder.shuffle().deflate(args.compression);
    }
    Ok(builder.shape(rows).create(name)?)
}

/// The label mapping, the feature names and how the file was made.
fn write_metadata(
    file: &hdf5::File,
    args: &ConvertSettings,
    format: InputFormat,
    scan: &Scan,
) -> anyhow::Result<()> {
    h5::dataset(file, LABEL_VALUES, &scan.labels)?;
    if let Some(names) = &scan.feature_names {
        let names: Vec<_> = names.iter().map(|n| h5::unicode(n)).collect();
        h5::dataset(file, "feature_names", &names)?;
    }
    h5::text_attr(file, "format", "mpi-sgd-data/1")?;
    h5::text_attr(file, "source", &args.input.display().to_string())?;
    h5::text_attr(file, "source_format", format.name())?;
    h5::text_attr(file, "command_line", &crate::provenance::command_line())?;
    h5::scalar_attr(file, "test_fraction", &args.test_fraction)?;
    h5::scalar_attr(file, "shuffled", &u8::from(args.shuffle))?;
    h5::scalar_attr(file, "seed", &args.seed)?;
    Ok(())
}

/// Pass 2 into a raw scratch file of fixed-width rows (`features` values, then the class),
/// pass 3 from it into the output in a seeded random order.
fn write_shuffled(
    reader: &dyn TextReader,
    scan: &Scan,
    args: &ConvertSettings,
    signals: &Signals,
    out: &mut Destination,
) -> anyhow::Result<()> {
    let scratch = Scratch(scratch_path(&args.output));
    let width = scan.features + 1;
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&scratch.0)?;
    let mut raw = BufWriter::new(file);
    reader.parse(scan, &mut |row, label| {
        for &v in row {
            raw.write_all(&v.to_le_bytes())?;
        }
        let class = f64::from(class_of(&scan.labels, label));
        raw.write_all(&class.to_le_bytes())?;
        Ok(())
    })?;
    let raw = raw.into_inner().map_err(|e| e.into_error())?;
    let mut order: Vec<u64> = (0..scan.rows as u64).collect();
    order.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(args.seed));
    let row_bytes = width * 8;
    let mut bytes = vec![0u8; row_bytes];
    let mut row = vec![0.0; width];
    for source in order {
        signals.check()?;
        raw.read_exact_at(&mut bytes, source * row_bytes as u64)?;
        for (v, b) in row.iter_mut().zip(bytes.chunks_exact(8)) {
            *v = f64::from_le_bytes(b.try_into().expect("8 bytes"));
        }
        out.push(&row[..scan.features], row[scan.features] as u32)?;
    }
    out.flush()
}

/// A scratch file removed when dropped, whatever happened.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        fs::remove_file(&self.0).ok();
    }
}

fn scratch_path(output: &Path) -> PathBuf {
    let mut name = output.as_os_str().to_owned();
    name.push(format!(".{}.rows", std::process::id()));
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use proptest::prelude::*;

    /// `mpi-sgd convert` options parsed and validated as on the command line.
    fn settings(line: &[&str]) -> anyhow::Result<ConvertSettings> {
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: crate::cli::ConvertArgs,
        }
        let line = std::iter::once("convert").chain(line.iter().copied());
        ConvertSettings::from_args(Wrapper::parse_from(line).args)
    }

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mpi-sgd-fuzz-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Any text in, an error or a file out, never a panic; after an error nothing is left.
    fn converts_or_refuses(text: &[u8], name: &str, extra: &[&str]) {
        let dir = scratch();
        let (input, output) = (dir.join(name), dir.join(format!("{name}.h5")));
        fs::write(&input, text).unwrap();
        fs::remove_file(&output).ok();
        let mut line = vec![input.to_str().unwrap(), output.to_str().unwrap(), "--force"];
        line.extend(extra);
        if settings(&line).and_then(|s| run(&s)).is_err() {
            assert!(!output.exists());
        }
    }

    proptest! {
        #[test]
        fn fuzz_csv_never_panics(text in "[0-9a-z,.;\"\\-+e \n\r]{0,200}", shuffle in any::<bool>()) {
            let extra: &[&str] = if shuffle { &["--shuffle", "--test-fraction", "0.3"] } else { &[] };
            converts_or_refuses(text.as_bytes(), "fuzz.csv", extra);
        }

        #[test]
        fn fuzz_csv_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            converts_or_refuses(&bytes, "bytes.csv", &["--no-header"]);
        }

        #[test]
        fn fuzz_libsvm_never_panics(text in "[0-9: +\\-.e#qidnaf\n]{0,200}") {
            converts_or_refuses(text.as_bytes(), "fuzz.svm", &[]);
        }

        #[test]
        fn fuzz_idx_never_panics(
            header in proptest::collection::vec(0u8..4, 0..16),
            pixels in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let labels = scratch().join("labels-idx1");
            fs::write(&labels, [0, 0, 8, 1, 0, 0, 0, 2, 3, 5]).unwrap();
            let images = [&[0, 0, 8][..], &header, &pixels].concat();
            converts_or_refuses(&images, "images-idx3", &["--labels", labels.to_str().unwrap()]);
        }

        #[test]
        fn fuzz_labels_parse_or_refuse(text in "\\PC{0,30}") {
            if let Some(label) = parse_label(&text) {
                prop_assert!(text.trim().parse::<f64>().is_ok_and(|v| v == label as f64));
            }
        }
    }
}
