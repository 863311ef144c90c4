//! The `ldbench` command: see `ldbench --help`.

fn main() -> std::process::ExitCode {
    ldbench::cli::main()
}
