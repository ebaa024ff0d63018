//! The models' hot loops, written for the cache and the SIMD unit.
//!
//! Every kernel is plain Rust shaped so that the compiler vectorises it (fixed-width lanes of
//! accumulators, branch-free math from [`crate::vmath`], explicit SIMD from [`crate::simd`]
//! only where the compiler falls short), compiled once per instruction set: x86-64's baseline
//! (SSE2), AVX2+FMA, and AVX-512. [`Isa::current`] picks the widest the CPU has at run time, so
//! one binary built on a login node runs on any x86-64 (or aarch64, whose baseline NEON is its
//! only path) compute node; no `-C target-cpu=native` is needed. The lanes are the same in
//! every path, so the AVX2 and AVX-512 paths give the same bits; x86-64's baseline has no fused
//! multiply-add, so its products round once more (the last bits differ, within the tests'
//! tolerance).
//!
//! `MPI_SGD_SIMD=baseline|avx2|avx512` asks for a narrower path (to compare them); a path the
//! CPU lacks is never taken.
//!
//! Not the models' algebra (the model files say what is computed; these say how fast).

// Loops over lane indices are how the kernels tell the compiler what is one vector.
#![allow(clippy::needless_range_loop)]

pub mod logistic;
pub mod matmul;

pub use crate::simd::Isa;

/// Defines `$name(isa, args...)` as a function that runs `$body` (an `#[inline(always)]`
/// generic function) compiled for `isa` (or the widest path the CPU has, if narrower): the
/// body is inlined into one wrapper per instruction set, each compiled with that set enabled,
/// and told which it is: `$body::<F, FMA, ISA>` (whether the path has a fused multiply-add,
/// and `Isa as u8`).
macro_rules! multiversion {
    ($(#[$doc:meta])* pub fn $name:ident<$F:ident: $bound:path>($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty = $body:ident;) => {
        $(#[$doc])*
        pub fn $name<$F: $bound>(isa: $crate::simd::Isa, $($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")]
                unsafe fn avx512<$F: $bound>($($arg: $ty),*) -> $ret {
                    $body::<$F, true, { $crate::simd::Isa::Avx512 as u8 }>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2<$F: $bound>($($arg: $ty),*) -> $ret {
                    $body::<$F, true, { $crate::simd::Isa::Avx2 as u8 }>($($arg),*)
                }
                match isa.min($crate::simd::Isa::best()) {
                    // SAFETY: never a path wider than the CPU has.
                    $crate::simd::Isa::Avx512 => return unsafe { avx512($($arg),*) },
                    $crate::simd::Isa::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::simd::Isa::Baseline => {}
                }
            }
            let _ = isa;
            $body::<$F, { $crate::simd::BASELINE_FMA }, { $crate::simd::Isa::Baseline as u8 }>($($arg),*)
        }
    };
}
pub(crate) use multiversion;
