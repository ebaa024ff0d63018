//! The SPMD training loop: every rank runs this same function on its own rows.
//!
//! ```text
//! setup:  batch plan -> check the output path -> generate my rows -> init params (same seed)
//! step:   compute (forward+backward on my share of the global batch)
//!         | allreduce(sum) of the flat gradient | update (identical on every rank)
//! epoch:  evaluate on my test rows; one allreduce of the loss/accuracy sums
//! control (after each step, outside the timed phases): every VOTE_EVERY steps the overlapped
//!         stop vote (signals, --checkpoint-seconds); checkpoints (--checkpoint-every)
//! end:    gather every rank's record to rank 0 -> run file -> summary line on stdout
//! ```
//! Nothing but compute and the allreduce happens inside a step: no allocation, no I/O, no
//! logging (except every `--log-every` steps, outside the timed phases).
//!
//! Failures: errors where every rank is at the same point (start-up, data, checkpoints, the
//! run file, divergence) are agreed and reported once; an error inside a step, where the
//! other ranks already wait in the allreduce, ends the job with MPI_Abort ([`Comm::abort`]).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::checkpoint::{self, TrainingState};
use crate::comm::{Allreduce, Comm, Traffic};
use crate::config::Config;
use crate::data::partition::BatchPlan;
use crate::data::standardize::Standardizer;
use crate::data::{DataShape, Dataset, Source};
use crate::errors::{usage, ReportedElsewhere};
use crate::fault::Phase;
use crate::info_root;
use crate::interrupt::{signal_of, Signals, Vote, CHECKPOINT_BIT};
use crate::model::{self, BatchStats, Model};
use crate::optim::{Sgd, SgdSettings};
use crate::output::{self, EpochMetrics, History, RunReport, Summary};
use crate::provenance::Provenance;
use crate::real::Real;
use crate::record::{gather_columns, PhaseSeconds, StepRecord};
use crate::watchdog::{Activity, Progress, Watchdog};

/// What happened before training: measured in `main`, recorded in the run file.
pub struct Startup {
    pub mpi_init_s: f64,
    pub blas_threads: usize,
    /// MPI gave MPI_THREAD_MULTIPLE (the stall watchdog needs it).
    pub thread_multiple: bool,
}

/// A rank's training and test rows, the data set's sizes, and the seconds it took to load
/// (or generate) the rows.
struct LocalData<F> {
    train: Dataset<F>,
    test: Dataset<F>,
    shape: DataShape,
    /// The statistics the features were scaled with (`--standardize`).
    scaling: Option<Standardizer>,
    seconds: f64,
}

