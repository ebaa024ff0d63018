//! The SPMD training loop: every rank runs this same function on its own rows.
//!
//! ```text
//! setup:  batch plan -> check the output path -> generate my rows -> init params (same seed)
//! step:   compute (forward+backward on my share of the global batch)
//!         | allreduce(sum) of the flat gradient | update (identical on every rank)
//! epoch:  evaluate on my test rows; one allreduce of the loss/accuracy sums
//! end:    gather every rank's record to rank 0 -> run file -> summary line on stdout
//! ```
//! Nothing but compute and the allreduce happens inside a step: no allocation, no I/O, no
//! logging (except every `--log-every` steps, outside the timed phases).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use crate::comm::{Allreduce, Comm, Traffic};
use crate::config::Config;
use crate::data::partition::BatchPlan;
use crate::data::standardize::Standardizer;
use crate::data::{DataShape, Dataset, Source};
use crate::errors::{usage, ReportedElsewhere};
use crate::info_root;
use crate::model::{self, BatchStats, Model};
use crate::optim::{Sgd, SgdSettings};
use crate::output::{self, EpochMetrics, RunReport, Summary};
use crate::provenance::Provenance;
use crate::real::Real;
use crate::record::{gather_columns, PhaseSeconds, StepRecord};

/// What happened before training: measured in `main`, recorded in the run file.
pub struct Startup {
    pub mpi_init_s: f64,
    pub blas_threads: usize,
}

/// A rank's training and test rows, the data set's sizes, and the seconds it took to load
/// (or generate) the rows.
struct LocalData<F> {
    train: Dataset<F>,
    test: Dataset<F>,
    shape: DataShape,
    /// The statistics the features were scaled with (`--standardize`).
    scaling: Option<Standardizer>,
    seconds: f64,
}

/// Collective: trains the configured model and writes the run file. Errors are returned at
/// points where all ranks agree on them (see [`Comm::agree`]).
pub fn run<F: Real>(config: &Config, comm: &Comm, startup: Startup) -> anyhow::Result<()> {
    let (source, shape) = comm.agree(Source::open(config, comm.size()))?;
    let plan = BatchPlan::new(shape.samples, config.global_batch(comm.size()), comm.size())
        .map_err(|e| usage(e.to_string()));
    let plan = comm.agree(plan)?;
    comm.agree(same_configuration(config, &shape, comm))?;
    let provenance = Provenance::collect(comm, startup.blas_threads);
    let destination = match (&config.out, comm.is_root()) {
        (Some(path), true) => output::check_destination(path, config.force),
        _ => Ok(()),
    };
    comm.agree(destination)?;

    let begin = mpi::time();
    let (mut train, mut test) = comm.agree(source.load::<F>(config, &shape, &plan, comm.rank()))?;
    let scaling = config.standardize.then(|| {
        let scaling = Standardizer::fit(comm, train.x.view(), shape.samples);
        scaling.apply(&mut train.x);
        scaling.apply(&mut test.x);
        scaling
    });
    let data = LocalData {
        train,
        test,
        shape,
        scaling,
        seconds: mpi::time() - begin,
    };
    describe_setup(config, &plan, comm, &provenance, &data);
    let mut trainer = Trainer::new(config, comm, plan, &data);
    let timer_overhead_s = 8.0 * timer_cost();

    comm.barrier();
    let begin = mpi::time();
    for epoch in 0..config.epochs {
        comm.agree(trainer.train_epoch(epoch))?;
    }
    let wall_s = comm.max(&[mpi::time() - begin])[0];

    let last = |values: &[f64]| *values.last().expect("at least one epoch");
    let summary = Summary {
        wall_s,
        samples_per_s: (data.shape.samples * config.epochs) as f64 / wall_s,
        steps: trainer.record.step.len(),
        loss: last(&trainer.epochs.train_loss),
        train_accuracy: last(&trainer.epochs.train_accuracy),
        test_accuracy: last(&trainer.epochs.test_accuracy),
        timer_overhead_s,
        replicas_identical: comm.same_bits_everywhere(&trainer.params),
    };
    if !summary.replicas_identical {
        log::warn!(
            "rank {}: final parameters differ between ranks (the allreduce did not give every rank the same bits)",
            comm.rank()
        );
    }
    let written = write_run_file(&trainer, &provenance, &startup, summary.clone());
    comm.agree(written)?;
    if comm.is_root() {
        println!(
            "{}",
            summary_line(config, comm.size(), &data.shape, &summary)
        );
    }
    Ok(())
}

