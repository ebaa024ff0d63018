//! `mpi-sgd bench-allreduce`: an OSU-style sweep of the allreduce algorithms over message
//! sizes, checking every result in the same run (nccl-tests' habit).
//!
//! For each algorithm and size: warm-up calls, a barrier, then timed calls, each timed alone
//! with two `MPI_Wtime` reads on every rank. The table shows, per size and algorithm, each
//! rank's median latency summarised as min / median / max across ranks, the algorithm
//! bandwidth `algbw = bytes / median latency` and the bus bandwidth `busbw = algbw 2(P-1)/P`
//! (nccl-tests' definition, comparable across P). The check column says whether the result
//! equals MPI_Allreduce's (bitwise on integer-valued data, to rounding on random data), is
//! bit-identical on every rank, and whether the bytes and messages sent equal the algorithm's
//! cost formula. Every per-iteration latency goes to the HDF5 file.
//!
//! Not a training benchmark (that is `make bench`), and not the algorithms (`comm`).

use ndarray::Array3;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::comm::{self, Algorithm, Comm};
use crate::errors::ReportedElsewhere;
use crate::h5;
use crate::info_root;
use crate::memory;
use crate::provenance::{Provenance, Startup};
use crate::real::Real;
use crate::record::gather_columns;
use crate::runfile::{self, AlgorithmSweep, BenchReport};
use crate::settings::bench::{BenchSettings, SizePlan};

/// Collective: runs the sweep, prints the table on rank 0, writes the file. Fails (exit 1)
/// after reporting if any check failed.
pub fn run<F: Real>(bench: &BenchSettings, comm: &Comm, startup: &Startup) -> anyhow::Result<()> {
    let destination = match (&bench.out, comm.is_root()) {
        (Some(path), true) => h5::check_destination("--out", path, bench.force),
        _ => Ok(()),
    };
    comm.agree(destination)?;
    // The send, result and reference buffers of the largest size, and an algorithm's scratch.
    const BUFFERS: u64 = 4;
    let largest = bench
        .sizes
        .iter()
        .map(|s| s.bytes as u64)
        .max()
        .unwrap_or(0);
    comm.agree(memory::check(
        format!("--sizes up to {}", memory::human(largest)),
        largest.checked_mul(BUFFERS),
        "use smaller --sizes",
    ))?;
    let provenance = Provenance::collect(comm, startup);
    info_root!(
        comm,
        "bench-allreduce: {} ranks, {}, {} sizes",
        comm.size(),
        F::NAME,
        bench.sizes.len()
    );
    print_header::<F>(comm);
    let mut sweeps = Vec::new();
    let mut all_ok = true;
    for &algorithm in &bench.algorithms {
        let mut sweep = Sweep::default();
        for size in &bench.sizes {
            let n = size.bytes / std::mem::size_of::<F>();
            let measured = measure::<F>(algorithm, n, size, comm);
            let ok = check::<F>(algorithm, n, comm);
            all_ok &= ok;
            print_row(comm, algorithm, size.bytes, &measured.latency, ok);
            sweep.push(measured, ok);
        }
        if let Some(gathered) = sweep.gather(comm, bench.sizes.len()) {
            sweeps.push((algorithm.name, gathered));
        }
    }
    let written = match &bench.out {
        Some(path) if comm.is_root() => runfile::bench::write(
            path,
            bench.force,
            &BenchReport {
                provenance: &provenance,
                dtype: F::NAME,
                sizes_bytes: bench.sizes.iter().map(|s| s.bytes as u64).collect(),
                algorithms: sweeps,
            },
        ),
        _ => Ok(()),
    };
    comm.agree(written)?;
    match (all_ok, comm.is_root()) {
        (true, _) => Ok(()),
        (false, true) => Err(anyhow::anyhow!("some results were wrong (check column)")),
        (false, false) => Err(ReportedElsewhere(1).into()),
    }
}

fn print_header<F: Real>(comm: &Comm) {
    if comm.is_root() {
        println!("# ranks={} dtype={}  latency: each rank's median over the timed calls; min/median/max across ranks", comm.size(), F::NAME);
        println!(
            "{:>10} {:>13} {:>7} {:>11} {:>11} {:>11} {:>11} {:>11}  check",
            "bytes",
            "algorithm",
            "iters",
            "min_us",
            "median_us",
            "max_us",
            "algbw_GBps",
            "busbw_GBps"
        );
    }
}

/// One size of one algorithm on this rank.
struct Measured {
    latency: Vec<f64>,
    bytes_sent: u64,
    messages_sent: u64,
}

fn measure<F: Real>(algorithm: &Algorithm, n: usize, size: &SizePlan, comm: &Comm) -> Measured {
    let mut algorithm = algorithm.build::<F>(n);
    let send: Vec<F> = (0..n)
        .map(|i| F::from_f64(((comm.rank() + i) % 17) as f64))
        .collect();
    let mut recv = vec![F::zero(); n];
    for _ in 0..size.warmup {
        algorithm.allreduce_sum(comm.world(), &send, &mut recv);
    }
    let mut latency = vec![0.0; size.iterations];
    let mut traffic = Default::default();
    comm.barrier();
    for t in &mut latency {
        let begin = mpi::time();
        traffic = algorithm.allreduce_sum(comm.world(), &send, &mut recv);
        *t = mpi::time() - begin;
    }
    Measured {
        latency,
        bytes_sent: traffic.bytes,
        messages_sent: traffic.messages,
    }
}

