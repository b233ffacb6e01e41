//! Consistent probability sampling, as the OpenTelemetry specification describes it
//! (`trace/tracestate-probability-sampling.md`, and the composable samplers of `trace/sdk.md`).
//!
//! Every span's randomness `R` is 56 bits: the `rv` sub-key of the `ot` tracestate entry when present, else the
//! trace id's 7 rightmost bytes. A sampler's probability becomes a 56-bit rejection threshold `T`; a span is kept
//! when `R >= T`. Since every service compares the same `R`, two services at one ratio keep exactly the same
//! traces, and a service at a lower ratio keeps a subset. A kept span whose threshold is reliable carries it as
//! `th` in the `ot` entry, so a backend can weight what it receives (adjusted count `2^56 / (2^56 - T)`) and a
//! child continues its parent's threshold; otherwise `th` is erased. Every other `ot` sub-key and every foreign
//! `tracestate` entry is kept as it came.
//!
//! A [`Composite`] sampler asks a tree of [`Composable`] samplers for a [`Intent`] (a threshold or none, whether
//! it is reliable, attributes) and decides: [`AlwaysOn`], [`AlwaysOff`], [`Probability`], [`ParentThreshold`],
//! [`RuleBased`], [`Annotating`], and [`RateLimiting`] (java-contrib's `consistent56` rate limiter).

use opentelemetry::trace::{Link, SpanContext, SpanKind, TraceContextExt, TraceId, TraceState};
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_sdk::trace::{SamplingDecision, SamplingResult, ShouldSample};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub use ndotel_api::sampling::{
    DEFAULT_PRECISION, MAX_THRESHOLD, MIN_PROBABILITY, SamplingIntent, parse_rv, parse_th,
    probability_to_th,
};

/// `threshold` as `th` text: 14 hex digits without trailing zeros, `0` for zero.
pub fn th_text(threshold: u64) -> String {
    let mut out = String::with_capacity(17);
    push_th(&mut out, threshold);
    out
}

/// Appends [`th_text`] of `threshold` to `out` (no formatting machinery: this runs for every kept span).
fn push_th(out: &mut String, threshold: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let t = threshold & (MAX_THRESHOLD - 1);
    if t == 0 {
        out.push('0');
        return;
    }
    // Digits from the most significant of 14, down to the last non-zero one.
    let last = t.trailing_zeros() / 4;
    for i in (last..14).rev() {
        out.push(HEX[((t >> (4 * i)) & 0xf) as usize] as char);
    }
}

/// The probability a threshold keeps: `(2^56 - T) / 2^56`.
pub fn threshold_probability(threshold: u64) -> f64 {
    MAX_THRESHOLD.saturating_sub(threshold) as f64 / MAX_THRESHOLD as f64
}

/// How many spans one kept span stands for: `2^56 / (2^56 - T)` (infinite for the threshold that keeps nothing).
pub fn adjusted_count(threshold: u64) -> f64 {
    MAX_THRESHOLD as f64 / MAX_THRESHOLD.saturating_sub(threshold) as f64
}

/// The threshold of a probability at full precision (java-contrib's `calculateThreshold`): `2^56 - round(p * 2^56)`.
fn threshold_of(probability: f64) -> u64 {
    let kept = (probability.clamp(0.0, 1.0) * MAX_THRESHOLD as f64).round() as u64;
    MAX_THRESHOLD - kept.min(MAX_THRESHOLD)
}

/// The `ot` entry of a tracestate, read as the specification says: `key:value` pairs separated by `;`. A malformed
/// entry is treated as empty (its `th` and `rv` are ignored); an invalid `th` or `rv` alone is ignored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OtState {
    /// The valid `th`.
    pub th: Option<u64>,
    /// The `rv` text (kept as it came when valid), and its randomness.
    pub rv: Option<(String, u64)>,
    /// Every other sub-key, in order (an invalid `th` or `rv` among them is dropped).
    pub others: Vec<(String, String)>,
    /// Whether the entry is absent or was read whole (nothing malformed or invalid left out), so writing it back
    /// with the same `th` would change nothing.
    pub clean: bool,
}

impl OtState {
    /// Reads the `ot` entry of `state`.
    pub fn of(state: &TraceState) -> OtState {
        state.get("ot").map_or_else(
            || OtState {
                clean: true,
                ..OtState::default()
            },
            OtState::parse,
        )
    }

