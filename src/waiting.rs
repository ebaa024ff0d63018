//! How a rank waits for MPI to finish a transfer: in the library's own blocking wait, which
//! spins on the CPU (the fastest when every rank has a core of its own), or by polling with
//! `MPI_Test` and giving the core away between polls (`sched_yield`), which a host with more
//! ranks than cores needs.
//!
//! Why it is ours to decide: a spinning rank holds its core while the rank it waits for is
//! not running, so every message costs a scheduler time slice. Open MPI yields by itself when
//! its launcher was told `--oversubscribe`; MPICH 4.0 (ch4) has no such mode, and a
//! 3-rank allreduce on 2 cores took 4-8 ms per call (one or two 4 ms slices) against 8 us
//! when the waiting rank yields. Every wait of the program goes through [`complete`] and
//! [`complete_raw`], so one setting decides for all of them.

use std::sync::atomic::{AtomicBool, Ordering};

use mpi::ffi;
use mpi::request::{Request, Scope};

/// `--wait`: how ranks wait for MPI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Waiting {
    /// Yield when this host has more ranks than cores, spin otherwise.
    Auto,
    /// The library's blocking calls (busy-polling).
    Spin,
    /// Nonblocking calls polled with MPI_Test, yielding the core between polls.
    Yield,
}

impl Waiting {
    pub fn name(self) -> &'static str {
        match self {
            Waiting::Auto => "auto",
            Waiting::Spin => "spin",
            Waiting::Yield => "yield",
        }
    }

    /// The policy `self` means on a host that is (or is not) oversubscribed.
    pub fn resolve(self, oversubscribed: bool) -> Waiting {
        match self {
            Waiting::Auto if oversubscribed => Waiting::Yield,
            Waiting::Auto => Waiting::Spin,
            other => other,
        }
    }
}

static YIELDING: AtomicBool = AtomicBool::new(false);

/// Sets this process's policy (at start-up, before any transfer; `Auto` must be resolved).
pub fn set(policy: Waiting) {
    assert_ne!(policy, Waiting::Auto, "resolve the policy first");
    YIELDING.store(policy == Waiting::Yield, Ordering::Relaxed);
}

/// The policy in force.
pub fn current() -> Waiting {
    if yielding() {
        Waiting::Yield
    } else {
        Waiting::Spin
    }
}

thread_local! {
    static THIS_THREAD_YIELDS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Makes the calling thread yield while it waits, whatever the process's policy: a
/// communication thread that shares its rank's core with the computing thread must not spin.
pub fn yield_on_this_thread() {
    THIS_THREAD_YIELDS.with(|yields| yields.set(true));
}

fn yielding() -> bool {
    YIELDING.load(Ordering::Relaxed) || THIS_THREAD_YIELDS.with(std::cell::Cell::get)
}

/// Waits until `request` has completed, by the policy in force.
pub fn complete<'a, D: ?Sized, S: Scope<'a>>(request: Request<'a, D, S>) {
    if !yielding() {
        request.wait_without_status();
        return;
    }
    let mut pending = request;
    loop {
        match pending.test() {
            Ok(_) => return,
            Err(still) => pending = still,
        }
        std::thread::yield_now();
    }
}

/// [`complete`] for a request made through the raw bindings.
///
/// # Safety
/// `request` is an active (or null) request of this process whose buffers outlive the call.
pub unsafe fn complete_raw(request: &mut ffi::MPI_Request) {
    if !yielding() {
        ffi::MPI_Wait(request, ffi::RSMPI_STATUS_IGNORE);
        return;
    }
    let mut done = 0;
    loop {
        ffi::MPI_Test(request, &mut done, ffi::RSMPI_STATUS_IGNORE);
        if done != 0 {
            return;
        }
        std::thread::yield_now();
    }
}
