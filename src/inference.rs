//! Using a trained model: `mpi-sgd evaluate` (loss, accuracy, confusion matrix) and
//! `mpi-sgd predict` (labels and class probabilities into an HDF5 file), on any number of
//! ranks. Rank r takes the r-th contiguous block of the rows ([`block`]): one hyperslab read.
//!
//! `predict` writes one file with serial HDF5: rank 0 creates it at a temporary name, then the
//! ranks write their blocks in rank order (a barrier between turns), and rank 0 renames it into
//! place. Every rank holds only its block of rows and probabilities.
//!
//! Not training: the model is read from a run file and never changed.

use ndarray::{s, Array2};

use crate::comm::Comm;
use crate::data::file::{DataFile, Labels, LABEL_VALUES};
use crate::data::spec::Split;
use crate::errors::{usage, ReportedElsewhere};
use crate::h5;
use crate::info_root;
use crate::interrupt::{signal_of, Interrupted, Signals};
use crate::memory;
use crate::partition::block;
use crate::real::Real;
use crate::runfile::saved::SavedModel;
use crate::settings::{ModelInput, PredictSettings};

/// This rank's rows, scaled as in training, and where they came from.
struct Block<F> {
    model: SavedModel<F>,
    file: DataFile,
    split: Split,
    rows: std::ops::Range<usize>,
    total_rows: usize,
}

/// Collective: opens the run and data files on every rank and checks that they fit.
fn open<F: Real>(input: &ModelInput, labels: Labels, comm: &Comm) -> anyhow::Result<Block<F>> {
    let model = comm.agree(SavedModel::<F>::load(&input.run_file))?;
    let file = comm.agree(DataFile::open(&input.data, &input.names, labels))?;
    let shown = input.data.display();
    let split = input.split.unwrap_or(if file.test_rows > 0 {
        Split::Test
    } else {
        Split::Train
    });
    let total_rows = file.split_rows(split);
    let fits = if file.features != model.features() {
        Err(usage(format!(
            "{shown}: {} features, but the model was trained on {}",
            file.features,
            model.features()
        )))
    } else if labels == Labels::Required && file.classes > model.classes() {
        Err(usage(format!(
            "{shown}: labels up to {}, but the model predicts {} classes",
            file.classes - 1,
            model.classes()
        )))
    } else if total_rows == 0 {
        Err(usage(format!("{shown}: no rows in the {split:?} split")))
    } else {
        Ok(())
    };
    comm.agree(fits)?;
    let rows = block(total_rows, comm.size(), comm.rank());
    // This rank's features, probabilities and labels, checked before they are read.
    let row_bytes = (file.features + model.classes()) * std::mem::size_of::<F>() + 4;
    comm.agree(memory::check(
        format!("{shown}: {} rows of {} features", total_rows, file.features),
        (rows.len() as u64).checked_mul(row_bytes as u64),
        "use more ranks",
    ))?;
    Ok(Block {
        rows,
        model,
        file,
        split,
        total_rows,
    })
}

impl<F: Real> Block<F> {
    /// The start of the summary line: what was applied to which rows.
    fn describe(&self, input: &ModelInput) -> String {
        format!(
            "model={} data={} split={} rows={}",
            input.run_file.display(),
            input.data.display(),
            split_name(self.split),
            self.total_rows
        )
    }

    fn scale(&self, x: &mut Array2<F>) {
        if let Some(scaling) = &self.model.scaling {
            scaling.apply(x);
        }
    }
}

/// Collective: prints loss, accuracy and the confusion matrix (rank 0).
pub fn evaluate<F: Real>(input: &ModelInput, comm: &Comm) -> anyhow::Result<()> {
    let part = open::<F>(input, Labels::Required, comm)?;
    let mut data = comm.agree(part.file.read_block::<F>(part.split, part.rows.clone()))?;
    part.scale(&mut data.x);
    let mut model = part.model.model(4096);
    let params = &part.model.params;
    let stats = model.evaluate(params, data.x.view(), &data.y);
    let classes = part.model.classes();
    let probabilities = model.predict(params, data.x.view());
    let mut confusion = vec![0u64; classes * classes];
    for (p, &label) in probabilities.rows().into_iter().zip(&data.y) {
        confusion[label as usize * classes + most_probable(p)] += 1;
    }
    let sums = comm.sum(&[stats.loss_sum, stats.correct, stats.rows]);
    let confusion = comm.sum(&confusion);
    if comm.is_root() {
        println!("confusion matrix (rows: true class, columns: predicted class)");
        print!("{}", confusion_table(&confusion, classes));
        println!(
            "{} loss={:.6} accuracy={:.6}",
            part.describe(input),
            sums[0] / sums[2],
            sums[1] / sums[2]
        );
    }
    Ok(())
}

