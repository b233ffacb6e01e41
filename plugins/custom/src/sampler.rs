//! The sampler. Children follow their parent (local or remote), so a dropped request takes its whole trace — DB
//! queries included — with it. A root span is first checked against the health-check paths (dropped), then
//! against the ordered rules (first match decides: drop, sample, ratio or rate limit), then sampled by the
//! fallback ratio. Ratios are consistent probability sampling (the OpenTelemetry specification's thresholds on the
//! trace id's randomness), so every service of a trace agrees; as a node of the host's composite sampler
//! (`[sampler] composite = { distro = {} }`) the sampler states them as thresholds ([`Sampler::intent`]), which the
//! host writes as `th` into the trace state.

use ndotel_api::sampling::SamplingIntent;
use ndotel_api::{BoxError, Decision, ParentKind, Sampler, SamplingParams, SpanKind};
use regex::Regex;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The paths dropped by default: health, readiness, liveness and metrics endpoints.
pub const DEFAULT_DROP_PATHS: &[&str] = &[
    "/health", "/healthz", "/ready", "/readyz", "/live", "/livez", "/metrics",
];

/// Attributes the HTTP instrumentation sets that hold the path or route.
const PATH_ATTRIBUTES: &[&str] = &["url.path", "http.route", "http.target"];

/// `[distro.otel_custom_distro.sampler]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplerSettings {
    /// Fraction of root traces kept when no rule matches, 0.0 ..= 1.0.
    pub ratio: f64,
    /// Paths whose traces are dropped (matched on `url.path`, `http.route`, `http.target` and the span name).
    pub drop_paths: Vec<String>,
    /// Ordered rules for root spans; the first that matches decides.
    pub rules: Vec<RuleSettings>,
}

impl Default for SamplerSettings {
    fn default() -> Self {
        SamplerSettings {
            ratio: 1.0,
            drop_paths: DEFAULT_DROP_PATHS.iter().map(|s| s.to_string()).collect(),
            rules: Vec::new(),
        }
    }
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Drop the trace.
    Drop,
    /// Keep the trace.
    Sample,
    /// Keep this fraction of traces (needs `ratio`).
    Ratio,
    /// Keep at most `per_second` traces per second, shared by all threads (needs `per_second`).
    RateLimit,
}

/// `[[distro.otel_custom_distro.sampler.rules]]`: every condition given must match.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSettings {
    /// Regex on the span name.
    pub name: Option<String>,
    /// Span kind: internal, server, client, producer, consumer.
    pub kind: Option<String>,
    /// Regexes on attribute values, by attribute key; a missing attribute does not match.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// The action.
    pub action: Action,
    /// For `ratio`.
    pub ratio: Option<f64>,
    /// For `rate_limit`.
    pub per_second: Option<f64>,
}

#[derive(Debug)]
enum Decide {
    Drop,
    Sample,
    Ratio(Option<u64>),
    RateLimit(TokenBucket),
}

#[derive(Debug)]
struct Rule {
    name: Option<Regex>,
    kind: Option<SpanKind>,
    attributes: Vec<(String, Regex)>,
    decide: Decide,
    text: String,
}

/// A token bucket without a lock (GCRA): one atomic holds the time at which the bucket will be full again.
/// Capacity is one second's worth of tokens.
#[derive(Debug)]
struct TokenBucket {
    start: Instant,
    interval_ns: u64,
    capacity_ns: u64,
    full_at_ns: AtomicU64,
}

impl TokenBucket {
    fn new(per_second: f64) -> Self {
        let interval_ns = (1e9 / per_second).max(1.0) as u64;
        TokenBucket {
            start: Instant::now(),
            interval_ns,
            capacity_ns: 1_000_000_000,
            full_at_ns: AtomicU64::new(0),
        }
    }

    fn try_take(&self) -> bool {
        self.try_take_at(self.start.elapsed().as_nanos() as u64)
    }

    fn try_take_at(&self, now: u64) -> bool {
        let mut current = self.full_at_ns.load(Ordering::Relaxed);
        loop {
            let next = current.max(now) + self.interval_ns;
            if next > now + self.capacity_ns {
                return false;
            }
            match self.full_at_ns.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(seen) => current = seen,
            }
        }
    }
}

