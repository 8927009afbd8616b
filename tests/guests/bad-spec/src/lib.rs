//! Proves that a connector whose spec breaks the rules (here a name that
//! is not kebab-case) is refused when it loads, with `plugin-spec`.

use weir_sdk::{Checkpoint, Connector, Page, ReadRequest, Result, Spec, StreamCapabilities};

struct BadSpec;

weir_sdk::export_connector!(BadSpec);

impl Connector for BadSpec {
    type Config = serde::de::IgnoredAny;

    fn spec() -> Spec {
        Spec::new("Bad Spec", "0.1.0").stream(StreamCapabilities::new("items"))
    }

    fn read(_config: &Self::Config, _request: ReadRequest) -> Result<Page> {
        Ok(Page::new(Vec::new(), Checkpoint::from_json(1, "{}")))
    }
}
