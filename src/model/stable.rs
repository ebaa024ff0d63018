//! Numerically stable sigmoid and log-sum-exp.
//!
//! The naive forms overflow: `1 / (1 + e^-z)` for z << 0 and `ln(1 + e^z)` for z >> 0 compute
//! `e^|z|` = inf. Everything here only ever exponentiates a non-positive number (the standard
//! forms, as in scikit-learn's `_logistic_loss` and `scipy.special.logsumexp`): the softplus
//! of logistic regression is `max(z, 0) + ln(1 + e^-|z|)`, the log-sum-exp subtracts the max.
//!
//! Not a general math library: the three functions the models need, with their sources.

use num_traits::Float;

use crate::real::Real;

/// `1 / (1 + e^-z)` from `e = e^-|z|`, which the caller computes once per row (it also
/// needs it for the loss): only a non-positive number is ever exponentiated, so nothing
/// overflows.
pub fn sigmoid<F: Float>(z: F, e: F) -> F {
    if z >= F::zero() {
        F::one() / (F::one() + e)
    } else {
        e / (F::one() + e)
    }
}

/// `ln sum_k e^(z_k) = m + ln sum_k e^(z_k - m)` with `m = max_k z_k`.
pub fn log_sum_exp<F: Real>(z: &[F]) -> F {
    let m = z.iter().copied().fold(F::neg_infinity(), F::max);
    if m == F::neg_infinity() {
        return m;
    }
    m + z
        .iter()
        .map(|&v| (v - m).vexp())
        .fold(F::zero(), |a, b| a + b)
        .vln()
}

/// Index of the largest entry (the first one on ties).
pub fn argmax<F: Float>(z: &[F]) -> usize {
    let mut best = 0;
    for (k, &v) in z.iter().enumerate() {
        if v > z[best] {
            best = k;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sigmoid_of(z: f64) -> f64 {
        sigmoid(z, (-z.abs()).exp())
    }

    #[test]
    fn sigmoid_is_finite_and_exact_at_the_extremes() {
        assert_eq!(sigmoid_of(1000.0), 1.0);
        assert_eq!(sigmoid_of(-1000.0), 0.0);
        assert_eq!(sigmoid(0.0_f32, 1.0), 0.5);
        assert!((sigmoid_of(-30.0) - (-30.0_f64).exp()).abs() < 1e-25);
        assert!((sigmoid_of(1.5) - 1.0 / (1.0 + (-1.5_f64).exp())).abs() < 1e-16);
    }

    #[test]
    fn log_sum_exp_on_extreme_logits() {
        let z = [1000.0_f64, -1000.0, 0.0];
        assert_eq!(log_sum_exp(&z), 1000.0);
        let probs: Vec<f64> = z.iter().map(|v| (v - log_sum_exp(&z)).exp()).collect();
        assert_eq!(probs, vec![1.0, 0.0, 0.0]);
        let z = [-1000.0_f32, -1000.0];
        assert!((log_sum_exp(&z) - (-1000.0 + 2.0_f32.ln())).abs() < 1e-3);
        assert!((log_sum_exp(&[1.0_f64, 2.0, 3.0]) - 3.40760596444438).abs() < 1e-13);
    }

    #[test]
    fn argmax_takes_the_first_maximum() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(&[-1.0_f32]), 0);
    }
}
