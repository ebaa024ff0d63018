//! Small value types every layer names: the element type and the model kind. A leaf: it
//! imports nothing of ours. Not the place for validation or defaults (those are
//! [`crate::settings`]).

use clap::ValueEnum;

/// The model a run trains.
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

    /// The kind a run file names (`/config` `model`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::value_variants()
            .iter()
            .copied()
            .find(|k| k.name() == name)
    }
}

/// The update rule (`--optimizer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OptimizerKind {
    /// SGD with momentum and L2.
    Sgd,
    /// Adam, with L2 added to the gradient.
    Adam,
    /// Adam with decoupled weight decay.
    Adamw,
}

impl OptimizerKind {
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
            OptimizerKind::Adamw => "adamw",
        }
    }
}

/// How the ranks train together (`--algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TrainingAlgorithm {
    /// Synchronous SGD: the gradient is averaged every step (local SGD with --average-every).
    Sync,
    /// Elastic Averaging SGD: local models pulled toward a centre every --average-every steps.
    Easgd,
    /// Federated averaging: sampled clients train locally, the average of their models (by
    /// rows) is the next round's model.
    Fedavg,
    /// Asynchronous SGD: workers pull the parameters from --servers ranks and push gradients
    /// without waiting for each other.
    AsyncPs,
}

impl TrainingAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            TrainingAlgorithm::Sync => "sync",
            TrainingAlgorithm::Easgd => "easgd",
            TrainingAlgorithm::Fedavg => "fedavg",
            TrainingAlgorithm::AsyncPs => "async-ps",
        }
    }
}

/// How the learning rate falls after the warm-up (`--lr-schedule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LrDecay {
    /// The same rate throughout.
    Constant,
    /// Half a cosine, from the rate to 0 at the last step.
    Cosine,
    /// Multiplied by --lr-gamma every --lr-step-epochs epochs.
    Step,
}

impl LrDecay {
    pub fn name(self) -> &'static str {
        match self {
            LrDecay::Constant => "constant",
            LrDecay::Cosine => "cosine",
            LrDecay::Step => "step",
        }
    }
}

/// The floating-point type of data, parameters and gradients.
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

/// A format `convert` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputFormat {
    Csv,
    Libsvm,
    /// MNIST's IDX files (images and labels, unsigned bytes), gzipped or not.
    Idx,
}

impl InputFormat {
    pub fn name(self) -> &'static str {
        match self {
            InputFormat::Csv => "csv",
            InputFormat::Libsvm => "libsvm",
            InputFormat::Idx => "idx",
        }
    }
}
