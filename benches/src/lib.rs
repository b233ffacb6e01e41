//! Benchmarks of ndotel. `cargo bench -p ndotel-benches` measures the per-span cost of the distro pipeline
//! (bare SDK vs ndotel's `sdk` distro vs `otel_custom_distro` loaded as a `.so`), side by side in one run;
//! `cargo run --release -p ndotel-benches --bin app_throughput` measures the example service's throughput with
//! no telemetry and under the distro, alternating rounds, and writes `benches/results.md`.
