fn main() -> std::process::ExitCode {
    odin_status::cli::main()
}
