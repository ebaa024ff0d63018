//! `--standardize`: every feature scaled to mean 0 and standard deviation 1, with statistics of
//! the whole training set computed across ranks, so that no rank needs to see all the data.
//!
//! Two allreduces of `d` values: the sums (giving the means), then the sums of squared
//! deviations from those means (giving the variances). The two-pass formula stays exact to
//! rounding where the one-pass `E[x^2] - E[x]^2` cancels catastrophically (a feature whose
//! mean is large against its spread). Cost: 2 allreduces of d doubles, once per run.
//!
//! Not a general preprocessing pipeline: one affine scaling, stored in the run file.

use ndarray::{Array2, ArrayView2, Axis};

use crate::comm::Comm;
use crate::real::Real;

/// Per-feature means and standard deviations (population, as scikit-learn's StandardScaler).
#[derive(Debug, Clone, PartialEq)]
pub struct Standardizer {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl Standardizer {
    /// Collective: statistics of the rows all ranks hold together (`total_rows` of them).
    pub fn fit<F: Real>(comm: &Comm, x: ArrayView2<F>, total_rows: usize) -> Self {
        let n = total_rows.max(1) as f64;
        let column_sums = |value: &dyn Fn(usize, F) -> f64| -> Vec<f64> {
            let mut sums = vec![0.0; x.ncols()];
            for row in x.axis_iter(Axis(0)) {
                for (j, (sum, &v)) in sums.iter_mut().zip(row).enumerate() {
                    *sum += value(j, v);
                }
            }
            comm.sum(&sums)
        };
        let mean: Vec<f64> = column_sums(&|_, v| v.into_f64())
            .into_iter()
            .map(|s| s / n)
            .collect();
        let std = column_sums(&|j, v| (v.into_f64() - mean[j]).powi(2))
            .into_iter()
            // A constant feature is left unscaled (as scikit-learn does), not divided by 0.
            .map(|s| Some((s / n).sqrt()).filter(|&sd| sd > 0.0).unwrap_or(1.0))
            .collect();
        Self { mean, std }
    }

    /// Scales `x` in place: `(x - mean) / std`, computed in f64.
    pub fn apply<F: Real>(&self, x: &mut Array2<F>) {
        for mut row in x.axis_iter_mut(Axis(0)) {
            for ((v, &m), &s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = F::from_f64((v.into_f64() - m) / s);
            }
        }
    }
}
