//! MNIST's IDX files: images in one file, labels in another, gzipped or not (the gzip magic
//! decides). The layout (big-endian):
//!
//! ```text
//! 0x00 0x00 TYPE NDIM    TYPE 0x08: unsigned bytes (the only type MNIST uses, and read here)
//! NDIM x u32             sizes: count, then (images) rows, columns
//! count x prod(sizes[1..]) bytes
//! ```
//! An image becomes one row of `rows x columns` features scaled to [0, 1] (byte / 255); its
//! label is the byte in the labels file. With `--test-images` / `--test-labels` the test
//! files' rows follow the training rows and become `X_test`, `y_test`.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use super::{RowSink, Scan, TextReader};
use crate::errors::usage;
use crate::interrupt::Signals;
use crate::settings::ConvertSettings;

/// IDX element type of unsigned bytes.
const UNSIGNED_BYTE: u8 = 0x08;

pub struct IdxFiles {
    /// (images, labels) of the training rows, then of the test rows if given.
    sets: Vec<(PathBuf, PathBuf)>,
    signals: Signals,
}

/// An IDX file after its header: the sizes and the reader positioned at the first value.
struct Opened {
    sizes: Vec<usize>,
    values: Box<dyn Read>,
}

impl IdxFiles {
    pub fn new(args: &ConvertSettings, signals: &Signals) -> Self {
        let labels = args.labels.clone().expect("settings require --labels");
        let mut sets = vec![(args.input.clone(), labels)];
        sets.extend(args.test.clone());
        Self {
            sets,
            signals: signals.clone(),
        }
    }

    /// Both files of a set, opened and checked against each other: (images, labels, features).
    fn open_set(
        &self,
        (images, labels): &(PathBuf, PathBuf),
    ) -> anyhow::Result<(Opened, Opened, usize)> {
        let image_file = open(images)?;
        let label_file = open(labels)?;
        let shown = images.display();
        if image_file.sizes.len() < 2 {
            return Err(usage(format!(
                "{shown}: an IDX file of {} dimension(s), not images (count, rows, columns); is it the labels file?",
                image_file.sizes.len()
            )));
        }
        if label_file.sizes.len() != 1 {
            return Err(usage(format!(
                "{}: an IDX file of {} dimensions, not labels (one per image)",
                labels.display(),
                label_file.sizes.len()
            )));
        }
        let (count, labels_count) = (image_file.sizes[0], label_file.sizes[0]);
        if count != labels_count {
            return Err(usage(format!(
                "{shown} holds {count} images and {} {labels_count} labels: give the labels of these images",
                labels.display()
            )));
        }
        let features: usize = image_file.sizes[1..].iter().product();
        if features == 0 {
            return Err(usage(format!("{shown}: images of size 0")));
        }
        Ok((image_file, label_file, features))
    }
}

impl IdxFiles {
    /// Reads the `values` bytes after a header, each chunk to `each`; an error if the file
    /// holds fewer or more.
    fn read_exactly(
        &self,
        mut file: Opened,
        values: u64,
        path: &Path,
        mut each: impl FnMut(&[u8]),
    ) -> anyhow::Result<()> {
        let mut chunk = vec![0u8; 1 << 16];
        let mut left = values;
        loop {
            self.signals.check()?;
            let want = chunk
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX))
                .max(1);
            let n = file
                .values
                .read(&mut chunk[..want])
                .map_err(|e| usage(format!("{}: {e}", path.display())))?;
            if n == 0 && left > 0 {
                return Err(usage(format!(
                    "{}: the header announces {values} values and the file ends after {}; is the file complete?",
                    path.display(),
                    values - left
                )));
            }
            if n > 0 && left == 0 {
                return Err(usage(format!(
                    "{}: more bytes than the header's {values} values; is it an IDX file of unsigned bytes?",
                    path.display()
                )));
            }
            if n == 0 {
                return Ok(());
            }
            each(&chunk[..n]);
            left -= n as u64;
        }
    }
}

impl TextReader for IdxFiles {
    fn scan(&self) -> anyhow::Result<Scan> {
        let mut labels = BTreeSet::new();
        let mut rows = Vec::new();
        let mut features = None;
        for set in &self.sets {
            let (images, label_file, width) = self.open_set(set)?;
            if features.is_some_and(|f| f != width) {
                return Err(usage(format!(
                    "{}: images of {width} pixels, the training images have {}",
                    set.0.display(),
                    features.unwrap_or(0)
                )));
            }
            features = Some(width);
            let count = images.sizes[0];
            // The sizes are checked against the data, so that no buffer is sized by a header
            // alone (a corrupt one could ask for any amount of memory).
            let pixels = (count as u64).saturating_mul(width as u64);
            self.read_exactly(images, pixels, &set.0, |_| ())?;
            self.read_exactly(label_file, count as u64, &set.1, |chunk| {
                labels.extend(chunk.iter().map(|&b| i64::from(b)))
            })?;
            rows.push(count);
        }
        let test_rows = rows.get(1).copied();
        Ok(Scan {
            rows: rows.iter().sum(),
            features: features.expect("one set at least"),
            labels: labels.into_iter().collect(),
            feature_names: None,
            test_rows,
        })
    }

    fn parse(&self, _scan: &Scan, sink: &mut RowSink) -> anyhow::Result<()> {
        for set in &self.sets {
            let (mut images, mut labels, features) = self.open_set(set)?;
            let mut pixels = vec![0u8; features];
            let mut row = vec![0.0; features];
            let mut label = [0u8];
            for _ in 0..images.sizes[0] {
                self.signals.check()?;
                read_all(&mut images.values, &mut pixels, &set.0, "images")?;
                read_all(&mut labels.values, &mut label, &set.1, "labels")?;
                for (x, &p) in row.iter_mut().zip(&pixels) {
                    *x = f64::from(p) / 255.0;
                }
                sink(&row, i64::from(label[0]))?;
            }
        }
        Ok(())
    }
}

