//! Where and how a run happened: the facts a reader needs to trust or reproduce its numbers.
//!
//! Not the measurements (`record`): only facts about the environment.

use crate::comm::placement::Placement;
use crate::comm::Comm;
use crate::launcher::{Family, Launch};
use crate::simd::Isa;
use crate::waiting;

/// What happened before the subcommand ran: measured in `main`, recorded in the run file.
pub struct Startup {
    pub mpi_init_s: f64,
    pub blas_threads: usize,
    /// MPI gave MPI_THREAD_MULTIPLE (the stall watchdog needs it).
    pub thread_multiple: bool,
    /// Who started this process.
    pub launch: Launch,
    /// Hosts, ranks and cores.
    pub placement: Placement,
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
    /// `Open MPI`, `MPICH` (the MPICH family) or `other`.
    pub mpi_family: &'static str,
    /// The launcher that started the job, as rank 0 saw it.
    pub launcher: String,
    /// How ranks waited for MPI (`spin` or `yield`, `waiting`).
    pub waiting: &'static str,
    /// This rank's view of the job's hosts, ranks and cores (the job-wide counts alike on
    /// every rank).
    pub placement: Placement,
    /// Per rank, in rank order (rank 0; this rank's alone elsewhere): ranks on its host,
    /// cores those ranks may use, CPUs this rank may run on (1: bound to a core).
    pub ranks_on_host: Vec<u64>,
    pub cores_on_host: Vec<u64>,
    pub cpus_of_rank: Vec<u64>,
    pub blas: String,
    pub blas_threads: usize,
    /// The SIMD path of the model kernels on rank 0 (`simd::Isa`).
    pub simd: &'static str,
    /// The CPU's model name on rank 0, as `/proc/cpuinfo` gives it (`unknown` elsewhere).
    pub cpu_model: String,
    /// Host name of every rank, in rank order (rank 0); this rank's alone elsewhere.
    pub hostnames: Vec<String>,
}

impl Provenance {
    /// Collective (gathers the host names and placements).
    pub fn collect(comm: &Comm, startup: &Startup) -> Self {
        let host = mpi::environment::processor_name().unwrap_or_else(|_| "unknown".into());
        let hostnames = comm.gather_strings(&host).unwrap_or_else(|| vec![host]);
        let (major, minor) = mpi::environment::version();
        let placement = &startup.placement;
        let mine = [
            placement.ranks_on_host as u64,
            placement.cores_on_host as u64,
            placement.cpus_of_rank as u64,
        ];
        let all = comm.gather(&mine).unwrap_or_else(|| mine.to_vec());
        let column = |i: usize| all.iter().skip(i).step_by(3).copied().collect::<Vec<_>>();
        let library = crate::launcher::library();
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
            mpi_family: Family::of_library(&library).name(),
            mpi_library: library,
            mpi_version: format!("{major}.{minor}"),
            launcher: startup.launch.launcher.to_string(),
            waiting: waiting::current().name(),
            placement: *placement,
            ranks_on_host: column(0),
            cores_on_host: column(1),
            cpus_of_rank: column(2),
            blas: crate::blas::description(),
            blas_threads: startup.blas_threads,
            simd: Isa::current().name(),
            cpu_model: cpu_model(),
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

/// The first `model name` of `/proc/cpuinfo` (`unknown` where there is none).
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, name)| name.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}
