//! mpi-sgd: data-parallel training over MPI (synchronous, local and elastic SGD, federated
//! averaging), built to measure how training scales.
//!
//! `main` is the table of contents: parse and validate options (before MPI starts), start MPI,
//! run the subcommand, and turn its outcome into one message and an exit code
//! (0 success, 1 runtime failure, 2 usage error).
//!
//! Not the place for any subcommand's logic: each lives in its own module.

// Links OpenBLAS, the BLAS behind ndarray's matrix products.
extern crate blas_src;

mod algorithms;
mod bench;
mod blas;
mod cli;
mod clock;
mod comm;
mod convert;
mod data;
mod errors;
mod exact;
mod fault;
mod h5;
mod inference;
mod interrupt;
mod kinds;
mod launcher;
mod logging;
mod memory;
mod model;
mod optim;
mod partition;
mod phase;
mod provenance;
mod real;
mod record;
mod runfile;
mod settings;
mod simd;
mod timeline;
mod train;
mod vmath;
mod waiting;
mod watchdog;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{CommandFactory, FromArgMatches};
use mpi::Threading;

use crate::cli::{Cli, Command};
use crate::comm::placement::Placement;
use crate::comm::Comm;
use crate::errors::{exit_code, print_line, ReportedElsewhere, UsageError};
use crate::kinds::Dtype;
use crate::launcher::{Family, Launch};
use crate::provenance::Startup;
use crate::runfile::saved;
use crate::settings::{BenchSettings, ConvertSettings, ModelInput, PredictSettings, TrainSettings};
use crate::waiting::Waiting;

/// How long the processes of a mismatched launch other than its rank 0 wait before they exit,
/// so that the launcher does not end rank 0 before its message is out.
const MISMATCH_GRACE: Duration = Duration::from_secs(2);

/// What `main` knows before MPI starts: when the process began, and how ranks are to wait.
#[derive(Clone, Copy)]
struct Start {
    at: Instant,
    wait: Waiting,
}

fn main() -> ExitCode {
    let mut start = Start {
        at: Instant::now(),
        wait: Waiting::Auto,
    };
    let cli = match parse_command_line() {
        Ok(cli) => cli,
        Err(error) if error.exit_code() == 0 => {
            // --help, --version
            if Launch::detect().rank.unwrap_or(0) == 0 {
                error.print().ok();
            }
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            let code = error.exit_code() as u8;
            return report_early(start, code, || drop(error.print()));
        }
    };
    start.wait = cli.wait;
    match cli.command {
        Command::Train(args) => match TrainSettings::from_args(*args) {
            Ok(config) => train(start, &config),
            Err(error) => usage_error(start, &error),
        },
        Command::BenchAllreduce(args) => match BenchSettings::from_args(args) {
            Ok(bench) => with_mpi(start, |comm, startup| match bench.dtype {
                Dtype::F64 => bench::run::<f64>(&bench, comm, &startup),
                Dtype::F32 => bench::run::<f32>(&bench, comm, &startup),
            }),
            Err(error) => usage_error(start, &error),
        },
        Command::Convert(args) => {
            // One process, no MPI: a conversion streams one file.
            logging::init(0, start.at);
            let converted = ConvertSettings::from_args(args).and_then(|c| convert::run(&c));
            without_mpi(converted)
        }
        Command::Evaluate(args) => evaluate(start, ModelInput::from_args(args)),
        Command::Predict(args) => match PredictSettings::from_args(args) {
            Ok(settings) => predict(start, settings),
            Err(error) => usage_error(start, &error),
        },
        Command::Timeline(args) => without_mpi(timeline::run(&args)),
        Command::Algorithms(args) => without_mpi(algorithms::run(&args)),
    }
}

fn train(start: Start, config: &TrainSettings) -> ExitCode {
    // The stall watchdog and the overlap thread talk MPI while the training thread does too.
    let threading = match config.needs_thread_multiple() {
        true => Threading::Multiple,
        false => Threading::Single,
    };
    with_mpi_threading(start, threading, |comm, startup| match config.dtype {
        Dtype::F64 => train::run::<f64>(config, comm, startup),
        Dtype::F32 => train::run::<f32>(config, comm, startup),
    })
}

fn evaluate(start: Start, input: ModelInput) -> ExitCode {
    with_mpi(start, |comm, _| {
        match comm.agree(saved::stored_dtype(&input.run_file))? {
            Dtype::F64 => inference::evaluate::<f64>(&input, comm),
            Dtype::F32 => inference::evaluate::<f32>(&input, comm),
        }
    })
}

fn predict(start: Start, settings: PredictSettings) -> ExitCode {
    with_mpi(start, |comm, _| {
        match comm.agree(saved::stored_dtype(&settings.input.run_file))? {
            Dtype::F64 => inference::predict::<f64>(&settings, comm),
            Dtype::F32 => inference::predict::<f32>(&settings, comm),
        }
    })
}

