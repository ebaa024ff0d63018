//! A run file's measured times read back, rank by rank: the per-step seconds columns, the
//! per-epoch evaluation, the checkpoints and the traffic, for the timeline.
//!
//! Not the writer (`runfile`), nor the trace itself (`timeline`).

use std::path::Path;

use hdf5::types::VarLenUnicode;
use ndarray::Array2;

use super::saved::open_run_file;
use crate::record::SECONDS;

/// The times of one run, [steps, ranks] per step column.
pub struct RunTimes {
    /// Each rank's host name, by rank.
    pub hostnames: Vec<String>,
    /// The seconds columns by name ([`SECONDS`]).
    pub seconds: Vec<(&'static str, Array2<f64>)>,
    pub bytes_sent: Array2<u64>,
    pub messages_sent: Array2<u64>,
    /// [epochs, ranks] evaluation seconds.
    pub eval: Array2<f64>,
    /// Steps of a full epoch (evaluation follows each epoch's last step).
    pub steps_per_epoch: usize,
    /// The step after which each checkpoint was written, and its seconds (rank 0's).
    pub checkpoints: Vec<(u64, f64)>,
    /// Whether the gradient's allreduce overlapped the backward pass (`--overlap`).
    pub overlap: bool,
}

impl RunTimes {
    /// Reads `path`, given as `option`.
    pub fn load(option: &str, path: &Path) -> anyhow::Result<Self> {
        let file = open_run_file(option, path)?;
        let timings = file.group("timings")?;
        let comm = file.group("comm")?;
        let config = file.group("config")?;
        let attr = |name: &str| config.attr(name).and_then(|a| a.read_scalar::<u64>());
        let steps_per_epoch = attr("samples")?.div_ceil(attr("batch")?.max(1)) as usize;
        let hostnames: Vec<VarLenUnicode> = file.dataset("ranks/hostname")?.read_raw()?;
        let mut seconds = Vec::new();
        for name in SECONDS {
            seconds.push((name, timings.dataset(name)?.read_2d()?));
        }
        let steps: Vec<u64> = timings.dataset("checkpoint_step")?.read_raw()?;
        let checkpoint_s: Vec<f64> = timings.dataset("checkpoint")?.read_raw()?;
        Ok(Self {
            hostnames: hostnames.iter().map(|h| h.as_str().to_owned()).collect(),
            seconds,
            bytes_sent: comm.dataset("bytes_sent")?.read_2d()?,
            messages_sent: comm.dataset("messages_sent")?.read_2d()?,
            eval: timings.dataset("eval")?.read_2d()?,
            steps_per_epoch,
            checkpoints: steps.into_iter().zip(checkpoint_s).collect(),
            overlap: config
                .attr("overlap")
                .and_then(|a| a.read_scalar::<u64>())?
                != 0,
        })
    }

    /// Steps recorded.
    pub fn steps(&self) -> usize {
        self.bytes_sent.nrows()
    }

    /// The seconds column `name` ([`SECONDS`]).
    pub fn column(&self, name: &str) -> &Array2<f64> {
        &self
            .seconds
            .iter()
            .find(|(n, _)| *n == name)
            .expect("a seconds column")
            .1
    }
}
