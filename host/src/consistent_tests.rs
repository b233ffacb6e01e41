//! Tests of consistent probability sampling: the specification's examples and reference algorithm, statistics
//! with fixed seeds (deterministic), consistency across samplers, tracestate handling and the rate limiter on a
//! simulated clock.

use super::*;
use opentelemetry::trace::{SpanId, TraceFlags};
use std::sync::atomic::AtomicU64;

/// splitmix64: the same sequence as `host/tests/data/th_reference.py`.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn trace_id(&mut self) -> TraceId {
        TraceId::from_bytes(
            ((u128::from(self.next()) << 64) | u128::from(self.next())).to_be_bytes(),
        )
    }
}

#[test]
fn the_specifications_worked_examples() {
    // 1-in-N at precision 3, 4 and 5 (trace/tracestate-probability-sampling.md).
    let table: &[(f64, [&str; 3])] = &[
        (1.0, ["0", "0", "0"]),
        (2.0, ["8", "8", "8"]),
        (3.0, ["aab", "aaab", "aaaab"]),
        (4.0, ["c", "c", "c"]),
        (5.0, ["ccd", "cccd", "ccccd"]),
        (8.0, ["e", "e", "e"]),
        (10.0, ["e66", "e666", "e6666"]),
        (16.0, ["f", "f", "f"]),
        (100.0, ["fd71", "fd70a", "fd70a4"]),
        (1000.0, ["ffbe7", "ffbe77", "ffbe76d"]),
        (10000.0, ["fff972", "fff9724", "fff97247"]),
        (100000.0, ["ffff584", "ffff583a", "ffff583a5"]),
        (1000000.0, ["ffffef4", "ffffef39", "ffffef391"]),
    ];
    for (n, expected) in table {
        for (precision, th) in [3, 4, 5].into_iter().zip(expected) {
            assert_eq!(
                probability_to_th(1.0 / n, precision).as_deref(),
                Some(*th),
                "1/{n} at precision {precision}"
            );
        }
    }
    // Decoding: right-padded to 14 digits; the probabilities the examples name.
    assert_eq!(parse_th("c"), Some(0xc0_0000_0000_0000));
    assert_eq!(threshold_probability(parse_th("c").unwrap()), 0.25);
    assert_eq!(threshold_probability(parse_th("4").unwrap()), 0.75);
    assert_eq!(threshold_probability(parse_th("08").unwrap()), 0.96875);
    assert_eq!(parse_th("0"), Some(0));
    let third = parse_th(&probability_to_th(1.0 / 3.0, 4).unwrap()).unwrap();
    assert_eq!(threshold_probability(third), 0.3333282470703125);
    assert_eq!(adjusted_count(third), 3.00004577706569);
    // Encoding: trailing zeros removed, leading kept.
    assert_eq!(th_text(0x08_0000_0000_0000), "08");
    assert_eq!(th_text(0), "0");
    assert_eq!(th_text(0x00fd_70a4_0000_0000), "fd70a4");
    // What the grammar refuses is ignored.
    for bad in ["", "C", "0x1", "123456789012345", "g"] {
        assert_eq!(parse_th(bad), None, "{bad:?}");
    }
    assert_eq!(parse_rv("00112233445566"), Some(0x0000_1122_3344_5566));
    assert_eq!(parse_rv("0011223344556"), None);
    // Out of range: no threshold.
    assert_eq!(probability_to_th(0.0, 4), None);
    assert_eq!(probability_to_th(2f64.powi(-57), 4), None);
    assert_eq!(probability_to_th(1.5, 4), None);
    assert_eq!(probability_to_th(f64::NAN, 4), None);
    assert_eq!(
        probability_to_th(2f64.powi(-56), 4).as_deref(),
        Some("ffffffffffff")
    );
}

#[test]
fn thresholds_equal_the_reference_algorithm_for_ten_thousand_ratios_at_4_and_12_digits() {
    let reference = include_str!("../tests/data/th_reference.txt");
    let mut rng = SplitMix(26);
    let mut checked = 0;
    for line in reference.lines() {
        let x = rng.next();
        let ratio = ((x >> 11) + 1) as f64 * 2f64.powi(-53 - (x % 57) as i32);
        if line == "-" {
            assert_eq!(probability_to_th(ratio, 4), None, "{ratio:e}");
            continue;
        }
        let (four, twelve) = line.split_once(' ').unwrap();
        assert_eq!(
            probability_to_th(ratio, 4).as_deref(),
            Some(four),
            "{ratio:e}"
        );
        assert_eq!(
            probability_to_th(ratio, 12).as_deref(),
            Some(twelve),
            "{ratio:e}"
        );
        checked += 1;
    }
    assert_eq!(
        checked + reference.lines().filter(|l| *l == "-").count(),
        10_000
    );
}

