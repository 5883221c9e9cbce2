//! Helpers shared by the integration tests: running the real `aliwatch`
//! binary with an isolated environment, and paths to fixtures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The crate root (fixtures live below it).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fixture path below `tests/fixtures/`.
pub fn fixture(rel: &str) -> PathBuf {
    root().join("tests/fixtures").join(rel)
}

/// The `aliwatch` binary with an environment that cannot pick up the
/// machine's own config or state.
/// `ALIWATCH_BENCH_BINARY` runs another build instead (the benches compare
/// a saved binary with this one in the same run).
pub fn aliwatch(home: &Path) -> Command {
    let bin = std::env::var_os("ALIWATCH_BENCH_BINARY")
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_aliwatch").into());
    let mut c = Command::new(bin);
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env("TZ", "UTC")
        .env("ALIWATCH_LOG", "warn");
    c
}

/// Runs and returns the output; prints stderr on failure to help debugging.
pub fn run(c: &mut Command) -> Output {
    c.output().expect("runs the aliwatch binary")
}

/// stdout as a string.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as a string.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Polls `f` until it gives `Some`, or panics with `what` after `limit`.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process (`aliwatch run`) killed when the test ends, also when it
/// panics, so no daemon outlives its test.
pub struct Reaped(pub std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
