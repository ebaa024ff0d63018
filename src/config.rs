//! Command line -> validated [`Config`], before any MPI work.
//!
//! Two stages, as in ripgrep: [`TrainArgs`] is what the user typed (clap), [`Config`] the
//! settings with defaults resolved and every value checked. Checks that need the number of
//! ranks (batch >= ranks) happen after MPI starts, in [`crate::data::partition::BatchPlan`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::comm::AllreduceKind;
use crate::data::file::DatasetNames;
use crate::data::DataShape;
use crate::errors::usage;
use crate::fault::{FailAt, FailMode, Faults};

#[derive(Debug, Parser)]
#[command(
    name = "mpi-sgd",
    version,
    about = "Synchronous data-parallel SGD over MPI, built to measure how training scales",
    long_about = "Synchronous data-parallel SGD over MPI, built to measure how training scales.\n\n\
                  Launch with an MPI launcher, e.g. `mpirun -n 8 mpi-sgd train --out run.h5`."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a model with synchronous data-parallel SGD (run under mpirun or srun).
    Train(Box<TrainArgs>),
    /// Measure and check the allreduce algorithms over a sweep of message sizes (OSU style).
    BenchAllreduce(crate::bench::BenchArgs),
    /// Convert a CSV or LIBSVM text file into an HDF5 data file for `train --data`.
    Convert(crate::convert::ConvertArgs),
    /// Loss, accuracy and confusion matrix of a trained model on a data file.
    Evaluate(crate::inference::EvaluateArgs),
    /// Predicted labels and class probabilities of a trained model, into an HDF5 file.
    Predict(crate::inference::PredictArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelKind {
    /// Binary logistic regression.
    Logistic,
    /// Multinomial (softmax) regression.
    Softmax,
    /// ReLU multi-layer perceptron with a softmax output.
    Mlp,
}

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Logistic => "logistic",
            ModelKind::Softmax => "softmax",
            ModelKind::Mlp => "mlp",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Dtype {
    F32,
    F64,
}

impl Dtype {
    pub fn bytes(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::F64 => "f64",
        }
    }
}