/// Opens an IDX file (through gzip when it starts with gzip's magic) and reads its header.
fn open(path: &Path) -> anyhow::Result<Opened> {
    let shown = path.display();
    let failed = |e: std::io::Error| usage(format!("{shown}: {e}"));
    let mut magic = [0u8; 2];
    let gzipped = File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == [0x1f, 0x8b];
    let file = BufReader::with_capacity(1 << 16, File::open(path).map_err(failed)?);
    let mut values: Box<dyn Read> = match gzipped {
        true => Box::new(BufReader::with_capacity(1 << 16, GzDecoder::new(file))),
        false => Box::new(file),
    };
    let mut header = [0u8; 4];
    read_all(&mut values, &mut header, path, "header")?;
    let [0, 0, kind, dimensions] = header else {
        return Err(usage(format!(
            "{shown}: not an IDX file (it starts with {header:02x?}, IDX with 00 00)"
        )));
    };
    if kind != UNSIGNED_BYTE {
        return Err(usage(format!(
            "{shown}: IDX values of type {kind:#04x}; convert reads unsigned bytes (0x08), as MNIST's files hold"
        )));
    }
    if !(1..=4).contains(&dimensions) {
        return Err(usage(format!(
            "{shown}: an IDX file of {dimensions} dimensions; images have 3 (count, rows, columns), labels 1"
        )));
    }
    let mut sizes = Vec::new();
    for _ in 0..dimensions {
        let mut size = [0u8; 4];
        read_all(&mut values, &mut size, path, "header")?;
        sizes.push(u32::from_be_bytes(size) as usize);
    }
    Ok(Opened { sizes, values })
}

/// Fills `buf`, or says the file ended early (or is not valid gzip).
fn read_all(reader: &mut dyn Read, buf: &mut [u8], path: &Path, part: &str) -> anyhow::Result<()> {
    reader.read_exact(buf).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::UnexpectedEof => "the file ends early".to_string(),
            _ => e.to_string(),
        };
        usage(format!(
            "{}: reading its {part}: {why}; is the file complete?",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// An IDX file of unsigned bytes with these sizes.
    pub fn idx(sizes: &[u32], values: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0, 0, UNSIGNED_BYTE, sizes.len() as u8];
        for s in sizes {
            bytes.extend(s.to_be_bytes());
        }
        bytes.extend(values);
        bytes
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mpi-sgd-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn files(images: PathBuf, labels: PathBuf) -> IdxFiles {
        IdxFiles {
            sets: vec![(images, labels)],
            signals: Signals::catch().unwrap(),
        }
    }

    fn rows(reader: &IdxFiles) -> anyhow::Result<Vec<(Vec<f64>, i64)>> {
        let scan = reader.scan()?;
        let mut rows = Vec::new();
        reader.parse(&scan, &mut |row, label| {
            rows.push((row.to_vec(), label));
            Ok(())
        })?;
        Ok(rows)
    }

    #[test]
    fn images_become_rows_scaled_to_one_gzipped_or_not() {
        let pixels: Vec<u8> = (0..12).map(|i| (i * 20) as u8).collect();
        let images = idx(&[3, 2, 2], &pixels);
        let labels = idx(&[3], &[7, 1, 7]);
        for (name, wrap) in [("plain", false), ("gz", true)] {
            let pack = |b: &[u8]| if wrap { gzip(b) } else { b.to_vec() };
            let reader = files(
                scratch(&format!("images-{name}"), &pack(&images)),
                scratch(&format!("labels-{name}"), &pack(&labels)),
            );
            let scan = reader.scan().unwrap();
            assert_eq!((scan.rows, scan.features, scan.test_rows), (3, 4, None));
            assert_eq!(scan.labels, [1, 7]);
            let rows = rows(&reader).unwrap();
            assert_eq!(
                rows[1].0,
                [80.0 / 255.0, 100.0 / 255.0, 120.0 / 255.0, 140.0 / 255.0]
            );
            assert_eq!(rows.iter().map(|r| r.1).collect::<Vec<_>>(), [7, 1, 7]);
        }
    }

    #[test]
    fn broken_files_are_refused_with_the_reason() {
        let images = idx(&[2, 2, 2], &[0; 8]);
        for (labels, needle) in [
            (idx(&[3], &[0, 1, 2]), "2 images and"),
            (idx(&[2, 1], &[0, 1]), "not labels"),
            (idx(&[2], &[0]), "ends after 1"),
            (idx(&[2], &[0, 1, 2]), "more bytes"),
            (b"hello world".to_vec(), "not an IDX file"),
            (vec![0, 0, 0x0d, 1, 0, 0, 0, 2], "type 0x0d"),
        ] {
            let reader = files(scratch("images", &images), scratch("labels", &labels));
            let error = rows(&reader).unwrap_err().to_string();
            assert!(error.contains(needle), "{needle}: {error}");
        }
        // A header that announces more than the file holds is found out before any buffer
        // of that size is made.
        let huge = idx(&[1, 1 << 30, 1 << 30], &[0; 8]);
        let reader = files(scratch("huge", &huge), scratch("l1", &idx(&[1], &[0])));
        assert!(rows(&reader)
            .unwrap_err()
            .to_string()
            .contains("ends after 8"));
        let truncated = gzip(&images)[..20].to_vec();
        let reader = files(
            scratch("cut.gz", &truncated),
            scratch("l", &idx(&[2], &[0, 1])),
        );
        assert!(rows(&reader).is_err(), "a cut gzip stream is an error");
    }
}
