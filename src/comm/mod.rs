//! The communicator the trainer sees, and the [`Allreduce`] interface every gradient-combining
//! algorithm fills in.
//!
//! [`Comm`] wraps `MPI_COMM_WORLD` with the few collectives the program needs outside the step
//! loop (metric sums, gathers to rank 0, agreeing on errors). The gradient allreduce goes
//! through an [`Allreduce`] object instead, so algorithms can be swapped and compared; each one
//! reports the bytes and messages it sent, which the trainer records per step.
//!
//! Not the training step's schedule (what is combined when: `train::step`).

mod exchange;
mod fold;
pub mod overlap;
pub mod placement;
pub mod registry;

pub use registry::Algorithm;

/// Declares each algorithm's module and lists its [`Algorithm`] value: adding an algorithm is
/// its file plus its name here.
macro_rules! register {
    ($($module:ident),* $(,)?) => {
        $(pub mod $module;)*
        /// Every algorithm `--allreduce` can name, in the order of `--help`, the benchmark and
        /// the tests; the library's own first (the reference).
        pub const ALGORITHMS: &[&Algorithm] = &[$(&$module::ALGORITHM),*];
    };
}

register!(
    library,
    ring,
    tree,
    recursive_doubling,
    rabenseifner,
    star,
    hierarchical
);

/// The algorithm called `name`.
pub fn algorithm(name: &str) -> Option<&'static Algorithm> {
    ALGORITHMS.iter().copied().find(|a| a.name == name)
}

/// The MPI library's own `MPI_Allreduce`, the reference the others are checked against.
pub fn reference() -> &'static Algorithm {
    &library::ALGORITHM
}

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use mpi::collective::SystemOperation;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use crate::errors::{abort_job, exit_code, print_line, ReportedElsewhere};
use crate::real::Real;
use crate::waiting::complete;

/// What one rank sent during one allreduce.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    pub bytes: u64,
    pub messages: u64,
}

/// Sum of `send` over all ranks, written into `recv` on every rank, with identical bits on
/// every rank (the replicas' parameters must never drift apart).
pub trait Allreduce<F: Real> {
    fn allreduce_sum(&mut self, world: &SimpleCommunicator, send: &[F], recv: &mut [F]) -> Traffic;
}

/// `MPI_COMM_WORLD` and this process's place in it.
pub struct Comm {
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
}

impl Comm {
    pub fn new(world: SimpleCommunicator) -> Self {
        let rank = world.rank() as usize;
        let size = world.size() as usize;
        Self { world, rank, size }
    }

