//! The one vocabulary for what a rank is doing: the phases of a run that are timed, watched by
//! the stall watchdog and can be made to fail with `--fail-at`.
//!
//! Not the timing itself ([`crate::clock`]), nor the fault plan ([`crate::fault`]): only the
//! names and the three facts the others need of each phase.

/// A phase of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// After MPI starts, before the data is opened.
    Startup,
    /// Reading or generating this rank's rows.
    Data,
    /// Forward and backward pass on this rank's share of the batch.
    Compute,
    /// Combining gradients (or parameters) across ranks.
    Allreduce,
    /// The optimiser's update of the parameters.
    Update,
    /// Test-set evaluation at the end of an epoch, and the sum of its metrics.
    Evaluation,
    /// The agreed stop vote (signals, `--checkpoint-seconds`).
    StopVote,
    /// Writing a checkpoint.
    Checkpoint,
    /// Writing the run file.
    Write,
}

impl Phase {
    pub const ALL: [Phase; 9] = [
        Phase::Startup,
        Phase::Data,
        Phase::Compute,
        Phase::Allreduce,
        Phase::Update,
        Phase::Evaluation,
        Phase::StopVote,
        Phase::Checkpoint,
        Phase::Write,
    ];

    /// The phases of every training step, in the order of the run file's per-step timing
    /// columns (`/timings/<name>`).
    pub const STEP: [Phase; 3] = [Phase::Compute, Phase::Allreduce, Phase::Update];

    /// The name used by `--fail-at`, in messages and in the run file.
    pub const fn name(self) -> &'static str {
        match self {
            Phase::Startup => "startup",
            Phase::Data => "data",
            Phase::Compute => "compute",
            Phase::Allreduce => "allreduce",
            Phase::Update => "update",
            Phase::Evaluation => "evaluation",
            Phase::StopVote => "stop-vote",
            Phase::Checkpoint => "checkpoint",
            Phase::Write => "write",
        }
    }

    /// Its timing column in a step record, for the phases of [`Phase::STEP`].
    pub fn step_column(self) -> Option<usize> {
        Self::STEP.iter().position(|&p| p == self)
    }

    /// Phases that are one collective call from their start: a rank in one is waiting for the
    /// others (what the stall watchdog looks for).
    pub fn is_collective(self) -> bool {
        matches!(self, Phase::Allreduce | Phase::StopVote)
    }

    /// Phases that `--fail-at` can name, and whether they happen once per step (a STEP
    /// applies to them).
    pub fn fault_target(self) -> Option<FaultTarget> {
        match self {
            Phase::Startup | Phase::Data | Phase::Write => Some(FaultTarget::Once),
            Phase::Compute | Phase::Allreduce | Phase::Update | Phase::Checkpoint => {
                Some(FaultTarget::PerStep)
            }
            Phase::Evaluation | Phase::StopVote => None,
        }
    }

    /// Phases inside a training step: the other ranks are already in (or on their way into)
    /// the step's collective, so a failure here cannot be agreed on and ends the job.
    pub fn inside_step(self) -> bool {
        self.step_column().is_some()
    }
}

/// How often a phase that `--fail-at` can name happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultTarget {
    Once,
    PerStep,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_the_step_phases_have_columns_in_order() {
        let mut names: Vec<&str> = Phase::ALL.iter().map(|p| p.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Phase::ALL.len());
        for (column, phase) in Phase::STEP.iter().enumerate() {
            assert_eq!(phase.step_column(), Some(column));
            assert!(phase.inside_step());
        }
        assert!(!Phase::Checkpoint.inside_step());
        assert_eq!(Phase::ALL[Phase::StopVote as usize], Phase::StopVote);
    }
}
