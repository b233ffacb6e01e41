//! What a distro offers, by name: the one description of a distro both the settings (which validate the names
//! the environment and the files give) and the registry (which finds distros) share.

/// The components a distro offers (first of each list = its default).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Components {
    /// Sampler names.
    pub samplers: Vec<String>,
    /// Whether it has a span processor.
    pub span_processor: bool,
    /// Whether it has a log record processor (since ndotel-api 1.4).
    #[serde(default)]
    pub log_processor: bool,
    /// Span exporter names.
    pub span_exporters: Vec<String>,
    /// Metric exporter names.
    pub metric_exporters: Vec<String>,
}

impl Components {
    /// Human summary, e.g. `sampler:a processor exporter:b metrics:c`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        parts.extend(self.samplers.iter().map(|s| format!("sampler:{s}")));
        if self.span_processor {
            parts.push("processor".into());
        }
        if self.log_processor {
            parts.push("log_processor".into());
        }
        parts.extend(
            self.span_exporters
                .iter()
                .map(|s| format!("span_exporter:{s}")),
        );
        parts.extend(
            self.metric_exporters
                .iter()
                .map(|s| format!("metric_exporter:{s}")),
        );
        if parts.is_empty() {
            "-".into()
        } else {
            parts.join(" ")
        }
    }
}

/// A distro as the settings see it: its name and what it offers.
#[derive(Debug, Clone, Copy)]
pub struct DistroOffer<'a> {
    /// The distro's name.
    pub name: &'a str,
    /// Its components.
    pub components: &'a Components,
}
