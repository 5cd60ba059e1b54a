//! `evidence-portal`: see `cli` for the commands.

fn main() -> std::process::ExitCode {
    evidence_portal::cli::main()
}
