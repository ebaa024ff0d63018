//! `mpi`: the MPI library's own `MPI_Allreduce`, the reference every other algorithm is
//! checked and timed against.
//!
//! Cost: whatever the library chooses. Open MPI's tuned component and MPICH switch between
//! recursive doubling, Rabenseifner and ring by message size and P, so its cost follows the
//! best of those formulas rather than any single one.
//!
//! Where ranks yield their cores while they wait (`--wait yield`, an oversubscribed host), the
//! call is `MPI_Iallreduce` polled with `MPI_Test`: the library's blocking call would spin.

use mpi::collective::SystemOperation;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use super::registry::{Algorithm, Build, Builders};
use super::{Allreduce, Traffic};
use crate::real::Real;
use crate::waiting::{self, Waiting};

/// `--allreduce mpi`: the reference.
pub const ALGORITHM: Algorithm = Algorithm::new(
    "mpi",
    "The MPI library's own MPI_Allreduce (the reference)",
    "the library's choice of algorithm by message size and P",
    Builders::of::<LibraryAllreduce, LibraryAllreduce>(),
)
.counted(
    "payload: bytes of the buffer handed to MPI_Allreduce, one message per call; \
     the library's own traffic is not observable",
);

pub struct LibraryAllreduce;

impl<F: Real> Build<F> for LibraryAllreduce {
    fn build(_len: usize) -> Self {
        LibraryAllreduce
    }
}

impl<F: Real> Allreduce<F> for LibraryAllreduce {
    fn allreduce_sum(&mut self, world: &SimpleCommunicator, send: &[F], recv: &mut [F]) -> Traffic {
        match waiting::current() {
            Waiting::Yield => mpi::request::scope(|scope| {
                waiting::complete(world.immediate_all_reduce_into(
                    scope,
                    send,
                    recv,
                    SystemOperation::sum(),
                ));
            }),
            _ => world.all_reduce_into(send, recv, SystemOperation::sum()),
        }
        Traffic {
            bytes: std::mem::size_of_val(send) as u64,
            messages: 1,
        }
    }
}
