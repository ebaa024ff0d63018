//! The command line: what the user typed, as clap types, one struct per subcommand. The top
//! floor with `main`: nothing below imports it but [`crate::settings`], which turns each
//! struct into validated settings before MPI starts (ripgrep's two stages).
//!
//! Not the place for checks or defaults that depend on other options (those are settings).

use std::path::PathBuf;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};

use crate::comm::{self, Algorithm, ALGORITHMS};
use crate::data::spec::{DatasetNames, Split};
use crate::fault::{FailAt, FailMode};
use crate::kinds::{Dtype, InputFormat, LrDecay, ModelKind, OptimizerKind, TrainingAlgorithm};
use crate::waiting::Waiting;

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
    /// How ranks wait for MPI: `spin` in the library's blocking calls (fastest with a core per
    /// rank), `yield` the core between polls (needed on a host with more ranks than cores),
    /// `auto` = yield on an oversubscribed host, spin otherwise.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = Waiting::Auto,
        env = "MPI_SGD_WAIT",
        value_name = "auto|spin|yield"
    )]
    pub wait: Waiting,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a model with synchronous data-parallel SGD (run under mpirun or srun).
    Train(Box<TrainArgs>),
    /// Measure and check the allreduce algorithms over a sweep of message sizes (OSU style).
    BenchAllreduce(BenchArgs),
    /// Convert a CSV, LIBSVM or IDX (MNIST) file into an HDF5 data file for `train --data`.
    Convert(ConvertArgs),
    /// Loss, accuracy and confusion matrix of a trained model on a data file.
    Evaluate(EvaluateArgs),
    /// Predicted labels and class probabilities of a trained model, into an HDF5 file.
    Predict(PredictArgs),
    /// A run file's per-step timings as a Chrome trace (opens in Perfetto and
    /// chrome://tracing): a track per rank, a slice per phase and step.
    Timeline(TimelineArgs),
    /// The allreduce algorithms, their schedules' cost formulas, and (with --ranks and
    /// --bytes) their alpha-beta-gamma coefficients as CSV.
    Algorithms(AlgorithmsArgs),
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
    pub data: PathBuf,
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
    /// Passes over the training data (fedavg: communication rounds, also --rounds).
    #[arg(
        long,
        alias = "rounds",
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
    /// The update rule.
    #[arg(long, value_enum, default_value_t = OptimizerKind::Sgd)]
    pub optimizer: OptimizerKind,
    /// Adam(W): decay of the first moment [default: 0.9].
    #[arg(long, allow_negative_numbers = true, value_name = "B")]
    pub beta1: Option<f64>,
    /// Adam(W): decay of the second moment [default: 0.999].
    #[arg(long, allow_negative_numbers = true, value_name = "B")]
    pub beta2: Option<f64>,
    /// Adam(W): added to the root of the second moment [default: 1e-8].
    #[arg(long, allow_negative_numbers = true, value_name = "X")]
    pub eps: Option<f64>,
    /// AdamW: decoupled weight decay, w -= lr * X * w each step [default: 0.01].
    #[arg(long, allow_negative_numbers = true, value_name = "X")]
    pub weight_decay: Option<f64>,
    /// How the learning rate falls after the warm-up.
    #[arg(long, value_enum, default_value_t = LrDecay::Constant)]
    pub lr_schedule: LrDecay,
    /// --lr-schedule step: epochs between decays [default: a third of --epochs, at least 1].
    #[arg(long, allow_negative_numbers = true, value_name = "E")]
    pub lr_step_epochs: Option<usize>,
    /// --lr-schedule step: the factor of each decay [default: 0.1].
    #[arg(long, allow_negative_numbers = true, value_name = "G")]
    pub lr_gamma: Option<f64>,
    /// Epochs of linear learning-rate warm-up (may be fractional).
    #[arg(
        long,
        allow_negative_numbers = true,
        default_value_t = 0.0,
        value_name = "W"
    )]
    pub warmup_epochs: f64,
    /// Allreduce algorithm that combines the gradients.
    #[arg(long, default_value = "mpi", value_parser = algorithm_parser())]
    pub allreduce: &'static Algorithm,
    /// How the ranks train together: synchronous SGD, Elastic Averaging SGD, federated
    /// averaging, or asynchronous SGD with parameter servers.
    #[arg(long, value_enum, default_value_t = TrainingAlgorithm::Sync)]
    pub algorithm: TrainingAlgorithm,
    /// Local SGD: each rank steps on its own rows and the parameters are averaged across ranks
    /// every K steps (0: once, at the end). Without it, gradients are averaged every step.
    /// With --algorithm easgd: the steps between elastic updates [default: 1].
    #[arg(long, value_name = "K")]
    pub average_every: Option<usize>,
    /// EASGD: how far each local model moves toward the centre at an elastic update; the
    /// centre moves ranks x A toward the local models' mean [default: 0.9 / ranks].
    #[arg(long, allow_negative_numbers = true, value_name = "A")]
    pub elastic_alpha: Option<f64>,
    /// Async-ps: ranks 0..S-1 hold the parameters (in S shards), the others are workers
    /// [default: 1].
    #[arg(long, allow_negative_numbers = true, value_name = "S")]
    pub servers: Option<usize>,
    /// Fedavg: clients in all, spread over the ranks in blocks; each splits its rank's rows
    /// [default: 100].
    #[arg(long, allow_negative_numbers = true, value_name = "K")]
    pub clients: Option<usize>,
    /// Fedavg: clients drawn (seeded) to train in each round [default: 10].
    #[arg(long, allow_negative_numbers = true, value_name = "C")]
    pub clients_per_round: Option<usize>,
    /// Fedavg: passes of a drawn client over its rows per round, in minibatches of --batch
    /// rows [default: 1].
    #[arg(long, allow_negative_numbers = true, value_name = "E")]
    pub local_epochs: Option<usize>,
    /// Fedavg: label skew; each class's rows on a rank are shared among its clients in
    /// proportions drawn from Dirichlet(A) (small A: few classes per client) [default: IID].
    #[arg(long, allow_negative_numbers = true, value_name = "A")]
    pub non_iid: Option<f64>,
    /// Allreduce the MLP's gradient layer by layer while the backward pass computes the layers
    /// below (nonblocking MPI_Iallreduce for mpi; a communication thread for the others).
    #[arg(long)]
    pub overlap: bool,
    /// With --overlap: gather layers into buckets of at least this many bytes before
    /// starting their allreduce (PyTorch DDP's buckets; 0: one allreduce per layer).
    #[arg(long, value_name = "BYTES", requires = "overlap")]
    pub bucket_bytes: Option<usize>,
    /// Bitwise-identical parameters for any number of ranks and any --allreduce: gradients of
    /// fixed blocks of rows, summed exactly (fixed point) instead of in floating point.
    #[arg(long)]
    pub reproducible: bool,
    /// With --reproducible: rows of a block, the unit a rank owns and whose gradient is
    /// computed whole (default: the batch in 64 blocks; more ranks need smaller blocks).
    #[arg(long, value_name = "R", requires = "reproducible")]
    pub block_rows: Option<usize>,
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