/// One rank's training state: the model, its flat parameter and gradient buffers, and the
/// measurements, all allocated before the first step.
struct Trainer<'a, F: Real> {
    config: &'a Config,
    comm: &'a Comm,
    plan: BatchPlan,
    data: &'a LocalData<F>,
    model: Box<dyn Model<F>>,
    params: Vec<F>,
    /// This rank's gradient, summed over its rows of the batch.
    grad: Vec<F>,
    /// The allreduce result: the gradient summed over the global batch (with
    /// `--average-every`, the parameters summed over ranks).
    grad_sum: Vec<F>,
    sgd: Sgd<F>,
    allreduce: Box<dyn Allreduce<F>>,
    record: StepRecord,
    /// Seconds of each epoch's evaluation on this rank.
    eval_s: Vec<f64>,
    epochs: EpochMetrics,
}

impl<'a, F: Real> Trainer<'a, F> {
    fn new(config: &'a Config, comm: &'a Comm, plan: BatchPlan, data: &'a LocalData<F>) -> Self {
        let model = model::build::<F>(
            config.model,
            &config.widths(&data.shape),
            plan.max_local_batch(comm.rank()),
        );
        let mut params = vec![F::zero(); model.n_params()];
        model.init_params(&mut params, config.seed);
        let params_len = params.len();
        let steps_per_epoch = plan.steps_per_epoch();
        let sgd = Sgd::new(
            SgdSettings {
                lr: config.lr,
                momentum: config.momentum,
                l2: config.l2,
                warmup_steps: (config.warmup_epochs * steps_per_epoch as f64).round() as usize,
            },
            params.len(),
        );
        Self {
            config,
            comm,
            plan,
            data,
            model,
            grad: vec![F::zero(); params.len()],
            grad_sum: vec![F::zero(); params.len()],
            params,
            sgd,
            allreduce: config.allreduce.build::<F>(params_len),
            record: StepRecord::new(config.epochs * steps_per_epoch),
            eval_s: Vec::with_capacity(config.epochs),
            epochs: EpochMetrics::default(),
        }
    }

    /// The steps of one epoch, then its evaluation; stops at a step that diverged.
    fn train_epoch(&mut self, epoch: usize) -> anyhow::Result<()> {
        let epoch_begin = mpi::time();
        let steps_per_epoch = self.plan.steps_per_epoch();
        let mut seen = BatchStats::default();
        for s in 0..steps_per_epoch {
            let step = epoch * steps_per_epoch + s;
            let stats = match self.config.average_every {
                None => self.gradient_averaging_step(step, s)?,
                Some(every) => self.local_step(step, s, every)?,
            };
            seen += stats;
            if self.config.log_every > 0 && (step + 1) % self.config.log_every == 0 {
                let rows = self.plan.batch_rows(s).len() as f64;
                let loss = self.comm.sum(&[stats.loss_sum])[0] / rows;
                info_root!(self.comm, "step {}: batch loss {loss:.6}", step + 1);
            }
        }
        self.evaluate(epoch, seen, epoch_begin);
        Ok(())
    }

    /// Synchronous SGD: allreduce the gradient, then the same update on every rank.
    fn gradient_averaging_step(&mut self, step: usize, s: usize) -> anyhow::Result<BatchStats> {
        let start = mpi::time();
        let (x, y) = self
            .data
            .train
            .slice(self.plan.local_batch(self.comm.rank(), s));
        let stats = self.model.loss_and_grad(&self.params, x, y, &mut self.grad);
        let computed = mpi::time();
        let traffic =
            self.allreduce
                .allreduce_sum(self.comm.world(), &self.grad, &mut self.grad_sum);
        let reduced = mpi::time();
        self.check_finite(step, "gradient")?;
        let batch_rows = self.plan.batch_rows(s).len();
        self.sgd
            .step(step, &mut self.params, &self.grad_sum, batch_rows);
        let end = mpi::time();
        let seconds = PhaseSeconds {
            compute: computed - start,
            allreduce: reduced - computed,
            update: end - reduced,
        };
        self.record.record(step, seconds, traffic, stats.loss_sum);
        Ok(stats)
    }

