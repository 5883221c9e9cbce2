//! The SQLite store: the one owner of aliwatch's durable state.
//!
//! One database file (mode 0600, directory created if missing) in WAL mode
//! with `foreign_keys=ON` and a busy timeout. The schema is versioned by
//! `PRAGMA user_version` with append-only migrations (`migrations.rs`).
//! Every state change that belongs together is written in one transaction,
//! so a crash at any point leaves the database consistent: an email is
//! either processed with all its effects or not at all.
//!
//! A leaf: it speaks the typed rows of [`crate::facts`] and the vocabulary
//! of [`crate::model`], and decides nothing. Typed functions live in
//! per-area files: `orders.rs` (recording emails, manual commands),
//! `facts.rs` (loading what the status derivation reads), `imap_state.rs`,
//! `tracking.rs`, `notifications.rs`, `counters.rs` (what `/metrics` reads);
//! the lock files beside the database in `locks.rs`.

pub mod counters;
pub mod facts;
pub mod imap_state;
pub mod locks;
pub mod migrations;
pub mod notifications;
pub mod orders;
pub mod retained;
pub mod tracking;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rusqlite::{Connection, OpenFlags};

/// How long a writer waits for another process's lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// An open aliwatch database.
pub struct Store {
    pub(crate) conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it to
    /// the current schema.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                create_private_dir(dir).with_context(|| {
                    format!("cannot create database directory {}", dir.display())
                })?;
            }
        }
        let existed = path.exists();
        if !existed {
            create_private_file(path)
                .with_context(|| format!("cannot create database {}", path.display()))?;
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("cannot open database {}", path.display()))?;
        let mut store = Store {
            conn,
            path: path.to_owned(),
        };
        store
            .configure()
            .and_then(|()| store.migrate())
            .with_context(|| format!("database {}", path.display()))?;
        Ok(store)
    }

    /// Opens an existing database for reading only (`status`,
    /// `digest --print`): a path that does not exist is an error (a
    /// mistyped `--database` must not create files), and nothing is
    /// written, not even the switch to WAL, so a read-only directory works.
    /// A database on an older schema is migrated by a normal open.
    pub fn open_read_only(path: &Path) -> Result<Store> {
        if !path.exists() {
            bail!(
                "the database {} does not exist (check --database or `database` in the config)",
                path.display()
            );
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .with_context(|| format!("cannot open database {}", path.display()))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let store = Store {
            conn,
            path: path.to_owned(),
        };
        let version = match store.schema_version() {
            Ok(v) => v,
            // A WAL database in a directory where the -shm file cannot be
            // created: read the file as it is (SQLite "immutable").
            Err(e) if is_cant_open(&e) => return Store::open_immutable(path),
            Err(e) => return Err(e).with_context(|| format!("database {}", path.display())),
        };
        let latest = migrations::MIGRATIONS.len();
        if version < latest {
            drop(store);
            return Store::open(path);
        }
        if version > latest {
            bail!(
                "database schema version {version} is newer than this aliwatch understands ({latest}); upgrade aliwatch"
            );
        }
        store
            .conn
            .execute_batch("PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;")?;
        Ok(store)
    }

    fn open_immutable(path: &Path) -> Result<Store> {
        let mut uri = String::from("file:");
        for c in path.display().to_string().chars() {
            match c {
                '?' | '#' | '%' => uri.push_str(&format!("%{:02X}", c as u32)),
                c => uri.push(c),
            }
        }
        uri.push_str("?mode=ro&immutable=1");
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(&uri, flags)
            .with_context(|| format!("cannot open database {}", path.display()))?;
        Ok(Store {
            conn,
            path: path.to_owned(),
        })
    }

    /// An in-memory database, for tests.
    pub fn open_in_memory() -> Result<Store> {
        let conn = Connection::open_in_memory()?;
        let mut store = Store {
            conn,
            path: PathBuf::from(":memory:"),
        };
        store.configure()?;
        store.migrate()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn configure(&self) -> Result<()> {
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL: readers (`status`) never block the daemon's writer.
        // synchronous=NORMAL is durable across process crashes in WAL mode;
        // only an OS crash can lose the last transactions (SQLite docs,
        // "WAL mode"), and those are re-fetched because uid_next is advanced
        // in the same transaction.
        let mode = self.enable_wal()?;
        if mode != "wal" && mode != "memory" {
            tracing::warn!(mode, "database is not in WAL mode");
        }
        self.conn.execute_batch(
            "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;",
        )?;
        let check: String = self
            .conn
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .context("database integrity check failed")?;
        if check != "ok" {
            bail!("database is corrupt ({check}); restore it from a backup or move it away (aliwatch never resets it silently)");
        }
        Ok(())
    }

    /// Switches the database to WAL and returns the journal mode. Changing
    /// the mode needs an exclusive lock and SQLite does not always wait for
    /// it through the busy handler (two processes opening a fresh database
    /// at once), so this retries for up to [`BUSY_TIMEOUT`].
    fn enable_wal(&self) -> Result<String> {
        let started = std::time::Instant::now();
        loop {
            let current: rusqlite::Result<String> =
                self.conn.query_row("PRAGMA journal_mode", [], |r| r.get(0));
            let result = match current {
                Ok(m) if m.eq_ignore_ascii_case("wal") => Ok(m.to_ascii_lowercase()),
                Ok(_) => self
                    .conn
                    .query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0)),
                Err(e) => Err(e),
            };
            match result {
                Ok(m) => return Ok(m),
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy
                        && started.elapsed() < BUSY_TIMEOUT =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(rusqlite::Error::SqliteFailure(e, m))
                    if e.code == rusqlite::ErrorCode::NotADatabase =>
                {
                    return Err(rusqlite::Error::SqliteFailure(e, m))
                        .context("not an aliwatch database, or the file is corrupt");
                }
                Err(e) => return Err(e).context("cannot switch the database to WAL mode"),
            }
        }
    }

    /// The schema version of this database.
    pub fn schema_version(&self) -> Result<usize> {
        let v: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        Ok(usize::try_from(v).unwrap_or(0))
    }

    fn migrate(&mut self) -> Result<()> {
        self.migrate_to(migrations::MIGRATIONS.len())
    }

    /// Applies migrations up to `target` (tests stop early to build old
    /// databases).
    pub fn migrate_to(&mut self, target: usize) -> Result<()> {
        let latest = migrations::MIGRATIONS.len();
        loop {
            // IMMEDIATE: take the write lock before reading the version, so
            // two processes opening a fresh database at once (the daemon
            // and a `status`) migrate it once, one after the other.
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let v: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            let current = usize::try_from(v).unwrap_or(0);
            if current > latest {
                bail!(
                    "database schema version {current} is newer than this aliwatch understands ({latest}); upgrade aliwatch"
                );
            }
            let Some(sql) = migrations::MIGRATIONS
                .get(current)
                .filter(|_| current < target)
            else {
                return Ok(());
            };
            tx.execute_batch(sql)
                .with_context(|| format!("migration to schema version {}", current + 1))?;
            tx.pragma_update(None, "user_version", (current + 1) as i64)?;
            tx.commit()?;
            tracing::debug!(version = current + 1, "migrated database");
        }
    }

    /// Starts a write transaction. IMMEDIATE takes the write lock up front,
    /// so a second process (a `sync` beside the daemon, or the daemon's
    /// own tasks, each with its own connection) waits for it within
    /// [`BUSY_TIMEOUT`]; a DEFERRED transaction that reads and then writes
    /// would instead fail at once with SQLITE_BUSY_SNAPSHOT (517).
    pub(crate) fn write_tx(&mut self) -> rusqlite::Result<rusqlite::Transaction<'_>> {
        self.conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
    }
}

