//! `--reproducible`: a gradient whose bits do not depend on the number of ranks nor on the
//! allreduce algorithm.
//!
//! The batch plan cuts each global batch into fixed blocks of rows and gives ranks whole
//! blocks ([`crate::partition::BatchPlan::in_blocks`]), so a block's gradient is computed by
//! the same code on the same rows whichever rank owns it: the same bits. The blocks' gradients
//! are then summed exactly ([`crate::exact`]): on the rank in fixed-point limbs, across ranks
//! by any `--allreduce` of those limbs, rounded once at the end. Integer sums do not depend on
//! the order, so every P and every algorithm give the same bits.
//!
//! What it guarantees: the same parameters, bit for bit, from the same binary with the same
//! BLAS on the same kind of CPU (the kernels pick their instructions by CPU; OpenBLAS its
//! kernels too), for any number of ranks and any `--allreduce`. Not across machines whose
//! CPUs differ in what the kernels use, nor across builds.
//!
//! Cost: three f64 limbs per parameter on the wire (3x the bytes of f64, 6x f32), and per
//! block of rows a pass that splits its gradient into limbs; one pass to round the sums.

use mpi::topology::SimpleCommunicator;
use ndarray::{s, ArrayView2};

use crate::comm::{Algorithm, Allreduce, Traffic};
use crate::exact::{round_into, ExactSum, LIMBS};
use crate::model::{BatchStats, Model};
use crate::real::Real;

/// The exact sums of one step and the allreduce that combines them across ranks.
pub struct ExactGradient {
    local: ExactSum,
    combined: Vec<f64>,
    allreduce: Box<dyn Allreduce<f64>>,
}

impl ExactGradient {
    /// For gradients of `len` elements, combined by `algorithm`.
    pub fn new(algorithm: &'static Algorithm, len: usize) -> Self {
        Self {
            local: ExactSum::new(len),
            combined: vec![0.0; LIMBS * len],
            allreduce: algorithm.build::<f64>(LIMBS * len),
        }
    }

    /// The rank's part of the step: the gradient of each block of `grain` rows of `x`
    /// (blocks start at row 0, as the plan aligns them), added exactly. `grad` is scratch.
    pub fn compute<F: Real>(
        &mut self,
        model: &mut dyn Model<F>,
        params: &[F],
        (x, y): (ArrayView2<F>, &[u32]),
        grain: usize,
        grad: &mut [F],
    ) -> BatchStats {
        self.local.clear();
        let mut stats = BatchStats::default();
        for start in (0..y.len()).step_by(grain) {
            let end = (start + grain).min(y.len());
            stats += model.loss_and_grad(params, x.slice(s![start..end, ..]), &y[start..end], grad);
            self.local.add(grad);
        }
        stats
    }

    /// Collective: the exact sum over ranks, rounded into `out`.
    pub fn combine<F: Real>(&mut self, world: &SimpleCommunicator, out: &mut [F]) -> Traffic {
        let traffic = self
            .allreduce
            .allreduce_sum(world, self.local.limbs(), &mut self.combined);
        round_into(&self.combined, out);
        traffic
    }
}
