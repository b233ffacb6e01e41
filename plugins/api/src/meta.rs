//! The plugin's metadata as plain data in an ELF section (`.ndotel_meta`), written by
//! [`export_plugin!`](crate::export_plugin) at compile time: the host reads which distros a plugin holds, their
//! versions and descriptions, the API version, capabilities and panic strategy without loading it, so that no
//! plugin code runs until one of its distros is selected.
//!
//! Layout: the magic `NDOTEL-META1`, then records — a tag byte, a little-endian `u32` length and that many bytes
//! of UTF-8 — ending with tag 0. Tags: 1 API version, 2 capability (repeated), 3 panic strategy (`unwind` or
//! `abort`), 10 distro name (starts a distro), 11 its version, 12 its description. Readers skip tags they do not
//! know, so records can be added.

/// The section name.
pub const SECTION: &str = ".ndotel_meta";
/// The first bytes of the section.
pub const MAGIC: &[u8; 12] = b"NDOTEL-META1";

/// Tag: the API version.
pub const API_VERSION: u8 = 1;
/// Tag: one capability.
pub const CAPABILITY: u8 = 2;
/// Tag: the panic strategy.
pub const PANIC: u8 = 3;
/// Tag: a distro's name (starts its records).
pub const DISTRO: u8 = 10;
/// Tag: the distro's version.
pub const DISTRO_VERSION: u8 = 11;
/// Tag: the distro's description.
pub const DISTRO_DESCRIPTION: u8 = 12;

/// The size of the section for `parts` (the capabilities of this API are added).
pub const fn len(parts: &[(u8, &str)]) -> usize {
    let mut n = MAGIC.len() + 1;
    let mut i = 0;
    while i < parts.len() {
        n += 5 + parts[i].1.len();
        i += 1;
    }
    let mut c = 0;
    while c < crate::ffi::CAPABILITY_NAMES.len() {
        n += 5 + crate::ffi::CAPABILITY_NAMES[c].len();
        c += 1;
    }
    n
}

const fn put(out: &mut [u8], mut at: usize, tag: u8, text: &str) -> usize {
    let bytes = text.as_bytes();
    out[at] = tag;
    let len = (bytes.len() as u32).to_le_bytes();
    let mut k = 0;
    while k < 4 {
        out[at + 1 + k] = len[k];
        k += 1;
    }
    at += 5;
    let mut k = 0;
    while k < bytes.len() {
        out[at + k] = bytes[k];
        k += 1;
    }
    at + bytes.len()
}

/// Encodes `parts` and this API's capabilities; `N` must be [`len`]`(parts)`.
pub const fn encode<const N: usize>(parts: &[(u8, &str)]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut at = 0;
    while at < MAGIC.len() {
        out[at] = MAGIC[at];
        at += 1;
    }
    let mut i = 0;
    while i < parts.len() {
        at = put(&mut out, at, parts[i].0, parts[i].1);
        i += 1;
    }
    let mut c = 0;
    while c < crate::ffi::CAPABILITY_NAMES.len() {
        at = put(&mut out, at, CAPABILITY, crate::ffi::CAPABILITY_NAMES[c]);
        c += 1;
    }
    out[at] = 0;
    out
}

/// One distro, as the metadata describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DistroMeta {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its description.
    pub description: String,
}

/// A plugin's metadata, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginMeta {
    /// The API version it was built with.
    pub api_version: String,
    /// The capabilities of that API.
    pub capabilities: Vec<String>,
    /// Whether it unwinds on panic.
    pub panic_unwind: bool,
    /// Its distros.
    pub distros: Vec<DistroMeta>,
}

/// Decodes a section; `Err` says what is wrong with it.
pub fn decode(data: &[u8]) -> Result<PluginMeta, String> {
    let rest = data
        .strip_prefix(MAGIC.as_slice())
        .ok_or("the metadata section does not start with its magic")?;
    let mut meta = PluginMeta::default();
    let mut at = 0;
    loop {
        let tag = *rest
            .get(at)
            .ok_or("the metadata section ends without its end record")?;
        if tag == 0 {
            break;
        }
        let len = rest
            .get(at + 1..at + 5)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or("a metadata record is cut short")?;
        let bytes = rest
            .get(at + 5..at + 5 + len)
            .ok_or("a metadata record is longer than the section")?;
        let text = std::str::from_utf8(bytes)
            .map_err(|_| "a metadata record is not UTF-8")?
            .to_string();
        at += 5 + len;
        match tag {
            API_VERSION => meta.api_version = text,
            CAPABILITY => meta.capabilities.push(text),
            PANIC => meta.panic_unwind = text == "unwind",
            DISTRO => meta.distros.push(DistroMeta {
                name: text,
                ..Default::default()
            }),
            DISTRO_VERSION | DISTRO_DESCRIPTION => {
                let d = meta
                    .distros
                    .last_mut()
                    .ok_or("a distro record comes before any distro name")?;
                if tag == DISTRO_VERSION {
                    d.version = text;
                } else {
                    d.description = text;
                }
            }
            _ => {} // a record of a later version
        }
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARTS: &[(u8, &str)] = &[
        (API_VERSION, "1.2.0"),
        (PANIC, "unwind"),
        (DISTRO, "a"),
        (DISTRO_VERSION, "1.0"),
        (DISTRO_DESCRIPTION, "first"),
        (DISTRO, "b\nc"),
        (DISTRO_VERSION, ""),
    ];
    static ENCODED: [u8; len(PARTS)] = encode(PARTS);

    #[test]
    fn what_is_encoded_at_compile_time_decodes_and_damage_is_an_error() {
        let meta = decode(&ENCODED).unwrap();
        assert_eq!(meta.api_version, "1.2.0");
        assert!(meta.panic_unwind);
        assert_eq!(meta.capabilities, crate::CAPABILITIES);
        assert_eq!(meta.distros.len(), 2);
        assert_eq!(meta.distros[0].description, "first");
        assert_eq!(meta.distros[1].name, "b\nc");
        assert!(decode(&ENCODED[..ENCODED.len() - 3]).is_err());
        assert!(decode(b"NDOTEL-META1\x0a\xff\xff\xff\xff").is_err());
        assert!(decode(b"garbage").is_err());
    }
}
