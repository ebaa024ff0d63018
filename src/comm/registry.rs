//! What the rest of the program knows of an allreduce algorithm: one [`Algorithm`] value,
//! defined in the algorithm's own file and listed once in `comm/mod.rs` (`register!`). The
//! command line's values, `--help`, the benchmark's default list, the tests' list and the
//! `algorithms` subcommand's cost table all come from that list.
//!
//! Not the algorithms themselves (one file each beside this one), nor the [`super::Comm`]
//! collectives the program uses outside the step loop.

use std::any::{Any, TypeId};

use super::{Allreduce, Traffic};
use crate::real::Real;

/// How an algorithm's bytes and messages are counted, for the run file (`/comm` `counting`).
pub const MEASURED: &str =
    "measured: bytes and messages this rank sent, counted at each point-to-point call";

/// The alpha-beta-gamma (Hockney) coefficients of an algorithm's critical path for n bytes on
/// P ranks: T = messages a + bytes_sent b + bytes_added g (Thakur, Rabenseifner and Gropp
/// 2005). `analysis/commmodel.py` holds the same formulas; a test keeps the two equal.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cost {
    pub messages: f64,
    pub bytes_sent: f64,
    pub bytes_added: f64,
}

/// What rank `rank` of `p` sends for `n` elements of `elem` bytes, by a cost formula.
pub type TrafficFormula = fn(n: usize, p: usize, rank: usize, elem: usize) -> Traffic;

/// An allreduce algorithm `--allreduce` can name.
pub struct Algorithm {
    /// The name on the command line and in run files.
    pub name: &'static str,
    /// One line for `--help`.
    pub summary: &'static str,
    /// The cost formula as its file's documentation gives it.
    pub formula: &'static str,
    /// The critical path's coefficients (`None`: the library's, which picks its own).
    pub cost: Option<fn(n_bytes: f64, p: usize) -> Cost>,
    /// Its traffic by the cost formula (`None`: not observable).
    pub expected_traffic: Option<TrafficFormula>,
    /// How the bytes and messages it reports are counted.
    pub counting: &'static str,
    build: Builders,
}

/// How an algorithm is made for buffers of `len` elements (its work buffers allocated here,
/// not in the step loop).
pub trait Build<F: Real>: Allreduce<F> + Sized + 'static {
    fn build(len: usize) -> Self;
}

/// An algorithm's constructors for the two element types.
pub struct Builders {
    f64: fn(usize) -> Box<dyn Allreduce<f64>>,
    f32: fn(usize) -> Box<dyn Allreduce<f32>>,
}

impl Builders {
    /// The constructors of an algorithm type generic over the element type.
    pub const fn of<A64: Build<f64>, A32: Build<f32>>() -> Self {
        Self {
            f64: boxed::<f64, A64>,
            f32: boxed::<f32, A32>,
        }
    }
}

fn boxed<F: Real, A: Build<F>>(len: usize) -> Box<dyn Allreduce<F>> {
    Box::new(A::build(len))
}

impl Algorithm {
    pub const fn new(
        name: &'static str,
        summary: &'static str,
        formula: &'static str,
        build: Builders,
    ) -> Self {
        Self {
            name,
            summary,
            formula,
            cost: None,
            expected_traffic: None,
            counting: MEASURED,
            build,
        }
    }

    /// With the critical path's coefficients.
    pub const fn with_cost(mut self, cost: fn(f64, usize) -> Cost) -> Self {
        self.cost = Some(cost);
        self
    }

    /// With the per-rank traffic its formula predicts (checked against what it sends).
    pub const fn with_traffic(mut self, traffic: TrafficFormula) -> Self {
        self.expected_traffic = Some(traffic);
        self
    }

    /// With another way of counting its traffic than [`MEASURED`].
    pub const fn counted(mut self, counting: &'static str) -> Self {
        self.counting = counting;
        self
    }

    /// The algorithm for buffers of `len` elements of `F`.
    pub fn build<F: Real>(&self, len: usize) -> Box<dyn Allreduce<F>> {
        let built: Box<dyn Any> = if TypeId::of::<F>() == TypeId::of::<f64>() {
            Box::new((self.build.f64)(len))
        } else {
            Box::new((self.build.f32)(len))
        };
        *built
            .downcast::<Box<dyn Allreduce<F>>>()
            .expect("Real is f32 or f64")
    }

    /// The traffic the cost formula predicts, where it is observable.
    pub fn traffic(&self, n: usize, p: usize, rank: usize, elem: usize) -> Option<Traffic> {
        self.expected_traffic
            .map(|formula| formula(n, p, rank, elem))
    }
}

impl std::fmt::Debug for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for Algorithm {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
