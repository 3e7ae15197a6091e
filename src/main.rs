//! The `newswatch` binary: a thin shell over [`newswatch::cli`].

fn main() -> std::process::ExitCode {
    newswatch::cli::main()
}
