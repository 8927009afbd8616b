//! [`export_connector!`](crate::export_connector) and
//! [`export_transform!`](crate::export_transform), and the adapters they
//! export: generic types implementing the generated `Guest` traits for any
//! [`Connector`] or [`Transform`], parsing configs and converting types on
//! the way.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;

use crate::bindings::{destination, setup, source, transform, types as wit, webhooks};
use crate::error::config_error;
use crate::{Connector, Error, Result, Transform};

/// Registers a type implementing [`Connector`] as this component's
/// connector: exports the `weir:connector` interfaces `setup`, `source`,
/// `destination` and `webhooks`, and embeds the world's type information for
/// `cargo build --target wasm32-wasip2`.
///
/// Use it once, in a `cdylib` crate.
///
/// # Example
///
/// ```
/// use weir_sdk::{Checkpoint, Connector, Page, ReadRequest, Result, Spec};
///
/// struct Empty;
///
/// impl Connector for Empty {
///     type Config = serde_json::Value;
///
///     fn spec() -> Spec {
///         Spec::new("empty", "0.1.0")
///     }
///
///     fn read(_: &serde_json::Value, _: ReadRequest) -> Result<Page> {
///         Ok(Page::new(Vec::new(), Checkpoint::from_json(1, "{}")))
///     }
/// }
///
/// weir_sdk::export_connector!(Empty);
/// ```
#[macro_export]
macro_rules! export_connector {
    ($connector:ty) => {
        $crate::__wasm_target_only!();
        const _: () = {
            type __WeirConnectorExports = $crate::__private::ConnectorExports<$connector>;
            $crate::__bindings::connector::export_world!(
                __WeirConnectorExports with_types_in $crate::__bindings::connector
            );
        };
    };
}

/// Registers a type implementing [`Transform`] as this component's
/// transform: exports the `weir:connector/transform` interface.
///
/// Use it once, in a `cdylib` crate.
///
/// # Example
///
/// ```
/// use weir_sdk::{Result, Transform};
///
/// struct Identity;
///
/// impl Transform for Identity {
///     type Config = serde_json::Value;
///
///     fn transform(_: &serde_json::Value, record: serde_json::Value) -> Result<Option<serde_json::Value>> {
///         Ok(Some(record))
///     }
/// }
///
/// weir_sdk::export_transform!(Identity);
/// ```
#[macro_export]
macro_rules! export_transform {
    ($transform:ty) => {
        $crate::__wasm_target_only!();
        const _: () = {
            type __WeirTransformExports = $crate::__private::TransformExports<$transform>;
            $crate::__bindings::transformer::export_world!(
                __WeirTransformExports with_types_in $crate::__bindings::transformer
            );
        };
    };
}

/// Stops a native build of a plugin crate with the command that builds it:
/// natively, the component's exports fail only at link time, with a
/// linker error that names none. The `cfg` is evaluated in the plugin's
/// crate: its own unit tests (`cfg(test)`) still build natively.
#[cfg(not(feature = "testing"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __wasm_target_only {
    () => {
        #[cfg(not(any(target_arch = "wasm32", test)))]
        ::core::compile_error!(
            "a Weir plugin is a WebAssembly component: build it with `cargo build --release --target wasm32-wasip2`; to test it natively, put this export behind a cargo feature that the tests turn off (`cargo test --no-default-features`)"
        );
    };
}

/// With the `testing` feature, exports also compile natively (for doc
/// tests and test binaries).
#[cfg(feature = "testing")]
#[doc(hidden)]
#[macro_export]
macro_rules! __wasm_target_only {
    () => {};
}

/// Implements the generated `Guest` traits of the `connector` world for `C`.
pub struct ConnectorExports<C>(PhantomData<C>);

/// Implements the generated `Guest` trait of the `transformer` world for `T`.
pub struct TransformExports<T>(PhantomData<T>);

