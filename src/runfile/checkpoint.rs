//! Checkpoints (format "mpi-sgd-checkpoint/1"): everything a run needs to continue from a step
//! boundary and end bit-identical to a run that was never stopped, with its whole history.
//!
//! A run has no random state beyond `--seed`: the data, their order (the batch plan) and the
//! initial parameters are functions of the seed and the step, so the step is the data position.
//! What changes as it trains is saved per rank, as [ranks, ...] tables (with `--average-every`
//! the replicas differ between averaging steps):
//!
//! ```text
//! /config (attrs)           the resolved options; `hash` identifies the configuration
//! next_step, elapsed_s      where to continue; training seconds so far
//! params [P, n]            parameters of every rank
//! optimizer_state [P, k n]  the update rule's state: SGD's velocity (k = 1), Adam's moments (2)
//! centre [P, n]             EASGD's centre (the same on every rank; only with easgd)
//! seen [P, 3]               the current epoch's loss / correct / rows sums so far
//! steps/* [next_step, P]    the step record so far (timings, bytes, messages, loss)
//! eval_s [epochs done, P]   evaluation seconds; metrics/* [epochs done]
//! restarts, checkpoint_s, checkpoint_steps   the history of resumes and checkpoints
//! ```
//! Rank 0 gathers and writes it to a temporary name and renames it, so a crash at
//! any moment leaves the previous checkpoint or the new one, never a broken one. Every rank reads
//! its own row back on `--resume`.
//!
//! Not when checkpoints happen (`train::control`).

use std::path::Path;

use anyhow::Context;
use hdf5::types::VarLenUnicode;
use ndarray::{s, Array2};

use super::{write_epoch_metrics, write_settings};
use crate::comm::Comm;
use crate::errors::usage;
use crate::h5::{
    dataset, read_text_attr, require_utf8_name, scalar_attr, table_dataset, text_attr,
    write_atomically,
};
use crate::model::BatchStats;
use crate::real::Real;
use crate::record::{gather_columns, EpochMetrics, GatheredSteps, History, StepRecord};
use crate::settings::Setting;

pub const FORMAT: &str = "mpi-sgd-checkpoint/2";

/// One rank's training state at a step boundary, plus what all ranks share.
pub struct TrainingState<F> {
    pub next_step: usize,
    pub params: Vec<F>,
    pub optimizer_state: Vec<F>,
    /// EASGD's centre; empty for the other algorithms.
    pub centre: Vec<F>,
    pub seen: BatchStats,
    /// The record of steps `0..next_step`, and the evaluation seconds of finished epochs.
    pub record: StepRecord,
    pub eval_s: Vec<f64>,
    pub epochs: EpochMetrics,
    pub elapsed_s: f64,
    pub history: History,
}

