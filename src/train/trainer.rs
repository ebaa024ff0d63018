//! One rank's training state and the loop over the steps, which reads like the step itself:
//!
//! ```text
//! for each step:  compute | combine | update      (step.rs)
//!                 epoch end: evaluate             (control.rs)
//!                 every VOTE_EVERY steps: stop vote; checkpoints when due
//! ```
//!
//! Not what a step does (`step.rs`) nor what happens between steps (`control.rs`).

use std::sync::Arc;

use super::elastic::Elastic;
use super::federated::{Clients, Federated};
use super::parameter_server::ParameterServer;
use super::reproducible::ExactGradient;
use super::setup::LocalData;
use super::step::Schedule;
use crate::clock::PhaseClock;
use crate::comm::overlap::Overlap;
use crate::comm::{Allreduce, Comm};
use crate::interrupt::{Signals, Vote};
use crate::kinds::TrainingAlgorithm;
use crate::model::{self, BatchStats, Model};
use crate::optim::Optimizer;
use crate::partition::BatchPlan;
use crate::real::Real;
use crate::record::{EpochMetrics, History, StepRecord};
use crate::runfile::checkpoint::TrainingState;
use crate::settings::TrainSettings;
use crate::watchdog::Progress;

/// One rank's training state: the model, its flat parameter and gradient buffers, and the
/// measurements, all allocated before the first step.
pub struct Trainer<'a, F: Real> {
    pub config: &'a TrainSettings,
    pub comm: &'a Comm,
    pub plan: BatchPlan,
    pub data: &'a LocalData<F>,
    /// The configuration hash, stored in checkpoints.
    pub hash: u64,
    pub schedule: Schedule,
    pub model: Box<dyn Model<F>>,
    pub params: Vec<F>,
    /// This rank's gradient, summed over its rows of the batch.
    pub grad: Vec<F>,
    /// The allreduce result: the gradient summed over the global batch, or with local SGD
    /// the parameters summed over ranks.
    pub combined: Vec<F>,
    pub optimizer: Optimizer<F>,
    pub allreduce: Box<dyn Allreduce<F>>,
    /// `--overlap`: the gradient's allreduce bucket by bucket during the backward pass.
    pub overlap: Option<Overlap<F>>,
    /// `--reproducible`: the gradient of fixed blocks of rows, summed exactly.
    pub exact: Option<ExactGradient>,
    /// `--algorithm easgd`: the centre the local models are pulled toward.
    pub elastic: Option<Elastic<F>>,
    /// `--algorithm fedavg`: this rank's clients (set by [`Trainer::start_federated`]).
    pub federated: Option<Federated<F>>,
    /// `--algorithm async-ps`: this rank's part, a server's or a worker's.
    pub parameter_server: Option<ParameterServer<F>>,
    pub clock: PhaseClock<'a>,
    pub record: StepRecord,
    /// Seconds of each epoch's evaluation on this rank.
    pub eval_s: Vec<f64>,
    pub epochs: EpochMetrics,
    /// The first step not yet taken, and this epoch's loss/accuracy sums so far.
    pub next_step: usize,
    pub seen: BatchStats,
    /// Training seconds before a resume; resumes and checkpoints so far.
    pub elapsed_before: f64,
    pub history: History,
    pub signals: Signals,
    pub vote: Vote,
}

impl<'a, F: Real> Trainer<'a, F> {
    pub fn new(
        config: &'a TrainSettings,
        comm: &'a Comm,
        plan: BatchPlan,
        data: &'a LocalData<F>,
        hash: u64,
        progress: Arc<Progress>,
        signals: Signals,
    ) -> Self {
        let widths = config.widths(&data.shape);
        let schedule = Schedule::from_settings(config.algorithm, config.average_every);
        // A fedavg client's minibatch is --batch rows; the others' is this rank's share.
        let max_rows = match schedule {
            Schedule::FederatedRounds => config.batch,
            // Async-ps's servers hold no training rows (they evaluate like a worker).
            _ => plan.max_local_batch(config.data_rank(comm.rank()).unwrap_or(0)),
        };
        let model = model::build::<F>(config.model, &widths, max_rows);
        let mut params = vec![F::zero(); model.n_params()];
        model.init_params(&mut params, config.seed);
        let n = params.len();
        let steps_per_epoch = steps_per_epoch(schedule, &plan);
        let exact = config
            .reproducible
            .then(|| ExactGradient::new(config.allreduce, n));
        let elastic = (config.algorithm == TrainingAlgorithm::Easgd)
            .then(|| Elastic::new(config.elastic_alpha(comm.size()), &params));
        Self {
            config,
            comm,
            plan,
            data,
            hash,
            schedule,
            model,
            grad: vec![F::zero(); n],
            combined: vec![F::zero(); n],
            params,
            optimizer: Optimizer::new(config.rule(), config.schedule(steps_per_epoch), n),
            allreduce: config.allreduce.build::<F>(n),
            overlap: None,
            exact,
            elastic,
            federated: None,
            parameter_server: (schedule == Schedule::Asynchronous)
                .then(|| ParameterServer::new(config, comm, n, steps_per_epoch)),
            clock: PhaseClock::new(comm, config.faults, progress),
            record: StepRecord::new(config.epochs * steps_per_epoch),
            eval_s: Vec::with_capacity(config.epochs),
            epochs: EpochMetrics::default(),
            next_step: 0,
            seen: BatchStats::default(),
            elapsed_before: 0.0,
            history: History::default(),
            signals,
            vote: Vote::new(),
        }
    }

