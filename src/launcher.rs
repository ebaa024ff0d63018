//! Which MPI family this binary is built with, and which launcher started this process: both
//! readable before MPI starts (`MPI_Get_library_version` may be called before `MPI_Init`; the
//! launchers announce themselves in the environment).
//!
//! Why it matters: an MPI library started by the other family's launcher does not fail, it
//! runs every process as a job of one rank. [`mismatch`] turns that into one clear line.

use std::fmt;

/// An MPI implementation family: its launchers, hostfile format and options go together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Open MPI (`mpirun`, `--oversubscribe`, `host slots=N` hostfiles).
    OpenMpi,
    /// MPICH and its derivatives: Cray MPICH, Intel MPI, MVAPICH (Hydra's `mpiexec`,
    /// `host:N` hostfiles).
    Mpich,
    /// Anything else (its launcher is not checked).
    Other,
}

impl Family {
    /// The family of an `MPI_Get_library_version` text.
    pub fn of_library(version: &str) -> Self {
        let v = version.to_ascii_lowercase();
        if v.contains("open mpi") {
            Family::OpenMpi
        } else if ["mpich", "intel(r) mpi", "mvapich", "cray"]
            .iter()
            .any(|name| v.contains(name))
        {
            Family::Mpich
        } else {
            Family::Other
        }
    }

    /// The family this binary is linked with.
    pub fn linked() -> Self {
        Self::of_library(&library())
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::OpenMpi => "Open MPI",
            Family::Mpich => "MPICH",
            Family::Other => "other",
        }
    }

    /// How a user starts this family's jobs, and builds for it, for messages.
    fn how_to_launch(self) -> &'static str {
        match self {
            Family::OpenMpi => "Open MPI's mpirun (mpirun.openmpi on Debian)",
            Family::Mpich => "MPICH's mpiexec (mpiexec.mpich on Debian)",
            Family::Other => "its own MPI's launcher",
        }
    }

    fn make_variable(self) -> &'static str {
        match self {
            Family::Mpich => "make MPI=mpich",
            _ => "make MPI=openmpi",
        }
    }
}

/// `MPI_Get_library_version`, trimmed (the first line names the library and its version).
pub fn library() -> String {
    mpi::environment::library_version()
        .unwrap_or_else(|_| "unknown".into())
        .trim()
        .to_string()
}

/// The library's name and version in a few words (`Open MPI v4.1.4`, `MPICH Version: 4.0.2`):
/// its first line, up to the first comma.
pub fn library_short(version: &str) -> String {
    let first = version.lines().next().unwrap_or_default();
    let head = first.split(',').next().unwrap_or_default();
    head.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The launcher that started this process, from the variables it sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launcher {
    /// Open MPI's `mpirun` (`OMPI_COMM_WORLD_SIZE`).
    OpenMpiRun,
    /// MPICH's Hydra `mpiexec` (`PMI_SIZE` with `HYDI_CONTROL_FD` or `MPI_LOCALNRANKS`).
    Hydra,
    /// Slurm's `srun`, with the PMI plugin it used (`--mpi=`).
    Srun(SrunPmi),
    /// Another launcher that speaks PMI or PMIx (`PMIX_RANK` or `PMI_RANK`).
    OtherPmi,
    /// None: the process was started directly (an MPI singleton).
    None,
}

/// The PMI flavour `srun` offered this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrunPmi {
    Pmix,
    Pmi2,
    /// `--mpi=none`: no PMI, so every task is a singleton.
    Nothing,
}

/// How this process was launched: by whom, as which rank of how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Launch {
    pub launcher: Launcher,
    /// This process's rank as the launcher numbered it.
    pub rank: Option<usize>,
    /// The processes the launcher started together.
    pub ranks: Option<usize>,
}

impl Launch {
    /// From this process's environment.
    pub fn detect() -> Self {
        Self::from_env(|name| std::env::var(name).ok())
    }

