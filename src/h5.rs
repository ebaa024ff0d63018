//! Generic HDF5 and file helpers: writing a file completely or not at all, checking an output
//! path before any work, attributes and datasets in one call. Knows no file layout of ours
//! (that is [`crate::runfile`]).

use std::fs;
use std::io::ErrorKind;
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

/// Checks that the input `path` exists and is a regular file: a named pipe, a process
/// substitution (`<(...)`) or a device cannot be read the way the command needs (`why`).
pub fn require_regular_file(what: &str, path: &Path, why: &str) -> anyhow::Result<()> {
    match fs::metadata(path) {
        Err(_) => Err(usage(format!("{what} {}: no such file", path.display()))),
        Ok(meta) if !meta.is_file() => Err(usage(format!(
            "{what} {}: not a regular file (a pipe, a device or a directory); {why}",
            path.display()
        ))),
        Ok(_) => Ok(()),
    }
}

/// Checks that the HDF5 library can open `path`: it takes file names as UTF-8 text, and Linux
/// allows any bytes (files are written under a UTF-8 temporary name and renamed, so any name
/// works for outputs).
pub fn require_utf8_name(what: &str, path: &Path) -> anyhow::Result<()> {
    match path.to_str() {
        Some(_) => Ok(()),
        None => Err(usage(format!(
            "{what} {}: the file name is not valid UTF-8, which the HDF5 library cannot open; rename the file",
            path.display()
        ))),
    }
}

/// Runs `contents` on a new HDF5 file at a temporary name beside `path`, then moves it into
/// place ([`move_into_place`]); on any failure the temporary file is removed and `path` is
/// untouched.
pub fn write_atomically(
    path: &Path,
    replace: bool,
    contents: impl FnOnce(&hdf5::File) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let temporary = temporary_path(path);
    let written = hdf5::File::create(&temporary)
        .map_err(anyhow::Error::from)
        .and_then(|file| {
            contents(&file)?;
            file.close()?;
            Ok(())
        });
    match written {
        Ok(()) => move_into_place(&temporary, path, replace),
        Err(e) => {
            fs::remove_file(&temporary).ok();
            Err(e.context(format!("writing {}", path.display())))
        }
    }
}

/// Moves the complete file `temporary` to `path`. With `replace` (`--force`, or a file this
/// run owns), a rename, which replaces what is there. Without, the move must not replace a
/// file that appeared after the check before work (another job started on the same new path):
/// a hard link fails if `path` exists, atomically, and the temporary name is then removed;
/// where the file system has no hard links, a rename after one more check. A job that finds
/// its path taken keeps its result under a name beside it, and says which.
pub fn move_into_place(temporary: &Path, path: &Path, replace: bool) -> anyhow::Result<()> {
    let moved = match replace {
        true => fs::rename(temporary, path),
        false => match fs::hard_link(temporary, path) {
            Ok(()) => fs::remove_file(temporary),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let kept = keep_beside(temporary, path);
                return Err(anyhow::anyhow!(
                    "{}: another job wrote this file while this one ran; it was left alone, \
                     and this job's result is kept as {}",
                    path.display(),
                    kept.display()
                ));
            }
            Err(_) if !path.exists() => fs::rename(temporary, path),
            Err(e) => Err(e),
        },
    };
    moved.map_err(|e| {
        fs::remove_file(temporary).ok();
        anyhow::anyhow!("cannot move {} into place: {e}", path.display())
    })
}

/// Gives the complete file `temporary` a visible name beside `path` (`NAME-PID.EXT`, never
/// replacing anything), or leaves it where it is; returns where it is.
fn keep_beside(temporary: &Path, path: &Path) -> PathBuf {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{}.{}", std::process::id(), ext.to_string_lossy()),
        None => format!("{stem}-{}", std::process::id()),
    };
    let kept = parent_dir(path).join(name);
    match fs::hard_link(temporary, &kept).and_then(|()| fs::remove_file(temporary)) {
        Ok(()) => kept,
        Err(_) => temporary.to_path_buf(),
    }
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

    #[test]
    fn a_file_that_appears_meanwhile_is_not_replaced_and_the_result_is_kept() {
        let dir = scratch("no-replace");
        let path = dir.join("run.h5");
        // Another job creates the path while this one writes.
        let written = write_atomically(&path, false, |file| {
            fs::write(&path, b"the other job's result").unwrap();
            text_attr(file, "mine", "yes")?;
            Ok(())
        });
        let message = written.unwrap_err().to_string();
        assert_eq!(fs::read(&path).unwrap(), b"the other job's result");
        let kept = dir.join(format!("run-{}.h5", std::process::id()));
        assert!(message.contains(&kept.display().to_string()), "{message}");
        let file = hdf5::File::open(&kept).unwrap();
        assert_eq!(read_text_attr(&file, "mine").unwrap(), "yes");
        assert!(!temporary_path(&path).exists());
        // With replace (--force) the same race replaces the file; without a race, no-replace
        // writes as usual.
        write_atomically(&path, true, |file| Ok(text_attr(file, "mine", "forced")?)).unwrap();
        let fresh = dir.join("fresh.h5");
        write_atomically(&fresh, false, |file| Ok(text_attr(file, "mine", "new")?)).unwrap();
        for (file, expected) in [(&path, "forced"), (&fresh, "new")] {
            let file = hdf5::File::open(file).unwrap();
            assert_eq!(read_text_attr(&file, "mine").unwrap(), expected);
        }
        fs::remove_dir_all(&dir).ok();
    }
}
