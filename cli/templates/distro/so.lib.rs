//! Ships the `{{name}}` distro as a plugin: `target/release/lib{{name}}.so`.
ndotel_api::export_plugin!({{name}}::{{Type}});
