//! The generation of a distro's settings that decided a span, carried on the span from its sampler to its edits.

/// The attribute that carries a span's generation of the distro's settings — the one whose sampler decided it — to
/// its edits on the batch thread, so that the same generation edits it: set by the distro's sampler from the first
/// reload that rebuilds its sampler and processor, removed before the distro or any exporter sees the span (kept, as the
/// generation that edited it, with `OTEL_RUST_DISTRO_RELOAD_GENERATION_ATTRIBUTE`).
pub(crate) const GENERATION_KEY: &str = "ndotel.distro.generation";

/// This process's mark in every generation tag: a tag without it (an attribute of that name the service set
/// itself) is not the sampler's, and chooses nothing.
fn tag_mark() -> i64 {
    use std::hash::BuildHasher as _;
    static MARK: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *MARK.get_or_init(|| {
        (std::collections::hash_map::RandomState::new().hash_one(std::process::id()) & 0x7fff_ffff)
            as i64
    })
}

/// The tag the sampler puts on a span it decided under `generation`.
pub(crate) fn generation_tag(generation: u64) -> i64 {
    (tag_mark() << 32) | (generation & 0xffff_ffff) as i64
}

/// The generation a tag names, when it is this process's sampler's.
pub(crate) fn generation_of(tag: i64) -> Option<u64> {
    (tag >> 32 == tag_mark()).then_some((tag & 0xffff_ffff) as u64)
}