/// Options of `mpi-sgd bench-allreduce`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Algorithms to measure, comma-separated [default: every one].
    #[arg(long, value_delimiter = ',', value_parser = algorithm_parser())]
    pub algorithms: Option<Vec<&'static Algorithm>>,
    /// Smallest message, bytes (the sweep doubles from here).
    #[arg(long, default_value_t = 8, value_name = "BYTES")]
    pub min_bytes: usize,
    /// Largest message, bytes [default: 64 MiB].
    #[arg(long, default_value_t = 64 << 20, value_name = "BYTES")]
    pub max_bytes: usize,
    /// Exact message sizes in bytes, comma-separated, instead of the doubling sweep.
    #[arg(long, value_delimiter = ',', value_name = "BYTES,...")]
    pub sizes: Option<Vec<usize>>,
    /// Timed calls per size [default: 1000 up to 64 KiB, then fewer, down to 10 at 64 MiB].
    #[arg(long, value_name = "N")]
    pub iterations: Option<usize>,
    /// Untimed calls before the timed ones [default: a tenth of the timed ones, at least 2].
    #[arg(long, value_name = "N")]
    pub warmup: Option<usize>,
    /// Element type.
    #[arg(long, value_enum, default_value_t = Dtype::F64)]
    pub dtype: Dtype,
    /// HDF5 file for every latency (format mpi-sgd-bench/1).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Overwrite an existing output file.
    #[arg(long)]
    pub force: bool,
}

