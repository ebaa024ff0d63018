//! `tree`: binomial-tree reduce to rank 0, then binomial-tree broadcast from it (MPICH's
//! reduce + bcast for short messages).
//!
//! ```text
//!  reduce (P = 8)                   broadcast: the same edges, reversed
//!  step 1: 1->0  3->2  5->4  7->6
//!  step 2: 2->0  6->4
//!  step 3: 4->0
//! ```
//! In step k a rank whose lowest set bit is k sends its partial sum to `rank - 2^k` and stops;
//! the receiver adds it to its own. Rank 0 ends with the sum and broadcasts it down the same
//! tree, so every rank gets the root's bits.
//!
//! Cost: `2 lg P a + 2 n lg P b + n lg P g` along the critical path (lg = ceil(log2 P)): latency
//! grows only with lg P, but the whole buffer crosses every level twice. Per rank: one message
//! up (none for the root) and one message per child down; rank 0 has lg P children.

use mpi::topology::SimpleCommunicator;

use super::exchange::{add_into, Exchange};
use super::registry::{Algorithm, Build, Builders, Cost};
use super::{Allreduce, Traffic};
use crate::real::Real;

/// `--allreduce tree`.
pub const ALGORITHM: Algorithm = Algorithm::new(
    "tree",
    "Binomial-tree reduce to rank 0, then binomial-tree broadcast",
    "2 lg a + 2n lg b + n lg g, lg = ceil(log2 P)",
    Builders::of::<Tree<f64>, Tree<f32>>(),
)
.with_cost(cost)
.with_traffic(expected_traffic);

/// Critical path: lg = ceil(log2 P) levels up, then down; each a message of n bytes, n added
/// on the way up.
fn cost(n: f64, p: usize) -> Cost {
    let lg = f64::from(p.next_power_of_two().ilog2());
    Cost {
        messages: 2.0 * lg,
        bytes_sent: 2.0 * n * lg,
        bytes_added: n * lg,
    }
}

pub struct Tree<F> {
    /// Receives a child's partial sum.
    scratch: Vec<F>,
}

impl<F: Real> Build<F> for Tree<F> {
    fn build(len: usize) -> Self {
        Self {
            scratch: vec![F::zero(); len],
        }
    }
}

impl<F: Real> Allreduce<F> for Tree<F> {
    fn allreduce_sum(&mut self, world: &SimpleCommunicator, send: &[F], recv: &mut [F]) -> Traffic {
        let mut ex = Exchange::new(world);
        recv.copy_from_slice(send);
        self.scratch.resize(send.len(), F::zero());
        reduce_to_root(&mut ex, recv, &mut self.scratch);
        broadcast_from_root(&mut ex, recv);
        ex.traffic
    }
}

/// Binomial-tree reduce: rank 0 of the exchange's communicator ends with the sum of every
/// rank's `buffer` (the others' `buffer` holds a partial sum). `scratch` holds a child's
/// partial sum, as long as `buffer`.
pub(super) fn reduce_to_root<F: Real>(ex: &mut Exchange, buffer: &mut [F], scratch: &mut [F]) {
    let (rank, p) = (ex.rank, ex.size);
    // Receive from children rank + 2^k below my lowest set bit, then send up.
    let mut mask = 1;
    while mask < p {
        if rank & mask != 0 {
            ex.send(rank - mask, buffer);
            break;
        }
        if rank + mask < p {
            ex.receive(rank + mask, scratch);
            add_into(buffer, scratch);
        }
        mask <<= 1;
    }
}

/// Binomial-tree broadcast of rank 0's `buffer`: receive from the parent, then pass down to
/// the same children the reduce came from.
pub(super) fn broadcast_from_root<F: Real>(ex: &mut Exchange, buffer: &mut [F]) {
    let (rank, p) = (ex.rank, ex.size);
    if rank != 0 {
        ex.receive(rank - (rank & rank.wrapping_neg()), buffer);
    }
    for child in children(rank, p).rev() {
        ex.send(child, buffer);
    }
}

/// The children of `rank` in the binomial tree rooted at 0: `rank + 2^k` for every `2^k` below
/// the lowest set bit of `rank` (below P for the root), inside the communicator.
fn children(rank: usize, p: usize) -> impl DoubleEndedIterator<Item = usize> {
    let limit = if rank == 0 {
        p.next_power_of_two()
    } else {
        rank & rank.wrapping_neg()
    };
    (0..limit.trailing_zeros())
        .map(move |k| rank + (1 << k))
        .filter(move |&child| child < p)
}

/// Bytes and messages rank `rank` sends for `n` elements of `elem` bytes (the cost formula).
pub fn expected_traffic(n: usize, p: usize, rank: usize, elem: usize) -> Traffic {
    let messages = children(rank, p).count() + usize::from(rank != 0);
    Traffic {
        bytes: (messages * n * elem) as u64,
        messages: messages as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::children;

    #[test]
    fn every_rank_but_the_root_has_exactly_one_parent() {
        for p in 1..40 {
            let mut parents = vec![0; p];
            for rank in 0..p {
                for child in children(rank, p) {
                    parents[child] += 1;
                    assert_eq!(child - (child & child.wrapping_neg()), rank, "p {p}");
                }
            }
            assert_eq!(parents[0], 0);
            assert!(parents[1..].iter().all(|&n| n == 1), "p {p}: {parents:?}");
        }
    }
}
