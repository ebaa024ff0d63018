//! `rabenseifner`: reduce-scatter by recursive halving, then allgather by recursive doubling
//! (Rabenseifner 2004; MPICH's allreduce for long messages). Bandwidth-optimal like the ring,
//! with lg P steps instead of 2(P-1).
//!
//! The buffer is cut into p' blocks. In halving step k (mask = 2^k) a rank keeps half of its
//! current range of blocks (the lower half if bit k of its rank is 0), sends the other half to
//! the rank differing in bit k and adds the half it receives; after lg p' steps it owns the sum
//! of one block. The allgather retraces the steps in reverse, doubling the range each time.
//! Each block is summed by one rank, so all ranks end with the same bits. Other P: see
//! [`super::fold`].
//!
//! ```text
//!  p' = 4, blocks 0..4   halve on bit 0: {0,2} keep blocks 0-1, {1,3} keep 2-3
//!                        halve on bit 1: 0 keeps 0, 2 keeps 1, 1 keeps 2, 3 keeps 3
//! ```
//! Cost (P a power of two): `2 lg P a + 2 n (P-1)/P b + n (P-1)/P g`. Per rank: 2 lg p'
//! messages of halving sizes (n/2, n/4, ... then back up), plus the fold's whole buffers.

use std::ops::Range;

use mpi::topology::SimpleCommunicator;

use super::exchange::{add_into, split_ranges, Exchange};
use super::fold::{fold_cost, fold_messages, plus_whole_buffers, Fold};
use super::registry::{Algorithm, Build, Builders, Cost};
use super::{Allreduce, Traffic};
use crate::partition::block;
use crate::real::Real;

/// `--allreduce rabenseifner`.
pub const ALGORITHM: Algorithm = Algorithm::new(
    "rabenseifner",
    "Recursive-halving reduce-scatter, recursive-doubling allgather",
    "2 lg p' a + 2n(p'-1)/p' b + n(p'-1)/p' g, p' = 2^floor(log2 P); plus 2 a + 2n b + n g to fold P != p'",
    Builders::of::<Rabenseifner<f64>, Rabenseifner<f32>>(),
)
.with_cost(cost)
.with_traffic(expected_traffic);

/// Critical path: lg p' halving and lg p' doubling steps over p' = 2^floor(log2 P) ranks,
/// plus the fold when P is not a power of two ([`super::fold`]).
fn cost(n: f64, p: usize) -> Cost {
    let pof2 = 1usize << p.ilog2();
    let share = (pof2 - 1) as f64 / pof2 as f64;
    fold_cost(
        Cost {
            messages: 2.0 * f64::from(pof2.ilog2()),
            bytes_sent: 2.0 * n * share,
            bytes_added: n * share,
        },
        n,
        p,
    )
}

pub struct Rabenseifner<F> {
    scratch: Vec<F>,
}

impl<F: Real> Build<F> for Rabenseifner<F> {
    fn build(len: usize) -> Self {
        Self {
            scratch: vec![F::zero(); len],
        }
    }
}

/// One halving step: the group partner, and the blocks kept and sent (`half` blocks each).
struct Halving {
    partner: usize,
    keep: usize,
    sent: usize,
    half: usize,
}

/// The halving steps of group rank `me` in a group of `group` ranks, in order.
fn halvings(me: usize, group: usize) -> impl Iterator<Item = Halving> {
    let (mut lo, mut count) = (0, group);
    (0..group.ilog2()).map(move |k| {
        let mask = 1 << k;
        let half = count / 2;
        let (keep, sent) = if me & mask == 0 {
            (lo, lo + half)
        } else {
            (lo + half, lo)
        };
        lo = keep;
        count = half;
        Halving {
            partner: me ^ mask,
            keep,
            sent,
            half,
        }
    })
}

/// Elements of blocks `first..first + count` of `n` elements cut into `blocks` blocks.
fn elements(n: usize, blocks: usize, first: usize, count: usize) -> Range<usize> {
    block(n, blocks, first).start..block(n, blocks, first + count - 1).end
}

impl<F: Real> Allreduce<F> for Rabenseifner<F> {
    fn allreduce_sum(&mut self, world: &SimpleCommunicator, send: &[F], recv: &mut [F]) -> Traffic {
        let n = send.len();
        let mut ex = Exchange::new(world);
        recv.copy_from_slice(send);
        self.scratch.resize(n, F::zero());
        let fold = Fold::fold_in(&mut ex, recv, &mut self.scratch);
        if let Some(me) = fold.group_rank {
            let group = fold.group;
            let steps: Vec<Halving> = halvings(me, group).collect();
            for step in &steps {
                let keep = elements(n, group, step.keep, step.half);
                let sent = elements(n, group, step.sent, step.half);
                let partner = fold.rank_of(step.partner);
                let incoming = &mut self.scratch[..keep.len()];
                ex.send_receive(partner, &recv[sent], partner, incoming);
                add_into(&mut recv[keep], incoming);
            }
            for step in steps.iter().rev() {
                let mine = elements(n, group, step.keep, step.half);
                let theirs = elements(n, group, step.sent, step.half);
                let (data, into) = split_ranges(recv, mine, theirs);
                ex.send_receive(
                    fold.rank_of(step.partner),
                    data,
                    fold.rank_of(step.partner),
                    into,
                );
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
    let member = if rank < 2 * remainder {
        (rank % 2 == 1).then_some(rank / 2)
    } else {
        Some(rank - remainder)
    };
    let core = member.map_or(Traffic::default(), |me| {
        let steps: Vec<Halving> = halvings(me, group).collect();
        let sent: usize = steps
            .iter()
            .map(|s| {
                elements(n, group, s.sent, s.half).len() + elements(n, group, s.keep, s.half).len()
            })
            .sum();
        Traffic {
            bytes: (sent * elem) as u64,
            messages: 2 * steps.len() as u64,
        }
    });
    plus_whole_buffers(core, fold_messages(p, rank), n, elem)
}