    /// Reads an `ot` entry's value.
    pub fn parse(value: &str) -> OtState {
        let mut out = OtState {
            clean: true,
            ..OtState::default()
        };
        if value.len() > 256 {
            return OtState::default();
        }
        for pair in value.split(';') {
            let Some((key, v)) = pair.split_once(':') else {
                return OtState::default();
            };
            let key_ok = key.starts_with(|c: char| c.is_ascii_lowercase())
                && key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            let value_ok = v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if !key_ok || !value_ok {
                return OtState::default();
            }
            match key {
                "th" => {
                    out.th = parse_th(v);
                    out.clean &= out.th.is_some();
                }
                "rv" => {
                    out.rv = parse_rv(v).map(|r| (v.to_string(), r));
                    out.clean &= out.rv.is_some();
                }
                _ => out.others.push((key.to_string(), v.to_string())),
            }
        }
        out
    }

    /// The entry's value: `th` first when given, then `rv`, then the others; empty when nothing is left.
    pub fn value(&self, th: Option<u64>) -> String {
        let mut out = String::with_capacity(24);
        let sep = |out: &mut String| {
            if !out.is_empty() {
                out.push(';');
            }
        };
        if let Some(t) = th.filter(|t| *t < MAX_THRESHOLD) {
            out.push_str("th:");
            push_th(&mut out, t);
        }
        if let Some((rv, _)) = &self.rv {
            sep(&mut out);
            out.push_str("rv:");
            out.push_str(rv);
        }
        for (k, v) in &self.others {
            // The whole entry stays within 256 characters: what would not fit is left out.
            let separator = usize::from(!out.is_empty());
            if out.len() + separator + k.len() + 1 + v.len() <= 256 {
                sep(&mut out);
                out.push_str(k);
                out.push(':');
                out.push_str(v);
            }
        }
        out
    }
}

/// The 56-bit randomness of a span: `rv` when valid, else the trace id's 7 rightmost bytes.
pub fn randomness(trace_id: TraceId, ot: &OtState) -> u64 {
    match &ot.rv {
        Some((_, r)) => *r,
        None => ndotel_api::sampling::trace_randomness(trace_id.to_bytes()),
    }
}

/// Where a span's parent is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parent {
    /// A root span.
    None,
    /// The parent is in this process.
    Local,
    /// The parent came from another process.
    Remote,
}

impl Parent {
    /// Where `parent` (a valid span context, or none for a root) is, and whether it was sampled.
    pub(crate) fn of(parent: Option<&SpanContext>) -> (Parent, bool) {
        match parent {
            None => (Parent::None, false),
            Some(sc) if sc.is_remote() => (Parent::Remote, sc.is_sampled()),
            Some(sc) => (Parent::Local, sc.is_sampled()),
        }
    }
}

/// Runs `f` with the valid span context of the active span in `cx`, borrowed (none for a root: an
/// extracted-but-empty context, without `traceparent`, carries an invalid one).
pub(crate) fn with_parent<R>(cx: Option<&Context>, f: impl FnOnce(Option<&SpanContext>) -> R) -> R {
    let span = cx.filter(|cx| cx.has_active_span()).map(|cx| cx.span());
    f(span
        .as_ref()
        .map(|s| s.span_context())
        .filter(|sc| sc.is_valid()))
}

/// What a composable sampler sees of the span about to start.
#[derive(Debug)]
pub struct Params<'a> {
    /// The trace (for a distro's sampler, which may decide on it; the composable samplers here do not).
    pub trace_id: TraceId,
    /// Where the parent is.
    pub parent: Parent,
    /// Whether the parent was sampled (false for a root).
    pub parent_sampled: bool,
    /// The parent's threshold: its valid `th`, when that agrees with its sampled flag.
    pub parent_threshold: Option<u64>,
    /// The span's name.
    pub name: &'a str,
    /// Its kind.
    pub kind: &'a SpanKind,
    /// Its attributes at start.
    pub attributes: &'a [KeyValue],
    /// Its links.
    pub links: &'a [Link],
}

/// A composable sampler's answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Intent {
    /// The rejection threshold, or `None` for "do not sample" (not a probability).
    pub threshold: Option<u64>,
    /// Whether the threshold is the span's real sampling probability (then it is written as `th` and the span's
    /// randomness decides); otherwise fresh randomness decides and `th` is erased.
    pub reliable: bool,
    /// Attributes added to a sampled span.
    pub attributes: Vec<KeyValue>,
}

impl Intent {
    fn drop() -> Self {
        Intent::default()
    }
}

