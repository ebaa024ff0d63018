//! Multi-layer perceptron with ReLU hidden layers and a softmax cross-entropy output.
//! With no hidden layers it *is* multinomial (softmax) regression, so both share this code.
//!
//! Shapes (R = rows of the batch, `widths` = [features, hidden..., classes], L = layers):
//! ```text
//! A_0 = x                          [R, widths[0]]
//! Z_l = A_{l-1} W_l + b_l          [R, widths[l]]     W_l [widths[l-1], widths[l]], b_l [widths[l]]
//! A_l = relu(Z_l)  (l < L)         logits Z_L, loss per row = logsumexp(Z_L) - Z_L[y]
//! backward: D_L = softmax(Z_L) - onehot(y);  dW_l = A_{l-1}^T D_l;  db_l = colsum(D_l)
//!           D_{l-1} = (D_l W_l^T) * 1[A_{l-1} > 0]
//! ```
//! Parameters (flat): `W1, b1, W2, b2, ...`, each W row-major. The products are GEMMs
//! ([`super::kernels::matmul`]: OpenBLAS or the `gemm` crate, by shape) on buffers allocated
//! once.
//!
//! Cache-blocked rows: a batch is taken [`BLOCK_ROWS`] rows at a time (forward, loss, backward,
//! the weight gradients accumulated), so the activations of a block stay in L2 whatever the
//! batch per rank: a large batch gets the cache behaviour of a small one. The bias and the
//! ReLU are one pass over a layer's output after its GEMM; the ReLU mask of the backward pass
//! one pass after its GEMM.
//!
//! Not the optimiser (`optim`), nor the combination of gradients across ranks.

use ndarray::{s, Array2, ArrayView1, ArrayView2, ArrayViewMut2};
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::kernels::matmul::matmul;
use super::stable::{argmax, log_sum_exp};
use super::{BatchStats, Model, Tensor};
use crate::real::Real;

/// Rows of a block: the activations and deltas of a 512-wide hidden layer for this many rows
/// (f64: 2 x 512 KiB) stay in a 1-2 MiB L2 (measured against 64..1024 in docs/benchmarks.md).
pub const BLOCK_ROWS: usize = 128;

pub struct Mlp<F> {
    layout: Vec<Tensor>,
    max_rows: usize,
    /// Output of each layer for one block of rows: ReLU activations for hidden layers, logits
    /// for the last.
    outputs: Vec<Array2<F>>,
    /// Loss gradient with respect to each layer's pre-activation, for one block of rows.
    deltas: Vec<Array2<F>>,
}

impl<F: Real> Mlp<F> {
    /// `widths` = [features, hidden..., classes]; buffers for up to `max_rows` rows a call.
    pub fn new(widths: &[usize], max_rows: usize) -> Self {
        let mut layout = Vec::new();
        let mut offset = 0;
        for (l, pair) in widths.windows(2).enumerate() {
            for (name, shape) in [
                (format!("W{}", l + 1), vec![pair[0], pair[1]]),
                (format!("b{}", l + 1), vec![pair[1]]),
            ] {
                let tensor = Tensor {
                    name,
                    shape,
                    offset,
                };
                offset += tensor.len();
                layout.push(tensor);
            }
        }
        let block = block_rows().min(max_rows).max(1);
        let buffers = || {
            widths[1..]
                .iter()
                .map(|&w| Array2::zeros((block, w)))
                .collect()
        };
        Self {
            layout,
            max_rows,
            outputs: buffers(),
            deltas: buffers(),
        }
    }

    fn layers(&self) -> usize {
        self.layout.len() / 2
    }

    /// Rows of the buffers: one block.
    fn block(&self) -> usize {
        self.outputs[0].nrows()
    }

