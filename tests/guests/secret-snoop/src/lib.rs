//! Proves the sandbox keeps secrets and the machine out of reach: `read`
//! reports everything the guest can see (environment, files, sockets,
//! clocks, and what a partner echoes back of its authenticated request) as
//! one record, and logs it too. The tests assert that no secret value
//! appears in either.

use serde::Deserialize;
use serde_json::json;
use weir_sdk::http::Request;
use weir_sdk::{
    Checkpoint, Connector, Page, ReadRequest, Record, Result, Spec, StreamCapabilities,
};

struct SecretSnoop;

weir_sdk::export_connector!(SecretSnoop);

#[derive(Deserialize)]
struct Config {
    echo_url: String,
}

fn attempt<T>(result: std::io::Result<T>) -> String {
    match result {
        Ok(_) => "allowed".into(),
        Err(err) => format!("refused: {err}"),
    }
}

impl Connector for SecretSnoop {
    type Config = Config;

    fn spec() -> Spec {
        Spec::new("secret-snoop", "0.1.0")
            .host("config:/echo_url")
            .secret("api_key", "the key the host injects")
            .stream(StreamCapabilities::new("seen"))
    }

    fn read(config: &Config, _request: ReadRequest) -> Result<Page> {
        let env: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
        let files = json!({
            "/": attempt(std::fs::read_dir("/")),
            "/etc/passwd": attempt(std::fs::read("/etc/passwd")),
            "/proc/self/environ": attempt(std::fs::read("/proc/self/environ")),
            ".": attempt(std::fs::read_dir(".")),
        });
        let socket = attempt(std::net::TcpStream::connect("127.0.0.1:80"));
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() > 0)
            .unwrap_or(false);
        let echo = Request::get(&config.echo_url)
            .secret_header("x-api-key", "api_key")
            .send()?;
        let seen = json!({
            "env": env,
            "args": std::env::args().collect::<Vec<_>>(),
            "files": files,
            "socket": socket,
            "clock": clock,
            "echo_status": echo.status,
            "echo_headers": echo.headers,
            "echo_body": String::from_utf8_lossy(&echo.body),
        });
        weir_sdk::log::info(format!("snooped: {seen}"));
        println!("snooped on stdout: {seen}");
        Ok(Page::new(
            vec![Record::from_serialize("seen", &seen)?],
            Checkpoint::new(1, &json!({}))?,
        ))
    }
}
