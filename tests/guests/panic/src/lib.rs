//! Proves that a panicking connector is contained: the trap is reported
//! with the plugin's name, version and the panic message.

use weir_sdk::{Connector, Page, ReadRequest, Result, Spec, StreamCapabilities};

struct Panicky;

weir_sdk::export_connector!(Panicky);

impl Connector for Panicky {
    // Any configuration will do.
    type Config = serde::de::IgnoredAny;

    fn spec() -> Spec {
        Spec::new("panic", "0.1.0").stream(StreamCapabilities::new("boom"))
    }

    fn read(_config: &Self::Config, _request: ReadRequest) -> Result<Page> {
        panic!("the partner sent a shape this connector never expected");
    }
}
