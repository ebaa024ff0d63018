//! What a run measured: per-rank, per-step columns preallocated so the step loop never
//! allocates or does I/O, the per-epoch metrics, the run's history of resumes and checkpoints,
//! and its headline numbers. At the end, [`StepRecord::gather`] collects every rank's columns
//! on rank 0 as [steps, ranks] tables.
//!
//! The step columns are defined here once ([`SECONDS`], [`COUNTS`]); the run file, the
//! checkpoint and the gather loop over them. Not the file layout ([`crate::runfile`]), nor the
//! timing itself ([`crate::clock`]).

use ndarray::Array2;

use crate::comm::{Comm, Traffic};
use crate::phase::Phase;

/// The seconds columns: one per phase of [`Phase::STEP`], the whole step, then how the
/// step's communication split: `exposed`, the time the rank waited for it (the allreduce
/// phase), and `overlapped`, the time it was in flight while the backward pass still computed
/// (zero without `--overlap`).
pub const SECONDS: [&str; 6] = [
    Phase::STEP[0].name(),
    Phase::STEP[1].name(),
    Phase::STEP[2].name(),
    STEP,
    "exposed",
    "overlapped",
];

/// The whole step's seconds column.
const STEP: &str = "step";
const STEP_COLUMN: usize = Phase::STEP.len();

/// The traffic columns: what the step's allreduce sent.
pub const COUNTS: [&str; 2] = ["bytes_sent", "messages_sent"];

/// The column of each rank's summed loss over its rows of the batch.
pub const LOSS_SUM: &str = "loss_sum";

/// Seconds each phase of [`Phase::STEP`] took in one step.
pub type PhaseSeconds = [f64; Phase::STEP.len()];

/// One rank's record of every step of a run, or every rank's on rank 0 after
/// [`StepRecord::gather`] (then each column is [steps, ranks]).
#[derive(Debug, Clone)]
pub struct Columns<F, U> {
    /// By [`SECONDS`].
    pub seconds: [F; SECONDS.len()],
    /// By [`COUNTS`].
    pub counts: [U; COUNTS.len()],
    pub loss_sum: F,
}

/// One rank's columns, one value per step.
pub type StepRecord = Columns<Vec<f64>, Vec<u64>>;

/// Every rank's columns on rank 0, [steps, ranks] each.
pub type GatheredSteps = Columns<Array2<f64>, Array2<u64>>;

impl StepRecord {
    pub fn new(steps: usize) -> Self {
        Self {
            seconds: std::array::from_fn(|_| vec![0.0; steps]),
            counts: std::array::from_fn(|_| vec![0; steps]),
            loss_sum: vec![0.0; steps],
        }
    }

    /// Steps the record has room for.
    pub fn steps(&self) -> usize {
        self.loss_sum.len()
    }

    /// Seconds of every step.
    pub fn step_seconds(&self) -> &[f64] {
        &self.seconds[STEP_COLUMN]
    }

    /// Step `step`: its phases, the seconds its communication was in flight behind compute,
    /// what its allreduce sent and the rank's summed loss.
    pub fn record(
        &mut self,
        step: usize,
        phases: PhaseSeconds,
        overlapped: f64,
        traffic: Traffic,
        loss_sum: f64,
    ) {
        for (column, seconds) in self.seconds.iter_mut().zip(phases) {
            column[step] = seconds;
        }
        self.seconds[STEP_COLUMN][step] = phases.iter().sum();
        let allreduce = Phase::Allreduce.step_column().expect("a step phase");
        self.seconds[STEP_COLUMN + 1][step] = phases[allreduce];
        self.seconds[STEP_COLUMN + 2][step] = overlapped;
        self.counts[0][step] = traffic.bytes;
        self.counts[1][step] = traffic.messages;
        self.loss_sum[step] = loss_sum;
    }

