use super::*;
use crate::pipeline::{Pipeline, Plan};
use std::path::Path;

/// The schema's test data, at its release tag (`tests/data/otel-config/v1.1.0`).
fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/otel-config/v1.1.0")
}

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// A directory holding `otel.yaml` with `yaml`, and an environment naming it (plus `vars`).
fn setup(yaml: &str, vars: &[(&str, &str)]) -> (tempfile::TempDir, Env) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("otel.yaml"), yaml).unwrap();
    let env = Env::from_pairs(
        [("OTEL_CONFIG_FILE", "otel.yaml")]
            .iter()
            .chain(vars)
            .map(|(k, v)| (k.to_string(), v.to_string())),
        dir.path(),
    );
    (dir, env)
}

fn plan(yaml: &str, vars: &[(&str, &str)]) -> Result<Plan, String> {
    let (_dir, env) = setup(yaml, vars);
    Plan::new(&env).map_err(|e| e.to_string())
}

fn error(yaml: &str, vars: &[(&str, &str)]) -> String {
    match plan(yaml, vars) {
        Ok(_) => panic!("accepted:\n{yaml}"),
        Err(e) => e,
    }
}

/// Every example and snippet of the schema builds a pipeline, and gives exactly the warnings for what ndotel cannot
/// do: `tests/data/otel-config/ndotel-warnings.txt` (`NDOTEL_BLESS=1` rewrites it after a deliberate change).
#[test]
fn every_example_and_snippet_builds_a_pipeline_or_says_exactly_what_ndotel_cannot_do() {
    let mut report = String::new();
    for file in yaml_files("examples")
        .into_iter()
        .chain(yaml_files("snippets"))
    {
        let name = file.strip_prefix(data()).unwrap().to_path_buf();
        let text = std::fs::read_to_string(&file).unwrap();
        let env = Env::from_pairs([("OTEL_SERVICE_NAME", "svc")], "/");
        let declared = Declared::parse(&name, &text, &env)
            .unwrap_or_else(|e| panic!("{}: {e}", name.display()));
        report.push_str(&format!("== {}\n", name.display()));
        for w in declared.warnings() {
            report.push_str(&format!("{w}\n"));
        }
        // And the pipeline builds (ports and paths moved out of the way).
        let text = text
            .replace("port: 9464", "port: 0")
            .replace("file:///var/log/", "file:///tmp/");
        let (_dir, env) = setup(&text, &[("OTEL_RUST_DISTRO", "sdk")]);
        let plan = Plan::new(&env).unwrap_or_else(|e| panic!("{}: {e}", name.display()));
        let built = Pipeline::build(&plan, &env);
        if let Err(e) = built {
            panic!("{}: {e}", name.display());
        }
    }
    let golden = data().join("../ndotel-warnings.txt");
    if std::env::var("NDOTEL_BLESS").is_ok() {
        std::fs::write(&golden, &report).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&golden).unwrap_or_default();
    assert!(
        report == want,
        "the warnings changed: diff against {} (NDOTEL_BLESS=1 rewrites it)\n{report}",
        golden.display()
    );
}

