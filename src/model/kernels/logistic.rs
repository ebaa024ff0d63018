//! Logistic regression's step in one pass over the rows: LANES rows at a time, their logits,
//! residuals, loss and accuracy terms and gradient, while the rows are in L1.
//!
//! ```text
//! for each group of LANES (8) rows, each read as W lanes (features padded to 8, 16, 24, 32, 64):
//!     z_i = x_i . w + b                 W / LANES multiply-adds per row, then one
//!                                       transpose-and-add for the group (crate::simd::RowDots)
//!     e_i = exp(-|z_i|)                 one vector for the group (crate::vmath)
//!     loss += max(z_i, 0) - t_i z_i,  factor_i = 1 + e_i  (ln of a product of 64 factors)
//!     correct += [z_i > 0] == [t_i = 1]
//!     r_i = sigmoid(z_i) - t_i          (from e_i: 1/(1+e) or e/(1+e))
//!     grad w += r_i x_i, grad b += r_i  the rows read again, from L1
//! ```
//! The loss is the stable softplus form (only non-positive numbers are exponentiated), so
//! nothing overflows for any logits. Rows wider than 64 features take a block-wise loop over
//! slices instead ([`block_rows`] rows a block).

use super::multiversion;
use crate::real::Real;
use crate::simd::{dot_lanes, mul_add, sum, LANES};

/// Sums over the rows of one call.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sums {
    pub loss: f64,
    pub correct: usize,
}

/// Rows per block: the block's features fit in 16 KiB, half of a 32 KiB L1, and a whole
/// number of lanes.
pub fn block_rows<F>(features: usize) -> usize {
    let rows = (16 << 10) / (features.max(1) * std::mem::size_of::<F>());
    (rows.clamp(LANES, 512) / LANES) * LANES
}

multiversion! {
    /// Loss and accuracy sums of the rows `x` [rows, features] (row-major) with labels `y`,
    /// and, when `grad` is given ([w..., b]), the gradient of the summed loss into it.
    /// `scratch` holds [`block_rows`] values.
    pub fn loss_and_grad<F: Real>(
        x: &[F],
        y: &[u32],
        params: &[F],
        grad: Option<&mut [F]>,
        scratch: &mut [F],
    ) -> Sums = body;
}

#[inline(always)]
fn body<F: Real, const FMA: bool, const ISA: u8>(
    x: &[F],
    y: &[u32],
    params: &[F],
    grad: Option<&mut [F]>,
    scratch: &mut [F],
) -> Sums {
    // Narrow rows (the common case: tens of features) are held in registers, padded to a
    // whole number of vectors; wider ones take the general loop.
    match params.len() - 1 {
        0..=8 => narrow::<F, FMA, ISA, 8>(x, y, params, grad),
        9..=16 => narrow::<F, FMA, ISA, 16>(x, y, params, grad),
        17..=24 => narrow::<F, FMA, ISA, 24>(x, y, params, grad),
        25..=32 => narrow::<F, FMA, ISA, 32>(x, y, params, grad),
        33..=64 => narrow::<F, FMA, ISA, 64>(x, y, params, grad),
        _ => wide::<F, FMA>(x, y, params, grad, scratch),
    }
}