fn is_cant_open(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<rusqlite::Error>(),
            Some(rusqlite::Error::SqliteFailure(f, _)) if f.code == rusqlite::ErrorCode::CannotOpen
        )
    })
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    own_like_directory(&file, path);
    Ok(())
}

/// Gives a file that root made beside the database to the directory's
/// owner: `sudo aliwatch sync` while the service is stopped must not leave
/// a database or lock file the service's own user cannot open (SQLite
/// does the same for its -wal and -shm files when run as root). A no-op
/// when the owner already matches; refused (and ignored) for other users.
pub fn own_like_directory(file: &std::fs::File, path: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Some(dir) = path.parent().map(|d| {
        if d.as_os_str().is_empty() {
            Path::new(".")
        } else {
            d
        }
    }) else {
        return;
    };
    let (Ok(dir_meta), Ok(file_meta)) = (std::fs::metadata(dir), file.metadata()) else {
        return;
    };
    if (file_meta.uid(), file_meta.gid()) != (dir_meta.uid(), dir_meta.gid())
        && file_meta.uid() == 0
    {
        let _ = std::os::unix::fs::fchown(file, Some(dir_meta.uid()), Some(dir_meta.gid()));
    }
}

/// A change the store refuses because of what it was asked (an unknown
/// order, a malformed number), not because of the database: the command
/// line says it and exits 1, the web face answers `400`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Formats a UTC time the way the store keeps it (RFC 3339, seconds, `Z`).
pub fn fmt_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Parses a time written by [`fmt_time`].
pub fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_an_empty_database_to_the_latest_version() {
        let store = Store::open_in_memory().expect("opens");
        assert_eq!(
            store.schema_version().expect("version"),
            migrations::MIGRATIONS.len()
        );
    }

    #[test]
    fn creates_the_file_private_and_reopens_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/dir/aliwatch.db");
        drop(Store::open(&path).expect("creates"));
        let mode = std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mut store = Store::open(&path).expect("reopens");
        let state = crate::facts::TrackingState {
            last_error: Some("v".into()),
            ..Default::default()
        };
        store.set_tracking_state(&state).expect("writes");
        assert_eq!(
            store.tracking_state().expect("reads").last_error.as_deref(),
            Some("v")
        );
    }

    #[test]
    fn concurrent_first_opens_migrate_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("fresh.db");
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || Store::open(&path).map(|s| s.schema_version().ok()))
            })
            .collect();
        for h in handles {
            let v = h.join().expect("thread").expect("opens");
            assert_eq!(v, Some(migrations::MIGRATIONS.len()));
        }
    }

    #[test]
    fn migration_v2_moves_meta_into_columns_and_keeps_the_ledger() {
        let mut store = Store {
            conn: Connection::open_in_memory().expect("opens"),
            path: PathBuf::from(":memory:"),
        };
        store.migrate_to(1).expect("v1");
        store
            .conn
            .execute_batch(
                "INSERT INTO meta VALUES ('tracking.quota_exhausted', 'quota gone'),
                    ('tracking.quota_checked_at', '2026-11-01T00:00:00Z'),
                    ('notify.last_attempt:digest:2026-11-28', '2026-11-28T08:01:00Z'),
                    ('other', 'kept');
                 INSERT INTO notifications(key, kind, digest_date, message_id, state, created_at, attempts)
                    VALUES ('digest:2026-11-28', 'digest', '2026-11-28', '<d@x>', 'pending',
                            '2026-11-28T08:00:00Z', 1);",
            )
            .expect("v1 rows");
        store.migrate().expect("latest");
        let t = store.tracking_state().expect("state");
        assert_eq!(t.quota_exhausted.as_deref(), Some("quota gone"));
        assert_eq!(t.quota_checked_at, parse_time("2026-11-01T00:00:00Z"));
        let key = "digest:2026-11-28".parse().expect("key");
        let rec = store
            .notification("email", &key)
            .expect("reads")
            .expect("row kept, on the email channel");
        assert_eq!(rec.attempts, 1);
        assert_eq!(rec.last_attempt_at, parse_time("2026-11-28T08:01:00Z"));
        let left: i64 = store
            .conn
            .query_row(
                "SELECT count(*) FROM meta WHERE key NOT IN ('instance_id', 'mqtt.legacy_configs')",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(
            left, 1,
            "only unrelated meta rows stay (and what later migrations add)"
        );
    }

    #[test]
    fn an_unreadable_stored_timestamp_is_an_error_naming_the_row() {
        let store = Store::open_in_memory().expect("opens");
        store
            .conn
            .execute(
                "INSERT INTO orders(order_id, first_seen_at) VALUES ('8123456789012345', '2026-11-01T00:00:00Z')",
                [],
            )
            .expect("order");
        store
            .conn
            .execute(
                "INSERT INTO order_actions(order_id, action, value, at)
                 VALUES ('8123456789012345', 'done', '', 'yesterday')",
                [],
            )
            .expect("action");
        let err = store.load_facts().expect_err("refuses");
        let msg = format!("{err:#}");
        assert!(
            msg.contains("order_actions row 1") && msg.contains("\"yesterday\""),
            "{msg}"
        );
    }

    #[test]
    fn refuses_a_file_that_is_not_a_database() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("garbage.db");
        std::fs::write(&path, vec![0x42u8; 8192]).expect("writes");
        let err = Store::open(&path).expect_err("must refuse");
        assert!(format!("{err:#}").contains("garbage.db"), "{err:#}");
    }
}