/// A sampler that answers with an [`Intent`], for a [`Composite`] to decide.
pub trait Composable: Send + Sync + fmt::Debug {
    /// The intent for the span of `params`.
    fn intent(&self, params: &Params<'_>) -> Intent;
    /// The sampler and what it holds, thresholds included.
    fn description(&self) -> String;
}

/// Keeps every span (threshold 0, reliable).
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysOn;

impl Composable for AlwaysOn {
    fn intent(&self, _: &Params<'_>) -> Intent {
        Intent {
            threshold: Some(0),
            reliable: true,
            attributes: Vec::new(),
        }
    }
    fn description(&self) -> String {
        "AlwaysOn".into()
    }
}

/// Keeps nothing (no threshold).
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysOff;

impl Composable for AlwaysOff {
    fn intent(&self, _: &Params<'_>) -> Intent {
        Intent::drop()
    }
    fn description(&self) -> String {
        "AlwaysOff".into()
    }
}

/// Keeps a ratio of traces, consistently: the threshold of the ratio at a precision, reliable.
#[derive(Debug, Clone)]
pub struct Probability {
    ratio: f64,
    threshold: Option<u64>,
}

impl Probability {
    /// The sampler of `ratio` (0 to 1) with thresholds of [`DEFAULT_PRECISION`] hex digits.
    pub fn new(ratio: f64) -> Result<Self, String> {
        Probability::with_precision(ratio, DEFAULT_PRECISION)
    }

    /// The sampler of `ratio` with thresholds of `precision` hex digits (1 to 12). A ratio of 0 keeps nothing;
    /// a ratio below `2^-56` is an error (no threshold expresses it).
    pub fn with_precision(ratio: f64, precision: u32) -> Result<Self, String> {
        if !(0.0..=1.0).contains(&ratio) {
            return Err(format!("ratio {ratio} is not between 0 and 1"));
        }
        if !(1..=12).contains(&precision) {
            return Err(format!("precision {precision} is not between 1 and 12"));
        }
        let threshold = if ratio == 0.0 {
            None
        } else {
            let th = probability_to_th(ratio, precision).ok_or_else(|| {
                format!("ratio {ratio} is below 2^-56, the smallest a threshold expresses; use 0 to keep nothing")
            })?;
            parse_th(&th)
        };
        Ok(Probability { ratio, threshold })
    }

    /// The threshold (`None` for ratio 0).
    pub fn threshold(&self) -> Option<u64> {
        self.threshold
    }
}

impl Composable for Probability {
    fn intent(&self, _: &Params<'_>) -> Intent {
        Intent {
            threshold: self.threshold,
            reliable: self.threshold.is_some(),
            attributes: Vec::new(),
        }
    }
    fn description(&self) -> String {
        match self.threshold {
            Some(t) => format!(
                "Probability{{ratio={}, th={}, effective={}}}",
                self.ratio,
                th_text(t),
                threshold_probability(t)
            ),
            None => format!("Probability{{ratio={}, keeps nothing}}", self.ratio),
        }
    }
}

/// Children follow their parent — its threshold when it has a reliable one, else its sampled flag — and roots
/// ask `root`.
#[derive(Debug)]
pub struct ParentThreshold {
    root: Box<dyn Composable>,
}

impl ParentThreshold {
    /// Roots decided by `root`.
    pub fn new(root: Box<dyn Composable>) -> Self {
        ParentThreshold { root }
    }
}

/// What a child of the parent in `p` intends when it follows it: the parent's threshold when it has a reliable one,
/// else threshold 0 (unreliable) when the parent was sampled, else nothing.
pub fn follow_parent(p: &Params<'_>) -> Intent {
    match p.parent_threshold {
        Some(t) => Intent {
            threshold: Some(t),
            reliable: true,
            attributes: Vec::new(),
        },
        None if p.parent_sampled => Intent {
            threshold: Some(0),
            reliable: false,
            attributes: Vec::new(),
        },
        None => Intent::drop(),
    }
}

impl Composable for ParentThreshold {
    fn intent(&self, p: &Params<'_>) -> Intent {
        if p.parent == Parent::None {
            return self.root.intent(p);
        }
        follow_parent(p)
    }
    fn description(&self) -> String {
        format!("ParentThreshold{{root={}}}", self.root.description())
    }
}

/// A `*` (any run) and `?` (one character) pattern, matched case-sensitively against a whole value.
#[derive(Debug, Clone, PartialEq)]
pub struct Glob(String);

impl Glob {
    /// The pattern.
    pub fn new(pattern: impl Into<String>) -> Self {
        Glob(pattern.into())
    }

