//! User-facing failures: a stable code, what happened, and what to do next.
//!
//! Module errors (`ConfigError`, `PluginError`, `CallError`, ...) know their
//! code and hint; the CLI prints them as
//!
//! ```text
//! error[egress-denied]: connector `acme-crm` tried to reach `https://evil.example` ...
//! hint: add "https://evil.example" to `allowed_hosts` of connection `acme` in weir.toml, if you trust it
//! ```
//!
//! and `weir explain <code>` prints the longer explanation kept here, which
//! README's *Gotchas* section mirrors.

use std::fmt;

/// A failure shown to a user, with its stable code and an optional hint.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// The stable code.
    pub code: ErrorCode,
    /// What happened, in one line.
    pub message: String,
    /// What to do next.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A diagnostic without a hint.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds what to do next.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

/// An error that can tell a user what happened and what to do next.
pub trait Diagnose {
    /// The user-facing form, with code and hint.
    fn diagnostic(&self) -> Diagnostic;
}

/// Finds the first diagnostic in an error chain, if any.
pub fn find(error: &anyhow::Error) -> Option<&Diagnostic> {
    error.chain().find_map(|e| e.downcast_ref::<Diagnostic>())
}

macro_rules! error_codes {
    ($( $variant:ident = $code:literal, $exit:literal, $title:literal, $explanation:literal; )*) => {
        /// Every error a user can hit has one of these codes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode { $( #[doc = $title] $variant, )* }

        impl ErrorCode {
            /// Every code, in documentation order.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];

            /// The stable code, e.g. `egress-denied`.
            pub fn as_str(self) -> &'static str {
                match self { $( ErrorCode::$variant => $code, )* }
            }

            /// One line: what it means.
            pub fn title(self) -> &'static str {
                match self { $( ErrorCode::$variant => $title, )* }
            }

            /// Why it happens and how to fix it, in plain language.
            pub fn explanation(self) -> &'static str {
                match self { $( ErrorCode::$variant => $explanation, )* }
            }

            /// The process exit code `weir` uses for it.
            pub fn exit_code(self) -> i32 {
                match self { $( ErrorCode::$variant => $exit, )* }
            }

            /// Looks a code up by its text.
            pub fn parse(code: &str) -> Option<ErrorCode> {
                Self::ALL.iter().copied().find(|c| c.as_str() == code)
            }
        }
    };
}

