//! The sampler: drops health-check traffic, then samples roots by trace-id ratio; children follow their parent, so
//! a dropped health check takes its whole trace (DB queries included) with it.

use ndotel_api::{BoxError, Decision, ParentKind, Sampler, SamplingParams, ValueRef};
use serde::Deserialize;

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
    /// Fraction of root traces kept, 0.0 ..= 1.0.
    pub ratio: f64,
    /// Paths whose traces are dropped.
    pub drop_paths: Vec<String>,
}

impl Default for SamplerSettings {
    fn default() -> Self {
        SamplerSettings {
            ratio: 1.0,
            drop_paths: DEFAULT_DROP_PATHS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// The sampler.
#[derive(Debug, Clone)]
pub struct CustomSampler {
    drop_paths: Vec<String>,
    ratio: f64,
    /// Roots whose trace-id value is below this are sampled (as the SDK's `TraceIdRatioBased`).
    threshold: u64,
}

impl CustomSampler {
    /// Builds the sampler; a ratio outside 0..=1 is an error.
    pub fn new(settings: &SamplerSettings) -> Result<Self, BoxError> {
        if !(0.0..=1.0).contains(&settings.ratio) {
            return Err(format!("sampler.ratio = {} is outside 0.0..=1.0", settings.ratio).into());
        }
        let threshold = if settings.ratio >= 1.0 {
            u64::MAX
        } else {
            (settings.ratio * (1u64 << 63) as f64) as u64
        };
        Ok(CustomSampler {
            drop_paths: settings.drop_paths.clone(),
            ratio: settings.ratio,
            threshold,
        })
    }

    fn is_health_check(&self, params: &SamplingParams<'_>) -> bool {
        let path_attr = params.attributes.iter().any(|kv| {
            PATH_ATTRIBUTES.contains(&kv.key.as_str())
                && matches!(kv.value, ValueRef::Str(v) if self.is_drop_path(v.as_str()))
        });
        // Span names look like `GET /health` or plain `/health`.
        let name = params.name.as_str();
        path_attr || self.is_drop_path(name.rsplit(' ').next().unwrap_or(name))
    }

    fn is_drop_path(&self, path: &str) -> bool {
        let path = path.split('?').next().unwrap_or(path);
        self.drop_paths.iter().any(|p| p == path)
    }
}

impl Sampler for CustomSampler {
    fn should_sample(&self, params: &SamplingParams<'_>) -> Decision {
        match params.parent {
            ParentKind::Local | ParentKind::Remote => {
                if params.parent_sampled {
                    Decision::RecordAndSample
                } else {
                    Decision::Drop
                }
            }
            ParentKind::None if self.is_health_check(params) => Decision::Drop,
            ParentKind::None => {
                let mut low = [0u8; 8];
                low.copy_from_slice(&params.trace_id[8..]);
                if self.threshold == u64::MAX || (u64::from_be_bytes(low) >> 1) < self.threshold {
                    Decision::RecordAndSample
                } else {
                    Decision::Drop
                }
            }
        }
    }

    fn description(&self) -> String {
        format!(
            "OtelCustomSampler{{drop_paths={:?}, ParentBased{{root=TraceIdRatioBased{{{}}}}}}}",
            self.drop_paths, self.ratio
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndotel_api::{KeyValueRef, SpanKind};

    fn params<'a>(
        name: &'a str,
        attrs: &'a [KeyValueRef<'a>],
        parent: ParentKind,
        sampled: bool,
    ) -> SamplingParams<'a> {
        SamplingParams {
            trace_id: [7; 16],
            parent,
            parent_sampled: sampled,
            name: name.into(),
            kind: SpanKind::Server,
            attributes: attrs.into(),
        }
    }

    #[test]
    fn health_checks_are_dropped_by_name_and_by_path_attribute() {
        let s = CustomSampler::new(&SamplerSettings::default()).unwrap();
        assert_eq!(
            s.should_sample(&params("GET /health", &[], ParentKind::None, false)),
            Decision::Drop
        );
        let attrs = [KeyValueRef {
            key: "url.path".into(),
            value: ValueRef::Str("/readyz".into()),
        }];
        assert_eq!(
            s.should_sample(&params("GET", &attrs, ParentKind::None, false)),
            Decision::Drop
        );
        assert_eq!(
            s.should_sample(&params("GET /items", &[], ParentKind::None, false)),
            Decision::RecordAndSample
        );
    }

    #[test]
    fn children_follow_their_parent() {
        let s = CustomSampler::new(&SamplerSettings::default()).unwrap();
        assert_eq!(
            s.should_sample(&params("SELECT", &[], ParentKind::Local, false)),
            Decision::Drop
        );
        assert_eq!(
            s.should_sample(&params("GET /health", &[], ParentKind::Remote, true)),
            Decision::RecordAndSample
        );
    }

    #[test]
    fn ratio_zero_drops_roots_and_bad_ratio_is_rejected() {
        let s = CustomSampler::new(&SamplerSettings {
            ratio: 0.0,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            s.should_sample(&params("GET /items", &[], ParentKind::None, false)),
            Decision::Drop
        );
        assert!(
            CustomSampler::new(&SamplerSettings {
                ratio: 1.5,
                ..Default::default()
            })
            .is_err()
        );
    }
}
