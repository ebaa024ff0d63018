//! The files mpi-sgd writes and reads back, in one place per side: the run file (format
//! "mpi-sgd/1", written here), its model read back ([`saved`]), checkpoints ([`checkpoint`])
//! and the allreduce benchmark's file ([`bench`]). Documented for users in
//! docs/output-format.md; `analysis/runs.py` is the one Python reader. P = ranks, S = steps,
//! E = epochs.
//!
//! Rank 0 writes each file after gathering everything, to a temporary name in the same
//! directory, then renames it ([`h5::write_atomically`]): a crash leaves either no file or a
//! complete one at the final path. Not the generic HDF5 helpers ([`crate::h5`]).

pub mod bench;
pub mod checkpoint;
pub mod saved;
pub mod times;

use std::path::Path;

use hdf5::types::VarLenUnicode;
use hdf5::{Group, Location};
use ndarray::Array2;

use crate::data::standardize::Standardizer;
use crate::h5::{dataset, scalar_attr, table_dataset, text_attr, unicode, write_atomically};
use crate::model::Tensor;
use crate::provenance::Provenance;
use crate::real::Real;
use crate::record::{EpochMetrics, GatheredSteps, History, Summary, SECONDS};
use crate::settings::Setting;

pub use bench::{AlgorithmSweep, BenchReport};

pub const FORMAT: &str = "mpi-sgd/1";

/// Everything the run file holds.
pub struct RunReport<'a, F> {
    pub provenance: &'a Provenance,
    pub settings: Vec<(&'static str, Setting)>,
    pub allreduce_counting: &'static str,
    pub rows: Vec<u64>,
    pub test_rows: Vec<u64>,
    pub mpi_init_s: Vec<f64>,
    pub data_s: Vec<f64>,
    pub steps: GatheredSteps,
    /// [E, P] seconds of per-epoch evaluation.
    pub eval_s: Array2<f64>,
    /// [S] global mean loss of each step's batch.
    pub loss: Vec<f64>,
    pub epochs: EpochMetrics,
    pub params: &'a [F],
    pub layout: &'a [Tensor],
    /// Feature scaling applied before training (`--standardize`).
    pub scaling: Option<&'a Standardizer>,
    pub resumed: &'a History,
    pub summary: Summary,
    /// `--algorithm async-ps`: what its workers and servers measured.
    pub asynchronous: Option<AsyncTables>,
}

/// Async-ps's measurements, every rank's on rank 0 (U = the updates each server applied).
pub struct AsyncTables {
    /// [S, P] a worker's seconds pulling and pushing in each step (0 for servers).
    pub pull_s: Array2<f64>,
    pub push_s: Array2<f64>,
    /// [U, P] for each server's update in order: its staleness and the worker it came from
    /// (0 for workers).
    pub staleness: Array2<u64>,
    pub update_worker: Array2<u64>,
    /// [P] bytes each server sent in its replies (0 for workers).
    pub server_bytes_sent: Vec<u64>,
}

/// Writes the run file: temporary name first, moved into place when complete (over an
/// existing file only when `replace`, i.e. `--force`).
pub fn write<F: Real>(path: &Path, replace: bool, report: &RunReport<F>) -> anyhow::Result<()> {
    write_atomically(path, replace, |file| {
        write_provenance(file, FORMAT, report.provenance)?;
        let config = file.create_group("config")?;
        write_settings(&config, &report.settings)?;
        write_ranks(file, report)?;
        write_timings(file, report)?;
        let metrics = file.create_group("metrics")?;
        dataset(&metrics, "loss", &report.loss)?;
        write_epoch_metrics(&metrics, &report.epochs)?;
        write_model(file, report)?;
        if let Some(scaling) = report.scaling {
            write_scaling(file, scaling)?;
        }
        if let Some(tables) = &report.asynchronous {
            write_async(file, tables)?;
        }
        write_summary(file, report)
    })
}

/// The root attributes every file of ours carries: its format and where it came from.
fn write_provenance(file: &hdf5::File, format: &str, p: &Provenance) -> anyhow::Result<()> {
    text_attr(file, "format", format)?;
    text_attr(file, "version", env!("CARGO_PKG_VERSION"))?;
    for (name, value) in [
        ("command_line", p.command_line.as_str()),
        ("git_revision", p.git_revision),
        ("mpi_library", &p.mpi_library),
        ("mpi_version", &p.mpi_version),
        ("mpi_family", p.mpi_family),
        ("launcher", &p.launcher),
        ("waiting", p.waiting),
        ("started_utc", &p.started_utc),
        ("hostname_list", &p.distinct_hosts().join(",")),
        ("rustc", p.rustc),
        ("build_profile", p.build_profile),
        ("blas", &p.blas),
        ("simd", p.simd),
        ("cpu_model", &p.cpu_model),
    ] {
        text_attr(file, name, value)?;
    }
    scalar_attr(file, "blas_threads_per_rank", &(p.blas_threads as u64))?;
    scalar_attr(file, "hosts", &(p.placement.hosts as u64))?;
    scalar_attr(
        file,
        "oversubscribed",
        &u64::from(p.placement.oversubscribed),
    )?;
    Ok(())
}

/// `/ranks`: each rank's host and rows.
fn write_ranks<F>(file: &hdf5::File, r: &RunReport<F>) -> anyhow::Result<()> {
    let ranks = file.create_group("ranks")?;
    let hostnames: Vec<VarLenUnicode> = r.provenance.hostnames.iter().map(|h| unicode(h)).collect();
    dataset(&ranks, "hostname", &hostnames)?;
    dataset(&ranks, "ranks_on_host", &r.provenance.ranks_on_host)?;
    dataset(&ranks, "cores_on_host", &r.provenance.cores_on_host)?;
    dataset(&ranks, "cpus_of_rank", &r.provenance.cpus_of_rank)?;
    dataset(&ranks, "rows", &r.rows)?;
    dataset(&ranks, "test_rows", &r.test_rows)?;
    Ok(())
}

