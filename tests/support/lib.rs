//! Helpers for Weir's integration tests and benchmarks: paths of the built
//! wasm guests, throwaway workspaces with a `weir.toml`, and queries of the
//! resulting SQLite store.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use partner_sim::{PartnerSim, SimConfig};

mod compile_cache;
pub mod measure;

/// Paths of the built guests: the example connectors of `plugins/` and the
/// test guests of `tests/guests/`, one constant each.
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}

/// The ten-rule contact mapping (`contact-mapping.json`) that
/// `plugins/contact-mapper` writes out by hand: the mapping benchmark
/// compares the two, the mapping tests use it.
pub fn contact_mapping() -> serde_json::Value {
    serde_json::from_str(include_str!("contact-mapping.json"))
        .expect("contact-mapping.json is JSON")
}

/// The API key the tests' simulators expect.
pub const API_KEY: &str = "test-key";

/// A temporary Weir installation: `weir.toml`, a plugins directory and a
/// store, removed when dropped.
pub struct Workspace {
    dir: tempfile::TempDir,
    weir: PathBuf,
}

impl Workspace {
    /// A workspace that runs the `weir` binary at `weir`.
    pub fn new(weir: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::create_dir(dir.path().join("plugins")).expect("plugins dir");
        let ws = Self {
            dir,
            weir: PathBuf::from(weir),
        };
        compile_cache::warm(&ws.compile_cache());
        ws
    }

    /// Where `weir` keeps compiled components by default: beside the store.
    pub fn compile_cache(&self) -> PathBuf {
        self.path().join(".weir-cache")
    }

    /// The workspace's directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The plugins directory.
    pub fn plugins_dir(&self) -> PathBuf {
        self.path().join("plugins")
    }

    /// The store file.
    pub fn store_path(&self) -> PathBuf {
        self.path().join("weir.db")
    }

    /// Copies a built guest into the plugins directory under `file_name`.
    pub fn install(&self, guest: &str, file_name: &str) -> &Self {
        std::fs::copy(guest, self.plugins_dir().join(file_name)).expect("copy the guest");
        self
    }

    /// Writes raw bytes as a plugin file.
    pub fn install_bytes(&self, file_name: &str, bytes: &[u8]) -> &Self {
        std::fs::write(self.plugins_dir().join(file_name), bytes).expect("write the plugin");
        self
    }

    /// Writes `weir.toml`.
    pub fn write_config(&self, toml: &str) -> &Self {
        std::fs::write(self.path().join("weir.toml"), toml).expect("write weir.toml");
        self
    }

    /// A `weir` command in this workspace, with the simulator's API key set.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.weir);
        cmd.current_dir(self.path())
            .args(args)
            .env("ACME_API_KEY", API_KEY)
            .env_remove("WEIR_CONFIG")
            .env_remove("WEIR_LOG");
        cmd
    }

    /// Runs `weir` to completion.
    pub fn weir(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run weir")
    }

    /// Runs `weir` to completion without blocking the async runtime (the
    /// simulator of the same test serves from it).
    pub async fn weir_async(&self, args: &[&str]) -> Output {
        tokio::process::Command::from(self.command(args))
            .output()
            .await
            .expect("run weir")
    }

    /// Runs `weir` like [`Self::weir_async`] and asserts it succeeded.
    pub async fn weir_ok(&self, args: &[&str]) -> Output {
        let out = self.weir_async(args).await;
        assert!(out.status.success(), "{}", output_text(&out));
        out
    }

    /// Opens the store for assertions.
    pub fn store(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.store_path()).expect("open the store")
    }

    /// `(key, data)` of the live records of a connection's stream, by key.
    pub fn records(&self, connection: &str, stream: &str) -> Vec<(String, serde_json::Value)> {
        let store = self.store();
        let mut stmt = store
            .prepare(
                "SELECT r.key, r.data FROM records r JOIN streams s ON s.id = r.stream_id
                 WHERE s.connection = ?1 AND s.name = ?2 AND r.deleted = 0 ORDER BY r.key",
            )
            .expect("query records");
        stmt.query_map([connection, stream], |row| {
            let data: String = row.get(1)?;
            Ok((
                row.get(0)?,
                serde_json::from_str(&data).expect("stored JSON"),
            ))
        })
        .expect("query records")
        .collect::<Result<_, _>>()
        .expect("read records")
    }

    /// One value of a SQL query on the store.
    pub fn query_one<T: rusqlite::types::FromSql>(&self, sql: &str) -> T {
        self.store()
            .query_row(sql, [], |row| row.get(0))
            .with_context(|| sql.to_string())
            .expect("query")
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        compile_cache::give_back(&self.compile_cache());
    }
}

/// The admin token the tests' daemons use.
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// A `weir run` daemon started by a test, stopped (SIGKILL) when dropped.
pub struct RunningWeir {
    child: tokio::process::Child,
    /// `http://127.0.0.1:PORT` of its admin API.
    pub admin_url: String,
    /// `http://127.0.0.1:PORT` of its webhook ingress, when configured.
    pub webhooks_url: Option<String>,
    client: reqwest::Client,
}

impl Workspace {
    /// Starts `weir run` here (the config must say `[admin] listen =
    /// "127.0.0.1:0"`) and waits for its admin API address.
    pub async fn start_daemon(&self) -> RunningWeir {
        self.start_daemon_with(&[]).await
    }

