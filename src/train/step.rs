//! The training step, the one place where a rank's work meets the others':
//!
//! ```text
//! compute   forward + backward on my share of the global batch -> grad (summed over my rows)
//! combine   what the schedule says for this step:
//!             gradient averaging: allreduce(grad) -> combined, before the update
//!             local SGD:          nothing, or allreduce(params) / P after the update
//!             EASGD:              nothing, or allreduce(params) -> the elastic update
//! update    the optimiser's step, identical on every rank (the same combined bits)
//! ```
//! The gradient's combination comes in three forms (`gradient_sum`): after the backward pass
//! (the default), overlapped with it (`--overlap`), or exact (`--reproducible`).
//! Gradient averaging, local SGD (`--average-every K`) and EASGD are [`Schedule`]s of this one
//! step. Each phase boundary is one [`crate::clock::PhaseClock::enter`]; nothing else happens
//! inside a step: no allocation, no I/O, no logging.

use super::trainer::Trainer;
use crate::comm::overlap::Finished;
use crate::kinds::TrainingAlgorithm;
use crate::model::BatchStats;
use crate::phase::Phase;
use crate::real::Real;
use ndarray::ArrayView2;

/// What a step combines across ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// The gradient, summed over the global batch, before the update.
    Gradient,
    /// The parameters, averaged over ranks, after the update.
    Parameters,
    /// The parameters, summed over ranks, for the elastic update after the update.
    Elastic,
}

impl Combine {
    fn name(self) -> &'static str {
        match self {
            Combine::Gradient => "gradient",
            Combine::Parameters => "parameters",
            Combine::Elastic => "elastic parameters",
        }
    }
}

/// When the ranks combine what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Synchronous SGD: the gradient every step.
    GradientAveraging,
    /// Local SGD: each rank steps on its own rows; the parameters every `every` steps (0:
    /// never) and after the last step, so the replicas end identical.
    LocalSgd { every: usize },
    /// EASGD: each rank steps on its own rows; the elastic update every `every` steps.
    Elastic { every: usize },
    /// Federated averaging: every step is a round of local training by the drawn clients,
    /// ending with their weighted average (`federated.rs`).
    FederatedRounds,
    /// Asynchronous SGD: workers push gradients to parameter servers, no step combines
    /// anything across all ranks (`parameter_server.rs`).
    Asynchronous,
}

impl Schedule {
    /// `--algorithm` and `--average-every`: local SGD when given with sync.
    pub fn from_settings(algorithm: TrainingAlgorithm, average_every: Option<usize>) -> Self {
        match (algorithm, average_every) {
            (TrainingAlgorithm::Easgd, every) => Schedule::Elastic {
                every: every.unwrap_or(1),
            },
            (TrainingAlgorithm::Sync, None) => Schedule::GradientAveraging,
            (TrainingAlgorithm::Sync, Some(every)) => Schedule::LocalSgd { every },
            (TrainingAlgorithm::Fedavg, _) => Schedule::FederatedRounds,
            (TrainingAlgorithm::AsyncPs, _) => Schedule::Asynchronous,
        }
    }

    /// What step `step` (0-based) of `total` combines, if anything.
    pub fn at(self, step: usize, total: usize) -> Option<Combine> {
        match self {
            Schedule::GradientAveraging => Some(Combine::Gradient),
            Schedule::LocalSgd { every } => {
                let due = every > 0 && (step + 1).is_multiple_of(every);
                (due || step + 1 == total).then_some(Combine::Parameters)
            }
            Schedule::Elastic { every } => {
                (step + 1).is_multiple_of(every).then_some(Combine::Elastic)
            }
            Schedule::FederatedRounds => Some(Combine::Parameters),
            Schedule::Asynchronous => None,
        }
    }
}

