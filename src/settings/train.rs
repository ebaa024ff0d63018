//! `train`'s options -> validated [`TrainSettings`], before any MPI work.
//!
//! Two stages, as in ripgrep: [`TrainArgs`] is what the user typed (clap), [`TrainSettings`]
//! the settings with defaults resolved and every value checked. Checks that need the number of
//! ranks (batch >= ranks) happen after MPI starts, in [`crate::partition::BatchPlan`]; checks
//! that need the data file, when it is opened ([`crate::data::Source::open`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{shown, Setting};
use crate::cli::TrainArgs;
use crate::comm::Algorithm;
use crate::data::spec::{DataSource, DataSpec};
use crate::data::DataShape;
use crate::errors::usage;
use crate::fault::Faults;
use crate::h5;
use crate::kinds::{Dtype, LrDecay, ModelKind, OptimizerKind, TrainingAlgorithm};
use crate::optim::schedule::LrSchedule;
use crate::optim::Rule;

/// Federated averaging's clients and rounds (`--algorithm fedavg`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FederatedSettings {
    pub clients: usize,
    pub per_round: usize,
    pub local_epochs: usize,
    /// Dirichlet concentration of the label skew; `None`: IID clients.
    pub non_iid: Option<f64>,
}

/// Validated settings of a training run. The data's sizes are final only once the data source
/// has been opened ([`crate::data::DataShape`]); here they are what the user asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSettings {
    pub model: ModelKind,
    /// Hidden widths (empty unless `model` is mlp).
    pub hidden: Vec<usize>,
    pub data: DataSpec,
    pub standardize: bool,
    pub epochs: usize,
    /// The global batch, unless `batch_per_rank` is set.
    pub batch: usize,
    pub batch_per_rank: Option<usize>,
    pub lr: f64,
    pub optimizer: OptimizerKind,
    pub momentum: f64,
    pub l2: f64,
    /// Adam(W)'s moment decays and epsilon (resolved defaults also for SGD, which ignores them).
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// AdamW's decoupled weight decay (0 for the others).
    pub weight_decay: f64,
    pub warmup_epochs: f64,
    pub lr_schedule: LrDecay,
    /// `step`: epochs between decays, and the factor of each (resolved for every schedule).
    pub lr_step_epochs: usize,
    pub lr_gamma: f64,
    pub allreduce: &'static Algorithm,
    pub algorithm: TrainingAlgorithm,
    /// Sync: `None`, gradient averaging every step; `Some(k)`, parameter averaging every k
    /// steps (0: at the end only). EASGD: the steps between elastic updates.
    pub average_every: Option<usize>,
    /// EASGD's moving rate; `None`: [`EASGD_BETA`] / ranks.
    pub elastic_alpha: Option<f64>,
    /// Fedavg's clients and rounds (resolved defaults for every algorithm).
    pub federated: FederatedSettings,
    /// Async-ps: the ranks that hold the parameters (0 for the other algorithms).
    pub servers: usize,
    /// `Some(bytes)`: the gradient is allreduced in buckets of at least `bytes` (0: one per
    /// layer) during the backward pass.
    pub overlap: Option<usize>,
    pub reproducible: bool,
    /// `--block-rows`; `None`: the batch in [`REPRODUCIBLE_BLOCKS`] blocks.
    pub block_rows: Option<usize>,
    pub dtype: Dtype,
    pub seed: u64,
    pub out: Option<PathBuf>,
    pub force: bool,
    pub log_every: usize,
    /// Where checkpoints go (`None`: no --out and no --checkpoint).
    pub checkpoint: Option<PathBuf>,
    pub checkpoint_every: Option<usize>,
    pub checkpoint_seconds: Option<f64>,
    pub resume: Option<PathBuf>,
    /// `None`: the watchdog is off.
    pub stall_timeout: Option<Duration>,
    pub faults: Faults,
}

