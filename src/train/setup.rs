//! Before the first step: this rank's rows, the checks every rank must agree on (same build
//! and options, writable destinations), and the lines that describe the run.
//!
//! Not the reading of rows itself (`data`).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use crate::comm::Comm;
use crate::data::standardize::Standardizer;
use crate::data::{DataShape, Dataset, Source};
use crate::errors::{usage, ReportedElsewhere};
use crate::h5;
use crate::info_root;
use crate::kinds::TrainingAlgorithm;
use crate::memory;
use crate::partition::{block, BatchPlan};
use crate::phase::Phase;
use crate::provenance::Provenance;
use crate::real::Real;
use crate::record::{COUNTS, SECONDS};
use crate::settings::TrainSettings;

/// A rank's training and test rows, the data set's sizes, and the seconds it took to load
/// (or generate) the rows.
pub struct LocalData<F> {
    pub train: Dataset<F>,
    pub test: Dataset<F>,
    pub shape: DataShape,
    /// The statistics the features were scaled with (`--standardize`).
    pub scaling: Option<Standardizer>,
    pub seconds: f64,
}

/// Collective: reads or generates this rank's rows and, with `--standardize`, scales them by
/// the statistics of every rank's training rows. Errors are agreed.
pub fn load<F: Real>(
    config: &TrainSettings,
    comm: &Comm,
    source: &Source,
    shape: DataShape,
    plan: &BatchPlan,
) -> anyhow::Result<LocalData<F>> {
    let begin = mpi::time();
    let loaded = config
        .faults
        .check(comm.rank(), Phase::Data, None)
        .and_then(|()| {
            let test_rows = block(shape.test_samples, comm.size(), comm.rank());
            let train_rank = config.data_rank(comm.rank());
            source.load::<F>(&config.data, &shape, plan, train_rank, test_rows)
        });
    let (mut train, mut test) = comm.agree(loaded)?;
    let scaling = config.standardize.then(|| {
        let scaling = Standardizer::fit(comm, train.x.view(), shape.samples);
        scaling.apply(&mut train.x);
        scaling.apply(&mut test.x);
        scaling
    });
    Ok(LocalData {
        train,
        test,
        shape,
        scaling,
        seconds: mpi::time() - begin,
    })
}

/// Before any row is read or generated: this rank's large buffers fit in its memory
/// ([`memory::check`]), each named by the options that size it. The rows with their labels;
/// the parameters with their gradient, momentum and allreduce buffers; the per-step record
/// (rank 0 gathers every rank's).
pub fn check_memory<F: Real>(
    config: &TrainSettings,
    shape: &DataShape,
    plan: &BatchPlan,
    comm: &Comm,
) -> anyhow::Result<()> {
    let ranks = comm.size() as u64;
    let train_rows = config
        .data_rank(comm.rank())
        .map_or(0, |r| plan.local_rows(r));
    let rows = (train_rows as u64).checked_add((shape.test_samples as u64).div_ceil(ranks));
    let row_bytes = (shape.features as u64)
        .checked_mul(std::mem::size_of::<F>() as u64)
        .and_then(|b| b.checked_add(std::mem::size_of::<u32>() as u64));
    memory::check(
        format!(
            "{} training and {} test rows of {} features",
            shape.samples, shape.test_samples, shape.features
        ),
        rows.zip(row_bytes).and_then(|(r, b)| r.checked_mul(b)),
        "use fewer --samples/--test-samples or more ranks",
    )?;
    let widths = config.widths(shape);
    let params = widths.windows(2).try_fold(0u64, |sum, pair| {
        let layer = (pair[0] as u64 + 1).checked_mul(pair[1] as u64)?;
        sum.checked_add(layer)
    });
    // Parameters, gradient, combined, the optimiser's state (one vector, Adam's two); EASGD's
    // centre; fedavg's client model and its SGD state; with --reproducible two limb vectors of
    // three f64 per parameter.
    let elem = std::mem::size_of::<F>() as u64;
    let exact_buffers = u64::from(config.reproducible) * 2 * crate::exact::LIMBS as u64 * 8 / elem;
    let algorithm_buffers = match config.algorithm {
        TrainingAlgorithm::Easgd => 1,
        TrainingAlgorithm::Fedavg => 2,
        _ => 0,
    };
    let param_buffers =
        3 + config.rule().state_per_param() as u64 + algorithm_buffers + exact_buffers;
    memory::check(
        format!("a model of widths {widths:?} (--hidden, --classes, --features)"),
        memory::bytes_of(
            params.and_then(|p| p.checked_mul(param_buffers)),
            std::mem::size_of::<F>(),
        ),
        "use narrower layers",
    )?;
    let steps = (config.epochs as u64).checked_mul(plan.steps_per_epoch() as u64);
    let per_step = (SECONDS.len() + COUNTS.len() + 1) * std::mem::size_of::<f64>();
    let copies = if comm.is_root() { ranks + 1 } else { 1 };
    memory::check(
        format!(
            "--epochs {} of {} steps",
            config.epochs,
            plan.steps_per_epoch()
        ),
        memory::bytes_of(steps.and_then(|s| s.checked_mul(copies)), per_step),
        "use fewer --epochs or a larger --batch",
    )
}

