//! Proves that a run that never runs out of pages ends at its deadline, at
//! its last committed page: every `read` returns one record and a cursor one
//! further on (`{"page": n}` after the n-th page), and says more are ready.

use weir_sdk::{
    Checkpoint, Connector, Page, ReadRequest, Record, Result, Spec, StreamCapabilities,
};

struct EndlessPages;

weir_sdk::export_connector!(EndlessPages);

#[derive(serde::Serialize, serde::Deserialize)]
struct Cursor {
    page: u64,
}

impl Connector for EndlessPages {
    // Any configuration will do.
    type Config = serde::de::IgnoredAny;

    fn spec() -> Spec {
        Spec::new("endless-pages", "0.1.0").stream(StreamCapabilities::new("endless"))
    }

    fn read(_config: &Self::Config, request: ReadRequest) -> Result<Page> {
        let done = match request.checkpoint {
            Some(checkpoint) => checkpoint.state::<Cursor>()?.page,
            None => 0,
        };
        let page = done + 1;
        let record = Record::upsert(format!("r{page}"), format!(r#"{{"page":{page}}}"#));
        let checkpoint = Checkpoint::new(1, &Cursor { page })?;
        Ok(Page::new(vec![record], checkpoint).with_more(true))
    }
}
