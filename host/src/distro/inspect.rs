//! Reading a plugin without loading it: its ELF metadata section (written by `export_plugin!`), or failing that
//! whether it exports an ndotel root module at all. Plain file reads through the `object` crate — no plugin code
//! runs, so a damaged or hostile file can at worst be reported.

use object::{Object as _, ObjectSection as _, ObjectSymbol as _};
use std::fs::File;

/// What a file turned out to be.
#[derive(Debug)]
pub(crate) enum Inspected {
    /// An ndotel plugin with its metadata: its distros are known without loading it.
    Meta(ndotel_api::meta::PluginMeta),
    /// An ndotel plugin built before metadata sections existed (ndotel-api 1.0, 1.1): it must be loaded to learn
    /// what it holds.
    Legacy,
    /// A shared library that exports no ndotel root module: never loaded.
    NotAPlugin,
}

/// The largest metadata section read, in bytes: names, versions and descriptions of up to
/// [`crate::distro::registry::MAX_DISTROS_PER_PLUGIN`] distros fit many times over.
pub(crate) const MAX_META_BYTES: u64 = 256 * 1024;

/// The symbol abi_stable's loader looks for (see `export_plugin!`).
const ROOT_MODULE_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

/// Reads `file`'s ELF structure (lazily: the parts needed, not the whole file).
pub(crate) fn inspect(file: &File) -> Result<Inspected, String> {
    let cache = object::ReadCache::new(file);
    let elf = object::File::parse(&cache).map_err(|e| format!("unreadable ELF file: {e}"))?;
    if let Some(section) = elf.section_by_name(ndotel_api::meta::SECTION) {
        if section.size() > MAX_META_BYTES {
            return Err(format!(
                "its metadata section is {} bytes, more than the {MAX_META_BYTES} an ndotel plugin may carry",
                section.size()
            ));
        }
        let data = section
            .data()
            .map_err(|e| format!("unreadable metadata section: {e}"))?;
        return ndotel_api::meta::decode(data)
            .map(Inspected::Meta)
            .map_err(|e| format!("damaged metadata: {e}"));
    }
    let exports_root = elf
        .dynamic_symbols()
        .any(|s| s.name() == Ok(ROOT_MODULE_SYMBOL) && !s.is_undefined());
    Ok(if exports_root {
        Inspected::Legacy
    } else {
        Inspected::NotAPlugin
    })
}