    /// Local SGD: each rank updates from its own rows; every `every` steps (and after the last
    /// step, so the replicas end identical) the parameters are averaged across ranks.
    fn local_step(&mut self, step: usize, s: usize, every: usize) -> anyhow::Result<BatchStats> {
        let start = mpi::time();
        let rows = self.plan.local_batch(self.comm.rank(), s);
        let local_rows = rows.len().max(1);
        let (x, y) = self.data.train.slice(rows);
        let stats = self.model.loss_and_grad(&self.params, x, y, &mut self.grad);
        let computed = mpi::time();
        self.sgd
            .step(step, &mut self.params, &self.grad, local_rows);
        let updated = mpi::time();
        let last = step + 1 == self.record.step.len();
        let mut traffic = Traffic::default();
        if last || (every > 0 && (step + 1) % every == 0) {
            traffic =
                self.allreduce
                    .allreduce_sum(self.comm.world(), &self.params, &mut self.grad_sum);
            let share = F::from_f64(1.0 / self.comm.size() as f64);
            for (p, &sum) in self.params.iter_mut().zip(&self.grad_sum) {
                *p = sum * share;
            }
            self.check_finite(step, "parameters")?;
        }
        let end = mpi::time();
        let seconds = PhaseSeconds {
            compute: computed - start,
            allreduce: end - updated,
            update: updated - computed,
        };
        self.record.record(step, seconds, traffic, stats.loss_sum);
        Ok(stats)
    }

    /// Fails if the allreduce result (`grad_sum`: the combined gradient, or the summed
    /// parameters) holds NaN or Inf. Every rank holds the same bits of it, so every rank stops
    /// at the same step without any extra communication.
    fn check_finite(&self, step: usize, combined: &str) -> anyhow::Result<()> {
        if self.grad_sum.iter().all(|v| v.is_finite()) {
            return Ok(());
        }
        let epoch = step / self.plan.steps_per_epoch();
        anyhow::bail!(
            "training diverged at step {} (epoch {}): the combined {combined} holds NaN or Inf; \
             lower --lr (now {:?}) or add --warmup-epochs",
            step + 1,
            epoch + 1,
            self.config.lr
        )
    }

    /// Test-set evaluation and one allreduce of the epoch's loss and accuracy sums.
    fn evaluate(&mut self, epoch: usize, seen: BatchStats, epoch_begin: f64) {
        let eval_begin = mpi::time();
        let test = &self.data.test;
        let tested = self.model.evaluate(&self.params, test.x.view(), &test.y);
        let sums = self.comm.sum(&[
            seen.loss_sum,
            seen.correct,
            seen.rows,
            tested.loss_sum,
            tested.correct,
            tested.rows,
        ]);
        let eval_end = mpi::time();
        self.eval_s.push(eval_end - eval_begin);
        let (seen, tested) = (stats_from(&sums[..3]), stats_from(&sums[3..]));
        self.epochs.train_loss.push(seen.mean_loss());
        self.epochs.train_accuracy.push(seen.accuracy());
        self.epochs.test_loss.push(tested.mean_loss());
        self.epochs.test_accuracy.push(tested.accuracy());
        let seconds = eval_end - epoch_begin;
        info_root!(
            self.comm,
            "epoch {}/{}: loss {:.6}  train_acc {:.4}  test_acc {:.4}  {:.3} s  {:.3e} samples/s",
            epoch + 1,
            self.config.epochs,
            seen.mean_loss(),
            seen.accuracy(),
            tested.accuracy(),
            seconds,
            self.data.shape.samples as f64 / seconds
        );
    }
}

