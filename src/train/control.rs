//! What the loop does between steps, outside the timed phases: the `--log-every` line, each
//! epoch's evaluation, the agreed stop vote (signals, `--checkpoint-seconds`) and checkpoints.
//!
//! Not the step itself (`step.rs`): nothing here is timed as a phase.

use std::path::Path;

use super::trainer::Trainer;
use crate::info_root;
use crate::interrupt::{signal_of, CHECKPOINT_BIT};
use crate::model::BatchStats;
use crate::phase::Phase;
use crate::real::Real;
use crate::runfile::checkpoint::{self, TrainingState};

/// Steps between two stop votes: a signal stops training within 2 x this many steps, and the
/// vote's cost (measured 1.4 us per vote on 2 ranks, shared memory) is spread over them.
const VOTE_EVERY: usize = 8;

impl<F: Real> Trainer<'_, F> {
    /// Every `--log-every` steps: the global loss of the step's batch (collective).
    pub(super) fn log_progress(&self, step: usize, stats: &BatchStats) {
        let every = self.config.log_every;
        if every == 0 || !(step + 1).is_multiple_of(every) {
            return;
        }
        let sums = self.comm.sum(&[stats.loss_sum, stats.rows]);
        let loss = sums[0] / sums[1];
        info_root!(self.comm, "step {}: batch loss {loss:.6}", step + 1);
    }

    /// Collective, after `step`: the stop vote every [`VOTE_EVERY`] steps and a checkpoint when
    /// one is due. Returns the signal that stops training, if any.
    pub(super) fn control(
        &mut self,
        step: usize,
        loop_begin: f64,
        last_checkpoint: &mut f64,
    ) -> anyhow::Result<Option<(i32, &'static str)>> {
        let mut agreed = 0;
        if (step + 1).is_multiple_of(VOTE_EVERY) {
            let mut local = self.signals.bits();
            let since = mpi::time() - *last_checkpoint;
            let seconds = self.config.checkpoint_seconds;
            if self.comm.is_root() && seconds.is_some_and(|t| since >= t) {
                local |= CHECKPOINT_BIT;
                // Asked once: the vote's result comes at the next vote, and this one must not
                // ask again for a second checkpoint right after the first.
                *last_checkpoint = mpi::time();
            }
            self.clock.enter(step, Phase::StopVote)?;
            agreed = self.vote.exchange(local);
        }
        let every = self.config.checkpoint_every;
        let due = agreed != 0 || every.is_some_and(|k| (step + 1).is_multiple_of(k));
        let total = self.record.steps();
        if due && step + 1 < total {
            if let Some(path) = &self.config.checkpoint {
                self.checkpoint(path, step, mpi::time() - loop_begin)?;
                *last_checkpoint = mpi::time();
            }
        }
        Ok(signal_of(agreed).filter(|_| step + 1 < total))
    }

    /// Collective: writes the state after `step` to the checkpoint file.
    fn checkpoint(&mut self, path: &Path, step: usize, loop_s: f64) -> anyhow::Result<()> {
        let begin = mpi::time();
        let injected = self.clock.enter(step, Phase::Checkpoint);
        // Every part of a checkpoint waits on the other ranks (the gathers to rank 0, its
        // write): a rank that stops arriving here is a stall like one in the allreduce.
        self.clock.wait_for_others();
        self.comm.agree(injected)?;
        let settings = self.config.attributes(self.comm.size(), &self.data.shape);
        let state = TrainingState {
            next_step: self.next_step,
            params: self.params.clone(),
            optimizer_state: self.optimizer.state.clone(),
            centre: self
                .elastic
                .as_ref()
                .map_or(Vec::new(), |e| e.centre.clone()),
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

    /// Collective, after the last step of an epoch: test-set evaluation and one allreduce of
    /// the epoch's loss and accuracy sums.
    pub(super) fn evaluate(&mut self, step: usize) -> anyhow::Result<()> {
        self.clock.enter(step, Phase::Evaluation)?;
        let seen = std::mem::take(&mut self.seen);
        let eval_begin = mpi::time();
        let test = &self.data.test;
        // EASGD's model is the centre; the others' are the parameters.
        let params = self.elastic.as_ref().map_or(&self.params, |e| &e.centre);
        let tested = self.model.evaluate(params, test.x.view(), &test.y);
        self.clock.wait_for_others();
        let sums = self.comm.sum(&[
            seen.loss_sum,
            seen.correct,
            seen.rows,
            tested.loss_sum,
            tested.correct,
            tested.rows,
        ]);
        let eval_s = mpi::time() - eval_begin;
        self.eval_s.push(eval_s);
        let (seen, tested) = (stats_from(&sums[..3]), stats_from(&sums[3..]));
        // The gradient can stay finite while the loss overflows (logits beyond the type's
        // range); the sums are the same on every rank, so every rank stops here.
        if !(seen.loss_sum.is_finite() && tested.loss_sum.is_finite()) {
            return Err(self.diverged(step, "the epoch's loss"));
        }
        self.epochs.train_loss.push(seen.mean_loss());
        self.epochs.train_accuracy.push(seen.accuracy());
        self.epochs.test_loss.push(tested.mean_loss());
        self.epochs.test_accuracy.push(tested.accuracy());
        self.log_epoch(step, &seen, &tested, eval_s);
        Ok(())
    }

    /// Collective (the slowest rank's time): the epoch's line on rank 0.
    fn log_epoch(&self, step: usize, seen: &BatchStats, tested: &BatchStats, eval_s: f64) {
        let spe = self.steps_per_epoch();
        let epoch = step / spe;
        let steps_s: f64 = self.record.step_seconds()[epoch * spe..(epoch + 1) * spe]
            .iter()
            .sum();
        // The slowest rank's steps: rank 0 may have none (an async-ps server).
        let seconds = self.comm.max(&[steps_s])[0] + eval_s;
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

fn stats_from(sums: &[f64]) -> BatchStats {
    BatchStats {
        loss_sum: sums[0],
        correct: sums[1],
        rows: sums[2],
    }
}