    /// Whether `text` matches: linear backtracking over the last `*`, so at most `len(text) × len(pattern)` steps.
    pub fn is_match(&self, text: &str) -> bool {
        let p: Vec<char> = self.0.chars().collect();
        let t: Vec<char> = text.chars().collect();
        let (mut pi, mut ti) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while ti < t.len() {
            if pi < p.len() && p[pi] == '*' {
                star = Some((pi, ti));
                pi += 1;
            } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
                pi += 1;
                ti += 1;
            } else if let Some((sp, st)) = star {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            } else {
                return false;
            }
        }
        p[pi..].iter().all(|c| *c == '*')
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A rule's conditions; all given must match, none given matches every span.
#[derive(Debug, Default)]
pub struct Predicate {
    /// The span kinds matched (any).
    pub kinds: Vec<SpanKind>,
    /// Where the parent is (any).
    pub parents: Vec<Parent>,
    /// One attribute's value is one of these (non-string values by their text; arrays by any item).
    pub attribute_values: Option<(String, Vec<String>)>,
    /// One attribute's value matches an included pattern (all when none) and no excluded one.
    pub attribute_patterns: Option<(String, Vec<Glob>, Vec<Glob>)>,
    /// The span name matches one of these patterns.
    pub span_names: Vec<Glob>,
}

impl Predicate {
    /// Whether the span of `p` matches. The parent's sampled flag is not a condition, as the specification
    /// requires: a rule on it would break consistency (use [`ParentThreshold`]).
    pub fn matches(&self, p: &Params<'_>) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(p.kind))
            && (self.parents.is_empty() || self.parents.contains(&p.parent))
            && (self.span_names.is_empty() || self.span_names.iter().any(|g| g.is_match(p.name)))
            && self.attribute_values.as_ref().is_none_or(|(key, values)| {
                any_value(p.attributes, key, |v| values.iter().any(|w| w == v))
            })
            && self
                .attribute_patterns
                .as_ref()
                .is_none_or(|(key, included, excluded)| {
                    any_value(p.attributes, key, |v| {
                        (included.is_empty() || included.iter().any(|g| g.is_match(v)))
                            && !excluded.iter().any(|g| g.is_match(v))
                    })
                })
    }

    fn description(&self) -> String {
        let mut parts = Vec::new();
        if !self.kinds.is_empty() {
            parts.push(format!("span_kinds={:?}", self.kinds));
        }
        if !self.parents.is_empty() {
            parts.push(format!("parent={:?}", self.parents));
        }
        if !self.span_names.is_empty() {
            let names: Vec<String> = self.span_names.iter().map(|g| g.to_string()).collect();
            parts.push(format!("span_names={names:?}"));
        }
        if let Some((k, vs)) = &self.attribute_values {
            parts.push(format!("{k} in {vs:?}"));
        }
        if let Some((k, inc, exc)) = &self.attribute_patterns {
            let inc: Vec<String> = inc.iter().map(|g| g.to_string()).collect();
            let exc: Vec<String> = exc.iter().map(|g| g.to_string()).collect();
            parts.push(format!("{k} like {inc:?} not {exc:?}"));
        }
        if parts.is_empty() {
            "any".into()
        } else {
            parts.join(" & ")
        }
    }
}

/// Whether attribute `key` has a value (an array: any item) whose text satisfies `f`.
fn any_value(attributes: &[KeyValue], key: &str, f: impl Fn(&str) -> bool) -> bool {
    let Some(kv) = attributes.iter().find(|kv| kv.key.as_str() == key) else {
        return false;
    };
    match &kv.value {
        Value::String(s) => f(s.as_str()),
        Value::Array(opentelemetry::Array::String(items)) => items.iter().any(|s| f(s.as_str())),
        Value::Array(opentelemetry::Array::Bool(items)) => items.iter().any(|b| f(&b.to_string())),
        Value::Array(opentelemetry::Array::I64(items)) => items.iter().any(|n| f(&n.to_string())),
        Value::Array(opentelemetry::Array::F64(items)) => items.iter().any(|n| f(&n.to_string())),
        other => f(&other.to_string()),
    }
}

/// The first rule whose predicate matches decides; no match keeps nothing.
#[derive(Debug)]
pub struct RuleBased {
    rules: Vec<(Predicate, Box<dyn Composable>)>,
}

impl RuleBased {
    /// The rules, in order.
    pub fn new(rules: Vec<(Predicate, Box<dyn Composable>)>) -> Self {
        RuleBased { rules }
    }
}

impl Composable for RuleBased {
    fn intent(&self, p: &Params<'_>) -> Intent {
        self.rules
            .iter()
            .find(|(predicate, _)| predicate.matches(p))
            .map_or_else(Intent::drop, |(_, sampler)| sampler.intent(p))
    }
    fn description(&self) -> String {
        let rules: Vec<String> = self
            .rules
            .iter()
            .map(|(p, s)| format!("{} → {}", p.description(), s.description()))
            .collect();
        format!("RuleBased[{}]", rules.join("; "))
    }
}

/// The delegate's intent, with attributes added to the spans it samples.
#[derive(Debug)]
pub struct Annotating {
    attributes: Vec<KeyValue>,
    delegate: Box<dyn Composable>,
}

impl Annotating {
    /// `attributes` on what `delegate` samples.
    pub fn new(attributes: Vec<KeyValue>, delegate: Box<dyn Composable>) -> Self {
        Annotating {
            attributes,
            delegate,
        }
    }
}

impl Composable for Annotating {
    fn intent(&self, p: &Params<'_>) -> Intent {
        let mut intent = self.delegate.intent(p);
        intent.attributes.extend(self.attributes.iter().cloned());
        intent
    }
    fn description(&self) -> String {
        let keys: Vec<&str> = self.attributes.iter().map(|kv| kv.key.as_str()).collect();
        format!(
            "Annotating{{attributes={keys:?}, delegate={}}}",
            self.delegate.description()
        )
    }
}

/// A monotonic clock in nanoseconds (replaced by a simulated one in tests).
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The process's monotonic clock.
pub fn monotonic_clock() -> Clock {
    let start = std::time::Instant::now();
    Arc::new(move || start.elapsed().as_nanos() as u64)
}

#[derive(Debug, Clone, Copy)]
struct RateState {
    /// Exponentially decayed count of spans seen.
    count: f64,
    /// Exponentially decayed time they spanned.
    nanos: f64,
    last: u64,
    /// Smoothed probability the delegate asked for.
    average_probability: f64,
}

/// Lowers the delegate's probability so that at most `spans_per_second` are kept on average (java-contrib's
/// `ConsistentRateLimitingSampler`): the observed rate and the delegate's probability are smoothed exponentially
/// over `adaptation_time`, and the threshold written is the probability actually applied, so adjusted counts stay
/// right.
pub struct RateLimiting {
    delegate: Box<dyn Composable>,
    spans_per_second: f64,
    adaptation_seconds: f64,
    alpha: f64,
    clock: Clock,
    state: Mutex<RateState>,
}

impl fmt::Debug for RateLimiting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description())
    }
}