    fn weight<'p>(&self, params: &'p [F], l: usize) -> ArrayView2<'p, F> {
        let t = &self.layout[2 * l];
        ArrayView2::from_shape((t.shape[0], t.shape[1]), &params[t.range()])
            .expect("layout matches the buffer")
    }

    fn bias<'p>(&self, params: &'p [F], l: usize) -> ArrayView1<'p, F> {
        ArrayView1::from(&params[self.layout[2 * l + 1].range()])
    }

    /// Fills `outputs[..][..rows]`; the last one holds the logits.
    fn forward(&mut self, params: &[F], x: ArrayView2<F>) {
        let rows = x.nrows();
        let last = self.layers() - 1;
        for l in 0..=last {
            let (w, b) = (self.weight(params, l), self.bias(params, l));
            let (before, after) = self.outputs.split_at_mut(l);
            let input = match l {
                0 => x.view(),
                _ => before[l - 1].slice(s![..rows, ..]),
            };
            let mut out = after[0].slice_mut(s![..rows, ..]);
            matmul(input, w, false, &mut out);
            let b = b.as_slice().expect("contiguous bias");
            let relu = l < last;
            // Z = A W + b, and the ReLU, in one pass over the output.
            for row in contiguous_mut(&mut out).chunks_exact_mut(b.len()) {
                for (v, &bias) in row.iter_mut().zip(b) {
                    let z = *v + bias;
                    *v = if relu { z.max(F::zero()) } else { z };
                }
            }
        }
    }

    /// Loss and accuracy from the logits; with `with_delta`, also `D_L = softmax - onehot`.
    fn head(&mut self, y: &[u32], with_delta: bool) -> BatchStats {
        let last = self.layers() - 1;
        let logits = self.outputs[last].slice(s![..y.len(), ..]);
        let mut delta = self.deltas[last].slice_mut(s![..y.len(), ..]);
        let mut loss = F::zero();
        let mut correct = 0usize;
        for ((z, mut d), &label) in logits.rows().into_iter().zip(delta.rows_mut()).zip(y) {
            let z = z.as_slice().expect("contiguous row");
            let lse = log_sum_exp(z);
            loss = loss + lse - z[label as usize];
            correct += usize::from(argmax(z) == label as usize);
            if with_delta {
                for (k, (dk, &zk)) in d.iter_mut().zip(z).enumerate() {
                    *dk = (zk - lse).vexp() - F::from(u8::from(k == label as usize)).unwrap();
                }
            }
        }
        BatchStats {
            loss_sum: loss.into_f64(),
            correct: correct as f64,
            rows: y.len() as f64,
        }
    }

    /// Adds this block's gradient to `grad`; for the batch's last block, `ready` is told of
    /// each layer's gradient as soon as it is final.
    fn backward<R: FnMut(usize, &[F]) + ?Sized>(
        &mut self,
        params: &[F],
        x: ArrayView2<F>,
        grad: &mut [F],
        mut ready: Option<&mut R>,
    ) {
        let rows = x.nrows();
        for l in (0..self.layers()).rev() {
            let (w_range, b_range) = (self.layout[2 * l].range(), self.layout[2 * l + 1].range());
            let (fan_in, fan_out) = (self.layout[2 * l].shape[0], self.layout[2 * l].shape[1]);
            let (lower, upper) = self.deltas.split_at_mut(l);
            let delta = upper[0].slice(s![..rows, ..]);
            let input = match l {
                0 => x.view(),
                _ => self.outputs[l - 1].slice(s![..rows, ..]),
            };
            let mut dw = ArrayViewMut2::from_shape((fan_in, fan_out), &mut grad[w_range])
                .expect("layout matches the buffer");
            matmul(input.t(), delta, true, &mut dw);
            let db = &mut grad[b_range];
            let delta_rows = delta
                .as_slice()
                .expect("leading rows of a buffer are contiguous");
            for row in delta_rows.chunks_exact(fan_out) {
                for (g, &d) in db.iter_mut().zip(row) {
                    *g = *g + d;
                }
            }
            if let Some(ready) = ready.as_mut() {
                let start = self.layout[2 * l].offset;
                ready(start, &grad[start..]);
            }
            if l > 0 {
                let mut below = lower[l - 1].slice_mut(s![..rows, ..]);
                let w =
                    ArrayView2::from_shape((fan_in, fan_out), &params[self.layout[2 * l].range()])
                        .expect("layout matches the buffer");
                matmul(delta, w.t(), false, &mut below);
                // ReLU'(Z) = 1[A > 0]; a select, not a branch, so the loop vectorises.
                let active = input
                    .as_slice()
                    .expect("leading rows of a buffer are contiguous");
                for (d, &a) in contiguous_mut(&mut below).iter_mut().zip(active) {
                    *d = if a > F::zero() { *d } else { F::zero() };
                }
            }
        }
    }
}

