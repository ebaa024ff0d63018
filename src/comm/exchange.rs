//! Point-to-point transfers of our allreduce algorithms, counted where they happen: the bytes
//! and messages an algorithm reports are measured here, never computed by the algorithm itself,
//! so the tests can hold them against each algorithm's cost formula.
//!
//! Not an algorithm: the counted send and receive every algorithm uses.

use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use super::Traffic;
use crate::real::Real;
use crate::waiting::complete;

/// Tag of every message our algorithms send, apart from anything else on the communicator.
const TAG: i32 = 0x5ad;

/// One allreduce call's transfers, with what this rank sent so far.
pub struct Exchange<'c> {
    world: &'c SimpleCommunicator,
    pub rank: usize,
    pub size: usize,
    pub traffic: Traffic,
}

impl<'c> Exchange<'c> {
    pub fn new(world: &'c SimpleCommunicator) -> Self {
        Self {
            world,
            rank: world.rank() as usize,
            size: world.size() as usize,
            traffic: Traffic::default(),
        }
    }

    fn count<F>(&mut self, data: &[F]) {
        self.traffic.bytes += std::mem::size_of_val(data) as u64;
        self.traffic.messages += 1;
    }

    pub fn send<F: Real>(&mut self, to: usize, data: &[F]) {
        self.count(data);
        let destination = self.world.process_at_rank(to as i32);
        mpi::request::scope(|scope| {
            complete(destination.immediate_send_with_tag(scope, data, TAG));
        });
    }

    pub fn receive<F: Real>(&mut self, from: usize, into: &mut [F]) {
        let source = self.world.process_at_rank(from as i32);
        mpi::request::scope(|scope| {
            complete(source.immediate_receive_into_with_tag(scope, into, TAG));
        });
    }

    /// Sends `data` to `to` and receives `into` from `from` with nonblocking calls, running
    /// `overlap` (work that touches neither buffer) while the transfers are in flight.
    pub fn send_receive_overlapped<F: Real>(
        &mut self,
        to: usize,
        data: &[F],
        from: usize,
        into: &mut [F],
        overlap: impl FnOnce(),
    ) {
        self.count(data);
        let destination = self.world.process_at_rank(to as i32);
        let source = self.world.process_at_rank(from as i32);
        mpi::request::scope(|scope| {
            let receiving = source.immediate_receive_into_with_tag(scope, into, TAG);
            let sending = destination.immediate_send_with_tag(scope, data, TAG);
            overlap();
            complete(receiving);
            complete(sending);
        });
    }

    /// Sends `data` to `to` while receiving `into` from `from` (both in flight at once: no
    /// deadlock when every rank of a ring or a pair does the same).
    pub fn send_receive<F: Real>(&mut self, to: usize, data: &[F], from: usize, into: &mut [F]) {
        self.send_receive_overlapped(to, data, from, into, || {});
    }
}

/// `acc[i] += other[i]`.
pub fn add_into<F: Real>(acc: &mut [F], other: &[F]) {
    for (a, &b) in acc.iter_mut().zip(other) {
        *a = *a + b;
    }
}

/// Two disjoint ranges of one buffer, the first to read and the second to write.
pub fn split_ranges<F>(
    buf: &mut [F],
    read: std::ops::Range<usize>,
    write: std::ops::Range<usize>,
) -> (&[F], &mut [F]) {
    assert!(
        read.end <= write.start || write.end <= read.start,
        "ranges overlap"
    );
    if read.start < write.start {
        let (low, high) = buf.split_at_mut(write.start);
        (&low[read], &mut high[..write.len()])
    } else {
        let (low, high) = buf.split_at_mut(read.start);
        (&high[..read.len()], &mut low[write])
    }
}
