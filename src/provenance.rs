//! Where and how a run happened: the facts a reader needs to trust or reproduce its numbers.
//!
//! Not the measurements (`record`): only facts about the environment.

use crate::comm::Comm;
use crate::simd::Isa;

/// What happened before the subcommand ran: measured in `main`, recorded in the run file.
pub struct Startup {
    pub mpi_init_s: f64,
    pub blas_threads: usize,
    /// MPI gave MPI_THREAD_MULTIPLE (the stall watchdog needs it).
    pub thread_multiple: bool,
}

/// Recorded once at start-up; the host list is complete on rank 0 only.
#[derive(Debug, Clone)]
pub struct Provenance {
    pub command_line: String,
    pub started_utc: String,
    pub git_revision: &'static str,
    pub rustc: &'static str,
    pub build_profile: &'static str,
    pub mpi_library: String,
    pub mpi_version: String,
    pub blas: String,
    pub blas_threads: usize,
    /// The SIMD path of the model kernels on rank 0 (`simd::Isa`).
    pub simd: &'static str,
    /// Host name of every rank, in rank order (rank 0); this rank's alone elsewhere.
    pub hostnames: Vec<String>,
}

impl Provenance {
    /// Collective (gathers the host names).
    pub fn collect(comm: &Comm, blas_threads: usize) -> Self {
        let host = mpi::environment::processor_name().unwrap_or_else(|_| "unknown".into());
        let hostnames = comm.gather_strings(&host).unwrap_or_else(|| vec![host]);
        let (major, minor) = mpi::environment::version();
        Self {
            command_line: command_line(),
            started_utc: humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                .to_string(),
            git_revision: env!("MPI_SGD_GIT_REVISION"),
            rustc: env!("MPI_SGD_RUSTC"),
            build_profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            mpi_library: mpi::environment::library_version()
                .unwrap_or_else(|_| "unknown".into())
                .trim()
                .to_string(),
            mpi_version: format!("{major}.{minor}"),
            blas: crate::blas::description(),
            blas_threads,
            simd: Isa::current().name(),
            hostnames,
        }
    }

    /// Distinct host names, in order of first appearance.
    pub fn distinct_hosts(&self) -> Vec<&str> {
        let mut hosts: Vec<&str> = Vec::new();
        for h in &self.hostnames {
            if !hosts.contains(&h.as_str()) {
                hosts.push(h);
            }
        }
        hosts
    }
}

/// This process's command line, quoted so that a shell can run it again (an argument that is
/// not UTF-8, legal in a Linux path, is recorded with U+FFFD in place of its odd bytes).
pub fn command_line() -> String {
    shell_words::join(std::env::args_os().map(|a| a.to_string_lossy().into_owned()))
}