/// Rank 0, before any work: the run file and the checkpoint can be written, and neither
/// overwrites a file without `--force` (the checkpoint being resumed from may be replaced).
pub fn check_destinations(config: &TrainSettings) -> anyhow::Result<()> {
    if let Some(path) = &config.out {
        h5::check_destination("--out", path, config.force)?;
    }
    if let Some(path) = &config.checkpoint {
        let resuming_it = config.resume.as_ref() == Some(path);
        h5::check_destination("--checkpoint", path, config.force || resuming_it)?;
    }
    Ok(())
}

/// Collective: a usage error unless every rank runs the same build with the same resolved
/// options (a stale binary on one node, or an MPMD launch with different options, would
/// otherwise train something no one asked for). Rank 0 names the ranks that differ from it.
pub fn same_configuration(
    config: &TrainSettings,
    shape: &DataShape,
    comm: &Comm,
) -> anyhow::Result<u64> {
    let mut hasher = DefaultHasher::new();
    format!("{:?}", config.attributes(comm.size(), shape)).hash(&mut hasher);
    (env!("CARGO_PKG_VERSION"), env!("MPI_SGD_GIT_REVISION")).hash(&mut hasher);
    let hash = hasher.finish();
    let everyone = comm.gather(&[hash]);
    if comm.same_everywhere(hash) {
        return Ok(hash);
    }
    match everyone {
        Some(hashes) => {
            let odd: Vec<String> = (0..hashes.len())
                .filter(|&r| hashes[r] != hashes[0])
                .map(|r| r.to_string())
                .collect();
            Err(usage(format!(
                "ranks {} were started with other options or another build than rank 0; \
                 start every rank with the same command and binary",
                odd.join(",")
            )))
        }
        None => Err(ReportedElsewhere(2).into()),
    }
}

/// The start-up lines: ranks and hosts, the problem, and each rank's data.
pub fn describe<F: Real>(
    config: &TrainSettings,
    plan: &BatchPlan,
    comm: &Comm,
    provenance: &Provenance,
    data: &LocalData<F>,
) {
    let hosts = provenance.distinct_hosts();
    info_root!(
        comm,
        "{} ranks on {} host(s) ({}); {}; BLAS threads per rank: {}; kernels: {}",
        comm.size(),
        hosts.len(),
        hosts.join(","),
        provenance.mpi_library.lines().next().unwrap_or_default(),
        provenance.blas_threads,
        provenance.simd
    );
    info_root!(
        comm,
        "{} on {} x {} rows of {} ({} test), {}; global batch {} ({}..{} rows per rank), {} steps/epoch, {} epochs, allreduce {}",
        config.model.name(),
        data.shape.samples,
        data.shape.features,
        config.data.source,
        data.shape.test_samples,
        F::NAME,
        config.global_batch(comm.size()),
        plan.max_local_batch(plan.ranks() - 1),
        plan.max_local_batch(0),
        plan.steps_per_epoch(),
        config.epochs,
        config.allreduce.name
    );
    let mib = (data.train.bytes() + data.test.bytes()) as f64 / (1 << 20) as f64;
    let line = format!(
        "rank {}: {} training rows, {} test rows, {mib:.1} MiB of data, loaded in {:.3} s",
        comm.rank(),
        data.train.rows(),
        data.test.rows(),
        data.seconds
    );
    if comm.is_root() {
        log::info!("{line}");
    } else {
        log::debug!("{line}");
    }
}

/// Seconds one `MPI_Wtime` read costs, averaged over many.
pub fn timer_cost() -> f64 {
    const READS: usize = 10_000;
    let begin = mpi::time();
    let mut last = begin;
    for _ in 0..READS {
        last = std::hint::black_box(mpi::time());
    }
    (last - begin) / READS as f64
}
