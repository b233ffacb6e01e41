//! A distro's start-up calls, typed: its resource and each component it builds, every call under the init deadline
//! (`OTEL_RUST_DISTRO_INIT_TIMEOUT`), so a distro that hangs there does not keep the application from starting.
//! The components come back as the boxes this room's adapters take.

use super::editor::SpanProcessorBox;
use super::exporter::{MetricExporterBox, SpanExporterBox};
use super::log_editor::LogProcessorBox;
use super::registry::Distro;
use super::sampler::GenSampler;
use super::view::Attributes;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RStr};
use ndotel_api::ffi::{FfiAttributes_TO, FfiDistroBox, FfiError};
use opentelemetry::KeyValue;

impl Distro {
    /// Runs `f` on the distro under its init deadline; its error as printable text.
    fn startup<T: Send + 'static>(
        &self,
        what: &str,
        f: impl FnOnce(&FfiDistroBox) -> RResult<T, FfiError> + Send + 'static,
    ) -> Result<T, String> {
        let inner = self.inner.clone();
        super::worker::with_deadline("ndotel-startup", self.timeout, move || {
            f(&inner)
                .into_result()
                .map_err(|e| crate::text::printable(&e.to_string()).into_owned())
        })
        .map_err(|e| {
            format!("{what} {e} (it hangs; OTEL_RUST_DISTRO_INIT_TIMEOUT sets the deadline of start-up calls)")
        })?
    }

    /// The distro's resource attributes (`Distro::resource`).
    pub(crate) fn resource(&self) -> Result<Vec<KeyValue>, String> {
        self.startup("its resource()", |d| {
            let mut attrs = Attributes::default();
            d.resource(FfiAttributes_TO::from_ptr(&mut attrs, TD_Opaque))
                .map(|()| attrs.0)
        })
    }

    /// Builds its span processor and, when `start_attributes`, asks it for the attributes it sets on every span
    /// at its start (one start-up call, under one deadline).
    pub(crate) fn span_processor(
        &self,
        start_attributes: bool,
    ) -> Result<(SpanProcessorBox, Vec<KeyValue>), String> {
        self.startup("its span processor", move |d| {
            d.span_processor().and_then(|p| {
                let mut attrs = Attributes::default();
                if !start_attributes {
                    return RResult::ROk((p, attrs.0));
                }
                p.start_attributes(FfiAttributes_TO::from_ptr(&mut attrs, TD_Opaque))
                    .map(|()| (p, attrs.0))
            })
        })
    }

    /// Builds its sampler `name` and asks whether its children follow their parent (1.8); with `describe`, asks it
    /// for its description too, all in the same call.
    pub(crate) fn sampler(
        &self,
        name: &str,
        describe: bool,
    ) -> Result<(GenSampler, Option<String>), String> {
        let name = name.to_string();
        self.startup("its sampler", move |d| {
            d.sampler(RStr::from_str(&name)).map(|s| {
                let description = describe.then(|| s.description().into_string());
                let children_follow_parent = s.children_follow_parent();
                (GenSampler::new(0, s, children_follow_parent), description)
            })
        })
    }

    /// Builds its span exporter `name`.
    pub(crate) fn span_exporter(&self, name: &str) -> Result<SpanExporterBox, String> {
        let name = name.to_string();
        self.startup("its span exporter", move |d| {
            d.span_exporter(RStr::from_str(&name))
        })
    }

    /// Builds its metric exporter `name`.
    pub(crate) fn metric_exporter(&self, name: &str) -> Result<MetricExporterBox, String> {
        let name = name.to_string();
        self.startup("its metric exporter", move |d| {
            d.metric_exporter(RStr::from_str(&name))
        })
    }

    /// Builds its log processor.
    pub(crate) fn log_processor(&self) -> Result<LogProcessorBox, String> {
        self.startup("its log processor", |d| d.log_processor())
    }
}