const DEFAULT_HIDDEN: [usize; 2] = [128, 64];
const DEFAULT_SAMPLES: usize = 1_000_000;
const DEFAULT_FEATURES: usize = 20;
const DEFAULT_TEST_SAMPLES: usize = 10_000;
/// The longest time an option may give (about 31 years): beyond any job, and well inside what
/// a `Duration` and the timers hold (1e20 s would not be).
const MAX_SECONDS: f64 = 1e9;
const DEFAULT_CLASSES: usize = 10;
/// Fedavg's clients and clients per round when not given (McMahan et al.'s 100 and C = 0.1).
const DEFAULT_CLIENTS: usize = 100;
const DEFAULT_CLIENTS_PER_ROUND: usize = 10;
/// EASGD's centre moves this far toward the local models' mean at each elastic update when
/// `--elastic-alpha` is not given (the setting beta = 0.9 of Zhang, Choromanska and LeCun).
pub const EASGD_BETA: f64 = 0.9;
/// AdamW's weight decay when none is given (PyTorch's default).
const DEFAULT_WEIGHT_DECAY: f64 = 0.01;
/// With `--reproducible` and no `--block-rows`, a batch is cut into at most this many blocks:
/// enough for 64 busy ranks, few enough that each block's gradient is a GEMM of many rows.
pub const REPRODUCIBLE_BLOCKS: usize = 64;

/// Fedavg's options with fedavg only, and what fedavg does not combine with.
fn check_federated(args: &TrainArgs) -> anyhow::Result<()> {
    let fedavg = args.algorithm == TrainingAlgorithm::Fedavg;
    let given = [
        ("--clients", args.clients.is_some()),
        ("--clients-per-round", args.clients_per_round.is_some()),
        ("--local-epochs", args.local_epochs.is_some()),
        ("--non-iid", args.non_iid.is_some()),
    ];
    if !fedavg {
        return refuse_given(&given, "applies to --algorithm fedavg");
    }
    let refused = [
        ("--average-every", args.average_every.is_some()),
        ("--overlap", args.overlap),
        ("--reproducible", args.reproducible),
        (
            "--optimizer adam/adamw",
            args.optimizer != OptimizerKind::Sgd,
        ),
    ];
    refuse_given(
        &refused,
        "does not apply to --algorithm fedavg: its clients run SGD for --local-epochs over their own rows and a round ends with one weighted average",
    )?;
    for (name, value) in [
        ("--clients", args.clients),
        ("--clients-per-round", args.clients_per_round),
        ("--local-epochs", args.local_epochs),
    ] {
        if value == Some(0) {
            return Err(usage(format!("{name} must be at least 1")));
        }
    }
    let clients = args.clients.unwrap_or(DEFAULT_CLIENTS);
    let per_round = args.clients_per_round.unwrap_or(DEFAULT_CLIENTS_PER_ROUND);
    if per_round > clients {
        return Err(usage(format!(
            "--clients-per-round {per_round} is more than the --clients {clients}"
        )));
    }
    if let Some(a) = args.non_iid.filter(|a| !(a.is_finite() && *a > 0.0)) {
        return Err(usage(format!(
            "--non-iid {a}: the Dirichlet concentration must be a positive number (0.1: strong skew, 100: nearly IID)"
        )));
    }
    Ok(())
}

/// `--servers` with async-ps only, and what async-ps does not combine with.
fn check_parameter_server(args: &TrainArgs) -> anyhow::Result<()> {
    let async_ps = args.algorithm == TrainingAlgorithm::AsyncPs;
    if !async_ps {
        return refuse_given(
            &[("--servers", args.servers.is_some())],
            "applies to --algorithm async-ps",
        );
    }
    if args.servers == Some(0) {
        return Err(usage("--servers must be at least 1"));
    }
    let refused = [
        ("--average-every", args.average_every.is_some()),
        ("--overlap", args.overlap),
        ("--reproducible", args.reproducible),
        ("--checkpoint-every", args.checkpoint_every.is_some()),
        ("--checkpoint-seconds", args.checkpoint_seconds.is_some()),
        ("--resume", args.resume.is_some()),
    ];
    refuse_given(
        &refused,
        "does not apply to --algorithm async-ps: its workers never wait for each other, so there is no step at which every rank holds the same state",
    )
}

/// The first option of `options` (name, whether given) that was given, refused with `why`
/// after its name.
fn refuse_given(options: &[(&str, bool)], why: &str) -> anyhow::Result<()> {
    match options.iter().find(|(_, given)| *given) {
        Some((name, _)) => Err(usage(format!("{name} {why}"))),
        None => Ok(()),
    }
}