/// Options of `mpi-sgd convert`.
#[derive(Debug, Clone, Args)]
pub struct ConvertArgs {
    /// File to convert: CSV, LIBSVM/svmlight, or IDX images (MNIST's
    /// train-images-idx3-ubyte, gzipped or not).
    pub input: PathBuf,
    /// HDF5 file to write.
    pub output: PathBuf,
    /// Input format [default: libsvm for .svm/.libsvm/.svmlight, idx for names with "idx"
    /// in them (train-images-idx3-ubyte.gz), csv otherwise].
    #[arg(long, value_enum)]
    pub format: Option<InputFormat>,
    /// IDX: the labels of INPUT's images (train-labels-idx1-ubyte).
    #[arg(long, value_name = "PATH")]
    pub labels: Option<PathBuf>,
    /// IDX: test images, written to X_test (t10k-images-idx3-ubyte).
    #[arg(long, value_name = "PATH", requires = "test_labels")]
    pub test_images: Option<PathBuf>,
    /// IDX: the test images' labels, written to y_test (t10k-labels-idx1-ubyte).
    #[arg(long, value_name = "PATH", requires = "test_images")]
    pub test_labels: Option<PathBuf>,
    /// CSV field delimiter, one character [default: tab for .tsv, comma otherwise].
    #[arg(long, value_name = "CHAR")]
    pub delimiter: Option<char>,
    /// The CSV's first line names the columns [default: detected: a first line with any
    /// non-numeric field is a header].
    #[arg(long, conflicts_with = "no_header")]
    pub header: bool,
    /// The CSV's first line is data.
    #[arg(long)]
    pub no_header: bool,
    /// CSV column holding the label: a header name or a 0-based index [default: the last].
    #[arg(long, value_name = "NAME|INDEX")]
    pub label_column: Option<String>,
    /// LIBSVM: number of features (indices 1..=D) [default: the largest index in the file].
    #[arg(long, value_name = "D")]
    pub features: Option<usize>,
    /// Fraction of the rows written to X_test/y_test (the last rows, or random ones with
    /// --shuffle).
    #[arg(long, default_value_t = 0.0, value_name = "F")]
    pub test_fraction: f64,
    /// Shuffle the rows once here, so that training can read them in order.
    #[arg(long)]
    pub shuffle: bool,
    /// Seed of --shuffle.
    #[arg(long, default_value_t = 42, value_name = "S")]
    pub seed: u64,
    /// Type of the stored features.
    #[arg(long, value_enum, default_value_t = Dtype::F64)]
    pub dtype: Dtype,
    /// gzip level of the chunked datasets, 0 (none) to 9.
    #[arg(long, default_value_t = 4, value_name = "LEVEL")]
    pub compression: u8,
    /// Overwrite OUTPUT if it exists.
    #[arg(long)]
    pub force: bool,
}

/// The model and the rows it is applied to.
#[derive(Debug, Clone, Args)]
pub struct ModelInputArgs {
    /// Run file written by `mpi-sgd train --out`.
    #[arg(long = "model", value_name = "RUN.h5")]
    pub run_file: PathBuf,
    /// HDF5 data file (the layout of `train --data`).
    #[arg(long, value_name = "PATH.h5")]
    pub data: PathBuf,
    /// Rows to use [default: the test split when the file has one, else the training rows].
    #[arg(long, value_enum)]
    pub split: Option<Split>,
    #[command(flatten)]
    pub names: DatasetNames,
}

#[derive(Debug, Clone, Args)]
pub struct EvaluateArgs {
    #[command(flatten)]
    pub input: ModelInputArgs,
}

#[derive(Debug, Clone, Args)]
pub struct PredictArgs {
    #[command(flatten)]
    pub input: ModelInputArgs,
    /// HDF5 file to write: `label` [rows], `probability` [rows, classes].
    #[arg(long, value_name = "PRED.h5")]
    pub out: PathBuf,
    /// Overwrite --out if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Options of `mpi-sgd timeline`.
#[derive(Debug, Clone, Args)]
pub struct TimelineArgs {
    /// Run file of `mpi-sgd train`.
    #[arg(value_name = "RUN.h5")]
    pub run_file: PathBuf,
    /// Trace file to write (Chrome trace event format, JSON).
    #[arg(long, value_name = "TRACE.json")]
    pub out: PathBuf,
    /// Only steps A to B-1 (counted from 0, as the run file's rows); `A..` to the end.
    #[arg(long, value_name = "A..B")]
    pub steps: Option<String>,
    /// Overwrite --out if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Options of `mpi-sgd algorithms`.
#[derive(Debug, Clone, Args)]
pub struct AlgorithmsArgs {
    /// Rank counts of the cost table, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "P,...", requires = "bytes")]
    pub ranks: Option<Vec<usize>>,
    /// Message sizes of the cost table in bytes, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "BYTES,...",
        requires = "ranks"
    )]
    pub bytes: Option<Vec<usize>>,
}

/// `--allreduce` and `--algorithms`: the registered names, each with its summary in `--help`.
fn algorithm_parser() -> impl TypedValueParser<Value = &'static Algorithm> {
    let values = ALGORITHMS
        .iter()
        .map(|a| PossibleValue::new(a.name).help(a.summary));
    PossibleValuesParser::new(values)
        .map(|name| comm::algorithm(&name).expect("one of the possible values"))
}
