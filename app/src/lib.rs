//! Support shared by the example service's demo driver and the end-to-end tests: a minimal blocking HTTP/1.1
//! client (so the demo needs nothing but the Rust toolchain — no curl) and the reader of the OTLP JSON files.
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

pub mod client;
pub mod harness;
pub mod otlp_json;
