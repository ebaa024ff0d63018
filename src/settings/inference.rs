//! `evaluate`'s and `predict`'s options -> [`ModelInput`] and [`PredictSettings`]. Their checks
//! need the files (that the run file is one, that the widths fit), so they happen where the
//! files are opened; here the options are only taken over.

use std::path::PathBuf;

use crate::cli::{EvaluateArgs, ModelInputArgs, PredictArgs};
use crate::data::spec::{DatasetNames, Split};

/// The model and the rows it is applied to.
#[derive(Debug, Clone)]
pub struct ModelInput {
    /// A run file of `train --out`.
    pub run_file: PathBuf,
    pub data: PathBuf,
    /// `None`: the test split when the file has one, else the training rows.
    pub split: Option<Split>,
    pub names: DatasetNames,
}

impl ModelInput {
    pub fn from_args(args: EvaluateArgs) -> Self {
        Self::from(args.input)
    }
}

impl From<ModelInputArgs> for ModelInput {
    fn from(args: ModelInputArgs) -> Self {
        Self {
            run_file: args.run_file,
            data: args.data,
            split: args.split,
            names: args.names,
        }
    }
}

#[derive(Debug, Clone)]
pub struct PredictSettings {
    pub input: ModelInput,
    /// Labels and probabilities go here.
    pub out: PathBuf,
    pub force: bool,
}

impl PredictSettings {
    pub fn from_args(args: PredictArgs) -> Self {
        Self {
            input: args.input.into(),
            out: args.out,
            force: args.force,
        }
    }
}
