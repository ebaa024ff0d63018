//! CSV input: one row per record, every column a number, one of them the label.
//!
//! Records are read with the `csv` crate (quoting, delimiters, ragged-line detection); this
//! module decides what the columns mean and refuses, with the line and column named, a field
//! that is not a number or a record of the wrong width (a truncated line).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use csv::{ByteRecord, ReaderBuilder};

use super::{excerpt, note_label, open_lines, parse_label, LineLimit, RowSink, Scan, TextReader};
use crate::errors::usage;
use crate::interrupt::Signals;
use crate::settings::ConvertSettings;

pub struct CsvFile {
    path: PathBuf,
    delimiter: u8,
    has_header: bool,
    /// Every column's name: the header's, or `column N`.
    names: Vec<String>,
    label: usize,
    /// Checked at every record: SIGTERM/SIGINT stop the pass.
    signals: Signals,
}

impl CsvFile {
    /// Reads the first record to settle the header, the width and the label column.
    pub fn new(args: &ConvertSettings, signals: &Signals) -> anyhow::Result<Self> {
        let path = args.input.clone();
        let delimiter = args.delimiter;
        let mut first = ByteRecord::new();
        let mut reader = reader(&path, delimiter)?;
        if !reader
            .read_byte_record(&mut first)
            .map_err(|e| csv_error(&path, e))?
        {
            return Err(usage(format!("{}: empty file", path.display())));
        }
        let fields: Vec<String> = first
            .iter()
            .map(|f| String::from_utf8_lossy(f).trim().to_string())
            .collect();
        let has_header = args
            .header
            .unwrap_or_else(|| fields.iter().any(|f| f.parse::<f64>().is_err()));
        let names: Vec<String> = if has_header {
            fields
        } else {
            (0..fields.len()).map(|i| format!("column {i}")).collect()
        };
        if names.len() < 2 {
            return Err(usage(format!(
                "{}: one column only; a CSV needs feature columns and a label column (is --delimiter right?)",
                path.display()
            )));
        }
        let label = match &args.label_column {
            None => names.len() - 1,
            Some(wanted) => label_index(&path, &names, wanted, has_header)?,
        };
        Ok(Self {
            path,
            delimiter,
            has_header,
            names,
            label,
            signals: signals.clone(),
        })
    }

    /// Every data record with its line number (1-based, counting the header).
    fn records(
        &self,
        mut each: impl FnMut(&ByteRecord, u64) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut reader = reader(&self.path, self.delimiter)?;
        let mut record = ByteRecord::new();
        let mut first = true;
        while reader
            .read_byte_record(&mut record)
            .map_err(|e| csv_error(&self.path, e))?
        {
            self.signals.check()?;
            let line = record.position().map_or(0, |p| p.line());
            if std::mem::take(&mut first) && self.has_header {
                continue;
            }
            if record.len() != self.names.len() {
                return Err(usage(format!(
                    "{}:{line}: {} fields, expected {} (a truncated or malformed line)",
                    self.path.display(),
                    record.len(),
                    self.names.len()
                )));
            }
            each(&record, line)?;
        }
        Ok(())
    }

    fn label_of(&self, record: &ByteRecord, line: u64) -> anyhow::Result<i64> {
        let text = String::from_utf8_lossy(&record[self.label]);
        parse_label(&text).ok_or_else(|| {
            usage(format!(
                "{}:{line}: label column '{}' holds '{}', not an integer class label",
                self.path.display(),
                self.names[self.label],
                excerpt(text.trim())
            ))
        })
    }
}

impl TextReader for CsvFile {
    fn scan(&self) -> anyhow::Result<Scan> {
        let mut rows = 0;
        let mut labels = BTreeSet::new();
        self.records(|record, line| {
            note_label(&mut labels, self.label_of(record, line)?);
            rows += 1;
            Ok(())
        })?;
        let feature_names = self.has_header.then(|| {
            let mut names = self.names.clone();
            names.remove(self.label);
            names
        });
        Ok(Scan {
            rows,
            features: self.names.len() - 1,
            labels: labels.into_iter().collect(),
            feature_names,
            test_rows: None,
        })
    }

    fn parse(&self, _scan: &Scan, sink: &mut RowSink) -> anyhow::Result<()> {
        let mut row = Vec::with_capacity(self.names.len() - 1);
        self.records(|record, line| {
            row.clear();
            for (column, field) in record.iter().enumerate() {
                if column == self.label {
                    continue;
                }
                let value = std::str::from_utf8(field)
                    .ok()
                    .and_then(|t| t.trim().parse::<f64>().ok())
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| {
                        usage(format!(
                            "{}:{line}: column '{}' holds '{}', not a finite number; drop or encode non-numeric columns and fill missing values first",
                            self.path.display(),
                            self.names[column],
                            excerpt(String::from_utf8_lossy(field).trim())
                        ))
                    })?;
                row.push(value);
            }
            sink(&row, self.label_of(record, line)?)
        })
    }
}

fn reader(path: &Path, delimiter: u8) -> anyhow::Result<csv::Reader<LineLimit<std::fs::File>>> {
    let file = open_lines(path).map_err(|e| usage(format!("{}: {e}", path.display())))?;
    Ok(ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .buffer_capacity(1 << 20)
        .from_reader(file))
}

fn csv_error(path: &Path, error: csv::Error) -> anyhow::Error {
    let line = error
        .position()
        .map_or(String::new(), |p| format!(":{}", p.line()));
    usage(format!("{}{line}: {error}", path.display()))
}

/// The label column from a header name or a 0-based index.
fn label_index(
    path: &Path,
    names: &[String],
    wanted: &str,
    has_header: bool,
) -> anyhow::Result<usize> {
    let named: Vec<usize> = (0..names.len())
        .filter(|&i| has_header && names[i] == wanted)
        .collect();
    match named[..] {
        [i] => return Ok(i),
        [first, second, ..] => {
            return Err(usage(format!(
                "--label-column {wanted}: columns {first} and {second} of {} are both named '{wanted}'; give the column's index instead (0-based)",
                path.display()
            )))
        }
        [] => {}
    }
    match wanted.parse::<usize>() {
        Ok(i) if i < names.len() => Ok(i),
        Ok(i) => Err(usage(format!(
            "--label-column {i}: {} has {} columns (0..{})",
            path.display(),
            names.len(),
            names.len() - 1
        ))),
        Err(_) => Err(usage(format!(
            "--label-column {wanted}: no such column in the header of {}",
            path.display()
        ))),
    }
}