impl RateLimiting {
    /// At most `spans_per_second` (> 0) of what `delegate` samples, adapting over `adaptation_seconds` (> 0).
    pub fn new(
        delegate: Box<dyn Composable>,
        spans_per_second: f64,
        adaptation_seconds: f64,
        clock: Clock,
    ) -> Result<Self, String> {
        if !(spans_per_second.is_finite() && spans_per_second > 0.0) {
            return Err(format!(
                "spans_per_second {spans_per_second} must be a positive number (always_off keeps nothing)"
            ));
        }
        if !(adaptation_seconds.is_finite() && adaptation_seconds > 0.0) {
            return Err(format!(
                "adaptation_time {adaptation_seconds} must be a positive number of seconds"
            ));
        }
        let t = 1.0 / (spans_per_second * adaptation_seconds);
        let now = clock();
        Ok(RateLimiting {
            delegate,
            spans_per_second,
            adaptation_seconds,
            alpha: t / (1.0 + t),
            clock,
            state: Mutex::new(RateState {
                count: 0.0,
                nanos: 0.0,
                last: now,
                average_probability: 1.0,
            }),
        })
    }
}

impl Composable for RateLimiting {
    fn intent(&self, p: &Params<'_>) -> Intent {
        let mut intent = self.delegate.intent(p);
        let Some(threshold) = intent.threshold else {
            return intent;
        };
        let probability = threshold_probability(threshold);
        let now = (self.clock)();
        let s = {
            let mut state = self
                .state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let average = state.average_probability * (1.0 - self.alpha) + probability * self.alpha;
            let elapsed = now.saturating_sub(state.last);
            *state = if elapsed == 0 {
                RateState {
                    count: state.count + 1.0,
                    average_probability: average,
                    ..*state
                }
            } else {
                let decay = (-(elapsed as f64) * 1e-9 / self.adaptation_seconds).exp();
                RateState {
                    count: state.count * decay + 1.0,
                    nanos: state.nanos * decay + elapsed as f64,
                    last: now,
                    average_probability: average,
                }
            };
            *state
        };
        // The largest probability that keeps the target rate at the observed arrival rate.
        let target = s.nanos * self.spans_per_second * 1e-9 / s.count;
        if s.average_probability <= target {
            // Not limiting: the delegate's threshold as it is (not round-tripped through a float).
            return intent;
        }
        let applied = target / s.average_probability * probability;
        let t = threshold_of(applied);
        intent.threshold = (t < MAX_THRESHOLD).then_some(t);
        if intent.threshold.is_none() {
            intent.reliable = false;
        }
        intent
    }
    fn description(&self) -> String {
        format!(
            "RateLimiting{{spans_per_second={}, adaptation_time={}s, delegate={}}}",
            self.spans_per_second,
            self.adaptation_seconds,
            self.delegate.description()
        )
    }
}

