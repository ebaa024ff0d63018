//! Stopping at the same step on every rank: SIGTERM or SIGINT on any rank (Slurm's time limit,
//! scancel, Ctrl-C) and rank 0's `--checkpoint-seconds` clock become bits of one integer, OR-ed
//! across ranks with a nonblocking allreduce that is started at one vote and completed at the
//! next (the trainer votes every few steps). It overlaps the steps between, so it adds no
//! latency to the loop, only two MPI calls and 4 bytes per vote; every rank sees the same bits
//! after the same step, so they stop, or checkpoint, together. A second signal ends the process
//! at once.
//!
//! `convert` and `predict`, which have no steps to vote between, check [`Signals::check`] at
//! every row or block instead and stop there.
//!
//! Not the checkpoint writing (`runfile::checkpoint`), only when to stop.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use mpi::ffi;
use signal_hook::consts::{SIGINT, SIGTERM};

/// Vote bits.
pub const SIGINT_BIT: i32 = 1;
pub const SIGTERM_BIT: i32 = 2;
pub const CHECKPOINT_BIT: i32 = 4;

/// The signal a vote's bits call for, SIGTERM first: (number, name).
pub fn signal_of(bits: i32) -> Option<(i32, &'static str)> {
    if bits & SIGTERM_BIT != 0 {
        Some((SIGTERM, "SIGTERM"))
    } else if bits & SIGINT_BIT != 0 {
        Some((SIGINT, "SIGINT"))
    } else {
        None
    }
}

/// The signals received so far, as vote bits.
#[derive(Clone)]
pub struct Signals {
    bits: Arc<AtomicUsize>,
}

impl Signals {
    /// Catches SIGTERM and SIGINT from now on; a second one of either ends the process with
    /// the usual 128 + signal.
    pub fn catch() -> std::io::Result<Self> {
        let bits = Arc::new(AtomicUsize::new(0));
        let caught = Arc::new(AtomicBool::new(false));
        for (signal, bit) in [(SIGINT, SIGINT_BIT), (SIGTERM, SIGTERM_BIT)] {
            // Order matters: the exit is armed by the first signal, taken on the second.
            signal_hook::flag::register_conditional_shutdown(
                signal,
                128 + signal,
                Arc::clone(&caught),
            )?;
            signal_hook::flag::register(signal, Arc::clone(&caught))?;
            register_bit(signal, bit, &bits)?;
        }
        Ok(Self { bits })
    }

    pub fn bits(&self) -> i32 {
        self.bits.load(Relaxed) as i32
    }

    /// For the commands that stop at the next row or block (`convert`, `predict`): an error
    /// once SIGTERM or SIGINT arrived, which removes their temporary files on its way out.
    pub fn check(&self) -> Result<(), Interrupted> {
        match signal_of(self.bits()) {
            Some((signal, name)) => Err(Interrupted { signal, name }),
            None => Ok(()),
        }
    }
}

/// SIGTERM or SIGINT arrived while a command that does not vote was working.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by {name}")]
pub struct Interrupted {
    pub signal: i32,
    pub name: &'static str,
}

impl Interrupted {
    /// The interruption somewhere in `error`'s chain.
    pub fn in_chain(error: &anyhow::Error) -> Option<&Interrupted> {
        error.chain().find_map(|cause| cause.downcast_ref())
    }

    /// The usual exit code of a process ended by the signal.
    pub fn exit_code(&self) -> u8 {
        (128 + self.signal) as u8
    }
}

/// Sets `bit` in `bits` when `signal` arrives (signal-hook's handlers only store values).
fn register_bit(signal: i32, bit: i32, bits: &Arc<AtomicUsize>) -> std::io::Result<()> {
    let bits = Arc::clone(bits);
    // SAFETY: the action is async-signal-safe: one atomic read-modify-write.
    unsafe {
        signal_hook::low_level::register(signal, move || {
            bits.fetch_or(bit as usize, Relaxed);
        })?;
    }
    Ok(())
}

/// The overlapped OR-allreduce of the vote bits. Buffers are boxed so their addresses stay put
/// while MPI owns them.
pub struct Vote {
    send: Box<i32>,
    recv: Box<i32>,
    request: ffi::MPI_Request,
    pending: bool,
}

impl Vote {
    pub fn new() -> Self {
        Self {
            send: Box::new(0),
            recv: Box::new(0),
            // SAFETY: reading an MPI constant.
            request: unsafe { ffi::RSMPI_REQUEST_NULL },
            pending: false,
        }
    }

    /// Collective: the bits of the round started at the previous call (0 on the first call),
    /// OR-ed over all ranks; starts the next round with `local`.
    pub fn exchange(&mut self, local: i32) -> i32 {
        let combined = self.finish();
        *self.send = local;
        // SAFETY: the buffers live in boxes owned by self until `finish` completes the request.
        unsafe {
            ffi::MPI_Iallreduce(
                (&*self.send as *const i32).cast(),
                (&mut *self.recv as *mut i32).cast(),
                1,
                ffi::RSMPI_INT32_T,
                ffi::RSMPI_BOR,
                ffi::RSMPI_COMM_WORLD,
                &mut self.request,
            );
        }
        self.pending = true;
        combined
    }

    /// Collective: completes the round in flight, if any, and returns its bits.
    pub fn finish(&mut self) -> i32 {
        if !std::mem::take(&mut self.pending) {
            return 0;
        }
        // SAFETY: `request` was started by `exchange` and not yet completed.
        unsafe { crate::waiting::complete_raw(&mut self.request) };
        *self.recv
    }
}

impl Drop for Vote {
    /// Every rank leaves the loop at the same step (agreed errors included), so completing the
    /// round in flight here matches on all ranks and no request outlives MPI.
    fn drop(&mut self) {
        self.finish();
    }
}
