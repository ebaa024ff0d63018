//! The phase clock of the training loop: `enter(phase)` is the one call at every phase
//! boundary. It closes the phase before (one `MPI_Wtime` read, added to the step's column of
//! that phase), tells the stall watchdog where this rank is ([`Progress`]), and checks the
//! `--fail-at` plan for this phase and step.
//!
//! A planned failure inside a step ends the job from this rank (`MPI_Abort`): the other ranks
//! already wait in, or are on their way into, the step's collective, so nothing can be agreed
//! any more. Elsewhere (a checkpoint) it is returned, for the ranks to agree on.
//!
//! Not the record of the numbers ([`crate::record`]), nor what the phases are
//! ([`crate::phase`]).

use std::sync::Arc;

use crate::comm::Comm;
use crate::fault::Faults;
use crate::phase::Phase;
use crate::record::PhaseSeconds;
use crate::watchdog::Progress;

/// `MPI_Wtime` reads of one step: one at each boundary of [`Phase::STEP`] and one at its end.
pub const READS_PER_STEP: usize = Phase::STEP.len() + 1;

pub struct PhaseClock<'a> {
    comm: &'a Comm,
    faults: Faults,
    progress: Arc<Progress>,
    step: usize,
    /// The phase entered last and when.
    current: Option<(Phase, f64)>,
    seconds: PhaseSeconds,
}

impl<'a> PhaseClock<'a> {
    pub fn new(comm: &'a Comm, faults: Faults, progress: Arc<Progress>) -> Self {
        Self {
            comm,
            faults,
            progress,
            step: 0,
            current: None,
            seconds: PhaseSeconds::default(),
        }
    }

    /// Closes the current phase and enters `phase` of `step` (0-based): the timing, the
    /// watchdog's progress and the fault check in one call. Returns the `MPI_Wtime` of the
    /// boundary, for a caller whose own timings must fit the phase just closed.
    pub fn enter(&mut self, step: usize, phase: Phase) -> anyhow::Result<f64> {
        let now = mpi::time();
        self.close(now);
        self.step = step;
        match phase.is_collective() {
            true => self.progress.waiting(step, phase),
            false => self.progress.working(step, phase),
        }
        self.current = Some((phase, now));
        match self.faults.check(self.comm.rank(), phase, Some(step)) {
            Err(error) if phase.inside_step() => self.comm.abort(&error),
            checked => checked.map(|()| now),
        }
    }

    /// The current phase (evaluation, a checkpoint) now waits in its collective.
    pub fn wait_for_others(&self) {
        if let Some((phase, _)) = self.current {
            self.progress.waiting(self.step, phase);
        }
    }

    /// Closes the current phase; the seconds of each step phase since the step began.
    pub fn finish_step(&mut self) -> PhaseSeconds {
        self.close(mpi::time());
        self.current = None;
        std::mem::take(&mut self.seconds)
    }

    fn close(&mut self, now: f64) {
        if let Some((phase, since)) = self.current {
            if let Some(column) = phase.step_column() {
                self.seconds[column] += now - since;
            }
        }
    }
}
