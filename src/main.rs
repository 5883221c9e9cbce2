//! The `aliwatch` binary: parse the command line and hand over to
//! [`aliwatch::app`], which maps every outcome to an exit code
//! (0 ok, 1 runtime failure, 2 usage, 78 config).

fn main() -> std::process::ExitCode {
    aliwatch::app::main()
}
