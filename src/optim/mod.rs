//! The update rules: SGD (momentum, L2), Adam and AdamW, each with a learning-rate schedule
//! ([`schedule`]).
//!
//! Every rank applies the same update to the same summed gradient, so parameters stay
//! bit-identical across ranks without ever being sent. With `g` the gradient summed over the
//! global batch of `B` rows (the allreduce result), `lr_t` the scheduled rate and `t` the step
//! counted from 1:
//! ```text
//! SGD:    d = g / B + l2 * w;  v = momentum * v + d;  w -= lr_t * v       (PyTorch's SGD)
//! Adam:   d = g / B + l2 * w                                               (PyTorch's Adam)
//!         m = b1 * m + (1 - b1) * d;  v = b2 * v + (1 - b2) * d^2
//!         w -= lr_t / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
//! AdamW:  w -= lr_t * wd * w first (decoupled weight decay), then Adam with l2 = 0
//! ```
//! The state (`v`, or `m` then `v`) is one flat buffer, saved in checkpoints; `t` comes from
//! the step, so a resumed run continues bit-identically.
//!
//! Not the schedule of communication (`train::step`): the update sees only a combined gradient.

pub mod schedule;

use self::schedule::LrSchedule;
use crate::real::Real;

/// How the parameters move, given the step's gradient.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    Sgd {
        momentum: f64,
        l2: f64,
    },
    Adam {
        beta1: f64,
        beta2: f64,
        eps: f64,
        /// L2 added to the gradient (Adam), or decoupled weight decay (AdamW).
        weight_decay: f64,
        decoupled: bool,
    },
}

impl Rule {
    /// Values of state per parameter: SGD's velocity; Adam's two moments.
    pub fn state_per_param(self) -> usize {
        match self {
            Rule::Sgd { .. } => 1,
            Rule::Adam { .. } => 2,
        }
    }
}

pub struct Optimizer<F> {
    rule: Rule,
    schedule: LrSchedule,
    /// The rule's state, `state_per_param` vectors of the parameters' length end to end
    /// (saved in checkpoints).
    pub state: Vec<F>,
}

impl<F: Real> Optimizer<F> {
    pub fn new(rule: Rule, schedule: LrSchedule, n_params: usize) -> Self {
        Self {
            rule,
            schedule,
            state: vec![F::zero(); rule.state_per_param() * n_params],
        }
    }

    /// Learning rate at global step `step` (counted from 0).
    pub fn learning_rate(&self, step: usize) -> f64 {
        self.schedule.at(step)
    }

