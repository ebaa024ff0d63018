//! Where the ranks run: how many hosts, how many ranks share each host, and how many cores
//! those ranks may use, which together say whether a host is oversubscribed (timings taken
//! there measure the scheduler as much as the algorithm) and how ranks should wait.
//!
//! Cores are the union of the CPU affinity masks of the host's ranks: a launcher that binds
//! each rank to one core still leaves the host its cores, and Slurm's cpusets are honoured.
//! A CPU quota (cgroup `cpu.max`) is not counted.
//!
//! Hosts that are one machine (an emulated cluster: network namespaces that MPI sees as
//! hosts, all on one kernel, known by its boot id) share its cores: the job is oversubscribed
//! too when the machine's ranks outnumber the machine's cores, whatever each host reports.

use mpi::collective::SystemOperation;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use mpi::topology::{Color, SimpleCommunicator};
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
    /// Some host, or some machine of hosts that share a kernel, has more ranks than cores.
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
        let machine = world
            .split_by_color(Color::with_value(machine_color()))
            .expect("every rank has a colour");
        let mut machine_union = [0u64; MASK_WORDS];
        machine.all_reduce_into(
            &union[..],
            &mut machine_union[..],
            SystemOperation::bitwise_or(),
        );
        let machine_over = machine.size() as usize > count(&machine_union).max(1);
        let leader = u64::from(host.rank() == 0);
        let over = u64::from(ranks_on_host > cores_on_host || machine_over);
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

/// A colour shared by the processes of one running kernel: a hash of its boot id (the
/// hostname where there is none), below 2^31 as `MPI_Comm_split` needs.
fn machine_color() -> i32 {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .unwrap_or_default();
    let mut hasher = DefaultHasher::new();
    id.trim().hash(&mut hasher);
    (hasher.finish() & 0x7fff_ffff) as i32
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