/// Collective: writes the predicted class and the class probabilities of every row.
pub fn predict<F: Real>(args: &PredictSettings, comm: &Comm) -> anyhow::Result<()> {
    let signals = comm.agree(Signals::catch().map_err(anyhow::Error::from))?;
    let part = open::<F>(&args.input, Labels::Ignored, comm)?;
    let destination = match comm.is_root() {
        true => h5::check_destination("--out", &args.out, args.force),
        false => Ok(()),
    };
    comm.agree(destination)?;
    let mut x = comm.agree(part.file.read_features::<F>(part.split, part.rows.clone()))?;
    part.scale(&mut x);
    let mut model = part.model.model(4096);
    let probabilities = model.predict(&part.model.params, x.view());
    let labels: Vec<u32> = probabilities
        .rows()
        .into_iter()
        .map(|p| most_probable(p) as u32)
        .collect();
    let temporary = h5::temporary_path_of(&args.out, comm.broadcast_from_root(std::process::id()));
    let written = write_predictions(
        comm,
        &signals,
        &temporary,
        args,
        &part,
        &labels,
        &probabilities,
    );
    if written.is_err() && comm.is_root() {
        std::fs::remove_file(&temporary).ok();
    }
    written?;
    let moved = match comm.is_root() {
        true => h5::move_into_place(&temporary, &args.out, args.force),
        false => Ok(()),
    };
    comm.agree(moved)?;
    info_root!(comm, "wrote {}", args.out.display());
    if comm.is_root() {
        println!("{} out={}", part.describe(&args.input), args.out.display());
    }
    Ok(())
}

/// Collective: rank 0 creates the file at `temporary`, the ranks write their blocks in turn;
/// SIGTERM or SIGINT on any rank stop it before the next block. Errors are agreed, so every
/// rank returns at the same point.
fn write_predictions<F: Real>(
    comm: &Comm,
    signals: &Signals,
    temporary: &std::path::Path,
    args: &PredictSettings,
    part: &Block<F>,
    labels: &[u32],
    probabilities: &Array2<F>,
) -> anyhow::Result<()> {
    let label_values = comm.agree(part.file.label_values())?;
    let classes = part.model.classes();
    let created = match comm.is_root() {
        true => create_predictions::<F>(temporary, args, part, classes, &label_values),
        false => Ok(()),
    };
    comm.agree(created)?;
    for turn in 0..comm.size() {
        stop_if_interrupted(comm, signals, args)?;
        let written = match comm.rank() == turn {
            true => write_block(temporary, &part.rows, labels, probabilities),
            false => Ok(()),
        };
        comm.agree(written)?;
    }
    Ok(())
}

/// Collective: once SIGTERM or SIGINT reached any rank, every rank returns the signal's exit
/// code (the caller removes the temporary file) and rank 0 says why.
fn stop_if_interrupted(
    comm: &Comm,
    signals: &Signals,
    args: &PredictSettings,
) -> anyhow::Result<()> {
    let bits = comm.max(&[signals.bits()])[0];
    let Some((signal, name)) = signal_of(bits) else {
        return Ok(());
    };
    let interrupted = Interrupted { signal, name };
    if comm.is_root() {
        eprintln!(
            "mpi-sgd: {interrupted}: {} not written, no temporary file left",
            args.out.display()
        );
    }
    Err(ReportedElsewhere(interrupted.exit_code()).into())
}

/// The prediction file with its datasets sized and its provenance written; rows come later.
fn create_predictions<F: Real>(
    path: &std::path::Path,
    args: &PredictSettings,
    part: &Block<F>,
    classes: usize,
    label_values: &Option<Vec<i64>>,
) -> anyhow::Result<()> {
    let file = hdf5::File::create(path)?;
    h5::text_attr(&file, "format", "mpi-sgd-predictions/1")?;
    h5::text_attr(&file, "version", env!("CARGO_PKG_VERSION"))?;
    h5::text_attr(&file, "command_line", &crate::provenance::command_line())?;
    h5::text_attr(&file, "model", &args.input.run_file.display().to_string())?;
    h5::text_attr(&file, "data", &args.input.data.display().to_string())?;
    h5::text_attr(&file, "split", split_name(part.split))?;
    file.new_dataset::<u32>()
        .shape(part.total_rows)
        .create("label")?;
    file.new_dataset::<F>()
        .shape((part.total_rows, classes))
        .create("probability")?;
    if let Some(values) = label_values {
        h5::dataset(&file, LABEL_VALUES, values)?;
    }
    Ok(())
}

fn write_block<F: Real>(
    path: &std::path::Path,
    rows: &std::ops::Range<usize>,
    labels: &[u32],
    probabilities: &Array2<F>,
) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let file = hdf5::File::open_rw(path)?;
    file.dataset("label")?
        .write_slice(labels, s![rows.clone()])?;
    file.dataset("probability")?
        .write_slice(probabilities, s![rows.clone(), ..])?;
    file.close()?;
    Ok(())
}

/// The class with the highest probability in a row of probabilities.
fn most_probable<F: Real>(row: ndarray::ArrayView1<F>) -> usize {
    crate::model::stable::argmax(row.as_slice().expect("contiguous row"))
}

fn split_name(split: Split) -> &'static str {
    match split {
        Split::Train => "train",
        Split::Test => "test",
    }
}

/// The confusion matrix as aligned text, one row per true class.
fn confusion_table(counts: &[u64], classes: usize) -> String {
    let width = counts
        .iter()
        .map(|c| c.to_string().len())
        .max()
        .unwrap_or(1)
        .max(classes.to_string().len())
        + 1;
    let mut text = format!("{:>width$} |", "");
    for k in 0..classes {
        text += &format!("{k:>width$}");
    }
    text.push('\n');
    for (k, row) in counts.chunks(classes).enumerate() {
        text += &format!("{k:>width$} |");
        for c in row {
            text += &format!("{c:>width$}");
        }
        text.push('\n');
    }
    text
}
