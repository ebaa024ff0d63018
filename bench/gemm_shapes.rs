//! OpenBLAS against the pure-Rust `gemm` crate at the matrix products of one MLP block
//! (`--hidden 512`, 20 features, 10 classes, BLOCK_ROWS = 128 rows), single-threaded, f64 and
//! f32: the evidence for the choice in src/model/kernels/matmul.rs. Interleaved rounds; GFLOP/s
//! median (min-max).
//!
//!     cargo bench --bench gemm_shapes      (make bench runs it)

extern crate blas_src;

use std::time::Instant;

use ndarray::linalg::general_mat_mul;
use ndarray::LinalgScalar;
use ndarray::{Array2, ArrayView2, ArrayViewMut2};

const ROWS: usize = 128;
const ROUNDS: usize = 7;

/// `c = a b` (or `c += a b`) with the `gemm` crate, on ndarray views of any strides.
fn with_gemm_crate<T: LinalgScalar>(
    a: ArrayView2<T>,
    b: ArrayView2<T>,
    c: &mut ArrayViewMut2<T>,
    add: bool,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    let (cs, rs) = (c.strides()[1], c.strides()[0]);
    // SAFETY: the pointers and strides describe the three views, which do not overlap.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            cs,
            rs,
            add,
            a.as_ptr(),
            a.strides()[1],
            a.strides()[0],
            b.as_ptr(),
            b.strides()[1],
            b.strides()[0],
            T::one(),
            T::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

fn matrix<T: LinalgScalar + From<u8>>(rows: usize, cols: usize, seed: usize) -> Array2<T> {
    Array2::from_shape_fn((rows, cols), |(i, j)| {
        T::from(((i * 7 + j * 3 + seed) % 11) as u8)
    })
}

fn shapes<T: LinalgScalar + From<u8> + std::fmt::Display>(name: &str) {
    let (x, w1) = (matrix::<T>(ROWS, 20, 1), matrix::<T>(20, 512, 2));
    let (a1, w2) = (matrix::<T>(ROWS, 512, 3), matrix::<T>(512, 10, 4));
    let d2 = matrix::<T>(ROWS, 10, 5);
    let products: [(&str, ArrayView2<T>, ArrayView2<T>, bool); 5] = [
        ("forward 1: X W1 (k=20)", x.view(), w1.view(), false),
        ("forward 2: A1 W2 (n=10)", a1.view(), w2.view(), false),
        ("dW1 += X^T D1 (m=20)", x.t(), a1.view(), true),
        ("dW2 += A1^T D2 (n=10)", a1.t(), d2.view(), true),
        ("D1 = D2 W2^T (k=10)", d2.view(), w2.t(), false),
    ];
    for (label, a, b, add) in products {
        let mut c = Array2::<T>::zeros((a.nrows(), b.ncols()));
        let flops = 2.0 * (a.nrows() * a.ncols() * b.ncols()) as f64;
        let calls = (1e9 / flops) as usize;
        let mut rates = [Vec::new(), Vec::new()];
        for _ in 0..ROUNDS {
            for (backend, rate) in rates.iter_mut().enumerate() {
                let begin = Instant::now();
                for _ in 0..calls {
                    let mut view = c.view_mut();
                    match backend {
                        0 => general_mat_mul(
                            T::one(),
                            &a,
                            &b,
                            if add { T::one() } else { T::zero() },
                            &mut view,
                        ),
                        _ => with_gemm_crate(a, b, &mut view, add),
                    }
                }
                rate.push(flops * calls as f64 / begin.elapsed().as_secs_f64() / 1e9);
            }
        }
        let show = |rate: &mut Vec<f64>| {
            rate.sort_by(f64::total_cmp);
            format!(
                "{:6.1} ({:.1}-{:.1})",
                rate[ROUNDS / 2],
                rate[0],
                rate[ROUNDS - 1]
            )
        };
        let (blas, crate_) = (show(&mut rates[0]), show(&mut rates[1]));
        println!("| {name} | {label} | {blas} | {crate_} |");
    }
}

fn main() {
    println!("| type | product ({ROWS} rows) | OpenBLAS GFLOP/s | gemm crate GFLOP/s |");
    println!("|---|---|---|---|");
    shapes::<f64>("f64");
    shapes::<f32>("f32");
}