/// The SDK sampler built from a tree of composable samplers: asks the root for an intent, decides with the
/// span's randomness (or fresh randomness when the threshold is not reliable), and writes or erases `th`.
///
/// The tree can be replaced while spans are being decided ([`Composite::replace`], a reload): each decision reads
/// the tree once, so a span is decided under one generation of it, never a mix.
#[derive(Debug, Clone)]
pub struct Composite {
    tree: Arc<arc_swap::ArcSwap<Tree>>,
    warned: Arc<AtomicBool>,
}

/// One generation of a composite sampler's tree.
#[derive(Debug)]
struct Tree {
    root: Arc<dyn Composable>,
    generation: u64,
}

impl Composite {
    /// The sampler of `root`.
    pub fn new(root: Box<dyn Composable>) -> Self {
        Composite {
            tree: Arc::new(arc_swap::ArcSwap::from_pointee(Tree {
                root: Arc::from(root),
                generation: 0,
            })),
            warned: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Replaces the tree for every span decided from now on (this sampler and its clones); returns the new
    /// generation (the first tree is generation 0).
    pub fn replace(&self, root: Box<dyn Composable>) -> u64 {
        self.put(Arc::from(root)).0
    }

    /// Puts `root` in as the next generation; returns that generation and the root it replaced (to put back).
    pub(crate) fn put(&self, root: Arc<dyn Composable>) -> (u64, Arc<dyn Composable>) {
        let generation = self.generation() + 1;
        let old = self.tree.swap(Arc::new(Tree { root, generation }));
        (generation, old.root.clone())
    }

    /// The generation of the tree in use.
    pub fn generation(&self) -> u64 {
        self.tree.load().generation
    }

    /// The tree, with its thresholds.
    pub fn description(&self) -> String {
        format!("Composite{{{}}}", self.tree.load().root.description())
    }
}

/// A node shared by several trees (a distro's sampler, built once, kept across reloads).
#[derive(Debug, Clone)]
pub struct Shared(pub Arc<dyn Composable>);

impl Composable for Shared {
    fn intent(&self, p: &Params<'_>) -> Intent {
        self.0.intent(p)
    }
    fn description(&self) -> String {
        self.0.description()
    }
}

/// The W3C Trace Context level 2 flag that says the trace id's rightmost 7 bytes are random.
const RANDOM_FLAG: u8 = 0x02;

impl ShouldSample for Composite {
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
            self.decide(parent, trace_id, name, span_kind, attributes, links)
        })
    }
}

impl Composite {
    fn decide(
        &self,
        parent: Option<&SpanContext>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let empty = TraceState::default();
        let state = parent.map_or(&empty, SpanContext::trace_state);
        let ot = OtState::of(state);
        let r = randomness(trace_id, &ot);
        let (where_, sampled) = Parent::of(parent);
        // A parent's threshold that disagrees with its sampled flag is not one: the specification says erase it.
        let parent_threshold = ot.th.filter(|t| sampled && r >= *t);
        let params = Params {
            trace_id,
            parent: where_,
            parent_sampled: sampled,
            parent_threshold,
            name,
            kind: span_kind,
            attributes,
            links,
        };
        let intent = self.tree.load().root.intent(&params);
        let keep = match intent.threshold {
            None => false,
            Some(t) if intent.reliable => {
                if ot.rv.is_none()
                    && where_ == Parent::Remote
                    && t > 0
                    && parent.is_some_and(|sc| sc.trace_flags().to_u8() & RANDOM_FLAG == 0)
                    && !self.warned.load(Ordering::Relaxed)
                    && !self.warned.swap(true, Ordering::Relaxed)
                {
                    eprintln!(
                        "ndotel: warning: the composite sampler is presuming trace ids are random and expects the \
                         trace's random flag to be set in confirmation; a caller did not set it. Please upgrade \
                         your caller(s) to use W3C Trace Context Level 2 (said once)"
                    );
                }
                r >= t
            }
            Some(t) => fresh_randomness() >= t,
        };
        let th = (keep && intent.reliable)
            .then_some(intent.threshold)
            .flatten();
        // A child that continues its parent's threshold (or a span without any) leaves the entry as it came: the
        // parent's state, cloned as every SDK sampler clones it.
        let trace_state = if ot.clean && ot.th == th {
            state.clone()
        } else {
            let value = ot.value(th);
            let changed = if value.is_empty() {
                state.delete("ot")
            } else {
                state.insert("ot", value)
            };
            changed.unwrap_or_else(|_| state.clone())
        };
        SamplingResult {
            decision: if keep {
                SamplingDecision::RecordAndSample
            } else {
                SamplingDecision::Drop
            },
            attributes: if keep { intent.attributes } else { Vec::new() },
            trace_state,
        }
    }
}

