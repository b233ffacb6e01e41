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

/// A distro's sampler and the generation of the distro's settings it was built from (0 at start-up).
pub(crate) struct GenSampler {
    pub(crate) generation: u64,
    pub(crate) sampler: FfiSamplerBox,
    /// It said every span with a parent follows its parent (1.8): the host decides those without asking.
    children_follow_parent: bool,
    /// Its own failures (errors, panics, late answers): what a reload's health window judges it by.
    pub(crate) failures: std::sync::atomic::AtomicU64,
}

impl GenSampler {
    pub(crate) fn new(
        generation: u64,
        sampler: FfiSamplerBox,
        children_follow_parent: bool,
    ) -> Self {
        GenSampler {
            generation,
            sampler,
            children_follow_parent,
            failures: Default::default(),
        }
    }

    /// The same sampler, of the settings' generation `generation`.
    pub(crate) fn of_generation(mut self, generation: u64) -> Self {
        self.generation = generation;
        self
    }

    /// Whether the span of `p` is decided without asking: a child of a sampler that said its children follow
    /// their parent.
    fn follows_unasked(&self, p: &Params<'_>) -> bool {
        self.children_follow_parent && p.parent != Parent::None
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
        if current.follows_unasked(p) {
            return follow_parent(p);
        }
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
    pub(crate) fn new(inner: GenSampler, faults: Arc<Faults>, call_timeout: Duration) -> Self {
        let watched = Watched::new(Component::Sampler, call_timeout, faults.clone());
        PluginSampler {
            inner: Arc::new(SamplerSlot {
                current: arc_swap::ArcSwap::from_pointee(inner),
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
            let asked = if current.follows_unasked(&p) {
                Some(Decision::FollowParent.code())
            } else {
                self.ask(&current, &p, |inner, params| inner.should_sample(params))
            };
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

#[cfg(test)]
mod tests {
    use super::*;
    use abi_stable::std_types::{RResult::ROk, RString};
    use ndotel_api::ffi::{FfiSampler, FfiSampler_TO};
    use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceState};
    use std::sync::atomic::AtomicUsize;

    /// A sampler that drops every span it is asked about, and counts the questions.
    struct Counting(Arc<AtomicUsize>);
    impl FfiSampler for Counting {
        fn should_sample(&self, _: FfiSamplingParamsRef<'_>) -> RResult<u8, FfiError> {
            self.0.fetch_add(1, Ordering::Relaxed);
            ROk(Decision::Drop.code())
        }
        fn description(&self) -> RString {
            "Counting".into()
        }
        fn intent(&self, _: FfiSamplingParamsRef<'_>) -> RResult<Tuple2<u8, u64>, FfiError> {
            self.0.fetch_add(1, Ordering::Relaxed);
            let (kind, threshold) = SamplingIntent::Drop.encode();
            ROk(Tuple2(kind, threshold))
        }
    }

    fn sampler(children_follow_parent: bool) -> (PluginSampler, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let ffi = FfiSampler_TO::from_value(Counting(calls.clone()), TD_Opaque);
        let inner = GenSampler::new(0, ffi, children_follow_parent);
        let faults = Arc::new(Faults::new("counting"));
        (
            PluginSampler::new(inner, faults, Duration::from_secs(60)),
            calls,
        )
    }

    fn parent(sampled: bool, remote: bool) -> Context {
        let flags = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        let sc = SpanContext::new(
            TraceId::from(7),
            SpanId::from(9),
            flags,
            remote,
            TraceState::default(),
        );
        Context::new().with_remote_span_context(sc)
    }

    /// A sampler that said its children follow their parent is asked about roots only: each child gets its
    /// parent's decision, local or remote, sampled or not, as `FollowParent` would give it. One that did not say
    /// so (a plugin from before 1.8) is asked about every span.
    #[test]
    fn children_of_a_parent_based_sampler_are_decided_without_a_call() {
        let decide = |s: &PluginSampler, cx: Option<&Context>| {
            s.should_sample(cx, TraceId::from(7), "x", &SpanKind::Internal, &[], &[])
                .decision
        };
        let (s, calls) = sampler(true);
        for (sampled, remote) in [(true, false), (true, true), (false, false), (false, true)] {
            let expected = if sampled {
                SamplingDecision::RecordAndSample
            } else {
                SamplingDecision::Drop
            };
            assert_eq!(decide(&s, Some(&parent(sampled, remote))), expected);
        }
        assert_eq!(calls.load(Ordering::Relaxed), 0, "no child was asked");
        assert_eq!(
            decide(&s, None),
            SamplingDecision::Drop,
            "the root is asked"
        );
        assert_eq!(calls.load(Ordering::Relaxed), 1);

        let (s, calls) = sampler(false);
        assert_eq!(
            decide(&s, Some(&parent(true, false))),
            SamplingDecision::Drop,
            "asked, and its answer taken"
        );
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }

    /// As a node of the composite sampler, the same: a child's intent is its parent's, unasked.
    #[test]
    fn a_composite_node_asks_about_roots_only_when_children_follow_parent() {
        let (s, calls) = sampler(true);
        let node = DistroNode::new(s, "Counting".into());
        let cx = parent(true, true);
        with_parent(Some(&cx), |sc| {
            let (where_, parent_sampled) = Parent::of(sc);
            let p = Params {
                trace_id: TraceId::from(7),
                parent: where_,
                parent_sampled,
                parent_threshold: None,
                name: "x",
                kind: &SpanKind::Internal,
                attributes: &[],
                links: &[],
            };
            let intent = node.intent(&p);
            assert_eq!(intent.threshold, follow_parent(&p).threshold);
        });
        assert_eq!(calls.load(Ordering::Relaxed), 0);
    }
}
