//! The HDF5 run file, format "mpi-sgd/1": the one place that knows its layout
//! (documented for users in docs/output-format.md). P = ranks, S = steps, E = epochs.
//!
//! Rank 0 writes it after gathering everything, to a temporary name in the same directory, then
//! renames it: a crash leaves either no file or a complete one at the final path.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use hdf5::types::VarLenUnicode;
use hdf5::{Group, H5Type, Location};
use ndarray::Array2;

use crate::config::Setting;
use crate::data::standardize::Standardizer;
use crate::errors::usage;
use crate::model::Tensor;
use crate::provenance::Provenance;
use crate::real::Real;
use crate::record::GatheredSteps;

pub const FORMAT: &str = "mpi-sgd/1";

/// Per-epoch metrics, reduced over all ranks.
#[derive(Debug, Clone, Default)]
pub struct EpochMetrics {
    pub train_loss: Vec<f64>,
    pub train_accuracy: Vec<f64>,
    pub test_loss: Vec<f64>,
    pub test_accuracy: Vec<f64>,
}

/// Headline numbers of a run, as written to `/summary` and the summary line.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Seconds from the barrier before the first step to the end of the last epoch, max over
    /// ranks (includes per-epoch evaluation).
    pub wall_s: f64,
    pub samples_per_s: f64,
    pub steps: usize,
    pub loss: f64,
    pub train_accuracy: f64,
    pub test_accuracy: f64,
    /// Cost of the eight `MPI_Wtime` reads of one step, measured at start-up.
    pub timer_overhead_s: f64,
    pub replicas_identical: bool,
    /// The signal that stopped the run early, if one did.
    pub interrupted_by: Option<&'static str>,
}

/// How the run was pieced together: the steps it was resumed from, and its checkpoints.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub restarts: Vec<u64>,
    /// Seconds each checkpoint took (rank 0's view, gathers included), and after which step.
    pub checkpoint_s: Vec<f64>,
    pub checkpoint_steps: Vec<u64>,
}

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
}

/// Checks, before any work, that `path` can be written: not an existing file unless `force`,
/// and a directory that exists (created if missing) and accepts new files.
pub fn check_destination(option: &str, path: &Path, force: bool) -> anyhow::Result<()> {
    if path.is_dir() {
        return Err(usage(format!(
            "{option} {}: is a directory; give a file name",
            path.display()
        )));
    }
    if path.exists() && !force {
        return Err(usage(format!(
            "{option} {}: file exists; pass --force to overwrite it or choose another path",
            path.display()
        )));
    }
    let dir = parent_dir(path);
    fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))?;
    let probe = temporary_path(path);
    fs::File::create(&probe).with_context(|| {
        format!(
            "{option} {}: cannot write into {}",
            path.display(),
            dir.display()
        )
    })?;
    fs::remove_file(&probe).ok();
    Ok(())
}

