//! Turns a distro author's plain Rust implementations into the FFI trait objects, running every call inside
//! `catch_unwind`: an uncaught panic in a `#[sabi_trait]` method would abort the whole host process.

use crate::ffi::{
    CAPABILITIES_FFI, DistroDescriptor, DistroDescriptorRef, ErrorKind, FfiAttributesMut,
    FfiDistro, FfiDistro_TO, FfiDistroBox, FfiEditsMut, FfiError, FfiInitArgsRef, FfiLogEditsMut,
    FfiLogProcessor, FfiLogProcessor_TO, FfiLogProcessorBox, FfiLogRecordRef, FfiMetricExporter,
    FfiMetricExporter_TO, FfiMetricExporterBox, FfiSampler, FfiSampler_TO, FfiSamplerBox,
    FfiSamplingParamsRef, FfiSpanExporter, FfiSpanExporter_TO, FfiSpanExporterBox,
    FfiSpanProcessor, FfiSpanProcessor_TO, FfiSpanProcessorBox, FfiSpanRef, PluginMod,
    PluginModRef,
};
use crate::log::{LogEdits, LogView};
use crate::types::{KeyValue, Temporality};
use crate::view::{Edits, SamplingParams, SpanView};
use crate::{
    BoxError, Components, Distro, DistroConfig, LogProcessor, MetricExporter, Sampler,
    SpanExporter, SpanProcessor,
};
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RErr, ROk, RResult, RSlice, RStr, RString, RVec, Tuple2};
use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

thread_local! {
    /// Set while distro code runs inside [`guarded`]: its panics are caught and reported by the host.
    static AT_BOUNDARY: Cell<bool> = const { Cell::new(false) };
    /// Where the last caught panic happened.
    static PANIC_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// A panic hook that stays quiet for panics [`guarded`] catches (the host reports each as one line, with the
/// location recorded here) and hands every other panic to the hook that was there before.
fn install_quiet_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if AT_BOUNDARY.with(Cell::get) {
                let at = info
                    .location()
                    .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
                PANIC_AT.with(|p| *p.borrow_mut() = at);
            } else {
                previous(info)
            }
        }));
    });
}

