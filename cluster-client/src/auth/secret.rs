//! The cluster secret: 32 random bytes in a file only the owner can read, created by whichever
//! process needs it first.
//!
//! The file is `<dir>/<name>.secret`, in this user's private directory of cluster files (see
//! [`super::dir`]). A new secret is written to a temporary file of mode 0600
//! and hard-linked to its name, which fails if another process got there first; that process's
//! secret is then read instead. A directory or file that others may read or write is refused with
//! an error that says how to fix it.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::AuthError;
use super::dir::{check_private, ensure_private_dir, io_error};

/// Bytes of a generated secret.
pub(crate) const SECRET_LEN: usize = 32;

/// The cluster secret: key material that every member must hold to join. Its `Debug` shows
/// nothing of it.
///
/// By default each process reads (or creates) it from a file only its user can read; set one with
/// [`Options::secret`](crate::Options::secret) to share it otherwise.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(std::sync::Arc<[u8]>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// A secret given by the user: any bytes, best 32 random ones or more.
    pub fn new(bytes: impl AsRef<[u8]>) -> Secret {
        Secret(bytes.as_ref().into())
    }

    /// The key bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The secret of `name` in `dir`, created (with `dir`) if missing.
    pub(crate) fn load_or_create(dir: &Path, name: &str) -> Result<Secret, AuthError> {
        let uid = rustix::process::geteuid().as_raw();
        ensure_private_dir(dir, uid)?;
        let path = dir.join(format!("{name}.secret"));
        match read_private(&path, uid) {
            Err(AuthError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {}
            other => return other,
        }
        create(dir, &path)?;
        read_private(&path, uid)
    }
}

/// Reads a secret file, refusing one owned by someone else or open to others.
fn read_private(path: &Path, uid: u32) -> Result<Secret, AuthError> {
    let meta = fs::symlink_metadata(path).map_err(|e| io_error(path, e))?;
    if !meta.is_file() {
        return Err(AuthError::Insecure {
            path: path.to_owned(),
            problem: "is not a regular file".to_owned(),
            fix: format!("remove it: rm {}", path.display()),
        });
    }
    check_private(path, &meta, uid, "chmod 600")?;
    let bytes = fs::read(path).map_err(|e| io_error(path, e))?;
    if bytes.len() < SECRET_LEN {
        return Err(AuthError::Insecure {
            path: path.to_owned(),
            problem: format!("holds {} bytes, fewer than {SECRET_LEN}", bytes.len()),
            fix: format!(
                "remove it and let the next process create it: rm {}",
                path.display()
            ),
        });
    }
    Ok(Secret(bytes.into()))
}

/// Writes a fresh secret to a private temporary file and links it to `path`; if another process
/// linked its own first, leaves that one.
fn create(dir: &Path, path: &Path) -> Result<(), AuthError> {
    let mut secret = [0u8; SECRET_LEN];
    getrandom::fill(&mut secret)?;
    // Unique to this call: racing creators of one process (two channels on a port) write apart.
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("secret"),
        std::process::id(),
        CALLS.fetch_add(1, Ordering::Relaxed)
    ));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut file| {
            file.write_all(&secret)?;
            file.sync_all()
        });
    if let Err(err) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io_error(&tmp, err));
    }
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(io_error(path, err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    /// A directory not yet made, in a scratch directory removed when the guard drops (a failed
    /// test's included).
    fn scratch_dir() -> (tempfile::TempDir, PathBuf) {
        let scratch = tempfile::tempdir().expect("scratch dir");
        let dir = scratch.path().join("inner");
        (scratch, dir)
    }

    #[test]
    fn the_first_caller_creates_it_and_the_others_read_the_same() {
        let (_scratch, dir) = scratch_dir();
        let first = Secret::load_or_create(&dir, "7777").expect("created");
        assert_eq!(first.as_bytes().len(), SECRET_LEN);
        let again = Secret::load_or_create(&dir, "7777").expect("read");
        assert_eq!(first, again);
        let other = Secret::load_or_create(&dir, "7778").expect("another port");
        assert_ne!(first, other, "one secret per name");
        let mode = |p: &Path| fs::metadata(p).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("7777.secret")), 0o600);
    }

    #[test]
    fn racing_creators_agree() {
        let (_scratch, dir) = scratch_dir();
        let secrets: Vec<Secret> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| Secret::load_or_create(&dir, "race").expect("secret")))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        assert!(secrets.windows(2).all(|pair| pair[0] == pair[1]));
    }

    #[test]
    fn loose_permissions_are_refused_with_the_fix() {
        let (_scratch, dir) = scratch_dir();
        Secret::load_or_create(&dir, "p").expect("created");
        let file = dir.join("p.secret");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = Secret::load_or_create(&dir, "p").expect_err("refused");
        let text = err.to_string();
        assert!(text.contains("mode 644"), "{text}");
        assert!(
            text.contains(&format!("chmod 600 {}", file.display())),
            "{text}"
        );
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).expect("chmod");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        let text = Secret::load_or_create(&dir, "p")
            .expect_err("refused")
            .to_string();
        assert!(
            text.contains(&format!("chmod 700 {}", dir.display())),
            "{text}"
        );
    }

    #[test]
    fn a_short_file_is_refused() {
        let (_scratch, dir) = scratch_dir();
        ensure_private_dir(&dir, rustix::process::geteuid().as_raw()).expect("dir");
        let file = dir.join("s.secret");
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
            .and_then(|mut f| f.write_all(b"short"))
            .expect("written");
        let text = Secret::load_or_create(&dir, "s")
            .expect_err("refused")
            .to_string();
        assert!(text.contains("fewer than 32"), "{text}");
    }
}