    /// Like `start_daemon`, with extra environment variables.
    pub async fn start_daemon_with(&self, env: &[(&str, &str)]) -> RunningWeir {
        use tokio::io::AsyncBufReadExt as _;
        let mut cmd = tokio::process::Command::from(self.command(&["run"]));
        cmd.envs(env.iter().copied())
            .env("WEIR_ADMIN_TOKEN", ADMIN_TOKEN)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("weir run starts");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut admin_url, mut webhooks_url) = (None, None);
        // The daemon announces its addresses, then that it is scheduling.
        loop {
            let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
                .await
                .expect("weir run announces itself within 60 s")
                .unwrap()
                .unwrap_or_else(|| panic!("weir run stopped before scheduling"));
            if let Some(url) = line.strip_prefix("weir: admin API on ") {
                admin_url = Some(url.to_string());
            } else if let Some(url) = line.strip_prefix("weir: webhooks on ") {
                webhooks_url = Some(url.to_string());
            } else if line.starts_with("weir: scheduling") {
                break;
            }
        }
        let admin_url = admin_url.expect("the config serves the admin API");
        // Keep reading stdout so the daemon never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        RunningWeir {
            child,
            admin_url,
            webhooks_url,
            client: reqwest::Client::new(),
        }
    }
}

impl RunningWeir {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("still running")
    }

    /// Calls the admin API with the token; returns status and JSON body.
    pub async fn admin(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.admin_url))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the admin API answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// The full webhook URL of a tenant's connection.
    pub async fn webhook_url(&self, tenant: &str, connection: &str) -> String {
        let (status, report) = self.admin("GET", "/webhooks", None).await;
        assert_eq!(status, 200, "{report}");
        let endpoint = report["endpoints"]
            .as_array()
            .and_then(|all| {
                all.iter()
                    .find(|e| e["tenant"] == tenant && e["connection"] == connection)
            })
            .and_then(|e| e["endpoint"].as_str())
            .unwrap_or_else(|| panic!("no endpoint for {tenant}/{connection}: {report}"))
            .to_string();
        format!(
            "{}{endpoint}",
            self.webhooks_url
                .as_deref()
                .expect("the config serves webhooks")
        )
    }

    /// Sends SIGKILL (a crash) and waits for the process to end.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    /// Sends SIGTERM and waits for the exit status.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("still running");
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs");
        tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("weir exits within 60 s of SIGTERM")
            .unwrap()
    }
}

/// A simulator on 127.0.0.1 serving `contacts` and `companies`, which
/// accepts [`API_KEY`].
pub async fn simulator(contacts: usize, companies: usize) -> PartnerSim {
    PartnerSim::start(SimConfig {
        contacts,
        companies,
        api_key: API_KEY.into(),
        ..SimConfig::default()
    })
    .await
    .expect("the simulator starts")
}

/// Runs a benchmark's body on a multi-threaded runtime, as `weir run` does.
pub fn block_on<F: std::future::Future>(body: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts")
        .block_on(body)
}

/// The `[connections.<name>]` table of an acme-crm connection against a
/// simulator, its API key read from `ACME_API_KEY`. Ends with its last key,
/// so that callers can append keys of their own to the table.
pub fn acme_connection(name: &str, base_url: &str) -> String {
    format!(
        r#"
[connections.{name}]
connector = "acme-crm"
config = {{ base_url = "{base_url}" }}
allowed_hosts = ["{base_url}"]
secrets.api_key = {{ env = "ACME_API_KEY" }}
"#
    )
}

/// Edits of a `weir.toml` text that fail loudly: a needle that stopped
/// matching would otherwise silently test another configuration.
pub trait ConfigEdit {
    /// The text with every `needle` replaced by `with`; panics when it has
    /// none.
    fn edit(&self, needle: &str, with: &str) -> String;
}

impl ConfigEdit for str {
    fn edit(&self, needle: &str, with: &str) -> String {
        assert!(
            self.contains(needle),
            "the configuration has no `{needle}` to replace:\n{self}"
        );
        self.replace(needle, with)
    }
}

/// A `weir.toml` for one acme-crm connection named `acme` against a
/// simulator, with flows `contacts` and `companies` into the store.
pub fn acme_config(base_url: &str) -> String {
    format!(
        r#"{connection}
[flows.contacts]
source = "acme"
stream = "contacts"

[flows.companies]
source = "acme"
stream = "companies"
"#,
        connection = acme_connection("acme", base_url)
    )
}

/// Text of a process's stdout and stderr, for assertions and messages.
pub fn output_text(output: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it
/// held. It sleeps on the async runtime, so the servers a test runs on the
/// same runtime (simulator, webhooks) keep answering meanwhile.
pub async fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A tenant document whose `connections` have their own API key, read from
/// `ACME_API_KEY` (the key the simulators accept), as a customer connecting
/// their own account would give it.
pub fn connected_tenant(id: &str, connections: &[&str]) -> serde_json::Value {
    let own = serde_json::json!({ "secrets": { "api_key": { "env": "ACME_API_KEY" } } });
    serde_json::json!({
        "id": id,
        "connections": connections
            .iter()
            .map(|c| (c.to_string(), own.clone()))
            .collect::<serde_json::Map<_, _>>(),
    })
}
