//! `cargo xtask demo`: starts the partner simulator, builds the example
//! connector, writes a `weir.toml`, syncs every flow into `demo/weir.db`,
//! changes 100 records at the partner and syncs again (only those come).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use anyhow::{Context as _, bail};

use crate::{cargo, ensure_wasm_target, root, run_cmd};

const API_KEY: &str = "demo-secret-key";
const CONTACTS: u32 = 20_000;
const COMPANIES: u32 = 2_000;

/// Stops the simulators when the demo ends, however it ends.
struct Simulator(Child);

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run(_args: &[String]) -> anyhow::Result<()> {
    ensure_wasm_target()?;
    run_cmd(cargo().args(["build", "--release", "-p", "weir-host", "-p", "partner-sim"]))?;
    let wasm_target = root().join("target/wasm/plugins");
    run_cmd(
        cargo()
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
                "plugins/Cargo.toml",
                "--workspace",
            ])
            .env("CARGO_TARGET_DIR", &wasm_target),
    )?;

    let demo = root().join("demo");
    if demo.exists() {
        std::fs::remove_dir_all(&demo).context("cannot clear the previous demo")?;
    }
    std::fs::create_dir_all(demo.join("plugins"))?;
    std::fs::copy(
        wasm_target.join("wasm32-wasip2/release/acme_crm.wasm"),
        demo.join("plugins/acme_crm.wasm"),
    )
    .context("the example connector was not built")?;

    let (_us, us_url) = simulator(&[
        ("--contacts", CONTACTS),
        ("--companies", COMPANIES),
        ("--seed", 7),
    ])?;
    let (_eu, eu_url) = simulator(&[("--contacts", 0), ("--companies", 0), ("--seed", 8)])?;
    std::fs::write(demo.join("weir.toml"), config(&us_url, &eu_url))?;

    let weir = root().join("target/release/weir");
    let weir_cmd = |args: &[&str]| {
        let mut cmd = Command::new(&weir);
        cmd.args(["--config", "demo/weir.toml"])
            .args(args)
            .env("ACME_API_KEY", API_KEY);
        cmd
    };

    println!(
        "\n== 1. first sync: everything, from two simulated CRM accounts' APIs into demo/weir.db and the EU account"
    );
    run_cmd(&mut weir_cmd(&["sync", "--all"]))?;

    println!("\n== 2. 100 contacts change at the partner; the next sync fetches only those");
    post(
        &us_url,
        "/_sim/mutate",
        r#"{"resource":"contacts","count":100}"#,
    )?;
    run_cmd(&mut weir_cmd(&["sync", "contacts", "contacts-to-eu"]))?;

    println!("\n== 3. what happened");
    run_cmd(&mut weir_cmd(&["runs"]))?;
    run_cmd(&mut weir_cmd(&["state", "show", "contacts"]))?;
    println!(
        "\nthe store is {}; try `target/release/weir --config demo/weir.toml plugins` or `sqlite3 demo/weir.db 'select count(*) from records'`",
        demo.join("weir.db").display()
    );
    Ok(())
}

fn simulator(args: &[(&str, u32)]) -> anyhow::Result<(Simulator, String)> {
    let mut cmd = Command::new(root().join("target/release/partner-sim"));
    cmd.args(["--api-key", API_KEY, "--port", "0"]);
    for (flag, value) in args {
        cmd.arg(flag).arg(value.to_string());
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start partner-sim")?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line)?;
    let url = line
        .trim()
        .rsplit(' ')
        .next()
        .filter(|u| u.starts_with("http://127.0.0.1:"))
        .map(str::to_string);
    let sim = Simulator(child);
    match url {
        Some(url) => Ok((sim, url)),
        None => bail!(
            "partner-sim did not print its address (got `{}`)",
            line.trim()
        ),
    }
}

fn config(us_url: &str, eu_url: &str) -> String {
    format!(
        r#"# Written by `cargo xtask demo`.
plugins_dir = "plugins"
store = "weir.db"

[connections.acme-us]
connector = "acme-crm"
config = {{ base_url = "{us_url}" }}
allowed_hosts = ["{us_url}"]
secrets.api_key = {{ env = "ACME_API_KEY" }}

[connections.acme-eu]
connector = "acme-crm"
config = {{ base_url = "{eu_url}" }}
allowed_hosts = ["{eu_url}"]
secrets.api_key = {{ env = "ACME_API_KEY" }}
# The write flow sends a request per record. Without a `rate_limit`, a
# connection is held to 1,000 requests/s, a guard against runaway loops; the
# local simulator takes far more.
rate_limit = {{ requests_per_second = 20000, burst = 20000 }}

[flows.contacts]
source = "acme-us"
stream = "contacts"

[flows.companies]
source = "acme-us"
stream = "companies"

[flows.contacts-to-eu]
source = "acme-us"
stream = "contacts"
destination = {{ connection = "acme-eu", stream = "contacts" }}
"#
    )
}

/// A bare HTTP/1.1 POST to the simulator's admin API (loopback only).
fn post(base: &str, path: &str, body: &str) -> anyhow::Result<()> {
    let host = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host)?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    if !response.starts_with("HTTP/1.1 2") {
        bail!(
            "the simulator refused {path}: {}",
            response.lines().next().unwrap_or_default()
        );
    }
    Ok(())
}