/// Runs `f`, turning an error into [`ErrorKind::Failed`] and a panic into [`ErrorKind::PANICKED`].
fn guarded<T>(f: impl FnOnce() -> Result<T, BoxError>) -> RResult<T, FfiError> {
    install_quiet_hook();
    let outer = AT_BOUNDARY.with(|b| b.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    AT_BOUNDARY.with(|b| b.set(outer));
    match result {
        Ok(Ok(v)) => ROk(v),
        Ok(Err(e)) => RErr(match e.downcast::<crate::Unavailable>() {
            Ok(u) => FfiError {
                kind: ErrorKind::UNAVAILABLE,
                message: u.0.into(),
            },
            Err(e) => FfiError::failed(e),
        }),
        Err(payload) => {
            let mut message = if let Some(s) = payload.downcast_ref::<&str>() {
                (*s).to_string()
            } else if let Some(s) = payload.downcast_ref::<String>() {
                s.clone()
            } else {
                "non-string panic payload".to_string()
            };
            if let Some(at) = PANIC_AT.with(|p| p.borrow_mut().take()) {
                message.push_str(&format!(" (at {at})"));
            }
            RErr(FfiError {
                kind: ErrorKind::PANICKED,
                message: message.into(),
            })
        }
    }
}

fn push_all(attributes: &[KeyValue], out: &mut FfiAttributesMut<'_>) {
    for kv in attributes {
        kv.value.with_ref(|v| out.push(kv.key.as_str().into(), v));
    }
}

struct GuardedSampler(Box<dyn Sampler>);
impl FfiSampler for GuardedSampler {
    fn should_sample(&self, params: FfiSamplingParamsRef<'_>) -> RResult<u8, FfiError> {
        guarded(|| {
            Ok(self
                .0
                .should_sample(SamplingParams::from_ffi(&params))
                .code())
        })
    }
    fn description(&self) -> RString {
        guarded(|| Ok(self.0.description()))
            .unwrap_or_else(|e| format!("<{e}>"))
            .into()
    }
    fn intent(&self, params: FfiSamplingParamsRef<'_>) -> RResult<Tuple2<u8, u64>, FfiError> {
        guarded(|| {
            let (kind, threshold) = self.0.intent(SamplingParams::from_ffi(&params)).encode();
            Ok(Tuple2(kind, threshold))
        })
    }
    fn children_follow_parent(&self) -> bool {
        // A panic says `false`: every span is asked, as before 1.8.
        guarded(|| Ok(self.0.children_follow_parent())).unwrap_or(false)
    }
}

struct GuardedSpanProcessor(Box<dyn SpanProcessor>);
impl FfiSpanProcessor for GuardedSpanProcessor {
    fn start_attributes(&self, mut out: FfiAttributesMut<'_>) -> RResult<(), FfiError> {
        guarded(|| {
            push_all(&self.0.start_attributes(), &mut out);
            Ok(())
        })
    }
    fn on_end(&self, span: FfiSpanRef<'_>, edits: FfiEditsMut<'_>) -> RResult<(), FfiError> {
        guarded(|| {
            self.0
                .on_end(SpanView::from_ffi(&span), &mut Edits::from_ffi(edits));
            Ok(())
        })
    }
    fn shutdown(&self) -> RResult<(), FfiError> {
        guarded(|| self.0.shutdown())
    }
}

struct GuardedLogProcessor(Box<dyn LogProcessor>);
impl FfiLogProcessor for GuardedLogProcessor {
    fn on_emit(
        &self,
        record: FfiLogRecordRef<'_>,
        edits: FfiLogEditsMut<'_>,
    ) -> RResult<(), FfiError> {
        guarded(|| {
            self.0
                .on_emit(LogView::from_ffi(&record), &mut LogEdits::from_ffi(edits));
            Ok(())
        })
    }
    fn shutdown(&self) -> RResult<(), FfiError> {
        guarded(|| self.0.shutdown())
    }
}

struct GuardedSpanExporter(Box<dyn SpanExporter>);
impl FfiSpanExporter for GuardedSpanExporter {
    fn export(&self, spans: RSlice<'_, FfiSpanRef<'_>>) -> RResult<(), FfiError> {
        guarded(|| self.0.export(SpanView::slice_from_ffi(spans.as_slice())))
    }
    fn force_flush(&self) -> RResult<(), FfiError> {
        guarded(|| self.0.force_flush())
    }
    fn shutdown(&self) -> RResult<(), FfiError> {
        guarded(|| self.0.shutdown())
    }
}

struct GuardedMetricExporter(Box<dyn MetricExporter>);
impl FfiMetricExporter for GuardedMetricExporter {
    fn temporality(&self) -> u8 {
        guarded(|| Ok(self.0.temporality()))
            .unwrap_or(Temporality::Cumulative)
            .code()
    }
    fn export(&self, otlp_protobuf: RSlice<'_, u8>) -> RResult<(), FfiError> {
        guarded(|| self.0.export(otlp_protobuf.as_slice()))
    }
    fn force_flush(&self) -> RResult<(), FfiError> {
        guarded(|| self.0.force_flush())
    }
    fn shutdown(&self) -> RResult<(), FfiError> {
        guarded(|| self.0.shutdown())
    }
}

struct GuardedDistro<D> {
    distro: D,
    components: Components<D>,
}

impl<D: Distro> FfiDistro for GuardedDistro<D> {
    fn resource(&self, mut out: FfiAttributesMut<'_>) -> RResult<(), FfiError> {
        guarded(|| {
            push_all(&self.distro.resource(), &mut out);
            Ok(())
        })
    }
    fn sampler(&self, name: RStr<'_>) -> RResult<FfiSamplerBox, FfiError> {
        guarded(|| {
            let inner = self.components.build_sampler(&self.distro, name.as_str())?;
            Ok(FfiSampler_TO::from_value(GuardedSampler(inner), TD_Opaque))
        })
    }
    fn span_processor(&self) -> RResult<FfiSpanProcessorBox, FfiError> {
        guarded(|| {
            let inner = self.components.build_span_processor(&self.distro)?;
            Ok(FfiSpanProcessor_TO::from_value(
                GuardedSpanProcessor(inner),
                TD_Opaque,
            ))
        })
    }
    fn log_processor(&self) -> RResult<FfiLogProcessorBox, FfiError> {
        guarded(|| {
            let inner = self.components.build_log_processor(&self.distro)?;
            Ok(FfiLogProcessor_TO::from_value(
                GuardedLogProcessor(inner),
                TD_Opaque,
            ))
        })
    }
    fn span_exporter(&self, name: RStr<'_>) -> RResult<FfiSpanExporterBox, FfiError> {
        guarded(|| {
            let inner = self
                .components
                .build_span_exporter(&self.distro, name.as_str())?;
            Ok(FfiSpanExporter_TO::from_value(
                GuardedSpanExporter(inner),
                TD_Opaque,
            ))
        })
    }
    fn metric_exporter(&self, name: RStr<'_>) -> RResult<FfiMetricExporterBox, FfiError> {
        guarded(|| {
            let inner = self
                .components
                .build_metric_exporter(&self.distro, name.as_str())?;
            Ok(FfiMetricExporter_TO::from_value(
                GuardedMetricExporter(inner),
                TD_Opaque,
            ))
        })
    }
}

extern "C" fn init<D: Distro>(args: FfiInitArgsRef<'_>) -> RResult<FfiDistroBox, FfiError> {
    guarded(|| {
        let table: toml::Table = args.config_toml().as_str().parse()?;
        let mut config = DistroConfig::new(table, args.base_dir().as_str());
        if let abi_stable::std_types::RSome(vars) = args.env() {
            config = config.with_env(
                vars.into_iter()
                    .map(|Tuple2(k, v)| (k.into_string(), v.into_string())),
            );
        }
        let distro = D::init(&config).inspect_err(|e| {
            if let Some(setting) = crate::SettingError::find(&**e) {
                let path: Vec<RStr<'_>> =
                    setting.path().iter().map(|k| RStr::from_str(k)).collect();
                args.setting_error_at(RSlice::from_slice(&path));
            }
        })?;
        let guarded = GuardedDistro {
            distro,
            components: D::components(),
        };
        Ok(FfiDistro_TO::from_value(guarded, TD_Opaque))
    })
}

/// The descriptor of distro `D`; used by [`register_distro!`](crate::register_distro) and
/// [`export_plugin!`](crate::export_plugin). Each call leaks one small descriptor (the host asks once per
/// process), as abi_stable prefix types live for the whole program.
pub fn descriptor<D: Distro>() -> DistroDescriptorRef {
    let components = D::components();
    let names = |list: Vec<&'static str>| {
        let list: Vec<RStr<'static>> = list.into_iter().map(RStr::from_str).collect();
        RSlice::from_slice(Box::leak(list.into_boxed_slice()))
    };
    DistroDescriptor {
        name: RStr::from_str(D::NAME),
        version: RStr::from_str(D::VERSION),
        description: RStr::from_str(D::DESCRIPTION),
        samplers: names(components.sampler_names()),
        span_processor: components.has_span_processor(),
        span_exporters: names(components.span_exporter_names()),
        metric_exporters: names(components.metric_exporter_names()),
        init: init::<D>,
        log_processor: components.has_log_processor(),
    }
    .leak_into_prefix()
}

