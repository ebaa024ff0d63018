//! The SIMD paths: which one the CPU has, the lanes every kernel is written in, and the one
//! operation the compiler does not vectorise well by itself, written with intrinsics.
//!
//! Kernels are plain Rust shaped so that the compiler vectorises them (arrays of [`LANES`]
//! accumulators), compiled once per [`Isa`]; the lanes are the same in every path, so the AVX2
//! and AVX-512 paths give the same bits. The exception is [`RowDots`]: the dot products of
//! LANES rows with one vector end in LANES horizontal sums, which the compiler turns into
//! dozens of lane permutes per row; a transpose-and-add does the same additions, in the same
//! order, in 7 vector additions for all LANES rows.
//!
//! Not a SIMD library: the paths and what the kernels need of them.

use std::sync::OnceLock;

/// Lanes of the accumulators in every kernel: the same in every path, so that sums are added
/// in the same order whatever the vector width.
pub const LANES: usize = 8;

/// The instruction set the kernels run with; `as u8` it is a kernel's const parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Isa {
    /// The architecture's baseline: SSE2 on x86-64, NEON on aarch64.
    Baseline,
    /// AVX2 with FMA (x86-64).
    Avx2,
    /// AVX-512 F/DQ/BW/VL (x86-64).
    Avx512,
}

impl Isa {
    /// The path in use: the widest the CPU has, or a narrower one from `MPI_SGD_SIMD`.
    pub fn current() -> Isa {
        static CHOSEN: OnceLock<Isa> = OnceLock::new();
        *CHOSEN.get_or_init(|| {
            match std::env::var("MPI_SGD_SIMD")
                .ok()
                .and_then(|v| Isa::from_name(&v))
            {
                Some(asked) => asked.min(Isa::best()),
                None => Isa::best(),
            }
        })
    }

    /// The widest path this CPU has.
    pub fn best() -> Isa {
        static BEST: OnceLock<Isa> = OnceLock::new();
        *BEST.get_or_init(Isa::detect)
    }

    /// Every path this CPU has, narrowest first (to compare them).
    #[cfg(test)]
    pub fn available() -> Vec<Isa> {
        [Isa::Baseline, Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|&isa| isa <= Isa::best())
            .collect()
    }

    fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512dq")
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512vl")
            {
                return Isa::Avx512;
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Baseline
    }

    pub fn from_name(name: &str) -> Option<Isa> {
        match name {
            "baseline" => Some(Isa::Baseline),
            "avx2" => Some(Isa::Avx2),
            "avx512" => Some(Isa::Avx512),
            _ => None,
        }
    }

    /// For the log and the run file: the path and its vector width.
    pub fn name(self) -> &'static str {
        match self {
            #[cfg(target_arch = "aarch64")]
            Isa::Baseline => "neon (128-bit)",
            #[cfg(not(target_arch = "aarch64"))]
            Isa::Baseline => "baseline (sse2, 128-bit)",
            Isa::Avx2 => "avx2+fma (256-bit)",
            Isa::Avx512 => "avx512 (512-bit)",
        }
    }
}

/// Whether the baseline path has a fused multiply-add instruction (aarch64 does; x86-64's
/// SSE2 does not, and `mul_add` there would be a call into libm).
pub const BASELINE_FMA: bool = cfg!(target_arch = "aarch64");