// Exit codes: 1 a run or call failed, 2 bad usage or configuration, 3 a
// plugin problem, 4 the store, 75 (EX_TEMPFAIL) try again later.
error_codes! {
    ConfigUnreadable = "config-unreadable", 2, "the configuration file cannot be read",
        "Weir could not read `weir.toml` (or the file given with `--config`). Check that the path is right and readable; `weir --config path/to/weir.toml ...` points Weir at another file.";
    ConfigSyntax = "config-syntax", 2, "the configuration file is not valid TOML",
        "The file is not valid TOML. The message gives the line and column; a common cause is a missing quote around a string or a table declared twice.";
    ConfigUnknownKey = "config-unknown-key", 2, "the configuration has a key Weir does not know",
        "Weir refuses keys it does not know, so that a typo never silently disables a setting. The message names the file and key; fix the spelling or remove the key. The `weir.toml` reference in README lists every key.";
    ConfigInvalid = "config-invalid", 2, "a configuration value is wrong",
        "A value in `weir.toml` is missing, of the wrong type, or refers to something that does not exist (a flow naming an unknown connection, an allowed host that is not `scheme://host[:port]`). The message names the key and the reason.";
    SecretMissing = "secret-missing", 2, "a secret is not defined or cannot be read",
        "A connection's secret refers to an environment variable that is not set or a file that cannot be read, or a connector uses a secret the connection does not define. Define it under `[connections.<name>.secrets]` in `weir.toml` as `{ env = \"VAR\" }` or `{ file = \"path\" }`, and set the variable (or create the file) in the environment that runs `weir`; secret values are never written to `weir.toml` itself. A tenant's sealed secret that does not open needs the `[secrets] key` it was sealed with (or the value given again).";
    UnknownConnection = "unknown-connection", 2, "no connection has that name",
        "The command names a connection that `weir.toml` does not define. `weir.toml` lists connections under `[connections.<name>]`.";
    UnknownFlow = "unknown-flow", 2, "no flow has that name",
        "The command names a flow that `weir.toml` does not define. Flows are listed under `[flows.<name>]`.";
    UnknownStream = "unknown-stream", 2, "the connector has no such stream",
        "A flow names a stream the connector does not declare in its spec. `weir discover <connection>` lists the streams it offers.";
    PluginNotComponent = "plugin-not-component", 3, "a plugin file is not a WebAssembly component",
        "Files in the plugins directory must be WebAssembly components built for `wasm32-wasip2`. This one is a core module, a precompiled artifact, or not WebAssembly at all (a truncated copy, a text file). Rebuild the connector with `cargo build --release --target wasm32-wasip2` and copy `target/wasm32-wasip2/release/<name>.wasm`. Weir never loads precompiled files from the plugins directory; it keeps its own compile cache.";
    PluginInvalid = "plugin-invalid", 3, "a plugin file is damaged",
        "The file looks like a WebAssembly component but does not validate or compile. It may be truncated (copied while still being written) or built by a broken toolchain. Copy it again, ideally to a temporary name followed by a rename, or rebuild it.";
    PluginWrongWorld = "plugin-wrong-world", 3, "a component is not a Weir connector",
        "The component does not export Weir's `weir:connector` interfaces (it was built for another host or another world). Build it against `weir-sdk` and export it with `weir_sdk::export_connector!` (or `export_transform!` for transforms).";
    PluginUnsupportedVersion = "plugin-unsupported-version", 3, "a connector was built for a WIT version this host does not speak",
        "The connector exports `weir:connector` at a version this Weir does not support. The message names the plugin's version and the versions this host supports; rebuild the connector with a `weir-sdk` release for one of those, or upgrade Weir.";
    PluginImports = "plugin-imports", 3, "a connector imports something Weir does not provide",
        "The component imports an interface that Weir does not offer to connectors (for example `wasi:http` or another host's API). Connectors reach the network only through `weir:connector/http`; remove the dependency that pulls the import in.";
    PluginSpec = "plugin-spec", 3, "a connector's spec is invalid or its `spec()` failed",
        "Weir calls `spec()` when loading a connector. It trapped, took too long, or returned an invalid spec (a name that is not kebab-case, a version that is not semver, a duplicate stream). The message says which; fix the connector.";
    PluginDuplicate = "plugin-duplicate", 3, "two plugin files declare the same connector name",
        "Two files in the plugins directory declare the same connector name. Weir keeps serving the file that provided the connector first (at startup, the first by file name), whatever the versions, and reports the other; delete the file you do not want. To upgrade a connector, replace its file in place.";
    PluginUnreadable = "plugin-unreadable", 3, "a plugin file or the plugins directory cannot be read",
        "The plugins directory (`plugins_dir` in `weir.toml`, by default `plugins` beside it) does not exist or cannot be listed, or a plugin file cannot be read (a wrong path given to `weir plugins inspect`, missing permissions). Create the directory and copy connectors' `.wasm` files into it, or point `plugins_dir` at the directory that holds them.";
    ConnectorNotLoaded = "connector-not-loaded", 3, "no loaded plugin provides the connector",
        "A connection names a connector that no plugin in the plugins directory provides (or whose file failed to load: see `weir plugins`). Copy the connector's `.wasm` into the plugins directory or fix the `connector` key of the connection.";
    DaemonNotRunning = "daemon-not-running", 1, "no `weir run` answers the admin API",
        "The command acts on a running `weir run` through its admin API (approving a connector version that waits, rolling one back), and nothing answered at the address it used: `--admin <url>`, or `[admin] listen` of `weir.toml` when a `weir run` holds the store. Point `--admin` at the daemon's admin API, or turn it on (`[admin]` in weir.toml). With no daemon on the store, the command needs no API: it records the decision in the store itself.";
    EgressDenied = "egress-denied", 1, "a connector tried to reach a host it is not allowed to",
        "Connectors reach only origins that both the connector declares (`spec.hosts`) and the connection allows (`allowed_hosts` in `weir.toml`). If you trust the destination, add it to `allowed_hosts` as `scheme://host[:port]`; if the connector does not declare it, the connector itself must be changed.";
    TooManyRedirects = "too-many-redirects", 1, "a connector followed too many redirects in one call",
        "A connector follows a partner's redirects by hand, with a new request to each `Location`. One call followed more than `max_redirects` of them (10 by default), which is a redirect loop at the partner or a connector that follows one. Weir refused the next request. Check the partner's answers with `--debug-http`; raise `max_redirects` of the connection only if the partner legitimately redirects that often.";
    ConnectorConfig = "connector-config", 2, "the connector refused the connection's configuration",
        "The connector found its `config` invalid or incomplete. The message says which field; fix `[connections.<name>.config]` in `weir.toml`. `weir plugins --json` shows the connector's config schema.";
    ConnectorAuth = "connector-auth", 1, "the partner refused the credentials",
        "The partner answered 401/403 or otherwise refused the credentials. Renew the secret (API key, token) in its environment variable or file; `weir check <connection>` verifies it with one request.";
    RateLimited = "rate-limited", 75, "the partner or the rate budget asked to slow down",
        "The run paused at its last checkpoint because the partner answered 429 (or the connection's rate budget is spent). Nothing is lost: run the flow again after the indicated time and it resumes where it stopped.";
    ConnectorTransient = "connector-transient", 75, "a temporary failure interrupted the run",
        "The partner or the network failed in a way that may pass (5xx, timeout, connection reset), and retries did not help. The run stopped at its last checkpoint; run it again later and it resumes with nothing lost or duplicated.";
    ConnectorPermanent = "connector-permanent", 1, "the connector reported a failure that retrying will not fix",
        "The connector reported an error that will not pass by retrying (malformed partner data, a refused request). The message is the connector's; the run stopped at its last checkpoint.";
    ConnectorUnsupported = "connector-unsupported", 1, "the connector does not support the operation",
        "The connector does not implement what was asked (for example writing to a read-only stream). Choose another stream or connector.";
    ConnectorTrap = "connector-trap", 1, "a connector crashed",
        "The connector trapped (a panic, an out-of-bounds access, running out of memory). This is a bug in the connector; the message names the plugin, its version and the call. Weir discarded the instance; other flows are not affected, and the run can be retried from its last checkpoint.";
    ConnectorTimeout = "connector-timeout", 1, "a connector call exceeded its deadline",
        "A call into the connector did not finish within its deadline (guest CPU, partner I/O and rate-budget waits all count). The partner may be very slow or the connector stuck in a loop. Weir stopped it; raise `call_timeout` of the connection if the partner is legitimately slow.";
    RunDeadline = "run-deadline", 1, "a run went on longer than its flow allows",
        "A run is bounded by its flow's `max_run_time` (default 1h), so that no connector (one that never runs out of pages, a partner that never answers) holds a connection forever. The run stopped at its last committed page: nothing is lost, and the next run resumes there. If a read legitimately takes longer (a first backfill of a large account), raise `max_run_time` of the flow in `weir.toml`; otherwise look at what the connector reads (`weir runs`, `weir audit`).";
    ConnectorContract = "connector-contract", 1, "a connector returned something that breaks the contract",
        "The connector returned data that breaks Weir's contract: a page larger than asked, a record whose data is not a JSON object, an empty key, an unknown stream, a page that ends at the checkpoint it started from while saying more records are ready (a cursor that points to itself: reading on would fetch that page forever). This is a bug in the connector; nothing of that page was stored.";
    CheckpointMigration = "checkpoint-migration", 1, "a stored checkpoint cannot be used by the connector",
        "The stored checkpoint has an older format than the connector declares and the connector could not migrate it. Weir refuses to silently restart a full sync. Install a connector version that migrates the format, or run `weir state reset <flow>` to start over deliberately.";
    TenantInvalid = "tenant-invalid", 2, "a tenant's settings do not fit the integration",
        "A tenant's settings name a connection or flow that `weir.toml` does not define, or hold a schedule, mapping or secret that does not parse (a secret value needs `[secrets] key` in `weir.toml`). The message gives the exact path (for example `flows.contacts.mapping.fields[2].format`) and the reason; nothing was saved.";
    UnknownTenant = "unknown-tenant", 2, "no tenant has that name",
        "The command names a tenant that does not exist. `weir tenants list` shows the tenants; `weir tenants add <name>` creates one.";
    TenantExists = "tenant-exists", 2, "a tenant of that name already exists",
        "Creating a tenant (`POST /tenants` of the admin API, `weir tenants add`) never replaces one: its connections, secrets and flow settings would be lost. Replace its settings deliberately with `PUT /tenants/{tenant}` or `weir tenants set`, or remove it first.";
    Unauthorized = "unauthorized", 2, "the admin API refused a request without the right token",
        "Every admin API route but `/health` needs the header `Authorization: Bearer <token>` with the admin token of `weir.toml` (`[admin] token`, by default the `WEIR_ADMIN_TOKEN` variable of the process that runs `weir run`). The answer is 401 and nothing was done.";
    BadRequest = "bad-request", 2, "the admin API refused a malformed request",
        "A request to the admin API names a tenant or flow that is not a valid name (letters, digits, `-`, `_`), or its body is not the JSON the route takes. The answer is a 4xx status and nothing was done; README's admin API table lists each route's body.";
    NotConnected = "not-connected", 2, "a tenant has not connected a connection its flow uses",
        "A tenant's flow runs only once the tenant has its own secrets for every connection the flow uses: `weir.toml`'s connection is a template, and a tenant inherits its config, never its credentials. Until then the flow shows `not-connected` in `weir status` and the admin API, and nothing of it reaches the partner. Connect the tenant with `weir tenants connect <tenant> <connection> --secrets '{\"api_key\": {\"value\": \"...\"}}'` or `PUT /tenants/{tenant}/connections/{connection}`. To let every tenant use the integration's own credentials, set `shared_credentials = true` on the connection in `weir.toml`: then every tenant without its own secrets reads and writes through that one account.";
    MappingInvalid = "mapping-invalid", 2, "a mapping document is refused",
        "The mapping given to `weir map set` is not JSON, or breaks a rule of the mapping format: a rule with two sources, an unknown `type`, a time zone or date pattern that does not exist, two rules writing the same field. The message gives the exact path in the document (for example `fields[3].format`) and the reason; nothing was saved. README's *Field mappings* section lists every key.";
    PluginWaiting = "plugin-waiting", 1, "a new connector version waits for approval",
        "A plugin file declares hosts that no approved version of its connector declares. The latest approved version goes on serving, in `weir run` and in every other command, until an operator approves the new one (`weir plugins approve <name>`, or `POST /plugins/<name>/approve`). Approve it if the connector should reach those hosts; otherwise put the approved version's file back.";
    MappingRecord = "mapping-record", 1, "a record did not fit the flow's mapping",
        "A record could not be reshaped by the tenant's field mapping (a missing required field, a value that does not convert, an unknown enum value). It went to the dead letters with the reason; the run went on. Fix the mapping (or the data at the partner), then `weir deadletters retry <tenant> <flow>`.";
    DaemonRunning = "daemon-running", 2, "another `weir run` already serves this store",
        "One daemon owns a store: it schedules every tenant's flows and takes back webhook deliveries left unfinished, which two daemons would do twice. `weir run` locks `<store>.daemon.lock` (and `<inbox>.daemon.lock` with webhooks) for as long as it runs; the lock goes with the process, even when it is killed. Stop the running daemon first, or give the second one its own `store`. `weir sync`, `weir status` and every other command work beside a running daemon.";
    StoreUnavailable = "store-unavailable", 4, "the local store cannot be opened or written",
        "Weir could not open or write its SQLite store (`store` in `weir.toml`). Check that the directory exists and is writable and that the disk is not full. Another process holding a long write lock shows up as `database is locked`. A value the store holds that does not decode (written by another version of Weir, or changed by hand) is reported as such, never skipped: run the version that wrote it, or restore a backup.";
    Shutdown = "shutdown", 130, "a run was stopped by a shutdown",
        "`weir runs` and `weir sync` show this on a run stopped by Ctrl-C or SIGTERM (of `weir sync` or `weir run`). From the signal on, no request and no connector call starts; the page in flight is abandoned and the run ends at its last committed page, so nothing is lost: the next run resumes from there, reading the abandoned page again. Nothing needs doing.";
    UnknownCode = "unknown-code", 2, "no error code has that name",
        "`weir explain` was given a code Weir does not have. `weir explain` without a code lists every one.";
}

/// As its stable text, e.g. `"egress-denied"`.
impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_kebab_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {code}");
            assert!(
                code.as_str()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '-')
            );
            assert_eq!(ErrorCode::parse(code.as_str()), Some(*code));
        }
    }

    #[test]
    fn readme_gotchas_explain_every_code() {
        let readme = include_str!("../../README.md");
        let gotchas = &readme[readme.find("## Gotchas").expect("a Gotchas section")..];
        for code in ErrorCode::ALL {
            assert!(
                gotchas.contains(&format!("### `{code}`")) && gotchas.contains(code.explanation()),
                "README's Gotchas lacks `{code}` or its current explanation"
            );
        }
    }

    #[test]
    fn the_first_diagnostic_in_a_chain_is_found() {
        let err = anyhow::Error::new(
            Diagnostic::new(ErrorCode::UnknownFlow, "no flow `x`").with_hint("add it"),
        )
        .context("running sync");
        let diagnostic = find(&err).expect("diagnostic in chain");
        assert_eq!(diagnostic.code, ErrorCode::UnknownFlow);
        assert_eq!(diagnostic.hint.as_deref(), Some("add it"));
    }
}
