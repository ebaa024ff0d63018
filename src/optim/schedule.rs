//! The learning rate as a function of the global step: a linear warm-up, then a decay.
//!
//! ```text
//! lr_t = lr * warm(t) * decay(t)
//! warm(t)  = min(1, (t + 1) / W)                       (1 when W = 0)
//! constant:  decay = 1
//! cosine:    decay = (1 + cos(pi * min(1, max(0, t - W) / (T - W)))) / 2   (to 0 at T)
//! step:      decay = gamma ^ floor(t / S)              (PyTorch's StepLR, S in steps)
//! ```
//! `T` is the run's total steps, `W` the warm-up steps. The rate is a function of the step alone
//! (no state), so a resumed run continues the same curve, and every rank computes the same one.

use crate::kinds::LrDecay;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrSchedule {
    pub lr: f64,
    /// Steps over which the rate rises linearly to `lr`; 0 for none.
    pub warmup_steps: usize,
    pub decay: LrDecay,
    /// The run's steps (cosine reaches 0 there).
    pub total_steps: usize,
    /// `step`: the rate is multiplied by `gamma` every `step_every` steps.
    pub step_every: usize,
    pub gamma: f64,
}

impl LrSchedule {
    /// A constant rate, with no warm-up.
    #[cfg(test)]
    pub fn constant(lr: f64) -> Self {
        Self {
            lr,
            warmup_steps: 0,
            decay: LrDecay::Constant,
            total_steps: 0,
            step_every: 0,
            gamma: 1.0,
        }
    }

    /// The learning rate at global step `step` (counted from 0).
    pub fn at(&self, step: usize) -> f64 {
        let warm = match self.warmup_steps {
            0 => 1.0,
            w => ((step + 1) as f64 / w as f64).min(1.0),
        };
        let decay = match self.decay {
            LrDecay::Constant => 1.0,
            LrDecay::Cosine => {
                let span = self.total_steps.saturating_sub(self.warmup_steps).max(1);
                let done = step.saturating_sub(self.warmup_steps) as f64 / span as f64;
                0.5 * (1.0 + (std::f64::consts::PI * done.min(1.0)).cos())
            }
            LrDecay::Step => self.gamma.powi((step / self.step_every.max(1)) as i32),
        };
        self.lr * warm * decay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_rises_linearly_then_holds() {
        let schedule = LrSchedule {
            warmup_steps: 4,
            ..LrSchedule::constant(0.5)
        };
        let rates: Vec<f64> = (0..6).map(|t| schedule.at(t)).collect();
        assert_eq!(rates, [0.125, 0.25, 0.375, 0.5, 0.5, 0.5]);
    }

    #[test]
    fn cosine_falls_from_the_end_of_warmup_to_zero_at_the_last_step() {
        let schedule = LrSchedule {
            warmup_steps: 2,
            decay: LrDecay::Cosine,
            total_steps: 10,
            ..LrSchedule::constant(1.0)
        };
        assert_eq!(schedule.at(0), 0.5);
        assert_eq!(schedule.at(2), 1.0);
        assert!((schedule.at(6) - 0.5).abs() < 1e-15, "half way: 1/2");
        assert!(schedule.at(10).abs() < 1e-15);
        assert!((2..10).all(|t| schedule.at(t + 1) < schedule.at(t)));
    }

    #[test]
    fn step_decay_multiplies_by_gamma_every_s_steps() {
        let schedule = LrSchedule {
            decay: LrDecay::Step,
            step_every: 3,
            gamma: 0.1,
            ..LrSchedule::constant(1.0)
        };
        let rates: Vec<f64> = (0..7).map(|t| schedule.at(t)).collect();
        assert_eq!(rates, [1.0, 1.0, 1.0, 0.1, 0.1, 0.1, 0.1f64.powi(2)]);
    }
}
