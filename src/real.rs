//! The floating-point element type of a run (`--dtype f32|f64`).
//!
//! Every numeric routine is generic over [`Real`], so one code path serves both precisions; the
//! choice is made once, in `main`, and never looked at again.
//!
//! Not a numeric tower: the two IEEE types BLAS, MPI and HDF5 all move.

use std::fmt::{Debug, Display};
use std::iter::Sum;

use crate::simd::RowDots;
use crate::vmath::Transcendental;

/// A float that BLAS (through ndarray), MPI and HDF5 all know how to move.
pub trait Real:
    num_traits::Float
    + ndarray::LinalgScalar
    + mpi::traits::Equivalence
    + hdf5::H5Type
    + Transcendental
    + RowDots
    + Default
    + Debug
    + Display
    + Sum
    + Send
    + Sync
    + 'static
{
    /// The name used on the command line and in run files.
    const NAME: &'static str;

    fn from_f64(value: f64) -> Self;
    fn into_f64(self) -> f64;
}

impl Real for f32 {
    const NAME: &'static str = "f32";
    fn from_f64(value: f64) -> Self {
        value as f32
    }
    fn into_f64(self) -> f64 {
        f64::from(self)
    }
}

impl Real for f64 {
    const NAME: &'static str = "f64";
    fn from_f64(value: f64) -> Self {
        value
    }
    fn into_f64(self) -> f64 {
        self
    }
}