/// `a b + c`: one fused multiply-add where the path has the instruction (`FMA`), else a
/// product and a sum.
#[inline(always)]
pub fn mul_add<F: num_traits::Float, const FMA: bool>(a: F, b: F, c: F) -> F {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// The sum of `v` in LANES partial sums, added pairwise at the end (lane k with k + 4, then
/// k + 2, then k + 1).
#[inline(always)]
pub fn sum<F: num_traits::Float>(v: &[F]) -> F {
    let mut acc = [F::zero(); LANES];
    let (chunks, rest) = v.as_chunks::<LANES>();
    for c in chunks {
        for k in 0..LANES {
            acc[k] = acc[k] + c[k];
        }
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for k in 0..width {
            acc[k] = acc[k] + acc[k + width];
        }
    }
    rest.iter().fold(acc[0], |s, &v| s + v)
}

/// `a . b` of two rows of `W` lanes (`W` a multiple of LANES): LANES accumulators over the
/// row's chunks of LANES, then [`sum`]'s additions.
#[inline(always)]
pub fn dot_lanes<F: num_traits::Float, const FMA: bool, const W: usize>(
    a: &[F; W],
    b: &[F; W],
) -> F {
    let mut acc = [F::zero(); LANES];
    for c in 0..W / LANES {
        for k in 0..LANES {
            acc[k] = mul_add::<F, FMA>(a[c * LANES + k], b[c * LANES + k], acc[k]);
        }
    }
    sum(&acc)
}

/// The dot products of LANES rows of `W` values (`W` a multiple of LANES) with `w`, each with
/// exactly [`dot_lanes`]'s operations, so every path gives the same bits as one row at a time.
pub trait RowDots: num_traits::Float {
    /// # Safety
    /// The CPU has the instructions of path `ISA` (`Isa as u8`).
    unsafe fn row_dots<const ISA: u8, const FMA: bool, const W: usize>(
        rows: &[&[Self; W]; LANES],
        w: &[Self; W],
    ) -> [Self; LANES];
}

impl RowDots for f64 {
    #[inline(always)]
    unsafe fn row_dots<const ISA: u8, const FMA: bool, const W: usize>(
        rows: &[&[f64; W]; LANES],
        w: &[f64; W],
    ) -> [f64; LANES] {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: the caller's CPU has the path.
            if ISA == Isa::Avx512 as u8 {
                return unsafe { x86::row_dots_f64_avx512(rows, w) };
            }
            if ISA == Isa::Avx2 as u8 {
                return unsafe { x86::row_dots_f64_avx2(rows, w) };
            }
        }
        std::array::from_fn(|r| dot_lanes::<f64, FMA, W>(rows[r], w))
    }
}

impl RowDots for f32 {
    #[inline(always)]
    unsafe fn row_dots<const ISA: u8, const FMA: bool, const W: usize>(
        rows: &[&[f32; W]; LANES],
        w: &[f32; W],
    ) -> [f32; LANES] {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: the caller's CPU has the path (AVX-512 includes AVX2; eight f32 lanes
            // are one 256-bit vector in both).
            if ISA == Isa::Avx512 as u8 || ISA == Isa::Avx2 as u8 {
                return unsafe { x86::row_dots_f32_avx2(rows, w) };
            }
        }
        std::array::from_fn(|r| dot_lanes::<f32, FMA, W>(rows[r], w))
    }
}

