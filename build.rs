//! Link options of the release binary that only the build can set.
//!
//! Release builds on Linux with glibc pack their relative relocations
//! (`-z pack-relative-relocs`, DT_RELR). A position-independent Rust binary
//! has one relocation per panic location and vtable entry — about 60,000
//! here, 1.4 MB of `.rela.dyn` that the loader reads at every start and
//! that stays resident; packed they take 21 KB. See README "Performance"
//! (idle RSS).
//!
//! A packed binary only starts on glibc ≥ 2.36 and needs GNU ld ≥ 2.38 to
//! link (Debian 12, Ubuntu 24.04 and later), so the option is only given
//! when the build machine is the target and has both; anything else links
//! as before. `ALIWATCH_NO_RELR=1` turns it off (e.g. to build on a new
//! system for an older one).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=ALIWATCH_NO_RELR");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let wanted = var("PROFILE") == "release"
        && var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && var("HOST") == var("TARGET")
        && std::env::var_os("ALIWATCH_NO_RELR").is_none();
    if wanted && glibc_at_least(2, 36) && gnu_ld_at_least(2, 38) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// `getconf GNU_LIBC_VERSION` prints "glibc 2.36".
fn glibc_at_least(major: u32, minor: u32) -> bool {
    output("getconf", &["GNU_LIBC_VERSION"])
        .and_then(|s| version_after(&s, "glibc "))
        .is_some_and(|v| v >= (major, minor))
}

/// `ld -v` prints "GNU ld (GNU Binutils for Debian) 2.40"; the system C
/// compiler, which Rust links through, uses that `ld`.
fn gnu_ld_at_least(major: u32, minor: u32) -> bool {
    output("ld", &["-v"])
        .filter(|s| s.starts_with("GNU ld"))
        .and_then(|s| version_after(&s, ") "))
        .is_some_and(|v| v >= (major, minor))
}

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// "2.40" or "2.36.1" after the last `marker`, as (major, minor).
fn version_after(text: &str, marker: &str) -> Option<(u32, u32)> {
    let v = text.lines().next()?.rsplit(marker).next()?.trim();
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()?;
    Some((major, minor))
}
