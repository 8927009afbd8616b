//! Proves that a run failing on a denied address taken from its own
//! checkpoint says how to start over. Like connectors of APIs that answer
//! with a next-page link, it keeps the next URL in its checkpoint and
//! follows it on the next run.

use serde::{Deserialize, Serialize};
use weir_sdk::http::Request;
use weir_sdk::{Checkpoint, Connector, Page, ReadRequest, Result, Spec, StreamCapabilities};

struct FollowNextUrl;

weir_sdk::export_connector!(FollowNextUrl);

#[derive(Deserialize)]
struct Config {
    /// The partner, which the connection allows.
    base_url: String,
}

/// Checkpoint format 1.
#[derive(Serialize, Deserialize)]
struct Position {
    next: String,
}

impl Connector for FollowNextUrl {
    type Config = Config;

    fn spec() -> Spec {
        Spec::new("follow-next-url", "0.1.0")
            .host("config:/base_url")
            .secret("api_key", "the partner's key")
            .stream(StreamCapabilities::new("contacts"))
    }

    fn read(config: &Config, request: ReadRequest) -> Result<Page> {
        let next = match request.state::<Position>(1)? {
            Some(position) => position.next,
            None => format!("{}/v1/contacts", config.base_url),
        };
        Request::get(next.clone())
            .secret_header("x-api-key", "api_key")
            .send()?
            .error_for_status()?;
        Ok(Page::new(
            Vec::new(),
            Checkpoint::new(1, &Position { next })?,
        ))
    }
}
