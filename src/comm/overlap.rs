//! `--overlap`: the gradient allreduce in buckets, each started as soon as the backward pass
//! has finished its layers, while the layers below are still computed (PyTorch DDP's and
//! Horovod's schedule).
//!
//! ```text
//! backward:  layer L | layer L-1 | ... | layer 1 |  wait (exposed)  | update
//! buckets:           [allreduce L ....]
//!                               [allreduce L-1 ...]   ...   [1 ...]
//! ```
//! The caller announces with [`Overlap::ready`] that the gradient from some offset to the end
//! is final; layers gather into a bucket until it holds `bucket_bytes` (0: every layer is a
//! bucket), and the first layer always closes the last bucket. [`Overlap::finish`] waits for
//! every bucket and measures how much of the communication the compute hid.
//!
//! Two engines, by algorithm:
//! - `mpi`: `MPI_Iallreduce` per bucket on a duplicate of the world communicator, progressed
//!   by `MPI_Test` at each later announcement (Open MPI and MPICH progress nonblocking
//!   collectives only inside MPI calls, unless an asynchronous progress thread is configured).
//! - ours (ring, tree, ...): a communication thread runs the algorithm's blocking schedule on
//!   each bucket in turn, on its own duplicate communicator; it needs MPI_THREAD_MULTIPLE and
//!   yields its core while it waits, so it shares the rank's core with the backward pass.
//!
//! Cost: the same bytes as one allreduce of the whole gradient, in one allreduce per bucket
//! (k buckets: k times the latency terms). What it saves is the part of the communication time
//! that runs behind the backward pass; the `overlapped` column measures it as the union of the
//! buckets' flight times up to the end of the backward pass, `exposed` as the wait after it.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::JoinHandle;

use mpi::ffi;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use super::{Algorithm, Allreduce, Traffic};
use crate::real::Real;
use crate::waiting;

/// What one step's allreduce sent and how long it ran behind the compute.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Finished {
    pub traffic: Traffic,
    /// Seconds the buckets were in flight while the backward pass still computed.
    pub overlapped_s: f64,
}

impl Finished {
    /// An allreduce that ran after the compute: nothing of it hidden.
    pub fn after_compute(traffic: Traffic) -> Self {
        Self {
            traffic,
            overlapped_s: 0.0,
        }
    }
}

/// A bucket: elements `start..end` of the gradient, when it was started and when it was seen
/// complete.
#[derive(Debug, Clone, Copy)]
struct Flight {
    start: usize,
    end: usize,
    launched: f64,
    done: Option<f64>,
}

/// The bucketed allreduce of one buffer, step after step. Buffers are handed over by raw
/// pointers for the duration of one step ([`Overlap::begin`] to [`Overlap::finish`]).
pub struct Overlap<F: Real> {
    bucket_elements: usize,
    engine: Engine<F>,
    flights: Vec<Flight>,
    /// The gradient from here to the end is started; `None` between steps.
    started_from: Option<usize>,
    recv: *mut F,
    len: usize,
}

enum Engine<F: Real> {
    Nonblocking {
        comm: SimpleCommunicator,
        requests: Vec<ffi::MPI_Request>,
    },
    Thread {
        jobs: Option<Sender<Job<F>>>,
        done: Receiver<(Traffic, f64)>,
        thread: Option<JoinHandle<()>>,
    },
}

/// One bucket for the communication thread: raw parts of its send and receive slices.
struct Job<F> {
    send: *const F,
    recv: *mut F,
    len: usize,
}

// SAFETY: a job's buffers are disjoint from everything the computing thread touches until
// `finish` has received the job's completion (see `Overlap::begin`).
unsafe impl<F: Send> Send for Job<F> {}

/// A duplicate communicator moved to the communication thread, which alone uses it.
struct ThreadComm(SimpleCommunicator);

// SAFETY: MPI_THREAD_MULTIPLE is required before the thread starts; the handle is used by
// that thread only.
unsafe impl Send for ThreadComm {}

