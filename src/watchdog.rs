//! The stall watchdog (`--stall-timeout SECONDS`): a rank that has waited in a collective of
//! the training loop longer than that asks every other rank where it is, reports the ranks that
//! have not arrived, and aborts the job, instead of burning the allocation.
//!
//! The training thread only stores where it is ([`Progress`]: three relaxed atomic stores per
//! phase, no MPI). A thread per rank does the rest on its own duplicate of the world
//! communicator (MPI_THREAD_MULTIPLE), so it works while the training thread is blocked:
//!
//! ```text
//! every POLL:  answer any query (QUERY from rank q -> REPLY [step, phase, waiting, ms,
//!              reporting])
//!              if this rank has waited > timeout: QUERY every other rank, collect the REPLYs
//!              (ANSWER_WAIT at most), then report and MPI_Abort, unless a lower rank is
//!              reporting, or waiting too (it reports; this rank takes over from a lower rank
//!              that has waited 2 x timeout without reporting)
//! ```
//! The report describes the stall as it was found: a rank paused (SIGSTOP) past the timeout
//! and resumed while the answers are collected lets the collective finish, but the job is
//! still aborted once, with the time the rank had really waited, by one rank.
//! Costs nothing on the wire until a stall: the thread probes its own communicator every POLL.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mpi::ffi;

use crate::phase::Phase;

/// Where the training thread is: written by it, read by the watchdog thread.
pub struct Progress {
    origin: Instant,
    step: AtomicU64,
    phase: AtomicU8,
    /// Nanoseconds since `origin` when the current collective was entered; 0 when not in one.
    waiting_since: AtomicU64,
    /// The longest wait in a collective that has ended, in milliseconds (what a stall that
    /// ended before it was reported really took).
    longest_wait_ms: AtomicU64,
}

impl Progress {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            step: AtomicU64::new(0),
            phase: AtomicU8::new(Phase::Startup as u8),
            waiting_since: AtomicU64::new(0),
            longest_wait_ms: AtomicU64::new(0),
        }
    }

    /// The training thread works on `phase` of `step` (0-based), outside any collective.
    pub fn working(&self, step: usize, phase: Phase) {
        self.step.store(step as u64, Relaxed);
        self.phase.store(phase as u8, Relaxed);
        let since = self.waiting_since.swap(0, Relaxed);
        if since != 0 {
            let waited = (self.origin.elapsed().as_nanos() as u64).saturating_sub(since);
            self.longest_wait_ms.fetch_max(waited / 1_000_000, Relaxed);
        }
    }

    /// The training thread enters the collective of `phase` of `step`.
    pub fn waiting(&self, step: usize, phase: Phase) {
        self.step.store(step as u64, Relaxed);
        self.phase.store(phase as u8, Relaxed);
        let now = self.origin.elapsed().as_nanos().max(1) as u64;
        self.waiting_since.store(now, Relaxed);
    }

    /// [step, phase, waiting (0/1), milliseconds waited].
    fn snapshot(&self) -> Snapshot {
        let since = self.waiting_since.load(Relaxed);
        let waited_ms = match since {
            0 => 0,
            t => (self.origin.elapsed().as_nanos() as u64).saturating_sub(t) / 1_000_000,
        };
        [
            self.step.load(Relaxed),
            u64::from(self.phase.load(Relaxed)),
            u64::from(since != 0),
            waited_ms,
        ]
    }
}

/// [step, phase, waiting (0/1), milliseconds waited].
type Snapshot = [u64; 4];
/// A [`Snapshot`] and whether the answering rank is reporting a stall itself (0/1).
type Reply = [u64; 5];

const POLL: Duration = Duration::from_millis(100);
const ANSWER_WAIT: Duration = Duration::from_secs(3);
const SETTLE: Duration = Duration::from_millis(500);
const QUERY: i32 = 1;
const REPLY: i32 = 2;

