//! This user's private directory of cluster files: the secrets, and with the Unix-socket transport
//! the sockets and their lock files. It is `$XDG_RUNTIME_DIR/cluster-client/` when that variable is
//! set, else `<temp dir>/cluster-client-<uid>/`, of mode 0700 and owned by this user; a directory
//! or file that others may read or write is refused with an error that says how to fix it.

use std::fs::{self, DirBuilder};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::AuthError;

/// Permission bits that must be clear on the directory and its files: any access by group or others.
const OTHERS: u32 = 0o077;

/// This user's directory of cluster files: `$XDG_RUNTIME_DIR/cluster-client`, else
/// `<temp dir>/cluster-client-<uid>`.
pub(crate) fn default_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(runtime) if !runtime.is_empty() => Path::new(&runtime).join("cluster-client"),
        _ => std::env::temp_dir().join(format!(
            "cluster-client-{}",
            rustix::process::geteuid().as_raw()
        )),
    }
}

/// An i/o failure on `path`.
pub(crate) fn io_error(path: &Path, source: std::io::Error) -> AuthError {
    AuthError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Creates `dir` with mode 0700 if missing; refuses one owned by someone else or open to others.
pub(crate) fn ensure_private_dir(dir: &Path, uid: u32) -> Result<(), AuthError> {
    match DirBuilder::new().recursive(true).mode(0o700).create(dir) {
        Ok(()) => {}
        Err(err) if err.kind() == ErrorKind::AlreadyExists => {}
        Err(err) => return Err(io_error(dir, err)),
    }
    let meta = fs::symlink_metadata(dir).map_err(|e| io_error(dir, e))?;
    if !meta.is_dir() {
        return Err(AuthError::Insecure {
            path: dir.to_owned(),
            problem: "is not a directory".to_owned(),
            fix: format!(
                "remove it, or point XDG_RUNTIME_DIR elsewhere: rm {}",
                dir.display()
            ),
        });
    }
    check_private(dir, &meta, uid, "chmod 700")
}

/// Refuses `path` if it is not this user's (`uid`) or others may access it; `chmod` is the fix.
pub(crate) fn check_private(
    path: &Path,
    meta: &fs::Metadata,
    uid: u32,
    chmod: &str,
) -> Result<(), AuthError> {
    if meta.uid() != uid {
        return Err(AuthError::Insecure {
            path: path.to_owned(),
            problem: format!("is owned by uid {}, not by this user ({uid})", meta.uid()),
            fix: format!("remove it, or run as its owner: rm -r {}", path.display()),
        });
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & OTHERS != 0 {
        return Err(AuthError::Insecure {
            path: path.to_owned(),
            problem: format!("has mode {mode:03o}: others may read or change it"),
            fix: format!("{chmod} {}", path.display()),
        });
    }
    Ok(())
}