/// Options that do not go together, each refused with the reason.
fn check_combination(args: &TrainArgs) -> anyhow::Result<()> {
    check_federated(args)?;
    check_parameter_server(args)?;
    let easgd = args.algorithm == TrainingAlgorithm::Easgd;
    if args.elastic_alpha.is_some() && !easgd {
        return Err(usage("--elastic-alpha applies to --algorithm easgd"));
    }
    if let Some(alpha) = args.elastic_alpha.filter(|a| !(*a > 0.0 && *a <= 1.0)) {
        return Err(usage(format!(
            "--elastic-alpha {alpha}: must be in (0, 1], and at most 1 / ranks"
        )));
    }
    if easgd && args.average_every == Some(0) {
        return Err(usage(
            "--average-every 0 with --algorithm easgd: the elastic update needs a period of at least 1 step",
        ));
    }
    if (args.average_every.is_some() || easgd) && (args.reproducible || args.overlap) {
        let option = if args.reproducible {
            "--reproducible"
        } else {
            "--overlap"
        };
        return Err(usage(format!(
            "{option} applies to gradient averaging; with --average-every (local SGD) or --algorithm \
             easgd each rank's model depends on its own rows, and the parameters are combined \
             after the update; leave out one of the two"
        )));
    }
    if args.block_rows == Some(0) {
        return Err(usage("--block-rows 0: a block holds at least one row"));
    }
    if args.reproducible && args.overlap {
        return Err(usage(
            "--reproducible and --overlap do not go together: the reproducible sum is of whole \
             gradients of fixed blocks of rows, not of layers; leave out one of the two",
        ));
    }
    Ok(())
}

impl TrainSettings {
    pub fn from_args(args: TrainArgs) -> anyhow::Result<Self> {
        let data = data_spec(&args)?;
        let hidden = hidden_widths(&args)?;
        check_counts(&args)?;
        check_optimizer(&args)?;
        check_combination(&args)?;
        let checkpoint = checkpoint_path(&args)?;
        check_outputs(args.out.as_deref(), checkpoint.as_deref(), &args, &data)?;
        Ok(Self {
            model: args.model,
            hidden,
            data,
            standardize: args.standardize,
            epochs: args.epochs,
            batch: args.batch,
            batch_per_rank: args.batch_per_rank,
            lr: args.lr,
            optimizer: args.optimizer,
            momentum: args.momentum,
            l2: args.l2,
            beta1: args.beta1.unwrap_or(0.9),
            beta2: args.beta2.unwrap_or(0.999),
            eps: args.eps.unwrap_or(1e-8),
            weight_decay: args.weight_decay.unwrap_or(match args.optimizer {
                OptimizerKind::Adamw => DEFAULT_WEIGHT_DECAY,
                _ => 0.0,
            }),
            warmup_epochs: args.warmup_epochs,
            lr_schedule: args.lr_schedule,
            lr_step_epochs: args.lr_step_epochs.unwrap_or((args.epochs / 3).max(1)),
            lr_gamma: args.lr_gamma.unwrap_or(0.1),
            allreduce: args.allreduce,
            algorithm: args.algorithm,
            average_every: match args.algorithm {
                TrainingAlgorithm::Easgd => Some(args.average_every.unwrap_or(1)),
                _ => args.average_every,
            },
            elastic_alpha: args.elastic_alpha,
            servers: match args.algorithm {
                TrainingAlgorithm::AsyncPs => args.servers.unwrap_or(1),
                _ => 0,
            },
            federated: FederatedSettings {
                clients: args.clients.unwrap_or(DEFAULT_CLIENTS),
                per_round: args.clients_per_round.unwrap_or(DEFAULT_CLIENTS_PER_ROUND),
                local_epochs: args.local_epochs.unwrap_or(1),
                non_iid: args.non_iid,
            },
            overlap: args.overlap.then_some(args.bucket_bytes.unwrap_or(0)),
            reproducible: args.reproducible,
            block_rows: args.block_rows,
            dtype: args.dtype,
            seed: args.seed,
            out: args.out,
            force: args.force,
            log_every: args.log_every,
            checkpoint,
            checkpoint_every: args.checkpoint_every,
            checkpoint_seconds: args.checkpoint_seconds,
            resume: args.resume,
            stall_timeout: (args.stall_timeout > 0.0)
                .then(|| Duration::from_secs_f64(args.stall_timeout)),
            faults: Faults {
                plan: args.fail_at,
                mode: args.fail_mode,
            },
        })
    }

    /// Rows per step over all `ranks` (over the workers, for async-ps).
    pub fn global_batch(&self, ranks: usize) -> usize {
        let with_rows = ranks.saturating_sub(self.servers);
        self.batch_per_rank
            .map_or(self.batch, |rows| rows * with_rows)
    }

    /// Whether a second thread of a rank talks MPI: the stall watchdog's, or the
    /// communication thread of `--overlap` with one of our algorithms.
    pub fn needs_thread_multiple(&self) -> bool {
        let threaded_overlap =
            self.overlap.is_some() && !std::ptr::eq(self.allreduce, crate::comm::reference());
        self.stall_timeout.is_some() || threaded_overlap
    }

