//! Sums of floating-point vectors that do not depend on the order of the additions: the
//! arithmetic of `--reproducible`.
//!
//! Each value x is rounded to a multiple of 2^-64 and split into three 32-bit integer limbs,
//! `x ~ l2 + l1 2^-32 + l0 2^-64`, each limb held exactly in an f64. Adding limbs is integer
//! addition, exact while a sum stays below 2^53 (2^21 values of at most 2^32 each), hence
//! associative: any allreduce algorithm, any number of ranks and any grouping of the terms
//! give the same limb sums, bit for bit. The limbs travel as plain f64 vectors, so every
//! `--allreduce` (and `MPI_Allreduce` itself) carries them unchanged.
//!
//! ```text
//! l2 = round(x)             r1 = x - l2           (exact, |r1| <= 1/2)
//! l1 = round(r1 2^32)       r0 = r1 2^32 - l1     (exact)
//! l0 = round(r0 2^32)                             (the bits below 2^-64 are rounded off)
//! sum = (L2 2^64 + L1 2^32 + L0) as i128, rounded once to the nearest float, times 2^-64
//! ```
//!
//! Range: |x| < 2^32 (about 4.3e9), resolution 2^-64 (about 5.4e-20): a gradient element of
//! 1e-3 keeps 54 significant bits, more than an f64 holds. A value outside the range (or NaN,
//! Inf) makes its sum NaN, which the trainer reports as divergence. Cost: three f64 per
//! element on the wire (3x an f64 gradient, 6x an f32 one), a few operations per element and
//! block to split, and one pass to round.

use crate::real::Real;

/// Limbs per value.
pub const LIMBS: usize = 3;

/// Values must stay below this magnitude.
pub const LIMIT: f64 = 4_294_967_296.0; // 2^32

const SHIFT: f64 = 4_294_967_296.0; // 2^32, one limb
const UNIT: f64 = 1.0 / 18_446_744_073_709_551_616.0; // 2^-64, the last limb's weight

/// The running limb sums of a vector of `n` values: limb k of element i at `k n + i`.
pub struct ExactSum {
    limbs: Vec<f64>,
}

impl ExactSum {
    pub fn new(n: usize) -> Self {
        Self {
            limbs: vec![0.0; LIMBS * n],
        }
    }

    pub fn clear(&mut self) {
        self.limbs.fill(0.0);
    }

    /// Adds `values` (of length n), exactly.
    pub fn add<F: Real>(&mut self, values: &[F]) {
        let n = values.len();
        let (l0, rest) = self.limbs.split_at_mut(n);
        let (l1, l2) = rest.split_at_mut(n);
        for (i, v) in values.iter().enumerate() {
            let [low, mid, high] = split(v.into_f64());
            l0[i] += low;
            l1[i] += mid;
            l2[i] += high;
        }
    }

    /// The limbs, to be summed over ranks element by element.
    pub fn limbs(&self) -> &[f64] {
        &self.limbs
    }
}

/// The three limbs of `x` (low first); NaN limbs when `x` is outside the range. Written
/// without a branch, so that the loop over a gradient vectorises.
#[inline(always)]
fn split(x: f64) -> [f64; LIMBS] {
    let high = if x.abs() < LIMIT { round(x) } else { f64::NAN };
    let r1 = (x - high) * SHIFT;
    let mid = round(r1);
    let low = round((r1 - mid) * SHIFT);
    [low, mid, high]
}

/// `x` rounded to the nearest integer, for |x| <= 2^32: adding and subtracting 1.5 * 2^52
/// leaves no fraction bits (two additions, which vectorise, where `f64::trunc` without SSE4.1
/// is a call into libm). Each remainder after a limb is exact, so the limbs are integers of
/// at most 2^32 whose sum is x to within 2^-65.
#[inline(always)]
fn round(x: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52
    (x + MAGIC) - MAGIC
}

