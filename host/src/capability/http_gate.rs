use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use super::{EgressDenial, EgressGrant, Secrets};
use crate::diagnostic::{Diagnostic, ErrorCode};
use crate::ids::ConnectionId;

/// Headers a connector may never set: they belong to the HTTP layer.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// Size and time limits of outgoing requests.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Largest response body accepted, after decompression.
    pub max_response_bytes: usize,
    /// Largest request body accepted.
    pub max_request_bytes: usize,
    /// Timeout of one request when the connector asks for none shorter.
    pub request_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_response_bytes: 64 * 1024 * 1024,
            max_request_bytes: 16 * 1024 * 1024,
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// A header filled from a secret: `name: <prefix><value>`.
#[derive(Debug, Clone)]
pub struct SecretHeader {
    /// Header name.
    pub name: String,
    /// Secret name.
    pub secret: String,
    /// Text before the value.
    pub prefix: String,
}

/// A request a connector asked the host to send.
#[derive(Debug, Clone)]
pub struct OutgoingRequest {
    /// Method.
    pub method: Method,
    /// Absolute URL.
    pub url: String,
    /// Plain headers.
    pub headers: Vec<(String, String)>,
    /// Headers filled from secrets.
    pub secret_headers: Vec<SecretHeader>,
    /// Body.
    pub body: Option<Vec<u8>>,
    /// Sent as `Idempotency-Key`.
    pub idempotency_key: Option<String>,
    /// A shorter timeout.
    pub timeout: Option<Duration>,
}

/// A response, as the connector will see it.
#[derive(Debug, Clone)]
pub struct PartnerResponse {
    /// Status code.
    pub status: u16,
    /// Lower-case names and values.
    pub headers: Vec<(String, String)>,
    /// Decompressed body.
    pub body: Vec<u8>,
}

/// Why no response reached the connector.
#[derive(Debug)]
pub enum RequestFailure {
    /// Refused by policy. The connector gets `for_guest`; the operator gets
    /// the diagnostic, with what to change.
    Denied {
        /// Message returned to the connector.
        for_guest: String,
        /// Message for the operator.
        for_operator: Diagnostic,
    },
    /// Slow down.
    RateLimited {
        /// How long.
        retry_after: Duration,
        /// What.
        message: String,
    },
    /// Timed out.
    Timeout(String),
    /// Network failure.
    Transport(String),
    /// Over a size limit.
    TooLarge(String),
    /// Malformed request.
    InvalidRequest(String),
}

/// Sends one connection's requests: checks the egress grant and reserved
/// headers, injects secrets, enforces limits.
pub struct HttpGate {
    connection: ConnectionId,
    connector: String,
    grant: EgressGrant,
    secrets: Arc<Secrets>,
    client: reqwest::Client,
    limits: HttpLimits,
}

impl HttpGate {
    /// A gate for one connection.
    pub fn new(
        connection: ConnectionId,
        connector: String,
        grant: EgressGrant,
        secrets: Arc<Secrets>,
        client: reqwest::Client,
        limits: HttpLimits,
    ) -> Self {
        Self {
            connection,
            connector,
            grant,
            secrets,
            client,
            limits,
        }
    }

    /// A gate that refuses everything (used while loading plugins).
    pub fn closed(connector: String, client: reqwest::Client) -> Self {
        Self::new(
            ConnectionId::new("none").expect("valid id"),
            connector,
            EgressGrant::default(),
            Arc::default(),
            client,
            HttpLimits::default(),
        )
    }

