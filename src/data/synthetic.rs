//! Synthetic data, generated row by row so that no rank ever builds the whole set.
//!
//! Row `i` is a pure function of `(seed, i)`: its random stream is seeded from the pair, so any
//! rank can make any row without the rows before it, and the global dataset is the same for
//! every number of ranks. The hidden parameters (the separating vector `w*`, the class centres)
//! come from their own stream of the seed, identical on every rank.
//!
//! Two generators, chosen by the model:
//! - [`Generator::Binary`] for logistic regression: `x ~ N(0, I_d)`, `y = 1[x . w* > 0]` with
//!   `w* ~ N(0, I_d)`, each label flipped with probability `label_noise`.
//! - [`Generator::Blobs`] for softmax and MLP: `y` uniform in `0..K`, `x = c_y + N(0, I_d)` with
//!   centres `c_k ~ N(0, CENTRE_SPREAD^2 I_d)`.
//!
//! Not a data set of record: the rows are a function of the seed, for scaling studies.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::Dataset;
use crate::real::Real;

/// Standard deviation of the class centres, in units of the within-class noise. At 1.0 and 20
/// features, neighbouring centres are about 6 noise deviations apart: well separated, not
/// trivially so.
pub const CENTRE_SPREAD: f64 = 1.0;

/// Stream used for the hidden parameters; row streams are keyed by row index instead.
const PARAMETER_STREAM: u64 = u64::MAX;

/// The random stream of row `index` (or of the hidden parameters) under `seed`.
///
/// `index * odd constant` is a bijection on u64, so for one seed distinct rows get distinct
/// keys; `seed_from_u64` expands the key with SplitMix64 into the generator's state.
fn stream(seed: u64, index: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// A synthetic data distribution with its hidden parameters drawn.
#[derive(Debug, Clone)]
pub enum Generator {
    Binary { w_star: Vec<f64>, label_noise: f64 },
    Blobs { centres: Array2<f64> },
}

impl Generator {
    /// Binary labels from a random hyperplane through the origin.
    pub fn binary(features: usize, label_noise: f64, seed: u64) -> Self {
        let mut rng = stream(seed, PARAMETER_STREAM);
        let w_star = (0..features).map(|_| rng.sample(StandardNormal)).collect();
        Generator::Binary {
            w_star,
            label_noise,
        }
    }

    /// `classes` Gaussian blobs of unit variance around random centres.
    pub fn blobs(features: usize, classes: usize, seed: u64) -> Self {
        let mut rng = stream(seed, PARAMETER_STREAM);
        let centres = Array2::from_shape_simple_fn((classes, features), || {
            CENTRE_SPREAD * rng.sample::<f64, _>(StandardNormal)
        });
        Generator::Blobs { centres }
    }

    pub fn features(&self) -> usize {
        match self {
            Generator::Binary { w_star, .. } => w_star.len(),
            Generator::Blobs { centres } => centres.ncols(),
        }
    }

    /// Writes row `index` of the dataset under `seed` into `x` and returns its label.
    pub fn row(&self, seed: u64, index: u64, x: &mut [f64]) -> u32 {
        let mut rng = stream(seed, index);
        match self {
            Generator::Binary {
                w_star,
                label_noise,
            } => {
                let mut margin = 0.0;
                for (xi, wi) in x.iter_mut().zip(w_star) {
                    *xi = rng.sample(StandardNormal);
                    margin += *xi * wi;
                }
                // Always draw, so the stream does not depend on the noise level.
                let flip = rng.random::<f64>() < *label_noise;
                u32::from((margin > 0.0) != flip)
            }
            Generator::Blobs { centres } => {
                let label = rng.random_range(0..centres.nrows());
                for (xi, ci) in x.iter_mut().zip(centres.row(label)) {
                    *xi = ci + rng.sample::<f64, _>(StandardNormal);
                }
                label as u32
            }
        }
    }

    /// The rows with the given global indices, in that order.
    pub fn generate<F: Real>(
        &self,
        seed: u64,
        rows: impl IntoIterator<Item = usize>,
    ) -> Dataset<F> {
        let rows: Vec<usize> = rows.into_iter().collect();
        let n = rows.len();
        let d = self.features();
        let mut x = Array2::<F>::zeros((n, d));
        let mut y = Vec::with_capacity(n);
        let mut row = vec![0.0; d];
        for (out, index) in x.rows_mut().into_iter().zip(rows) {
            y.push(self.row(seed, index as u64, &mut row));
            for (o, v) in out.into_iter().zip(&row) {
                *o = F::from_f64(*v);
            }
        }
        Dataset { x, y }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_depends_only_on_seed_and_index() {
        let gen = Generator::blobs(5, 3, 7);
        let all: Dataset<f64> = gen.generate(7, 0..10);
        let some: Dataset<f64> = gen.generate(7, [3, 8]);
        assert_eq!(all.x.row(3), some.x.row(0));
        assert_eq!(all.x.row(8), some.x.row(1));
        assert_eq!(all.y[8], some.y[1]);
        let other_seed: Dataset<f64> = Generator::blobs(5, 3, 8).generate(8, 0..10);
        assert_ne!(all.x, other_seed.x);
    }

    #[test]
    fn binary_labels_follow_the_hidden_hyperplane() {
        let gen = Generator::binary(4, 0.0, 1);
        let Generator::Binary { w_star, .. } = &gen else {
            unreachable!()
        };
        let data: Dataset<f64> = gen.generate(1, 0..500);
        for (x, &y) in data.x.rows().into_iter().zip(&data.y) {
            let margin: f64 = x.iter().zip(w_star).map(|(a, b)| a * b).sum();
            assert_eq!(y, u32::from(margin > 0.0));
        }
        let positives = data.y.iter().filter(|&&y| y == 1).count();
        assert!(
            (150..350).contains(&positives),
            "{positives} of 500 positive"
        );
    }

    #[test]
    fn label_noise_flips_about_that_share_of_labels() {
        let clean: Dataset<f64> = Generator::binary(4, 0.0, 1).generate(1, 0..4000);
        let noisy: Dataset<f64> = Generator::binary(4, 0.1, 1).generate(1, 0..4000);
        assert_eq!(clean.x, noisy.x);
        let flipped = clean.y.iter().zip(&noisy.y).filter(|(a, b)| a != b).count();
        assert!((300..500).contains(&flipped), "{flipped} of 4000 flipped");
    }

    #[test]
    fn blobs_use_every_class() {
        let data: Dataset<f32> = Generator::blobs(3, 10, 5).generate(5, 0..1000);
        for class in 0..10 {
            assert!(data.y.contains(&class));
        }
    }
}