/// The consistent-sampling threshold of `ratio` (the specification's, at 4 hex digits): `None` keeps nothing. A
/// trace is kept when its randomness (its id's 7 rightmost bytes) reaches it, so every service deciding on the same
/// ratio this way — this distro, the host's composite sampler, any OpenTelemetry SDK's consistent sampler — keeps
/// the same traces.
fn threshold(ratio: f64) -> Option<u64> {
    ndotel_api::sampling::ratio_threshold(ratio)
}

fn parse_kind(s: &str) -> Result<SpanKind, BoxError> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "internal" => SpanKind::Internal,
        "server" => SpanKind::Server,
        "client" => SpanKind::Client,
        "producer" => SpanKind::Producer,
        "consumer" => SpanKind::Consumer,
        other => {
            return Err(format!(
                "unknown span kind {other:?}: use internal, server, client, producer or consumer"
            )
            .into());
        }
    })
}

fn check_ratio(r: f64, what: &str) -> Result<f64, BoxError> {
    if (0.0..=1.0).contains(&r) {
        Ok(r)
    } else {
        Err(format!("{what} = {r} is outside 0.0..=1.0").into())
    }
}

impl Rule {
    fn new(i: usize, s: &RuleSettings) -> Result<Rule, BoxError> {
        let at = |e: BoxError| -> BoxError { format!("sampler.rules[{i}]: {e}").into() };
        let name = s
            .name
            .as_deref()
            .map(Regex::new)
            .transpose()
            .map_err(|e| at(e.into()))?;
        let kind = s.kind.as_deref().map(parse_kind).transpose().map_err(at)?;
        let attributes = s
            .attributes
            .iter()
            .map(|(k, v)| Ok((k.clone(), Regex::new(v)?)))
            .collect::<Result<Vec<_>, BoxError>>()
            .map_err(at)?;
        let decide = match s.action {
            Action::Drop => Decide::Drop,
            Action::Sample => Decide::Sample,
            Action::Ratio => {
                let r = s
                    .ratio
                    .ok_or_else(|| at("action \"ratio\" needs `ratio = <0.0..=1.0>`".into()))?;
                Decide::Ratio(threshold(check_ratio(r, "ratio").map_err(at)?))
            }
            Action::RateLimit => {
                let n = s.per_second.filter(|n| *n > 0.0).ok_or_else(|| {
                    at("action \"rate_limit\" needs `per_second = <a positive number>`".into())
                })?;
                Decide::RateLimit(TokenBucket::new(n))
            }
        };
        let mut text = format!("{:?}", s.action);
        if let Some(r) = s.ratio.filter(|_| s.action == Action::Ratio) {
            text = format!("Ratio({r})");
        }
        if let Some(n) = s.per_second.filter(|_| s.action == Action::RateLimit) {
            text = format!("RateLimit({n}/s)");
        }
        let mut conditions = Vec::new();
        if let Some(n) = &s.name {
            conditions.push(format!("name~{n}"));
        }
        if let Some(k) = &s.kind {
            conditions.push(format!("kind={k}"));
        }
        conditions.extend(s.attributes.iter().map(|(k, v)| format!("{k}~{v}")));
        Ok(Rule {
            name,
            kind,
            attributes,
            decide,
            text: format!("{}=>{text}", conditions.join("&")),
        })
    }

    fn matches(&self, p: &SamplingParams<'_>) -> bool {
        if self.kind.is_some_and(|k| k != p.kind()) {
            return false;
        }
        if self.name.as_ref().is_some_and(|re| !re.is_match(p.name())) {
            return false;
        }
        self.attributes.iter().all(|(key, re)| {
            p.attributes().iter().any(|kv| {
                kv.key.as_str() == key
                    && match kv.value.as_str() {
                        Some(s) => re.is_match(s),
                        None => re.is_match(&kv.value.to_string()),
                    }
            })
        })
    }
}

/// The sampler.
#[derive(Debug)]
pub struct CustomSampler {
    drop_paths: Vec<String>,
    rules: Vec<Rule>,
    ratio: f64,
    threshold: Option<u64>,
}

