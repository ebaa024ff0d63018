//! `mpi-sgd train`: the SPMD training run; every rank runs [`run`] on its own rows.
//!
//! ```text
//! setup:  open the data -> batch plan -> same options everywhere -> check the destinations
//!         -> load my rows -> init params (same seed)                       (setup.rs)
//! loop:   compute | combine | update, per step; evaluation per epoch;
//!         the stop vote and checkpoints between steps        (trainer.rs, step.rs, control.rs)
//! end:    gather every rank's record to rank 0 -> run file -> summary line   (finish.rs)
//! ```
//!
//! Failures: errors where every rank is at the same point (start-up, data, checkpoints, the
//! run file, divergence) are agreed and reported once; an error inside a step, where the
//! other ranks already wait in the allreduce, ends the job with MPI_Abort (the phase clock).
//! Not the model's arithmetic ([`crate::model`]), nor the allreduce ([`crate::comm`]).

mod control;
mod elastic;
mod federated;
mod finish;
mod parameter_server;
mod reproducible;
mod setup;
mod step;
mod trainer;

use anyhow::Context;

use crate::clock::READS_PER_STEP;
use crate::comm::Comm;
use crate::data::Source;
use crate::errors::{usage, ReportedElsewhere};
use crate::info_root;
use crate::interrupt::Signals;
use crate::kinds::TrainingAlgorithm;
use crate::partition::BatchPlan;
use crate::phase::Phase;
use crate::provenance::{Provenance, Startup};
use crate::real::Real;
use crate::record::Summary;
use crate::runfile::checkpoint;
use crate::settings::TrainSettings;
use crate::watchdog::Watchdog;
use trainer::Trainer;

/// Collective: trains the configured model and writes the run file. Errors are returned at
/// points where all ranks agree on them (see [`Comm::agree`]).
pub fn run<F: Real>(config: &TrainSettings, comm: &Comm, startup: Startup) -> anyhow::Result<()> {
    let faults = config.faults;
    comm.agree(faults.check(comm.rank(), Phase::Startup, None))?;
    let (source, shape) = comm.agree(Source::open(&config.data, comm.size()))?;
    if config.servers >= comm.size() {
        return comm.agree(Err(usage(format!(
            "--servers {} on {} ranks leaves no worker; use at least {} ranks or fewer --servers",
            config.servers,
            comm.size(),
            config.servers + 1
        ))));
    }
    // The ranks with training rows: all but async-ps's servers.
    let data_ranks = comm.size() - config.servers;
    let batch = config.global_batch(comm.size());
    let plan = BatchPlan::in_blocks(shape.samples, batch, data_ranks, config.grain(batch))
        .map_err(|e| usage(e.to_string()));
    let plan = comm.agree(plan)?;
    let alpha = config.elastic_alpha(comm.size());
    if alpha * comm.size() as f64 > 1.0 {
        return comm.agree(Err(usage(format!(
            "--elastic-alpha {alpha} on {} ranks: the centre would move {} times its distance to the models' mean; use --elastic-alpha {} or less",
            comm.size(),
            alpha * comm.size() as f64,
            1.0 / comm.size() as f64
        ))));
    }
    let hash = comm.agree(setup::same_configuration(config, &shape, comm))?;
    comm.agree(setup::check_memory::<F>(config, &shape, &plan, comm))?;
    let provenance = Provenance::collect(comm, &startup);
    comm.agree(match comm.is_root() {
        true => setup::check_destinations(config),
        false => Ok(()),
    })?;
    let mut data = setup::load::<F>(config, comm, &source, shape, &plan)?;
    let clients = match config.algorithm {
        TrainingAlgorithm::Fedavg => {
            let (classes, seed) = (data.shape.classes, config.seed);
            let assigned =
                federated::Clients::assign(&config.federated, comm, &mut data.train, classes, seed);
            Some(comm.agree(assigned)?)
        }
        _ => None,
    };
    setup::describe(config, &plan, comm, &provenance, &data);

    let stall_timeout = config.stall_timeout.filter(|_| startup.thread_multiple);
    if config.stall_timeout.is_some() && stall_timeout.is_none() {
        log::warn!("this MPI library gives no MPI_THREAD_MULTIPLE: the stall watchdog is off");
    }
    let watchdog = Watchdog::start(comm.rank(), comm.size(), stall_timeout);
    let signals = comm.agree(Signals::catch().context("cannot catch SIGTERM/SIGINT"))?;
    let progress = std::sync::Arc::clone(&watchdog.progress);
    let mut trainer = Trainer::new(config, comm, plan, &data, hash, progress, signals);
    comm.agree(trainer.start_overlap(startup.thread_multiple))?;
    if let Some(clients) = clients {
        trainer.start_federated(clients);
    }
    if let Some(path) = &config.resume {
        resume(&mut trainer, path)?;
    }
    let timer_overhead_s = READS_PER_STEP as f64 * setup::timer_cost();

    comm.barrier();
    let begin = mpi::time();
    // Errors of training are alike on every rank (divergence, checkpoints): agreed, printed once.
    let interrupted = comm.agree(trainer.train())?;
    let wall_s = trainer.elapsed_before + comm.max(&[mpi::time() - begin])[0];
    drop(watchdog);

    let summary = summarize(&trainer, wall_s, timer_overhead_s, interrupted);
    comm.agree(faults.check(comm.rank(), Phase::Write, None))?;
    let written = finish::write_run_file(&trainer, &provenance, &startup, summary.clone());
    comm.agree(written)?;
    if let Some((signal, name)) = interrupted {
        if comm.is_root() {
            let total = trainer.record.steps();
            eprintln!(
                "{}",
                finish::interrupted_line(config, name, trainer.next_step, total)
            );
        }
        return Err(ReportedElsewhere((128 + signal) as u8).into());
    }
    if comm.is_root() {
        println!(
            "{}",
            finish::summary_line(config, comm.size(), &data, &summary)
        );
    }
    Ok(())
}

/// Collective: continues from the checkpoint at `path` (errors agreed).
fn resume<F: Real>(trainer: &mut Trainer<F>, path: &std::path::Path) -> anyhow::Result<()> {
    let comm = trainer.comm;
    let settings = trainer.config.attributes(comm.size(), &trainer.data.shape);
    let total = trainer.record.steps();
    let state = checkpoint::read(path, comm.rank(), &settings, trainer.hash, total);
    trainer.restore(comm.agree(state)?);
    info_root!(
        comm,
        "resumed from {} at step {}",
        path.display(),
        trainer.next_step + 1
    );
    Ok(())
}

/// Collective (checks the replicas): the run's headline numbers.
fn summarize<F: Real>(
    trainer: &Trainer<F>,
    wall_s: f64,
    timer_overhead_s: f64,
    interrupted: Option<(i32, &'static str)>,
) -> Summary {
    let last = |values: &[f64]| values.last().copied().unwrap_or(f64::NAN);
    let comm = trainer.comm;
    let summary = Summary {
        wall_s,
        samples_per_s: trainer.rows_trained() as f64 / wall_s,
        steps: trainer.next_step,
        loss: last(&trainer.epochs.train_loss),
        train_accuracy: last(&trainer.epochs.train_accuracy),
        test_accuracy: last(&trainer.epochs.test_accuracy),
        timer_overhead_s,
        replicas_identical: comm.same_bits_everywhere(&trainer.params),
        interrupted_by: interrupted.map(|(_, name)| name),
    };
    if !summary.replicas_identical && interrupted.is_none() {
        log::warn!(
            "rank {}: final parameters differ between ranks (the allreduce did not give every rank the same bits)",
            comm.rank()
        );
    }
    summary
}