    /// Rows of the blocks a rank owns whole: with `--reproducible`, `--block-rows` or the
    /// batch cut into at most [`REPRODUCIBLE_BLOCKS`] blocks (a function of the batch alone,
    /// never of the ranks).
    pub fn grain(&self, batch: usize) -> usize {
        match self.reproducible {
            true => self
                .block_rows
                .unwrap_or(batch.div_ceil(REPRODUCIBLE_BLOCKS)),
            false => 1,
        }
    }

    /// The rank's place among the ranks that hold training rows: all but async-ps's servers.
    pub fn data_rank(&self, rank: usize) -> Option<usize> {
        rank.checked_sub(self.servers)
    }

    /// EASGD's moving rate on `ranks` ranks (0 for the other algorithms).
    pub fn elastic_alpha(&self, ranks: usize) -> f64 {
        match self.algorithm {
            TrainingAlgorithm::Easgd => self.elastic_alpha.unwrap_or(EASGD_BETA / ranks as f64),
            _ => 0.0,
        }
    }

    /// The update rule with its numbers.
    pub fn rule(&self) -> Rule {
        match self.optimizer {
            OptimizerKind::Sgd => Rule::Sgd {
                momentum: self.momentum,
                l2: self.l2,
            },
            kind => Rule::Adam {
                beta1: self.beta1,
                beta2: self.beta2,
                eps: self.eps,
                weight_decay: match kind {
                    OptimizerKind::Adamw => self.weight_decay,
                    _ => self.l2,
                },
                decoupled: kind == OptimizerKind::Adamw,
            },
        }
    }

    /// The learning rate's course over a run of `epochs` x `steps_per_epoch` steps.
    pub fn schedule(&self, steps_per_epoch: usize) -> LrSchedule {
        LrSchedule {
            lr: self.lr,
            warmup_steps: (self.warmup_epochs * steps_per_epoch as f64).round() as usize,
            decay: self.lr_schedule,
            total_steps: self.epochs * steps_per_epoch,
            step_every: self.lr_step_epochs * steps_per_epoch,
            gamma: self.lr_gamma,
        }
    }

    /// Layer widths of the softmax/MLP network: [features, hidden..., classes].
    pub fn widths(&self, shape: &DataShape) -> Vec<usize> {
        let mut widths = vec![shape.features];
        widths.extend(&self.hidden);
        widths.push(shape.classes);
        widths
    }

    /// Every resolved option, as the run file's and the checkpoint's `/config` attributes.
    pub fn attributes(&self, ranks: usize, shape: &DataShape) -> Vec<(&'static str, Setting)> {
        use Setting::*;
        let hidden: Vec<String> = self.hidden.iter().map(|w| w.to_string()).collect();
        let names = &self.data.names;
        vec![
            ("model", Text(self.model.name().into())),
            ("hidden", Text(hidden.join(","))),
            ("data", Text(self.data.source.to_string())),
            ("x_name", Text(names.x_name.clone())),
            ("y_name", Text(names.y_name.clone())),
            ("x_test_name", Text(names.x_test_name.clone())),
            ("y_test_name", Text(names.y_test_name.clone())),
            ("standardize", Int(u64::from(self.standardize))),
            ("samples", Int(shape.samples as u64)),
            (
                "samples_per_rank",
                Int(self.data.samples_per_rank.unwrap_or(0) as u64),
            ),
            ("features", Int(shape.features as u64)),
            ("classes", Int(shape.classes as u64)),
            ("test_samples", Int(shape.test_samples as u64)),
            ("label_noise", Float(self.data.label_noise)),
            ("epochs", Int(self.epochs as u64)),
            ("batch", Int(self.global_batch(ranks) as u64)),
            (
                "batch_per_rank",
                Int(self.batch_per_rank.unwrap_or(0) as u64),
            ),
            ("lr", Float(self.lr)),
            ("optimizer", Text(self.optimizer.name().into())),
            ("momentum", Float(self.momentum)),
            ("l2", Float(self.l2)),
            ("beta1", Float(self.beta1)),
            ("beta2", Float(self.beta2)),
            ("eps", Float(self.eps)),
            ("weight_decay", Float(self.weight_decay)),
            ("warmup_epochs", Float(self.warmup_epochs)),
            ("lr_schedule", Text(self.lr_schedule.name().into())),
            ("lr_step_epochs", Int(self.lr_step_epochs as u64)),
            ("lr_gamma", Float(self.lr_gamma)),
            ("allreduce", Text(self.allreduce.name.into())),
            ("algorithm", Text(self.algorithm.name().into())),
            ("elastic_alpha", Float(self.elastic_alpha(ranks))),
            ("servers", Int(self.servers as u64)),
            ("clients", Int(self.federated.clients as u64)),
            ("clients_per_round", Int(self.federated.per_round as u64)),
            ("local_epochs", Int(self.federated.local_epochs as u64)),
            (
                "non_iid",
                Text(
                    self.federated
                        .non_iid
                        .map_or("off".into(), |a| a.to_string()),
                ),
            ),
            (
                "average_every",
                Text(self.average_every.map_or("off".into(), |k| k.to_string())),
            ),
            ("overlap", Int(u64::from(self.overlap.is_some()))),
            ("bucket_bytes", Int(self.overlap.unwrap_or(0) as u64)),
            ("reproducible", Int(u64::from(self.reproducible))),
            (
                "block_rows",
                Int(self.grain(self.global_batch(ranks)) as u64),
            ),
            ("dtype", Text(self.dtype.name().into())),
            ("seed", Int(self.seed)),
            ("ranks", Int(ranks as u64)),
            ("log_every", Int(self.log_every as u64)),
        ]
    }
}