impl CustomSampler {
    /// Builds the sampler, validating ratios, regexes and kinds.
    pub fn new(settings: &SamplerSettings) -> Result<Self, BoxError> {
        let ratio = check_ratio(settings.ratio, "sampler.ratio")?;
        let rules = settings
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| Rule::new(i, r))
            .collect::<Result<_, _>>()?;
        Ok(CustomSampler {
            drop_paths: settings.drop_paths.clone(),
            rules,
            ratio,
            threshold: threshold(ratio),
        })
    }

    fn is_health_check(&self, params: &SamplingParams<'_>) -> bool {
        if self.drop_paths.is_empty() {
            return false;
        }
        // Span names look like `GET /health` or plain `/health`. The name is asked first: it needs no view of the
        // attributes, so a health check is dropped without one.
        let name = params.name();
        // Byte loops, not `rfind`/`find`: for names this short, the generic searches cost more than the scan.
        let last_word = match name.bytes().rposition(|b| b == b' ') {
            Some(i) => &name[i + 1..],
            None => name,
        };
        // Then the path attributes, by key: the host converts only their values, not the span's every attribute.
        self.is_drop_path(last_word)
            || PATH_ATTRIBUTES.iter().any(|key| {
                params
                    .attribute(key)
                    .and_then(|v| v.as_str())
                    .is_some_and(|v| v.starts_with('/') && self.is_drop_path(v))
            })
    }

    fn is_drop_path(&self, path: &str) -> bool {
        let path = match path.bytes().position(|b| b == b'?') {
            Some(i) => &path[..i],
            None => path,
        };
        self.drop_paths.iter().any(|p| p == path)
    }

    fn sample_root(&self, params: &SamplingParams<'_>) -> Decision {
        match self.root_intent(params) {
            SamplingIntent::Keep { threshold, .. }
                if ndotel_api::sampling::trace_randomness(params.trace_id()) >= threshold =>
            {
                Decision::RecordAndSample
            }
            _ => Decision::Drop,
        }
    }

    /// A root span's intent: health checks and `drop` rules keep nothing, `sample` keeps all, ratios (a rule's or
    /// the fallback) are consistent thresholds, and a rate limit keeps what its bucket allows (a probability it
    /// cannot state, so no threshold is written for it).
    fn root_intent(&self, params: &SamplingParams<'_>) -> SamplingIntent {
        if self.is_health_check(params) {
            return SamplingIntent::Drop;
        }
        let ratio = |t: Option<u64>| match t {
            Some(threshold) => SamplingIntent::Keep {
                threshold,
                reliable: true,
            },
            None => SamplingIntent::Drop,
        };
        match self.rules.iter().find(|r| r.matches(params)) {
            Some(rule) => match &rule.decide {
                Decide::Drop => SamplingIntent::Drop,
                Decide::Sample => SamplingIntent::always(),
                Decide::Ratio(t) => ratio(*t),
                Decide::RateLimit(bucket) if bucket.try_take() => SamplingIntent::Keep {
                    threshold: 0,
                    reliable: false,
                },
                Decide::RateLimit(_) => SamplingIntent::Drop,
            },
            None => ratio(self.threshold),
        }
    }
}

impl Sampler for CustomSampler {
    fn should_sample(&self, params: &SamplingParams<'_>) -> Decision {
        // Parent-based: a child follows its parent, so a trace is kept or dropped whole.
        match params.parent() {
            ParentKind::None => self.sample_root(params),
            ParentKind::Local | ParentKind::Remote => Decision::FollowParent,
        }
    }

    fn description(&self) -> String {
        let rules: Vec<&str> = self.rules.iter().map(|r| r.text.as_str()).collect();
        format!(
            "OtelCustomSampler{{drop_paths={:?}, rules=[{}], ParentBased{{root=ConsistentRatio{{{}}}}}}}",
            self.drop_paths,
            rules.join(", "),
            self.ratio
        )
    }

    fn intent(&self, params: &SamplingParams<'_>) -> SamplingIntent {
        match params.parent() {
            ParentKind::None => self.root_intent(params),
            ParentKind::Local | ParentKind::Remote => SamplingIntent::FollowParent,
        }
    }