/// The command line as [`Cli`]; `--version` also names the MPI library the binary is built
/// with (which launcher it needs).
fn parse_command_line() -> Result<Cli, clap::Error> {
    let version = format!(
        "{} ({})",
        env!("CARGO_PKG_VERSION"),
        launcher::library_short(&launcher::library())
    );
    let matches = Cli::command()
        .version(&*Box::leak(version.into_boxed_str()))
        .try_get_matches()?;
    Cli::from_arg_matches(&matches)
}

/// A subcommand's options did not validate: one message, exit 2, before any MPI work.
fn usage_error(start: Start, error: &anyhow::Error) -> ExitCode {
    let code = exit_code(error);
    report_early(start, code, || {
        print_line(format_args!("mpi-sgd: error: {error}"))
    })
}

/// The outcome of a subcommand that runs in one process, without MPI.
fn without_mpi(outcome: anyhow::Result<()>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            match error.downcast_ref::<UsageError>() {
                Some(problem) => print_line(format_args!("mpi-sgd: error: {problem}")),
                None => print_line(format_args!("mpi-sgd: error: {error:#}")),
            }
            ExitCode::from(exit_code(&error))
        }
    }
}

/// Starts MPI, logging and the abort-on-panic hook, runs `body` on every rank, and turns its
/// outcome into a message and an exit code.
fn with_mpi(start: Start, body: impl FnOnce(&Comm, Startup) -> anyhow::Result<()>) -> ExitCode {
    with_mpi_threading(start, Threading::Single, body)
}

/// [`with_mpi`] with the MPI thread support `threading` asked for.
fn with_mpi_threading(
    start: Start,
    threading: Threading,
    body: impl FnOnce(&Comm, Startup) -> anyhow::Result<()>,
) -> ExitCode {
    let init_begin = Instant::now();
    let Some((universe, provided)) = mpi::initialize_with_threading(threading) else {
        print_line(format_args!("mpi-sgd: error: MPI could not be initialised"));
        return ExitCode::FAILURE;
    };
    let mpi_init_s = init_begin.elapsed().as_secs_f64();
    let comm = Comm::new(universe.world());
    let launch = Launch::detect();
    if let Some(problem) = launcher::mismatch(&launch, Family::linked(), comm.size()) {
        // Every process is a job of its own: the launcher's rank 0 alone speaks for them. The
        // others cannot wait for it through MPI, and a launcher ends the job when a process
        // exits non-zero: they give rank 0 time to print before they exit.
        match launch.rank.unwrap_or(0) {
            0 => print_line(format_args!("mpi-sgd: error: {problem}")),
            _ => std::thread::sleep(MISMATCH_GRACE),
        }
        return ExitCode::from(2);
    }
    let placement = Placement::measure(comm.world());
    waiting::set(start.wait.resolve(placement.oversubscribed));
    let startup = Startup {
        mpi_init_s,
        blas_threads: blas::configure_threads(),
        thread_multiple: provided == Threading::Multiple,
        launch,
        placement,
    };
    logging::init(comm.rank(), start.at);
    abort_job_on_panic(comm.rank());
    report(body(&comm, startup), &comm)
}

/// Reports an error found before MPI started, which every rank found alike, once. Under a
/// launcher, rank 0 prints it after MPI has started and the ranks leave together: a rank that
/// exited at once could make the launcher kill rank 0 before its message is out.
fn report_early(start: Start, code: u8, print: impl FnOnce()) -> ExitCode {
    if Launch::detect().launcher == launcher::Launcher::None {
        print();
        return ExitCode::from(code);
    }
    with_mpi(start, |comm, _| {
        if comm.is_root() {
            print();
        }
        Err(ReportedElsewhere(code).into())
    })
}

/// Prints a failure once (the ranks agreed on who prints) and picks the exit code.
fn report(outcome: anyhow::Result<()>, comm: &Comm) -> ExitCode {
    let Err(error) = outcome else {
        return ExitCode::SUCCESS;
    };
    if error.is::<UsageError>() {
        print_line(format_args!("mpi-sgd: error: {error}"));
    } else if !error.is::<ReportedElsewhere>() {
        print_line(format_args!(
            "mpi-sgd: error on rank {}: {error:#}",
            comm.rank()
        ));
    }
    // Errors that reach here are agreed: every rank is here. Leave together, after the message
    // is out: a rank that exited first could make the launcher kill the one printing it.
    comm.barrier_within(std::time::Duration::from_secs(10));
    ExitCode::from(exit_code(&error))
}

/// A panic on one rank must not leave the others waiting in a collective: print it on one
/// line and end the whole job with MPI_Abort.
fn abort_job_on_panic(rank: usize) {
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("panic");
        let place = info
            .location()
            .map_or(String::new(), |l| format!(" at {}:{}", l.file(), l.line()));
        print_line(format_args!(
            "mpi-sgd: rank {rank} panicked{place}: {message}"
        ));
        // The hook is set after MPI_Init.
        errors::abort_job(101);
    }));
}