/// Each element's value from its limb sums (`limbs` as [`ExactSum::limbs`] lays them out),
/// rounded once to the nearest `F`; NaN where a sum is not finite.
pub fn round_into<F: Real>(limbs: &[f64], out: &mut [F]) {
    let n = out.len();
    assert_eq!(limbs.len(), LIMBS * n, "limbs of the output's length");
    let (l0, rest) = limbs.split_at(n);
    let (l1, l2) = rest.split_at(n);
    for (i, o) in out.iter_mut().enumerate() {
        *o = F::from_f64(combine([l0[i], l1[i], l2[i]]));
    }
}

/// The value of limb sums: one integer, rounded once.
fn combine(limbs: [f64; LIMBS]) -> f64 {
    if limbs.iter().any(|l| !l.is_finite()) {
        return f64::NAN;
    }
    // Each limb sum is an integer below 2^53, so the casts are exact.
    let [low, mid, high] = limbs.map(|l| l as i64 as i128);
    ((high << 64) + (mid << 32) + low) as f64 * UNIT
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum_of(values: &[f64]) -> f64 {
        let mut sum = ExactSum::new(1);
        for v in values {
            sum.add(&[*v]);
        }
        let mut out = [0.0];
        round_into(sum.limbs(), &mut out);
        out[0]
    }

    #[test]
    fn limbs_are_integers_whose_sum_is_the_value_to_two_to_the_minus_64() {
        for x in [0.0, 1.0, -1.5, 3.25e-7, -123456.789, 4.0e9, 1e-19, -1e-25] {
            let [low, mid, high] = split(x);
            let back = high + mid / SHIFT + low / (SHIFT * SHIFT);
            assert!((back - x).abs() <= UNIT, "{x}: {back}");
            assert!([low, mid, high]
                .iter()
                .all(|l| l.fract() == 0.0 && l.abs() < SHIFT));
        }
        assert!(split(LIMIT)[0].is_nan());
        assert!(split(f64::NAN)[2].is_nan());
    }

    #[test]
    fn the_sum_does_not_depend_on_the_order() {
        // Terms whose float sum changes with the order: 1e16 + 1 - 1e16.
        let values = [0.1, 1e9, 0.2, -1e9, 0.3, 1e-12, -0.6];
        let forward = sum_of(&values);
        let mut reversed = values;
        reversed.reverse();
        assert_eq!(forward.to_bits(), sum_of(&reversed).to_bits());
        let mut shuffled = values;
        shuffled.swap(0, 5);
        shuffled.swap(2, 6);
        assert_eq!(forward.to_bits(), sum_of(&shuffled).to_bits());
        // The exact sum of the terms (0.1 + 0.2 + 0.3 - 0.6 in binary is 2.8e-17, not 0).
        assert!((forward - 1e-12).abs() < 1e-16, "{forward}");
    }

    #[test]
    fn limb_sums_add_like_the_values_across_vectors() {
        // Two halves summed apart, then their limbs added: the same bits as one sum.
        let values: Vec<f64> = (0..200)
            .map(|i| ((i * 7919) % 1000) as f64 * 1.37e-3 - 0.5)
            .collect();
        let mut whole = ExactSum::new(1);
        let (mut a, mut b) = (ExactSum::new(1), ExactSum::new(1));
        for (i, v) in values.iter().enumerate() {
            whole.add(&[*v]);
            if i % 3 == 0 {
                a.add(&[*v])
            } else {
                b.add(&[*v])
            }
        }
        let added: Vec<f64> = a
            .limbs()
            .iter()
            .zip(b.limbs())
            .map(|(x, y)| x + y)
            .collect();
        let (mut one, mut two) = ([0.0f32], [0.0f32]);
        round_into(whole.limbs(), &mut one);
        round_into(&added, &mut two);
        assert_eq!(one[0].to_bits(), two[0].to_bits());
        let exact: f64 = values.iter().sum();
        assert!((f64::from(one[0]) - exact).abs() < 1e-5);
    }

    #[test]
    fn out_of_range_values_make_the_sum_nan() {
        assert!(sum_of(&[1.0, 5e9]).is_nan());
        assert!(sum_of(&[1.0, f64::INFINITY]).is_nan());
    }
}
