//! `bench-allreduce`'s options -> [`BenchSettings`]: the algorithms, and for each message size
//! its timed and warm-up calls, checked against the element size before MPI starts.

use std::path::PathBuf;

use crate::cli::BenchArgs;
use crate::comm::{Algorithm, ALGORITHMS};
use crate::errors::usage;
use crate::kinds::Dtype;

/// One message size of the sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizePlan {
    pub bytes: usize,
    /// Timed calls.
    pub iterations: usize,
    /// Untimed calls before them.
    pub warmup: usize,
}

#[derive(Debug, Clone)]
pub struct BenchSettings {
    pub algorithms: Vec<&'static Algorithm>,
    pub sizes: Vec<SizePlan>,
    pub dtype: Dtype,
    pub out: Option<PathBuf>,
    pub force: bool,
}

impl BenchSettings {
    pub fn from_args(args: BenchArgs) -> anyhow::Result<Self> {
        if args.iterations == Some(0) {
            return Err(usage(
                "--iterations 0: nothing would be timed; give at least 1 (or leave it out)",
            ));
        }
        let sizes = sizes(&args, args.dtype.bytes())?
            .into_iter()
            .map(|bytes| {
                let iterations = args.iterations.unwrap_or_else(|| default_iterations(bytes));
                let warmup = args.warmup.unwrap_or((iterations / 10).max(2));
                SizePlan {
                    bytes,
                    iterations,
                    warmup,
                }
            })
            .collect();
        Ok(Self {
            algorithms: args.algorithms.unwrap_or_else(|| ALGORITHMS.to_vec()),
            sizes,
            dtype: args.dtype,
            out: args.out,
            force: args.force,
        })
    }
}

/// Timed calls for a message of `bytes`: OSU's 1000 for small messages, then as many as keep
/// a size's timing to about 64 MiB moved, at least 10.
fn default_iterations(bytes: usize) -> usize {
    ((64 << 20) / bytes.max(1)).clamp(10, 1000)
}

/// The message sizes of the sweep, in bytes, checked against the element size.
fn sizes(args: &BenchArgs, elem: usize) -> anyhow::Result<Vec<usize>> {
    let sizes = match &args.sizes {
        Some(list) => list.clone(),
        None => {
            if args.min_bytes == 0 || args.min_bytes > args.max_bytes {
                return Err(usage(
                    "--min-bytes must be at least 1 and at most --max-bytes",
                ));
            }
            std::iter::successors(Some(args.min_bytes), |&b| b.checked_mul(2))
                .take_while(|&b| b <= args.max_bytes)
                .collect()
        }
    };
    if let Some(bad) = sizes.iter().find(|&&b| b % elem != 0) {
        return Err(usage(format!(
            "message size {bad} bytes is not a whole number of {elem}-byte elements; use multiples of {elem}"
        )));
    }
    Ok(sizes)
}
