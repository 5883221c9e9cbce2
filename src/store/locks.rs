//! Lock files next to the database (`<database>.<name>-lock`): advisory,
//! exclusive, taken without waiting (std `File::try_lock`, flock(2) on
//! Linux), released by the kernel when the process ends, however it ends.
//! Created 0600 like the database, and tightened to 0600 when an older
//! aliwatch left one more open. The holder's PID is written into the file
//! so a refused second process can name it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The outcome of [`try_lock`].
#[derive(Debug)]
pub enum Lock {
    /// This process holds it until the file is dropped.
    Held(File),
    /// Another process holds it; its PID when the file names one.
    Busy { pid: Option<u32> },
    /// The lock file could not be opened or locked.
    Unavailable(std::io::Error),
}

/// The path of lock `name` beside `database`.
pub fn lock_path(database: &Path, name: &str) -> PathBuf {
    let mut path = database.as_os_str().to_owned();
    path.push(format!(".{name}-lock"));
    PathBuf::from(path)
}

/// Takes lock `name` of `database` without waiting.
pub fn try_lock(database: &Path, name: &str) -> Lock {
    let path = lock_path(database, name);
    let mut file = match OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) => return Lock::Unavailable(e),
    };
    if let Ok(meta) = file.metadata() {
        if meta.permissions().mode() & 0o077 != 0 {
            let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
        }
    }
    match file.try_lock() {
        Ok(()) => {
            // Best effort: the PID is only for the message of a second process.
            let _ = file
                .set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| writeln!(file, "{}", std::process::id()))
                .and_then(|()| file.flush());
            Lock::Held(file)
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut s = String::new();
            let pid = file
                .read_to_string(&mut s)
                .ok()
                .and_then(|_| s.trim().parse().ok());
            Lock::Busy { pid }
        }
        Err(std::fs::TryLockError::Error(e)) => Lock::Unavailable(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_files_are_private_and_exclusive_and_name_their_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("a.db");
        let held = try_lock(&db, "run");
        assert!(matches!(held, Lock::Held(_)), "{held:?}");
        let mode = std::fs::metadata(lock_path(&db, "run"))
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // A second open file description conflicts, even in one process.
        match try_lock(&db, "run") {
            Lock::Busy { pid } => assert_eq!(pid, Some(std::process::id())),
            other => panic!("{other:?}"),
        }
        drop(held);
        assert!(matches!(try_lock(&db, "run"), Lock::Held(_)));
    }

    #[test]
    fn an_old_world_readable_lock_file_is_made_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("a.db");
        let path = lock_path(&db, "notify");
        std::fs::write(&path, "").expect("writes");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(try_lock(&db, "notify"), Lock::Held(_)));
        let mode = std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
