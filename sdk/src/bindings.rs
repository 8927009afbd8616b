//! The code `wit-bindgen` generates from `wit/`. Nothing here is public API:
//! the rest of the crate converts these types to and from its own.

/// The `connector` world: imports `http`, `log` and `crypto`, exports
/// `setup`, `source`, `destination` and `webhooks`.
pub mod connector {
    wit_bindgen::generate!({
        path: "../wit",
        world: "connector",
        // The export macro is expanded in the connector's crate, which names
        // these bindings through `$crate`.
        pub_export_macro: true,
        export_macro_name: "export_world",
        default_bindings_module: "weir_sdk::__bindings::connector",
    });
}

/// The `transformer` world, sharing the `types` and `log` bindings of
/// [`connector`] so that each type and import exists once.
pub mod transformer {
    wit_bindgen::generate!({
        path: "../wit",
        world: "transformer",
        pub_export_macro: true,
        export_macro_name: "export_world",
        default_bindings_module: "weir_sdk::__bindings::transformer",
        with: {
            "weir:connector/types@0.1.1": crate::bindings::connector::weir::connector::types,
            "weir:connector/log@0.1.1": crate::bindings::connector::weir::connector::log,
        },
    });
}

pub use connector::exports::weir::connector::{destination, setup, source, webhooks};
pub use connector::weir::connector::{crypto, http, log, types};
pub use transformer::exports::weir::connector::transform;