fn parse_config<T: DeserializeOwned>(json: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|error| config_error(&error))
}

fn into_wit<T, U: From<T>>(result: Result<T>) -> Result<U, wit::Error> {
    result.map(Into::into).map_err(Into::into)
}

fn into_wit_vec<T, U: From<T>>(result: Result<Vec<T>>) -> Result<Vec<U>, wit::Error> {
    into_wit(result.map(|items| items.into_iter().map(Into::into).collect::<Vec<U>>()))
}

impl<C: Connector> setup::Guest for ConnectorExports<C> {
    fn spec() -> wit::ConnectorSpec {
        C::spec().into()
    }

    fn check(config: String) -> Result<(), wit::Error> {
        parse_config(&config)
            .and_then(|config| C::check(&config))
            .map_err(Into::into)
    }

    fn discover(config: String) -> Result<Vec<wit::StreamSchema>, wit::Error> {
        into_wit_vec(parse_config(&config).and_then(|config| C::discover(&config)))
    }

    fn migrate_checkpoint(
        stream: String,
        old: wit::Checkpoint,
    ) -> Result<wit::Checkpoint, wit::Error> {
        into_wit(C::migrate_checkpoint(&stream, old.into()))
    }
}

impl<C: Connector> source::Guest for ConnectorExports<C> {
    fn read(config: String, request: source::ReadRequest) -> Result<wit::Page, wit::Error> {
        into_wit(parse_config(&config).and_then(|config| C::read(&config, request.into())))
    }

    fn fetch(
        config: String,
        stream: String,
        keys: Vec<String>,
    ) -> Result<Vec<wit::Record>, wit::Error> {
        into_wit_vec(parse_config(&config).and_then(|config| C::fetch(&config, &stream, keys)))
    }
}

impl<C: Connector> destination::Guest for ConnectorExports<C> {
    fn write(
        config: String,
        stream: String,
        requests: Vec<wit::WriteRequest>,
    ) -> Result<Vec<Result<wit::Written, wit::Error>>, wit::Error> {
        let count = requests.len();
        let requests = requests.into_iter().map(Into::into).collect();
        let results =
            parse_config(&config).and_then(|config| C::write(&config, &stream, requests))?;
        if results.len() != count {
            return Err(Error::permanent(format!(
                "connector bug: write returned {} results for {count} requests",
                results.len()
            ))
            .into());
        }
        Ok(results.into_iter().map(into_wit).collect())
    }

    fn lookup(
        config: String,
        stream: String,
        idempotency_key: String,
    ) -> Result<Option<wit::Written>, wit::Error> {
        parse_config(&config)
            .and_then(|config| C::lookup(&config, &stream, &idempotency_key))
            .map(|written| written.map(Into::into))
            .map_err(Into::into)
    }
}

impl<C: Connector> webhooks::Guest for ConnectorExports<C> {
    fn verify(
        config: String,
        request: wit::IncomingRequest,
    ) -> Result<wit::WebhookVerdict, wit::Error> {
        into_wit(
            parse_config(&config).and_then(|config| C::verify_webhook(&config, &request.into())),
        )
    }

    fn handle(
        config: String,
        request: wit::IncomingRequest,
    ) -> Result<Vec<wit::ChangeNotice>, wit::Error> {
        into_wit_vec(
            parse_config(&config).and_then(|config| C::handle_webhook(&config, &request.into())),
        )
    }
}