/// Writes the run file: temporary name first, renamed into place when complete.
pub fn write<F: Real>(path: &Path, report: &RunReport<F>) -> anyhow::Result<()> {
    write_atomically(path, |file| write_run(file, report))
}

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
pub fn write_bench(path: &Path, report: &BenchReport) -> anyhow::Result<()> {
    write_atomically(path, |file| {
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

/// Runs `contents` on a new HDF5 file at a temporary name beside `path`, then renames it into
/// place; on any failure the temporary file is removed and `path` is untouched.
pub fn write_atomically(
    path: &Path,
    contents: impl FnOnce(&hdf5::File) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let temporary = temporary_path(path);
    let written = hdf5::File::create(&temporary)
        .map_err(anyhow::Error::from)
        .and_then(|file| {
            contents(&file)?;
            file.close()?;
            Ok(())
        })
        .and_then(|()| fs::rename(&temporary, path).context("cannot move it into place"));
    if written.is_err() {
        fs::remove_file(&temporary).ok();
    }
    written.with_context(|| format!("writing {}", path.display()))
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The temporary name beside `path` that this process writes before renaming.
fn temporary_path(path: &Path) -> PathBuf {
    temporary_path_of(path, std::process::id())
}

/// The temporary name beside `path` of the writer with process id `pid` (several ranks
/// writing one file agree on rank 0's).
pub fn temporary_path_of(path: &Path, pid: u32) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    parent_dir(path).join(format!(".{name}.{pid}.tmp"))
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
        ("started_utc", &p.started_utc),
        ("hostname_list", &p.distinct_hosts().join(",")),
        ("rustc", p.rustc),
        ("build_profile", p.build_profile),
        ("blas", &p.blas),
    ] {
        text_attr(file, name, value)?;
    }
    scalar_attr(file, "blas_threads_per_rank", &(p.blas_threads as u64))?;
    Ok(())
}

fn write_run<F: Real>(file: &hdf5::File, r: &RunReport<F>) -> anyhow::Result<()> {
    write_provenance(file, FORMAT, r.provenance)?;
    let p = r.provenance;

    let config = file.create_group("config")?;
    write_settings(&config, &r.settings)?;

    let ranks = file.create_group("ranks")?;
    let hostnames: Vec<VarLenUnicode> = p.hostnames.iter().map(|h| unicode(h)).collect();
    dataset(&ranks, "hostname", &hostnames)?;
    dataset(&ranks, "rows", &r.rows)?;
    dataset(&ranks, "test_rows", &r.test_rows)?;

    let timings = file.create_group("timings")?;
    let s = &r.steps;
    for (name, table) in [
        ("compute", &s.compute),
        ("allreduce", &s.allreduce),
        ("update", &s.update),
        ("step", &s.step),
        ("eval", &r.eval_s),
    ] {
        table_dataset(&timings, name, table)?;
    }
    dataset(&timings, "mpi_init", &r.mpi_init_s)?;
    dataset(&timings, "data", &r.data_s)?;
    text_attr(&timings, "units", "seconds (MPI_Wtime)")?;

    let comm = file.create_group("comm")?;
    table_dataset(&comm, "bytes_sent", &s.bytes_sent)?;
    table_dataset(&comm, "messages_sent", &s.messages_sent)?;
    text_attr(&comm, "counting", r.allreduce_counting)?;

    let metrics = file.create_group("metrics")?;
    dataset(&metrics, "loss", &r.loss)?;
    write_epoch_metrics(&metrics, &r.epochs)?;

    let restarts = file.create_group("restarts")?;
    dataset(&restarts, "step", &r.resumed.restarts)?;
    dataset(&timings, "checkpoint", &r.resumed.checkpoint_s)?;
    dataset(&timings, "checkpoint_step", &r.resumed.checkpoint_steps)?;

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

    if let Some(scaling) = r.scaling {
        let group = file.create_group("preprocessing")?;
        dataset(&group, "mean", &scaling.mean)?;
        dataset(&group, "std", &scaling.std)?;
        text_attr(
            &group,
            "applied",
            "x' = (x - mean) / std, before training and evaluation",
        )?;
    }

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
    scalar_attr(
        &summary,
        "interrupted",
        &u8::from(m.interrupted_by.is_some()),
    )?;
    text_attr(&summary, "interrupted_by", m.interrupted_by.unwrap_or(""))?;
    scalar_attr(
        &summary,
        "replicas_identical",
        &u8::from(m.replicas_identical),
    )?;
    for (name, table) in [
        ("mean_compute_s", &s.compute),
        ("mean_allreduce_s", &s.allreduce),
        ("mean_update_s", &s.update),
        ("mean_step_s", &s.step),
    ] {
        scalar_attr(&summary, name, &table.mean().unwrap_or(f64::NAN))?;
    }
    Ok(())
}

/// The resolved options as attributes of `location`.
pub fn write_settings(
    location: &Location,
    settings: &[(&'static str, Setting)],
) -> hdf5::Result<()> {
    for (name, value) in settings {
        match value {
            Setting::Text(s) => text_attr(location, name, s)?,
            Setting::Int(v) => scalar_attr(location, name, v)?,
            Setting::Float(v) => scalar_attr(location, name, v)?,
        }
    }
    Ok(())
}

/// Every table of a step record, by its field name.
pub fn write_steps(group: &Group, s: &GatheredSteps) -> hdf5::Result<()> {
    for (name, table) in [
        ("compute", &s.compute),
        ("allreduce", &s.allreduce),
        ("update", &s.update),
        ("step", &s.step),
        ("loss_sum", &s.loss_sum),
    ] {
        table_dataset(group, name, table)?;
    }
    table_dataset(group, "bytes_sent", &s.bytes_sent)?;
    table_dataset(group, "messages_sent", &s.messages_sent)
}

/// The per-epoch metrics, one dataset each.
pub fn write_epoch_metrics(group: &Group, e: &EpochMetrics) -> hdf5::Result<()> {
    for (name, values) in [
        ("train_loss", &e.train_loss),
        ("train_accuracy", &e.train_accuracy),
        ("test_loss", &e.test_loss),
        ("test_accuracy", &e.test_accuracy),
    ] {
        dataset(group, name, values)?;
    }
    Ok(())
}

pub fn unicode(text: &str) -> VarLenUnicode {
    // Only NUL bytes can make this fail; none of our strings carry them.
    text.replace('\0', "")
        .parse()
        .expect("string without NUL bytes")
}

/// A text attribute written by [`text_attr`].
pub fn read_text_attr(location: &Location, name: &str) -> hdf5::Result<String> {
    Ok(location
        .attr(name)?
        .read_scalar::<VarLenUnicode>()?
        .as_str()
        .to_string())
}

pub fn text_attr(location: &Location, name: &str, value: &str) -> hdf5::Result<()> {
    location
        .new_attr::<VarLenUnicode>()
        .create(name)?
        .write_scalar(&unicode(value))
}

pub fn scalar_attr<T: H5Type>(location: &Location, name: &str, value: &T) -> hdf5::Result<()> {
    location.new_attr::<T>().create(name)?.write_scalar(value)
}

pub fn dataset<T: H5Type>(group: &Group, name: &str, values: &[T]) -> hdf5::Result<()> {
    group
        .new_dataset_builder()
        .with_data(values)
        .create(name)
        .map(drop)
}

pub fn table_dataset<T: H5Type>(group: &Group, name: &str, table: &Array2<T>) -> hdf5::Result<()> {
    group
        .new_dataset_builder()
        .with_data(table)
        .create(name)
        .map(drop)
}
