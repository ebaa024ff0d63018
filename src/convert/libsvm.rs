//! LIBSVM / svmlight input: `label index:value index:value ... [# comment]`, one row a line,
//! indices 1-based and increasing, features not listed are 0. Rows are made dense.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use super::{excerpt, note_label, open_lines, parse_label, RowSink, Scan, TextReader};
use crate::errors::usage;
use crate::interrupt::Signals;
use crate::settings::ConvertSettings;

pub struct LibsvmFile {
    path: PathBuf,
    features: Option<usize>,
    /// Checked at every line: SIGTERM/SIGINT stop the pass.
    signals: Signals,
}

/// One line, parsed: the label and the (0-based index, value) pairs.
#[derive(Debug, PartialEq)]
pub struct SparseRow {
    pub label: i64,
    pub entries: Vec<(usize, f64)>,
}

impl LibsvmFile {
    pub fn new(args: &ConvertSettings, signals: &Signals) -> Self {
        Self {
            path: args.input.clone(),
            features: args.features,
            signals: signals.clone(),
        }
    }

    /// Every data line, parsed, with its 1-based line number.
    fn rows(
        &self,
        mut each: impl FnMut(&SparseRow, usize) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let shown = self.path.display();
        let file = open_lines(&self.path).map_err(|e| usage(format!("{shown}: {e}")))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut text = String::new();
        let mut row = SparseRow {
            label: 0,
            entries: Vec::new(),
        };
        for line in 1.. {
            self.signals.check()?;
            text.clear();
            let read = reader
                .read_line(&mut text)
                .map_err(|e| usage(format!("{shown}:{line}: {e}")))?;
            if read == 0 {
                return Ok(());
            }
            match parse_line(&text, &mut row) {
                Ok(true) => each(&row, line)?,
                Ok(false) => {}
                Err(problem) => return Err(usage(format!("{shown}:{line}: {problem}"))),
            }
        }
        unreachable!("the loop returns at the end of the file")
    }

    fn check_width(&self, row: &SparseRow, line: usize) -> anyhow::Result<()> {
        match (self.features, row.entries.last()) {
            (Some(d), Some(&(last, _))) if last >= d => Err(usage(format!(
                "{}:{line}: index {} is beyond --features {d}",
                self.path.display(),
                last + 1
            ))),
            _ => Ok(()),
        }
    }
}

impl TextReader for LibsvmFile {
    fn scan(&self) -> anyhow::Result<Scan> {
        let (mut rows, mut widest) = (0, 0);
        let mut labels = BTreeSet::new();
        self.rows(|row, line| {
            self.check_width(row, line)?;
            widest = widest.max(row.entries.last().map_or(0, |&(i, _)| i + 1));
            note_label(&mut labels, row.label);
            rows += 1;
            Ok(())
        })?;
        let features = self.features.unwrap_or(widest);
        if features == 0 {
            return Err(usage(format!(
                "{}: no features in any row; give --features",
                self.path.display()
            )));
        }
        Ok(Scan {
            rows,
            features,
            labels: labels.into_iter().collect(),
            feature_names: None,
            test_rows: None,
        })
    }

    fn parse(&self, scan: &Scan, sink: &mut RowSink) -> anyhow::Result<()> {
        let mut dense = vec![0.0; scan.features];
        self.rows(|row, line| {
            self.check_width(row, line)?;
            dense.fill(0.0);
            for &(index, value) in &row.entries {
                dense[index] = value;
            }
            sink(&dense, row.label)
        })
    }
}

/// Parses one line into `row`; `Ok(false)` for a blank or comment-only line. The error says
/// what is wrong, without the file and line (the caller adds them).
pub fn parse_line(line: &str, row: &mut SparseRow) -> Result<bool, String> {
    let data = line.split('#').next().unwrap_or_default();
    let mut tokens = data.split_ascii_whitespace();
    let Some(label) = tokens.next() else {
        return Ok(false);
    };
    row.label = parse_label(label)
        .ok_or_else(|| format!("label '{}' is not an integer class label", excerpt(label)))?;
    row.entries.clear();
    for token in tokens {
        let (index, value) = token
            .split_once(':')
            .ok_or_else(|| format!("'{}' is not index:value", excerpt(token)))?;
        if index == "qid" {
            continue; // ranking groups: not used for classification
        }
        let index: usize = index
            .parse()
            .map_err(|_| format!("index '{}' is not a positive integer", excerpt(index)))?;
        if index == 0 {
            return Err("index 0: LIBSVM indices start at 1".into());
        }
        let value: f64 = value
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| {
                format!(
                    "value '{}' of index {index} is not a finite number",
                    excerpt(value)
                )
            })?;
        if row
            .entries
            .last()
            .is_some_and(|&(last, _)| last + 1 >= index)
        {
            return Err(format!(
                "index {index} after index {}: indices must increase along a line",
                row.entries.last().map_or(0, |&(last, _)| last + 1)
            ));
        }
        row.entries.push((index - 1, value));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Option<SparseRow>, String> {
        let mut row = SparseRow {
            label: 0,
            entries: Vec::new(),
        };
        Ok(parse_line(line, &mut row)?.then_some(row))
    }

    #[test]
    fn sparse_lines_become_zero_based_entries() {
        let row = parse("+1 3:0.5 10:-2 # note\n").unwrap().unwrap();
        assert_eq!(row.label, 1);
        assert_eq!(row.entries, vec![(2, 0.5), (9, -2.0)]);
        assert_eq!(parse("-1\n").unwrap().unwrap().entries, vec![]);
        assert_eq!(
            parse("2 qid:7 1:1").unwrap().unwrap().entries,
            vec![(0, 1.0)]
        );
        assert!(parse("   # only a comment").unwrap().is_none());
        assert!(parse("").unwrap().is_none());
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        for (line, expected) in [
            ("1 0:3", "index 0"),
            ("1 2:1 2:3", "must increase"),
            ("1 3:1 2:3", "must increase"),
            ("a 1:1", "label 'a'"),
            ("1.5 1:1", "label '1.5'"),
            ("1 x:1", "index 'x'"),
            ("1 1:nan", "not a finite number"),
            ("1 1:", "not a finite number"),
            ("1 5", "not index:value"),
        ] {
            let err = parse(line).unwrap_err();
            assert!(err.contains(expected), "{line}: {err}");
        }
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn fuzz_lines_parse_into_increasing_indices_or_an_error(line in "\\PC{0,80}|[0-9 :+\\-.]{0,80}") {
            let mut row = SparseRow { label: 0, entries: Vec::new() };
            if let Ok(true) = parse_line(&line, &mut row) {
                prop_assert!(row.entries.windows(2).all(|w| w[0].0 < w[1].0));
                prop_assert!(row.entries.iter().all(|&(_, v)| v.is_finite()));
            }
        }
    }
}