/// Collective: trains the configured model and writes the run file. Errors are returned at
/// points where all ranks agree on them (see [`Comm::agree`]).
pub fn run<F: Real>(config: &Config, comm: &Comm, startup: Startup) -> anyhow::Result<()> {
    let faults = config.faults;
    comm.agree(faults.check(comm.rank(), Phase::Startup, None))?;
    let (source, shape) = comm.agree(Source::open(config, comm.size()))?;
    let plan = BatchPlan::new(shape.samples, config.global_batch(comm.size()), comm.size())
        .map_err(|e| usage(e.to_string()));
    let plan = comm.agree(plan)?;
    let hash = comm.agree(same_configuration(config, &shape, comm))?;
    let provenance = Provenance::collect(comm, startup.blas_threads);
    comm.agree(match comm.is_root() {
        true => check_destinations(config),
        false => Ok(()),
    })?;

    let begin = mpi::time();
    let loaded = faults
        .check(comm.rank(), Phase::Data, None)
        .and_then(|()| source.load::<F>(config, &shape, &plan, comm.rank()));
    let (mut train, mut test) = comm.agree(loaded)?;
    let scaling = config.standardize.then(|| {
        let scaling = Standardizer::fit(comm, train.x.view(), shape.samples);
        scaling.apply(&mut train.x);
        scaling.apply(&mut test.x);
        scaling
    });
    let data = LocalData {
        train,
        test,
        shape,
        scaling,
        seconds: mpi::time() - begin,
    };
    describe_setup(config, &plan, comm, &provenance, &data);
    let stall_timeout = config.stall_timeout.filter(|_| startup.thread_multiple);
    if config.stall_timeout.is_some() && stall_timeout.is_none() {
        log::warn!("this MPI library gives no MPI_THREAD_MULTIPLE: the stall watchdog is off");
    }
    let watchdog = Watchdog::start(comm.rank(), comm.size(), stall_timeout);
    let signals = comm.agree(Signals::catch().context("cannot catch SIGTERM/SIGINT"))?;
    let mut trainer = Trainer::new(
        config,
        comm,
        plan,
        &data,
        hash,
        Arc::clone(&watchdog.progress),
        signals,
    );
    if let Some(path) = &config.resume {
        let settings = config.settings(comm.size(), &data.shape);
        let total = trainer.record.step.len();
        let state = checkpoint::read(path, comm.rank(), &settings, hash, total);
        trainer.restore(comm.agree(state)?);
        info_root!(
            comm,
            "resumed from {} at step {}",
            path.display(),
            trainer.next_step + 1
        );
    }
    let timer_overhead_s = 8.0 * timer_cost();

    comm.barrier();
    let begin = mpi::time();
    // Errors of training are alike on every rank (divergence, checkpoints): agreed, printed once.
    let interrupted = comm.agree(trainer.train())?;
    let wall_s = trainer.elapsed_before + comm.max(&[mpi::time() - begin])[0];
    drop(watchdog);

    let last = |values: &[f64]| values.last().copied().unwrap_or(f64::NAN);
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
    let injected = faults.check(comm.rank(), Phase::Write, None);
    comm.agree(injected)?;
    let written = write_run_file(&trainer, &provenance, &startup, summary.clone());
    comm.agree(written)?;
    if let Some((signal, name)) = interrupted {
        if comm.is_root() {
            let saved = match &config.checkpoint {
                Some(path) => format!(
                    "checkpoint {}; continue with --resume {}",
                    path.display(),
                    path.display()
                ),
                None => "no checkpoint (give --out or --checkpoint to keep one)".to_string(),
            };
            eprintln!(
                "mpi-sgd: interrupted by {name}: stopped after step {} of {}; {saved}",
                trainer.next_step,
                trainer.record.step.len()
            );
        }
        return Err(ReportedElsewhere((128 + signal) as u8).into());
    }
    if comm.is_root() {
        println!(
            "{}",
            summary_line(config, comm.size(), &data.shape, &summary)
        );
    }
    Ok(())
}

/// Rank 0, before any work: the run file and the checkpoint can be written, and neither
/// overwrites a file without `--force` (the checkpoint being resumed from may be replaced).
fn check_destinations(config: &Config) -> anyhow::Result<()> {
    if let Some(path) = &config.out {
        output::check_destination("--out", path, config.force)?;
    }
    if let Some(path) = &config.checkpoint {
        let resuming_it = config.resume.as_ref() == Some(path);
        output::check_destination("--checkpoint", path, config.force || resuming_it)?;
    }
    Ok(())
}

/// Steps between two stop votes: a signal stops training within 2 x this many steps, and the
/// vote's cost (measured 1.4 us per vote on 2 ranks, shared memory) is spread over them.
const VOTE_EVERY: usize = 8;

/// One rank's training state: the model, its flat parameter and gradient buffers, and the
/// measurements, all allocated before the first step.
struct Trainer<'a, F: Real> {
    config: &'a Config,
    comm: &'a Comm,
    plan: BatchPlan,
    data: &'a LocalData<F>,
    /// The configuration hash, stored in checkpoints.
    hash: u64,
    model: Box<dyn Model<F>>,
    params: Vec<F>,
    /// This rank's gradient, summed over its rows of the batch.
    grad: Vec<F>,
    /// The allreduce result: the gradient summed over the global batch (with
    /// `--average-every`, the parameters summed over ranks).
    grad_sum: Vec<F>,
    sgd: Sgd<F>,
    allreduce: Box<dyn Allreduce<F>>,
    record: StepRecord,
    /// Seconds of each epoch's evaluation on this rank.
    eval_s: Vec<f64>,
    epochs: EpochMetrics,
    /// The first step not yet taken, and this epoch's loss/accuracy sums so far.
    next_step: usize,
    seen: BatchStats,
    /// Training seconds before a resume; resumes and checkpoints so far.
    elapsed_before: f64,
    history: History,
    progress: Arc<Progress>,
    signals: Signals,
    vote: Vote,
}