/// Builds the root module of a plugin; used by [`export_plugin!`](crate::export_plugin).
pub fn plugin_module(
    distros: extern "C" fn() -> RVec<DistroDescriptorRef>,
    panic_unwind: bool,
) -> PluginModRef {
    PluginMod {
        api_version: RStr::from_str(crate::API_VERSION),
        panic_unwind,
        capabilities: RSlice::from_slice(&CAPABILITIES_FFI),
        distros,
    }
    .leak_into_prefix()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unavailable_destination_crosses_as_its_own_kind_and_other_errors_as_failures() {
        let unavailable = guarded::<()>(|| Err(crate::Unavailable("collector down".into()).into()));
        let RErr(e) = unavailable else {
            panic!("expected an error")
        };
        assert_eq!(e.kind, ErrorKind::UNAVAILABLE);
        assert_eq!(e.to_string(), "destination unavailable: collector down");
        let RErr(e) = guarded::<()>(|| Err("disk full".into())) else {
            panic!("expected an error")
        };
        assert_eq!(
            (e.kind, e.to_string()),
            (ErrorKind::FAILED, "disk full".into())
        );
        let RErr(e) = guarded::<()>(|| panic!("boom")) else {
            panic!("expected an error")
        };
        assert_eq!(e.kind, ErrorKind::PANICKED);
        assert!(e.message.starts_with("boom (at "), "{}", e.message);
    }
}
