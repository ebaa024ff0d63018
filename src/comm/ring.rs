//! `ring`: reduce-scatter then allgather around a ring (Patarasuk and Yuan 2009; Baidu's and
//! Horovod's allreduce). Bandwidth-optimal: each rank sends 2(P-1)/P of the buffer, whatever P.
//!
//! The buffer is cut into P segments (sizes differ by at most one element). Rank r sends to
//! r+1 and receives from r-1. In reduce-scatter step k, rank r passes on segment (r-k) mod P
//! and adds the incoming segment (r-k-1) mod P to its own copy; after P-1 steps it holds the
//! full sum of segment (r+1) mod P. The allgather circulates the finished segments for P-1
//! more steps, so every rank ends with the same bits (each segment is summed once, by one rank).
//!
//! ```text
//!  P = 3, segments a b c        reduce-scatter            allgather
//!        r0 -> r1 -> r2 -> r0   step 0: r0 sends a ...    r0 ends with b = b0+b1+b2 first
//! ```
//!
//! Cost (n bytes, Hockney alpha-beta-gamma): `2(P-1) a + 2 n (P-1)/P b + n (P-1)/P g`.
//! Per rank: 2(P-1) messages; bytes sent = 2n minus the two segments it never sends
//! ((r+1) mod P in reduce-scatter, (r+2) mod P in allgather).

use mpi::topology::SimpleCommunicator;

use super::exchange::{add_into, split_ranges, Exchange};
use super::{Allreduce, Traffic};
use crate::data::partition::block;
use crate::real::Real;

pub struct Ring<F> {
    /// Receives one incoming segment.
    scratch: Vec<F>,
}

impl<F: Real> Ring<F> {
    pub fn new(len: usize) -> Self {
        Self {
            scratch: Vec::with_capacity(len),
        }
    }
}

impl<F: Real> Allreduce<F> for Ring<F> {
    fn allreduce_sum(&mut self, world: &SimpleCommunicator, send: &[F], recv: &mut [F]) -> Traffic {
        let mut ex = Exchange::new(world);
        let (rank, p) = (ex.rank, ex.size);
        recv.copy_from_slice(send);
        let segment = |i: usize| block(send.len(), p, i % p);
        let (right, left) = ((rank + 1) % p, (rank + p - 1) % p);
        for k in 0..p - 1 {
            let (out, inc) = (segment(rank + p - k), segment(rank + 2 * p - k - 1));
            self.scratch.resize(inc.len(), F::zero());
            ex.send_receive(right, &recv[out], left, &mut self.scratch);
            add_into(&mut recv[inc], &self.scratch);
        }
        for k in 0..p - 1 {
            let (out, inc) = (segment(rank + 1 + p - k), segment(rank + p - k));
            let (data, into) = split_ranges(recv, out, inc);
            ex.send_receive(right, data, left, into);
        }
        ex.traffic
    }
}

/// Bytes and messages rank `rank` sends for `n` elements of `elem` bytes (the cost formula).
pub fn expected_traffic(n: usize, p: usize, rank: usize, elem: usize) -> Traffic {
    if p == 1 {
        return Traffic::default();
    }
    let unsent = block(n, p, (rank + 1) % p).len() + block(n, p, (rank + 2) % p).len();
    Traffic {
        bytes: ((2 * n - unsent) * elem) as u64,
        messages: 2 * (p as u64 - 1),
    }
}
