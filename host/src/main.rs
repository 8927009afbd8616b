use std::process::ExitCode;

fn main() -> ExitCode {
    weir_host::cli::main()
}
