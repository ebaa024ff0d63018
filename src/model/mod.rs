//! The models: binary logistic regression, softmax regression and a ReLU MLP.
//!
//! Every model keeps all its parameters in ONE flat slice and writes its gradient into another
//! slice of the same length, so one allreduce per step moves the whole gradient and the
//! communication code knows nothing about layers. Layers are views into the flat slice, in the
//! order given by [`Model::layout`].
//!
//! Losses are *sums* over the rows given (not means): ranks add their sums with the allreduce
//! and the optimizer divides by the global batch size once.

pub mod kernels;
pub mod logistic;
pub mod mlp;
pub mod stable;

use ndarray::{Array2, ArrayView2, ArrayViewMut2};

use crate::kinds::ModelKind;

use crate::real::Real;

/// One named parameter tensor inside the flat buffer: `shape` starting at `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
}

impl Tensor {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// Loss and correct predictions summed over some rows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BatchStats {
    pub loss_sum: f64,
    pub correct: f64,
    pub rows: f64,
}

impl std::ops::AddAssign for BatchStats {
    fn add_assign(&mut self, other: Self) {
        self.loss_sum += other.loss_sum;
        self.correct += other.correct;
        self.rows += other.rows;
    }
}

impl BatchStats {
    pub fn mean_loss(&self) -> f64 {
        self.loss_sum / self.rows
    }

    pub fn accuracy(&self) -> f64 {
        self.correct / self.rows
    }
}

/// A model over a flat parameter buffer.
///
/// `x` is [rows, features], `y` [rows] class labels. Work buffers are allocated once for
/// [`Model::max_rows`] rows, so no call allocates; `rows` may be zero (a rank with no share of
/// a short last batch).
pub trait Model<F: Real> {
    /// The parameter tensors, in flat-buffer order.
    fn layout(&self) -> &[Tensor];

    fn n_params(&self) -> usize {
        self.layout().last().map_or(0, |t| t.range().end)
    }

    /// The most rows one call of `loss_and_grad` or `loss` takes.
    fn max_rows(&self) -> usize;

    /// Initial parameters from `seed`; identical on every rank.
    fn init_params(&self, params: &mut [F], seed: u64);

    /// Overwrites `grad` with the gradient of the summed loss over the rows (at most
    /// `max_rows`) and returns the summed loss and correct predictions.
    fn loss_and_grad(
        &mut self,
        params: &[F],
        x: ArrayView2<F>,
        y: &[u32],
        grad: &mut [F],
    ) -> BatchStats;

    /// [`Model::loss_and_grad`] that tells `ready(start, &grad[start..])` each time the
    /// gradient from `start` to the end of the buffer is final, so its allreduce can start
    /// while the rest is computed. The backward pass finishes the last layer first, so the
    /// final part grows from the end; the last call has `start` 0. One call by default (after
    /// the whole gradient).
    fn loss_and_grad_layered(
        &mut self,
        params: &[F],
        x: ArrayView2<F>,
        y: &[u32],
        grad: &mut [F],
        ready: &mut dyn FnMut(usize, &[F]),
    ) -> BatchStats {
        let stats = self.loss_and_grad(params, x, y, grad);
        ready(0, grad);
        stats
    }

    /// Summed loss and correct predictions of at most `max_rows` rows, without a gradient.
    fn loss(&mut self, params: &[F], x: ArrayView2<F>, y: &[u32]) -> BatchStats;

    /// Number of classes the model predicts.
    fn classes(&self) -> usize;

    /// Class probabilities of at most `max_rows` rows into `out` [rows, classes].
    fn probabilities(&mut self, params: &[F], x: ArrayView2<F>, out: ArrayViewMut2<F>);

    /// [`Model::probabilities`] of any number of rows, taken `max_rows` at a time.
    fn predict(&mut self, params: &[F], x: ArrayView2<F>) -> Array2<F> {
        let mut out = Array2::zeros((x.nrows(), self.classes()));
        let chunk = self.max_rows().max(1);
        for start in (0..x.nrows()).step_by(chunk) {
            let end = (start + chunk).min(x.nrows());
            self.probabilities(
                params,
                x.slice(ndarray::s![start..end, ..]),
                out.slice_mut(ndarray::s![start..end, ..]),
            );
        }
        out
    }

    /// [`Model::loss`] of any number of rows, taken `max_rows` at a time.
    fn evaluate(&mut self, params: &[F], x: ArrayView2<F>, y: &[u32]) -> BatchStats {
        let mut total = BatchStats::default();
        let chunk = self.max_rows().max(1);
        for start in (0..y.len()).step_by(chunk) {
            let end = (start + chunk).min(y.len());
            total += self.loss(params, x.slice(ndarray::s![start..end, ..]), &y[start..end]);
        }
        total
    }
}

/// The model of `kind` for layer `widths` = [features, hidden..., classes] (logistic
/// regression uses the features only), with buffers for `max_rows` rows a call.
pub fn build<F: Real>(kind: ModelKind, widths: &[usize], max_rows: usize) -> Box<dyn Model<F>> {
    match kind {
        ModelKind::Logistic => Box::new(logistic::Logistic::<F>::new(widths[0], max_rows)),
        ModelKind::Softmax | ModelKind::Mlp => Box::new(mlp::Mlp::<F>::new(widths, max_rows)),
    }
}

#[cfg(test)]
pub(crate) mod gradient_check {
    //! Central finite differences against the analytic gradient, shared by the model tests.
    use super::*;
    use ndarray::Array2;

    /// Largest relative error over all parameters, relative to max(|analytic|, |numeric|, 1e-3).
    pub fn max_relative_error(
        model: &mut dyn Model<f64>,
        params: &[f64],
        x: &Array2<f64>,
        y: &[u32],
    ) -> f64 {
        let mut grad = vec![0.0; params.len()];
        model.loss_and_grad(params, x.view(), y, &mut grad);
        let mut probe = params.to_vec();
        let h = 1e-6;
        let mut worst: f64 = 0.0;
        for i in 0..params.len() {
            probe[i] = params[i] + h;
            let plus = model.evaluate(&probe, x.view(), y).loss_sum;
            probe[i] = params[i] - h;
            let minus = model.evaluate(&probe, x.view(), y).loss_sum;
            probe[i] = params[i];
            let numeric = (plus - minus) / (2.0 * h);
            let scale = grad[i].abs().max(numeric.abs()).max(1e-3);
            worst = worst.max((grad[i] - numeric).abs() / scale);
        }
        worst
    }
}