impl<F: Real> Trainer<'_, F> {
    /// One step: compute, combine (as the schedule says), update. Errors (divergence) are the
    /// same on every rank: every rank holds the same combined bits.
    pub(super) fn step(&mut self, step: usize) -> anyhow::Result<BatchStats> {
        if self.schedule == Schedule::FederatedRounds {
            return self.federated_round(step);
        }
        let combine = self.schedule.at(step, self.record.steps());
        let s = step % self.steps_per_epoch();

        self.clock.enter(step, Phase::Compute)?;
        let local = self.plan.local_batch(self.comm.rank(), s);
        let local_rows = local.len();
        let batch = self.data.train.slice(local);
        let (stats, combined) = match combine {
            Some(Combine::Gradient) => self.gradient_sum(step, batch)?,
            _ => {
                let (x, y) = batch;
                let stats = self.model.loss_and_grad(&self.params, x, y, &mut self.grad);
                (stats, Finished::default())
            }
        };
        self.clock.enter(step, Phase::Update)?;
        match combine {
            Some(Combine::Gradient) => {
                self.check_finite(step, Combine::Gradient)?;
                let rows = self.plan.batch_rows(s).len();
                self.optimizer
                    .step(step, &mut self.params, &self.combined, rows);
            }
            _ => {
                self.optimizer
                    .step(step, &mut self.params, &self.grad, local_rows.max(1));
            }
        }
        let mut traffic = combined.traffic;
        if let Some(kind @ (Combine::Parameters | Combine::Elastic)) = combine {
            self.clock.enter(step, Phase::Allreduce)?;
            traffic =
                self.allreduce
                    .allreduce_sum(self.comm.world(), &self.params, &mut self.combined);
            let ranks = self.comm.size();
            match &mut self.elastic {
                Some(elastic) => elastic.pull(&mut self.params, &self.combined, ranks),
                None => {
                    let share = F::from_f64(1.0 / ranks as f64);
                    for (p, &sum) in self.params.iter_mut().zip(&self.combined) {
                        *p = sum * share;
                    }
                }
            }
            self.check_finite(step, kind)?;
        }
        let seconds = self.clock.finish_step();
        self.record.record(
            step,
            seconds,
            combined.overlapped_s,
            traffic,
            stats.loss_sum,
        );
        Ok(stats)
    }

    /// The compute phase and the gradient's allreduce into `combined`, in one of three ways:
    /// the whole gradient after the backward pass; bucket by bucket during it (`--overlap`);
    /// or block by block, summed exactly (`--reproducible`).
    fn gradient_sum(
        &mut self,
        step: usize,
        (x, y): (ArrayView2<F>, &[u32]),
    ) -> anyhow::Result<(BatchStats, Finished)> {
        let world = self.comm.world();
        if let Some(exact) = &mut self.exact {
            let grain = self.plan.grain();
            let stats = exact.compute(
                self.model.as_mut(),
                &self.params,
                (x, y),
                grain,
                &mut self.grad,
            );
            self.clock.enter(step, Phase::Allreduce)?;
            let traffic = exact.combine(world, &mut self.combined);
            return Ok((stats, Finished::after_compute(traffic)));
        }
        if let Some(overlap) = &mut self.overlap {
            // SAFETY: `combined` is left alone until `finish`, and the model does not write
            // a part of the gradient again once it has announced it final.
            unsafe { overlap.begin(&mut self.combined) };
            let stats = self.model.loss_and_grad_layered(
                &self.params,
                x,
                y,
                &mut self.grad,
                &mut |start, tail| overlap.ready(start, tail),
            );
            let compute_end = self.clock.enter(step, Phase::Allreduce)?;
            return Ok((stats, overlap.finish(compute_end)));
        }
        let stats = self.model.loss_and_grad(&self.params, x, y, &mut self.grad);
        self.clock.enter(step, Phase::Allreduce)?;
        let traffic = self
            .allreduce
            .allreduce_sum(world, &self.grad, &mut self.combined);
        Ok((stats, Finished::after_compute(traffic)))
    }

    /// Fails if the allreduce result holds NaN or Inf. Every rank holds the same bits of it,
    /// so every rank stops at the same step without any extra communication.
    pub(super) fn check_finite(&self, step: usize, combined: Combine) -> anyhow::Result<()> {
        if self.combined.iter().all(|v| v.is_finite()) {
            return Ok(());
        }
        Err(self.diverged(step, &format!("the combined {}", combined.name())))
    }

    /// The divergence error at `step`: `what` holds NaN or Inf.
    pub(super) fn diverged(&self, step: usize, what: &str) -> anyhow::Error {
        let epoch = step / self.steps_per_epoch();
        anyhow::anyhow!(
            "training diverged at step {} (epoch {}): {what} holds NaN or Inf; \
             lower --lr (now {:?}) or add --warmup-epochs",
            step + 1,
            epoch + 1,
            self.config.lr
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_sgd_averages_every_k_steps_and_after_the_last() {
        let sync = |every| Schedule::from_settings(TrainingAlgorithm::Sync, every);
        let local = sync(Some(3));
        let averaged: Vec<usize> = (0..8).filter(|&t| local.at(t, 8).is_some()).collect();
        assert_eq!(averaged, [2, 5, 7]);
        let once = sync(Some(0));
        assert_eq!((0..5).filter(|&t| once.at(t, 5).is_some()).count(), 1);
        assert!((0..5).all(|t| sync(None).at(t, 5) == Some(Combine::Gradient)));
        let elastic = Schedule::from_settings(TrainingAlgorithm::Easgd, Some(4));
        let pulled: Vec<usize> = (0..10).filter(|&t| elastic.at(t, 10).is_some()).collect();
        assert_eq!(
            pulled,
            [3, 7],
            "every 4th step; the model is the centre, not the mean"
        );
    }
}