    /// Collective (it duplicates the communicator): with `--overlap`, makes the bucketed
    /// allreduce; fails where it would need MPI_THREAD_MULTIPLE and `thread_multiple` is false.
    pub fn start_overlap(&mut self, thread_multiple: bool) -> anyhow::Result<()> {
        if let Some(bucket_bytes) = self.config.overlap {
            let overlap = Overlap::new(
                self.comm.world(),
                self.config.allreduce,
                self.params.len(),
                bucket_bytes,
                thread_multiple,
            )?;
            self.overlap = Some(overlap);
        }
        Ok(())
    }

    /// With `--algorithm fedavg`, the clients `Clients::assign` made.
    pub fn start_federated(&mut self, clients: Clients) {
        self.federated = Some(Federated::new(clients, self.config, self.params.len()));
    }

    /// Steps of an epoch: the batch plan's; one round for fedavg.
    pub fn steps_per_epoch(&self) -> usize {
        steps_per_epoch(self.schedule, &self.plan)
    }

    /// Continues from a checkpoint's state.
    pub fn restore(&mut self, state: TrainingState<F>) {
        self.next_step = state.next_step;
        self.params = state.params;
        self.optimizer.state = state.optimizer_state;
        if let Some(elastic) = &mut self.elastic {
            elastic.centre = state.centre;
        }
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
    pub fn train(&mut self) -> anyhow::Result<Option<(i32, &'static str)>> {
        if self.schedule == Schedule::Asynchronous {
            return self.train_asynchronously();
        }
        let loop_begin = mpi::time();
        let mut last_checkpoint = loop_begin;
        for step in self.next_step..self.record.steps() {
            let stats = self.step(step)?;
            self.seen += stats;
            self.log_progress(step, &stats);
            if (step + 1) % self.steps_per_epoch() == 0 {
                self.evaluate(step)?;
            }
            self.next_step = step + 1;
            let stop = self.control(step, loop_begin, &mut last_checkpoint)?;
            if stop.is_some() {
                self.take_final_model();
                return Ok(stop);
            }
        }
        self.vote.finish();
        self.take_final_model();
        Ok(None)
    }

    /// The parameters the run file holds: EASGD's centre; the parameters themselves otherwise.
    /// After the checkpoints, which keep the local models.
    fn take_final_model(&mut self) {
        if let Some(elastic) = &self.elastic {
            self.params.copy_from_slice(&elastic.centre);
        }
    }

    /// Rows step `step` trained on, over all ranks: its global batch; for fedavg, the drawn
    /// clients' rows times the local epochs.
    pub fn rows_of_step(&self, step: usize) -> usize {
        match &self.federated {
            Some(federated) => federated.rows_of_round(step),
            None => self
                .plan
                .batch_rows(step % self.plan.steps_per_epoch())
                .len(),
        }
    }

    /// Rows of the steps taken so far (every epoch, resumed ones included).
    pub fn rows_trained(&self) -> usize {
        if let Some(federated) = &self.federated {
            return federated.rows_trained(self.next_step);
        }
        let steps_per_epoch = self.plan.steps_per_epoch();
        let partial: usize = (0..self.next_step % steps_per_epoch)
            .map(|s| self.plan.batch_rows(s).len())
            .sum();
        self.next_step / steps_per_epoch * self.data.shape.samples + partial
    }
}

/// Steps of an epoch under `schedule`: one round for fedavg, the plan's batches otherwise.
fn steps_per_epoch(schedule: Schedule, plan: &BatchPlan) -> usize {
    match schedule {
        Schedule::FederatedRounds => 1,
        _ => plan.steps_per_epoch(),
    }
}
