//! Binary logistic regression: `p(y = 1 | x) = sigmoid(x . w + b)`.
//!
//! Parameters (flat): `w` [features], then `b` [1]. Loss per row is the binary cross-entropy
//! `softplus(z) - y z` with `z = x . w + b`; its gradient is `(sigmoid(z) - y) [x, 1]`.
//!
//! The step's work is one fused pass over the rows ([`super::kernels::logistic`]): logits,
//! residuals, loss and accuracy terms, and the gradient, block by block while the block is in
//! L1, with a vectorised `exp` and `ln`.

use ndarray::{ArrayView2, ArrayViewMut2};

use super::kernels::logistic::{self as kernel, block_rows, dot};
use super::kernels::Isa;
use super::stable::sigmoid;
use super::{BatchStats, Model, Tensor};
use crate::real::Real;

pub struct Logistic<F> {
    layout: [Tensor; 2],
    max_rows: usize,
    /// The kernel's logits and residuals of one block of rows.
    scratch: Vec<F>,
}

impl<F: Real> Logistic<F> {
    pub fn new(features: usize, max_rows: usize) -> Self {
        Self {
            layout: [
                Tensor {
                    name: "w".into(),
                    shape: vec![features],
                    offset: 0,
                },
                Tensor {
                    name: "b".into(),
                    shape: vec![1],
                    offset: features,
                },
            ],
            max_rows,
            scratch: vec![F::zero(); block_rows::<F>(features)],
        }
    }

    /// The kernel over `x`'s rows: loss and accuracy sums, and the gradient into `grad`.
    fn pass(
        &mut self,
        params: &[F],
        x: ArrayView2<F>,
        y: &[u32],
        grad: Option<&mut [F]>,
    ) -> BatchStats {
        // A batch's rows are one row-major slice already; anything else is copied.
        let rows = x.as_standard_layout();
        let flat = rows.as_slice().expect("standard layout");
        let sums = kernel::loss_and_grad(Isa::current(), flat, y, params, grad, &mut self.scratch);
        BatchStats {
            loss_sum: sums.loss,
            correct: sums.correct as f64,
            rows: y.len() as f64,
        }
    }
}

impl<F: Real> Model<F> for Logistic<F> {
    fn classes(&self) -> usize {
        2
    }

    fn probabilities(&mut self, params: &[F], x: ArrayView2<F>, mut out: ArrayViewMut2<F>) {
        let (w, b) = params.split_at(params.len() - 1);
        for (row, mut p) in x.rows().into_iter().zip(out.rows_mut()) {
            let row = row.as_standard_layout();
            let z = b[0] + dot::<F, false>(row.as_slice().expect("standard layout"), w);
            let e = (-z.abs()).exp();
            p[0] = sigmoid(-z, e);
            p[1] = sigmoid(z, e);
        }
    }

    fn layout(&self) -> &[Tensor] {
        &self.layout
    }

    fn max_rows(&self) -> usize {
        self.max_rows
    }

    /// Zeros: the loss is convex, so any start reaches the same optimum.
    fn init_params(&self, params: &mut [F], _seed: u64) {
        params.fill(F::zero());
    }

    fn loss_and_grad(
        &mut self,
        params: &[F],
        x: ArrayView2<F>,
        y: &[u32],
        grad: &mut [F],
    ) -> BatchStats {
        self.pass(params, x, y, Some(grad))
    }

    fn loss(&mut self, params: &[F], x: ArrayView2<F>, y: &[u32]) -> BatchStats {
        self.pass(params, x, y, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::Generator;
    use crate::data::Dataset;
    use crate::model::gradient_check::max_relative_error;

    #[test]
    fn gradient_matches_finite_differences() {
        let data: Dataset<f64> = Generator::binary(11, 0.1, 3).generate(3, 0..40);
        let mut model = Logistic::new(11, 40);
        let params: Vec<f64> = (0..12).map(|i| 0.1 * (i as f64 - 5.0)).collect();
        let err = max_relative_error(&mut model, &params, &data.x, &data.y);
        assert!(err < 1e-6, "relative error {err}");
    }

    #[test]
    fn loss_at_zero_parameters_is_ln2_per_row() {
        let data: Dataset<f64> = Generator::binary(3, 0.0, 3).generate(3, 0..10);
        let mut model = Logistic::new(3, 10);
        let stats = model.evaluate(&[0.0; 4], data.x.view(), &data.y);
        assert!((stats.loss_sum - 10.0 * 2f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn extreme_logits_give_the_exact_finite_loss() {
        // z = 1000 x: row 0 is confidently right (loss 0), row 1 confidently wrong (loss 1000).
        let x = ndarray::arr2(&[[1.0], [1.0]]);
        let stats = Logistic::new(1, 2).evaluate(&[1000.0, 0.0], x.view(), &[1, 0]);
        assert_eq!(stats.loss_sum, 1000.0);
        assert_eq!(stats.correct, 1.0);
    }

    #[test]
    fn no_rows_give_zero_gradient() {
        let mut model = Logistic::<f32>::new(2, 4);
        let x = ndarray::Array2::<f32>::zeros((0, 2));
        let mut grad = vec![1.0f32; 3];
        let stats = model.loss_and_grad(&[1.0, 2.0, 3.0], x.view(), &[], &mut grad);
        assert_eq!(grad, vec![0.0; 3]);
        assert_eq!(stats.rows, 0.0);
    }
}
