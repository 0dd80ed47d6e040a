fn main() -> std::process::ExitCode {
    stir::cli::main()
}
