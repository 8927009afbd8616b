//! Proves that a run reading the same page forever is stopped: like a
//! connector following a partner's `next` link that points to itself, every
//! `read` returns the checkpoint it was given (the first one a fixed cursor)
//! and says more records are ready.

use weir_sdk::{
    Checkpoint, Connector, Page, ReadRequest, Record, Result, Spec, StreamCapabilities,
};

struct CursorLoop;

weir_sdk::export_connector!(CursorLoop);

impl Connector for CursorLoop {
    // Any configuration will do.
    type Config = serde::de::IgnoredAny;

    fn spec() -> Spec {
        Spec::new("cursor-loop", "0.1.0").stream(StreamCapabilities::new("loop"))
    }

    fn read(_config: &Self::Config, request: ReadRequest) -> Result<Page> {
        let checkpoint = request
            .checkpoint
            .unwrap_or_else(|| Checkpoint::from_json(1, r#"{"cursor":"page-2"}"#));
        let record = Record::upsert("same", r#"{"id":"same"}"#);
        Ok(Page::new(vec![record], checkpoint).with_more(true))
    }
}
