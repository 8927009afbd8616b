//! Proves that a connector importing an interface Weir does not offer is
//! refused when it loads, naming the import, rather than failing at its
//! first call: like a connector whose dependency pulls in another host's
//! API, it asks for `other:clock/now` beside Weir's own imports.

use weir_sdk::{
    Checkpoint, Connector, Page, ReadRequest, Record, Result, Spec, StreamCapabilities,
};

mod elsewhere {
    wit_bindgen::generate!({
        inline: "
            package other:clock@1.0.0;
            interface now { seconds: func() -> u64; }
            world uses-clock { import now; }
        ",
    });
}

struct ForeignImport;

weir_sdk::export_connector!(ForeignImport);

impl Connector for ForeignImport {
    // Any configuration will do.
    type Config = serde::de::IgnoredAny;

    fn spec() -> Spec {
        Spec::new("foreign-import", "0.1.0").stream(StreamCapabilities::new("ticks"))
    }

    fn read(_config: &Self::Config, _request: ReadRequest) -> Result<Page> {
        // Used, so that the import stays in the component.
        let now = elsewhere::other::clock::now::seconds();
        let record = Record::upsert("now", format!(r#"{{"seconds":{now}}}"#));
        Ok(Page::new(vec![record], Checkpoint::from_json(1, "{}")))
    }
}