    /// From the variables `var` gives (testable without a launcher). Open MPI and Hydra are
    /// looked for before Slurm: a launcher run inside a batch job inherits the job's `SLURM_*`.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Self {
        let number = |name: &str| var(name).and_then(|v| v.trim().parse::<usize>().ok());
        let has = |name: &str| var(name).is_some();
        let (launcher, rank, ranks) = if has("OMPI_COMM_WORLD_SIZE") {
            (
                Launcher::OpenMpiRun,
                number("OMPI_COMM_WORLD_RANK"),
                number("OMPI_COMM_WORLD_SIZE"),
            )
        } else if has("PMI_SIZE") && (has("HYDI_CONTROL_FD") || has("MPI_LOCALNRANKS")) {
            (Launcher::Hydra, number("PMI_RANK"), number("PMI_SIZE"))
        } else if has("SLURM_STEP_ID") && has("SLURM_STEP_NUM_TASKS") {
            let pmi = if has("PMIX_RANK") {
                SrunPmi::Pmix
            } else if has("PMI_FD") || has("PMI_SIZE") {
                SrunPmi::Pmi2
            } else {
                SrunPmi::Nothing
            };
            (
                Launcher::Srun(pmi),
                number("SLURM_PROCID"),
                number("SLURM_STEP_NUM_TASKS"),
            )
        } else if has("PMIX_RANK") || has("PMI_RANK") {
            let rank = number("PMIX_RANK").or_else(|| number("PMI_RANK"));
            (Launcher::OtherPmi, rank, number("PMI_SIZE"))
        } else {
            (Launcher::None, None, None)
        };
        Self {
            launcher,
            rank,
            ranks,
        }
    }

    /// The family whose launcher this is (`None` for srun and no launcher: srun serves both).
    fn family(&self) -> Option<Family> {
        match self.launcher {
            Launcher::OpenMpiRun => Some(Family::OpenMpi),
            Launcher::Hydra => Some(Family::Mpich),
            Launcher::Srun(_) | Launcher::OtherPmi | Launcher::None => None,
        }
    }
}

impl fmt::Display for Launcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Launcher::OpenMpiRun => "mpirun (Open MPI)",
            Launcher::Hydra => "mpiexec (MPICH Hydra)",
            Launcher::Srun(SrunPmi::Pmix) => "srun --mpi=pmix",
            Launcher::Srun(SrunPmi::Pmi2) => "srun --mpi=pmi2",
            Launcher::Srun(SrunPmi::Nothing) => "srun without PMI",
            Launcher::OtherPmi => "a PMI launcher",
            Launcher::None => "none (singleton)",
        })
    }
}

