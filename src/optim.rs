//! Synchronous SGD with momentum, L2 and linear learning-rate warm-up.
//!
//! Every rank applies the same update to the same summed gradient, so parameters stay
//! bit-identical across ranks without ever being sent. With `g` the gradient summed over the
//! global batch of `B` rows (the allreduce result):
//! ```text
//! d = g / B + l2 * w            (L2 on every parameter, as PyTorch's SGD weight_decay)
//! v = momentum * v + d          (v = d when momentum = 0)
//! w = w - lr_t * v,   lr_t = lr * min(1, (t + 1) / warmup_steps)
//! ```
//!
//! Not the schedule of communication (`train::step`): the update sees only a combined gradient.

use crate::real::Real;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdSettings {
    pub lr: f64,
    pub momentum: f64,
    pub l2: f64,
    /// Steps over which the learning rate rises linearly to `lr`; 0 for none.
    pub warmup_steps: usize,
}

pub struct Sgd<F> {
    settings: SgdSettings,
    /// The momentum buffer (saved in checkpoints).
    pub velocity: Vec<F>,
}

impl<F: Real> Sgd<F> {
    pub fn new(settings: SgdSettings, n_params: usize) -> Self {
        Self {
            settings,
            velocity: vec![F::zero(); n_params],
        }
    }

    /// Learning rate at global step `step` (counted from 0).
    pub fn learning_rate(&self, step: usize) -> f64 {
        let SgdSettings {
            lr, warmup_steps, ..
        } = self.settings;
        if warmup_steps == 0 {
            lr
        } else {
            lr * ((step + 1) as f64 / warmup_steps as f64).min(1.0)
        }
    }

    /// Applies one update from `grad_sum`, the gradient summed over `batch_rows` rows.
    pub fn step(&mut self, step: usize, params: &mut [F], grad_sum: &[F], batch_rows: usize) {
        let lr = F::from_f64(self.learning_rate(step));
        let scale = F::from_f64(1.0 / batch_rows as f64);
        let momentum = F::from_f64(self.settings.momentum);
        let l2 = F::from_f64(self.settings.l2);
        for ((w, v), &g) in params.iter_mut().zip(&mut self.velocity).zip(grad_sum) {
            *v = momentum * *v + g * scale + l2 * *w;
            *w = *w - lr * *v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SgdSettings {
        SgdSettings {
            lr: 0.5,
            momentum: 0.0,
            l2: 0.0,
            warmup_steps: 0,
        }
    }

    #[test]
    fn plain_sgd_divides_the_summed_gradient_by_the_batch() {
        let mut sgd = Sgd::<f64>::new(settings(), 2);
        let mut w = [1.0, 2.0];
        sgd.step(0, &mut w, &[4.0, -8.0], 4);
        assert_eq!(w, [0.5, 3.0]);
    }

    #[test]
    fn momentum_accumulates_and_l2_pulls_towards_zero() {
        let mut sgd = Sgd::<f64>::new(
            SgdSettings {
                momentum: 0.9,
                l2: 0.1,
                ..settings()
            },
            1,
        );
        let mut w = [1.0];
        sgd.step(0, &mut w, &[2.0], 2); // v = 1 + 0.1 = 1.1, w = 1 - 0.55
        assert!((w[0] - 0.45).abs() < 1e-15);
        sgd.step(1, &mut w, &[0.0], 2); // v = 0.99 + 0.045, w = 0.45 - 0.5175
        assert!((w[0] - (0.45 - 0.5 * 1.035)).abs() < 1e-15);
    }

    #[test]
    fn warmup_rises_linearly_then_holds() {
        let sgd = Sgd::<f32>::new(
            SgdSettings {
                warmup_steps: 4,
                ..settings()
            },
            0,
        );
        let rates: Vec<f64> = (0..6).map(|t| sgd.learning_rate(t)).collect();
        assert_eq!(rates, [0.125, 0.25, 0.375, 0.5, 0.5, 0.5]);
    }
}