/// The validator's own cases (`validator-cases/*.test`) give the validator's answers.
#[test]
fn the_schema_validators_cases_give_its_answers() {
    let case = |name: &str, vars: &[(&str, &str)]| {
        let path = data().join("validator-cases").join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        validate(
            Path::new(name),
            &text,
            &Env::from_pairs(vars.iter().copied(), "/"),
        )
    };
    // `otel_config_validator shelltests/env_prefix.yaml` exits 0: `${env:FILE_FORMAT}` is an empty string.
    assert_eq!(case("env_prefix.yaml", &[]).unwrap()["file_format"], "");
    // `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT="0xdeadbeef"`: `.attribute_limits.attribute_value_length_limit` is 3735928559.
    let hex = case(
        "hex_integer.yaml",
        &[("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "0xdeadbeef")],
    )
    .unwrap();
    assert_eq!(
        hex["attribute_limits"]["attribute_value_length_limit"],
        3735928559u64
    );
    assert_eq!(hex["attribute_limits"]["attribute_count_limit"], 128);
    assert_eq!(hex["disabled"], false);
    // Exit 1: "missing properties: 'file_format'".
    let e = case("missing_required.yaml", &[]).unwrap_err().to_string();
    assert!(
        e.contains("missing_required.yaml:1:1") && e.contains("`file_format` is missing"),
        "{e}"
    );
    // Several references in a row: `0.1` is resolved after substitution, a float where a string belongs (the
    // case's `.test` gives no expectation; the data model's rule decides).
    let e = case("multiple_defaults.yaml", &[]).unwrap_err().to_string();
    assert!(e.contains("file_format") && e.contains("string"), "{e}");
    let quoted = validate(
        Path::new("q.yaml"),
        "file_format: \"${FILE_FORMAT}${BLANK:-}${FILE_FORMAT:-0.1}\"",
        &Env::default(),
    )
    .unwrap();
    assert_eq!(quoted["file_format"], "0.1");
    // Exit 1: text after a quoted scalar is not YAML (substitution never rewrites the file's text).
    assert!(case("no_expected_key.yaml", &[("FILE_FORMAT", "0.1")]).is_err());
    // Exit 1: "expected integer or null, but got string".
    let e = case("string_for_int.yaml", &[]).unwrap_err().to_string();
    assert!(
        e.contains("string_for_int.yaml:17:")
            && e.contains("attribute_limits.attribute_value_length_limit"),
        "{e}"
    );
}

#[test]
fn the_file_drives_the_settings_and_says_where_each_value_came_from() {
    let yaml = r#"file_format: "1.1"
resource:
  attributes:
    - name: service.name
      value: checkout
    - name: deployment.environment.name
      value: "${ENVIRONMENT:-dev}"
propagator:
  composite_list: tracecontext
tracer_provider:
  processors:
    - batch:
        schedule_delay: 250
        max_queue_size: 100
        exporter:
          otlp_grpc:
            endpoint: ${COLLECTOR}
            timeout: 2500
            headers:
              - name: api-key
                value: "${API_KEY}"
  sampler:
    parent_based:
      root:
        trace_id_ratio_based:
          ratio: 0.25
logger_provider:
  processors:
    - simple:
        exporter:
          console:
"#;
    let plan = plan(
        yaml,
        &[
            ("COLLECTOR", "http://collector:4317"),
            ("API_KEY", "s3cr=t,x"),
            ("ENVIRONMENT", "prod"),
            ("OTEL_TRACES_EXPORTER", "console"),
            ("OTEL_SERVICE_NAME", "from-env"),
            ("OTEL_RUST_DISTRO", "sdk"),
        ],
    )
    .unwrap();
    let s = &plan.settings;
    assert_eq!(s.traces_exporter.value, ["otlp"]);
    assert_eq!(
        s.metrics_exporter.value,
        ["none"],
        "meter_provider is absent"
    );
    assert!(
        s.metrics_exporter
            .source
            .to_string()
            .ends_with("otel.yaml:1 (no `meter_provider`)"),
        "{}",
        s.metrics_exporter.source
    );
    assert_eq!(s.logs_exporter.value, ["console"]);
    assert_eq!(s.propagators.value, ["tracecontext"]);
    assert_eq!(s.traces_sampler.value, "parentbased_traceidratio");
    assert_eq!(s.traces_sampler_ratio, 0.25);
    assert_eq!(s.bsp_schedule_delay.value.as_millis(), 250);
    assert_eq!(s.bsp_max_queue_size.value, 100);
    assert_eq!(
        s.service_name.value, "checkout",
        "OTEL_SERVICE_NAME has no effect"
    );
    assert!(
        s.resource_attributes
            .value
            .contains(&("deployment.environment.name".into(), "prod".into()))
    );
    let otlp = &s.otlp[0];
    assert_eq!(otlp.endpoint.as_deref(), Some("http://collector:4317"));
    assert_eq!(otlp.protocol, crate::export::otlp::Wire::Grpc);
    assert_eq!(otlp.timeout.as_millis(), 2500);
    assert!(
        otlp.headers
            .contains(&("api-key".to_string(), "s3cr=t,x".to_string())),
        "{:?}",
        otlp.headers
    );
    // Sources name the file, the line and the property.
    let source = s.bsp_schedule_delay.source.to_string();
    assert!(
        source.contains("otel.yaml:13 tracer_provider.processors[0].batch.schedule_delay"),
        "{source}"
    );
    let source = s.resource_attributes.source.to_string();
    assert!(
        source.contains("otel.yaml:3 resource.attributes"),
        "{source}"
    );
    let source = plan
        .declared
        .as_ref()
        .unwrap()
        .origin("/tracer_provider/processors/0/batch/exporter/otlp_grpc/endpoint");
    assert!(source.ends_with("otel.yaml:17 tracer_provider.processors[0].batch.exporter.otlp_grpc.endpoint via ${COLLECTOR}"), "{source}");
    let warnings: Vec<String> = plan.warnings().collect();
    let all = warnings.join("\n");
    assert!(
        all.contains("OTEL_SERVICE_NAME, OTEL_TRACES_EXPORTER are set but have no effect"),
        "{all}"
    );
    assert!(
        all.contains("logger_provider.processors[0].simple"),
        "{all}"
    );
    assert!(!all.contains("s3cr"), "a secret in a warning: {all}");
    // `ndotel config`'s rows: the header's value masked, its source the file's line.
    let rows = s.rows();
    let headers = rows
        .iter()
        .find(|r| r.0 == "OTEL_EXPORTER_OTLP_TRACES_HEADERS")
        .unwrap();
    assert_eq!(headers.1, "api-key=***");
    assert!(
        headers.2.contains(
            "otel.yaml:19 tracer_provider.processors[0].batch.exporter.otlp_grpc.headers"
        ),
        "{headers:?}"
    );
    assert!(!format!("{rows:?}").contains("s3cr"));
    let file = rows.iter().find(|r| r.0 == "OTEL_CONFIG_FILE").unwrap();
    assert!(
        file.1.ends_with("otel.yaml") && file.2.contains("have no effect"),
        "{file:?}"
    );
}

#[test]
fn mistakes_are_errors_naming_file_line_and_property() {
    let e = error(
        "file_format: \"1.1\"\ntracer_provider:\n  processors:\n    - batch:\n        exporterr:\n          console:\n",
        &[],
    );
    assert!(e.contains("otel.yaml:5:9: tracer_provider.processors[0].batch.exporterr: unknown property `exporterr`; did you mean \"exporter\"?"), "{e}");
    let e = error(
        "file_format: \"1.1\"\ntracer_provider:\n  sampler:\n    always_on:\n",
        &[],
    );
    assert!(
        e.contains("otel.yaml:2:") && e.contains("`processors` is missing"),
        "{e}"
    );
    let e = error(
        "file_format: \"1.1\"\nattribute_limits:\n  attribute_count_limit: many\n",
        &[],
    );
    assert!(
        e.contains("otel.yaml:3:") && e.contains("attribute_limits.attribute_count_limit"),
        "{e}"
    );
    let e = error("file_format: \"2.0\"\n", &[]);
    assert!(
        e.contains("otel.yaml:1:") && e.contains("major version 2"),
        "{e}"
    );
    let e = error(
        "file_format: \"1.1\"\ndisabled: ${OTEL_SDK_DISABLED:?no}\n",
        &[],
    );
    assert!(
        e.contains("otel.yaml:2:") && e.contains("not a valid substitution reference"),
        "{e}"
    );
    let e = error(
        "file_format: \"1.1\"\ndistribution:\n  ndotel:\n    distr: reference\n",
        &[],
    );
    assert!(
        e.contains("otel.yaml:4:") && e.contains("did you mean \"distro\""),
        "{e}"
    );
    let e = error(
        "file_format: \"1.1\"\ntracer_provider:\n  processors: [{batch: {exporter: {console: }}}]\n  sampler:\n    composite/development:\n      probability: {ratio: 2}\n",
        &[],
    );
    assert!(e.contains("otel.yaml:6:") && e.contains("ratio"), "{e}");
    // A header value that breaks the schema is not printed.
    let e = error(
        "file_format: \"1.1\"\ntracer_provider:\n  processors: [{batch: {exporter: {otlp_http: {headers: [{name: k, value: [\"hunter2\"]}]}}}}]\n",
        &[],
    );
    assert!(!e.contains("hunter2"), "{e}");
    // The name must end in .yaml or .yml.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("otel.toml"), "file_format: \"1.1\"\n").unwrap();
    let env = Env::from_pairs([("OTEL_CONFIG_FILE", "otel.toml")], dir.path());
    let e = Plan::new(&env).unwrap_err().to_string();
    assert!(e.contains(".yaml or .yml"), "{e}");
    // A newer minor version is a warning; the deprecated variable still works, with one.
    let (_dir, env) = setup("file_format: \"1.9\"\n", &[]);
    let env = env
        .without(|k| k == CONFIG_FILE_VAR)
        .with(EXPERIMENTAL_CONFIG_FILE_VAR, "otel.yaml");
    let plan = Plan::new(&env).unwrap();
    let all: Vec<String> = plan.warnings().collect();
    assert!(all.iter().any(|w| w.contains("is deprecated")), "{all:?}");
    assert!(
        all.iter().any(|w| w.contains("newer than the 1.1")),
        "{all:?}"
    );
}

#[test]
fn an_empty_file_means_no_telemetry_and_no_propagation() {
    let plan = plan(
        "file_format: \"1.1\"\n",
        &[("OTEL_TRACES_EXPORTER", "console")],
    )
    .unwrap();
    let s = &plan.settings;
    for list in [
        &s.traces_exporter,
        &s.metrics_exporter,
        &s.logs_exporter,
        &s.propagators,
    ] {
        assert_eq!(list.value, ["none"]);
    }
    let plan = Plan::new(&Env::from_pairs([("OTEL_RUST_DISTRO", "sdk")], "/")).unwrap();
    assert!(plan.declared.is_none());
}

#[test]
fn the_distribution_section_selects_the_distro_and_hands_it_its_settings() {
    let yaml = "file_format: \"1.1\"\ndistribution:\n  ndotel:\n    distro: sdk\n    fallback: sdk\n    call_timeout: 350\n    settings:\n      greeting: hello\n";
    let plan = plan(yaml, &[("OTEL_RUST_DISTRO", "nope")]).unwrap();
    assert_eq!(plan.distro.name, "sdk");
    assert_eq!(plan.settings.call_timeout.value.as_millis(), 350);
    assert!(
        plan.settings
            .call_timeout
            .source
            .to_string()
            .contains("distribution.ndotel.call_timeout")
    );
    assert_eq!(plan.settings.fallback.value, crate::settings::Fallback::Sdk);
    let table = &plan.config.as_ref().unwrap().config.distro["sdk"];
    assert_eq!(table["greeting"].as_str(), Some("hello"));
}

#[test]
fn a_composite_sampler_and_views_from_the_file_build() {
    let yaml = std::fs::read_to_string(
        data().join("snippets/Sampler_composite_rule_based_drop_redis_ping.yaml"),
    )
    .unwrap();
    let yaml = format!(
        "{yaml}\nmeter_provider:\n  readers:\n    - periodic:\n        exporter:\n          console:\n  views:\n    - selector:\n        instrument_name: http.*\n      stream:\n        name: renamed\n        attribute_keys:\n          included: [http.route]\n    - selector:\n        instrument_type: counter\n      stream:\n        aggregation:\n          drop:\n"
    );
    let (_dir, env) = setup(&yaml, &[("OTEL_RUST_DISTRO", "sdk")]);
    let plan = Plan::new(&env).unwrap();
    assert_eq!(plan.settings.traces_sampler.value, "composite");
    let config = plan.config.as_ref().unwrap();
    assert!(config.config.sampler.is_some());
    assert_eq!(
        config.config.views.len(),
        1,
        "the view selecting by type is left out"
    );
    assert_eq!(
        config.config.views[0].get_ref().rename.as_deref(),
        Some("renamed")
    );
    let all: Vec<String> = plan.warnings().collect();
    assert!(
        all.iter()
            .any(|w| w.contains("meter_provider.views[1].selector.instrument_type")),
        "{all:?}"
    );
    let pipeline = Pipeline::build(&plan, &env).unwrap();
    assert!(
        pipeline.sampler_description.contains("RuleBased"),
        "{}",
        pipeline.sampler_description
    );
}

#[test]
fn span_limits_come_from_the_file_and_bound_the_spans_built() {
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    let yaml = "file_format: \"1.1\"\nattribute_limits:\n  attribute_count_limit: 5\ntracer_provider:\n  limits:\n    attribute_count_limit: 3\n  processors: [{batch: {exporter: {console: }}}]\n";
    let (_dir, env) = setup(
        yaml,
        &[
            ("OTEL_RUST_DISTRO", "sdk"),
            ("OTEL_SPAN_EVENT_COUNT_LIMIT", "1"),
        ],
    );
    let plan = Plan::new(&env).unwrap();
    let limits: Vec<u64> = span_limits(&plan.settings);
    assert_eq!(
        limits,
        [3, 128, 128, 5, 5],
        "the variable has no effect; the general limit fills in"
    );
    assert!(
        plan.settings
            .event_attribute_count_limit
            .source
            .to_string()
            .contains("attribute_limits.attribute_count_limit")
    );
    let memory = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let pipeline = Pipeline::build_with(
        &plan,
        &env,
        vec![Box::new(
            opentelemetry_sdk::trace::SimpleSpanProcessor::new(memory.clone()),
        )],
    )
    .unwrap();
    let tracer = pipeline.tracer_provider.as_ref().unwrap().tracer("t");
    let mut span = tracer.start("limited");
    for i in 0..10 {
        span.set_attribute(opentelemetry::KeyValue::new(format!("k{i}"), i));
        span.add_event(format!("e{i}"), vec![]);
    }
    span.end();
    pipeline
        .tracer_provider
        .as_ref()
        .unwrap()
        .force_flush()
        .unwrap();
    let spans = memory.get_finished_spans().unwrap();
    assert_eq!(spans[0].attributes.len(), 3);
    assert_eq!(spans[0].events.len(), 10, "128 events are allowed");
}

#[test]
fn without_a_file_the_span_limit_variables_apply() {
    let env = Env::from_pairs(
        [
            ("OTEL_RUST_DISTRO", "sdk"),
            ("OTEL_ATTRIBUTE_COUNT_LIMIT", "7"),
            ("OTEL_SPAN_LINK_COUNT_LIMIT", "2"),
            ("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "x"),
        ],
        "/",
    );
    let plan = Plan::new(&env).unwrap();
    let limits: Vec<u64> = span_limits(&plan.settings);
    assert_eq!(limits, [7, 128, 2, 7, 7]);
    assert!(
        plan.warnings()
            .any(|w| w.contains("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT=\"x\""))
    );
}

#[test]
fn a_parent_based_child_other_than_its_default_is_a_warning() {
    let yaml = "file_format: \"1.1\"\ntracer_provider:\n  processors: [{batch: {exporter: {console: }}}]\n  sampler:\n    parent_based:\n      root: {always_off: }\n      remote_parent_sampled: {always_on: }\n      remote_parent_not_sampled: {always_on: }\n";
    let plan = plan(yaml, &[("OTEL_RUST_DISTRO", "sdk")]).unwrap();
    assert_eq!(plan.settings.traces_sampler.value, "parentbased_always_off");
    let all: Vec<String> = plan.warnings().collect();
    let about: Vec<&String> = all
        .iter()
        .filter(|w| w.contains("parent_based.remote_parent"))
        .collect();
    assert_eq!(about.len(), 1, "{all:?}");
    assert!(
        about[0]
            .contains("otel.yaml:8 tracer_provider.sampler.parent_based.remote_parent_not_sampled")
    );
}

/// The classes a review found: a left-out exporter contributing settings, names of the environment where the schema
/// has its own, misspellings, integers written as floats, null header values, the schema's enum spellings, a token
/// in a header list, referenced variables said to have no effect, timeouts of 0, a newer minor version.
#[test]
fn what_the_file_says_is_what_runs_and_nothing_else() {
    // A second exporter of a kind is left out with everything it says: its endpoint, headers and batch settings.
    let yaml = "file_format: \"1.1\"\ntracer_provider:\n  processors:\n    - batch:\n        exporter:\n          otlp_http:\n            endpoint: https://a/v1/traces\n    - batch:\n        max_queue_size: 7\n        exporter:\n          otlp_http:\n            endpoint: https://b/v1/traces\n            compression: gzip\n            headers: [{name: api-key, value: b-secret}]\n";
    let p = plan(yaml, &[("OTEL_RUST_DISTRO", "sdk")]).unwrap();
    let otlp = &p.settings.otlp[0];
    assert_eq!(otlp.endpoint.as_deref(), Some("https://a/v1/traces"));
    assert!(
        otlp.headers.is_empty() && otlp.compression.is_none(),
        "{otlp:?}"
    );
    assert_eq!(p.settings.bsp_max_queue_size.value, 2048);
    assert!(
        p.warnings()
            .any(|w| w.contains("processors[1].batch.exporter") && w.contains("left out"))
    );

    // An exporter left out for a bad output_stream takes its processor's settings with it.
    let yaml = "file_format: \"1.1\"\ntracer_provider:\n  processors:\n    - batch:\n        schedule_delay: 100\n        exporter: {otlp_file/development: {output_stream: stderr}}\n    - batch:\n        schedule_delay: 5000\n        exporter: {console: }\n";
    let p = plan(yaml, &[("OTEL_RUST_DISTRO", "sdk")]).unwrap();
    assert_eq!(p.settings.bsp_schedule_delay.value.as_millis(), 5000);
    assert_eq!(p.settings.traces_exporter.value, ["console"]);

    // One bad attributes_list entry leaves the others.
    let yaml = "file_format: \"1.1\"\nresource:\n  attributes_list: \"team=a,oops\"\n  attributes: [{name: service.name, value: shop}]\n";
    let p = plan(yaml, &[("OTEL_RUST_DISTRO", "sdk")]).unwrap();
    assert_eq!(p.settings.service_name.value, "shop");
    assert!(
        p.settings
            .resource_attributes
            .value
            .contains(&("team".into(), "a".into()))
    );
    assert!(!p.warnings().any(|w| w.contains("oops")));

    // opentelemetry-otlp reads the headers variable itself: said, even when the file references it.
    let yaml = "file_format: \"1.1\"\ntracer_provider:\n  processors: [{batch: {exporter: {otlp_http: {headers_list: \"${OTEL_EXPORTER_OTLP_HEADERS}\"}}}}]\n";
    let p = plan(
        yaml,
        &[
            ("OTEL_RUST_DISTRO", "sdk"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=k"),
        ],
    )
    .unwrap();
    assert!(
        p.warnings()
            .any(|w| w.contains("OTEL_EXPORTER_OTLP_HEADERS is set: opentelemetry-otlp"))
    );
    assert!(!p.warnings().any(|w| w.contains("api-key=k")));

    // The environment's names where the schema has its own are errors, so are misspellings of the schema's.
    for (yaml, want) in [
        (
            "tracer_provider:\n  processors: [{batch: {exporter: {otlp: {endpoint: http://x}}}}]\n",
            "otlp_http",
        ),
        (
            "tracer_provider:\n  processors: [{batch: {exporter: {console: }}}]\n  sampler: {traceidratio: {ratio: 0.01}}\n",
            "trace_id_ratio_based",
        ),
        (
            "tracer_provider:\n  processors: [{bacth: {exporter: {console: }}}]\n",
            "did you mean \"batch\"",
        ),
        (
            "tracer_providers:\n  processors: [{batch: {exporter: {console: }}}]\n",
            "did you mean \"tracer_provider\"",
        ),
        (
            "meter_provider:\n  readers: [{periodic: {exporter: {prometheus: {}}}}]\n",
            "otlp_http",
        ),
    ] {
        let e = error(&format!("file_format: \"1.1\"\n{yaml}"), &[]);
        assert!(e.contains(want), "{yaml}: {e}");
    }

    // Integers written as floats; a null header value; `low_memory`; a token in a header list; a timeout of 0.
    let yaml = "file_format: \"1.1\"\ntracer_provider:\n  processors:\n    - batch:\n        max_export_batch_size: 512.0\n        max_queue_size: ${Q}\n        export_timeout: 0\n        exporter:\n          otlp_http:\n            headers_list: \"api-key=abc,sekr1t-token\"\n            headers:\n              - name: api-key\n                value: ${UNSET}\nmeter_provider:\n  readers:\n    - periodic:\n        exporter:\n          otlp_http:\n            temporality_preference: low_memory\n";
    let p = plan(yaml, &[("OTEL_RUST_DISTRO", "sdk"), ("Q", "1e4")]).unwrap();
    let s = &p.settings;
    assert_eq!(s.bsp_max_export_batch_size.value, 512);
    assert_eq!(s.bsp_max_queue_size.value, 10_000);
    assert_eq!(s.span_export_timeout.value.as_millis(), 86_400_000);
    assert_eq!(
        s.otlp[0].headers,
        [("api-key".to_string(), "abc".to_string())]
    );
    assert_eq!(
        s.temporality.value,
        opentelemetry_sdk::metrics::Temporality::LowMemory
    );
    let all: Vec<String> = p.warnings().collect();
    assert!(!format!("{all:?}").contains("sekr1t"), "{all:?}");
    assert!(
        all.iter()
            .any(|w| w.contains("headers_list: an entry without")),
        "{all:?}"
    );

    // A variable the file references is in effect, not "of no effect"; the service detector reads its own.
    let yaml = "file_format: \"1.1\"\nresource:\n  attributes_list: \"service.name=from-list\"\n  detection/development:\n    detectors: [{service: }]\ntracer_provider:\n  processors: [{batch: {exporter: {otlp_http: {endpoint: \"${OTEL_EXPORTER_OTLP_ENDPOINT}/v1/traces\"}}}}]\n";
    let p = plan(
        yaml,
        &[
            ("OTEL_RUST_DISTRO", "sdk"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_SERVICE_NAME", "from-env"),
        ],
    )
    .unwrap();
    assert_eq!(
        p.settings.service_name.value, "from-list",
        "the file's attributes win over the detector"
    );
    assert!(
        !p.warnings()
            .any(|w| w.contains("no effect") && w.contains("OTEL_")),
        "{:?}",
        p.warnings().collect::<Vec<_>>()
    );

    // Attribute names are kept as written.
    let p = plan_of_attrs();
    assert!(
        p.settings
            .resource_attributes
            .value
            .contains(&("my attr".into(), "v, w".into()))
    );

    // A newer minor version: a property it adds is a warning, not an error.
    let yaml = "file_format: \"1.7\"\ntracer_provider:\n  processors: [{batch: {exporter: {console: }, new_in_1_7: 3}}]\n";
    let p = plan(yaml, &[("OTEL_RUST_DISTRO", "sdk")]).unwrap();
    assert!(
        p.warnings()
            .any(|w| w.contains("new_in_1_7") && w.contains("newer file_format"))
    );
    assert_eq!(p.settings.traces_exporter.value, ["console"]);
}

fn plan_of_attrs() -> Plan {
    plan(
        "file_format: \"1.1\"\nresource:\n  attributes: [{name: my attr, value: \"v, w\"}, {name: \"bad,name\", value: x}]\n",
        &[("OTEL_RUST_DISTRO", "sdk")],
    )
    .unwrap()
}

#[test]
fn a_variable_ndotel_sets_itself_is_not_replaced_by_the_file() {
    let (_dir, env) = setup(
        "file_format: \"1.1\"\ndistribution:\n  ndotel:\n    distro: nope\n",
        &[],
    );
    let plan = Plan::new(&env.forcing("OTEL_RUST_DISTRO", "sdk")).unwrap();
    assert_eq!(plan.distro.name, "sdk");
}

/// The example of `host/CONFIGURATION.md` is a file ndotel reads without a warning.
#[test]
fn the_documented_example_reads_cleanly() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("CONFIGURATION.md"))
            .unwrap();
    let yaml = doc
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap();
    let d = Declared::parse(Path::new("otel.yaml"), yaml, &Env::default()).unwrap();
    assert_eq!(d.warnings(), &[] as &[String]);
    assert!(d.translated.distro_settings.is_some());
}

/// The variables of one `SETTINGS` entry: `` `A`, `B` `` and `` `X_{,Y_}{P,Q}` `` written out.
fn documented_vars(env: &str) -> Vec<String> {
    fn expand(s: &str) -> Vec<String> {
        match (s.find('{'), s.find('}')) {
            (Some(i), Some(j)) if i < j => s[i + 1..j]
                .split(',')
                .flat_map(|alt| expand(&format!("{}{alt}{}", &s[..i], &s[j + 1..])))
                .collect(),
            _ => vec![s.to_string()],
        }
    }
    env.split("`, `")
        .map(|v| v.trim_matches(|c| c == '`' || c == ' '))
        .filter(|v| v.starts_with("OTEL_"))
        .flat_map(|v| expand(v.split('`').next().unwrap_or(v)))
        .collect()
}

/// Each setting the configuration file can set says where, in the one table of settings (`SETTINGS`, from which the
/// docs' table is generated): every variable the translation sets for the schema's test data and this module's
/// files is documented with its configuration-file path.
#[test]
fn every_setting_the_file_sets_is_in_the_settings_table_with_its_path() {
    let mut texts: Vec<String> = yaml_files("examples")
        .into_iter()
        .chain(yaml_files("snippets"))
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    texts.push(
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../otel.yaml"))
            .unwrap(),
    );
    texts.push("file_format: \"1.1\"\ntracer_provider:\n  processors: [{batch: {exporter: {otlp_grpc: {tls: {ca_file: a, cert_file: b, key_file: c}, headers_list: \"a=b\", compression: gzip, timeout: 5}}}}]\n  limits: {attribute_count_limit: 1, event_count_limit: 1, link_count_limit: 1, event_attribute_count_limit: 1, link_attribute_count_limit: 1}\ndistribution:\n  ndotel: {distro: sdk, fallback: \"off\", on_processor_error: drop, call_timeout: 5, fail_fast: false}\n".into());
    let env = Env::from_pairs([("OTEL_SERVICE_NAME", "svc")], "/");
    let mut set = std::collections::BTreeSet::new();
    for text in &texts {
        let d = Declared::parse(Path::new("otel.yaml"), text, &env).unwrap();
        set.extend(d.translated.vars.keys().cloned());
    }
    assert!(set.len() > 30, "{set:?}");
    for var in set {
        let doc = crate::settings::SETTINGS
            .iter()
            .find(|s| documented_vars(s.env).contains(&var))
            .unwrap_or_else(|| {
                panic!("{var} is set by the configuration file but not in SETTINGS")
            });
        assert!(
            doc.declared != "—",
            "{var}: SETTINGS does not say where the configuration file sets it"
        );
    }
}

/// The five span limits, in the SDK's order: span attributes, events, links, event attributes, link attributes.
fn span_limits(s: &crate::Settings) -> Vec<u64> {
    [
        &s.span_attribute_count_limit,
        &s.span_event_count_limit,
        &s.span_link_count_limit,
        &s.event_attribute_count_limit,
        &s.link_attribute_count_limit,
    ]
    .iter()
    .map(|l| l.value)
    .collect()
}

#[test]
fn the_host_and_process_detectors_add_their_attributes_under_the_files() {
    let yaml = "file_format: \"1.1\"\nresource:\n  attributes: [{name: host.name, value: pinned}]\n  detection/development:\n    detectors: [{host: }, {process: }]\n";
    let p = plan(yaml, &[("OTEL_RUST_DISTRO", "sdk")]).unwrap();
    let attrs = &p.settings.resource_attributes.value;
    let get = |k: &str| {
        attrs
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        get("host.name").as_deref(),
        Some("pinned"),
        "the file's attribute wins"
    );
    assert!(get("host.arch").is_some());
    assert_eq!(get("process.pid"), Some(std::process::id().to_string()));
    assert!(get("process.executable.name").is_some());
    assert!(!attrs.iter().any(|(k, _)| k.contains("command")));
}

#[test]
fn a_container_id_is_found_in_cgroup_v1_and_v2_paths() {
    let id = "a".repeat(60) + "0123";
    let v1 = format!("12:memory:/docker/{id}\n11:cpu:/docker/{id}\n");
    assert_eq!(
        super::translate::container_id(&v1).as_deref(),
        Some(id.as_str())
    );
    let v2 = format!(
        "1 2 0:3 /var/lib/docker/containers/{id}/hostname /etc/hostname rw - ext4 /dev/sda1 rw\n"
    );
    assert_eq!(
        super::translate::container_id(&v2).as_deref(),
        Some(id.as_str())
    );
    let systemd = format!("0::/system.slice/docker-{id}.scope\n");
    assert_eq!(
        super::translate::container_id(&systemd).as_deref(),
        Some(id.as_str())
    );
    assert_eq!(
        super::translate::container_id("0::/user.slice/user-0.slice\n"),
        None
    );
}

/// A resource attribute keeps the type the file gives it (and the schema URL is the file's), as exported; a value
/// not of its type is left out, and an untyped value that is not a string is set as its text, each with a warning.
#[test]
fn resource_attributes_keep_their_type_and_the_schema_url_as_exported() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("spans.jsonl");
    let yaml = format!(
        "file_format: \"1.1\"\nresource:\n  schema_url: https://opentelemetry.io/schemas/1.30.0\n  attributes:\n\
         \x20   - {{name: s, value: text}}\n\
         \x20   - {{name: b, value: true, type: bool}}\n\
         \x20   - {{name: i, value: 7, type: int}}\n\
         \x20   - {{name: d, value: 1.5, type: double}}\n\
         \x20   - {{name: sa, value: [x, y], type: string_array}}\n\
         \x20   - {{name: ia, value: [1, 2.0], type: int_array}}\n\
         \x20   - {{name: bad, value: seven, type: int}}\n\
         \x20   - {{name: untyped, value: 3}}\n\
         tracer_provider:\n  processors:\n    - batch:\n        exporter:\n          otlp_file/development:\n\
         \x20           output_stream: file://{}\n",
        out.display()
    );
    let (_dir, env) = setup(&yaml, &[("OTEL_RUST_DISTRO", "sdk")]);
    let plan = Plan::new(&env).unwrap();
    let warnings: Vec<String> = plan.warnings().collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("`bad`'s value is not of its type `int`"))
            && warnings
                .iter()
                .any(|w| w.contains("`untyped` has no `type`")),
        "{warnings:?}"
    );
    let pipeline = crate::Pipeline::build(&plan, &env).unwrap();
    let provider = pipeline.tracer_provider.as_ref().unwrap();
    opentelemetry::trace::Tracer::start(
        &opentelemetry::trace::TracerProvider::tracer(provider, "t"),
        "op",
    );
    provider.force_flush().unwrap();
    let line = std::fs::read_to_string(&out).unwrap();
    let request: Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    let resource = &request["resourceSpans"][0];
    assert_eq!(
        resource["schemaUrl"], "https://opentelemetry.io/schemas/1.30.0",
        "{resource}"
    );
    let attr = |k: &str| {
        resource["resource"]["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == k)
            .map(|a| a["value"].clone())
    };
    assert_eq!(attr("s").unwrap()["stringValue"], "text");
    assert_eq!(attr("b").unwrap()["boolValue"], true);
    assert_eq!(
        attr("i").unwrap()["intValue"].to_string().trim_matches('"'),
        "7"
    );
    assert_eq!(attr("d").unwrap()["doubleValue"], 1.5);
    let sa = attr("sa").unwrap();
    assert_eq!(sa["arrayValue"]["values"][1]["stringValue"], "y", "{sa}");
    let ia = attr("ia").unwrap();
    assert_eq!(
        ia["arrayValue"]["values"][1]["intValue"]
            .to_string()
            .trim_matches('"'),
        "2",
        "{ia}"
    );
    assert_eq!(attr("bad"), None);
    assert_eq!(attr("untyped").unwrap()["stringValue"], "3");
}

/// A view's aggregation is the file's: `sum` of a histogram, a base-2 exponential histogram, an explicit one without
/// min and max; one the instrument cannot take (`last_value` of a counter) leaves it its default.
#[test]
fn a_views_aggregation_is_the_files_and_one_an_instrument_cannot_take_leaves_its_default() {
    use opentelemetry::metrics::MeterProvider as _;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("metrics.jsonl");
    let view = |name: &str, aggregation: &str| {
        format!(
            "    - selector: {{instrument_name: {name}}}\n      stream: {{aggregation: {aggregation}}}\n"
        )
    };
    let yaml = format!(
        "file_format: \"1.1\"\nmeter_provider:\n  readers:\n    - periodic:\n        exporter:\n\
         \x20         otlp_file/development:\n            output_stream: file://{}\n  views:\n{}{}{}{}",
        out.display(),
        view("summed", "{sum: {}}"),
        view(
            "exponential",
            "{base2_exponential_bucket_histogram: {max_size: 40, max_scale: 5}}"
        ),
        view(
            "plain",
            "{explicit_bucket_histogram: {boundaries: [1, 10], record_min_max: false}}"
        ),
        view("counted", "{last_value: {}}"),
    );
    let (_dir, env) = setup(&yaml, &[("OTEL_RUST_DISTRO", "sdk")]);
    let plan = Plan::new(&env).unwrap();
    let pipeline = crate::Pipeline::build(&plan, &env).unwrap();
    let provider = pipeline.meter_provider.as_ref().unwrap();
    let meter = provider.meter("m");
    for name in ["summed", "exponential", "plain"] {
        let h = meter.f64_histogram(name).build();
        h.record(3.0, &[]);
        h.record(30.0, &[]);
    }
    meter.u64_counter("counted").build().add(2, &[]);
    provider.force_flush().unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    let mut metrics = std::collections::BTreeMap::new();
    for line in text.lines() {
        let request: Value = serde_json::from_str(line).unwrap();
        for rm in request["resourceMetrics"].as_array().unwrap() {
            for sm in rm["scopeMetrics"].as_array().unwrap() {
                for m in sm["metrics"].as_array().unwrap() {
                    metrics.insert(m["name"].as_str().unwrap().to_string(), m.clone());
                }
            }
        }
    }
    let summed = &metrics["summed"];
    assert!(summed.get("sum").is_some(), "{summed}");
    let exponential = &metrics["exponential"]["exponentialHistogram"]["dataPoints"][0];
    assert_eq!(
        exponential["count"].to_string().trim_matches('"'),
        "2",
        "{exponential}"
    );
    assert!(exponential["scale"].as_i64().unwrap() <= 5, "{exponential}");
    let plain = &metrics["plain"]["histogram"]["dataPoints"][0];
    assert_eq!(
        plain["explicitBounds"],
        serde_json::json!([1.0, 10.0]),
        "{plain}"
    );
    assert!(plain["min"].is_null() && plain["max"].is_null(), "{plain}");
    assert!(
        metrics["counted"].get("sum").is_some(),
        "{}",
        metrics["counted"]
    );
}

/// The readers' cardinality limits bound every instrument by its kind (else `default`), a view's own limit first.
#[test]
fn cardinality_limits_bound_each_instrument_by_its_kind() {
    use opentelemetry::KeyValue;
    use opentelemetry::metrics::MeterProvider as _;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("metrics.jsonl");
    let yaml = format!(
        "file_format: \"1.1\"\nmeter_provider:\n  readers:\n    - periodic:\n        cardinality_limits: \
         {{default: 4, counter: 2}}\n        exporter:\n          otlp_file/development:\n\
         \x20           output_stream: file://{}\n  views:\n    - selector: {{instrument_name: viewed}}\n\
         \x20     stream: {{name: renamed}}\n    - selector: {{instrument_name: own}}\n\
         \x20     stream: {{aggregation_cardinality_limit: 6}}\n",
        out.display()
    );
    let (_dir, env) = setup(&yaml, &[("OTEL_RUST_DISTRO", "sdk")]);
    let plan = Plan::new(&env).unwrap();
    let pipeline = crate::Pipeline::build(&plan, &env).unwrap();
    let provider = pipeline.meter_provider.as_ref().unwrap();
    let meter = provider.meter("m");
    let (counter, viewed, own) = (
        meter.u64_counter("counted").build(),
        meter.u64_counter("viewed").build(),
        meter.u64_counter("own").build(),
    );
    let histogram = meter.f64_histogram("timed").build();
    for n in 0..10 {
        let attrs = [KeyValue::new("n", n)];
        counter.add(1, &attrs);
        viewed.add(1, &attrs);
        own.add(1, &attrs);
        histogram.record(1.0, &attrs);
    }
    provider.force_flush().unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    let mut points = std::collections::BTreeMap::new();
    for line in text.lines() {
        let request: Value = serde_json::from_str(line).unwrap();
        for m in request["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
            .as_array()
            .unwrap()
        {
            let data = m.get("sum").or_else(|| m.get("histogram")).unwrap();
            points.insert(
                m["name"].as_str().unwrap().to_string(),
                data["dataPoints"].as_array().unwrap().len(),
            );
        }
    }
    // A limit of N keeps N attribute sets, and the rest go to one overflow series (as the specification says).
    assert_eq!(points["counted"], 2 + 1, "{points:?}");
    assert_eq!(
        points["renamed"],
        2 + 1,
        "a view without its own limit takes its kind's: {points:?}"
    );
    assert_eq!(points["own"], 6 + 1, "{points:?}");
    assert_eq!(points["timed"], 4 + 1, "the default: {points:?}");
}

/// A cardinality limit is bounded (the SDK sets aside room for it per instrument), and the last resource attribute
/// of a name wins with its type, as `OTEL_RESOURCE_ATTRIBUTES` has it.
#[test]
fn huge_limits_are_bounded_and_the_last_attribute_of_a_name_wins_with_its_type() {
    let yaml = "file_format: \"1.1\"\nresource:\n  attributes:\n    - {name: x, value: 1, type: int}\n\
                \x20   - {name: x, value: s}\n    - {name: \" y \", value: 2, type: int}\n\
                meter_provider:\n  readers:\n    - periodic:\n        cardinality_limits: {default: 100000000}\n\
                \x20       exporter: {console: }\n";
    let p = plan(yaml, &[("OTEL_RUST_DISTRO", "sdk")]).unwrap();
    let warnings: Vec<String> = p.warnings().collect();
    assert!(
        warnings.iter().any(|w| w.contains("taken as 100000")),
        "{warnings:?}"
    );
    let t = &p.declared.as_ref().unwrap().translated;
    assert_eq!(
        t.cardinality_limits.as_ref().unwrap().default,
        Some(100_000)
    );
    let typed: Vec<String> = t
        .typed_resource
        .iter()
        .map(|kv| kv.key.to_string())
        .collect();
    assert_eq!(
        typed,
        ["y"],
        "x's last entry is a string; y's name is trimmed"
    );
}

/// `otlp_grpc`'s `tls.insecure` decides the scheme of an endpoint written without one.
#[test]
fn a_grpc_endpoint_without_a_scheme_is_plaintext_only_when_insecure_says_so() {
    for (insecure, want) in [("true", "http://c:4317"), ("false", "https://c:4317")] {
        let yaml = format!(
            "file_format: \"1.1\"\ntracer_provider:\n  processors:\n    - batch:\n        exporter:\n\
             \x20         otlp_grpc: {{endpoint: \"c:4317\", tls: {{insecure: {insecure}}}}}\n"
        );
        let p = plan(&yaml, &[("OTEL_RUST_DISTRO", "sdk")]).unwrap();
        assert_eq!(p.settings.otlp[0].endpoint.as_deref(), Some(want));
    }
}
