//! Binary logistic regression: `p(y = 1 | x) = sigmoid(x . w + b)`.
//!
//! Parameters (flat): `w` [features], then `b` [1]. Loss per row is the binary cross-entropy
//! `softplus(z) - y z` with `z = x . w + b`; its gradient is `(sigmoid(z) - y) [x, 1]`.
//!
//! ```text
//! z = X w + b            [R]     BLAS gemv (X [R, features])
//! r = sigmoid(z) - y     [R]     one exponential per row (the logarithms of the loss are
//!                                batched, see LogSum)
//! grad w = X^T r, grad b = sum r  BLAS gemv; X is read again from cache (a rank's batch,
//!                                 8192 x 20 f64 = 1.3 MB, fits in L2)
//! ```
//! With 20 features the step is bound by the per-row exponential, not by memory bandwidth,
//! so the products go to BLAS's vectorised kernels rather than a hand-fused loop.

use ndarray::linalg::general_mat_vec_mul;
use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};

use super::stable::{sigmoid, LogSum};
use super::{BatchStats, Model, Tensor};
use crate::real::Real;

pub struct Logistic<F> {
    layout: [Tensor; 2],
    /// Logits, then residuals `sigmoid(z) - y`, of up to `max_rows` rows.
    z: Vec<F>,
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
            z: vec![F::zero(); max_rows],
        }
    }

    /// Fills `self.z[..rows]` with the residuals `sigmoid(z) - y` and returns the loss and
    /// accuracy sums.
    fn residuals(&mut self, params: &[F], x: ArrayView2<F>, y: &[u32]) -> BatchStats {
        let z = self.logits(params, x);
        // loss = sum softplus(z) - y z, softplus(z) = max(z, 0) + ln(1 + e^-|z|)
        let mut linear = F::zero();
        let mut logs = LogSum::new();
        let mut correct = 0usize;
        for (zi, &label) in z.iter_mut().zip(y) {
            let t = if label == 1 { F::one() } else { F::zero() };
            let e = (-zi.abs()).exp();
            linear = linear + zi.max(F::zero()) - t * *zi;
            logs.add(F::one() + e);
            correct += usize::from((*zi > F::zero()) == (label == 1));
            *zi = sigmoid(*zi, e) - t;
        }
        BatchStats {
            loss_sum: (linear + logs.total()).into_f64(),
            correct: correct as f64,
            rows: y.len() as f64,
        }
    }
}

impl<F: Real> Logistic<F> {
    /// `z = X w + b` into the first `x.nrows()` entries of the buffer.
    fn logits(&mut self, params: &[F], x: ArrayView2<F>) -> &mut [F] {
        let (w, b) = params.split_at(params.len() - 1);
        let z = &mut self.z[..x.nrows()];
        z.fill(b[0]);
        general_mat_vec_mul(
            F::one(),
            &x,
            &ArrayView1::from(w),
            F::one(),
            &mut ArrayViewMut1::from(&mut *z),
        );
        z
    }
}

impl<F: Real> Model<F> for Logistic<F> {
    fn classes(&self) -> usize {
        2
    }

    fn probabilities(&mut self, params: &[F], x: ArrayView2<F>, mut out: ArrayViewMut2<F>) {
        for (&z, mut p) in self.logits(params, x).iter().zip(out.rows_mut()) {
            let e = (-z.abs()).exp();
            p[0] = sigmoid(-z, e);
            p[1] = sigmoid(z, e);
        }
    }

    fn layout(&self) -> &[Tensor] {
        &self.layout
    }

    fn max_rows(&self) -> usize {
        self.z.len()
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
        let stats = self.residuals(params, x.view(), y);
        let residuals = &self.z[..y.len()];
        let (gw, gb) = grad.split_at_mut(params.len() - 1);
        general_mat_vec_mul(
            F::one(),
            &x.t(),
            &ArrayView1::from(residuals),
            F::zero(),
            &mut ArrayViewMut1::from(gw),
        );
        gb[0] = residuals.iter().fold(F::zero(), |s, &r| s + r);
        stats
    }

    fn loss(&mut self, params: &[F], x: ArrayView2<F>, y: &[u32]) -> BatchStats {
        self.residuals(params, x, y)
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
