//! Lock files next to the database (`<database>.<name>-lock`): advisory,
//! exclusive, taken without waiting (std `File::try_lock`, flock(2) on
//! Linux), released by the kernel when the process ends, however it ends.
//!
//! Created 0640 (the umask may narrow it; the packaged unit's is 0027): the
//! `aliwatch` group may read who holds the database and where its control
//! socket is, nobody else may; a file an older aliwatch left open to
//! others is tightened. The holder writes what it is into the file, one
//! item per line: its PID, its role (`run`, `sync`, …) and, for `run`, the
//! path of its control socket once it listens, so a second process can name
//! the holder or talk to it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The outcome of [`try_lock`] and [`probe`].
#[derive(Debug)]
pub enum Lock {
    /// This process holds it until the file is dropped.
    Held(File),
    /// Another process holds it: what it wrote into the file.
    Busy(Holder),
    /// The lock file could not be opened or locked.
    Unavailable(std::io::Error),
}

/// What the holder of a lock says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holder {
    pub pid: Option<u32>,
    /// `run`, `sync`, …; `None` for an older aliwatch that wrote only its PID.
    pub role: Option<String>,
    /// The control socket of a `run` that listens on one.
    pub socket: Option<PathBuf>,
}

impl Holder {
    /// Parses the lock file's lines (see the module docs).
    pub fn parse(text: &str) -> Holder {
        let mut lines = text.lines().map(str::trim);
        let pid = lines.next().and_then(|l| l.parse().ok());
        let role = lines.next().filter(|l| !l.is_empty()).map(str::to_owned);
        let socket = lines.next().filter(|l| !l.is_empty()).map(PathBuf::from);
        Holder { pid, role, socket }
    }

    /// "pid 42" or "" for messages.
    pub fn pid_words(&self) -> String {
        self.pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    }
}

/// The path of lock `name` beside `database`.
pub fn lock_path(database: &Path, name: &str) -> PathBuf {
    let mut path = database.as_os_str().to_owned();
    path.push(format!(".{name}-lock"));
    PathBuf::from(path)
}

/// Takes lock `name` of `database` without waiting, as `role`.
pub fn try_lock(database: &Path, name: &str) -> Lock {
    try_lock_as(database, name, "")
}

/// [`try_lock`], recording `role` beside the PID.
pub fn try_lock_as(database: &Path, name: &str, role: &str) -> Lock {
    let path = lock_path(database, name);
    let mut file = match OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o640)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) => return Lock::Unavailable(e),
    };
    super::own_like_directory(&file, &path);
    if let Ok(meta) = file.metadata() {
        let mode = meta.permissions().mode();
        if mode & 0o037 != 0 {
            let _ = file.set_permissions(std::fs::Permissions::from_mode(mode & 0o740));
        }
    }
    match file.try_lock() {
        Ok(()) => {
            // Best effort: the lines are only for the messages of others.
            let _ = describe(&mut file, role, None);
            Lock::Held(file)
        }
        Err(std::fs::TryLockError::WouldBlock) => Lock::Busy(read_holder(&mut file)),
        Err(std::fs::TryLockError::Error(e)) => Lock::Unavailable(e),
    }
}

/// Rewrites the held lock file's lines: this PID, `role` and `socket`.
pub fn describe(file: &mut File, role: &str, socket: Option<&Path>) -> std::io::Result<()> {
    file.set_len(0)?;
    file.rewind()?;
    let socket = socket.map(|s| s.display().to_string()).unwrap_or_default();
    write!(file, "{}\n{role}\n{socket}\n", std::process::id())?;
    file.flush()
}

fn read_holder(file: &mut File) -> Holder {
    let mut s = String::new();
    let _ = file.rewind();
    // A few hundred bytes at most; a larger file is not ours.
    let _ = file.take(4096).read_to_string(&mut s);
    Holder::parse(&s)
}

/// Whether lock `name` of `database` is held, without creating the file or
/// needing write access (a member of the `aliwatch` group may only read
/// it): a shared lock is tried on a read-only descriptor and dropped at
/// once. `Held` here means nobody held it (the returned file holds only
/// the shared probe lock and is to be dropped).
pub fn probe(database: &Path, name: &str) -> Lock {
    let path = lock_path(database, name);
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) => return Lock::Unavailable(e),
    };
    match file.try_lock_shared() {
        Ok(()) => Lock::Held(file),
        Err(std::fs::TryLockError::WouldBlock) => Lock::Busy(read_holder(&mut file)),
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
        let held = try_lock_as(&db, "run", "run");
        assert!(matches!(held, Lock::Held(_)), "{held:?}");
        let mode = std::fs::metadata(lock_path(&db, "run"))
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o007, 0, "others get nothing: {mode:o}");
        // A second open file description conflicts, even in one process.
        match try_lock(&db, "run") {
            Lock::Busy(h) => {
                assert_eq!(h.pid, Some(std::process::id()));
                assert_eq!(h.role.as_deref(), Some("run"));
                assert_eq!(h.socket, None);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(probe(&db, "run"), Lock::Busy(_)));
        let Lock::Held(mut file) = held else {
            unreachable!()
        };
        describe(
            &mut file,
            "run",
            Some(Path::new("/run/aliwatch/control.sock")),
        )
        .expect("writes");
        match probe(&db, "run") {
            Lock::Busy(h) => assert_eq!(
                h.socket.as_deref(),
                Some(Path::new("/run/aliwatch/control.sock"))
            ),
            other => panic!("{other:?}"),
        }
        drop(file);
        assert!(matches!(probe(&db, "run"), Lock::Held(_)));
        assert!(matches!(try_lock(&db, "run"), Lock::Held(_)));
    }

    #[test]
    fn an_old_world_readable_lock_file_is_made_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("a.db");
        let path = lock_path(&db, "notify");
        std::fs::write(&path, "").expect("writes");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        assert!(matches!(try_lock(&db, "notify"), Lock::Held(_)));
        let mode = std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
    }

    #[test]
    fn a_lock_file_of_an_older_aliwatch_names_only_its_pid() {
        assert_eq!(
            Holder::parse("1234\n"),
            Holder {
                pid: Some(1234),
                role: None,
                socket: None
            }
        );
        assert_eq!(Holder::parse(""), Holder::default());
    }
}