/// Collective: does `kind` sum correctly, identically on every rank, with the traffic its
/// formula predicts? The verdict is the same on every rank.
fn check<F: Real>(kind: &Algorithm, n: usize, comm: &Comm) -> bool {
    let (rank, p) = (comm.rank(), comm.size());
    let mut algorithm = kind.build::<F>(n);
    let mut reference = comm::reference().build::<F>(n);
    let mut ours = vec![F::zero(); n];
    let mut library = vec![F::zero(); n];
    // Small integers: every summation order gives the exact sum.
    let integers: Vec<F> = (0..n)
        .map(|i| F::from_f64(((rank * 7 + i * 3) % 11) as f64))
        .collect();
    let traffic = algorithm.allreduce_sum(comm.world(), &integers, &mut ours);
    reference.allreduce_sum(comm.world(), &integers, &mut library);
    let exact = ours == library;
    let traffic_ok = kind
        .traffic(n, p, rank, std::mem::size_of::<F>())
        .is_none_or(|t| t == traffic);
    // Random values: orders may differ by rounding, bounded by P eps sum|x| per element.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64((rank as u64) << 32 | n as u64);
    let random: Vec<F> = (0..n)
        .map(|_| F::from_f64(rng.random_range(-1.0..1.0)))
        .collect();
    algorithm.allreduce_sum(comm.world(), &random, &mut ours);
    reference.allreduce_sum(comm.world(), &random, &mut library);
    let magnitudes: Vec<F> = random.iter().map(|v| v.abs()).collect();
    let mut bound = vec![F::zero(); n];
    reference.allreduce_sum(comm.world(), &magnitudes, &mut bound);
    let eps = F::epsilon().into_f64() * 2.0 * p as f64;
    let close = ours
        .iter()
        .zip(&library)
        .zip(&bound)
        .all(|((a, b), m)| (a.into_f64() - b.into_f64()).abs() <= eps * m.into_f64());
    let identical = comm.same_bits_everywhere(&ours);
    let local_ok = u8::from(exact && close && traffic_ok && identical);
    comm.min(&[local_ok])[0] == 1
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        len => sorted[len / 2],
    }
}

fn print_row(comm: &Comm, algorithm: &Algorithm, bytes: usize, latency: &[f64], ok: bool) {
    let mine = median(latency);
    let (low, high) = (comm.min(&[mine])[0], comm.max(&[mine])[0]);
    let across = comm.gather(&[mine]).map(|all| median(&all));
    if let Some(mid) = across {
        let p = comm.size() as f64;
        let algbw = bytes as f64 / mid / 1e9;
        let busbw = algbw * 2.0 * (p - 1.0) / p;
        println!(
            "{bytes:>10} {:>13} {:>7} {:>11.2} {:>11.2} {:>11.2} {algbw:>11.3} {busbw:>11.3}  {}",
            algorithm.name,
            latency.len(),
            low * 1e6,
            mid * 1e6,
            high * 1e6,
            if ok { "ok" } else { "WRONG" }
        );
    }
}

/// One algorithm's measurements over the sizes, on this rank.
#[derive(Default)]
struct Sweep {
    latency: Vec<Vec<f64>>,
    bytes_sent: Vec<u64>,
    messages_sent: Vec<u64>,
    ok: Vec<u8>,
}

impl Sweep {
    fn push(&mut self, m: Measured, ok: bool) {
        self.latency.push(m.latency);
        self.bytes_sent.push(m.bytes_sent);
        self.messages_sent.push(m.messages_sent);
        self.ok.push(u8::from(ok));
    }

    /// Collective: [sizes, iterations, ranks] latencies (NaN past a size's iterations) and
    /// [sizes, ranks] traffic on rank 0.
    fn gather(&self, comm: &Comm, sizes: usize) -> Option<AlgorithmSweep> {
        let most = self.latency.iter().map(Vec::len).max().unwrap_or(0);
        let mut padded = vec![f64::NAN; sizes * most];
        for (row, lat) in padded.chunks_mut(most.max(1)).zip(&self.latency) {
            row[..lat.len()].copy_from_slice(lat);
        }
        let latency = gather_columns(comm, &padded);
        let bytes_sent = gather_columns(comm, &self.bytes_sent);
        let messages_sent = gather_columns(comm, &self.messages_sent);
        let latency = latency?;
        let p = comm.size();
        Some(AlgorithmSweep {
            latency_s: Array3::from_shape_vec(
                (sizes, most, p),
                latency.into_raw_vec_and_offset().0,
            )
            .expect("gathered sizes x iterations x ranks"),
            iterations: self.latency.iter().map(|l| l.len() as u64).collect(),
            bytes_sent: bytes_sent?,
            messages_sent: messages_sent?,
            check_ok: self.ok.clone(),
        })
    }
}