impl<'a, F: Real> Trainer<'a, F> {
    fn new(
        config: &'a Config,
        comm: &'a Comm,
        plan: BatchPlan,
        data: &'a LocalData<F>,
        hash: u64,
        progress: Arc<Progress>,
        signals: Signals,
    ) -> Self {
        let model = model::build::<F>(
            config.model,
            &config.widths(&data.shape),
            plan.max_local_batch(comm.rank()),
        );
        let mut params = vec![F::zero(); model.n_params()];
        model.init_params(&mut params, config.seed);
        let params_len = params.len();
        let steps_per_epoch = plan.steps_per_epoch();
        let sgd = Sgd::new(
            SgdSettings {
                lr: config.lr,
                momentum: config.momentum,
                l2: config.l2,
                warmup_steps: (config.warmup_epochs * steps_per_epoch as f64).round() as usize,
            },
            params.len(),
        );
        Self {
            config,
            comm,
            plan,
            data,
            hash,
            model,
            grad: vec![F::zero(); params.len()],
            grad_sum: vec![F::zero(); params.len()],
            params,
            sgd,
            allreduce: config.allreduce.build::<F>(params_len),
            record: StepRecord::new(config.epochs * steps_per_epoch),
            eval_s: Vec::with_capacity(config.epochs),
            epochs: EpochMetrics::default(),
            next_step: 0,
            seen: BatchStats::default(),
            elapsed_before: 0.0,
            history: History::default(),
            progress,
            signals,
            vote: Vote::new(),
        }
    }

    /// Continues from a checkpoint's state.
    fn restore(&mut self, state: TrainingState<F>) {
        self.next_step = state.next_step;
        self.params = state.params;
        self.sgd.velocity = state.velocity;
        self.seen = state.seen;
        self.record = state.record;
        self.eval_s = state.eval_s;
        self.epochs = state.epochs;
        self.elapsed_before = state.elapsed_s;
        self.history = state.history;
        self.history.restarts.push(self.next_step as u64);
        // The checkpoint resumed from cannot hold its own writing time.
        self.history.checkpoint_s.push(f64::NAN);
        self.history.checkpoint_steps.push(self.next_step as u64);
    }

    /// Collective: the remaining steps, each epoch's evaluation, and after each step the stop
    /// vote and checkpoints. Returns the signal that stopped training early, if any; errors are
    /// agreed (divergence, checkpoints).
    fn train(&mut self) -> anyhow::Result<Option<(i32, &'static str)>> {
        let total = self.record.step.len();
        let steps_per_epoch = self.plan.steps_per_epoch();
        let loop_begin = mpi::time();
        let mut last_checkpoint = loop_begin;
        for step in self.next_step..total {
            let (epoch, s) = (step / steps_per_epoch, step % steps_per_epoch);
            let stats = match self.config.average_every {
                None => self.gradient_averaging_step(step, s)?,
                Some(every) => self.local_step(step, s, every)?,
            };
            self.seen += stats;
            if self.config.log_every > 0 && (step + 1) % self.config.log_every == 0 {
                let rows = self.plan.batch_rows(s).len() as f64;
                let loss = self.comm.sum(&[stats.loss_sum])[0] / rows;
                info_root!(self.comm, "step {}: batch loss {loss:.6}", step + 1);
            }
            if s + 1 == steps_per_epoch {
                self.evaluate(epoch, step);
            }
            self.next_step = step + 1;

            let mut agreed = 0;
            if (step + 1) % VOTE_EVERY == 0 {
                let mut local = self.signals.bits();
                let since = mpi::time() - last_checkpoint;
                if self.comm.is_root() && self.config.checkpoint_seconds.is_some_and(|t| since >= t)
                {
                    local |= CHECKPOINT_BIT;
                }
                self.progress.waiting(step, Activity::StopVote);
                agreed = self.vote.exchange(local);
            }
            let every = self.config.checkpoint_every;
            let due = agreed != 0 || every.is_some_and(|k| (step + 1) % k == 0);
            if due && step + 1 < total {
                if let Some(path) = &self.config.checkpoint {
                    self.checkpoint(path, step, mpi::time() - loop_begin)?;
                    last_checkpoint = mpi::time();
                }
            }
            if let Some(signal) = signal_of(agreed).filter(|_| step + 1 < total) {
                return Ok(Some(signal));
            }
        }
        self.vote.finish();
        Ok(None)
    }