fn root_params<'a>(attributes: &'a [KeyValue], kind: &'a SpanKind) -> Params<'a> {
    Params {
        trace_id: TraceId::from(1u128),
        parent: Parent::None,
        parent_sampled: false,
        parent_threshold: None,
        name: "GET /items",
        kind,
        attributes,
        links: &[],
    }
}

/// `sampler`'s result for a root span of trace `id`.
fn root_of(sampler: &Composite, id: TraceId) -> SamplingResult {
    sampler.should_sample(None, id, "x", &SpanKind::Server, &[], &[])
}

/// Whether `kept` of `n` is within 4.5 standard deviations of a binomial(`n`, `p`) count.
fn binomial_ok(kept: u64, n: u64, p: f64) -> bool {
    let mean = n as f64 * p;
    let sd = (n as f64 * p * (1.0 - p)).sqrt().max(1.0);
    (kept as f64 - mean).abs() <= 4.5 * sd
}

/// Over `n` seeded trace ids: how many `sampler` keeps, and the sum of their adjusted counts (from `th`).
fn run(sampler: &Composite, n: u64, seed: u64) -> (u64, f64) {
    let mut rng = SplitMix(seed);
    let (mut kept, mut adjusted) = (0u64, 0.0);
    for _ in 0..n {
        let r = root_of(sampler, rng.trace_id());
        if r.decision == SamplingDecision::RecordAndSample {
            kept += 1;
            let th = OtState::of(&r.trace_state)
                .th
                .expect("a kept span carries th");
            adjusted += adjusted_count(th);
        }
    }
    (kept, adjusted)
}

#[test]
fn kept_counts_and_adjusted_counts_are_right_and_the_test_has_power() {
    let n = 1_000_000u64;
    for ratio in [1.0, 0.5, 0.1, 0.01, 1.0 / 3.0, 2f64.powi(-20)] {
        let sampler = Composite::new(Box::new(Probability::new(ratio).unwrap()));
        let effective =
            threshold_probability(Probability::new(ratio).unwrap().threshold().unwrap());
        let (kept, adjusted) = run(&sampler, n, 7);
        assert!(
            binomial_ok(kept, n, effective),
            "{ratio}: kept {kept} of {n}"
        );
        // The sum of adjusted counts estimates the number of spans: within 3σ of it.
        let sd = (n as f64 * (1.0 - effective) / effective).sqrt();
        assert!(
            (adjusted - n as f64).abs() <= 3.0 * sd.max(1.0),
            "{ratio}: adjusted sum {adjusted} for {n} spans (σ {sd})"
        );
    }
    // A sampler that keeps 10% but claims the threshold of 11% fails the same tests.
    #[derive(Debug)]
    struct Biased;
    impl Composable for Biased {
        fn intent(&self, _: &Params<'_>) -> Intent {
            Intent {
                threshold: parse_th(&probability_to_th(0.11, 4).unwrap()),
                reliable: true,
                attributes: Vec::new(),
            }
        }
        fn description(&self) -> String {
            "Biased".into()
        }
    }
    let biased = Composite::new(Box::new(Biased));
    let mut rng = SplitMix(7);
    let mut kept = 0u64;
    let mut adjusted = 0.0;
    let claimed = parse_th(&probability_to_th(0.11, 4).unwrap()).unwrap();
    let actual = parse_th(&probability_to_th(0.10, 4).unwrap()).unwrap();
    for _ in 0..n {
        let id = rng.trace_id();
        let r = root_of(&biased, id);
        // The biased one keeps by a stricter threshold than it writes.
        if r.decision == SamplingDecision::RecordAndSample
            && randomness(id, &OtState::default()) >= actual
        {
            kept += 1;
            adjusted += adjusted_count(claimed);
        }
    }
    let p = threshold_probability(claimed);
    assert!(!binomial_ok(kept, n, p), "the test has no power: {kept}");
    let sd = (n as f64 * (1.0 - p) / p).sqrt();
    assert!((adjusted - n as f64).abs() > 3.0 * sd);
}

#[test]
fn samplers_at_one_ratio_agree_and_a_lower_ratio_keeps_a_subset() {
    let a = Composite::new(Box::new(Probability::new(0.25).unwrap()));
    let b = Composite::new(Box::new(Probability::new(0.25).unwrap()));
    let low = Composite::new(Box::new(Probability::new(0.05).unwrap()));
    let mut rng = SplitMix(3);
    let (mut both, mut low_kept) = (0, 0);
    for _ in 0..50_000 {
        let id = rng.trace_id();
        let keep = |s: &Composite| root_of(s, id).decision == SamplingDecision::RecordAndSample;
        assert_eq!(keep(&a), keep(&b), "{id}");
        if keep(&low) {
            low_kept += 1;
            assert!(keep(&a), "{id}: kept at 5% but not at 25%");
        }
        both += usize::from(keep(&a));
    }
    assert!(both > 0 && low_kept > 0 && low_kept < both);
}

