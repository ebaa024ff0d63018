//! `mpi-sgd algorithms`: the registered allreduce algorithms and their cost formulas; with
//! `--ranks` and `--bytes`, the alpha-beta-gamma coefficients of each for every (P, n) as CSV,
//! the numbers `analysis/commmodel.py` must reproduce. No MPI: it only reads the registry.
//!
//! Not the formulas themselves: each lives in its algorithm's file.

use crate::cli::AlgorithmsArgs;
use crate::comm::ALGORITHMS;
use crate::errors::usage;

pub fn run(args: &AlgorithmsArgs) -> anyhow::Result<()> {
    match (&args.ranks, &args.bytes) {
        (Some(ranks), Some(bytes)) => print_costs(ranks, bytes),
        _ => {
            for algorithm in ALGORITHMS {
                println!("{:<13} {}", algorithm.name, algorithm.summary);
                println!("{:<13} cost: {}", "", algorithm.formula);
            }
            Ok(())
        }
    }
}

/// `algorithm,ranks,bytes,messages,bytes_sent,bytes_added`: the critical path's coefficients
/// of a, b and g (T = messages a + bytes_sent b + bytes_added g).
fn print_costs(ranks: &[usize], bytes: &[usize]) -> anyhow::Result<()> {
    if ranks.contains(&0) {
        return Err(usage("--ranks: every rank count must be at least 1"));
    }
    println!("algorithm,ranks,bytes,messages,bytes_sent,bytes_added");
    for algorithm in ALGORITHMS {
        let Some(cost) = algorithm.cost else {
            continue;
        };
        for &p in ranks {
            for &n in bytes {
                let c = match p {
                    1 => Default::default(),
                    _ => cost(n as f64, p),
                };
                println!(
                    "{},{p},{n},{},{},{}",
                    algorithm.name, c.messages, c.bytes_sent, c.bytes_added
                );
            }
        }
    }
    Ok(())
}
