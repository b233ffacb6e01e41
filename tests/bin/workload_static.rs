use fixture_faulty as _;
use otel_custom_distro as _;

fn main() -> std::process::ExitCode {
    ndotel_tests::workload_main()
}