/// 56 fresh random bits, for a decision whose threshold is not the span's probability (a parent sampled without a
/// threshold: threshold 0 keeps it whatever they are).
fn fresh_randomness() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    h.finish() & (MAX_THRESHOLD - 1)
}

/// `[sampler]` of `distro.toml`: a composite sampler the host builds, used unless `OTEL_TRACES_SAMPLER` names
/// another. `composite` holds one composable sampler, spelled as the OpenTelemetry configuration schema's
/// `composite/development` (`always_on`, `always_off`, `probability`, `parent_threshold`, `rule_based`), plus
/// ndotel's `annotating` and `rate_limiting`, and `span_names` in rules.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplerSection {
    /// The root of the tree.
    pub composite: ComposableConfig,
}

/// One composable sampler, as configured.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ComposableConfig {
    /// `always_on = {}`.
    AlwaysOn(Empty),
    /// `always_off = {}`.
    AlwaysOff(Empty),
    /// `probability = { ratio = 0.1 }` (ratio 1.0 when omitted; `precision` in hex digits, 4 by default).
    Probability(ProbabilityConfig),
    /// `parent_threshold = { root = { … } }`.
    ParentThreshold(ParentThresholdConfig),
    /// `rule_based = { rules = [ … ] }`: the first matching rule's sampler decides; none matching keeps nothing.
    RuleBased(RuleBasedConfig),
    /// `annotating = { attributes = { k = "v" }, delegate = { … } }`.
    Annotating(AnnotatingConfig),
    /// `rate_limiting = { spans_per_second = 100, adaptation_time = 5, delegate = { … } }`.
    RateLimiting(RateLimitingConfig),
    /// `distro = {}`: the selected distro's own sampler (its first), asked for its intent (ndotel-api 1.6; an older
    /// plugin's decision is read as one).
    Distro(Empty),
}

/// No settings.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// `probability`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbabilityConfig {
    /// 0 to 1 (1 when omitted).
    pub ratio: Option<f64>,
    /// Hex digits of the threshold, 1 to 12 ([`DEFAULT_PRECISION`] when omitted).
    pub precision: Option<u32>,
}

/// `parent_threshold`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParentThresholdConfig {
    /// Decides roots.
    pub root: Box<ComposableConfig>,
}

/// `rule_based`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleBasedConfig {
    /// In order.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
}

/// One rule: every condition given must match; none given matches every span.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// `{ key = "http.route", values = ["/healthz"] }`.
    pub attribute_values: Option<AttributeValuesConfig>,
    /// `{ key = "url.path", included = ["/internal/*"], excluded = ["/internal/special/*"] }`.
    pub attribute_patterns: Option<AttributePatternsConfig>,
    /// `["server", "client", …]`.
    pub span_kinds: Option<Vec<SpanKindName>>,
    /// `["none", "local", "remote"]`.
    pub parent: Option<Vec<ParentName>>,
    /// Patterns on the span name (ndotel's addition).
    pub span_names: Option<Vec<String>>,
    /// The sampler of matching spans.
    pub sampler: ComposableConfig,
}

/// `attribute_values`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeValuesConfig {
    /// The attribute.
    pub key: String,
    /// Its values that match.
    pub values: Vec<String>,
}

/// `attribute_patterns`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributePatternsConfig {
    /// The attribute.
    pub key: String,
    /// Patterns that match (every value when omitted).
    pub included: Option<Vec<String>>,
    /// Patterns that do not, whatever `included` says.
    pub excluded: Option<Vec<String>>,
}

/// A span kind's name.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum SpanKindName {
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

/// Where a parent is.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum ParentName {
    None,
    Local,
    Remote,
}

/// `annotating`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnotatingConfig {
    /// Added to sampled spans.
    pub attributes: std::collections::BTreeMap<String, String>,
    /// Decides.
    pub delegate: Box<ComposableConfig>,
}