/// A communicator handle the watchdog thread owns. MPI handles are plain values; under
/// MPI_THREAD_MULTIPLE any thread may use them.
struct RawComm(ffi::MPI_Comm);
// SAFETY: see above; the handle is used by the watchdog thread only.
unsafe impl Send for RawComm {}

/// The running watchdog; dropping it stops and joins the thread (before MPI_Finalize).
pub struct Watchdog {
    pub progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Collective (duplicates the world communicator). `None` for `timeout` None: progress is
    /// still recorded, nobody watches it.
    pub fn start(rank: usize, size: usize, timeout: Option<Duration>) -> Self {
        let progress = Arc::new(Progress::new());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = timeout.map(|timeout| {
            let mut comm: ffi::MPI_Comm = unsafe { ffi::RSMPI_COMM_NULL };
            // SAFETY: MPI is initialised; every rank calls this at the same point.
            unsafe { ffi::MPI_Comm_dup(ffi::RSMPI_COMM_WORLD, &mut comm) };
            let watch = Watch {
                comm: RawComm(comm),
                rank,
                size,
                timeout,
                progress: Arc::clone(&progress),
                reporting: std::cell::Cell::new(false),
            };
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("stall-watchdog".into())
                .spawn(move || watch.run(&stop))
                .expect("a thread can be started")
        });
        Self {
            progress,
            stop,
            thread,
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().ok();
        }
    }
}

struct Watch {
    comm: RawComm,
    rank: usize,
    size: usize,
    timeout: Duration,
    progress: Arc<Progress>,
    /// Set while this rank collects answers about a stall it found (told to askers).
    reporting: std::cell::Cell<bool>,
}

impl Watch {
    fn run(&self, stop: &AtomicBool) {
        while !stop.load(Relaxed) {
            std::thread::sleep(POLL);
            self.answer_queries();
            let found = self.progress.snapshot();
            if found[2] == 1 && Duration::from_millis(found[3]) > self.timeout {
                self.reporting.set(true);
                self.report_stall(found, Instant::now());
                self.reporting.set(false);
            }
        }
    }

    fn answer_queries(&self) {
        while let Some(asker) = self.probe_any(QUERY) {
            let mut query = [0u64; 1];
            self.receive(&mut query, asker, QUERY);
            let [step, phase, waiting, waited_ms] = self.progress.snapshot();
            let reporting = u64::from(self.reporting.get());
            self.send(&[step, phase, waiting, waited_ms, reporting], asker, REPLY);
        }
    }