/// The rows asked for, with the synthetic generator's defaults.
fn data_spec(args: &TrainArgs) -> anyhow::Result<DataSpec> {
    let source = match args.data.to_str() {
        Some("synthetic") => DataSource::Synthetic,
        _ => DataSource::File(args.data.clone()),
    };
    let synthetic = source == DataSource::Synthetic;
    if !synthetic && args.label_noise != 0.0 {
        return Err(usage("--label-noise applies to synthetic data only"));
    }
    if !synthetic && args.samples_per_rank.is_some() {
        return Err(usage(
            "--samples-per-rank applies to synthetic data only; use --samples to take the first rows of a file",
        ));
    }
    if !(0.0..=0.5).contains(&args.label_noise) {
        return Err(usage(format!(
            "--label-noise {}: must be in [0, 0.5]",
            args.label_noise
        )));
    }
    let synthetic_default = |value: usize| synthetic.then_some(value);
    Ok(DataSpec {
        samples: args
            .samples
            .or((synthetic && args.samples_per_rank.is_none()).then_some(DEFAULT_SAMPLES)),
        samples_per_rank: args.samples_per_rank,
        features: args.features.or(synthetic_default(DEFAULT_FEATURES)),
        classes: classes(args, synthetic)?,
        test_samples: args
            .test_samples
            .or(synthetic_default(DEFAULT_TEST_SAMPLES)),
        names: args.names.clone(),
        binary: args.model == ModelKind::Logistic,
        label_noise: args.label_noise,
        seed: args.seed,
        source,
    })
}

/// Classes asked for: 2 for logistic regression; 10 for synthetic blobs; a file's own count
/// (`None`) otherwise.
fn classes(args: &TrainArgs, synthetic: bool) -> anyhow::Result<Option<usize>> {
    let classes = match (args.model, args.classes) {
        (ModelKind::Logistic, None) => Some(2),
        (ModelKind::Logistic, Some(k)) if k != 2 => {
            return Err(usage(format!(
                "--classes {k}: logistic regression is binary; use --model softmax or mlp for {k} classes"
            )))
        }
        (_, None) if synthetic => Some(DEFAULT_CLASSES),
        (_, k) => k,
    };
    if let Some(k) = classes.filter(|&k| k < 2) {
        return Err(usage(format!("--classes {k}: need at least 2 classes")));
    }
    Ok(classes)
}

fn hidden_widths(args: &TrainArgs) -> anyhow::Result<Vec<usize>> {
    let hidden = match (args.model, &args.hidden) {
        (ModelKind::Mlp, hidden) => hidden.clone().unwrap_or(DEFAULT_HIDDEN.to_vec()),
        (_, None) => Vec::new(),
        (model, Some(_)) => {
            return Err(usage(format!(
                "--hidden applies to --model mlp only, not {}",
                model.name()
            )))
        }
    };
    if hidden.contains(&0) {
        return Err(usage(
            "--hidden: every layer width must be at least 1, e.g. --hidden 128,64",
        ));
    }
    Ok(hidden)
}