/// Options of `mpi-sgd train`.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Model to train.
    #[arg(long, value_enum, default_value_t = ModelKind::Logistic)]
    pub model: ModelKind,
    /// Hidden layer widths of the MLP, comma-separated [default: 128,64].
    #[arg(long, value_delimiter = ',', value_name = "W1,W2,...")]
    pub hidden: Option<Vec<usize>>,
    /// Training data: `synthetic` (generated per rank from the seed), or an HDF5 file with
    /// datasets X [rows, features] and y [rows], optionally X_test and y_test.
    #[arg(long, default_value = "synthetic", value_name = "synthetic|PATH")]
    pub data: String,
    /// Training rows (the global data set) [default: 1000000 synthetic; all rows of a file].
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub samples: Option<usize>,
    /// Weak scaling: training rows per rank, so the global set is this times the ranks
    /// (synthetic data; instead of --samples).
    #[arg(
        long,
        allow_negative_numbers = true,
        value_name = "N",
        conflicts_with = "samples"
    )]
    pub samples_per_rank: Option<usize>,
    /// Features per row [default: 20 synthetic; a file's width, which this must match].
    #[arg(long, allow_negative_numbers = true, value_name = "D")]
    pub features: Option<usize>,
    /// Classes (softmax, mlp; logistic is binary) [default: 10 synthetic; a file's labels].
    #[arg(long, allow_negative_numbers = true, value_name = "K")]
    pub classes: Option<usize>,
    #[command(flatten)]
    pub names: DatasetNames,
    /// Scale every feature to mean 0 and standard deviation 1 (statistics of the training rows,
    /// combined across ranks; applied to the test rows too and stored in the run file).
    #[arg(long)]
    pub standardize: bool,
    /// Test rows, disjoint from the training rows [default: 10000 synthetic; all of a file's
    /// X_test, none if it has none].
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub test_samples: Option<usize>,
    /// Probability that a synthetic binary label is flipped (logistic data only).
    #[arg(
        long,
        allow_negative_numbers = true,
        default_value_t = 0.0,
        value_name = "P"
    )]
    pub label_noise: f64,
    /// Passes over the training data.
    #[arg(
        long,
        allow_negative_numbers = true,
        default_value_t = 8,
        value_name = "E"
    )]
    pub epochs: usize,
    /// GLOBAL batch size: rows per step summed over all ranks.
    #[arg(
        long,
        allow_negative_numbers = true,
        default_value_t = 8192,
        value_name = "B"
    )]
    pub batch: usize,
    /// Weak scaling: rows per rank in each step, so the global batch is this times the ranks
    /// (instead of --batch).
    #[arg(
        long,
        allow_negative_numbers = true,
        value_name = "B",
        conflicts_with = "batch"
    )]
    pub batch_per_rank: Option<usize>,
    /// Learning rate.
    #[arg(
        long,
        default_value_t = 0.1,
        value_name = "X",
        allow_negative_numbers = true
    )]
    pub lr: f64,
    /// Momentum (0 for plain SGD).
    #[arg(
        long,
        allow_negative_numbers = true,
        default_value_t = 0.0,
        value_name = "M"
    )]
    pub momentum: f64,
    /// L2 penalty (weight decay) on every parameter.
    #[arg(
        long,
        allow_negative_numbers = true,
        default_value_t = 0.0,
        value_name = "X"
    )]
    pub l2: f64,
    /// Epochs of linear learning-rate warm-up (may be fractional).
    #[arg(
        long,
        allow_negative_numbers = true,
        default_value_t = 0.0,
        value_name = "W"
    )]
    pub warmup_epochs: f64,
    /// Allreduce algorithm that combines the gradients.
    #[arg(long, value_enum, default_value_t = AllreduceKind::Mpi)]
    pub allreduce: AllreduceKind,
    /// Local SGD: each rank steps on its own rows and the parameters are averaged across ranks
    /// every K steps (0: once, at the end). Without it, gradients are averaged every step.
    #[arg(long, value_name = "K")]
    pub average_every: Option<usize>,
    /// Floating-point type of data, parameters and gradients.
    #[arg(long, value_enum, default_value_t = Dtype::F64)]
    pub dtype: Dtype,
    /// Seed of the data, the initial parameters and everything random.
    #[arg(long, default_value_t = 42, value_name = "S")]
    pub seed: u64,
    /// HDF5 run file to write (format mpi-sgd/1).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Overwrite an existing run file.
    #[arg(long)]
    pub force: bool,
    /// Also log the global loss every this many steps (0: once per epoch only).
    #[arg(long, default_value_t = 0, value_name = "STEPS")]
    pub log_every: usize,
    /// Checkpoint file [default: the --out path with .ckpt.h5 for .h5].
    #[arg(long, value_name = "PATH")]
    pub checkpoint: Option<PathBuf>,
    /// Write a checkpoint every STEPS steps.
    #[arg(long, value_name = "STEPS")]
    pub checkpoint_every: Option<usize>,
    /// Write a checkpoint when this many seconds have passed since the last (rank 0's clock,
    /// agreed by all ranks).
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub checkpoint_seconds: Option<f64>,
    /// Continue the run saved in this checkpoint (same options, same number of ranks).
    #[arg(long, value_name = "CKPT.h5")]
    pub resume: Option<PathBuf>,
    /// Abort the job when a rank has waited in a collective this long (0: off).
    #[arg(
        long,
        default_value_t = 600.0,
        value_name = "SECONDS",
        allow_negative_numbers = true
    )]
    pub stall_timeout: f64,
    /// Testing aid: make rank RANK fail in PHASE (startup, data, compute, allreduce, update,
    /// checkpoint, write), at step STEP (counted from 1) for per-step phases.
    #[arg(long, value_name = "RANK:PHASE[:STEP]")]
    pub fail_at: Option<FailAt>,
    /// Testing aid: how the --fail-at rank fails.
    #[arg(long, value_enum, default_value_t = FailMode::Error, requires = "fail_at")]
    pub fail_mode: FailMode,
}

/// Where the training rows come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    Synthetic,
    File(PathBuf),
}

impl std::fmt::Display for DataSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataSource::Synthetic => f.write_str("synthetic"),
            DataSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Validated settings of a training run. The data's sizes are final only once the data source
/// has been opened ([`crate::data::DataShape`]); here they are what the user asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub model: ModelKind,
    /// Hidden widths (empty unless `model` is mlp).
    pub hidden: Vec<usize>,
    pub data: DataSource,
    /// Training rows; `None`: every row of the data file, or `samples_per_rank` per rank.
    pub samples: Option<usize>,
    /// Weak scaling: rows per rank (synthetic data only).
    pub samples_per_rank: Option<usize>,
    /// Features; `None`: the data file's width.
    pub features: Option<usize>,
    /// 2 for logistic.
    /// Classes asked for; `None`: a data file's own count (10 synthetic, 2 logistic).
    pub classes: Option<usize>,
    pub names: DatasetNames,
    pub standardize: bool,
    /// Test rows; `None`: every row of the file's test set.
    pub test_samples: Option<usize>,
    pub label_noise: f64,
    pub epochs: usize,
    /// The global batch, unless `batch_per_rank` is set.
    pub batch: usize,
    pub batch_per_rank: Option<usize>,
    pub lr: f64,
    pub momentum: f64,
    pub l2: f64,
    pub warmup_epochs: f64,
    pub allreduce: AllreduceKind,
    /// `None`: gradient averaging every step; `Some(k)`: parameter averaging every k steps
    /// (0: at the end only).
    pub average_every: Option<usize>,
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
    pub stall_timeout: Option<std::time::Duration>,
    pub faults: Faults,
}