/// Why this process, which MPI sees as a job of `world_size` ranks, was not started as the
/// launcher meant: a launcher of the other family (or an srun PMI plugin this MPI does not
/// speak) started several processes, and each became a job of one rank. `None` when the
/// launch and MPI agree.
pub fn mismatch(launch: &Launch, library: Family, world_size: usize) -> Option<String> {
    let ranks = launch.ranks.filter(|&n| n > 1 && world_size == 1)?;
    let started_by = match launch.family() {
        Some(family) if family != library => format!("{}'s launcher", family.name()),
        Some(_) => return None,
        None => launch.launcher.to_string(),
    };
    let remedy = match (launch.launcher, launch.family()) {
        (Launcher::Srun(_), _) => format!(
            "srun's --mpi plugin must be one {} speaks: see `srun --mpi=list`, try \
             --mpi=pmix or --mpi=pmi2",
            library.name()
        ),
        (_, Some(other)) => format!(
            "launch it with {}, or build it for {} ({})",
            library.how_to_launch(),
            other.name(),
            other.make_variable()
        ),
        _ => format!("launch it with {}", library.how_to_launch()),
    };
    Some(format!(
        "this binary is built with {} but was started by {started_by} as one of {ranks} \
         processes, and MPI made each of them a job of one rank; {remedy}",
        library.name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch_from(pairs: &[(&str, &str)]) -> Launch {
        Launch::from_env(|name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn families_are_read_from_the_library_version() {
        assert_eq!(
            Family::of_library("Open MPI v4.1.4, package: Debian OpenMPI"),
            Family::OpenMpi
        );
        assert_eq!(
            Family::of_library("MPICH Version:\t4.0.2\nMPICH Release date: ..."),
            Family::Mpich
        );
        assert_eq!(
            Family::of_library("Intel(R) MPI Library 2021.10 for Linux* OS"),
            Family::Mpich
        );
        assert_eq!(Family::of_library("MVAPICH2 Version: 2.3.7"), Family::Mpich);
        assert_eq!(Family::of_library("something else"), Family::Other);
    }

    #[test]
    fn the_short_library_name_is_its_first_words() {
        assert_eq!(
            library_short("Open MPI v4.1.4, package: Debian OpenMPI, ident: 4.1.4"),
            "Open MPI v4.1.4"
        );
        assert_eq!(
            library_short("MPICH Version:\t4.0.2\nMPICH Release date: Thu Apr  7"),
            "MPICH Version: 4.0.2"
        );
    }

    #[test]
    fn launchers_are_recognised_from_their_variables() {
        let ompi = launch_from(&[("OMPI_COMM_WORLD_SIZE", "3"), ("OMPI_COMM_WORLD_RANK", "2")]);
        assert_eq!(
            (ompi.launcher, ompi.rank, ompi.ranks),
            (Launcher::OpenMpiRun, Some(2), Some(3))
        );
        let hydra = launch_from(&[
            ("PMI_SIZE", "4"),
            ("PMI_RANK", "1"),
            ("PMI_FD", "6"),
            ("HYDI_CONTROL_FD", "7"),
            // inside a batch job
            ("SLURM_STEP_ID", "4294967291"),
            ("SLURM_STEP_NUM_TASKS", "1"),
        ]);
        assert_eq!(
            (hydra.launcher, hydra.rank, hydra.ranks),
            (Launcher::Hydra, Some(1), Some(4))
        );
        let srun = |extra: &[(&str, &str)]| {
            let mut vars = vec![
                ("SLURM_STEP_ID", "0"),
                ("SLURM_STEP_NUM_TASKS", "2"),
                ("SLURM_PROCID", "1"),
            ];
            vars.extend_from_slice(extra);
            launch_from(&vars)
        };
        assert_eq!(
            srun(&[("PMIX_RANK", "1")]).launcher,
            Launcher::Srun(SrunPmi::Pmix)
        );
        assert_eq!(
            srun(&[("PMI_FD", "5")]).launcher,
            Launcher::Srun(SrunPmi::Pmi2)
        );
        assert_eq!(srun(&[]).launcher, Launcher::Srun(SrunPmi::Nothing));
        assert_eq!(srun(&[]).ranks, Some(2));
        assert_eq!(launch_from(&[]).launcher, Launcher::None);
    }

    #[test]
    fn the_other_familys_launcher_is_named_with_the_remedy() {
        let ompi = launch_from(&[("OMPI_COMM_WORLD_SIZE", "3"), ("OMPI_COMM_WORLD_RANK", "0")]);
        let message = mismatch(&ompi, Family::Mpich, 1).expect("a mismatch");
        assert!(message.contains("built with MPICH"), "{message}");
        assert!(message.contains("Open MPI's launcher"), "{message}");
        assert!(message.contains("one of 3 processes"), "{message}");
        assert!(message.contains("mpiexec.mpich"), "{message}");
        assert!(message.contains("make MPI=openmpi"), "{message}");
        let hydra = launch_from(&[("PMI_SIZE", "2"), ("MPI_LOCALNRANKS", "2")]);
        let message = mismatch(&hydra, Family::OpenMpi, 1).expect("a mismatch");
        assert!(message.contains("make MPI=mpich"), "{message}");
        let srun = launch_from(&[("SLURM_STEP_ID", "0"), ("SLURM_STEP_NUM_TASKS", "4")]);
        let message = mismatch(&srun, Family::OpenMpi, 1).expect("a mismatch");
        assert!(message.contains("srun without PMI"), "{message}");
        assert!(message.contains("--mpi=pmix"), "{message}");
    }

    #[test]
    fn a_matching_launch_is_no_mismatch() {
        let ompi = launch_from(&[("OMPI_COMM_WORLD_SIZE", "3")]);
        assert_eq!(mismatch(&ompi, Family::OpenMpi, 3), None);
        assert_eq!(mismatch(&ompi, Family::OpenMpi, 1), None);
        assert_eq!(mismatch(&ompi, Family::Mpich, 3), None);
        let one = launch_from(&[("OMPI_COMM_WORLD_SIZE", "1")]);
        assert_eq!(mismatch(&one, Family::Mpich, 1), None);
        assert_eq!(mismatch(&launch_from(&[]), Family::Mpich, 1), None);
    }
}
