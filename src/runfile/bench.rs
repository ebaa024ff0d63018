//! The allreduce benchmark's file, format "mpi-sgd-bench/1": every latency of every rank, per
//! algorithm and message size.

use std::path::Path;

use ndarray::Array2;

use super::write_provenance;
use crate::h5::{dataset, scalar_attr, table_dataset, text_attr, write_atomically};
use crate::provenance::Provenance;

/// The results of `bench-allreduce`, format "mpi-sgd-bench/1".
pub struct BenchReport<'a> {
    pub provenance: &'a Provenance,
    pub dtype: &'static str,
    pub sizes_bytes: Vec<u64>,
    pub algorithms: Vec<(&'static str, AlgorithmSweep)>,
}

/// One algorithm's sweep, every rank's numbers.
pub struct AlgorithmSweep {
    /// [sizes, iterations, ranks] seconds; NaN past a size's own number of iterations.
    pub latency_s: ndarray::Array3<f64>,
    /// [sizes] timed calls per size.
    pub iterations: Vec<u64>,
    /// [sizes, ranks] bytes and messages one call sent.
    pub bytes_sent: Array2<u64>,
    pub messages_sent: Array2<u64>,
    /// [sizes] 1 where the result was checked right.
    pub check_ok: Vec<u8>,
}

pub const BENCH_FORMAT: &str = "mpi-sgd-bench/1";

/// Writes the benchmark file, like the run file: complete or not at all.
pub fn write(path: &Path, replace: bool, report: &BenchReport) -> anyhow::Result<()> {
    write_atomically(path, replace, |file| {
        write_provenance(file, BENCH_FORMAT, report.provenance)?;
        let bench = file.create_group("bench")?;
        text_attr(&bench, "dtype", report.dtype)?;
        scalar_attr(&bench, "ranks", &(report.provenance.hostnames.len() as u64))?;
        dataset(&bench, "sizes_bytes", &report.sizes_bytes)?;
        for (name, sweep) in &report.algorithms {
            let group = bench.create_group(name)?;
            group
                .new_dataset_builder()
                .with_data(&sweep.latency_s)
                .create("latency_s")?;
            dataset(&group, "iterations", &sweep.iterations)?;
            table_dataset(&group, "bytes_sent", &sweep.bytes_sent)?;
            table_dataset(&group, "messages_sent", &sweep.messages_sent)?;
            dataset(&group, "check_ok", &sweep.check_ok)?;
        }
        Ok(())
    })
}