impl<F: Real + Send> Overlap<F> {
    /// For `algorithm` over buffers of `len` elements. Algorithms other than the library's
    /// need `thread_multiple`; the error says what to do without it.
    pub fn new(
        world: &SimpleCommunicator,
        algorithm: &'static Algorithm,
        len: usize,
        bucket_bytes: usize,
        thread_multiple: bool,
    ) -> anyhow::Result<Self> {
        let comm = world.duplicate();
        let engine = if std::ptr::eq(algorithm, super::reference()) {
            Engine::Nonblocking {
                comm,
                requests: Vec::with_capacity(64),
            }
        } else if thread_multiple {
            Engine::thread(ThreadComm(comm), algorithm, len)
        } else {
            anyhow::bail!(
                "--overlap with --allreduce {} runs the allreduce on a communication thread, \
                 which needs MPI_THREAD_MULTIPLE, and this MPI library does not give it; use \
                 --allreduce mpi (MPI_Iallreduce) or leave out --overlap",
                algorithm.name
            );
        };
        Ok(Self {
            bucket_elements: bucket_bytes.div_ceil(std::mem::size_of::<F>()),
            engine,
            flights: Vec::with_capacity(64),
            started_from: None,
            recv: std::ptr::null_mut(),
            len,
        })
    }

    /// Starts a step whose sums go into `recv`.
    ///
    /// # Safety
    /// Until [`Overlap::finish`] returns, `recv` is not touched by anyone else, and each
    /// slice given to [`Overlap::ready`] stays valid and unchanged.
    pub unsafe fn begin(&mut self, recv: &mut [F]) {
        assert_eq!(recv.len(), self.len, "a buffer of the built length");
        self.recv = recv.as_mut_ptr();
        self.started_from = Some(self.len);
        self.flights.clear();
    }

    /// The gradient from `start` to the end is final; `tail` is that part of it. Starts a
    /// bucket when enough has gathered (always at `start` 0), and progresses those started.
    pub fn ready(&mut self, start: usize, tail: &[F]) {
        let end = self.started_from.expect("ready between begin and finish");
        debug_assert_eq!(start + tail.len(), self.len);
        if start == 0 || end - start >= self.bucket_elements.max(1) {
            // SAFETY: `start` < `len`, the length of the buffer `begin` was given.
            let recv = unsafe { self.recv.add(start) };
            self.launch(&tail[..end - start], recv, start);
            self.started_from = Some(start);
        }
        self.progress();
    }

    fn launch(&mut self, send: &[F], recv: *mut F, start: usize) {
        let launched = mpi::time();
        match &mut self.engine {
            Engine::Nonblocking { comm, requests } => {
                // SAFETY: both buffers stay valid until `finish` completes the request.
                let request = unsafe {
                    let mut request = ffi::RSMPI_REQUEST_NULL;
                    ffi::MPI_Iallreduce(
                        send.as_ptr().cast(),
                        recv.cast(),
                        send.len() as i32,
                        F::equivalent_datatype().as_raw(),
                        ffi::RSMPI_SUM,
                        comm.as_raw(),
                        &mut request,
                    );
                    request
                };
                requests.push(request);
            }
            Engine::Thread { jobs, .. } => {
                let job = Job {
                    send: send.as_ptr(),
                    recv,
                    len: send.len(),
                };
                jobs.as_ref()
                    .expect("the thread runs until drop")
                    .send(job)
                    .expect("the communication thread is alive");
            }
        }
        self.flights.push(Flight {
            start,
            end: start + send.len(),
            launched,
            done: None,
        });
    }

    /// Notes the buckets that have completed (the library's progress happens in MPI_Test).
    fn progress(&mut self) {
        let Engine::Nonblocking { requests, .. } = &mut self.engine else {
            return;
        };
        let now = mpi::time();
        for (request, flight) in requests.iter_mut().zip(&mut self.flights) {
            if flight.done.is_none() {
                let mut done = 0;
                // SAFETY: an active or null request of this process.
                unsafe { ffi::MPI_Test(request, &mut done, ffi::RSMPI_STATUS_IGNORE) };
                if done != 0 {
                    flight.done = Some(now);
                }
            }
        }
    }

