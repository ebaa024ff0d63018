//! `rd`: recursive doubling (MPICH's allreduce for short messages). In step k every rank swaps
//! its whole partial sum with the rank whose number differs in bit k and adds it: after lg P
//! steps every rank holds the total.
//!
//! ```text
//!  P = 4   step 0: 0<->1  2<->3     step 1: 0<->2  1<->3
//! ```
//! Both partners add the same two values (a + b on one side, b + a on the other, equal in IEEE
//! arithmetic), so all ranks end with the same bits. Other P: see [`super::fold`].
//!
//! Cost (P a power of two): `lg P a + n lg P b + n lg P g`: latency-optimal, but the whole
//! buffer moves every step. Per rank: lg p' whole-buffer messages, plus one for the ranks
//! folded in or out.

use mpi::topology::SimpleCommunicator;

use super::exchange::{add_into, Exchange};
use super::fold::{fold_cost, fold_messages, plus_whole_buffers, Fold};
use super::registry::{Algorithm, Build, Builders, Cost};
use super::{Allreduce, Traffic};
use crate::real::Real;

/// `--allreduce rd`.
pub const ALGORITHM: Algorithm = Algorithm::new(
    "rd",
    "Recursive doubling (latency-optimal for short messages)",
    "lg p' a + n lg p' b + n lg p' g, p' = 2^floor(log2 P); plus 2 a + 2n b + n g to fold P != p'",
    Builders::of::<RecursiveDoubling<f64>, RecursiveDoubling<f32>>(),
)
.with_cost(cost)
.with_traffic(expected_traffic);

/// Critical path: lg p' exchanges of the whole buffer, plus the fold when P is not a power
/// of two ([`super::fold`]).
fn cost(n: f64, p: usize) -> Cost {
    let lg = f64::from(p.ilog2());
    fold_cost(
        Cost {
            messages: lg,
            bytes_sent: n * lg,
            bytes_added: n * lg,
        },
        n,
        p,
    )
}

pub struct RecursiveDoubling<F> {
    scratch: Vec<F>,
}

impl<F: Real> Build<F> for RecursiveDoubling<F> {
    fn build(len: usize) -> Self {
        Self {
            scratch: vec![F::zero(); len],
        }
    }
}

impl<F: Real> Allreduce<F> for RecursiveDoubling<F> {
    fn allreduce_sum(&mut self, world: &SimpleCommunicator, send: &[F], recv: &mut [F]) -> Traffic {
        let mut ex = Exchange::new(world);
        recv.copy_from_slice(send);
        self.scratch.resize(send.len(), F::zero());
        let fold = Fold::fold_in(&mut ex, recv, &mut self.scratch);
        if let Some(me) = fold.group_rank {
            let mut mask = 1;
            while mask < fold.group {
                let partner = fold.rank_of(me ^ mask);
                ex.send_receive(partner, recv, partner, &mut self.scratch);
                add_into(recv, &self.scratch);
                mask <<= 1;
            }
        }
        fold.fold_out(&mut ex, recv);
        ex.traffic
    }
}

/// Bytes and messages rank `rank` sends for `n` elements of `elem` bytes (the cost formula).
pub fn expected_traffic(n: usize, p: usize, rank: usize, elem: usize) -> Traffic {
    let group = 1usize << p.ilog2();
    let remainder = p - group;
    let sits_out = rank < 2 * remainder && rank.is_multiple_of(2);
    let steps = if sits_out { 0 } else { group.ilog2() as usize };
    plus_whole_buffers(Traffic::default(), steps + fold_messages(p, rank), n, elem)
}
