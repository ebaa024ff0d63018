//! Elastic Averaging SGD (Zhang, Choromanska and LeCun, 2015), synchronous form: each rank
//! trains its own model `x_i` on its own rows; every K steps (`--average-every`) one allreduce
//! of the local models gives their sum, and with the centre `c` (the same bits on every rank)
//!
//! ```text
//! x_i <- x_i - alpha (x_i - c)                  each rank toward the centre
//! c   <- c + alpha sum_i (x_i - c)              the centre toward the models: beta = P alpha
//! ```
//! both from the values before the update. The final model is the centre.
//!
//! Cost per elastic update: one allreduce of the n parameters (the library's or ours: bytes as
//! that algorithm's formula for n values) and 4n flops; per step, 1/K of that. Local SGD
//! (`--average-every`) moves the same bytes; EASGD's local models keep their distance from the
//! centre (exploration), local SGD's are reset to the mean.

use crate::real::Real;

pub struct Elastic<F> {
    alpha: F,
    /// The centre variable, the same on every rank (saved in checkpoints).
    pub centre: Vec<F>,
}

impl<F: Real> Elastic<F> {
    /// Starts with the centre at the initial parameters (every rank's).
    pub fn new(alpha: f64, params: &[F]) -> Self {
        Self {
            alpha: F::from_f64(alpha),
            centre: params.to_vec(),
        }
    }

    /// The elastic update of this rank's `params` and the centre, from `sum`, the local models
    /// summed over the `ranks` ranks.
    pub fn pull(&mut self, params: &mut [F], sum: &[F], ranks: usize) {
        let ranks = F::from_f64(ranks as f64);
        for ((x, c), &total) in params.iter_mut().zip(&mut self.centre).zip(sum) {
            let centre = *c;
            *x = *x - self.alpha * (*x - centre);
            *c = centre + self.alpha * (total - ranks * centre);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two ranks' models at 0 and 4, the centre at 1, alpha 0.25: each model moves a quarter
    /// of its distance to the centre, the centre half of the distance to the mean (beta = 0.5).
    #[test]
    fn models_and_centre_move_toward_each_other() {
        let mut elastic = Elastic::<f64>::new(0.25, &[1.0]);
        let (mut rank0, mut rank1) = ([0.0], [4.0]);
        let sum = [rank0[0] + rank1[0]];
        elastic.pull(&mut rank0, &sum, 2);
        let mut other = Elastic::<f64>::new(0.25, &[1.0]);
        other.pull(&mut rank1, &sum, 2);
        assert_eq!((rank0[0], rank1[0]), (0.25, 3.25));
        assert_eq!(elastic.centre, [1.0 + 0.5 * (2.0 - 1.0)]);
        assert_eq!(
            elastic.centre, other.centre,
            "the same centre on every rank"
        );
    }
}
