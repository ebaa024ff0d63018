//! After the last step: every rank's record gathered into the run file, and the lines that end
//! the run (the summary on stdout, or why it stopped early).
//!
//! Not the file layout (`runfile`).

use super::parameter_server::ParameterServer;
use super::setup::LocalData;
use super::trainer::Trainer;
use crate::info_root;
use crate::provenance::{Provenance, Startup};
use crate::real::Real;
use crate::record::{gather_columns, Summary};
use crate::runfile::{self, AsyncTables, RunReport};
use crate::settings::TrainSettings;

/// Collective (gathers); rank 0 writes the file when `--out` was given.
pub fn write_run_file<F: Real>(
    trainer: &Trainer<F>,
    provenance: &Provenance,
    startup: &Startup,
    summary: Summary,
) -> anyhow::Result<()> {
    let Trainer {
        config, comm, data, ..
    } = trainer;
    let Some(path) = &config.out else {
        return Ok(());
    };
    let steps = trainer.record.gather(comm, trainer.next_step);
    let eval_s = gather_columns(comm, &trainer.eval_s);
    let rows = comm.gather(&[data.train.rows() as u64]);
    let test_rows = comm.gather(&[data.test.rows() as u64]);
    let mpi_init_s = comm.gather(&[startup.mpi_init_s]);
    let data_s = comm.gather(&[data.seconds]);
    let asynchronous = trainer
        .parameter_server
        .as_ref()
        .map(|ps| async_tables(trainer, ps));
    let (Some(steps), Some(eval_s), Some(rows), Some(test_rows), Some(mpi_init_s), Some(data_s)) =
        (steps, eval_s, rows, test_rows, mpi_init_s, data_s)
    else {
        return Ok(()); // not rank 0
    };
    let report = RunReport {
        provenance,
        settings: config.attributes(comm.size(), &data.shape),
        allreduce_counting: config.allreduce.counting,
        rows,
        test_rows,
        mpi_init_s,
        data_s,
        loss: mean_batch_loss(trainer, &steps.loss_sum),
        steps,
        eval_s,
        epochs: trainer.epochs.clone(),
        params: &trainer.params,
        asynchronous: asynchronous.flatten(),
        layout: trainer.model.layout(),
        scaling: data.scaling.as_ref(),
        resumed: &trainer.history,
        summary,
    };
    runfile::write(path, config.force, &report)?;
    info_root!(comm, "wrote {}", path.display());
    Ok(())
}

/// Collective: async-ps's measurements of every rank, on rank 0. Every server applied W
/// updates per worker step taken (epochs end together), so every rank's columns are as long.
fn async_tables<F: Real>(trainer: &Trainer<F>, ps: &ParameterServer<F>) -> Option<AsyncTables> {
    let comm = trainer.comm;
    let steps = trainer.next_step;
    let updates = (comm.size() - trainer.config.servers) * steps;
    let padded = |values: &[u64]| {
        let mut column = vec![0; updates];
        column[..values.len().min(updates)].copy_from_slice(&values[..values.len().min(updates)]);
        gather_columns(comm, &column)
    };
    let pull_s = gather_columns(comm, &ps.pull_s[..steps]);
    let push_s = gather_columns(comm, &ps.push_s[..steps]);
    let staleness = padded(&ps.applied.staleness);
    let update_worker = padded(&ps.applied.worker);
    let server_bytes_sent = comm.gather(&[ps.applied.bytes_sent]);
    Some(AsyncTables {
        pull_s: pull_s?,
        push_s: push_s?,
        staleness: staleness?,
        update_worker: update_worker?,
        server_bytes_sent: server_bytes_sent?,
    })
}

/// [S] the global mean loss of each step's rows, from every rank's [S, P] loss sums.
fn mean_batch_loss<F: Real>(trainer: &Trainer<F>, loss_sum: &ndarray::Array2<f64>) -> Vec<f64> {
    loss_sum
        .rows()
        .into_iter()
        .enumerate()
        .map(|(t, by_rank)| by_rank.sum() / trainer.rows_of_step(t) as f64)
        .collect()
}

/// The last line on stdout: `key=value` pairs for scripts.
pub fn summary_line<F>(
    config: &TrainSettings,
    ranks: usize,
    data: &LocalData<F>,
    s: &Summary,
) -> String {
    let out = config
        .out
        .as_ref()
        .map_or("-".to_string(), |p| p.display().to_string());
    let shape = &data.shape;
    format!(
        "ranks={ranks} model={} algorithm={} optimizer={} allreduce={} dtype={} samples={} features={} batch={} epochs={} steps={} \
         wall_s={:.6} samples_per_s={:.1} loss={:.6} train_accuracy={:.6} test_accuracy={:.6} out={out}",
        config.model.name(),
        config.algorithm.name(),
        config.optimizer.name(),
        config.allreduce.name,
        config.dtype.name(),
        shape.samples,
        shape.features,
        config.global_batch(ranks),
        config.epochs,
        s.steps,
        s.wall_s,
        s.samples_per_s,
        s.loss,
        s.train_accuracy,
        s.test_accuracy,
    )
}

/// Rank 0's line when a signal stopped the run: where, and how to continue.
pub fn interrupted_line(config: &TrainSettings, name: &str, step: usize, total: usize) -> String {
    let saved = match &config.checkpoint {
        Some(path) => format!(
            "checkpoint {}; continue with --resume {}",
            path.display(),
            path.display()
        ),
        None => "no checkpoint (give --out or --checkpoint to keep one)".to_string(),
    };
    format!("mpi-sgd: interrupted by {name}: stopped after step {step} of {total}; {saved}")
}