/// A context whose active span is `sc`.
fn parent(sc: SpanContext) -> Context {
    Context::new().with_remote_span_context(sc)
}

fn span_context(trace: u128, sampled: bool, random: bool, state: &str) -> SpanContext {
    let flags = (if sampled { 1 } else { 0 }) | (if random { RANDOM_FLAG } else { 0 });
    SpanContext::new(
        TraceId::from_bytes(trace.to_be_bytes()),
        SpanId::from_bytes([1; 8]),
        TraceFlags::new(flags),
        true,
        TraceState::from_key_value(
            state
                .split(',')
                .filter(|e| !e.is_empty())
                .map(|e| e.split_once('=').unwrap()),
        )
        .unwrap(),
    )
}

/// `sampler`'s result for an internal span whose remote parent is `sc`.
fn child_of(sampler: &Composite, sc: SpanContext) -> SamplingResult {
    let trace_id = sc.trace_id();
    let cx = parent(sc);
    sampler.should_sample(Some(&cx), trace_id, "c", &SpanKind::Internal, &[], &[])
}

#[test]
fn a_child_continues_its_parents_threshold_and_foreign_state_is_kept() {
    let sampler = Composite::new(Box::new(ParentThreshold::new(Box::new(
        Probability::new(0.5).unwrap(),
    ))));
    // R = 0xf0...: above the parent's th 8 (p = 0.5), so the parent was rightly sampled.
    let trace = 0x00f0_0000_0000_0000u128;
    let r = child_of(
        &sampler,
        span_context(trace, true, true, "ot=th:8;xx:yy,vendor=v1"),
    );
    assert_eq!(r.decision, SamplingDecision::RecordAndSample);
    assert_eq!(r.trace_state.get("ot"), Some("th:8;xx:yy"));
    assert_eq!(r.trace_state.get("vendor"), Some("v1"));
    // rv is the randomness (the trace id's, 1, would be below th), and is kept as it came.
    let r = child_of(
        &sampler,
        span_context(1, true, true, "ot=rv:ff000000000000;th:8"),
    );
    assert_eq!(r.decision, SamplingDecision::RecordAndSample);
    // The child continues its parent's threshold: the entry is left as it came.
    assert_eq!(r.trace_state.get("ot"), Some("rv:ff000000000000;th:8"));
    // A root under the same randomness gets th written first.
    let root = Composite::new(Box::new(Probability::new(0.25).unwrap()));
    let r = child_of(
        &root,
        span_context(1, true, true, "ot=rv:ff000000000000;zz:1"),
    );
    assert_eq!(r.trace_state.get("ot"), Some("th:c;rv:ff000000000000;zz:1"));
    // A parent sampled without th: kept, but th is erased (the probability is unknown).
    let r = child_of(&sampler, span_context(trace, true, true, "ot=zz:1"));
    assert_eq!(r.decision, SamplingDecision::RecordAndSample);
    assert_eq!(r.trace_state.get("ot"), Some("zz:1"));
    // A th that disagrees with the sampled flag (R below it) is erased, the span follows the flag.
    let r = child_of(
        &sampler,
        span_context(0x0010_0000_0000_0000, true, true, "ot=th:8"),
    );
    assert_eq!(r.decision, SamplingDecision::RecordAndSample);
    assert_eq!(r.trace_state.get("ot"), None);
    // An unsampled parent: dropped, th erased, everything else kept.
    let r = child_of(
        &sampler,
        span_context(trace, false, true, "ot=th:8;xx:yy,vendor=v1"),
    );
    assert_eq!(r.decision, SamplingDecision::Drop);
    assert_eq!(r.trace_state.get("ot"), Some("xx:yy"));
    assert_eq!(r.trace_state.get("vendor"), Some("v1"));
    // A malformed ot entry is read as empty and left out.
    assert_eq!(OtState::parse("th:8;bad"), OtState::default());
    assert_eq!(OtState::parse("TH:8"), OtState::default());
}

