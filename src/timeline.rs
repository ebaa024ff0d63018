//! `mpi-sgd timeline RUN.h5 --out trace.json`: a run file's timings as a Chrome trace (the
//! JSON trace event format that Perfetto and chrome://tracing open), Horovod-timeline style.
//!
//! One process per host, one thread (track) per rank, and per step one complete event ("X")
//! per phase: `compute`, `allreduce` (`exposed` with `--overlap`, with a nested `overlapped`
//! slice at the end of `compute` for the communication that ran behind it), `update`; after
//! each epoch's last step `evaluation`, and `checkpoint` on rank 0 where one was written.
//! Arguments carry the step (0-based, the run file's row), bytes and messages sent.
//!
//! The run file holds durations, not clock readings: each rank's slices are laid back to
//! back from 0, so a slice's length is exactly the run file's value, and what was not timed
//! (the stop vote, logging, about a microsecond a step) is left out. Ranks therefore drift
//! apart slowly along the trace; compare durations across tracks, not the ends of slices.
//!
//! Size: about 150 bytes per slice, 3 or 4 slices per step and rank: 0.5-0.6 KB per step and
//! rank, about 60 MB for 1000 steps on 100 ranks. `--steps A..B` keeps a window (its times stay
//! those of the whole run, so windows line up).

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde_json::{json, Value};

use crate::cli::TimelineArgs;
use crate::errors::usage;
use crate::h5::{check_destination, move_into_place, refuse_output_over_input, temporary_path_of};
use crate::runfile::times::RunTimes;

pub fn run(args: &TimelineArgs) -> anyhow::Result<()> {
    refuse_output_over_input("--out", &args.out, &[("run", &args.run_file)])?;
    check_destination("--out", &args.out, args.force)?;
    let times = RunTimes::load("run file", &args.run_file)?;
    let window = parse_window(args.steps.as_deref(), times.steps())?;
    let trace = trace(&times, window);
    write(&args.out, args.force, &trace)
}

/// `A..B`, `A..` or none, as a range of steps within `0..steps`.
fn parse_window(text: Option<&str>, steps: usize) -> anyhow::Result<std::ops::Range<usize>> {
    let Some(text) = text else {
        return Ok(0..steps);
    };
    let bad = || {
        usage(format!(
            "--steps {text}: give A..B (steps A to B-1, from 0) or A.., with A < B <= {steps} \
             (the steps of this run)"
        ))
    };
    let (a, b) = text.split_once("..").ok_or_else(bad)?;
    let a: usize = a.trim().parse().map_err(|_| bad())?;
    let b: usize = match b.trim() {
        "" => steps,
        b => b.parse().map_err(|_| bad())?,
    };
    if a >= b || b > steps {
        return Err(bad());
    }
    Ok(a..b)
}

/// The trace's JSON: metadata naming hosts and ranks, then each rank's slices.
fn trace(times: &RunTimes, window: std::ops::Range<usize>) -> Value {
    let hosts = host_indices(&times.hostnames);
    let mut events = Vec::new();
    for (rank, host) in times.hostnames.iter().enumerate() {
        let pid = hosts[rank];
        events.push(json!({"ph": "M", "name": "process_name", "pid": pid,
            "args": {"name": format!("host {host}")}}));
        events.push(
            json!({"ph": "M", "name": "thread_name", "pid": pid, "tid": rank,
            "args": {"name": format!("rank {rank}")}}),
        );
        rank_slices(times, rank, pid, &window, &mut events);
    }
    json!({"displayTimeUnit": "ms", "traceEvents": events})
}

/// Each host's index (in order of first appearance), for every rank.
fn host_indices(hostnames: &[String]) -> Vec<usize> {
    let mut seen: Vec<&str> = Vec::new();
    hostnames
        .iter()
        .map(|h| match seen.iter().position(|s| s == h) {
            Some(i) => i,
            None => {
                seen.push(h);
                seen.len() - 1
            }
        })
        .collect()
}

