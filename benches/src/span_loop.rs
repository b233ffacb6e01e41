//! `span_loop VARIANT SECRET N`: N spans through one variant of the per-span benchmark (`bare`, `sdk` or `custom`,
//! the reference distro loaded as a `.so`; SECRET 0 or 1), for counting instructions under callgrind.

use ndotel_benches::{attributes, ndotel_provider, one_span};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, variant, secret, n] = args.as_slice() else {
        eprintln!("usage: span_loop bare|sdk|custom 0|1 N");
        std::process::exit(2);
    };
    let n: usize = n.parse().expect("N");
    let tmp = ndotel_tests::setup();
    let plugins = ndotel_tests::plugin_dir(tmp.path(), "plugins", &["otel_custom_distro"]);
    let provider = match variant.as_str() {
        "bare" => SdkTracerProvider::builder()
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
            .build(),
        "sdk" => ndotel_provider("sdk", &plugins),
        _ => ndotel_provider("otel_custom_distro", &plugins),
    };
    let tracer = provider.tracer("bench");
    let attrs = attributes(secret == "1");
    for _ in 0..n {
        one_span(&tracer, &attrs);
    }
}
