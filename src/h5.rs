//! Generic HDF5 and file helpers: writing a file completely or not at all, checking an output
//! path before any work, attributes and datasets in one call. Knows no file layout of ours
//! (that is [`crate::runfile`]).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use hdf5::types::VarLenUnicode;
use hdf5::{Group, H5Type, Location};
use ndarray::Array2;

use crate::errors::usage;

/// Checks, before any work, that `path` can be written: not an existing file unless `force`,
/// and a directory that exists (created if missing) and accepts new files.
pub fn check_destination(option: &str, path: &Path, force: bool) -> anyhow::Result<()> {
    if path.is_dir() {
        return Err(usage(format!(
            "{option} {}: is a directory; give a file name",
            path.display()
        )));
    }
    if path.exists() && !force {
        return Err(usage(format!(
            "{option} {}: file exists; pass --force to overwrite it or choose another path",
            path.display()
        )));
    }
    let dir = parent_dir(path);
    fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))?;
    let probe = temporary_path(path);
    fs::File::create(&probe).with_context(|| {
        format!(
            "{option} {}: cannot write into {}",
            path.display(),
            dir.display()
        )
    })?;
    fs::remove_file(&probe).ok();
    Ok(())
}

/// Runs `contents` on a new HDF5 file at a temporary name beside `path`, then renames it into
/// place; on any failure the temporary file is removed and `path` is untouched.
pub fn write_atomically(
    path: &Path,
    contents: impl FnOnce(&hdf5::File) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let temporary = temporary_path(path);
    let written = hdf5::File::create(&temporary)
        .map_err(anyhow::Error::from)
        .and_then(|file| {
            contents(&file)?;
            file.close()?;
            Ok(())
        })
        .and_then(|()| fs::rename(&temporary, path).context("cannot move it into place"));
    if written.is_err() {
        fs::remove_file(&temporary).ok();
    }
    written.with_context(|| format!("writing {}", path.display()))
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The temporary name beside `path` that this process writes before renaming.
fn temporary_path(path: &Path) -> PathBuf {
    temporary_path_of(path, std::process::id())
}

/// The temporary name beside `path` of the writer with process id `pid` (several ranks
/// writing one file agree on rank 0's).
pub fn temporary_path_of(path: &Path, pid: u32) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    parent_dir(path).join(format!(".{name}.{pid}.tmp"))
}

pub fn unicode(text: &str) -> VarLenUnicode {
    // Only NUL bytes can make this fail; none of our strings carry them.
    text.replace('\0', "")
        .parse()
        .expect("string without NUL bytes")
}

/// A text attribute written by [`text_attr`].
pub fn read_text_attr(location: &Location, name: &str) -> hdf5::Result<String> {
    Ok(location
        .attr(name)?
        .read_scalar::<VarLenUnicode>()?
        .as_str()
        .to_string())
}

pub fn text_attr(location: &Location, name: &str, value: &str) -> hdf5::Result<()> {
    location
        .new_attr::<VarLenUnicode>()
        .create(name)?
        .write_scalar(&unicode(value))
}

pub fn scalar_attr<T: H5Type>(location: &Location, name: &str, value: &T) -> hdf5::Result<()> {
    location.new_attr::<T>().create(name)?.write_scalar(value)
}

pub fn dataset<T: H5Type>(group: &Group, name: &str, values: &[T]) -> hdf5::Result<()> {
    group
        .new_dataset_builder()
        .with_data(values)
        .create(name)
        .map(drop)
}

pub fn table_dataset<T: H5Type>(group: &Group, name: &str, table: &Array2<T>) -> hdf5::Result<()> {
    group
        .new_dataset_builder()
        .with_data(table)
        .create(name)
        .map(drop)
}

/// Whether `a` and `b` name the same file, however they are spelled: through symlinks, `./`
/// or `..`, or as two hard links of one file (the same device and inode). Paths that do not
/// exist yet are compared by their resolved directory and file name.
pub fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        (Err(_), Err(_)) => resolved(a).is_some_and(|r| resolved(b) == Some(r)),
        // One exists and the other does not: different files.
        _ => false,
    }
}

/// `path` with its directory resolved (symlinks, `.`, `..`): `None` if the directory does not
/// exist.
fn resolved(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?;
    Some(parent_dir(path).canonicalize().ok()?.join(name))
}

/// A usage error if the output `path` (of `option`) is one of `inputs` (option, path): writing
/// it would destroy the input, so `--force` does not allow it.
pub fn refuse_output_over_input(
    option: &str,
    path: &Path,
    inputs: &[(&str, &Path)],
) -> anyhow::Result<()> {
    match inputs.iter().find(|(_, input)| same_file(path, input)) {
        Some((input_option, input)) => Err(usage(format!(
            "{option} {}: is the {input_option} file {}; an output may not replace an input, \
             even with --force: choose another path",
            path.display(),
            input.display()
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mpi-sgd-{name}-{}", std::process::id()));
        fs::remove_dir_all(&dir).ok();
        fs::create_dir_all(dir.join("sub")).unwrap();
        dir
    }

    #[test]
    fn the_same_file_is_recognised_however_it_is_spelled() {
        let dir = scratch("same-file");
        let data = dir.join("data.h5");
        fs::write(&data, b"x").unwrap();
        std::os::unix::fs::symlink(&data, dir.join("link.h5")).unwrap();
        fs::hard_link(&data, dir.join("hard.h5")).unwrap();
        for spelling in [
            dir.join("link.h5"),
            dir.join("hard.h5"),
            dir.join("./data.h5"),
            dir.join("sub/../data.h5"),
        ] {
            assert!(same_file(&spelling, &data), "{}", spelling.display());
            assert!(refuse_output_over_input("--out", &spelling, &[("--data", &data)]).is_err());
        }
        // Two outputs that do not exist yet: compared by resolved directory and name.
        assert!(same_file(&dir.join("new.h5"), &dir.join("sub/../new.h5")));
        assert!(!same_file(&dir.join("new.h5"), &dir.join("other.h5")));
        assert!(!same_file(&dir.join("new.h5"), &data));
        let refused = refuse_output_over_input("--out", &dir.join("link.h5"), &[("--data", &data)]);
        let message = refused.unwrap_err().to_string();
        assert!(
            message.contains("--data") && message.contains("even with --force"),
            "{message}"
        );
        fs::remove_dir_all(&dir).ok();
    }
}
