//! The models' hot loops, written for the cache and the SIMD unit, and the choice of SIMD path.
//!
//! Every kernel is plain Rust shaped so that the compiler vectorises it (fixed-width lanes of
//! accumulators, branch-free math from [`crate::vmath`]), compiled once per instruction set:
//! x86-64's baseline (SSE2), AVX2+FMA, and AVX-512. [`Isa::current`] picks the widest the CPU
//! has at run time, so one binary built on a login node runs on any x86-64 (or aarch64, whose
//! baseline NEON is its only path) compute node; no `-C target-cpu=native` is needed. The
//! lanes are arrays of the same width in every path, so the AVX2 and AVX-512 paths give the
//! same bits; x86-64's baseline has no fused multiply-add, so its products round once more
//! (the last bits differ, within the tests' tolerance).
//!
//! `MPI_SGD_SIMD=baseline|avx2|avx512` asks for a narrower path (to compare them); a path the
//! CPU lacks is never taken.
//!
//! Not the models' algebra (the model files say what is computed; these say how fast).

// Loops over lane indices are how the kernels tell the compiler what is one vector.
#![allow(clippy::needless_range_loop)]

pub mod logistic;
pub mod matmul;

use std::sync::OnceLock;

/// The instruction set the kernels run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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

/// Defines `$name(isa, args...)` as a function that runs `$body` (an `#[inline(always)]`
/// generic function) compiled for `isa` (or the widest path the CPU has, if narrower): the
/// body is inlined into one wrapper per instruction set, each compiled with that set enabled.
macro_rules! multiversion {
    ($(#[$doc:meta])* pub fn $name:ident<$F:ident: $bound:path>($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty = $body:ident;) => {
        $(#[$doc])*
        pub fn $name<$F: $bound>(isa: $crate::model::kernels::Isa, $($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")]
                unsafe fn avx512<$F: $bound>($($arg: $ty),*) -> $ret {
                    $body::<$F, true>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2<$F: $bound>($($arg: $ty),*) -> $ret {
                    $body::<$F, true>($($arg),*)
                }
                match isa.min($crate::model::kernels::Isa::best()) {
                    // SAFETY: never a path wider than the CPU has.
                    $crate::model::kernels::Isa::Avx512 => return unsafe { avx512($($arg),*) },
                    $crate::model::kernels::Isa::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::model::kernels::Isa::Baseline => {}
                }
            }
            let _ = isa;
            $body::<$F, { $crate::model::kernels::BASELINE_FMA }>($($arg),*)
        }
    };
}
pub(crate) use multiversion;

/// Whether the baseline path has a fused multiply-add instruction (aarch64 does; x86-64's
/// SSE2 does not, and `mul_add` there would be a call into libm).
pub const BASELINE_FMA: bool = cfg!(target_arch = "aarch64");

/// `a b + c`: one fused multiply-add where the path has the instruction (`FMA`), else a
/// product and a sum.
#[inline(always)]
pub fn mul_add<F: crate::real::Real, const FMA: bool>(a: F, b: F, c: F) -> F {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// Lanes of the accumulators in every kernel: the same in every path, so that sums are added
/// in the same order whatever the vector width.
pub const LANES: usize = 8;