#[test]
fn rules_match_kind_parent_attributes_and_names_first_match_wins() {
    let rules = RuleBased::new(vec![
        (
            Predicate {
                kinds: vec![SpanKind::Server],
                attribute_values: Some(("url.path".into(), vec!["/health".into()])),
                ..Default::default()
            },
            Box::new(AlwaysOff),
        ),
        (
            Predicate {
                attribute_patterns: Some((
                    "http.response.status_code".into(),
                    vec![Glob::new("5*")],
                    vec![Glob::new("503")],
                )),
                ..Default::default()
            },
            Box::new(AlwaysOn),
        ),
        (
            Predicate {
                parents: vec![Parent::None],
                span_names: vec![Glob::new("GET /items*")],
                ..Default::default()
            },
            Box::new(Probability::new(0.5).unwrap()),
        ),
    ]);
    let server = SpanKind::Server;
    let health = [KeyValue::new("url.path", "/health")];
    assert_eq!(rules.intent(&root_params(&health, &server)).threshold, None);
    let client = SpanKind::Client;
    // Same path on a client span: the first rule does not match; the name rule does.
    assert_eq!(
        rules.intent(&root_params(&health, &client)).threshold,
        parse_th("8")
    );
    let error = [KeyValue::new("http.response.status_code", 500i64)];
    assert_eq!(
        rules.intent(&root_params(&error, &server)).threshold,
        Some(0)
    );
    let excluded = [KeyValue::new("http.response.status_code", 503i64)];
    assert_eq!(
        rules.intent(&root_params(&excluded, &server)).threshold,
        parse_th("8")
    );
    // No rule matches: nothing kept.
    let mut p = root_params(&[], &server);
    p.name = "POST /orders";
    assert_eq!(rules.intent(&p), Intent::default());
    for (pattern, text, want) in [
        ("/internal/*", "/internal/x/y", true),
        ("/internal/*", "/internal", false),
        ("a?c", "abc", true),
        ("a?c", "ac", false),
        ("*", "", true),
        ("*b*b*", "aabab", true),
        ("*.txt", "a.txt.bak", false),
        ("ä*", "äx", true),
        // A `*` in the text is matched by a `*` of the pattern as by any other character.
        ("a*", "a*b", true),
        ("*x", "**x", true),
    ] {
        assert_eq!(Glob::new(pattern).is_match(text), want, "{pattern} {text}");
    }
}

#[test]
fn annotating_adds_attributes_to_sampled_spans_only() {
    let on = Composite::new(Box::new(Annotating::new(
        vec![KeyValue::new("sampling.rule", "all")],
        Box::new(AlwaysOn),
    )));
    let r = root_of(&on, TraceId::from(1u128));
    assert_eq!(r.attributes, vec![KeyValue::new("sampling.rule", "all")]);
    assert_eq!(r.trace_state.get("ot"), Some("th:0"));
    let off = Composite::new(Box::new(Annotating::new(
        vec![KeyValue::new("sampling.rule", "none")],
        Box::new(AlwaysOff),
    )));
    let r = root_of(&off, TraceId::from(1u128));
    assert_eq!(r.decision, SamplingDecision::Drop);
    assert!(r.attributes.is_empty());
}

#[test]
fn the_rate_limiter_reaches_its_target_within_five_percent_on_a_simulated_clock() {
    let now = Arc::new(AtomicU64::new(0));
    let clock: Clock = {
        let now = now.clone();
        Arc::new(move || now.load(Ordering::Relaxed))
    };
    let limiter = RateLimiting::new(Box::new(AlwaysOn), 1000.0, 5.0, clock).unwrap();
    let sampler = Composite::new(Box::new(limiter));
    let mut rng = SplitMix(11);
    // 20,000 spans a second for 60 simulated seconds; the first 10 s adapt.
    let interval = 1_000_000_000 / 20_000;
    let (mut kept, mut adjusted, mut spans) = (0u64, 0.0, 0u64);
    for i in 0..(60 * 20_000u64) {
        now.store(1 + i * interval, Ordering::Relaxed);
        let r = root_of(&sampler, rng.trace_id());
        if i >= 10 * 20_000 {
            spans += 1;
            if r.decision == SamplingDecision::RecordAndSample {
                kept += 1;
                adjusted += adjusted_count(OtState::of(&r.trace_state).th.unwrap());
            }
        }
    }
    let rate = kept as f64 / 50.0;
    assert!(
        (rate - 1000.0).abs() <= 50.0,
        "kept {rate}/s for a target of 1000/s"
    );
    // The thresholds written are the probabilities applied: the adjusted counts still add up to the spans.
    assert!(
        (adjusted - spans as f64).abs() <= 0.05 * spans as f64,
        "adjusted {adjusted} for {spans} spans"
    );
    assert!(RateLimiting::new(Box::new(AlwaysOn), 0.0, 5.0, monotonic_clock()).is_err());
    assert!(RateLimiting::new(Box::new(AlwaysOn), 10.0, f64::NAN, monotonic_clock()).is_err());
}