    /// Parent-based, whatever the rules say (they apply to roots): the host decides child spans without a call.
    fn children_follow_parent(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndotel_api::testing::{TestParams, sample};

    fn params(name: &str, attrs: &[(&str, &str)], parent: ParentKind, sampled: bool) -> TestParams {
        let mut p = TestParams::new(name)
            .kind(SpanKind::Server)
            .parent(parent, sampled)
            .trace_id([7; 16]);
        for (k, v) in attrs {
            p = p.attribute(k, *v);
        }
        p
    }

    fn root(name: &str, attrs: &[(&str, &str)]) -> TestParams {
        params(name, attrs, ParentKind::None, false)
    }

    fn rule(toml_text: &str) -> SamplerSettings {
        let mut s: SamplerSettings = ndotel_api::toml::from_str(toml_text).unwrap();
        s.drop_paths = DEFAULT_DROP_PATHS.iter().map(|s| s.to_string()).collect();
        s
    }

    #[test]
    fn health_checks_are_dropped_by_name_and_by_path_attribute() {
        let s = CustomSampler::new(&SamplerSettings::default()).unwrap();
        assert_eq!(sample(&s, &root("GET /health", &[])), Decision::Drop);
        let attrs = [("url.path", "/readyz")];
        assert_eq!(sample(&s, &root("GET", &attrs)), Decision::Drop);
        let attrs = [("http.route", "/metrics")];
        assert_eq!(sample(&s, &root("GET", &attrs)), Decision::Drop);
        assert_eq!(
            sample(&s, &root("GET /items", &[])),
            Decision::RecordAndSample
        );
        assert_eq!(
            sample(&s, &root("GET /healthcheck-report", &[])),
            Decision::RecordAndSample
        );
    }

    #[test]
    fn children_follow_their_parent_local_and_remote() {
        let s = CustomSampler::new(&SamplerSettings::default()).unwrap();
        // It says so, so the host decides children without asking: what it would answer must agree.
        assert!(s.children_follow_parent());
        // The host resolves FollowParent to the parent's decision; the health-check name does not matter then.
        for parent in [ParentKind::Local, ParentKind::Remote] {
            for sampled in [false, true] {
                let p = params("GET /health", &[], parent, sampled);
                assert_eq!(sample(&s, &p), Decision::FollowParent);
                assert_eq!(
                    ndotel_api::testing::intent(&s, &p),
                    SamplingIntent::FollowParent
                );
            }
        }
    }

    #[test]
    fn ratio_fallback_and_bad_ratio_is_rejected() {
        let s = CustomSampler::new(&SamplerSettings {
            ratio: 0.0,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(sample(&s, &root("GET /items", &[])), Decision::Drop);
        assert!(
            CustomSampler::new(&SamplerSettings {
                ratio: 1.5,
                ..Default::default()
            })
            .is_err()
        );
        // Over many trace ids, ratio 0.25 keeps about a quarter.
        let s = CustomSampler::new(&SamplerSettings {
            ratio: 0.25,
            ..Default::default()
        })
        .unwrap();
        let kept = (0u64..4000)
            .filter(|i| {
                let mut p = root("GET /items", &[]);
                p.trace_id[8..]
                    .copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
                sample(&s, &p) == Decision::RecordAndSample
            })
            .count();
        assert!((800..1200).contains(&kept), "{kept}");
    }

    #[test]
    fn drop_rule_on_name_regex_and_kind() {
        let s = CustomSampler::new(&rule(
            "[[rules]]\nname = \"^GET /admin\"\nkind = \"server\"\naction = \"drop\"\n",
        ))
        .unwrap();
        assert_eq!(sample(&s, &root("GET /admin/users", &[])), Decision::Drop);
        assert_eq!(
            sample(&s, &root("GET /items", &[])),
            Decision::RecordAndSample
        );
        let client = root("GET /admin/users", &[]).kind(SpanKind::Client);
        assert_eq!(
            sample(&s, &client),
            Decision::RecordAndSample,
            "kind must match too"
        );
    }

    #[test]
    fn sample_rule_beats_a_zero_fallback_ratio_and_rules_are_ordered() {
        let s = CustomSampler::new(&rule(
            "ratio = 0.0\n[[rules]]\nattributes = { \"http.request.method\" = \"^POST$\" }\naction = \"sample\"\n\
             [[rules]]\nattributes = { \"http.request.method\" = \".*\" }\naction = \"drop\"\n",
        ))
        .unwrap();
        let post = [("http.request.method", "POST")];
        let get = [("http.request.method", "GET")];
        assert_eq!(sample(&s, &root("x", &post)), Decision::RecordAndSample);
        assert_eq!(sample(&s, &root("x", &get)), Decision::Drop);
        assert_eq!(
            sample(&s, &root("x", &[])),
            Decision::Drop,
            "missing attribute: fallback ratio 0"
        );
    }

    #[test]
    fn ratio_rule_uses_the_trace_id() {
        let s = CustomSampler::new(&rule(
            "[[rules]]\nname = \"^batch\"\naction = \"ratio\"\nratio = 0.5\n",
        ))
        .unwrap();
        // Consistent: kept when the trace id's 7 rightmost bytes reach the threshold of 0.5 (0x80000000000000).
        let mut p = root("batch job", &[]);
        p.trace_id[8..].copy_from_slice(&0u64.to_be_bytes());
        assert_eq!(sample(&s, &p), Decision::Drop);
        p.trace_id[8..].copy_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(sample(&s, &p), Decision::RecordAndSample);
        p.trace_id[8..].copy_from_slice(&0x0080_0000_0000_0000u64.to_be_bytes());
        assert_eq!(sample(&s, &p), Decision::RecordAndSample);
        p.trace_id[8..].copy_from_slice(&0x007f_ffff_ffff_ffffu64.to_be_bytes());
        assert_eq!(sample(&s, &p), Decision::Drop);
        // As an intent: the threshold, reliable, which the host writes as `th:8`.
        assert_eq!(
            ndotel_api::testing::intent(&s, &p),
            SamplingIntent::Keep {
                threshold: 0x0080_0000_0000_0000,
                reliable: true
            }
        );
        let health = root("GET /health", &[]);
        assert_eq!(
            ndotel_api::testing::intent(&s, &health),
            SamplingIntent::Drop
        );
        let child = params("SELECT", &[], ParentKind::Remote, true);
        assert_eq!(
            ndotel_api::testing::intent(&s, &child),
            SamplingIntent::FollowParent
        );
        assert!(
            CustomSampler::new(&rule("[[rules]]\naction = \"ratio\"\n"))
                .unwrap_err()
                .to_string()
                .contains("rules[0]")
        );
    }

    #[test]
    fn rate_limit_rule_is_a_token_bucket() {
        let bucket = TokenBucket::new(10.0);
        let taken = (0..100)
            .filter(|_| bucket.try_take_at(5_000_000_000))
            .count();
        assert_eq!(taken, 10, "a burst takes one second's worth");
        assert!(!bucket.try_take_at(5_000_000_000));
        assert!(bucket.try_take_at(5_100_000_001), "refills at 10/s");

        let s = CustomSampler::new(&rule(
            "[[rules]]\nname = \".\"\naction = \"rate_limit\"\nper_second = 5\n",
        ))
        .unwrap();
        let kept = (0..50)
            .filter(|_| sample(&s, &root("GET /items", &[])) == Decision::RecordAndSample)
            .count();
        assert!((5..=6).contains(&kept), "{kept}");
    }

    #[test]
    fn the_bucket_is_shared_across_threads() {
        let bucket = std::sync::Arc::new(TokenBucket::new(100.0));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let b = bucket.clone();
                std::thread::spawn(move || {
                    (0..1000).filter(|_| b.try_take_at(1_000_000_000)).count()
                })
            })
            .collect();
        let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 100);
    }

    #[test]
    fn description_names_rules_and_ratio() {
        let s = CustomSampler::new(&rule(
            "ratio = 0.5\n[[rules]]\nname = \"^GET\"\naction = \"rate_limit\"\nper_second = 3\n",
        ))
        .unwrap();
        let d = s.description();
        assert!(
            d.contains("name~^GET=>RateLimit(3/s)") && d.contains("ConsistentRatio{0.5}"),
            "{d}"
        );
    }

    #[test]
    fn unknown_kind_is_an_error() {
        assert!(
            CustomSampler::new(&rule("[[rules]]\nkind = \"sever\"\naction = \"drop\"\n"))
                .unwrap_err()
                .to_string()
                .contains("sever")
        );
    }
}
