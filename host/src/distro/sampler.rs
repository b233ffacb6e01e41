//! Adapter from a distro's FFI sampler to the SDK's `ShouldSample`, with the parent-based fallback when the
//! distro's sampler fails or panics.

use super::view::{HostParams, kind, with_scratch};
use crate::consistent::{
    Composable, Intent, Params, Parent, SamplingIntent, follow_parent, with_parent,
};
use crate::distro::faults::{Component, Faults};
use crate::distro::watchdog::Watched;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, Tuple2};
use ndotel_api::ffi::{FfiError, FfiSamplerBox, FfiSamplingParams_TO, FfiSamplingParamsRef};
use ndotel_api::{Decision, ParentKind};
use opentelemetry::trace::{Link, SpanKind, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SamplingDecision, SamplingResult, ShouldSample};
use std::cell::OnceCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A distro's sampler, as built (opaque outside this room).
pub(crate) type SamplerBox = FfiSamplerBox;

/// A distro's sampler and the generation of the distro's settings it was built from (0 at start-up).
pub(crate) struct GenSampler {
    pub(crate) generation: u64,
    pub(crate) sampler: FfiSamplerBox,
    /// Its own failures (errors, panics, late answers): what a reload's health window judges it by.
    pub(crate) failures: std::sync::atomic::AtomicU64,
}

impl GenSampler {
    pub(crate) fn new(generation: u64, sampler: FfiSamplerBox) -> Self {
        GenSampler {
            generation,
            sampler,
            failures: Default::default(),
        }
    }
}

/// Where a distro's sampler in use is kept: a reload of the distro's settings swaps a new one in.
pub(crate) struct SamplerSlot {
    current: arc_swap::ArcSwap<GenSampler>,
    /// Whether each decision carries its generation to the span's edits ([`super::generation::GENERATION_KEY`]): on from the
    /// first reload that rebuilds the distro's processor with its sampler.
    tags: AtomicBool,
}

impl SamplerSlot {
    /// Puts `new` in use; returns what was in use.
    pub(crate) fn swap(&self, new: Arc<GenSampler>) -> Arc<GenSampler> {
        self.current.swap(new)
    }

    /// From now on, each decision carries its generation.
    pub(crate) fn tag(&self) {
        self.tags.store(true, Ordering::Release);
    }
}

/// A distro's sampler as an SDK sampler.
#[derive(Clone)]
pub(crate) struct PluginSampler {
    /// The distro's sampler in use: a reload of the distro's settings swaps a new one in; each span is asked of
    /// the one it loads.
    inner: Arc<SamplerSlot>,
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
        let current = s.inner.current.load();
        let Some(Tuple2(code, threshold)) =
            s.ask(&current, p, |inner, params| inner.intent(params))
        else {
            return fallback();
        };
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
                s.unknown(
                    &current,
                    &format!("sampling intent ({code}, {threshold:#x})"),
                );
                fallback()
            }
        }
    }

    fn description(&self) -> String {
        format!("Distro{{{}}}", self.description)
    }
}

impl PluginSampler {
    /// Where its sampler is kept, for a reload to swap.
    pub(crate) fn slot(&self) -> Arc<SamplerSlot> {
        self.inner.clone()
    }

    /// Wraps `inner`, watched with `call_timeout` per call.
    pub(crate) fn new(inner: FfiSamplerBox, faults: Arc<Faults>, call_timeout: Duration) -> Self {
        let watched = Watched::new(Component::Sampler, call_timeout, faults.clone());
        PluginSampler {
            inner: Arc::new(SamplerSlot {
                current: arc_swap::ArcSwap::from_pointee(GenSampler::new(0, inner)),
                tags: AtomicBool::new(false),
            }),
            faults,
            watched,
        }
    }

    /// Asks the distro's sampler `f` about the span of `p`, under the watchdog and the gate of application threads.
    /// `None` when the caller takes its fallback: the sampler is bypassed, no place was free, the answer came too
    /// late (not trusted: fail closed), or it failed (counted).
    fn ask<R>(
        &self,
        sampler: &GenSampler,
        p: &Params<'_>,
        f: impl FnOnce(&FfiSamplerBox, FfiSamplingParamsRef<'_>) -> RResult<R, FfiError>,
    ) -> Option<R> {
        if self.watched.bypassed() {
            return None;
        }
        let result = with_scratch(|bump| {
            let params = HostParams {
                trace_id: p.trace_id.to_bytes(),
                parent_kind: match p.parent {
                    Parent::None => ParentKind::None,
                    Parent::Local => ParentKind::Local,
                    Parent::Remote => ParentKind::Remote,
                },
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
            self.watched
                .call_gated(u128::from_be_bytes(p.trace_id.to_bytes()), || {
                    f(&sampler.sampler, params)
                })
        })?;
        match result.value {
            _ if result.overdue => {
                sampler.failures.fetch_add(1, Ordering::Relaxed);
                None
            }
            RResult::ROk(value) => Some(value),
            RResult::RErr(e) => {
                sampler.failures.fetch_add(1, Ordering::Relaxed);
                self.faults.record_span_call(Component::Sampler, &e);
                None
            }
        }
    }

    /// Counts an answer this host cannot read (from a plugin built for a newer ndotel-api) as a failure.
    fn unknown(&self, sampler: &GenSampler, what: &str) {
        let e = FfiError::failed(format!(
            "returned {what}, which this host does not know (a plugin built for a newer ndotel-api)"
        ));
        sampler.failures.fetch_add(1, Ordering::Relaxed);
        self.faults.record_span_call(Component::Sampler, &e);
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
        with_parent(parent_context, |parent| {
            let (where_, parent_sampled) = Parent::of(parent);
            let p = Params {
                trace_id,
                parent: where_,
                parent_sampled,
                parent_threshold: None,
                name,
                kind: span_kind,
                attributes,
                links,
            };
            let follow = if where_ == Parent::None || parent_sampled {
                SamplingDecision::RecordAndSample
            } else {
                SamplingDecision::Drop
            };
            let current = self.inner.current.load();
            let asked = self.ask(&current, &p, |inner, params| inner.should_sample(params));
            let decision = match asked {
                None => follow,
                Some(code) => match Decision::from_code(code) {
                    Some(Decision::Drop) => SamplingDecision::Drop,
                    Some(Decision::RecordOnly) => SamplingDecision::RecordOnly,
                    Some(Decision::RecordAndSample) => SamplingDecision::RecordAndSample,
                    Some(Decision::FollowParent) => follow,
                    None => {
                        self.unknown(&current, &format!("decision code {code}"));
                        follow
                    }
                },
            };
            // The generation that decided goes with the span to its edits (the sampler's attributes are the
            // span's last at its start).
            let attributes =
                if decision != SamplingDecision::Drop && self.inner.tags.load(Ordering::Acquire) {
                    vec![KeyValue::new(
                        super::generation::GENERATION_KEY,
                        super::generation::generation_tag(current.generation),
                    )]
                } else {
                    Vec::new()
                };
            SamplingResult {
                decision,
                attributes,
                trace_state: parent
                    .map(|sc| sc.trace_state().clone())
                    .unwrap_or_default(),
            }
        })
    }
}