    /// Collective: writes the state after `step` to the checkpoint file.
    fn checkpoint(&mut self, path: &Path, step: usize, loop_s: f64) -> anyhow::Result<()> {
        self.progress.working(step, Activity::Checkpoint);
        let begin = mpi::time();
        let injected = self
            .config
            .faults
            .check(self.comm.rank(), Phase::Checkpoint, Some(step));
        self.comm.agree(injected)?;
        let settings = self.config.settings(self.comm.size(), &self.data.shape);
        let state = TrainingState {
            next_step: self.next_step,
            params: self.params.clone(),
            velocity: self.sgd.velocity.clone(),
            seen: self.seen,
            record: self.record.clone(),
            eval_s: self.eval_s.clone(),
            epochs: self.epochs.clone(),
            elapsed_s: self.elapsed_before + loop_s,
            history: self.history.clone(),
        };
        checkpoint::write(self.comm, path, &settings, self.hash, &state)?;
        let seconds = mpi::time() - begin;
        self.history.checkpoint_s.push(seconds);
        self.history.checkpoint_steps.push(self.next_step as u64);
        info_root!(
            self.comm,
            "checkpoint after step {} in {seconds:.3} s: {}",
            self.next_step,
            path.display()
        );
        Ok(())
    }

    /// Rows of the steps taken so far (every epoch, resumed ones included).
    fn rows_trained(&self) -> usize {
        let steps_per_epoch = self.plan.steps_per_epoch();
        let partial: usize = (0..self.next_step % steps_per_epoch)
            .map(|s| self.plan.batch_rows(s).len())
            .sum();
        self.next_step / steps_per_epoch * self.data.shape.samples + partial
    }

    /// A failure inside a step, where the other ranks already wait in (or soon enter) the
    /// allreduce: nothing can be agreed any more, so the whole job ends with MPI_Abort.
    fn fail_if_planned(&self, phase: Phase, step: usize) {
        if let Err(error) = self
            .config
            .faults
            .check(self.comm.rank(), phase, Some(step))
        {
            self.comm.abort(&error);
        }
    }

    /// Synchronous SGD: allreduce the gradient, then the same update on every rank.
    fn gradient_averaging_step(&mut self, step: usize, s: usize) -> anyhow::Result<BatchStats> {
        self.progress.working(step, Activity::Compute);
        self.fail_if_planned(Phase::Compute, step);
        let start = mpi::time();
        let (x, y) = self
            .data
            .train
            .slice(self.plan.local_batch(self.comm.rank(), s));
        let stats = self.model.loss_and_grad(&self.params, x, y, &mut self.grad);
        let computed = mpi::time();
        self.fail_if_planned(Phase::Allreduce, step);
        self.progress.waiting(step, Activity::Allreduce);
        let traffic =
            self.allreduce
                .allreduce_sum(self.comm.world(), &self.grad, &mut self.grad_sum);
        let reduced = mpi::time();
        self.progress.working(step, Activity::Update);
        self.fail_if_planned(Phase::Update, step);
        self.check_finite(step, "gradient")?;
        let batch_rows = self.plan.batch_rows(s).len();
        self.sgd
            .step(step, &mut self.params, &self.grad_sum, batch_rows);
        let end = mpi::time();
        let seconds = PhaseSeconds {
            compute: computed - start,
            allreduce: reduced - computed,
            update: end - reduced,
        };
        self.record.record(step, seconds, traffic, stats.loss_sum);
        Ok(stats)
    }

