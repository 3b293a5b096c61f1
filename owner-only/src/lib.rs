//! Files that only their owner may read or write: the master key file and the SQLite databases
//! (with their `-wal` and `-shm` companions).
//!
//! This is the one place that creates such files and the one place that decides whether an
//! existing file is readable by others. It is a crate of its own, with no dependencies, because
//! both `keys` (the master key file) and `storage` (the SQLite files) need it and neither of them
//! may depend on the other: `keys` must not pull in a database driver, and `storage` has no
//! business with cryptography.
//!
//! On platforms without Unix permission bits, files are created with the platform's defaults and
//! no file is ever reported as loose.

use std::fs::{self, Metadata, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// The permission bits of an owner-only file: read and write for the owner, nothing for anyone
/// else.
pub const MODE: u32 = 0o600;

/// Makes `options` create files with [`MODE`]. The mode is set by the `open` call itself, so
/// the file is never readable by others, not even for the moment between creating it and a
/// `chmod`.
pub fn restrict(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(MODE);
    }
    options
}

/// Whether a file with this metadata grants its group or others any access (mode & 0o077 != 0).
///
/// Callers that have the file open should pass the metadata of the open file, so the answer is
/// about the file actually read and not about whatever the path names a moment later.
#[cfg(unix)]
pub fn is_loose(metadata: &Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o077 != 0
}

/// Other platforms have no group or other permission bits to check.
#[cfg(not(unix))]
pub fn is_loose(_metadata: &Metadata) -> bool {
    false
}

/// Those of `paths` that exist and grant their group or others any access, in the given order.
/// A path that does not exist, or cannot be inspected, is not reported: there is nothing there
/// for others to read, or nothing this check could say about it.
pub fn loose_files<P: AsRef<Path>>(paths: impl IntoIterator<Item = P>) -> Vec<PathBuf> {
    paths
        .into_iter()
        .filter(|path| fs::metadata(path).is_ok_and(|metadata| is_loose(&metadata)))
        .map(|path| path.as_ref().to_owned())
        .collect()
}

/// Creates `path` as an empty owner-only file if nothing exists there yet, and says whether it
/// did. An existing file is left exactly as it is, permissions included; whether it is loose is
/// for [`loose_files`] to report.
///
/// `create_new` makes the existence check and the creation one step, so two processes starting
/// at the same moment cannot both create the file, and a symlink at `path` is never followed.
pub fn create_if_missing(path: &Path) -> io::Result<bool> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    match restrict(&mut options).open(path) {
        Ok(_) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(err) => Err(err),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_missing_file_is_created_owner_only_and_an_existing_one_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.db");
        assert!(create_if_missing(&path).unwrap());
        assert_eq!(mode(&path), 0o600);

        fs::write(&path, b"contents").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(!create_if_missing(&path).unwrap());
        assert_eq!(mode(&path), 0o640, "an existing file keeps its mode");
        assert_eq!(fs::read(&path).unwrap(), b"contents");
    }

    #[test]
    fn only_existing_files_open_to_group_or_others_are_loose() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("owner.key", 0o600, false),
            ("owner-read-only.key", 0o400, false),
            ("group-readable.key", 0o640, true),
            ("world-readable.key", 0o644, true),
            ("others-writable.key", 0o602, true),
        ];
        let mut paths = Vec::new();
        for (name, mode, loose) in cases {
            let path = dir.path().join(name);
            fs::write(&path, b"x").unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(is_loose(&fs::metadata(&path).unwrap()), loose, "{name}");
            paths.push(path);
        }
        paths.push(dir.path().join("missing.key"));
        let expected: Vec<PathBuf> = cases
            .iter()
            .filter(|(_, _, loose)| *loose)
            .map(|(name, _, _)| dir.path().join(name))
            .collect();
        assert_eq!(loose_files(&paths), expected);
    }
}