/// `rate_limiting`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitingConfig {
    /// The most spans kept per second, on average.
    pub spans_per_second: f64,
    /// Seconds over which the rate is averaged (5 when omitted).
    pub adaptation_time: Option<f64>,
    /// What is limited (`always_on` when omitted).
    pub delegate: Option<Box<ComposableConfig>>,
}

/// Builds the selected distro's sampler for a `distro = {}` node.
pub type DistroSampler<'a> = &'a dyn Fn() -> Result<Box<dyn Composable>, String>;

impl ComposableConfig {
    /// Builds the sampler to check it (a `distro = {}` node stands in as always-on); an error names what is wrong
    /// and where in the tree.
    pub fn build(&self) -> Result<Box<dyn Composable>, String> {
        self.build_with(&|| Ok(Box::new(AlwaysOn)))
    }

    /// Builds the sampler, `distro` building the distro's sampler for each `distro = {}` node.
    pub fn build_with(&self, distro: DistroSampler<'_>) -> Result<Box<dyn Composable>, String> {
        Ok(match self {
            ComposableConfig::Distro(_) => distro().map_err(|e| format!("distro: {e}"))?,
            ComposableConfig::AlwaysOn(_) => Box::new(AlwaysOn),
            ComposableConfig::AlwaysOff(_) => Box::new(AlwaysOff),
            ComposableConfig::Probability(p) => Box::new(
                Probability::with_precision(
                    p.ratio.unwrap_or(1.0),
                    p.precision.unwrap_or(DEFAULT_PRECISION),
                )
                .map_err(|e| format!("probability: {e}"))?,
            ),
            ComposableConfig::ParentThreshold(p) => Box::new(ParentThreshold::new(
                p.root
                    .build_with(distro)
                    .map_err(|e| format!("parent_threshold.root: {e}"))?,
            )),
            ComposableConfig::RuleBased(r) => {
                let rules = r
                    .rules
                    .iter()
                    .enumerate()
                    .map(|(i, rule)| {
                        rule.build(distro)
                            .map_err(|e| format!("rule_based.rules[{i}]: {e}"))
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                Box::new(RuleBased::new(rules))
            }
            ComposableConfig::Annotating(a) => Box::new(Annotating::new(
                a.attributes
                    .iter()
                    .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
                    .collect(),
                a.delegate
                    .build_with(distro)
                    .map_err(|e| format!("annotating.delegate: {e}"))?,
            )),
            ComposableConfig::RateLimiting(r) => {
                let delegate = match &r.delegate {
                    Some(d) => d
                        .build_with(distro)
                        .map_err(|e| format!("rate_limiting.delegate: {e}"))?,
                    None => Box::new(AlwaysOn),
                };
                Box::new(
                    RateLimiting::new(
                        delegate,
                        r.spans_per_second,
                        r.adaptation_time.unwrap_or(5.0),
                        monotonic_clock(),
                    )
                    .map_err(|e| format!("rate_limiting: {e}"))?,
                )
            }
        })
    }
}

impl RuleConfig {
    fn build(&self, distro: DistroSampler<'_>) -> Result<(Predicate, Box<dyn Composable>), String> {
        let globs = |list: &Option<Vec<String>>| {
            list.iter()
                .flatten()
                .map(|p| Glob::new(p.clone()))
                .collect::<Vec<_>>()
        };
        let predicate = Predicate {
            kinds: self
                .span_kinds
                .iter()
                .flatten()
                .map(|k| match k {
                    SpanKindName::Internal => SpanKind::Internal,
                    SpanKindName::Server => SpanKind::Server,
                    SpanKindName::Client => SpanKind::Client,
                    SpanKindName::Producer => SpanKind::Producer,
                    SpanKindName::Consumer => SpanKind::Consumer,
                })
                .collect(),
            parents: self
                .parent
                .iter()
                .flatten()
                .map(|p| match p {
                    ParentName::None => Parent::None,
                    ParentName::Local => Parent::Local,
                    ParentName::Remote => Parent::Remote,
                })
                .collect(),
            attribute_values: self
                .attribute_values
                .as_ref()
                .map(|a| (a.key.clone(), a.values.clone())),
            attribute_patterns: self
                .attribute_patterns
                .as_ref()
                .map(|a| (a.key.clone(), globs(&a.included), globs(&a.excluded))),
            span_names: globs(&self.span_names),
        };
        let sampler = self
            .sampler
            .build_with(distro)
            .map_err(|e| format!("sampler: {e}"))?;
        Ok((predicate, sampler))
    }
}

#[cfg(test)]
#[path = "consistent_tests.rs"]
mod tests;