/// Sizes and counts that must be at least 1.
fn check_counts(args: &TrainArgs) -> anyhow::Result<()> {
    let positive = [
        ("--samples", args.samples),
        ("--samples-per-rank", args.samples_per_rank),
        ("--features", args.features),
        ("--epochs", Some(args.epochs)),
        ("--batch", Some(args.batch)),
        ("--batch-per-rank", args.batch_per_rank),
        ("--checkpoint-every", args.checkpoint_every),
    ];
    for (name, value) in positive.into_iter().filter_map(|(n, v)| Some((n, v?))) {
        if value == 0 {
            return Err(usage(format!("{name} must be at least 1")));
        }
    }
    Ok(())
}

/// The optimiser's numbers and the stall timeout.
fn check_optimizer(args: &TrainArgs) -> anyhow::Result<()> {
    if !(args.lr.is_finite() && args.lr > 0.0) {
        return Err(usage(format!(
            "--lr {}: the learning rate must be a positive finite number",
            args.lr
        )));
    }
    if !(0.0..1.0).contains(&args.momentum) {
        return Err(usage(format!(
            "--momentum {}: must be in [0, 1)",
            args.momentum
        )));
    }
    for (name, value) in [("--l2", args.l2), ("--warmup-epochs", args.warmup_epochs)] {
        if !(value.is_finite() && value >= 0.0) {
            return Err(usage(format!(
                "{name} {value}: must be a finite number >= 0"
            )));
        }
    }
    check_rule(args)?;
    check_schedule(args)?;
    if !(0.0..=MAX_SECONDS).contains(&args.stall_timeout) {
        return Err(usage(format!(
            "--stall-timeout {}: must be a number of seconds in [0, {MAX_SECONDS:e}] (0: off)",
            shown(args.stall_timeout)
        )));
    }
    Ok(())
}

/// Each rule's own options, with that rule only.
fn check_rule(args: &TrainArgs) -> anyhow::Result<()> {
    let adam = args.optimizer != OptimizerKind::Sgd;
    let given = |value: Option<f64>| value.is_some();
    if !adam {
        for (name, value) in [
            ("--beta1", args.beta1),
            ("--beta2", args.beta2),
            ("--eps", args.eps),
        ] {
            if given(value) {
                return Err(usage(format!(
                    "{name} applies to --optimizer adam or adamw, not sgd"
                )));
            }
        }
    }
    if adam && args.momentum != 0.0 {
        return Err(usage(format!(
            "--momentum applies to --optimizer sgd; {}'s momentum is --beta1",
            args.optimizer.name()
        )));
    }
    if given(args.weight_decay) && args.optimizer != OptimizerKind::Adamw {
        return Err(usage(format!(
            "--weight-decay (decoupled) applies to --optimizer adamw; with {} use --l2",
            args.optimizer.name()
        )));
    }
    if args.optimizer == OptimizerKind::Adamw && args.l2 != 0.0 {
        return Err(usage(
            "--l2 with --optimizer adamw: AdamW decays the weights apart from the gradient; use --weight-decay",
        ));
    }
    for (name, value) in [("--beta1", args.beta1), ("--beta2", args.beta2)] {
        if let Some(beta) = value.filter(|b| !(0.0..1.0).contains(b)) {
            return Err(usage(format!("{name} {beta}: must be in [0, 1)")));
        }
    }
    if let Some(eps) = args.eps.filter(|e| !(e.is_finite() && *e > 0.0)) {
        return Err(usage(format!(
            "--eps {eps}: must be a positive finite number"
        )));
    }
    if let Some(wd) = args
        .weight_decay
        .filter(|wd| !(wd.is_finite() && *wd >= 0.0 && args.lr * wd < 1.0))
    {
        return Err(usage(format!(
            "--weight-decay {wd}: must be >= 0 with --lr times it below 1 (each step keeps 1 - lr * wd of the weights)"
        )));
    }
    Ok(())
}

/// The step decay's options, with `--lr-schedule step` only.
fn check_schedule(args: &TrainArgs) -> anyhow::Result<()> {
    let step = args.lr_schedule == LrDecay::Step;
    for (name, given) in [
        ("--lr-step-epochs", args.lr_step_epochs.is_some()),
        ("--lr-gamma", args.lr_gamma.is_some()),
    ] {
        if given && !step {
            return Err(usage(format!("{name} applies to --lr-schedule step")));
        }
    }
    if args.lr_step_epochs == Some(0) {
        return Err(usage("--lr-step-epochs must be at least 1"));
    }
    if let Some(gamma) = args.lr_gamma.filter(|g| !(*g > 0.0 && *g <= 1.0)) {
        return Err(usage(format!("--lr-gamma {gamma}: must be in (0, 1]")));
    }
    Ok(())
}

