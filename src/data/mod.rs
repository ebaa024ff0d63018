//! Training and test rows: which ones a rank owns ([`partition`]) and where they come from
//! ([`synthetic`]).

pub mod partition;
pub mod synthetic;

use ndarray::{Array2, ArrayView2};

use crate::real::Real;

/// A rank's rows: features `x` [rows, features] and integer class labels `y` [rows].
#[derive(Debug, Clone)]
pub struct Dataset<F> {
    pub x: Array2<F>,
    pub y: Vec<u32>,
}

impl<F: Real> Dataset<F> {
    pub fn rows(&self) -> usize {
        self.y.len()
    }

    /// Rows `range` of the set, without copying.
    pub fn slice(&self, range: std::ops::Range<usize>) -> (ArrayView2<'_, F>, &[u32]) {
        (self.x.slice(ndarray::s![range.clone(), ..]), &self.y[range])
    }

    /// Bytes held by the feature matrix and labels.
    pub fn bytes(&self) -> usize {
        self.x.len() * std::mem::size_of::<F>() + self.y.len() * std::mem::size_of::<u32>()
    }
}