    /// Waits for every bucket of the step (the exposed communication) and returns what they
    /// sent and how long they ran behind the compute, which ended at `compute_end` (the
    /// `MPI_Wtime` that closed the compute phase, so the hidden time fits inside it even when
    /// this rank is descheduled between the two).
    pub fn finish(&mut self, compute_end: f64) -> Finished {
        assert_eq!(
            self.started_from.take(),
            Some(0),
            "the whole buffer was started"
        );
        let mut traffic = Traffic::default();
        match &mut self.engine {
            Engine::Nonblocking { requests, .. } => {
                for request in requests.iter_mut() {
                    // SAFETY: an active or null request whose buffers outlive this call.
                    unsafe { waiting::complete_raw(request) };
                }
                requests.clear();
                for flight in &self.flights {
                    traffic.bytes +=
                        ((flight.end - flight.start) * std::mem::size_of::<F>()) as u64;
                    traffic.messages += 1;
                }
            }
            Engine::Thread { done, .. } => {
                for flight in &mut self.flights {
                    let (sent, finished) = done.recv().expect("the communication thread is alive");
                    traffic.bytes += sent.bytes;
                    traffic.messages += sent.messages;
                    flight.done = Some(finished);
                }
            }
        }
        Finished {
            traffic,
            overlapped_s: hidden_seconds(&self.flights, compute_end),
        }
    }
}

impl<F: Real + Send> Engine<F> {
    fn thread(comm: ThreadComm, algorithm: &'static Algorithm, len: usize) -> Self {
        let (jobs, inbox) = channel::<Job<F>>();
        let (report, done) = channel();
        let thread = std::thread::Builder::new()
            .name("allreduce".into())
            .spawn(move || {
                let comm = comm;
                waiting::yield_on_this_thread();
                let mut allreduce: Box<dyn Allreduce<F>> = algorithm.build::<F>(len);
                for job in inbox {
                    // SAFETY: see `Job`: the buffers are this thread's until it reports.
                    let (send, recv) = unsafe {
                        (
                            std::slice::from_raw_parts(job.send, job.len),
                            std::slice::from_raw_parts_mut(job.recv, job.len),
                        )
                    };
                    let traffic = allreduce.allreduce_sum(&comm.0, send, recv);
                    if report.send((traffic, mpi::time())).is_err() {
                        return;
                    }
                }
            })
            .expect("a thread can be started");
        Engine::Thread {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
        }
    }
}

impl<F: Real> Drop for Overlap<F> {
    fn drop(&mut self) {
        if let Engine::Thread { jobs, thread, .. } = &mut self.engine {
            // Closing the queue ends the thread's loop; it frees its communicator itself.
            jobs.take();
            if let Some(thread) = thread.take() {
                let _ = thread.join();
            }
        }
    }
}

/// Seconds in which at least one bucket was in flight before `compute_end`: the union of the
/// intervals [launched, min(done, compute_end)], buckets in launch order. A bucket not seen
/// complete counts until `compute_end` (seen by MPI_Test at the next announcement at best, so
/// the nonblocking engine's figure is an upper bound by up to one layer's backward time).
fn hidden_seconds(flights: &[Flight], compute_end: f64) -> f64 {
    let mut covered_until = f64::NEG_INFINITY;
    let mut hidden = 0.0;
    for flight in flights {
        let end = flight.done.unwrap_or(compute_end).min(compute_end);
        let begin = flight.launched.max(covered_until);
        if end > begin {
            hidden += end - begin;
        }
        covered_until = covered_until.max(end);
    }
    hidden
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flight(launched: f64, done: Option<f64>) -> Flight {
        Flight {
            start: 0,
            end: 0,
            launched,
            done,
        }
    }

    #[test]
    fn hidden_time_is_the_union_of_flights_before_the_compute_ends() {
        // [1, 3] and [2, 5] overlap: 1..5 is 4 s; the compute ended at 4.5 -> 3.5 s.
        let flights = [flight(1.0, Some(3.0)), flight(2.0, Some(5.0))];
        assert_eq!(hidden_seconds(&flights, 4.5), 3.5);
        // A gap between two flights is not hidden communication.
        let flights = [flight(0.0, Some(1.0)), flight(2.0, Some(3.0))];
        assert_eq!(hidden_seconds(&flights, 10.0), 2.0);
        // A bucket started at the very end hides nothing.
        assert_eq!(hidden_seconds(&[flight(4.0, None)], 4.0), 0.0);
    }
}