fn describe_setup<F: Real>(
    config: &Config,
    plan: &BatchPlan,
    comm: &Comm,
    provenance: &Provenance,
    data: &LocalData<F>,
) {
    let hosts = provenance.distinct_hosts();
    info_root!(
        comm,
        "{} ranks on {} host(s) ({}); {}; BLAS threads per rank: {}",
        comm.size(),
        hosts.len(),
        hosts.join(","),
        provenance.mpi_library.lines().next().unwrap_or_default(),
        provenance.blas_threads
    );
    info_root!(
        comm,
        "{} on {} x {} rows of {} ({} test), {}; global batch {} ({}..{} rows per rank), {} steps/epoch, {} epochs, allreduce {}",
        config.model.name(),
        data.shape.samples,
        data.shape.features,
        config.data,
        data.shape.test_samples,
        F::NAME,
        config.global_batch(comm.size()),
        plan.max_local_batch(comm.size() - 1),
        plan.max_local_batch(0),
        plan.steps_per_epoch(),
        config.epochs,
        config.allreduce.name()
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

fn stats_from(sums: &[f64]) -> BatchStats {
    BatchStats {
        loss_sum: sums[0],
        correct: sums[1],
        rows: sums[2],
    }
}

/// Collective: a usage error unless every rank runs the same build with the same resolved
/// options (a stale binary on one node, or an MPMD launch with different options, would
/// otherwise train something no one asked for). Rank 0 names the ranks that differ from it.
fn same_configuration(config: &Config, shape: &DataShape, comm: &Comm) -> anyhow::Result<()> {
    let mut hasher = DefaultHasher::new();
    format!("{:?}", config.settings(comm.size(), shape)).hash(&mut hasher);
    (env!("CARGO_PKG_VERSION"), env!("MPI_SGD_GIT_REVISION")).hash(&mut hasher);
    let hash = hasher.finish();
    let everyone = comm.gather(&[hash]);
    if comm.same_everywhere(hash) {
        return Ok(());
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

/// Seconds one `MPI_Wtime` read costs, averaged over many.
fn timer_cost() -> f64 {
    const READS: usize = 10_000;
    let begin = mpi::time();
    let mut last = begin;
    for _ in 0..READS {
        last = std::hint::black_box(mpi::time());
    }
    (last - begin) / READS as f64
}

/// Collective (gathers); rank 0 writes the file when `--out` was given.
fn write_run_file<F: Real>(
    trainer: &Trainer<F>,
    provenance: &Provenance,
    startup: &Startup,
    summary: Summary,
) -> anyhow::Result<()> {
    let Trainer {
        config,
        comm,
        plan,
        data,
        ..
    } = trainer;
    let Some(path) = &config.out else {
        return Ok(());
    };
    let steps = trainer.record.gather(comm);
    let eval_s = gather_columns(comm, &trainer.eval_s);
    let rows = comm.gather(&[data.train.rows() as u64]);
    let test_rows = comm.gather(&[data.test.rows() as u64]);
    let mpi_init_s = comm.gather(&[startup.mpi_init_s]);
    let data_s = comm.gather(&[data.seconds]);
    let (Some(steps), Some(eval_s), Some(rows), Some(test_rows), Some(mpi_init_s), Some(data_s)) =
        (steps, eval_s, rows, test_rows, mpi_init_s, data_s)
    else {
        return Ok(()); // not rank 0
    };
    let steps_per_epoch = plan.steps_per_epoch();
    let loss = steps
        .loss_sum
        .rows()
        .into_iter()
        .enumerate()
        .map(|(t, by_rank)| by_rank.sum() / plan.batch_rows(t % steps_per_epoch).len() as f64)
        .collect();
    let report = RunReport {
        provenance,
        settings: config.settings(comm.size(), &data.shape),
        allreduce_counting: config.allreduce.traffic_counting(),
        rows,
        test_rows,
        mpi_init_s,
        data_s,
        steps,
        eval_s,
        loss,
        epochs: trainer.epochs.clone(),
        params: &trainer.params,
        layout: trainer.model.layout(),
        scaling: data.scaling.as_ref(),
        summary,
    };
    output::write(path, &report)?;
    info_root!(comm, "wrote {}", path.display());
    Ok(())
}

/// The last line on stdout: `key=value` pairs for scripts.
fn summary_line(config: &Config, ranks: usize, shape: &DataShape, s: &Summary) -> String {
    let out = config
        .out
        .as_ref()
        .map_or("-".to_string(), |p| p.display().to_string());
    format!(
        "ranks={ranks} model={} allreduce={} dtype={} samples={} features={} batch={} epochs={} steps={} \
         wall_s={:.6} samples_per_s={:.1} loss={:.6} train_accuracy={:.6} test_accuracy={:.6} out={out}",
        config.model.name(),
        config.allreduce.name(),
        config.dtype.name(),
        shape.samples,
        shape.features,
        config.global_batch(ranks),
        config.epochs,
        s.steps,
        s.wall_s,
        s.samples_per_s,
        s.loss,
        s.train_accuracy,
        s.test_accuracy,
    )
}
