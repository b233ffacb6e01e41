//! Adapter from a distro's FFI sampler to the SDK's `ShouldSample`, with the parent-based fallback when the
//! distro's sampler fails or panics.

use super::view::{HostParams, kind, with_scratch};
use crate::consistent::{Composable, Intent, Params, Parent, SamplingIntent, follow_parent};
use crate::faults::{Component, Faults};
use crate::watchdog::Watched;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, Tuple2};
use ndotel_api::ffi::{FfiSamplerBox, FfiSamplingParams_TO};
use ndotel_api::{Decision, ParentKind};
use opentelemetry::trace::{Link, SpanKind, TraceContextExt, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SamplingDecision, SamplingResult, ShouldSample};
use std::cell::OnceCell;
use std::sync::Arc;
use std::time::Duration;

/// A distro's sampler as an SDK sampler.
#[derive(Clone)]
pub(crate) struct PluginSampler {
    inner: Arc<FfiSamplerBox>,
    faults: Arc<Faults>,
    watched: Arc<Watched>,
}

impl std::fmt::Debug for PluginSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginSampler").finish_non_exhaustive()
    }
}

/// A distro's sampler as a node of the composite sampler (`distro = {}`): asked for its intent.
#[derive(Debug)]
pub(crate) struct DistroNode {
    sampler: PluginSampler,
    description: String,
}

impl DistroNode {
    pub(crate) fn new(sampler: PluginSampler, description: String) -> Self {
        DistroNode {
            sampler,
            description,
        }
    }
}

impl Composable for DistroNode {
    fn intent(&self, p: &Params<'_>) -> Intent {
        let s = &self.sampler;
        // The fallback of the decision path, as an intent: children follow their parent, roots are kept.
        let fallback = || match p.parent {
            Parent::None => Intent {
                threshold: Some(0),
                reliable: false,
                attributes: Vec::new(),
            },
            _ => follow_parent(p),
        };
        if s.watched.bypassed() {
            return fallback();
        }
        let parent_kind = match p.parent {
            Parent::None => ParentKind::None,
            Parent::Local => ParentKind::Local,
            Parent::Remote => ParentKind::Remote,
        };
        let result = with_scratch(|bump| {
            let params = HostParams {
                trace_id: p.trace_id.to_bytes(),
                parent_kind,
                parent_sampled: p.parent_sampled,
                name: p.name,
                kind: kind(p.kind),
                attributes: p.attributes,
                links: p.links,
                bump,
                attribute_refs: OnceCell::new(),
                link_refs: OnceCell::new(),
            };
            let params = FfiSamplingParams_TO::from_ptr(&params, TD_Opaque);
            s.watched
                .call_gated(u128::from_be_bytes(p.trace_id.to_bytes()), || {
                    s.inner.intent(params)
                })
        });
        let Some(result) = result else {
            return fallback();
        };
        match result.value {
            _ if result.overdue => fallback(),
            RResult::ROk(Tuple2(code, threshold)) => {
                match SamplingIntent::decode(code, threshold) {
                    Some(SamplingIntent::Keep {
                        threshold,
                        reliable,
                    }) => Intent {
                        threshold: Some(threshold),
                        reliable,
                        attributes: Vec::new(),
                    },
                    Some(SamplingIntent::FollowParent) if p.parent == Parent::None => Intent {
                        threshold: Some(0),
                        reliable: true,
                        attributes: Vec::new(),
                    },
                    Some(SamplingIntent::FollowParent) => follow_parent(p),
                    Some(_) => Intent::default(),
                    None => {
                        let e = ndotel_api::ffi::FfiError::failed(format!(
                            "returned sampling intent ({code}, {threshold:#x}), which this host does not know (a plugin \
                         built for a newer ndotel-api)"
                        ));
                        s.faults.record_span_call(Component::Sampler, &e);
                        fallback()
                    }
                }
            }
            RResult::RErr(e) => {
                s.faults.record_span_call(Component::Sampler, &e);
                fallback()
            }
        }
    }

    fn description(&self) -> String {
        format!("Distro{{{}}}", self.description)
    }
}

impl PluginSampler {
    /// Wraps `inner`, watched with `call_timeout` per call.
    pub(crate) fn new(inner: FfiSamplerBox, faults: Arc<Faults>, call_timeout: Duration) -> Self {
        let watched = Watched::new(Component::Sampler, call_timeout, faults.clone());
        PluginSampler {
            inner: Arc::new(inner),
            faults,
            watched,
        }
    }
}

impl ShouldSample for PluginSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        // An extracted-but-empty context (no `traceparent`) carries an invalid span context: that is a root.
        let parent = parent_context
            .filter(|cx| cx.has_active_span())
            .map(|cx| cx.span().span_context().clone())
            .filter(|sc| sc.is_valid());
        let (parent_kind, parent_sampled) = match &parent {
            None => (ParentKind::None, false),
            Some(sc) if sc.is_remote() => (ParentKind::Remote, sc.is_sampled()),
            Some(sc) => (ParentKind::Local, sc.is_sampled()),
        };
        let fallback = || {
            if parent.is_none() || parent_sampled {
                SamplingDecision::RecordAndSample
            } else {
                SamplingDecision::Drop
            }
        };
        let decision = if self.watched.bypassed() {
            fallback()
        } else {
            let result = with_scratch(|bump| {
                let params = HostParams {
                    trace_id: trace_id.to_bytes(),
                    parent_kind,
                    parent_sampled,
                    name,
                    kind: kind(span_kind),
                    attributes,
                    links,
                    bump,
                    attribute_refs: OnceCell::new(),
                    link_refs: OnceCell::new(),
                };
                let params = FfiSamplingParams_TO::from_ptr(&params, TD_Opaque);
                self.watched
                    .call_gated(u128::from_be_bytes(trace_id.to_bytes()), || {
                        self.inner.should_sample(params)
                    })
            });
            // A decision that came too late is not trusted: the fallback decides that span (fail closed); so does
            // the fallback when other calls hold every place an application thread may take in distro code.
            let Some(result) = result else {
                return self.result(fallback(), parent);
            };
            match result.value {
                _ if result.overdue => fallback(),
                RResult::ROk(code) => match Decision::from_code(code) {
                    Some(Decision::Drop) => SamplingDecision::Drop,
                    Some(Decision::RecordOnly) => SamplingDecision::RecordOnly,
                    Some(Decision::RecordAndSample) => SamplingDecision::RecordAndSample,
                    Some(Decision::FollowParent) => fallback(),
                    None => {
                        let e = ndotel_api::ffi::FfiError::failed(format!(
                            "returned decision code {code}, which this host does not know (a plugin built for a \
                             newer ndotel-api)"
                        ));
                        self.faults.record_span_call(Component::Sampler, &e);
                        fallback()
                    }
                },
                RResult::RErr(e) => {
                    self.faults.record_span_call(Component::Sampler, &e);
                    fallback()
                }
            }
        };
        self.result(decision, parent)
    }
}

impl PluginSampler {
    /// The SDK's result for `decision`, keeping the parent's trace state.
    fn result(
        &self,
        decision: SamplingDecision,
        parent: Option<opentelemetry::trace::SpanContext>,
    ) -> SamplingResult {
        SamplingResult {
            decision,
            attributes: Vec::new(),
            trace_state: parent
                .map(|sc| sc.trace_state().clone())
                .unwrap_or_default(),
        }
    }
}
