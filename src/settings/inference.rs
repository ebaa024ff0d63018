//! `evaluate`'s and `predict`'s options -> [`ModelInput`] and [`PredictSettings`]. Most checks
//! need the files (that the run file is one, that the widths fit), so they happen where the
//! files are opened; here only that `predict`'s output is none of its inputs.

use std::path::PathBuf;

use crate::cli::{EvaluateArgs, ModelInputArgs, PredictArgs};
use crate::data::spec::{DatasetNames, Split};
use crate::h5;

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
    /// A usage error if `--out` is the data file or the run file it reads.
    pub fn from_args(args: PredictArgs) -> anyhow::Result<Self> {
        let input = ModelInput::from(args.input);
        let inputs = [
            ("--data", input.data.as_path()),
            ("--model", input.run_file.as_path()),
        ];
        h5::refuse_output_over_input("--out", &args.out, &inputs)?;
        Ok(Self {
            input,
            out: args.out,
            force: args.force,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn predictions_may_not_replace_the_data_or_the_model() {
        let dir = std::env::temp_dir().join(format!("mpi-sgd-predict-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (data, model) = (dir.join("data.h5"), dir.join("run.h5"));
        std::fs::write(&data, b"x").unwrap();
        std::fs::write(&model, b"x").unwrap();
        let settings = |out: &std::path::Path| {
            let argv = ["mpi-sgd", "predict", "--model"]
                .map(String::from)
                .into_iter()
                .chain([
                    model.display().to_string(),
                    "--data".into(),
                    data.display().to_string(),
                ])
                .chain(["--out".into(), out.display().to_string(), "--force".into()]);
            match Cli::try_parse_from(argv).unwrap().command {
                Command::Predict(args) => PredictSettings::from_args(args),
                _ => unreachable!(),
            }
        };
        assert!(settings(&data).unwrap_err().to_string().contains("--data"));
        assert!(settings(&dir.join("./run.h5"))
            .unwrap_err()
            .to_string()
            .contains("--model"));
        assert!(settings(&dir.join("pred.h5")).is_ok());
        std::fs::remove_dir_all(&dir).ok();
    }
}
