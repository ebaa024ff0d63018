//! `mpi-sgd timeline`: the trace of a real run parses, has a track per rank, and its slices
//! last exactly what the run file says.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

fn timeline(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mpi-sgd"))
        .arg("timeline")
        .args(args)
        .output()
        .expect("the binary runs")
}

/// The "X" slices named `name` on rank `rank`'s track, in order.
fn slices<'a>(events: &'a [Value], name: &str, rank: u64) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["ph"] == "X" && e["name"] == name && e["tid"] == rank)
        .collect()
}

#[test]
fn the_trace_has_a_track_per_rank_and_the_run_files_durations() {
    let dir = scratch("timeline");
    let run = dir.join("run.h5");
    let trace = dir.join("trace.json");
    let args = [
        "train",
        "--model",
        "mlp",
        "--hidden",
        "16",
        "--samples",
        "600",
        "--batch",
        "100",
        "--features",
        "6",
        "--test-samples",
        "30",
        "--epochs",
        "2",
        "--overlap",
        "--out",
        run.to_str().unwrap(),
    ];
    assert_success(&mpirun(3, &args));
    assert_success(&timeline(&[
        run.to_str().unwrap(),
        "--out",
        trace.to_str().unwrap(),
    ]));
    let json: Value = serde_json::from_slice(&std::fs::read(&trace).unwrap()).expect("JSON");
    let events = json["traceEvents"].as_array().unwrap();
    let compute = read_table(&run, "timings/compute");
    let exposed = read_table(&run, "timings/exposed");
    let hidden = read_table(&run, "timings/overlapped");
    let eval = read_table(&run, "timings/eval");
    for rank in 0..3u64 {
        let named = events
            .iter()
            .any(|e| e["ph"] == "M" && e["name"] == "thread_name" && e["tid"] == rank);
        assert!(named, "rank {rank} has a named track");
        let r = rank as usize;
        for (name, table) in [("compute", &compute), ("exposed", &exposed)] {
            let got = slices(events, name, rank);
            assert_eq!(got.len(), 12, "{name} slices of rank {rank}");
            for (step, slice) in got.iter().enumerate() {
                let us = slice["dur"].as_f64().unwrap();
                assert!(
                    (us - table[[step, r]] * 1e6).abs() < 1e-3,
                    "{name} step {step}"
                );
                assert_eq!(slice["args"]["step"], step as u64);
            }
        }
        for (step, slice) in slices(events, "overlapped", rank).iter().enumerate() {
            let step_index = slice["args"]["step"].as_u64().unwrap() as usize;
            assert!(step_index >= step);
            let us = slice["dur"].as_f64().unwrap();
            assert!((us - hidden[[step_index, r]] * 1e6).abs() < 1e-3);
        }
        let evaluations = slices(events, "evaluation", rank);
        assert_eq!(evaluations.len(), 2);
        assert!((evaluations[1]["dur"].as_f64().unwrap() - eval[[1, r]] * 1e6).abs() < 1e-3);
    }

    // A window keeps its steps only, at the times of the whole trace.
    let window = dir.join("window.json");
    let out = window.to_str().unwrap();
    assert_success(&timeline(&[
        run.to_str().unwrap(),
        "--out",
        out,
        "--steps",
        "3..5",
    ]));
    let json: Value = serde_json::from_slice(&std::fs::read(&window).unwrap()).unwrap();
    let events = json["traceEvents"].as_array().unwrap();
    let steps: Vec<u64> = slices(events, "compute", 0)
        .iter()
        .map(|e| e["args"]["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, [3, 4]);
    let first = slices(events, "compute", 0)[0]["ts"].as_f64().unwrap();
    assert!(first > 0.0, "the window starts where step 3 started");

    // Outputs never replace an input or an existing file.
    let refused = timeline(&[
        run.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--force",
    ]);
    assert_eq!(refused.status.code(), Some(2));
    let refused = timeline(&[run.to_str().unwrap(), "--out", out]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    let refused = timeline(&[
        run.to_str().unwrap(),
        "--out",
        out,
        "--force",
        "--steps",
        "9..99",
    ]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--steps 9..99"));
}
