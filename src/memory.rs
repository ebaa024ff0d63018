//! The memory a rank may allocate, and the check that every size taken from an option or a
//! file's header passes before it is allocated: a size that cannot fit is refused with one
//! line naming where it came from, instead of an out-of-memory kill half a minute later
//! (which takes the machine's memory with it, and with MPI a 60-line signal trace).
//!
//! Not an allocator: an estimate of the large buffers, checked once, before work.

use std::fmt::Display;

use crate::errors::usage;

/// Bytes this process can still allocate, and what limits it: the least of the cgroup's limit
/// (v2 `memory.max`, or v1's, less what the group uses), the machine's available memory
/// (`MemAvailable`), and the address-space limit (`ulimit -v`, less what is mapped).
pub fn available() -> (u64, &'static str) {
    [
        (meminfo_available(), "available physical memory"),
        (cgroup_room(), "the cgroup's memory limit"),
        (address_space_room(), "the address-space limit (ulimit -v)"),
    ]
    .into_iter()
    .filter_map(|(bytes, what)| bytes.map(|b| (b, what)))
    .min()
    .unwrap_or((u64::MAX, "no known limit"))
}

/// Refuses `bytes` (None: more than a u64 holds) when they exceed what [`available`] gives:
/// `what` names the options or file that asked for them, `hint` what to change.
pub fn check(what: impl Display, bytes: Option<u64>, hint: &str) -> anyhow::Result<()> {
    let (room, limit) = available();
    match bytes {
        Some(bytes) if bytes <= room => Ok(()),
        _ => Err(usage(format!(
            "{what}: needs {} on this rank, but {} is available ({limit}); {hint}",
            bytes.map_or("more than 16 EiB".into(), human),
            human(room)
        ))),
    }
}

/// `count` values of `size` bytes, None on overflow.
pub fn bytes_of(count: Option<u64>, size: usize) -> Option<u64> {
    count?.checked_mul(size as u64)
}

/// A byte count for people: `12.3 GiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}

fn meminfo_available() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

fn cgroup_room() -> Option<u64> {
    let read =
        |path: &str| -> Option<u64> { std::fs::read_to_string(path).ok()?.trim().parse().ok() };
    // v2: "max" (no limit) fails to parse, as intended; v1: a huge number means no limit.
    let (limit, used) = match read("/sys/fs/cgroup/memory.max") {
        Some(limit) => (limit, read("/sys/fs/cgroup/memory.current")?),
        None => (
            read("/sys/fs/cgroup/memory/memory.limit_in_bytes")?,
            read("/sys/fs/cgroup/memory/memory.usage_in_bytes")?,
        ),
    };
    Some(limit.saturating_sub(used))
}

fn address_space_room() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))?;
    let soft: u64 = line.split_whitespace().nth(3)?.parse().ok()?; // "unlimited" -> None
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let vm: u64 = status
        .lines()
        .find(|l| l.starts_with("VmSize:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(soft.saturating_sub(vm * 1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_beyond_the_machine_are_refused_naming_their_source() {
        let (room, _) = available();
        assert!(room > 0);
        assert!(check("--samples 1", Some(8), "x").is_ok());
        let refused = check("--samples 1e12", Some(room.saturating_add(1)), "use fewer");
        let message = refused.unwrap_err().to_string();
        assert!(
            message.starts_with("--samples 1e12: needs") && message.ends_with("use fewer"),
            "{message}"
        );
        assert!(check("--hidden", None, "x")
            .unwrap_err()
            .to_string()
            .contains("more than 16 EiB"));
        assert_eq!(bytes_of(Some(u64::MAX / 2), 4), None);
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(512), "512 B");
    }
}
