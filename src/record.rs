//! Per-rank, per-step measurements, preallocated so the step loop never allocates or does I/O.
//!
//! Each phase is timed with two `MPI_Wtime` reads; the recorder only stores the numbers. At the
//! end, [`StepRecord::gather`] collects every rank's columns on rank 0 as [steps, ranks] tables.

use ndarray::Array2;

use crate::comm::{Comm, Traffic};

/// Seconds each phase of one step took (each from two `MPI_Wtime` reads).
#[derive(Debug, Clone, Copy)]
pub struct PhaseSeconds {
    pub compute: f64,
    pub allreduce: f64,
    pub update: f64,
}

/// One rank's record of every step of a run.
#[derive(Debug, Clone)]
pub struct StepRecord {
    pub compute: Vec<f64>,
    pub allreduce: Vec<f64>,
    pub update: Vec<f64>,
    pub step: Vec<f64>,
    pub bytes_sent: Vec<u64>,
    pub messages_sent: Vec<u64>,
    /// This rank's summed loss over its rows of the step's batch.
    pub loss_sum: Vec<f64>,
}

impl StepRecord {
    pub fn new(steps: usize) -> Self {
        Self {
            compute: vec![0.0; steps],
            allreduce: vec![0.0; steps],
            update: vec![0.0; steps],
            step: vec![0.0; steps],
            bytes_sent: vec![0; steps],
            messages_sent: vec![0; steps],
            loss_sum: vec![0.0; steps],
        }
    }

    pub fn record(&mut self, step: usize, t: PhaseSeconds, traffic: Traffic, loss_sum: f64) {
        self.compute[step] = t.compute;
        self.allreduce[step] = t.allreduce;
        self.update[step] = t.update;
        self.step[step] = t.compute + t.allreduce + t.update;
        self.bytes_sent[step] = traffic.bytes;
        self.messages_sent[step] = traffic.messages;
        self.loss_sum[step] = loss_sum;
    }

    /// The columns by name (the names of [`GatheredSteps`]), to restore a resumed run's
    /// history: floats, then counts.
    #[allow(clippy::type_complexity)]
    pub fn columns_mut(
        &mut self,
    ) -> (
        [(&'static str, &mut [f64]); 5],
        [(&'static str, &mut [u64]); 2],
    ) {
        (
            [
                ("compute", &mut self.compute),
                ("allreduce", &mut self.allreduce),
                ("update", &mut self.update),
                ("step", &mut self.step),
                ("loss_sum", &mut self.loss_sum),
            ],
            [
                ("bytes_sent", &mut self.bytes_sent),
                ("messages_sent", &mut self.messages_sent),
            ],
        )
    }

    /// Collective: every rank's record of steps `0..steps` as [steps, ranks] tables on rank 0,
    /// `None` elsewhere.
    pub fn gather(&self, comm: &Comm, steps: usize) -> Option<GatheredSteps> {
        let f = |column: &[f64]| gather_columns(comm, &column[..steps]);
        let u = |column: &[u64]| gather_columns(comm, &column[..steps]);
        let (compute, allreduce, update, step) = (
            f(&self.compute),
            f(&self.allreduce),
            f(&self.update),
            f(&self.step),
        );
        let (bytes_sent, messages_sent) = (u(&self.bytes_sent), u(&self.messages_sent));
        let loss_sum = f(&self.loss_sum);
        Some(GatheredSteps {
            compute: compute?,
            allreduce: allreduce?,
            update: update?,
            step: step?,
            bytes_sent: bytes_sent?,
            messages_sent: messages_sent?,
            loss_sum: loss_sum?,
        })
    }
}

/// Every rank's step record, on rank 0; each table is [steps, ranks].
pub struct GatheredSteps {
    pub compute: Array2<f64>,
    pub allreduce: Array2<f64>,
    pub update: Array2<f64>,
    pub step: Array2<f64>,
    pub bytes_sent: Array2<u64>,
    pub messages_sent: Array2<u64>,
    pub loss_sum: Array2<f64>,
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