/// The elements of a view of leading rows of a buffer, which are contiguous.
fn contiguous_mut<'v, F>(view: &'v mut ArrayViewMut2<F>) -> &'v mut [F] {
    view.as_slice_mut()
        .expect("leading rows of a buffer are contiguous")
}

impl<F: Real> Model<F> for Mlp<F> {
    fn classes(&self) -> usize {
        self.layout.last().map_or(0, |b| b.shape[0])
    }

    /// Softmax of the logits, `e^(z_k - logsumexp(z))`: never overflows.
    fn probabilities(&mut self, params: &[F], x: ArrayView2<F>, mut out: ArrayViewMut2<F>) {
        let block = self.block();
        for start in (0..x.nrows()).step_by(block) {
            let end = (start + block).min(x.nrows());
            self.forward(params, x.slice(s![start..end, ..]));
            let logits = self.outputs[self.layers() - 1].slice(s![..end - start, ..]);
            let mut out = out.slice_mut(s![start..end, ..]);
            for (z, mut p) in logits.rows().into_iter().zip(out.rows_mut()) {
                let z = z.as_slice().expect("contiguous row");
                let lse = log_sum_exp(z);
                for (pk, &zk) in p.iter_mut().zip(z) {
                    *pk = (zk - lse).vexp();
                }
            }
        }
    }

    fn layout(&self) -> &[Tensor] {
        &self.layout
    }

    fn max_rows(&self) -> usize {
        self.max_rows
    }

    /// He initialisation, `W ~ N(0, 2 / fan_in)`, zero biases: keeps the variance of ReLU
    /// activations constant through the layers (He et al. 2015).
    fn init_params(&self, params: &mut [F], seed: u64) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        for pair in self.layout.chunks(2) {
            let (w, b) = (&pair[0], &pair[1]);
            let std = (2.0 / w.shape[0] as f64).sqrt();
            for p in &mut params[w.range()] {
                *p = F::from_f64(std * rng.sample::<f64, _>(StandardNormal));
            }
            params[b.range()].fill(F::zero());
        }
    }

    fn loss_and_grad(
        &mut self,
        params: &[F],
        x: ArrayView2<F>,
        y: &[u32],
        grad: &mut [F],
    ) -> BatchStats {
        self.loss_and_grad_layered(params, x, y, grad, &mut |_, _| {})
    }

    fn loss_and_grad_layered(
        &mut self,
        params: &[F],
        x: ArrayView2<F>,
        y: &[u32],
        grad: &mut [F],
        ready: &mut dyn FnMut(usize, &[F]),
    ) -> BatchStats {
        grad.fill(F::zero());
        if y.is_empty() {
            ready(0, grad);
            return BatchStats::default();
        }
        let mut stats = BatchStats::default();
        let block = self.block();
        let last = (y.len() - 1) / block * block;
        for (start, labels) in (0..y.len()).step_by(block).zip(y.chunks(block)) {
            let rows = x.slice(s![start..start + labels.len(), ..]);
            self.forward(params, rows);
            stats += self.head(labels, true);
            let hook = (start == last).then_some(&mut *ready);
            self.backward(params, rows, grad, hook);
        }
        stats
    }

    fn loss(&mut self, params: &[F], x: ArrayView2<F>, y: &[u32]) -> BatchStats {
        let mut stats = BatchStats::default();
        let block = self.block();
        for (start, labels) in (0..y.len()).step_by(block).zip(y.chunks(block)) {
            self.forward(params, x.slice(s![start..start + labels.len(), ..]));
            stats += self.head(labels, false);
        }
        stats
    }
}