/// Rows of at most `W` features (`W` a multiple of LANES), LANES rows at a time, in one pass:
/// the rows' logits, their residuals, loss and accuracy terms (one vector op each), and their
/// gradient while they are in L1. Each row is read as `W` values, the lanes past its end
/// multiplied by zero weights (they hold the next row's first values; a non-finite value there
/// makes the batch's gradient non-finite in any case), so its dot product is `W / LANES`
/// vector products, and the group's LANES sums are one transpose-and-add
/// ([`crate::simd::RowDots`]); the gradient accumulates in `W` lanes (those past
/// the row's end are discarded). The last rows, whose `W`-wide read would leave `x`, are
/// copied and zero-padded.
#[inline(always)]
fn narrow<F: Real, const FMA: bool, const ISA: u8, const W: usize>(
    x: &[F],
    y: &[u32],
    params: &[F],
    grad: Option<&mut [F]>,
) -> Sums {
    let (w, b) = params.split_at(params.len() - 1);
    let features = w.len();
    let mut weights = [F::zero(); W];
    weights[..features].copy_from_slice(w);
    let rows = y.len();
    // Rows whose W-wide read stays inside `x`, in whole groups of LANES.
    let inside = match x.len().checked_sub(W) {
        Some(room) => (room / features.max(1) + 1).min(rows) / LANES * LANES,
        None => 0,
    };
    let mut acc = Accumulators::<F, FMA, W>::default();
    for (g, labels) in y[..inside].as_chunks::<LANES>().0.iter().enumerate() {
        // One bounds check per group: the group's reads, from its first row's start to its
        // last row's start + W.
        let group = &x[g * LANES * features..][..(LANES - 1) * features + W];
        let rows: [&[F; W]; LANES] = std::array::from_fn(|r| {
            // SAFETY: r * features + W <= group.len() for every r < LANES.
            unsafe { &*group.as_ptr().add(r * features).cast::<[F; W]>() }
        });
        // SAFETY: `multiversion!` instantiates this body with ISA only for a path the CPU has.
        let dots = unsafe { F::row_dots::<ISA, FMA, W>(&rows, &weights) };
        acc.add_group(&rows, labels, dots.map(|dot| b[0] + dot));
    }
    // The rest, one padded copy at a time.
    for (i, &label) in y.iter().enumerate().skip(inside) {
        let mut row = [F::zero(); W];
        row[..features].copy_from_slice(&x[i * features..(i + 1) * features]);
        acc.add_row(&row, label, b[0], &weights);
    }
    acc.take_logarithms();
    if let Some(g) = grad {
        g[..features].copy_from_slice(&acc.gw[..features]);
        g[features] = sum(&acc.gb) + acc.gb_rest;
    }
    Sums {
        loss: (sum(&acc.loss) + acc.loss_rest).into_f64(),
        correct: (sum(&acc.correct) + acc.correct_rest).into_f64() as usize,
    }
}

/// The running sums of [`narrow`]: LANES lanes for the groups, one value for the rest.
struct Accumulators<F, const FMA: bool, const W: usize> {
    gw: [F; W],
    gb: [F; LANES],
    loss: [F; LANES],
    /// Softplus factors not yet taken the logarithm of, and how many groups they hold.
    factors: [F; LANES],
    pending: usize,
    correct: [F; LANES],
    gb_rest: F,
    loss_rest: F,
    correct_rest: F,
}

impl<F: Real, const FMA: bool, const W: usize> Default for Accumulators<F, FMA, W> {
    fn default() -> Self {
        let zero = F::zero();
        Self {
            gw: [zero; W],
            gb: [zero; LANES],
            loss: [zero; LANES],
            factors: [F::one(); LANES],
            pending: 0,
            correct: [zero; LANES],
            gb_rest: zero,
            loss_rest: zero,
            correct_rest: zero,
        }
    }
}

impl<F: Real, const FMA: bool, const W: usize> Accumulators<F, FMA, W> {
    /// LANES rows with their logits `z`: residuals in one vector, then the gradient.
    #[inline(always)]
    fn add_group(&mut self, rows: &[&[F; W]; LANES], labels: &[u32; LANES], mut z: [F; LANES]) {
        for k in 0..LANES {
            let (linear, factor, correct) = residual::<F, FMA>(&mut z[k], labels[k]);
            self.loss[k] = self.loss[k] + linear;
            self.factors[k] = self.factors[k] * factor;
            self.correct[k] = self.correct[k] + correct;
            self.gb[k] = self.gb[k] + z[k];
        }
        self.pending += 1;
        if self.pending == PRODUCT {
            self.take_logarithms();
        }
        for (row, &r) in rows.iter().zip(&z) {
            for k in 0..W {
                self.gw[k] = mul_add::<F, FMA>(r, row[k], self.gw[k]);
            }
        }
    }

    /// Adds the logarithms of the pending factors to the loss.
    #[inline(always)]
    fn take_logarithms(&mut self) {
        for k in 0..LANES {
            self.loss[k] = self.loss[k] + self.factors[k].vln();
            self.factors[k] = F::one();
        }
        self.pending = 0;
    }

