//! A trained model read back from a run file: its kind and layer widths (`/config`), its
//! parameters (`/model/params`) and the feature scaling it was trained with
//! (`/preprocessing`, present with `--standardize`).
//!
//! Not the writer (`runfile`), nor the use of the model (`inference`).

use std::path::Path;

use super::FORMAT;
use crate::data::standardize::Standardizer;
use crate::errors::usage;
use crate::h5::{read_text_attr, require_utf8_name};
use crate::kinds::{Dtype, ModelKind};
use crate::model::{self, Model};
use crate::real::Real;

pub struct SavedModel<F> {
    pub kind: ModelKind,
    /// [features, hidden..., classes].
    pub widths: Vec<usize>,
    pub params: Vec<F>,
    pub scaling: Option<Standardizer>,
}

/// Opens `path` (given as `option`) as a run file, or says why it is not one.
pub(super) fn open_run_file(option: &str, path: &Path) -> anyhow::Result<hdf5::File> {
    let shown = path.display();
    let not_run_file = || {
        usage(format!(
            "{option} {shown}: not a run file of `mpi-sgd train`"
        ))
    };
    if !path.is_file() {
        return Err(usage(format!("{option} {shown}: no such file")));
    }
    require_utf8_name(option, path)?;
    let file = hdf5::File::open(path).map_err(|_| not_run_file())?;
    let format = read_text_attr(&file, "format").map_err(|_| not_run_file())?;
    if format != FORMAT || !file.link_exists("model/params") {
        return Err(not_run_file());
    }
    Ok(file)
}

/// The type the parameters were trained and stored in.
pub fn stored_dtype(path: &Path) -> anyhow::Result<Dtype> {
    let file = open_run_file("--model", path)?;
    let params = file.dataset("model/params")?;
    Ok(match read_text_attr(&params, "dtype")?.as_str() {
        "f32" => Dtype::F32,
        _ => Dtype::F64,
    })
}

impl<F: Real> SavedModel<F> {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let file = open_run_file("--model", path)?;
        let config = file.group("config")?;
        let kind =
            ModelKind::from_name(&read_text_attr(&config, "model")?).unwrap_or(ModelKind::Mlp);
        let count = |name: &str| -> anyhow::Result<usize> {
            Ok(config.attr(name)?.read_scalar::<u64>()? as usize)
        };
        let mut widths = vec![count("features")?];
        for width in read_text_attr(&config, "hidden")?
            .split(',')
            .filter(|w| !w.is_empty())
        {
            widths.push(width.parse()?);
        }
        widths.push(count("classes")?);
        let params = file.dataset("model/params")?.read_raw::<F>()?;
        let scaling = match file.group("preprocessing") {
            Ok(group) => Some(Standardizer {
                mean: group.dataset("mean")?.read_raw()?,
                std: group.dataset("std")?.read_raw()?,
            }),
            Err(_) => None,
        };
        let saved = Self {
            kind,
            widths,
            params,
            scaling,
        };
        anyhow::ensure!(
            saved.model(1).n_params() == saved.params.len(),
            "{}: /model/params has {} values, the model {} needs",
            path.display(),
            saved.params.len(),
            saved.model(1).n_params()
        );
        Ok(saved)
    }

    pub fn features(&self) -> usize {
        self.widths[0]
    }

    pub fn classes(&self) -> usize {
        *self.widths.last().expect("at least features and classes")
    }

    /// The model, with buffers for `max_rows` rows a call.
    pub fn model(&self, max_rows: usize) -> Box<dyn Model<F>> {
        model::build(self.kind, &self.widths, max_rows)
    }
}