/// A complete event of `seconds` from `at` (seconds), in microseconds.
fn slice(name: &str, pid: usize, tid: usize, at: f64, seconds: f64, args: Value) -> Value {
    json!({"ph": "X", "cat": "step", "name": name, "pid": pid, "tid": tid,
        "ts": at * 1e6, "dur": seconds * 1e6, "args": args})
}

/// Rank `rank`'s slices of the steps in `window`, laid back to back from the run's start.
fn rank_slices(
    times: &RunTimes,
    rank: usize,
    pid: usize,
    window: &std::ops::Range<usize>,
    events: &mut Vec<Value>,
) {
    let column = |name: &str, step: usize| times.column(name)[[step, rank]];
    let communication = if times.overlap {
        "exposed"
    } else {
        "allreduce"
    };
    let mut at = 0.0;
    for step in 0..window.end {
        let shown = window.contains(&step);
        let args = json!({"step": step, "bytes": times.bytes_sent[[step, rank]],
            "messages": times.messages_sent[[step, rank]]});
        for (name, column_name) in [
            ("compute", "compute"),
            (communication, "allreduce"),
            ("update", "update"),
        ] {
            let seconds = column(column_name, step);
            if shown {
                events.push(slice(name, pid, rank, at, seconds, args.clone()));
                let hidden = column("overlapped", step);
                if name == "compute" && hidden > 0.0 {
                    let from = at + seconds - hidden;
                    events.push(slice("overlapped", pid, rank, from, hidden, args.clone()));
                }
            }
            at += seconds;
        }
        if (step + 1) % times.steps_per_epoch.max(1) == 0 {
            let epoch = (step + 1) / times.steps_per_epoch.max(1) - 1;
            if let Some(&seconds) = times.eval.get([epoch, rank]) {
                if shown {
                    let args = json!({"epoch": epoch, "after_step": step});
                    events.push(slice("evaluation", pid, rank, at, seconds, args));
                }
                at += seconds;
            }
        }
        for &(after, seconds) in &times.checkpoints {
            if after == step as u64 + 1 && seconds.is_finite() && rank == 0 {
                if shown {
                    let args = json!({"after_step": step});
                    events.push(slice("checkpoint", pid, rank, at, seconds, args));
                }
                at += seconds;
            }
        }
    }
}

/// Writes `trace` beside `path` and moves it into place: never a half-written trace.
fn write(path: &Path, replace: bool, trace: &Value) -> anyhow::Result<()> {
    let temporary = temporary_path_of(path, std::process::id());
    let written = std::fs::File::create(&temporary)
        .map_err(anyhow::Error::from)
        .and_then(|file| {
            let mut out = std::io::BufWriter::new(file);
            serde_json::to_writer(&mut out, trace)?;
            out.flush()?;
            Ok(())
        });
    if let Err(error) = written {
        std::fs::remove_file(&temporary).ok();
        return Err(error).with_context(|| format!("writing {}", path.display()));
    }
    move_into_place(&temporary, path, replace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_or_are_refused_with_the_range_named() {
        assert_eq!(parse_window(None, 10).unwrap(), 0..10);
        assert_eq!(parse_window(Some("2..5"), 10).unwrap(), 2..5);
        assert_eq!(parse_window(Some("7.."), 10).unwrap(), 7..10);
        for bad in ["5..2", "3..3", "0..11", "x..2", "4", "-1..3"] {
            let err = parse_window(Some(bad), 10).unwrap_err().to_string();
            assert!(err.contains("B <= 10"), "{bad}: {err}");
        }
    }

    #[test]
    fn hosts_are_numbered_in_order_of_first_rank() {
        let names: Vec<String> = ["b", "a", "b", "c"].map(String::from).to_vec();
        assert_eq!(host_indices(&names), [0, 1, 0, 2]);
    }
}