    /// One row, the same arithmetic.
    #[inline(always)]
    fn add_row(&mut self, row: &[F; W], label: u32, b: F, w: &[F; W]) {
        let mut z = b + dot_lanes::<F, FMA, W>(row, w);
        let (linear, factor, correct) = residual::<F, FMA>(&mut z, label);
        self.loss_rest = self.loss_rest + linear + factor.vln();
        self.correct_rest = self.correct_rest + correct;
        self.gb_rest = self.gb_rest + z;
        for k in 0..W {
            self.gw[k] = mul_add::<F, FMA>(z, row[k], self.gw[k]);
        }
    }
}

/// Rows of any width: dot products and gradient updates over slices.
#[inline(always)]
fn wide<F: Real, const FMA: bool>(
    x: &[F],
    y: &[u32],
    params: &[F],
    mut grad: Option<&mut [F]>,
    scratch: &mut [F],
) -> Sums {
    let (w, b) = params.split_at(params.len() - 1);
    let features = w.len();
    if let Some(g) = grad.as_deref_mut() {
        g.fill(F::zero());
    }
    let mut sums = Sums::default();
    let block = scratch.len();
    for (rows, labels) in x.chunks(block * features).zip(y.chunks(block)) {
        let z = &mut scratch[..labels.len()];
        for (zi, row) in z.iter_mut().zip(rows.chunks_exact(features)) {
            *zi = b[0] + dot::<F, FMA>(row, w);
        }
        let (loss, correct) = residuals::<F, FMA>(z, labels);
        sums.loss += loss;
        sums.correct += correct;
        if let Some(g) = grad.as_deref_mut() {
            let (gw, gb) = g.split_at_mut(features);
            for (&r, row) in z.iter().zip(rows.chunks_exact(features)) {
                for (gj, &xj) in gw.iter_mut().zip(row) {
                    *gj = mul_add::<F, FMA>(r, xj, *gj);
                }
            }
            gb[0] = gb[0] + sum(z);
        }
    }
    sums
}

/// Turns logits `z` into residuals `sigmoid(z) - t` and returns the summed loss and the
/// correct predictions: LANES rows at a time, so the compiler keeps each lane in a vector.
#[inline(always)]
fn residuals<F: Real, const FMA: bool>(z: &mut [F], y: &[u32]) -> (f64, usize) {
    let mut loss = [F::zero(); LANES];
    let mut correct = [F::zero(); LANES];
    let (chunks, rest) = z.as_chunks_mut::<LANES>();
    let (labels, rest_labels) = y.split_at(chunks.len() * LANES);
    for (zs, ts) in chunks.iter_mut().zip(labels.as_chunks::<LANES>().0) {
        for k in 0..LANES {
            let (linear, factor, c) = residual::<F, FMA>(&mut zs[k], ts[k]);
            loss[k] = loss[k] + linear + factor.vln();
            correct[k] = correct[k] + c;
        }
    }
    let (mut tail_loss, mut tail_correct) = (F::zero(), F::zero());
    for (zi, &t) in rest.iter_mut().zip(rest_labels) {
        let (linear, factor, c) = residual::<F, FMA>(zi, t);
        tail_loss = tail_loss + linear + factor.vln();
        tail_correct = tail_correct + c;
    }
    (
        (sum(&loss) + tail_loss).into_f64(),
        (sum(&correct) + tail_correct).into_f64() as usize,
    )
}

/// One row: its loss as `linear + ln(factor)`, with `factor` = 1 + e^-|z| in [1, 2] (the
/// logarithms are taken of products of many factors, [`PRODUCT`]), 1 if correct, and `z`
/// replaced by its residual.
#[inline(always)]
fn residual<F: Real, const FMA: bool>(z: &mut F, label: u32) -> (F, F, F) {
    let (zero, one) = (F::zero(), F::one());
    let t = if label == 1 { one } else { zero };
    let e = (-z.abs()).vexp_with::<FMA>();
    let linear = z.max(zero) - t * *z;
    let positive = *z > zero;
    let correct = if positive == (label == 1) { one } else { zero };
    let numerator = if *z >= zero { one } else { e };
    *z = numerator / (one + e) - t;
    (linear, one + e, correct)
}

/// Factors in [1, 2] multiplied before one logarithm is taken: their product is at most 2^64,
/// far inside the range of f32 and f64, and its rounding (64 ulp relative, 7e-15 in f64) is
/// far below what a summed loss can show; the per-row cost of the loss is then one `exp`.
const PRODUCT: usize = 64;

