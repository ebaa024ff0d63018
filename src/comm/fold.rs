//! The standard way to run a power-of-two algorithm (recursive doubling, Rabenseifner) on any
//! number of ranks P (Thakur, Rabenseifner and Gropp 2005, as in MPICH).
//!
//! With p' the largest power of two <= P and rem = P - p': among the first 2 rem ranks, each
//! even rank sends its buffer to the odd rank above it and sits out; the odd rank adds it. The
//! p' remaining ranks run the algorithm under new ranks 0..p', and at the end each odd rank of
//! the first 2 rem sends the result back to its even partner. Cost on top of the algorithm:
//! `2 a + 2 n b + n g` for the ranks involved, nothing for the others.
//!
//! Not an algorithm of its own: the wrapper that lets the hypercube ones run on any P.

use super::exchange::{add_into, Exchange};
use super::registry::Cost;
use super::Traffic;
use crate::real::Real;

/// This rank's place in the power-of-two group.
pub struct Fold {
    /// p', the size of the group.
    pub group: usize,
    remainder: usize,
    /// This rank's rank in the group; `None` while it sits out.
    pub group_rank: Option<usize>,
}

impl Fold {
    /// Collective over `ex`: folds the excess ranks' buffers into their partners'.
    pub fn fold_in<F: Real>(ex: &mut Exchange, buf: &mut [F], scratch: &mut [F]) -> Self {
        let (rank, p) = (ex.rank, ex.size);
        let group = 1 << p.ilog2();
        let remainder = p - group;
        let group_rank = if rank < 2 * remainder {
            if rank % 2 == 0 {
                ex.send(rank + 1, buf);
                None
            } else {
                ex.receive(rank - 1, scratch);
                add_into(buf, scratch);
                Some(rank / 2)
            }
        } else {
            Some(rank - remainder)
        };
        Self {
            group,
            remainder,
            group_rank,
        }
    }

    /// The communicator rank of group rank `q`.
    pub fn rank_of(&self, q: usize) -> usize {
        if q < self.remainder {
            2 * q + 1
        } else {
            q + self.remainder
        }
    }

    /// Collective over `ex`: hands the result back to the ranks that sat out.
    pub fn fold_out<F: Real>(&self, ex: &mut Exchange, buf: &mut [F]) {
        let rank = ex.rank;
        if rank < 2 * self.remainder {
            if rank % 2 == 1 {
                ex.send(rank - 1, buf);
            } else {
                ex.receive(rank + 1, buf);
            }
        }
    }
}

/// Messages rank `rank` sends in `fold_in` and `fold_out` (one whole buffer each).
pub fn fold_messages(p: usize, rank: usize) -> usize {
    let remainder = p - (1 << p.ilog2());
    usize::from(rank < 2 * remainder)
}

/// `traffic` plus `messages` whole-buffer messages of `n` elements of `elem` bytes.
pub fn plus_whole_buffers(traffic: Traffic, messages: usize, n: usize, elem: usize) -> Traffic {
    Traffic {
        bytes: traffic.bytes + (messages * n * elem) as u64,
        messages: traffic.messages + messages as u64,
    }
}

/// `cost` of a power-of-two algorithm plus the fold's `2 a + 2 n b + n g` when P is not a
/// power of two (the folding ranks' critical path).
pub fn fold_cost(cost: Cost, n: f64, p: usize) -> Cost {
    if p.is_power_of_two() {
        return cost;
    }
    Cost {
        messages: cost.messages + 2.0,
        bytes_sent: cost.bytes_sent + 2.0 * n,
        bytes_added: cost.bytes_added + n,
    }
}