/// `/timings` (the seconds columns, evaluation, start-up, checkpoints), `/comm` (the traffic
/// columns) and `/restarts`.
fn write_timings<F>(file: &hdf5::File, r: &RunReport<F>) -> anyhow::Result<()> {
    let timings = file.create_group("timings")?;
    for (name, table) in SECONDS.into_iter().zip(&r.steps.seconds) {
        table_dataset(&timings, name, table)?;
    }
    table_dataset(&timings, "eval", &r.eval_s)?;
    dataset(&timings, "mpi_init", &r.mpi_init_s)?;
    dataset(&timings, "data", &r.data_s)?;
    text_attr(&timings, "units", "seconds (MPI_Wtime)")?;
    dataset(&timings, "checkpoint", &r.resumed.checkpoint_s)?;
    dataset(&timings, "checkpoint_step", &r.resumed.checkpoint_steps)?;

    let comm = file.create_group("comm")?;
    for (name, table) in r.steps.counts_named() {
        table_dataset(&comm, name, table)?;
    }
    text_attr(&comm, "counting", r.allreduce_counting)?;
    let restarts = file.create_group("restarts")?;
    dataset(&restarts, "step", &r.resumed.restarts)?;
    Ok(())
}

/// `/async`: async-ps's pulls, pushes, and every applied gradient's staleness.
fn write_async(file: &hdf5::File, tables: &AsyncTables) -> anyhow::Result<()> {
    let group = file.create_group("async")?;
    table_dataset(&group, "pull", &tables.pull_s)?;
    table_dataset(&group, "push", &tables.push_s)?;
    table_dataset(&group, "staleness", &tables.staleness)?;
    table_dataset(&group, "update_worker", &tables.update_worker)?;
    dataset(&group, "server_bytes_sent", &tables.server_bytes_sent)?;
    Ok(())
}

/// `/model/params` with each tensor's shape and offset as attributes.
fn write_model<F: Real>(file: &hdf5::File, r: &RunReport<F>) -> anyhow::Result<()> {
    let model = file.create_group("model")?;
    let params = model
        .new_dataset_builder()
        .with_data(r.params)
        .create("params")?;
    text_attr(&params, "dtype", F::NAME)?;
    let names: Vec<&str> = r.layout.iter().map(|t| t.name.as_str()).collect();
    text_attr(&params, "tensors", &names.join(","))?;
    for t in r.layout {
        let shape: Vec<u64> = t.shape.iter().map(|&d| d as u64).collect();
        params
            .new_attr_builder()
            .with_data(&shape)
            .create(format!("{}_shape", t.name).as_str())?;
        scalar_attr(&params, &format!("{}_offset", t.name), &(t.offset as u64))?;
    }
    Ok(())
}

/// `/preprocessing`: the feature scaling of `--standardize`.
fn write_scaling(file: &hdf5::File, scaling: &Standardizer) -> anyhow::Result<()> {
    let group = file.create_group("preprocessing")?;
    dataset(&group, "mean", &scaling.mean)?;
    dataset(&group, "std", &scaling.std)?;
    text_attr(
        &group,
        "applied",
        "x' = (x - mean) / std, before training and evaluation",
    )?;
    Ok(())
}

/// `/summary`: the headline numbers and the mean of every seconds column.
fn write_summary<F>(file: &hdf5::File, r: &RunReport<F>) -> anyhow::Result<()> {
    let summary = file.create_group("summary")?;
    let m = &r.summary;
    for (name, value) in [
        ("wall_s", m.wall_s),
        ("samples_per_s", m.samples_per_s),
        ("loss", m.loss),
        ("train_accuracy", m.train_accuracy),
        ("test_accuracy", m.test_accuracy),
        ("timer_overhead_s", m.timer_overhead_s),
    ] {
        scalar_attr(&summary, name, &value)?;
    }
    scalar_attr(&summary, "steps", &(m.steps as u64))?;
    let interrupted = u8::from(m.interrupted_by.is_some());
    scalar_attr(&summary, "interrupted", &interrupted)?;
    text_attr(&summary, "interrupted_by", m.interrupted_by.unwrap_or(""))?;
    scalar_attr(
        &summary,
        "replicas_identical",
        &u8::from(m.replicas_identical),
    )?;
    for (name, table) in SECONDS.into_iter().zip(&r.steps.seconds) {
        let mean = table.mean().unwrap_or(f64::NAN);
        scalar_attr(&summary, &format!("mean_{name}_s"), &mean)?;
    }
    Ok(())
}

/// The resolved options as attributes of `location`.
fn write_settings(location: &Location, settings: &[(&'static str, Setting)]) -> hdf5::Result<()> {
    for (name, value) in settings {
        match value {
            Setting::Text(s) => text_attr(location, name, s)?,
            Setting::Int(v) => scalar_attr(location, name, v)?,
            Setting::Float(v) => scalar_attr(location, name, v)?,
        }
    }
    Ok(())
}

/// The per-epoch metrics, one dataset each.
fn write_epoch_metrics(group: &Group, e: &EpochMetrics) -> hdf5::Result<()> {
    for (name, values) in e.named() {
        dataset(group, name, values)?;
    }
    Ok(())
}
