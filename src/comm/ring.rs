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
//! Pipelining: in reduce-scatter a segment larger than [`CHUNK_BYTES`] moves in chunks, and
//! the addition of chunk j overlaps the transfer of chunk j+1 (nonblocking send and receive),
//! so for long messages the gamma term hides behind the beta term. The allgather has no
//! arithmetic to hide and sends each segment whole.
//!
//! Cost (n bytes, Hockney alpha-beta-gamma): `2(P-1) a + 2 n (P-1)/P b + n (P-1)/P g`,
//! with c = ceil(n / (P CHUNK_BYTES)) chunks a segment: `(P-1)(c+1) a` latency, and the gamma
//! term overlapped with beta. Per rank: (P-1)(c+1) messages; bytes sent = 2n minus the two
//! segments it never sends ((r+1) mod P in reduce-scatter, (r+2) mod P in allgather).

use std::ops::Range;

use mpi::topology::SimpleCommunicator;

use super::exchange::{add_into, split_ranges, Exchange};
use super::registry::{Algorithm, Build, Builders, Cost};
use super::{Allreduce, Traffic};
use crate::partition::block;
use crate::real::Real;

/// Largest message of the pipelined reduce-scatter: big enough that per-message latency is
/// small against its transfer time, small enough that a segment splits into many chunks.
pub const CHUNK_BYTES: usize = 256 << 10;

/// `--allreduce ring`.
pub const ALGORITHM: Algorithm = Algorithm::new(
    "ring",
    "Reduce-scatter then allgather around a ring (bandwidth-optimal)",
    "2(P-1) a + 2n(P-1)/P b + n(P-1)/P g",
    Builders::of::<Ring<f64>, Ring<f32>>(),
)
.with_cost(cost)
.with_traffic(expected_traffic);

/// Critical path: 2(P-1) messages, 2n(P-1)/P bytes sent, n(P-1)/P added.
pub(super) fn cost(n: f64, p: usize) -> Cost {
    let share = (p - 1) as f64 / p as f64;
    Cost {
        messages: 2.0 * (p - 1) as f64,
        bytes_sent: 2.0 * n * share,
        bytes_added: n * share,
    }
}

pub struct Ring<F> {
    /// Two chunk buffers: one being received while the other is added.
    scratch: Vec<F>,
}

impl<F: Real> Build<F> for Ring<F> {
    fn build(len: usize) -> Self {
        Self {
            scratch: vec![F::zero(); 2 * chunk_len::<F>().min(len)],
        }
    }
}

fn chunk_len<F>() -> usize {
    CHUNK_BYTES / std::mem::size_of::<F>()
}

/// Chunk `j` of `range` cut into pieces of `chunk` elements (empty past its end).
fn piece(range: &Range<usize>, chunk: usize, j: usize) -> Range<usize> {
    let start = (range.start + j * chunk).min(range.end);
    start..(start + chunk).min(range.end)
}

/// Messages one reduce-scatter step takes: every chunk of the longer of the two segments.
fn chunks(out: usize, inc: usize, chunk: usize) -> usize {
    out.max(inc).div_ceil(chunk).max(1)
}

impl<F: Real> Allreduce<F> for Ring<F> {
    fn allreduce_sum(&mut self, world: &SimpleCommunicator, send: &[F], recv: &mut [F]) -> Traffic {
        let mut ex = Exchange::new(world);
        let (rank, p) = (ex.rank, ex.size);
        recv.copy_from_slice(send);
        let segment = |i: usize| block(send.len(), p, i % p);
        let (right, left) = ((rank + 1) % p, (rank + p - 1) % p);
        let chunk = chunk_len::<F>();
        for k in 0..p - 1 {
            let (out, inc) = (segment(rank + p - k), segment(rank + 2 * p - k - 1));
            let half = self.scratch.len() / 2;
            let (mut current, mut next) = self.scratch.split_at_mut(half);
            let first = piece(&inc, chunk, 0);
            ex.send_receive(
                right,
                &recv[piece(&out, chunk, 0)],
                left,
                &mut current[..first.len()],
            );
            let count = chunks(out.len(), inc.len(), chunk);
            for j in 1..count {
                let (arrived, coming) = (piece(&inc, chunk, j - 1), piece(&inc, chunk, j));
                let (data, target) = split_ranges(recv, piece(&out, chunk, j), arrived.clone());
                let received = &current[..arrived.len()];
                ex.send_receive_overlapped(right, data, left, &mut next[..coming.len()], || {
                    add_into(target, received)
                });
                std::mem::swap(&mut current, &mut next);
            }
            let last = piece(&inc, chunk, count - 1);
            add_into(&mut recv[last.clone()], &current[..last.len()]);
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
    let chunk = CHUNK_BYTES / elem;
    let reduce_scatter: usize = (0..p - 1)
        .map(|k| {
            let out = block(n, p, (rank + p - k) % p).len();
            let inc = block(n, p, (rank + 2 * p - k - 1) % p).len();
            chunks(out, inc, chunk)
        })
        .sum();
    Traffic {
        bytes: ((2 * n - unsent) * elem) as u64,
        messages: (reduce_scatter + p - 1) as u64,
    }
}
