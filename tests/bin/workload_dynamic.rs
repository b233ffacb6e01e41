fn main() -> std::process::ExitCode {
    ndotel_tests::workload_main()
}