    /// Applies one update from `grad_sum`, the gradient summed over `batch_rows` rows.
    pub fn step(&mut self, step: usize, params: &mut [F], grad_sum: &[F], batch_rows: usize) {
        let lr = self.learning_rate(step);
        let scale = F::from_f64(1.0 / batch_rows as f64);
        match self.rule {
            Rule::Sgd { momentum, l2 } => {
                let (lr, momentum, l2) = (F::from_f64(lr), F::from_f64(momentum), F::from_f64(l2));
                for ((w, v), &g) in params.iter_mut().zip(&mut self.state).zip(grad_sum) {
                    *v = momentum * *v + g * scale + l2 * *w;
                    *w = *w - lr * *v;
                }
            }
            Rule::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
                decoupled,
            } => {
                let t = (step + 1) as i32;
                let step_size = F::from_f64(lr / (1.0 - beta1.powi(t)));
                let root_correction = F::from_f64(1.0 / (1.0 - beta2.powi(t)).sqrt());
                let (l2, shrink) = match decoupled {
                    true => (F::zero(), F::from_f64(1.0 - lr * weight_decay)),
                    false => (F::from_f64(weight_decay), F::one()),
                };
                let (b1, b2, eps) = (F::from_f64(beta1), F::from_f64(beta2), F::from_f64(eps));
                let (one_b1, one_b2) = (F::one() - b1, F::one() - b2);
                let (m, v) = self.state.split_at_mut(params.len());
                for (((w, m), v), &g) in params.iter_mut().zip(m).zip(v).zip(grad_sum) {
                    *w = *w * shrink;
                    let d = g * scale + l2 * *w;
                    *m = b1 * *m + one_b1 * d;
                    *v = b2 * *v + one_b2 * d * d;
                    *w = *w - step_size * *m / ((*v).sqrt() * root_correction + eps);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SGD: Rule = Rule::Sgd {
        momentum: 0.0,
        l2: 0.0,
    };

    fn adam(weight_decay: f64, decoupled: bool) -> Rule {
        Rule::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            decoupled,
        }
    }

    #[test]
    fn plain_sgd_divides_the_summed_gradient_by_the_batch() {
        let mut sgd = Optimizer::<f64>::new(SGD, LrSchedule::constant(0.5), 2);
        let mut w = [1.0, 2.0];
        sgd.step(0, &mut w, &[4.0, -8.0], 4);
        assert_eq!(w, [0.5, 3.0]);
    }

    #[test]
    fn momentum_accumulates_and_l2_pulls_towards_zero() {
        let rule = Rule::Sgd {
            momentum: 0.9,
            l2: 0.1,
        };
        let mut sgd = Optimizer::<f64>::new(rule, LrSchedule::constant(0.5), 1);
        let mut w = [1.0];
        sgd.step(0, &mut w, &[2.0], 2); // v = 1 + 0.1 = 1.1, w = 1 - 0.55
        assert!((w[0] - 0.45).abs() < 1e-15);
        sgd.step(1, &mut w, &[0.0], 2); // v = 0.99 + 0.045, w = 0.45 - 0.5175
        assert!((w[0] - (0.45 - 0.5 * 1.035)).abs() < 1e-15);
    }

    /// Two Adam steps against the formulas written out by hand (PyTorch's Adam, with L2).
    #[test]
    fn adam_matches_the_update_written_out_by_hand() {
        let (lr, b1, b2, eps, l2) = (0.01f64, 0.9f64, 0.999f64, 1e-8f64, 0.1);
        let mut adam = Optimizer::<f64>::new(adam(l2, false), LrSchedule::constant(lr), 2);
        let mut w = [1.0, -2.0];
        let grads = [[6.0, -3.0], [0.3, 9.0]];
        let (mut want, mut m, mut v) = (w, [0.0; 2], [0.0; 2]);
        for (t, g) in grads.iter().enumerate() {
            let before = w;
            adam.step(t, &mut w, g, 3);
            if t == 0 {
                // The first step moves every parameter by lr (Adam's normalised step).
                assert!(w
                    .iter()
                    .zip(&before)
                    .all(|(a, b)| ((a - b).abs() - lr).abs() < 1e-9));
            }
            let t = (t + 1) as i32;
            for i in 0..2 {
                let d = g[i] / 3.0 + l2 * want[i];
                m[i] = b1 * m[i] + (1.0 - b1) * d;
                v[i] = b2 * v[i] + (1.0 - b2) * d * d;
                let (m_hat, v_hat) = (m[i] / (1.0 - b1.powi(t)), v[i] / (1.0 - b2.powi(t)));
                want[i] -= lr * m_hat / (v_hat.sqrt() + eps);
            }
            for i in 0..2 {
                assert!((w[i] - want[i]).abs() < 1e-12, "{w:?} {want:?}");
            }
        }
    }

    #[test]
    fn adamw_decays_the_weights_apart_from_the_gradient() {
        let (lr, wd) = (0.1, 0.5);
        let mut adamw = Optimizer::<f64>::new(adam(wd, true), LrSchedule::constant(lr), 1);
        let mut w = [2.0];
        adamw.step(0, &mut w, &[0.0], 1);
        // No gradient: only the decay, w * (1 - lr * wd).
        assert_eq!(w, [2.0 * (1.0 - lr * wd)]);
        let mut adam = Optimizer::<f64>::new(adam(wd, false), LrSchedule::constant(lr), 1);
        let mut coupled = [2.0];
        adam.step(0, &mut coupled, &[0.0], 1);
        // Adam's L2 goes through the normalisation: a full step of about lr.
        assert!((coupled[0] - (2.0 - lr)).abs() < 1e-6, "{coupled:?}");
    }

    #[test]
    fn the_state_holds_one_vector_per_moment() {
        assert_eq!(
            Optimizer::<f32>::new(SGD, LrSchedule::constant(1.0), 5)
                .state
                .len(),
            5
        );
        let adam = Optimizer::<f32>::new(adam(0.0, true), LrSchedule::constant(1.0), 5);
        assert_eq!(adam.state.len(), 10);
    }
}
