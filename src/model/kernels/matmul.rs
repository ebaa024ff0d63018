//! `C = A B` or `C += A B` for the MLP, with whichever library was measured faster at the
//! shape: the pure-Rust `gemm` crate where the inner dimension is small (the first layer's
//! `X W1`, k = features; the input gradient `D W^T`, k = classes: 9-19% faster at 128 rows in
//! two of three runs of `bench/gemm_shapes.rs`), OpenBLAS everywhere else (up to 2x faster at
//! the products with 10 output columns and at `X^T D`). Both are single-threaded here.
//!
//! Not a GEMM of our own: both libraries are far better at it than a hand-written loop.

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};

use crate::real::Real;

/// Inner dimensions up to this go to the `gemm` crate.
const SMALL_INNER: usize = 32;

/// `c = a b`, or `c += a b` with `add`.
pub fn matmul<F: Real>(a: ArrayView2<F>, b: ArrayView2<F>, add: bool, c: &mut ArrayViewMut2<F>) {
    let (m, k) = a.dim();
    let n = b.ncols();
    if k > SMALL_INNER || m == 0 || n == 0 || k == 0 {
        let beta = if add { F::one() } else { F::zero() };
        general_mat_mul(F::one(), &a, &b, beta, c);
        return;
    }
    let (c_rows, c_cols) = (c.strides()[0], c.strides()[1]);
    // SAFETY: the pointers and element strides describe the three views; `c` is borrowed
    // mutably, so it overlaps neither `a` nor `b`. `gemm` computes
    // dst = alpha dst + beta lhs rhs, reading dst only when asked to.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_cols,
            c_rows,
            add,
            a.as_ptr(),
            a.strides()[1],
            a.strides()[0],
            b.as_ptr(),
            b.strides()[1],
            b.strides()[0],
            F::one(),
            F::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// Both libraries, through every shape class, against a triple loop.
    #[test]
    fn products_match_the_definition_with_either_library() {
        for (m, k, n) in [(5, 3, 7), (128, 20, 512), (4, 40, 3), (1, 1, 1), (3, 0, 2)] {
            let a = Array2::from_shape_fn((m, k), |(i, j)| (i * 3 + j) as f64 * 0.5 - 2.0);
            let b = Array2::from_shape_fn((k, n), |(i, j)| (i + 2 * j) as f64 * 0.25 - 1.0);
            for add in [false, true] {
                let mut c = Array2::from_elem((m, n), 1.0);
                matmul(a.view(), b.view(), add, &mut c.view_mut());
                for i in 0..m {
                    for j in 0..n {
                        let dot: f64 = (0..k).map(|l| a[[i, l]] * b[[l, j]]).sum();
                        let want = dot + if add { 1.0 } else { 0.0 };
                        assert!((c[[i, j]] - want).abs() < 1e-9, "{m}x{k}x{n} add={add}");
                    }
                }
            }
            // Transposed operands (strided views), as the backward pass uses them.
            let mut c = Array2::zeros((k, k));
            matmul(a.t(), a.view(), false, &mut c.view_mut());
            let want = a.t().dot(&a);
            assert!(c.iter().zip(&want).all(|(x, y)| (x - y).abs() < 1e-9));
        }
    }
}
