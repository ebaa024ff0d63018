//! `hier`: two levels for a machine of hosts joined by a network (NCCL's and Horovod's
//! hierarchical allreduce): reduce inside each host over shared memory, allreduce among the
//! hosts' leaders over the network, broadcast inside each host.
//!
//! ```text
//!  host A: a0 a1 a2      host B: b0 b1 b2
//!   1. binomial reduce to a0 / to b0           (shared memory, lg R levels)
//!   2. ring allreduce between a0 and b0        (network, H leaders)
//!   3. binomial broadcast from a0 / from b0    (shared memory, lg R levels)
//! ```
//!
//! Hosts are the shared-memory domains `MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)` finds; the
//! leader of a host is its lowest rank. Across hosts the ring: when links are slow the
//! bandwidth term dominates, and the ring's 2n(H-1)/H bytes per leader are the least any
//! allreduce sends. Only one rank per host uses the network: each leader sends 2n(H-1)/H
//! in 2(H-1) messages, where a flat ring over all P = HR ranks puts 2n(P-1)/P on every link
//! between hosts in 2(P-1) messages (R times the latency terms).
//!
//! Cost (H hosts of R ranks, n bytes; a, b over the network, a', b' over shared memory):
//! `2(H-1) a + 2n(H-1)/H b + n(H-1)/H g` across hosts plus `2 lg R (a' + n b') + n lg R g`
//! inside them (lg = ceil(log2 R)). The registry's coefficients are the network's part with
//! one rank per host (H = P), the part the links price; `analysis/commmodel.py` takes the
//! ranks per host. Every rank ends with its leader's bits, and every leader with the ring's.
//!
//! The two communicators are made by the first call (collective, as every call is) and kept
//! for as long as the algorithm is used with the same communicator.

use mpi::topology::{Color, SimpleCommunicator};
use mpi::traits::*;
use mpi::raw::AsRaw;

use super::exchange::Exchange;
use super::registry::{Algorithm, Build, Builders};
use super::ring::{self, Ring};
use super::tree::{broadcast_from_root, reduce_to_root};
use super::{Allreduce, Traffic};
use crate::real::Real;

/// `--allreduce hier`.
pub const ALGORITHM: Algorithm = Algorithm::new(
    "hier",
    "Reduce inside each host, ring allreduce among the hosts, broadcast inside each host",
    "2(H-1) a + 2n(H-1)/H b + n(H-1)/H g across H hosts, + 2 lg R (a' + n b') + n lg R g \
     inside hosts of R ranks",
    Builders::of::<Hierarchical<f64>, Hierarchical<f32>>(),
)
// The network's part with one rank per host: the ring's over P hosts.
.with_cost(ring::cost);

pub struct Hierarchical<F> {
    /// The host's partial sum, the leaders' ring's input.
    partial: Vec<F>,
    /// Receives a child's partial sum in the host's reduce.
    scratch: Vec<F>,
    leaders_ring: Ring<F>,
    levels: Option<Levels>,
}

/// The communicators of one parent communicator: the ranks of this host, and the hosts'
/// leaders (`None` on the other ranks).
struct Levels {
    parent: mpi::ffi::MPI_Comm,
    host: SimpleCommunicator,
    leaders: Option<SimpleCommunicator>,
}

impl Levels {
    /// Collective over `world`.
    fn split(world: &SimpleCommunicator) -> Self {
        let host = world.split_shared(world.rank());
        let color = match host.rank() {
            0 => Color::with_value(0),
            _ => Color::undefined(),
        };
        let leaders = world.split_by_color(color);
        Self {
            parent: world.as_raw(),
            host,
            leaders,
        }
    }
}

impl<F: Real> Build<F> for Hierarchical<F> {
    fn build(len: usize) -> Self {
        Self {
            partial: vec![F::zero(); len],
            scratch: vec![F::zero(); len],
            leaders_ring: Ring::build(len),
            levels: None,
        }
    }
}

impl<F: Real> Allreduce<F> for Hierarchical<F> {
    fn allreduce_sum(&mut self, world: &SimpleCommunicator, send: &[F], recv: &mut [F]) -> Traffic {
        if self.levels.as_ref().is_none_or(|l| l.parent != world.as_raw()) {
            self.levels = Some(Levels::split(world));
        }
        let levels = self.levels.as_ref().expect("split above");
        let n = send.len();
        self.partial.resize(n, F::zero());
        self.scratch.resize(n, F::zero());
        self.partial.copy_from_slice(send);
        let mut inside = Exchange::new(&levels.host);
        reduce_to_root(&mut inside, &mut self.partial, &mut self.scratch);
        let mut traffic = Traffic::default();
        if let Some(leaders) = &levels.leaders {
            traffic = self
                .leaders_ring
                .allreduce_sum(leaders, &self.partial, recv);
        }
        broadcast_from_root(&mut inside, recv);
        traffic.bytes += inside.traffic.bytes;
        traffic.messages += inside.traffic.messages;
        traffic
    }
}