/// A value of a resolved option, as stored in the run file's `/config` attributes.
#[derive(Debug, Clone, PartialEq)]
pub enum Setting {
    Text(String),
    Int(u64),
    Float(f64),
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Setting::Text(s) => f.write_str(s),
            Setting::Int(v) => write!(f, "{v}"),
            Setting::Float(v) => write!(f, "{v}"),
        }
    }
}

const DEFAULT_HIDDEN: [usize; 2] = [128, 64];
const DEFAULT_SAMPLES: usize = 1_000_000;
const DEFAULT_FEATURES: usize = 20;
const DEFAULT_TEST_SAMPLES: usize = 10_000;
const DEFAULT_CLASSES: usize = 10;

impl Config {
    pub fn from_args(args: TrainArgs) -> anyhow::Result<Self> {
        let data = match args.data.as_str() {
            "synthetic" => DataSource::Synthetic,
            path => DataSource::File(PathBuf::from(path)),
        };
        let synthetic = data == DataSource::Synthetic;
        if !synthetic && args.label_noise != 0.0 {
            return Err(usage("--label-noise applies to synthetic data only"));
        }
        if !synthetic && args.samples_per_rank.is_some() {
            return Err(usage(
                "--samples-per-rank applies to synthetic data only; use --samples to take the first rows of a file",
            ));
        }
        let hidden = match (args.model, args.hidden) {
            (ModelKind::Mlp, hidden) => hidden.unwrap_or(DEFAULT_HIDDEN.to_vec()),
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
        let positive = [
            ("--samples", args.samples),
            ("--samples-per-rank", args.samples_per_rank),
            ("--features", args.features),
            ("--epochs", Some(args.epochs)),
            ("--batch", Some(args.batch)),
            ("--batch-per-rank", args.batch_per_rank),
        ];
        for (name, value) in positive.into_iter().filter_map(|(n, v)| Some((n, v?))) {
            if value == 0 {
                return Err(usage(format!("{name} must be at least 1")));
            }
        }
        if let Some(k) = classes.filter(|&k| k < 2) {
            return Err(usage(format!("--classes {k}: need at least 2 classes")));
        }
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
        if !(0.0..=0.5).contains(&args.label_noise) {
            return Err(usage(format!(
                "--label-noise {}: must be in [0, 0.5]",
                args.label_noise
            )));
        }
        if !(args.stall_timeout.is_finite() && args.stall_timeout >= 0.0) {
            return Err(usage(format!(
                "--stall-timeout {}: must be a number of seconds >= 0 (0: off)",
                args.stall_timeout
            )));
        }
        if args.checkpoint_every == Some(0) {
            return Err(usage("--checkpoint-every must be at least 1"));
        }
        if let Some(seconds) = args
            .checkpoint_seconds
            .filter(|s| !(s.is_finite() && *s > 0.0))
        {
            return Err(usage(format!(
                "--checkpoint-seconds {seconds}: must be a positive number of seconds"
            )));
        }
        let checkpoint = args
            .checkpoint
            .clone()
            .or_else(|| args.out.as_ref().map(|out| out.with_extension("ckpt.h5")));
        let wants_checkpoints =
            args.checkpoint_every.is_some() || args.checkpoint_seconds.is_some();
        if wants_checkpoints && checkpoint.is_none() {
            return Err(usage(
                "--checkpoint-every/--checkpoint-seconds need a place for the checkpoint: give --checkpoint PATH or --out",
            ));
        }
        Ok(Self {
            model: args.model,
            hidden,
            samples: args
                .samples
                .or((synthetic && args.samples_per_rank.is_none()).then_some(DEFAULT_SAMPLES)),
            samples_per_rank: args.samples_per_rank,
            features: args.features.or(synthetic.then_some(DEFAULT_FEATURES)),
            classes,
            names: args.names,
            standardize: args.standardize,
            test_samples: args
                .test_samples
                .or(synthetic.then_some(DEFAULT_TEST_SAMPLES)),
            data,
            label_noise: args.label_noise,
            epochs: args.epochs,
            batch: args.batch,
            batch_per_rank: args.batch_per_rank,
            lr: args.lr,
            momentum: args.momentum,
            l2: args.l2,
            warmup_epochs: args.warmup_epochs,
            allreduce: args.allreduce,
            average_every: args.average_every,
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
                .then(|| std::time::Duration::from_secs_f64(args.stall_timeout)),
            faults: Faults {
                plan: args.fail_at,
                mode: args.fail_mode,
            },
        })
    }

    /// Rows per step over all ranks.
    pub fn global_batch(&self, ranks: usize) -> usize {
        self.batch_per_rank.map_or(self.batch, |rows| rows * ranks)
    }

    /// Layer widths of the softmax/MLP network: [features, hidden..., classes].
    pub fn widths(&self, shape: &DataShape) -> Vec<usize> {
        let mut widths = vec![shape.features];
        widths.extend(&self.hidden);
        widths.push(shape.classes);
        widths
    }

    /// Every resolved option, for the run file.
    pub fn settings(&self, ranks: usize, shape: &DataShape) -> Vec<(&'static str, Setting)> {
        use Setting::*;
        let hidden = self
            .hidden
            .iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>()
            .join(",");
        vec![
            ("model", Text(self.model.name().into())),
            ("hidden", Text(hidden)),
            ("data", Text(self.data.to_string())),
            ("x_name", Text(self.names.x_name.clone())),
            ("y_name", Text(self.names.y_name.clone())),
            ("x_test_name", Text(self.names.x_test_name.clone())),
            ("y_test_name", Text(self.names.y_test_name.clone())),
            ("standardize", Int(u64::from(self.standardize))),
            ("samples", Int(shape.samples as u64)),
            (
                "samples_per_rank",
                Int(self.samples_per_rank.unwrap_or(0) as u64),
            ),
            ("features", Int(shape.features as u64)),
            ("classes", Int(shape.classes as u64)),
            ("test_samples", Int(shape.test_samples as u64)),
            ("label_noise", Float(self.label_noise)),
            ("epochs", Int(self.epochs as u64)),
            ("batch", Int(self.global_batch(ranks) as u64)),
            (
                "batch_per_rank",
                Int(self.batch_per_rank.unwrap_or(0) as u64),
            ),
            ("lr", Float(self.lr)),
            ("momentum", Float(self.momentum)),
            ("l2", Float(self.l2)),
            ("warmup_epochs", Float(self.warmup_epochs)),
            ("allreduce", Text(self.allreduce.name().into())),
            (
                "average_every",
                Text(self.average_every.map_or("off".into(), |k| k.to_string())),
            ),
            ("dtype", Text(self.dtype.name().into())),
            ("seed", Int(self.seed)),
            ("ranks", Int(ranks as u64)),
            ("log_every", Int(self.log_every as u64)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> anyhow::Result<Config> {
        let argv = std::iter::once("mpi-sgd train").chain(line.split_whitespace());
        let argv: Vec<&str> = argv.flat_map(|a| a.split(' ')).collect();
        match Cli::try_parse_from(argv)?.command {
            Command::Train(args) => Config::from_args(*args),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = parse("").unwrap();
        assert_eq!(c.model, ModelKind::Logistic);
        assert_eq!(
            (c.samples, c.features, c.classes),
            (Some(1_000_000), Some(20), Some(2))
        );
        assert_eq!(c.test_samples, Some(10_000));
        let weak = parse("--samples-per-rank 1000").unwrap();
        assert_eq!((weak.samples, weak.samples_per_rank), (None, Some(1000)));
        assert!(parse("--samples-per-rank 10 --samples 20").is_err());
        let per_rank = parse("--batch-per-rank 64").unwrap();
        assert_eq!(
            (per_rank.global_batch(1), per_rank.global_batch(8)),
            (64, 512)
        );
        assert!(parse("--batch-per-rank 64 --batch 128").is_err());
        let file = parse("--data d.h5").unwrap();
        assert_eq!(file.data, DataSource::File("d.h5".into()));
        assert_eq!(
            (file.samples, file.features, file.test_samples),
            (None, None, None)
        );
        assert_eq!((c.epochs, c.batch, c.lr, c.seed), (8, 8192, 0.1, 42));
        assert_eq!(c.dtype, Dtype::F64);
        assert!(c.hidden.is_empty());
        let mlp = parse("--model mlp").unwrap();
        assert_eq!((mlp.hidden.clone(), mlp.classes), (vec![128, 64], Some(10)));
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