    /// Collective: every rank's record of steps `0..steps` as [steps, ranks] tables on rank 0,
    /// `None` elsewhere.
    pub fn gather(&self, comm: &Comm, steps: usize) -> Option<GatheredSteps> {
        let seconds = self
            .seconds
            .each_ref()
            .map(|c| gather_columns(comm, &c[..steps]));
        let counts = self
            .counts
            .each_ref()
            .map(|c| gather_columns(comm, &c[..steps]));
        let loss_sum = gather_columns(comm, &self.loss_sum[..steps]);
        Some(GatheredSteps {
            seconds: all_some(seconds)?,
            counts: all_some(counts)?,
            loss_sum: loss_sum?,
        })
    }
}

/// `Some` of every value when each is `Some` (rank 0 after a gather).
fn all_some<T, const N: usize>(values: [Option<T>; N]) -> Option<[T; N]> {
    let values: Vec<T> = values.into_iter().collect::<Option<_>>()?;
    values.try_into().ok()
}

impl<F, U> Columns<F, U> {
    /// The float columns by name: [`SECONDS`], then [`LOSS_SUM`].
    pub fn floats(&self) -> impl Iterator<Item = (&'static str, &F)> {
        SECONDS
            .into_iter()
            .zip(&self.seconds)
            .chain([(LOSS_SUM, &self.loss_sum)])
    }

    /// The float columns by name, to restore them.
    pub fn floats_mut(&mut self) -> impl Iterator<Item = (&'static str, &mut F)> {
        SECONDS
            .into_iter()
            .zip(&mut self.seconds)
            .chain([(LOSS_SUM, &mut self.loss_sum)])
    }

    /// The count columns by name: [`COUNTS`].
    pub fn counts_named(&self) -> impl Iterator<Item = (&'static str, &U)> {
        COUNTS.into_iter().zip(&self.counts)
    }

    /// The count columns by name, to restore them.
    pub fn counts_mut(&mut self) -> impl Iterator<Item = (&'static str, &mut U)> {
        COUNTS.into_iter().zip(&mut self.counts)
    }
}

/// Collective: each rank's `column` [n] becomes column `rank` of an [n, ranks] table on rank 0.
pub fn gather_columns<T>(comm: &Comm, column: &[T]) -> Option<Array2<T>>
where
    T: mpi::traits::Equivalence + Copy + Default,
{
    let by_rank = comm.gather(column)?;
    let table = Array2::from_shape_vec((comm.size(), column.len()), by_rank)
        .expect("gather returns ranks x n values");
    Some(table.reversed_axes().as_standard_layout().into_owned())
}

/// Per-epoch metrics, reduced over all ranks.
#[derive(Debug, Clone, Default)]
pub struct EpochMetrics {
    pub train_loss: Vec<f64>,
    pub train_accuracy: Vec<f64>,
    pub test_loss: Vec<f64>,
    pub test_accuracy: Vec<f64>,
}

impl EpochMetrics {
    /// The metrics by name (the dataset names of `/metrics`).
    pub fn named(&self) -> [(&'static str, &Vec<f64>); 4] {
        [
            ("train_loss", &self.train_loss),
            ("train_accuracy", &self.train_accuracy),
            ("test_loss", &self.test_loss),
            ("test_accuracy", &self.test_accuracy),
        ]
    }

    /// The metrics by name, to restore them.
    pub fn named_mut(&mut self) -> [(&'static str, &mut Vec<f64>); 4] {
        [
            ("train_loss", &mut self.train_loss),
            ("train_accuracy", &mut self.train_accuracy),
            ("test_loss", &mut self.test_loss),
            ("test_accuracy", &mut self.test_accuracy),
        ]
    }
}

/// How the run was pieced together: the steps it was resumed from, and its checkpoints.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub restarts: Vec<u64>,
    /// Seconds each checkpoint took (rank 0's view, gathers included), and after which step.
    pub checkpoint_s: Vec<f64>,
    pub checkpoint_steps: Vec<u64>,
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
    /// Cost of the `MPI_Wtime` reads of one step, measured at start-up.
    pub timer_overhead_s: f64,
    pub replicas_identical: bool,
    /// The signal that stopped the run early, if one did.
    pub interrupted_by: Option<&'static str>,
}