    /// The HTTP client shared by all gates of a process: no proxies from the
    /// environment, no automatic redirects (a redirect is returned to the
    /// connector, whose next request is checked like any other).
    pub fn shared_client() -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("weir/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the TLS backend initializes")
    }

    /// The connection's secrets.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// Sends a request on the connector's behalf.
    pub async fn send(&self, request: OutgoingRequest) -> Result<PartnerResponse, RequestFailure> {
        let url = Url::parse(&request.url).map_err(|e| {
            RequestFailure::InvalidRequest(format!("invalid URL `{}`: {e}", request.url))
        })?;
        self.grant
            .check(&url)
            .map_err(|denial| self.denied(&url, denial))?;
        let headers = self.headers(&request)?;
        if request
            .body
            .as_ref()
            .is_some_and(|b| b.len() > self.limits.max_request_bytes)
        {
            return Err(RequestFailure::TooLarge(format!(
                "request body exceeds {} bytes",
                self.limits.max_request_bytes
            )));
        }
        let timeout = request.timeout.map_or(self.limits.request_timeout, |t| {
            t.min(self.limits.request_timeout)
        });
        let mut builder = self
            .client
            .request(request.method.clone(), url.clone())
            .headers(headers)
            .timeout(timeout);
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let response = builder.send().await.map_err(|e| classify(&e, &url))?;
        self.read_response(response, &url).await
    }

    fn headers(&self, request: &OutgoingRequest) -> Result<HeaderMap, RequestFailure> {
        let mut headers = HeaderMap::with_capacity(request.headers.len() + 2);
        let injected: Vec<String> = request
            .secret_headers
            .iter()
            .map(|h| h.name.to_ascii_lowercase())
            .collect();
        for (name, value) in &request.headers {
            let lower = name.to_ascii_lowercase();
            if RESERVED_HEADERS.contains(&lower.as_str()) || injected.contains(&lower) {
                return Err(self.reserved_header(name));
            }
            if lower == "idempotency-key" && request.idempotency_key.is_some() {
                return Err(RequestFailure::InvalidRequest(
                    "set the idempotency key once, with `idempotency-key` of the request".into(),
                ));
            }
            headers.append(header_name(name)?, header_value(name, value.as_bytes())?);
        }
        for secret_header in &request.secret_headers {
            let secret = self
                .secrets
                .current(&secret_header.secret)
                .ok_or_else(|| self.unknown_secret(&secret_header.secret))?;
            let mut value = secret_header.prefix.as_bytes().to_vec();
            value.extend_from_slice(secret.expose());
            let mut value = header_value(&secret_header.name, &value)?;
            value.set_sensitive(true);
            headers.insert(header_name(&secret_header.name)?, value);
        }
        if let Some(key) = &request.idempotency_key {
            headers.insert(
                HeaderName::from_static("idempotency-key"),
                header_value("idempotency-key", key.as_bytes())?,
            );
        }
        Ok(headers)
    }

    async fn read_response(
        &self,
        mut response: reqwest::Response,
        url: &Url,
    ) -> Result<PartnerResponse, RequestFailure> {
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_string(), self.redact(value))
            })
            .collect();
        let limit = self.limits.max_response_bytes;
        let mut body = Vec::with_capacity(
            response
                .content_length()
                .map_or(0, |len| (len as usize).min(limit)),
        );
        while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e, url))? {
            if body.len() + chunk.len() > limit {
                return Err(RequestFailure::TooLarge(format!(
                    "the response of {} exceeds {limit} bytes",
                    path_of(url)
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if self.secrets.leaks_into(&body) {
            body = self.redact_bytes(&body);
        }
        Ok(PartnerResponse {
            status,
            headers,
            body,
        })
    }

    /// A partner echoing a credential back must not hand it to the guest.
    fn redact(&self, value: String) -> String {
        if self.secrets.leaks_into(value.as_bytes()) {
            String::from_utf8_lossy(&self.redact_bytes(value.as_bytes())).into_owned()
        } else {
            value
        }
    }

    fn redact_bytes(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        for name in self.secrets.names() {
            for secret in self.secrets.all(name) {
                out = replace_all(&out, secret.expose(), b"[redacted]");
            }
        }
        out
    }

    fn denied(&self, url: &Url, denial: EgressDenial) -> RequestFailure {
        let (connector, connection) = (&self.connector, &self.connection);
        let (for_guest, for_operator) = match denial {
            EgressDenial::NotAllowed { origin } => (
                format!("`{origin}` is not allowed for this connection"),
                Diagnostic::new(
                    ErrorCode::EgressDenied,
                    format!(
                        "connector `{connector}` tried to reach `{origin}` which connection `{connection}` does not allow"
                    ),
                )
                .with_hint(format!(
                    "add \"{origin}\" to `allowed_hosts` of connection `{connection}` in weir.toml, if you trust it"
                )),
            ),
            EgressDenial::NotDeclared { origin } => (
                format!("`{origin}` is not declared in this connector's spec"),
                Diagnostic::new(
                    ErrorCode::EgressDenied,
                    format!(
                        "connector `{connector}` tried to reach `{origin}`, which it does not declare in its spec (connection `{connection}`)"
                    ),
                )
                .with_hint(
                    "a connector may only reach origins listed in its `spec.hosts`; fix the connector, allowing the host in weir.toml is not enough",
                ),
            ),
            EgressDenial::BadUrl(why) => {
                return RequestFailure::InvalidRequest(format!("cannot send to `{url}`: {why}"));
            }
        };
        tracing::warn!(code = %for_operator.code, hint = ?for_operator.hint, "{for_operator}");
        RequestFailure::Denied {
            for_guest,
            for_operator,
        }
    }

    fn unknown_secret(&self, secret: &str) -> RequestFailure {
        let (connector, connection) = (&self.connector, &self.connection);
        let for_operator = Diagnostic::new(
            ErrorCode::SecretMissing,
            format!(
                "connector `{connector}` asked for secret `{secret}`, which connection `{connection}` does not define"
            ),
        )
        .with_hint(format!(
            "add `secrets.{secret} = {{ env = \"SOME_VARIABLE\" }}` to `[connections.{connection}]` in weir.toml"
        ));
        tracing::warn!(code = %for_operator.code, "{for_operator}");
        RequestFailure::Denied {
            for_guest: format!("secret `{secret}` is not defined for this connection"),
            for_operator,
        }
    }

    fn reserved_header(&self, name: &str) -> RequestFailure {
        let for_operator = Diagnostic::new(
            ErrorCode::EgressDenied,
            format!(
                "connector `{}` tried to set header `{name}`, which is reserved to the host (connection `{}`)",
                self.connector, self.connection
            ),
        )
        .with_hint("this is a connector bug: connection headers and injected credentials are set by Weir");
        RequestFailure::Denied {
            for_guest: format!("header `{name}` is reserved to the host"),
            for_operator,
        }
    }
}

fn header_name(name: &str) -> Result<HeaderName, RequestFailure> {
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| RequestFailure::InvalidRequest(format!("invalid header name `{name}`")))
}

fn header_value(name: &str, value: &[u8]) -> Result<HeaderValue, RequestFailure> {
    HeaderValue::from_bytes(value)
        .map_err(|_| RequestFailure::InvalidRequest(format!("invalid value for header `{name}`")))
}

fn classify(error: &reqwest::Error, url: &Url) -> RequestFailure {
    let path = path_of(url);
    if error.is_timeout() {
        RequestFailure::Timeout(format!("{path}: no complete response in time"))
    } else {
        // The chain carries the useful part ("connection refused", "dns error").
        let mut message = format!("{path}: {error}");
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        RequestFailure::Transport(message)
    }
}

/// `host:port/path`, without the query (it may carry secrets).
fn path_of(url: &Url) -> String {
    format!(
        "{}{}",
        url.host_str().unwrap_or_default(),
        url.port().map(|p| format!(":{p}")).unwrap_or_default()
    ) + url.path()
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = memchr::memmem::find(rest, needle) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_all_handles_repeats_and_edges() {
        assert_eq!(replace_all(b"kXkXk", b"k", b"[r]"), b"[r]X[r]X[r]");
        assert_eq!(replace_all(b"none", b"zz", b"[r]"), b"none");
    }

    #[test]
    fn paths_never_show_the_query() {
        let url = Url::parse("https://api.example.com:8443/v1/x?api_key=secret").unwrap();
        assert_eq!(path_of(&url), "api.example.com:8443/v1/x");
    }
}