    /// Local SGD: each rank updates from its own rows; every `every` steps (and after the last
    /// step, so the replicas end identical) the parameters are averaged across ranks.
    fn local_step(&mut self, step: usize, s: usize, every: usize) -> anyhow::Result<BatchStats> {
        self.progress.working(step, Activity::Compute);
        self.fail_if_planned(Phase::Compute, step);
        let start = mpi::time();
        let rows = self.plan.local_batch(self.comm.rank(), s);
        let local_rows = rows.len().max(1);
        let (x, y) = self.data.train.slice(rows);
        let stats = self.model.loss_and_grad(&self.params, x, y, &mut self.grad);
        let computed = mpi::time();
        self.progress.working(step, Activity::Update);
        self.fail_if_planned(Phase::Update, step);
        self.sgd
            .step(step, &mut self.params, &self.grad, local_rows);
        let updated = mpi::time();
        let last = step + 1 == self.record.step.len();
        let mut traffic = Traffic::default();
        if last || (every > 0 && (step + 1) % every == 0) {
            self.fail_if_planned(Phase::Allreduce, step);
            self.progress.waiting(step, Activity::Allreduce);
            traffic =
                self.allreduce
                    .allreduce_sum(self.comm.world(), &self.params, &mut self.grad_sum);
            let share = F::from_f64(1.0 / self.comm.size() as f64);
            for (p, &sum) in self.params.iter_mut().zip(&self.grad_sum) {
                *p = sum * share;
            }
            self.check_finite(step, "parameters")?;
        }
        let end = mpi::time();
        let seconds = PhaseSeconds {
            compute: computed - start,
            allreduce: end - updated,
            update: updated - computed,
        };
        self.record.record(step, seconds, traffic, stats.loss_sum);
        Ok(stats)
    }

    /// Fails if the allreduce result (`grad_sum`: the combined gradient, or the summed
    /// parameters) holds NaN or Inf. Every rank holds the same bits of it, so every rank stops
    /// at the same step without any extra communication.
    fn check_finite(&self, step: usize, combined: &str) -> anyhow::Result<()> {
        if self.grad_sum.iter().all(|v| v.is_finite()) {
            return Ok(());
        }
        let epoch = step / self.plan.steps_per_epoch();
        anyhow::bail!(
            "training diverged at step {} (epoch {}): the combined {combined} holds NaN or Inf; \
             lower --lr (now {:?}) or add --warmup-epochs",
            step + 1,
            epoch + 1,
            self.config.lr
        )
    }

    /// Test-set evaluation and one allreduce of the epoch's loss and accuracy sums.
    fn evaluate(&mut self, epoch: usize, step: usize) {
        self.progress.working(step, Activity::Evaluation);
        let seen = std::mem::take(&mut self.seen);
        let eval_begin = mpi::time();
        let test = &self.data.test;
        let tested = self.model.evaluate(&self.params, test.x.view(), &test.y);
        self.progress.waiting(step, Activity::Evaluation);
        let sums = self.comm.sum(&[
            seen.loss_sum,
            seen.correct,
            seen.rows,
            tested.loss_sum,
            tested.correct,
            tested.rows,
        ]);
        let eval_end = mpi::time();
        self.eval_s.push(eval_end - eval_begin);
        let (seen, tested) = (stats_from(&sums[..3]), stats_from(&sums[3..]));
        self.epochs.train_loss.push(seen.mean_loss());
        self.epochs.train_accuracy.push(seen.accuracy());
        self.epochs.test_loss.push(tested.mean_loss());
        self.epochs.test_accuracy.push(tested.accuracy());
        let spe = self.plan.steps_per_epoch();
        let steps_s: f64 = self.record.step[epoch * spe..(epoch + 1) * spe]
            .iter()
            .sum();
        let seconds = steps_s + (eval_end - eval_begin);
        info_root!(
            self.comm,
            "epoch {}/{}: loss {:.6}  train_acc {:.4}  test_acc {:.4}  {:.3} s  {:.3e} samples/s",
            epoch + 1,
            self.config.epochs,
            seen.mean_loss(),
            seen.accuracy(),
            tested.accuracy(),
            seconds,
            self.data.shape.samples as f64 / seconds
        );
    }
}

fn describe_setup<F: Real>(
    config: &Config,
    plan: &BatchPlan,
    comm: &Comm,
    provenance: &Provenance,
    data: &LocalData<F>,
) {
    let hosts = provenance.distinct_hosts();
    info_root!(
        comm,
        "{} ranks on {} host(s) ({}); {}; BLAS threads per rank: {}",
        comm.size(),
        hosts.len(),
        hosts.join(","),
        provenance.mpi_library.lines().next().unwrap_or_default(),
        provenance.blas_threads
    );
    info_root!(
        comm,
        "{} on {} x {} rows of {} ({} test), {}; global batch {} ({}..{} rows per rank), {} steps/epoch, {} epochs, allreduce {}",
        config.model.name(),
        data.shape.samples,
        data.shape.features,
        config.data,
        data.shape.test_samples,
        F::NAME,
        config.global_batch(comm.size()),
        plan.max_local_batch(comm.size() - 1),
        plan.max_local_batch(0),
        plan.steps_per_epoch(),
        config.epochs,
        config.allreduce.name()
    );
    let mib = (data.train.bytes() + data.test.bytes()) as f64 / (1 << 20) as f64;
    let line = format!(
        "rank {}: {} training rows, {} test rows, {mib:.1} MiB of data, loaded in {:.3} s",
        comm.rank(),
        data.train.rows(),
        data.test.rows(),
        data.seconds
    );
    if comm.is_root() {
        log::info!("{line}");
    } else {
        log::debug!("{line}");
    }
}