    /// Asks every rank where it is; reports the stall `found` at `found_at` and aborts, unless
    /// a lower rank reports it.
    fn report_stall(&self, found: Snapshot, found_at: Instant) {
        for other in (0..self.size).filter(|&r| r != self.rank) {
            self.send(&[self.rank as u64], other, QUERY);
        }
        let mut replies: Vec<Option<Reply>> = vec![None; self.size];
        let deadline = Instant::now() + ANSWER_WAIT;
        while Instant::now() < deadline && replies.iter().filter(|r| r.is_none()).count() > 1 {
            self.answer_queries();
            match self.probe_any(REPLY) {
                Some(from) => {
                    let mut reply = [0u64; 5];
                    self.receive(&mut reply, from, REPLY);
                    replies[from as usize] = Some(reply);
                }
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        // Still in the collective it was found in: the wait goes on; else (a paused rank
        // came back meanwhile) the wait ended somewhere after it was found. When every rank
        // answered from inside the collective, it is given SETTLE to end before it is called
        // a deadlock (the last rank may have just arrived).
        let all_arrived = replies
            .iter()
            .enumerate()
            .filter(|&(r, _)| r != self.rank)
            .all(|(_, reply)| reply.is_some_and(|r| r[2] == 1 && r[0] >= found[0]));
        let settled = Instant::now() + if all_arrived { SETTLE } else { Duration::ZERO };
        let mut now = self.progress.snapshot();
        while now[..3] == found[..3] && Instant::now() < settled {
            std::thread::sleep(Duration::from_millis(5));
            now = self.progress.snapshot();
        }
        let mut mine = found;
        let ended = now[..3] != found[..3];
        mine[3] = match ended {
            true => found[3].max(self.progress.longest_wait_ms.load(Relaxed)),
            false => found[3] + found_at.elapsed().as_millis() as u64,
        };
        // The lowest rank reports: a lower rank that is reporting, or waiting for less than
        // twice the timeout (it will report at its next poll), is left to; one that has waited
        // longer without reporting has a watchdog that is not working, and this rank reports.
        let lower_will_report = replies[..self.rank]
            .iter()
            .flatten()
            .any(|r| r[4] == 1 || (r[2] == 1 && Duration::from_millis(r[3]) < 2 * self.timeout));
        if lower_will_report {
            return;
        }
        crate::errors::print_line(format_args!(
            "mpi-sgd: error on rank {}: {}",
            self.rank,
            self.describe(mine, ended, &replies)
        ));
        // MPI_THREAD_MULTIPLE: this thread may end the job.
        crate::errors::abort_job(1);
    }

    fn describe(&self, mine: Snapshot, ended: bool, replies: &[Option<Reply>]) -> String {
        let phase = |code: u64| Phase::ALL[code as usize].name();
        let (step, waited_s) = (mine[0], mine[3] as f64 / 1e3);
        let mut missing = Vec::new();
        for (rank, reply) in replies.iter().enumerate().filter(|&(r, _)| r != self.rank) {
            match reply {
                None => missing.push(format!(
                    "rank {rank} (no answer: stopped, or its node is gone)"
                )),
                Some([s, a, waiting, _, _]) if *waiting == 0 || *s < step => {
                    missing.push(format!("rank {rank} (in {} of step {})", phase(*a), s + 1))
                }
                Some(_) => {}
            }
        }
        format!(
            "stalled: waited {waited_s:.1} s in the {} of step {} (--stall-timeout {}); {}; aborting the job",
            phase(mine[1]),
            step + 1,
            self.timeout.as_secs_f64(),
            match (ended, missing.is_empty()) {
                (true, _) => "the wait ended while the ranks were asked (a rank paused, e.g. by SIGSTOP, or preempted)".to_string(),
                (false, true) => "every rank is in a collective (a deadlock or a lost message)".to_string(),
                (false, false) => format!("not arrived: {}", missing.join(", ")),
            }
        )
    }

    /// The sender of a waiting message with `tag`, if there is one.
    fn probe_any(&self, tag: i32) -> Option<i32> {
        let mut flag = 0;
        let mut status = std::mem::MaybeUninit::<ffi::MPI_Status>::uninit();
        // SAFETY: valid communicator and out-pointers; MPI_THREAD_MULTIPLE.
        unsafe {
            ffi::MPI_Iprobe(
                ffi::RSMPI_ANY_SOURCE,
                tag,
                self.comm.0,
                &mut flag,
                status.as_mut_ptr(),
            );
            (flag != 0).then(|| status.assume_init().MPI_SOURCE)
        }
    }

    fn receive(&self, buffer: &mut [u64], from: i32, tag: i32) {
        // SAFETY: a matching message was probed; the buffer holds `len` u64s.
        unsafe {
            ffi::MPI_Recv(
                buffer.as_mut_ptr().cast(),
                buffer.len() as i32,
                ffi::RSMPI_UINT64_T,
                from,
                tag,
                self.comm.0,
                ffi::RSMPI_STATUS_IGNORE,
            );
        }
    }

    fn send(&self, buffer: &[u64], to: impl TryInto<i32>, tag: i32) {
        let to = to.try_into().unwrap_or(0);
        // SAFETY: the buffer holds `len` u64s; small messages go eagerly.
        unsafe {
            ffi::MPI_Send(
                buffer.as_ptr().cast(),
                buffer.len() as i32,
                ffi::RSMPI_UINT64_T,
                to,
                tag,
                self.comm.0,
            );
        }
    }
}