impl<T: Transform> transform::Guest for TransformExports<T> {
    fn transform(
        config: String,
        records: Vec<String>,
    ) -> Result<Vec<Result<Option<String>, wit::Error>>, wit::Error> {
        let count = records.len();
        let results =
            parse_config(&config).and_then(|config| T::transform_batch(&config, records))?;
        if results.len() != count {
            return Err(Error::permanent(format!(
                "transform bug: returned {} results for {count} records",
                results.len()
            ))
            .into());
        }
        Ok(results
            .into_iter()
            .map(|result| result.map_err(Into::into))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::setup::Guest as _;
    use crate::bindings::source::Guest as _;
    use crate::bindings::transform::Guest as _;
    use crate::{Checkpoint, Page, ReadRequest, Record, Spec, WriteRequest, Written};

    struct Fake;

    #[derive(serde::Deserialize)]
    struct Config {
        base_url: String,
    }

    impl Connector for Fake {
        type Config = Config;

        fn spec() -> Spec {
            Spec::new("fake", "1.2.3")
        }

        fn read(config: &Config, request: ReadRequest) -> Result<Page> {
            let record = Record::upsert(config.base_url.clone(), "{}");
            Ok(Page::new(
                vec![record],
                Checkpoint::from_json(1, request.stream),
            ))
        }

        fn write(_: &Config, _: &str, _: Vec<WriteRequest>) -> Result<Vec<Result<Written>>> {
            Ok(vec![])
        }
    }

    type Exports = ConnectorExports<Fake>;

    #[test]
    fn spec_carries_the_sdk_version() {
        let spec = Exports::spec();
        assert_eq!(
            (spec.name.as_str(), spec.version.as_str()),
            ("fake", "1.2.3")
        );
        assert_eq!(spec.sdk_version, env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn config_errors_are_config_errors() {
        let error = Exports::check("{}".into()).unwrap_err();
        assert!(
            matches!(error, wit::Error::Config(message) if message == "config: missing field `base_url`")
        );
        let error = Exports::check("{".into()).unwrap_err();
        assert!(matches!(error, wit::Error::Config(message) if message.starts_with("config: EOF")));
    }

    #[test]
    fn calls_reach_the_connector() {
        let page = Exports::read(
            r#"{"base_url":"http://x"}"#.into(),
            source::ReadRequest {
                stream_name: "contacts".into(),
                checkpoint: None,
                max_records: 10,
            },
        )
        .unwrap();
        assert_eq!(page.records[0].key, "http://x");
        assert_eq!(page.checkpoint.state, "contacts");
    }

    #[test]
    fn unimplemented_operations_are_unsupported() {
        let error = Exports::discover(r#"{"base_url":"http://x"}"#.into()).unwrap_err();
        assert!(
            matches!(error, wit::Error::Unsupported(message) if message == "discover is not supported by this connector")
        );
    }

    #[test]
    fn a_write_with_the_wrong_number_of_results_fails() {
        use crate::bindings::destination::Guest as _;
        let request = wit::WriteRequest {
            data: "{}".into(),
            external_id: None,
            kind: wit::ChangeKind::Upsert,
            idempotency_key: "k".into(),
        };
        let error = Exports::write(
            r#"{"base_url":"x"}"#.into(),
            "contacts".into(),
            vec![request],
        )
        .unwrap_err();
        assert!(
            matches!(error, wit::Error::Permanent(message) if message.contains("0 results for 1 requests"))
        );
    }

    struct Upper;

    impl Transform for Upper {
        type Config = serde_json::Value;

        fn transform(
            _: &serde_json::Value,
            record: serde_json::Value,
        ) -> Result<Option<serde_json::Value>> {
            match record.get("name").and_then(|name| name.as_str()) {
                Some(name) => Ok(Some(serde_json::json!({ "name": name.to_uppercase() }))),
                None => Ok(None),
            }
        }
    }

    #[test]
    fn transforms_fail_record_by_record() {
        let results = TransformExports::<Upper>::transform(
            "{}".into(),
            vec![r#"{"name":"ada"}"#.into(), "{".into(), "{}".into()],
        )
        .unwrap();
        assert!(matches!(&results[0], Ok(Some(text)) if text == r#"{"name":"ADA"}"#));
        assert!(
            matches!(&results[1], Err(wit::Error::Permanent(message)) if message.starts_with("record: EOF"))
        );
        assert!(matches!(&results[2], Ok(None)));
    }
}
