//! Numerically stable sigmoid, softplus and log-sum-exp.
//!
//! The naive forms overflow: `1 / (1 + e^-z)` for z << 0 and `ln(1 + e^z)` for z >> 0 compute
//! `e^|z|` = inf. Each function below only ever exponentiates a non-positive number
//! (the standard forms, e.g. scikit-learn's `_logistic_loss` and `scipy.special.logsumexp`).

use num_traits::Float;

/// `1 / (1 + e^-z)`, via `e^-|z|` so nothing overflows.
pub fn sigmoid<F: Float>(z: F) -> F {
    let e = (-z.abs()).exp();
    if z >= F::zero() {
        F::one() / (F::one() + e)
    } else {
        e / (F::one() + e)
    }
}

/// `ln(1 + e^z) = max(z, 0) + ln(1 + e^-|z|)`; the binary cross-entropy of logit z and label
/// t is `softplus(z) - t z`.
pub fn softplus<F: Float>(z: F) -> F {
    z.max(F::zero()) + (-z.abs()).exp().ln_1p()
}

/// `ln sum_k e^(z_k) = m + ln sum_k e^(z_k - m)` with `m = max_k z_k`.
pub fn log_sum_exp<F: Float>(z: &[F]) -> F {
    let m = z.iter().copied().fold(F::neg_infinity(), F::max);
    if m == F::neg_infinity() {
        return m;
    }
    m + z
        .iter()
        .map(|&v| (v - m).exp())
        .fold(F::zero(), |a, b| a + b)
        .ln()
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

    #[test]
    fn sigmoid_is_finite_and_exact_at_the_extremes() {
        assert_eq!(sigmoid(1000.0_f64), 1.0);
        assert_eq!(sigmoid(-1000.0_f64), 0.0);
        assert_eq!(sigmoid(0.0_f32), 0.5);
        assert!((sigmoid(-30.0_f64) - (-30.0_f64).exp()).abs() < 1e-25);
    }

    #[test]
    fn softplus_matches_the_naive_form_where_that_is_safe_and_stays_finite_elsewhere() {
        for z in [-5.0_f64, -0.5, 0.0, 0.5, 5.0] {
            assert!((softplus(z) - (1.0 + z.exp()).ln()).abs() < 1e-15);
        }
        assert_eq!(softplus(1000.0_f64), 1000.0);
        assert_eq!(softplus(-1000.0_f64), 0.0);
        assert_eq!(softplus(1e4_f32), 1e4);
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
