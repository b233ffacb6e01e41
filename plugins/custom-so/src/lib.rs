ndotel_api::export_plugin!(otel_custom_distro::CustomDistro);
