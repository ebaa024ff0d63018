//! Where the ranks run: how many hosts, how many ranks share each host, and how many cores
//! those ranks may use, which together say whether a host is oversubscribed (timings taken
//! there measure the scheduler as much as the algorithm) and how ranks should wait.
//!
//! Cores are the union of the CPU affinity masks of the host's ranks: a launcher that binds
//! each rank to one core still leaves the host its cores, and Slurm's cpusets are honoured.
//! A CPU quota (cgroup `cpu.max`) is not counted.

use mpi::collective::SystemOperation;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

/// Words of a CPU mask (`CPU_SETSIZE` = 1024 CPUs).
const MASK_WORDS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// Hosts of the job (shared-memory domains).
    pub hosts: usize,
    /// Ranks on this rank's host.
    pub ranks_on_host: usize,
    /// Cores the ranks of this host may use, together.
    pub cores_on_host: usize,
    /// CPUs this rank may run on (1: bound to one core).
    pub cpus_of_rank: usize,
    /// Some host of the job has more ranks than cores.
    pub oversubscribed: bool,
}

impl Placement {
    /// Collective over `world`.
    pub fn measure(world: &SimpleCommunicator) -> Self {
        let host = world.split_shared(world.rank());
        let own = affinity_mask();
        let mut union = [0u64; MASK_WORDS];
        host.all_reduce_into(&own[..], &mut union[..], SystemOperation::bitwise_or());
        let ranks_on_host = host.size() as usize;
        let cores_on_host = count(&union).max(1);
        let leader = u64::from(host.rank() == 0);
        let over = u64::from(ranks_on_host > cores_on_host);
        let mut totals = [0u64; 2];
        world.all_reduce_into(&[leader, over][..], &mut totals[..], SystemOperation::sum());
        Self {
            hosts: totals[0] as usize,
            ranks_on_host,
            cores_on_host,
            cpus_of_rank: count(&own).max(1),
            oversubscribed: totals[1] > 0,
        }
    }
}

fn count(mask: &[u64]) -> usize {
    mask.iter().map(|w| w.count_ones() as usize).sum()
}

/// This process's CPU affinity as bit words (all CPUs the machine reports when it cannot be
/// read).
fn affinity_mask() -> [u64; MASK_WORDS] {
    let mut words = [0u64; MASK_WORDS];
    // SAFETY: `set` is a plain bit array the call fills; CPU_ISSET reads within its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            for cpu in 0..MASK_WORDS * 64 {
                if libc::CPU_ISSET(cpu, &set) {
                    words[cpu / 64] |= 1 << (cpu % 64);
                }
            }
            return words;
        }
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    for cpu in 0..cpus.min(MASK_WORDS * 64) {
        words[cpu / 64] |= 1 << (cpu % 64);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_affinity_mask_counts_the_cpus_this_process_may_use() {
        let mask = affinity_mask();
        let cpus = count(&mask);
        assert!(cpus >= 1);
        // available_parallelism also honours the affinity mask (and CPU quotas, which may
        // only lower it).
        let available = std::thread::available_parallelism().unwrap().get();
        assert!(available <= cpus, "{available} > {cpus}");
    }
}