    pub fn world(&self) -> &SimpleCommunicator {
        &self.world
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn size(&self) -> usize {
        self.size
    }

    pub fn is_root(&self) -> bool {
        self.rank == 0
    }

    pub fn barrier(&self) {
        complete(self.world.immediate_barrier());
    }

    /// Element-wise sum over ranks, on every rank.
    pub fn sum<T: Equivalence + Copy + Default>(&self, values: &[T]) -> Vec<T> {
        self.all_reduce(values, SystemOperation::sum())
    }

    /// Element-wise maximum over ranks, on every rank.
    pub fn max<T: Equivalence + Copy + Default>(&self, values: &[T]) -> Vec<T> {
        self.all_reduce(values, SystemOperation::max())
    }

    /// Element-wise minimum over ranks, on every rank. Keep unsigned values below 2^31: MPICH
    /// 4.0.2 compares them as signed (`MPI_MIN` of 1 and `u32::MAX` is `u32::MAX`).
    pub fn min<T: Equivalence + Copy + Default>(&self, values: &[T]) -> Vec<T> {
        self.all_reduce(values, SystemOperation::min())
    }

    fn all_reduce<T: Equivalence + Copy + Default>(
        &self,
        values: &[T],
        op: SystemOperation,
    ) -> Vec<T> {
        let mut out = vec![T::default(); values.len()];
        mpi::request::scope(|scope| {
            complete(
                self.world
                    .immediate_all_reduce_into(scope, values, &mut out[..], op),
            );
        });
        out
    }

    /// Ends the whole job from this rank alone: prints the error, naming the rank, and calls
    /// MPI_Abort, which makes the launcher kill every rank (exit code 1).
    pub fn abort(&self, error: &anyhow::Error) -> ! {
        print_line(format_args!(
            "mpi-sgd: error on rank {}: {error:#}",
            self.rank
        ));
        abort_job(1)
    }

    /// Collective: waits until every rank has arrived, or `limit` has passed (a rank that
    /// will never arrive must not keep the others). Returns whether all arrived.
    pub fn barrier_within(&self, limit: std::time::Duration) -> bool {
        let begin = std::time::Instant::now();
        // SAFETY: MPI is initialised; the request is completed below or abandoned at exit.
        unsafe {
            let mut request = mpi::ffi::RSMPI_REQUEST_NULL;
            mpi::ffi::MPI_Ibarrier(mpi::ffi::RSMPI_COMM_WORLD, &mut request);
            let mut done = 0;
            while done == 0 && begin.elapsed() < limit {
                mpi::ffi::MPI_Test(&mut request, &mut done, mpi::ffi::RSMPI_STATUS_IGNORE);
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            done != 0
        }
    }

    /// Collective: rank 0's `value`, on every rank.
    pub fn broadcast_from_root<T: Equivalence + Copy>(&self, value: T) -> T {
        let mut value = value;
        let root = self.world.process_at_rank(0);
        mpi::request::scope(|scope| complete(root.immediate_broadcast_into(scope, &mut value)));
        value
    }

    /// Collective: whether every rank brought the same `value`.
    pub fn same_everywhere(&self, value: u64) -> bool {
        self.min(&[value])[0] == self.max(&[value])[0]
    }

    /// Collective: whether every rank holds bit-identical `values` (compared by a hash of the
    /// bits; `DefaultHasher::new` has fixed keys, so equal bits hash alike on every rank).
    pub fn same_bits_everywhere<F: Real>(&self, values: &[F]) -> bool {
        let mut hasher = DefaultHasher::new();
        for v in values {
            v.into_f64().to_bits().hash(&mut hasher);
        }
        self.same_everywhere(hasher.finish())
    }

    /// Every rank's `values` (all of the same length), concatenated in rank order on rank 0;
    /// `None` elsewhere.
    pub fn gather<T: Equivalence + Copy + Default>(&self, values: &[T]) -> Option<Vec<T>> {
        let root = self.world.process_at_rank(0);
        if self.is_root() {
            let mut all = vec![T::default(); values.len() * self.size];
            mpi::request::scope(|scope| {
                complete(root.immediate_gather_into_root(scope, values, &mut all[..]));
            });
            Some(all)
        } else {
            mpi::request::scope(|scope| complete(root.immediate_gather_into(scope, values)));
            None
        }
    }

    /// Every rank's string on rank 0 (cut to 255 bytes, enough for host names).
    pub fn gather_strings(&self, value: &str) -> Option<Vec<String>> {
        const WIDTH: usize = 256;
        let mut padded = [0u8; WIDTH];
        let bytes = &value.as_bytes()[..value.len().min(WIDTH - 1)];
        padded[..bytes.len()].copy_from_slice(bytes);
        self.gather(&padded).map(|all| {
            all.chunks(WIDTH)
                .map(|c| {
                    let end = c.iter().position(|&b| b == 0).unwrap_or(WIDTH);
                    String::from_utf8_lossy(&c[..end]).into_owned()
                })
                .collect()
        })
    }

    /// Collective: every rank brings its own outcome and all leave with the job's. If any rank
    /// failed, the lowest failing rank returns its error (for `main` to print) and every other
    /// rank returns [`ReportedElsewhere`] with the worst exit code, so the job stops cleanly,
    /// printing one message, with no rank left waiting. An outcome that was agreed already
    /// keeps its reporter: a [`ReportedElsewhere`] does not make a rank the one to print.
    pub fn agree<T>(&self, local: anyhow::Result<T>) -> anyhow::Result<T> {
        let code = local.as_ref().err().map_or(0, exit_code);
        let reports = local.as_ref().is_err_and(|e| !e.is::<ReportedElsewhere>());
        // Not u64::MAX for "none": MPICH 4.0.2 compares unsigned integers as signed in MPI_MIN
        // and MPI_MAX (u64::MAX reads as -1 and wins the minimum), so values stay below 2^31.
        let failing_rank = if reports { self.rank } else { self.size } as u64;
        let worst = self.max(&[code])[0];
        if worst == 0 {
            return local;
        }
        let first_failing = self.min(&[failing_rank])[0];
        match local {
            Err(error) if first_failing == self.rank as u64 => Err(error),
            _ => Err(ReportedElsewhere(worst).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traffic(name: &str, n: usize, p: usize, rank: usize) -> Traffic {
        let algorithm = algorithm(name).expect("registered");
        algorithm.traffic(n, p, rank, 8).expect("one of ours")
    }

    /// The per-rank counts agree with the closed forms of Thakur, Rabenseifner and Gropp
    /// where those apply (n divisible by P; P a power of two for the hypercube algorithms).
    #[test]
    fn schedules_match_the_closed_form_costs() {
        for p in [1usize, 2, 4, 8, 16] {
            let lg = p.ilog2() as u64;
            let n = 48 * p;
            let bandwidth_optimal = (2 * n * (p - 1) / p * 8) as u64;
            for rank in 0..p {
                let ring = traffic("ring", n, p, rank);
                assert_eq!(
                    (ring.bytes, ring.messages),
                    (bandwidth_optimal, 2 * (p as u64 - 1))
                );
                let rab = traffic("rabenseifner", n, p, rank);
                assert_eq!((rab.bytes, rab.messages), (bandwidth_optimal, 2 * lg));
                let rd = traffic("rd", n, p, rank);
                assert_eq!((rd.bytes, rd.messages), (lg * n as u64 * 8, lg));
            }
        }
    }

    /// The critical path's bytes sent match the per-rank traffic of the busiest rank where
    /// the schedule is symmetric (P a power of two, n divisible by P).
    #[test]
    fn cost_coefficients_agree_with_the_traffic_formulas() {
        for p in [2usize, 4, 8] {
            let n = 16 * p;
            for name in ["ring", "rd", "rabenseifner"] {
                let cost = (algorithm(name).unwrap().cost.unwrap())((8 * n) as f64, p);
                let busiest = (0..p)
                    .map(|r| traffic(name, n, p, r))
                    .max_by_key(|t| t.bytes);
                let busiest = busiest.unwrap();
                assert_eq!(cost.bytes_sent, busiest.bytes as f64, "{name} P={p}");
                assert_eq!(cost.messages, busiest.messages as f64, "{name} P={p}");
            }
        }
    }

    #[test]
    fn names_are_unique_and_the_reference_comes_first() {
        let mut names: Vec<&str> = ALGORITHMS.iter().map(|a| a.name).collect();
        assert_eq!(names[0], reference().name);
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ALGORITHMS.len());
        assert!(ALGORITHMS[1..].iter().all(|a| a.cost.is_some()));
    }

    #[test]
    fn tree_and_star_send_each_buffer_once_up_and_once_down() {
        for p in 1..20 {
            for name in ["tree", "star"] {
                let total: u64 = (0..p).map(|r| traffic(name, 10, p, r).messages).sum();
                assert_eq!(total, 2 * (p as u64 - 1), "{name} P={p}");
            }
            let root = traffic("tree", 10, p, 0).messages;
            assert_eq!(
                root,
                u64::from(p.next_power_of_two().ilog2()),
                "tree root, P={p}"
            );
        }
    }

    #[test]
    fn folding_costs_one_extra_buffer_for_the_first_2_rem_ranks() {
        // P = 6: p' = 4, rem = 2: ranks 0 and 2 sit out (one send in), 1 and 3 send one back.
        let rd: Vec<u64> = (0..6).map(|r| traffic("rd", 5, 6, r).messages).collect();
        assert_eq!(rd, [1, 3, 1, 3, 2, 2]);
        assert_eq!(reference().traffic(5, 6, 0, 8), None);
    }
}