fn stats_from(sums: &[f64]) -> BatchStats {
    BatchStats {
        loss_sum: sums[0],
        correct: sums[1],
        rows: sums[2],
    }
}

/// Collective: a usage error unless every rank runs the same build with the same resolved
/// options (a stale binary on one node, or an MPMD launch with different options, would
/// otherwise train something no one asked for). Rank 0 names the ranks that differ from it.
fn same_configuration(config: &Config, shape: &DataShape, comm: &Comm) -> anyhow::Result<u64> {
    let mut hasher = DefaultHasher::new();
    format!("{:?}", config.settings(comm.size(), shape)).hash(&mut hasher);
    (env!("CARGO_PKG_VERSION"), env!("MPI_SGD_GIT_REVISION")).hash(&mut hasher);
    let hash = hasher.finish();
    let everyone = comm.gather(&[hash]);
    if comm.same_everywhere(hash) {
        return Ok(hash);
    }
    match everyone {
        Some(hashes) => {
            let odd: Vec<String> = (0..hashes.len())
                .filter(|&r| hashes[r] != hashes[0])
                .map(|r| r.to_string())
                .collect();
            Err(usage(format!(
                "ranks {} were started with other options or another build than rank 0; \
                 start every rank with the same command and binary",
                odd.join(",")
            )))
        }
        None => Err(ReportedElsewhere(2).into()),
    }
}

/// Seconds one `MPI_Wtime` read costs, averaged over many.
fn timer_cost() -> f64 {
    const READS: usize = 10_000;
    let begin = mpi::time();
    let mut last = begin;
    for _ in 0..READS {
        last = std::hint::black_box(mpi::time());
    }
    (last - begin) / READS as f64
}

/// Collective (gathers); rank 0 writes the file when `--out` was given.
fn write_run_file<F: Real>(
    trainer: &Trainer<F>,
    provenance: &Provenance,
    startup: &Startup,
    summary: Summary,
) -> anyhow::Result<()> {
    let Trainer {
        config,
        comm,
        plan,
        data,
        ..
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
    let (Some(steps), Some(eval_s), Some(rows), Some(test_rows), Some(mpi_init_s), Some(data_s)) =
        (steps, eval_s, rows, test_rows, mpi_init_s, data_s)
    else {
        return Ok(()); // not rank 0
    };
    let steps_per_epoch = plan.steps_per_epoch();
    let loss = steps
        .loss_sum
        .rows()
        .into_iter()
        .enumerate()
        .map(|(t, by_rank)| by_rank.sum() / plan.batch_rows(t % steps_per_epoch).len() as f64)
        .collect();
    let report = RunReport {
        provenance,
        settings: config.settings(comm.size(), &data.shape),
        allreduce_counting: config.allreduce.traffic_counting(),
        rows,
        test_rows,
        mpi_init_s,
        data_s,
        steps,
        eval_s,
        loss,
        epochs: trainer.epochs.clone(),
        params: &trainer.params,
        layout: trainer.model.layout(),
        scaling: data.scaling.as_ref(),
        resumed: &trainer.history,
        summary,
    };
    output::write(path, &report)?;
    info_root!(comm, "wrote {}", path.display());
    Ok(())
}

/// The last line on stdout: `key=value` pairs for scripts.
fn summary_line(config: &Config, ranks: usize, shape: &DataShape, s: &Summary) -> String {
    let out = config
        .out
        .as_ref()
        .map_or("-".to_string(), |p| p.display().to_string());
    format!(
        "ranks={ranks} model={} allreduce={} dtype={} samples={} features={} batch={} epochs={} steps={} \
         wall_s={:.6} samples_per_s={:.1} loss={:.6} train_accuracy={:.6} test_accuracy={:.6} out={out}",
        config.model.name(),
        config.allreduce.name(),
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
