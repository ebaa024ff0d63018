//! `star`: every rank sends its buffer to rank 0, which adds them in rank order and sends the
//! sum back to each: the parameter-server (master aggregates) baseline.
//!
//! ```text
//!  gather:   1 -> 0, 2 -> 0, ..., P-1 -> 0      scatter back: 0 -> 1, 0 -> 2, ..., 0 -> P-1
//! ```
//! Cost: `2 (P-1) a + 2 (P-1) n b + (P-1) n g`, all of it through rank 0: the root's link and
//! adder are the bottleneck, so time grows linearly with P. Per rank: one message of n (rank
//! 0: P-1 of them).

use mpi::topology::SimpleCommunicator;

use super::exchange::{add_into, Exchange};
use super::registry::{Algorithm, Build, Builders, Cost};
use super::{Allreduce, Traffic};
use crate::real::Real;

/// `--allreduce star`.
pub const ALGORITHM: Algorithm = Algorithm::new(
    "star",
    "Everyone sends to rank 0, which sums and sends back (parameter server)",
    "2(P-1) a + 2(P-1)n b + (P-1)n g",
    Builders::of::<Star<f64>, Star<f32>>(),
)
.with_cost(cost)
.with_traffic(expected_traffic);

/// Critical path: everything passes through rank 0, one buffer at a time.
fn cost(n: f64, p: usize) -> Cost {
    let others = (p - 1) as f64;
    Cost {
        messages: 2.0 * others,
        bytes_sent: 2.0 * others * n,
        bytes_added: others * n,
    }
}

pub struct Star<F> {
    scratch: Vec<F>,
}

impl<F: Real> Build<F> for Star<F> {
    fn build(len: usize) -> Self {
        Self {
            scratch: vec![F::zero(); len],
        }
    }
}

impl<F: Real> Allreduce<F> for Star<F> {
    fn allreduce_sum(&mut self, world: &SimpleCommunicator, send: &[F], recv: &mut [F]) -> Traffic {
        let mut ex = Exchange::new(world);
        recv.copy_from_slice(send);
        self.scratch.resize(send.len(), F::zero());
        if ex.rank == 0 {
            for from in 1..ex.size {
                ex.receive(from, &mut self.scratch);
                add_into(recv, &self.scratch);
            }
            for to in 1..ex.size {
                ex.send(to, recv);
            }
        } else {
            ex.send(0, send);
            ex.receive(0, recv);
        }
        ex.traffic
    }
}

/// Bytes and messages rank `rank` sends for `n` elements of `elem` bytes (the cost formula).
pub fn expected_traffic(n: usize, p: usize, rank: usize, elem: usize) -> Traffic {
    let messages = if rank == 0 { p - 1 } else { 1 };
    Traffic {
        bytes: (messages * n * elem) as u64,
        messages: messages as u64,
    }
}