/// The transposes-and-adds. Each row's LANES accumulators a_0..a_7 are summed as [`sum`] does,
/// ((a0+a4) + (a2+a6)) + ((a1+a5) + (a3+a7)), but for all rows at once: round 1 puts the
/// halves of two rows side by side and adds (lane k with k + 4), round 2 the same with quarters
/// (k with k + 2), round 3 with neighbours (k with k + 1), and a last permute puts row r in
/// lane r.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::LANES;
    use std::arch::x86_64::*;

    /// One 512-bit vector per row.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn row_dots_f64_avx512<const W: usize>(
        rows: &[&[f64; W]; LANES],
        w: &[f64; W],
    ) -> [f64; LANES] {
        let acc: [__m512d; LANES] = std::array::from_fn(|r| {
            let mut a = _mm512_setzero_pd();
            for c in 0..W / LANES {
                // SAFETY: c * LANES + LANES <= W: the loads stay inside the row and `w`.
                let (x, v) = unsafe {
                    (
                        _mm512_loadu_pd(rows[r].as_ptr().add(c * LANES)),
                        _mm512_loadu_pd(w.as_ptr().add(c * LANES)),
                    )
                };
                a = _mm512_fmadd_pd(x, v, a);
            }
            a
        });
        // Round 1: rows 2i, 2i+1 -> [2i: p0 p1 | 2i: p2 p3 | 2i+1: p0 p1 | 2i+1: p2 p3].
        let halves: [__m512d; 4] = std::array::from_fn(|i| {
            let (a, b) = (acc[2 * i], acc[2 * i + 1]);
            _mm512_add_pd(
                _mm512_shuffle_f64x2::<0b01_00_01_00>(a, b),
                _mm512_shuffle_f64x2::<0b11_10_11_10>(a, b),
            )
        });
        // Round 2: rows 4j..4j+4 -> [4j: q0 q1 | 4j+1: q0 q1 | 4j+2: q0 q1 | 4j+3: q0 q1].
        let quarters: [__m512d; 2] = std::array::from_fn(|j| {
            let (a, b) = (halves[2 * j], halves[2 * j + 1]);
            _mm512_add_pd(
                _mm512_shuffle_f64x2::<0b10_00_10_00>(a, b),
                _mm512_shuffle_f64x2::<0b11_01_11_01>(a, b),
            )
        });
        // Round 3: lanes hold rows 0 4 1 5 2 6 3 7; the permute puts them in order.
        let sums = _mm512_add_pd(
            _mm512_unpacklo_pd(quarters[0], quarters[1]),
            _mm512_unpackhi_pd(quarters[0], quarters[1]),
        );
        let sums = _mm512_permutexvar_pd(_mm512_set_epi64(7, 5, 3, 1, 6, 4, 2, 0), sums);
        let mut out = [0.0; LANES];
        // SAFETY: `out` holds LANES values.
        unsafe { _mm512_storeu_pd(out.as_mut_ptr(), sums) };
        out
    }

    /// Two 256-bit vectors per row (lanes 0-3 and 4-7), whose sum is round 1.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn row_dots_f64_avx2<const W: usize>(
        rows: &[&[f64; W]; LANES],
        w: &[f64; W],
    ) -> [f64; LANES] {
        let halves: [__m256d; LANES] = std::array::from_fn(|r| {
            let (mut lo, mut hi) = (_mm256_setzero_pd(), _mm256_setzero_pd());
            for c in 0..W / LANES {
                let at = c * LANES;
                // SAFETY: at + LANES <= W: the loads stay inside the row and `w`.
                unsafe {
                    let (x, v) = (rows[r].as_ptr().add(at), w.as_ptr().add(at));
                    lo = _mm256_fmadd_pd(_mm256_loadu_pd(x), _mm256_loadu_pd(v), lo);
                    hi = _mm256_fmadd_pd(_mm256_loadu_pd(x.add(4)), _mm256_loadu_pd(v.add(4)), hi);
                }
            }
            _mm256_add_pd(lo, hi)
        });
        // Round 2: rows 2i, 2i+1 -> [2i: q0 q1 | 2i+1: q0 q1].
        let quarters: [__m256d; 4] = std::array::from_fn(|i| {
            let (a, b) = (halves[2 * i], halves[2 * i + 1]);
            _mm256_add_pd(
                _mm256_permute2f128_pd::<0x20>(a, b),
                _mm256_permute2f128_pd::<0x31>(a, b),
            )
        });
        // Round 3: rows 4j..4j+4 in lanes 4j 4j+2 4j+1 4j+3; the permute puts them in order.
        let sums: [__m256d; 2] = std::array::from_fn(|j| {
            let (a, b) = (quarters[2 * j], quarters[2 * j + 1]);
            let s = _mm256_add_pd(_mm256_unpacklo_pd(a, b), _mm256_unpackhi_pd(a, b));
            _mm256_permute4x64_pd::<0b11_01_10_00>(s)
        });
        let mut out = [0.0; LANES];
        // SAFETY: `out` holds 2 x 4 values.
        unsafe {
            _mm256_storeu_pd(out.as_mut_ptr(), sums[0]);
            _mm256_storeu_pd(out.as_mut_ptr().add(4), sums[1]);
        }
        out
    }

    /// One 256-bit vector per row.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn row_dots_f32_avx2<const W: usize>(
        rows: &[&[f32; W]; LANES],
        w: &[f32; W],
    ) -> [f32; LANES] {
        let acc: [__m256; LANES] = std::array::from_fn(|r| {
            let mut a = _mm256_setzero_ps();
            for c in 0..W / LANES {
                // SAFETY: c * LANES + LANES <= W: the loads stay inside the row and `w`.
                let (x, v) = unsafe {
                    (
                        _mm256_loadu_ps(rows[r].as_ptr().add(c * LANES)),
                        _mm256_loadu_ps(w.as_ptr().add(c * LANES)),
                    )
                };
                a = _mm256_fmadd_ps(x, v, a);
            }
            a
        });
        // Round 1: rows 2i, 2i+1 -> [2i: p0..p3 | 2i+1: p0..p3].
        let halves: [__m256; 4] = std::array::from_fn(|i| {
            let (a, b) = (acc[2 * i], acc[2 * i + 1]);
            _mm256_add_ps(
                _mm256_permute2f128_ps::<0x20>(a, b),
                _mm256_permute2f128_ps::<0x31>(a, b),
            )
        });
        // Round 2: rows (4j, 4j+2 | 4j+1, 4j+3) -> [4j: q0 q1, 4j+2: q0 q1 | 4j+1: .., 4j+3: ..].
        let quarters: [__m256; 2] = std::array::from_fn(|j| {
            let (a, b) = (halves[2 * j], halves[2 * j + 1]);
            _mm256_add_ps(
                _mm256_shuffle_ps::<0b01_00_01_00>(a, b),
                _mm256_shuffle_ps::<0b11_10_11_10>(a, b),
            )
        });
        // Round 3: lanes hold rows 0 2 4 6 1 3 5 7; the permute puts them in order.
        let sums = _mm256_add_ps(
            _mm256_shuffle_ps::<0b10_00_10_00>(quarters[0], quarters[1]),
            _mm256_shuffle_ps::<0b11_01_11_01>(quarters[0], quarters[1]),
        );
        let sums = _mm256_permutevar8x32_ps(sums, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        let mut out = [0.0; LANES];
        // SAFETY: `out` holds LANES values.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sums) };
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path's row dots give the bits of one row at a time, for every row width.
    fn check<F: RowDots + std::fmt::Debug, const W: usize>(value: impl Fn(usize) -> F) {
        let data: Vec<F> = (0..LANES * W).map(&value).collect();
        let rows: [&[F; W]; LANES] =
            std::array::from_fn(|r| data[r * W..(r + 1) * W].try_into().unwrap());
        let w: [F; W] = std::array::from_fn(|j| value(7 * j + 3));
        for isa in Isa::available() {
            let fma = isa != Isa::Baseline || BASELINE_FMA;
            // SAFETY: `available` lists only paths this CPU has.
            let got = unsafe {
                match isa {
                    Isa::Baseline => {
                        F::row_dots::<{ Isa::Baseline as u8 }, BASELINE_FMA, W>(&rows, &w)
                    }
                    Isa::Avx2 => F::row_dots::<{ Isa::Avx2 as u8 }, true, W>(&rows, &w),
                    Isa::Avx512 => F::row_dots::<{ Isa::Avx512 as u8 }, true, W>(&rows, &w),
                }
            };
            let one_at_a_time: [F; LANES] = std::array::from_fn(|r| {
                if fma {
                    dot_lanes::<F, true, W>(rows[r], &w)
                } else {
                    dot_lanes::<F, false, W>(rows[r], &w)
                }
            });
            let bits = |v: &[F; LANES]| v.map(|x| x.to_f64().unwrap().to_bits());
            assert_eq!(bits(&got), bits(&one_at_a_time), "{isa:?} W={W}");
        }
    }

    #[test]
    fn every_path_adds_as_one_row_at_a_time() {
        // Values of many magnitudes, so that a different order of additions shows in the bits.
        let f64s = |i: usize| ((i * 7919 % 1013) as f64 - 506.0) * 10f64.powi((i % 9) as i32 - 4);
        let f32s = |i: usize| f64s(i) as f32;
        check::<f64, 8>(f64s);
        check::<f64, 24>(f64s);
        check::<f64, 64>(f64s);
        check::<f32, 8>(f32s);
        check::<f32, 24>(f32s);
        check::<f32, 64>(f32s);
    }
}
