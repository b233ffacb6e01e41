//! Where telemetry leaves the process: OTLP (ndotel's own encoder and transports), OTLP JSON lines files, and the
//! Prometheus endpoint. Imports nothing from the signals or the pipeline.

pub(crate) mod file;
pub(crate) mod otlp;
pub(crate) mod prometheus;
