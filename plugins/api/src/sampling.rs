//! Consistent probability sampling (since 1.6), as the OpenTelemetry specification describes it
//! (`trace/tracestate-probability-sampling.md`): a probability becomes a 56-bit rejection threshold, and a span is
//! kept when its 56-bit randomness (the trace id's 7 rightmost bytes, or the `rv` of its `ot` tracestate entry) is
//! at least the threshold. Every service that compares the same randomness with the same threshold keeps the same
//! traces. A sampler that says so with a [`SamplingIntent`] ([`Sampler::intent`](crate::Sampler::intent)) can be
//! one node of the host's composite sampler, which writes the threshold as `th` into the span's tracestate.

/// `2^56`: the threshold that rejects everything (probability 0), one past the largest randomness.
pub const MAX_THRESHOLD: u64 = 1 << 56;

/// The number of hex digits a threshold is written with by default, as the specification recommends.
pub const DEFAULT_PRECISION: u32 = 4;

/// The smallest probability a threshold can express: `2^-56`.
pub const MIN_PROBABILITY: f64 = 1.0 / MAX_THRESHOLD as f64;

/// The threshold of `probability` as `th` text, by the specification's reference algorithm with `precision` hex
/// digits (1 to 12; more digits for probabilities near 0, which need them): `0` for probability 1, else the digits
/// without trailing zeros. `None` for a probability below `2^-56` or not in `(0, 1]`.
///
/// ```
/// assert_eq!(ndotel_api::sampling::probability_to_th(0.1, 4).as_deref(), Some("e666"));
/// assert_eq!(ndotel_api::sampling::probability_to_th(0.01, 5).as_deref(), Some("fd70a4"));
/// ```
pub fn probability_to_th(probability: f64, precision: u32) -> Option<String> {
    if !(MIN_PROBABILITY..=1.0).contains(&probability) {
        return None;
    }
    if probability == 1.0 {
        return Some("0".into());
    }
    // frexp: probability = m * 2^exp with m in [0.5, 1); exp <= 0 here.
    let exp = frexp_exponent(probability);
    // One more digit for each leading `f` the threshold will have (the reference's `exp // -4`).
    let extra = (-exp) / 4;
    let precision = (precision as i32 + extra).clamp(1, 12) as u32;
    // The rejection probability in [1, 2), plus half of the last digit kept: truncating then rounds to nearest.
    let rejection = (2.0 - probability) + 0.5 * 2f64.powi(-4 * precision as i32);
    let digits = if rejection >= 2.0 {
        "fffffffffffff".to_string()
    } else {
        format!("{:013x}", rejection.to_bits() & ((1u64 << 52) - 1))
    };
    let kept = digits[..precision as usize].trim_end_matches('0');
    Some(if kept.is_empty() { "0" } else { kept }.to_string())
}

/// The exponent `frexp` gives a positive, finite `x`: `x = m * 2^exp` with `m` in `[0.5, 1)`.
fn frexp_exponent(x: f64) -> i32 {
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 {
        let lead = (bits & ((1u64 << 52) - 1)).leading_zeros() as i32 - 12;
        -1022 - lead
    } else {
        biased - 1022
    }
}

/// The threshold a `th` value stands for: 1 to 14 lowercase hex digits, right-padded with zeros to 14. `None` when
/// it is not such a value.
pub fn parse_th(th: &str) -> Option<u64> {
    parse_hex56(th, 1)
}

/// The randomness an `rv` value stands for: exactly 14 lowercase hex digits.
pub fn parse_rv(rv: &str) -> Option<u64> {
    parse_hex56(rv, 14)
}

fn parse_hex56(text: &str, min: usize) -> Option<u64> {
    if !(min..=14).contains(&text.len())
        || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    let value = u64::from_str_radix(text, 16).ok()?;
    Some(value << (4 * (14 - text.len())))
}

/// The threshold of `ratio` at [`DEFAULT_PRECISION`]: `None` for 0 (keep nothing) or a ratio not in `[2^-56, 1]`.
pub fn ratio_threshold(ratio: f64) -> Option<u64> {
    probability_to_th(ratio, DEFAULT_PRECISION).and_then(|th| parse_th(&th))
}

/// The randomness of a trace id: its 7 rightmost bytes.
pub fn trace_randomness(trace_id: [u8; 16]) -> u64 {
    u128::from_be_bytes(trace_id) as u64 & (MAX_THRESHOLD - 1)
}

/// What a sampler intends for a span, in the terms of consistent probability sampling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SamplingIntent {
    /// Not sampled (no probability: nothing is written).
    Drop,
    /// Sampled when the span's randomness is at least `threshold` (0 keeps everything). `reliable`: the threshold
    /// is the span's real probability, so it decides with the span's randomness and is written as `th`; otherwise
    /// fresh randomness decides and `th` is erased.
    Keep {
        /// The rejection threshold, below [`MAX_THRESHOLD`].
        threshold: u64,
        /// Whether it is the span's sampling probability.
        reliable: bool,
    },
    /// Whatever the parent decided: its threshold when it carries one, else its sampled flag; a root is sampled.
    FollowParent,
}

impl SamplingIntent {
    /// Keeps `ratio` of traces consistently (reliable); 0 keeps nothing.
    pub fn ratio(ratio: f64) -> Self {
        match ratio_threshold(ratio) {
            Some(threshold) => SamplingIntent::Keep {
                threshold,
                reliable: true,
            },
            None => SamplingIntent::Drop,
        }
    }

    /// Keeps every span, as a probability (threshold 0, reliable).
    pub fn always() -> Self {
        SamplingIntent::Keep {
            threshold: 0,
            reliable: true,
        }
    }

    /// The intent a [`Decision`](crate::Decision) stands for, as the default [`Sampler::intent`](crate::Sampler::intent)
    /// reads it: `RecordAndSample` keeps without a known probability, `RecordOnly` and `Drop` do not sample.
    pub fn from_decision(decision: crate::Decision) -> Self {
        match decision {
            crate::Decision::Drop | crate::Decision::RecordOnly => SamplingIntent::Drop,
            crate::Decision::RecordAndSample => SamplingIntent::Keep {
                threshold: 0,
                reliable: false,
            },
            crate::Decision::FollowParent => SamplingIntent::FollowParent,
        }
    }

    /// The intent as it crosses the boundary: `(kind, threshold)`.
    #[doc(hidden)]
    pub fn encode(self) -> (u8, u64) {
        match self {
            // A threshold of 2^56 or more keeps nothing: it is a drop.
            SamplingIntent::Drop
            | SamplingIntent::Keep {
                threshold: MAX_THRESHOLD..,
                ..
            } => (0, MAX_THRESHOLD),
            SamplingIntent::Keep {
                threshold,
                reliable: true,
            } => (1, threshold),
            SamplingIntent::Keep {
                threshold,
                reliable: false,
            } => (2, threshold),
            SamplingIntent::FollowParent => (3, 0),
        }
    }

    /// The intent of a boundary code; `None` for a code or threshold this version does not know.
    #[doc(hidden)]
    pub fn decode(kind: u8, threshold: u64) -> Option<Self> {
        let keep = |reliable| {
            (threshold < MAX_THRESHOLD).then_some(SamplingIntent::Keep {
                threshold,
                reliable,
            })
        };
        match kind {
            0 => Some(SamplingIntent::Drop),
            1 => keep(true),
            2 => keep(false),
            3 => Some(SamplingIntent::FollowParent),
            _ => None,
        }
    }
}