/// `a . b` with LANES independent accumulators, added in a fixed order.
#[inline(always)]
pub fn dot<F: Real, const FMA: bool>(a: &[F], b: &[F]) -> F {
    let mut acc = [F::zero(); LANES];
    let (ac, ar) = a.as_chunks::<LANES>();
    let (bc, br) = b.as_chunks::<LANES>();
    for (x, y) in ac.iter().zip(bc) {
        for k in 0..LANES {
            acc[k] = mul_add::<F, FMA>(x[k], y[k], acc[k]);
        }
    }
    let mut tail = F::zero();
    for (&x, &y) in ar.iter().zip(br) {
        tail = mul_add::<F, FMA>(x, y, tail);
    }
    sum(&acc) + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::Isa;

    /// The blocked, vectorised kernel against the plain formulas row by row (libm's exp and
    /// ln), on rows of every block remainder, for both element types; and the SIMD paths with
    /// a fused multiply-add give the same bits.
    fn check<F: Real>(features: usize, tolerance: f64) {
        for rows in [0, 1, 5, 8, 63, 300] {
            let x: Vec<F> = (0..rows * features)
                .map(|i| F::from_f64(((i * 37 % 101) as f64 - 50.0) / 9.0))
                .collect();
            let y: Vec<u32> = (0..rows).map(|i| (i % 3 == 0) as u32).collect();
            let params: Vec<F> = (0..=features)
                .map(|j| F::from_f64(0.3 - 0.1 * j as f64))
                .collect();
            let mut scratch = vec![F::zero(); 16];
            let mut reference = vec![0.0; features + 1];
            // Sum of |terms| of each gradient entry: the scale of its rounding error.
            let mut scale = vec![0.0; features + 1];
            let (mut loss, mut correct) = (0.0, 0);
            for (row, &label) in x.chunks(features).zip(&y) {
                let z: f64 = params[features].into_f64()
                    + row
                        .iter()
                        .zip(&params)
                        .map(|(a, b)| a.into_f64() * b.into_f64())
                        .sum::<f64>();
                let t = f64::from(label);
                loss += z.max(0.0) - t * z + (-z.abs()).exp().ln_1p();
                correct += usize::from((z > 0.0) == (label == 1));
                let r = 1.0 / (1.0 + (-z).exp()) - t;
                for ((g, m), &v) in reference.iter_mut().zip(&mut scale).zip(row) {
                    *g += r * v.into_f64();
                    *m += (r * v.into_f64()).abs();
                }
                reference[features] += r;
                scale[features] += r.abs();
            }
            let mut grads = Vec::new();
            for isa in Isa::available() {
                let mut grad = vec![F::zero(); features + 1];
                let sums = loss_and_grad(isa, &x, &y, &params, Some(&mut grad), &mut scratch);
                assert_eq!(sums.correct, correct, "{isa:?} rows={rows}");
                assert!(
                    (sums.loss - loss).abs() <= tolerance * (1.0 + loss),
                    "{isa:?}: {} vs {loss}",
                    sums.loss
                );
                for ((g, r), m) in grad.iter().zip(&reference).zip(&scale) {
                    assert!(
                        (g.into_f64() - r).abs() <= tolerance * (1.0 + m),
                        "{isa:?}: {g} vs {r}"
                    );
                }
                grads.push((grad, sums));
            }
            // The paths with a fused multiply-add (all but x86-64's baseline) agree bitwise.
            let fused = &grads[usize::from(!crate::simd::BASELINE_FMA)..];
            assert!(
                fused.windows(2).all(|w| w[0] == w[1]),
                "paths differ, rows={rows}"
            );
        }
    }

    #[test]
    fn matches_the_row_by_row_formulas_in_every_simd_path() {
        for features in [1, 7, 8, 20, 24, 33, 64, 65, 130] {
            check::<f64>(features, 1e-13);
            check::<f32>(features, 1e-5);
        }
    }

    #[test]
    fn extreme_logits_give_finite_exact_losses() {
        // z = +-1000: confidently right (loss 0) and confidently wrong (loss 1000).
        let x = [1000.0f64, 1000.0];
        let sums = loss_and_grad(
            Isa::current(),
            &x,
            &[1, 0],
            &[1.0, 0.0],
            None,
            &mut [0.0; 8],
        );
        assert_eq!((sums.loss, sums.correct), (1000.0, 1));
    }
}
