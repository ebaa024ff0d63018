//! Binary logistic regression: `p(y = 1 | x) = sigmoid(x . w + b)`.
//!
//! Parameters (flat): `w` [features], then `b` [1]. Loss per row is the binary cross-entropy
//! `softplus(z) - y z` with `z = x . w + b`; its gradient is `(sigmoid(z) - y) [x, 1]`.
//!
//! This model is memory-bound (about 2 flops per byte of `x`), so forward and backward are
//! fused into one pass over the rows: each row is read from memory once per step.

use ndarray::ArrayView2;

use super::stable::{sigmoid, softplus};
use super::{BatchStats, Model, Tensor};
use crate::real::Real;

pub struct Logistic {
    layout: [Tensor; 2],
}

impl Logistic {
    pub fn new(features: usize) -> Self {
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
        }
    }

    /// One pass over the rows; `visit(row, residual)` sees each row with `sigmoid(z) - y`.
    fn pass<F: Real>(
        params: &[F],
        x: ArrayView2<F>,
        y: &[u32],
        mut visit: impl FnMut(&[F], F),
    ) -> BatchStats {
        let (w, b) = params.split_at(params.len() - 1);
        let b = b[0];
        let x = x
            .as_slice()
            .expect("rows of a standard-layout array are contiguous");
        let mut loss = F::zero();
        let mut correct = 0usize;
        for (row, &label) in x.chunks_exact(w.len().max(1)).zip(y) {
            let row = &row[..w.len()];
            let z = dot(row, w) + b;
            let t = F::from(label).expect("label fits a float");
            loss = loss + softplus(z) - t * z;
            correct += usize::from((z > F::zero()) == (label == 1));
            visit(row, sigmoid(z) - t);
        }
        BatchStats {
            loss_sum: loss.into_f64(),
            correct: correct as f64,
            rows: y.len() as f64,
        }
    }
}

impl<F: Real> Model<F> for Logistic {
    fn layout(&self) -> &[Tensor] {
        &self.layout
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
        grad.fill(F::zero());
        let (gw, gb) = grad.split_at_mut(params.len() - 1);
        let mut bias = F::zero();
        let stats = Self::pass(params, x, y, |row, residual| {
            for (g, &xi) in gw.iter_mut().zip(row) {
                *g = *g + residual * xi;
            }
            bias = bias + residual;
        });
        gb[0] = bias;
        stats
    }

    fn evaluate(&mut self, params: &[F], x: ArrayView2<F>, y: &[u32]) -> BatchStats {
        Self::pass(params, x, y, |_, _| {})
    }
}

/// `a . b` with eight independent partial sums, so the compiler can keep them in SIMD lanes
/// instead of waiting on one long chain of dependent additions.
fn dot<F: Real>(a: &[F], b: &[F]) -> F {
    const LANES: usize = 8;
    let mut acc = [F::zero(); LANES];
    let (a_body, a_tail) = a.split_at(a.len() - a.len() % LANES);
    let (b_body, b_tail) = b.split_at(a_body.len());
    for (ca, cb) in a_body.chunks_exact(LANES).zip(b_body.chunks_exact(LANES)) {
        for lane in 0..LANES {
            acc[lane] = acc[lane] + ca[lane] * cb[lane];
        }
    }
    let tail = a_tail
        .iter()
        .zip(b_tail)
        .fold(F::zero(), |s, (&p, &q)| s + p * q);
    acc.iter().fold(tail, |s, &v| s + v)
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
        let mut model = Logistic::new(11);
        let params: Vec<f64> = (0..12).map(|i| 0.1 * (i as f64 - 5.0)).collect();
        let err = max_relative_error(&mut model, &params, &data.x, &data.y);
        assert!(err < 1e-6, "relative error {err}");
    }

    #[test]
    fn loss_at_zero_parameters_is_ln2_per_row() {
        let data: Dataset<f64> = Generator::binary(3, 0.0, 3).generate(3, 0..10);
        let mut model = Logistic::new(3);
        let stats = model.evaluate(&[0.0; 4], data.x.view(), &data.y);
        assert!((stats.loss_sum - 10.0 * 2f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn dot_matches_the_plain_sum() {
        for n in 0..20 {
            let a: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let b: Vec<f64> = (0..n).map(|i| 1.0 + i as f64).collect();
            let plain: f64 = a.iter().zip(&b).map(|(p, q)| p * q).sum();
            assert_eq!(dot(&a, &b), plain);
        }
    }

    #[test]
    fn no_rows_give_zero_gradient() {
        let mut model = Logistic::new(2);
        let x = ndarray::Array2::<f32>::zeros((0, 2));
        let mut grad = vec![1.0f32; 3];
        let stats = model.loss_and_grad(&[1.0, 2.0, 3.0], x.view(), &[], &mut grad);
        assert_eq!(grad, vec![0.0; 3]);
        assert_eq!(stats.rows, 0.0);
    }
}