/// Collective: gathers every rank's state and rank 0 writes `path` atomically. The error, if
/// any, is agreed.
pub fn write<F: Real>(
    comm: &Comm,
    path: &Path,
    settings: &[(&'static str, Setting)],
    hash: u64,
    state: &TrainingState<F>,
) -> anyhow::Result<()> {
    let rows = |values: &[F]| {
        comm.gather(values)
            .map(|all| Array2::from_shape_vec((comm.size(), values.len()), all).expect("P x n"))
    };
    let (params, optimizer_state) = (rows(&state.params), rows(&state.optimizer_state));
    // Every rank has a centre or none (the same algorithm), so all take part or none.
    let centre = (!state.centre.is_empty()).then(|| rows(&state.centre));
    let seen = comm.gather(&[state.seen.loss_sum, state.seen.correct, state.seen.rows]);
    let steps = state.record.gather(comm, state.next_step);
    let eval_s = gather_columns(comm, &state.eval_s);
    let (Some(params), Some(optimizer_state), Some(seen), Some(steps), Some(eval_s)) =
        (params, optimizer_state, seen, steps, eval_s)
    else {
        return comm.agree(Ok(()));
    };
    // The checkpoint is this run's own file, replaced at every save.
    let written = write_atomically(path, true, |file| {
        text_attr(file, "format", FORMAT)?;
        text_attr(file, "version", env!("CARGO_PKG_VERSION"))?;
        write_settings(file, settings)?;
        scalar_attr(file, "hash", &hash)?;
        scalar_attr(file, "next_step", &(state.next_step as u64))?;
        scalar_attr(file, "elapsed_s", &state.elapsed_s)?;
        table_dataset(file, "params", &params)?;
        table_dataset(file, "optimizer_state", &optimizer_state)?;
        if let Some(Some(centre)) = &centre {
            table_dataset(file, "centre", centre)?;
        }
        let seen = Array2::from_shape_vec((comm.size(), 3), seen).expect("P x 3");
        table_dataset(file, "seen", &seen)?;
        table_dataset(file, "eval_s", &eval_s)?;
        let h = &state.history;
        dataset(file, "restarts", &h.restarts)?;
        dataset(file, "checkpoint_s", &h.checkpoint_s)?;
        dataset(file, "checkpoint_steps", &h.checkpoint_steps)?;
        write_steps(&file.create_group("steps")?, &steps)?;
        write_epoch_metrics(&file.create_group("metrics")?, &state.epochs)?;
        Ok(())
    });
    comm.agree(written)
}

/// Every column of a step record, by its name.
fn write_steps(group: &hdf5::Group, steps: &GatheredSteps) -> hdf5::Result<()> {
    for (name, table) in steps.floats() {
        table_dataset(group, name, table)?;
    }
    for (name, table) in steps.counts_named() {
        table_dataset(group, name, table)?;
    }
    Ok(())
}

/// Reads this rank's state from `path`; a usage error if it is not a checkpoint of this
/// configuration (`hash`) on this many ranks, naming the options that differ.
pub fn read<F: Real>(
    path: &Path,
    rank: usize,
    settings: &[(&'static str, Setting)],
    hash: u64,
    steps: usize,
) -> anyhow::Result<TrainingState<F>> {
    let file = open_matching(path, settings, hash)?;
    let context = || format!("reading checkpoint {}", path.display());
    let row = |name: &str| -> anyhow::Result<Vec<F>> {
        Ok(file
            .dataset(name)?
            .read_slice_1d::<F, _>(s![rank, ..])?
            .to_vec())
    };
    let seen = file
        .dataset("seen")?
        .read_slice_1d::<f64, _>(s![rank, ..])?;
    Ok(TrainingState {
        next_step: file.attr("next_step")?.read_scalar::<u64>()? as usize,
        params: row("params").with_context(context)?,
        optimizer_state: row("optimizer_state").with_context(context)?,
        centre: match file.link_exists("centre") {
            true => row("centre").with_context(context)?,
            false => Vec::new(),
        },
        seen: BatchStats {
            loss_sum: seen[0],
            correct: seen[1],
            rows: seen[2],
        },
        record: read_record(&file, rank, steps).with_context(context)?,
        eval_s: column_of(&file, "eval_s", rank).with_context(context)?,
        epochs: read_epoch_metrics(&file)?,
        elapsed_s: file.attr("elapsed_s")?.read_scalar()?,
        history: History {
            restarts: file.dataset("restarts")?.read_raw()?,
            checkpoint_s: file.dataset("checkpoint_s")?.read_raw()?,
            checkpoint_steps: file.dataset("checkpoint_steps")?.read_raw()?,
        },
    })
}

/// Opens `path`, or says why it is not a checkpoint of this configuration.
fn open_matching(
    path: &Path,
    settings: &[(&'static str, Setting)],
    hash: u64,
) -> anyhow::Result<hdf5::File> {
    let shown = path.display();
    if !path.is_file() {
        return Err(usage(format!("--resume {shown}: no such file")));
    }
    require_utf8_name("--resume", path)?;
    let file = hdf5::File::open(path).ok();
    let format = file.as_ref().and_then(|f| read_text_attr(f, "format").ok());
    let file = match (file, format) {
        (Some(file), Some(format)) if format == FORMAT => file,
        (_, Some(format)) if format.starts_with("mpi-sgd-checkpoint/") => {
            return Err(usage(format!(
                "--resume {shown}: a checkpoint of format {format}, written by another version of mpi-sgd; this one reads {FORMAT}: resume with the version that wrote it"
            )))
        }
        _ => return Err(usage(format!("--resume {shown}: not a checkpoint of mpi-sgd"))),
    };
    if file.attr("hash")?.read_scalar::<u64>()? == hash {
        return Ok(file);
    }
    let differ: Vec<String> = settings
        .iter()
        .filter_map(|(name, now)| {
            let then = file.attr(name).ok().map(|a| stored_setting(&a, now));
            (then.as_deref() != Some(&now.to_string())).then(|| {
                format!(
                    "{name} {} (now {now})",
                    then.unwrap_or_else(|| "absent".into())
                )
            })
        })
        .collect();
    Err(usage(format!(
        "--resume {shown}: the checkpoint is from another configuration ({}); resume with the options and build it was made with",
        match differ.is_empty() {
            true => "another build".to_string(),
            false => differ.join(", "),
        }
    )))
}

/// This rank's step record of the steps saved, in a record of `steps` steps.
fn read_record(file: &hdf5::File, rank: usize, steps: usize) -> anyhow::Result<StepRecord> {
    let mut record = StepRecord::new(steps);
    for (name, column) in record.floats_mut() {
        let saved = column_of::<f64>(file, &format!("steps/{name}"), rank)?;
        column[..saved.len()].copy_from_slice(&saved);
    }
    for (name, column) in record.counts_mut() {
        let saved = column_of::<u64>(file, &format!("steps/{name}"), rank)?;
        column[..saved.len()].copy_from_slice(&saved);
    }
    Ok(record)
}

fn read_epoch_metrics(file: &hdf5::File) -> anyhow::Result<EpochMetrics> {
    let mut epochs = EpochMetrics::default();
    for (name, values) in epochs.named_mut() {
        *values = file.dataset(&format!("metrics/{name}"))?.read_raw()?;
    }
    Ok(epochs)
}

/// Column `rank` of a [rows, ranks] table.
fn column_of<T: hdf5::H5Type + Clone>(
    file: &hdf5::File,
    name: &str,
    rank: usize,
) -> anyhow::Result<Vec<T>> {
    Ok(file
        .dataset(name)?
        .read_slice_1d::<T, _>(s![.., rank])?
        .to_vec())
}

/// A stored setting, printed as the current one of the same kind would be.
fn stored_setting(attr: &hdf5::Attribute, like: &Setting) -> String {
    match like {
        Setting::Text(_) => attr.read_scalar::<VarLenUnicode>().map(|v| v.to_string()),
        Setting::Int(_) => attr.read_scalar::<u64>().map(|v| v.to_string()),
        Setting::Float(_) => attr.read_scalar::<f64>().map(|v| v.to_string()),
    }
    .unwrap_or_default()
}