/// Neither output replaces an input: the run file is not the data file nor the checkpoint it
/// resumes from; the checkpoint is not the data file nor the run file (it may replace the
/// checkpoint being resumed, which it continues).
fn check_outputs(
    out: Option<&Path>,
    checkpoint: Option<&Path>,
    args: &TrainArgs,
    data: &DataSpec,
) -> anyhow::Result<()> {
    let data_file = match &data.source {
        DataSource::File(path) => Some(path.as_path()),
        DataSource::Synthetic => None,
    };
    let resume = args.resume.as_deref();
    if let Some(out) = out {
        let inputs: Vec<(&str, &Path)> = [("--data", data_file), ("--resume", resume)]
            .into_iter()
            .filter_map(|(option, path)| Some((option, path?)))
            .collect();
        h5::refuse_output_over_input("--out", out, &inputs)?;
    }
    if let Some(checkpoint) = checkpoint {
        let others: Vec<(&str, &Path)> = [("--data", data_file), ("--out", out)]
            .into_iter()
            .filter_map(|(option, path)| Some((option, path?)))
            .collect();
        h5::refuse_output_over_input("--checkpoint", checkpoint, &others)?;
    }
    Ok(())
}

/// Where checkpoints go: `--checkpoint`, or beside `--out` (`run.h5` -> `run.ckpt.h5`).
fn checkpoint_path(args: &TrainArgs) -> anyhow::Result<Option<PathBuf>> {
    if let Some(seconds) = args
        .checkpoint_seconds
        .filter(|s| !(*s > 0.0 && *s <= MAX_SECONDS))
    {
        return Err(usage(format!(
            "--checkpoint-seconds {}: must be a number of seconds in (0, {MAX_SECONDS:e}]",
            shown(seconds)
        )));
    }
    let checkpoint = args
        .checkpoint
        .clone()
        .or_else(|| args.out.as_ref().map(|out| out.with_extension("ckpt.h5")));
    let wants_checkpoints = args.checkpoint_every.is_some() || args.checkpoint_seconds.is_some();
    if wants_checkpoints && checkpoint.is_none() {
        return Err(usage(
            "--checkpoint-every/--checkpoint-seconds need a place for the checkpoint: give --checkpoint PATH or --out",
        ));
    }
    Ok(checkpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(line: &str) -> anyhow::Result<TrainSettings> {
        let argv = std::iter::once("mpi-sgd train").chain(line.split_whitespace());
        let argv: Vec<&str> = argv.flat_map(|a| a.split(' ')).collect();
        match Cli::try_parse_from(argv)?.command {
            Command::Train(args) => TrainSettings::from_args(*args),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = parse("").unwrap();
        assert_eq!(c.model, ModelKind::Logistic);
        assert_eq!(
            (c.data.samples, c.data.features, c.data.classes),
            (Some(1_000_000), Some(20), Some(2))
        );
        assert_eq!(c.data.test_samples, Some(10_000));
        let weak = parse("--samples-per-rank 1000").unwrap();
        assert_eq!(
            (weak.data.samples, weak.data.samples_per_rank),
            (None, Some(1000))
        );
        assert!(parse("--samples-per-rank 10 --samples 20").is_err());
        let per_rank = parse("--batch-per-rank 64").unwrap();
        assert_eq!(
            (per_rank.global_batch(1), per_rank.global_batch(8)),
            (64, 512)
        );
        assert!(parse("--batch-per-rank 64 --batch 128").is_err());
        let file = parse("--data d.h5").unwrap();
        assert_eq!(file.data.source, DataSource::File("d.h5".into()));
        assert_eq!(
            (
                file.data.samples,
                file.data.features,
                file.data.test_samples
            ),
            (None, None, None)
        );
        assert_eq!((c.epochs, c.batch, c.lr, c.seed), (8, 8192, 0.1, 42));
        assert_eq!(c.dtype, Dtype::F64);
        assert!(c.hidden.is_empty());
        let mlp = parse("--model mlp").unwrap();
        assert_eq!(
            (mlp.hidden.clone(), mlp.data.classes),
            (vec![128, 64], Some(10))
        );
        let shape = DataShape {
            samples: 100,
            features: 20,
            test_samples: 0,
            classes: 10,
        };
        assert_eq!(mlp.widths(&shape), vec![20, 128, 64, 10]);
    }

    #[test]
    fn bad_options_are_usage_errors_that_name_the_option() {
        for (line, needle) in [
            ("--samples 0", "--samples"),
            ("--lr -1", "--lr"),
            ("--lr nan", "--lr"),
            ("--momentum 1", "--momentum"),
            ("--optimizer adam --momentum 0.9", "--beta1"),
            ("--beta1 0.9", "adam"),
            ("--optimizer adam --beta2 1", "--beta2"),
            ("--optimizer adam --eps 0", "--eps"),
            ("--optimizer adam --weight-decay 0.1", "--l2"),
            ("--optimizer adamw --l2 0.1", "--weight-decay"),
            (
                "--optimizer adamw --lr 1 --weight-decay 2",
                "--weight-decay",
            ),
            ("--lr-gamma 0.5", "--lr-schedule step"),
            ("--lr-schedule step --lr-step-epochs 0", "--lr-step-epochs"),
            ("--lr-schedule step --lr-gamma 0", "--lr-gamma"),
            ("--elastic-alpha 0.1", "--algorithm easgd"),
            ("--algorithm easgd --elastic-alpha 2", "--elastic-alpha"),
            ("--algorithm easgd --overlap", "--overlap"),
            ("--clients 5", "--algorithm fedavg"),
            ("--algorithm fedavg --average-every 2", "does not apply"),
            ("--algorithm fedavg --local-epochs 0", "--local-epochs"),
            ("--algorithm fedavg --non-iid 0", "--non-iid"),
            ("--servers 2", "--algorithm async-ps"),
            ("--algorithm async-ps --servers 0", "--servers"),
            (
                "--algorithm async-ps --checkpoint-every 5 --out x.h5",
                "--checkpoint-every",
            ),
            ("--model softmax --classes 1", "--classes"),
            ("--classes 3", "binary"),
            ("--hidden 4", "--hidden"),
            ("--model mlp --hidden 4,0", "--hidden"),
            ("--data file.h5 --label-noise 0.1", "--label-noise"),
            ("--data file.h5 --samples-per-rank 5", "--samples-per-rank"),
            ("--samples-per-rank 0", "--samples-per-rank"),
            ("--label-noise 0.7", "--label-noise"),
        ] {
            let err = parse(line).unwrap_err();
            assert!(err.is::<crate::errors::UsageError>(), "{line}: {err}");
            assert!(err.to_string().contains(needle), "{line}: {err}");
        }
    }

    #[test]
    fn no_output_may_replace_an_input_even_with_force() {
        let dir = std::env::temp_dir().join(format!("mpi-sgd-outputs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data = dir.join("data.h5");
        std::fs::write(&data, b"x").unwrap();
        let link = dir.join("link.h5");
        std::fs::remove_file(&link).ok();
        std::os::unix::fs::symlink(&data, &link).unwrap();
        let (d, l) = (data.display(), link.display());
        let run = dir.join("run.h5");
        let r = run.display();
        for (line, needle) in [
            (format!("--data {d} --out {d} --force"), "--out"),
            (format!("--data {d} --out {l} --force"), "--out"),
            (
                format!("--data {d} --checkpoint {l} --checkpoint-every 5"),
                "--checkpoint",
            ),
            (
                format!("--out {r} --checkpoint {r} --checkpoint-every 5"),
                "--checkpoint",
            ),
            (format!("--out {d} --resume {l}"), "--resume"),
        ] {
            let err = parse(&line).unwrap_err();
            assert!(err.is::<crate::errors::UsageError>(), "{line}: {err}");
            assert!(err.to_string().contains(needle), "{line}: {err}");
        }
        // The checkpoint may replace the one it resumes from.
        assert!(parse(&format!("--checkpoint {d} --resume {d}")).is_ok());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn clap_refuses_what_does_not_parse() {
        assert!(parse("--hidden 4,x --model mlp").is_err());
        assert!(parse("--model tree").is_err());
        assert!(parse("--allreduce carrier-pigeon").is_err());
    }

    proptest::proptest! {
        #[test]
        fn fuzz_hidden_layer_lists_parse_or_refuse(list in "[0-9,x -]{0,24}") {
            if let Ok(config) = parse(&format!("--model mlp --hidden {list}")) {
                proptest::prop_assert!(config.hidden.iter().all(|&w| w >= 1));
            }
        }

        #[test]
        fn fuzz_fail_at_plans_parse_or_refuse(plan in "[0-9a-z:]{0,20}") {
            if let Ok(config) = parse(&format!("--fail-at {plan}")) {
                proptest::prop_assert_eq!(config.faults.plan.unwrap().to_string(), plan);
            }
        }
    }
}