/// [`BLOCK_ROWS`], or `MPI_SGD_BLOCK_ROWS` to measure others.
fn block_rows() -> usize {
    std::env::var("MPI_SGD_BLOCK_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(BLOCK_ROWS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::Generator;
    use crate::data::Dataset;
    use crate::model::gradient_check::max_relative_error;

    fn check(widths: &[usize]) {
        let data: Dataset<f64> =
            Generator::blobs(widths[0], *widths.last().unwrap(), 9).generate(9, 0..25);
        let mut model = Mlp::<f64>::new(widths, 25);
        let mut params = vec![0.0; model.n_params()];
        model.init_params(&mut params, 4);
        // Non-zero biases, so their gradients are checked away from zero too.
        for t in model.layout().iter().filter(|t| t.name.starts_with('b')) {
            for (i, p) in params[t.range()].iter_mut().enumerate() {
                *p = 0.05 * (i as f64 - 1.0);
            }
        }
        let err = max_relative_error(&mut model, &params, &data.x, &data.y);
        assert!(err < 1e-6, "widths {widths:?}: relative error {err}");
    }

    #[test]
    fn softmax_regression_gradient_matches_finite_differences() {
        check(&[6, 4]);
    }

    #[test]
    fn mlp_gradient_matches_finite_differences() {
        check(&[5, 7, 3]);
        check(&[4, 6, 5, 3]);
    }

    #[test]
    fn layout_is_contiguous_and_named() {
        let model = Mlp::<f32>::new(&[3, 4, 2], 1);
        let names: Vec<&str> = model.layout().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["W1", "b1", "W2", "b2"]);
        assert_eq!(model.n_params(), 3 * 4 + 4 + 4 * 2 + 2);
        assert_eq!(model.layout()[2].offset, 16);
    }

    #[test]
    fn evaluate_in_chunks_equals_one_pass() {
        let data: Dataset<f64> = Generator::blobs(4, 3, 2).generate(2, 0..50);
        let mut big = Mlp::<f64>::new(&[4, 8, 3], 50);
        let mut small = Mlp::<f64>::new(&[4, 8, 3], 7);
        let mut params = vec![0.0; big.n_params()];
        big.init_params(&mut params, 1);
        let a = big.evaluate(&params, data.x.view(), &data.y);
        let b = small.evaluate(&params, data.x.view(), &data.y);
        assert!((a.loss_sum - b.loss_sum).abs() < 1e-10);
        assert_eq!(a.correct, b.correct);
    }

    #[test]
    fn extreme_logits_give_a_finite_loss() {
        let mut model = Mlp::<f64>::new(&[1, 3], 2);
        // logits = x * [1000, -1000, 0]; the true class has logit -1000 for x = 1.
        let params = [1000.0, -1000.0, 0.0, 0.0, 0.0, 0.0];
        let x = ndarray::arr2(&[[1.0], [1.0]]);
        let mut grad = [0.0; 6];
        let stats = model.loss_and_grad(&params, x.view(), &[1, 0], &mut grad);
        assert_eq!(stats.loss_sum, 2000.0);
        assert!(grad.iter().all(|g| g.is_finite()));
        assert_eq!(stats.correct, 1.0);
    }

    #[test]
    fn layers_are_announced_last_first_once_final() {
        let data: Dataset<f64> = Generator::blobs(4, 3, 2).generate(2, 0..300);
        let mut model = Mlp::<f64>::new(&[4, 8, 5, 3], 300);
        let mut params = vec![0.0; model.n_params()];
        model.init_params(&mut params, 1);
        let mut whole = vec![0.0; params.len()];
        model.loss_and_grad(&params, data.x.view(), &data.y, &mut whole);
        let mut announced = Vec::new();
        let mut grad = vec![0.0; params.len()];
        model.loss_and_grad_layered(
            &params,
            data.x.view(),
            &data.y,
            &mut grad,
            &mut |start, tail| {
                // What is announced is already the final gradient.
                assert_eq!(tail, &whole[start..]);
                announced.push(start);
            },
        );
        let starts: Vec<usize> = model
            .layout()
            .iter()
            .step_by(2)
            .map(|t| t.offset)
            .rev()
            .collect();
        assert_eq!(announced, starts);
    }

    #[test]
    fn no_rows_give_zero_gradient() {
        let mut model = Mlp::<f64>::new(&[2, 3, 2], 4);
        let mut params = vec![0.0; model.n_params()];
        model.init_params(&mut params, 1);
        let mut grad = vec![1.0; params.len()];
        let x = Array2::<f64>::zeros((0, 2));
        model.loss_and_grad(&params, x.view(), &[], &mut grad);
        assert!(grad.iter().all(|&g| g == 0.0));
    }
}
