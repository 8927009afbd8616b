use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use super::budget::utc_after;
use super::printed_url::printed;
use super::{
    AuditEntry, AuditSink, BudgetConfig, EgressDenial, EgressGrant, ForbiddenAddress,
    GuardedResolver, NoAudit, RateBudget, Secrets, forbidden,
};
use crate::diagnostic::{Diagnostic, ErrorCode};
use crate::ids::ConnectionId;
use crate::unix_time::humanize_duration;
use crate::unix_time::now_ms;

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

/// Size, time and retry limits of outgoing requests.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Largest response body accepted, after decompression.
    pub max_response_bytes: usize,
    /// Largest total size of response headers.
    pub max_response_header_bytes: usize,
    /// Largest request body accepted.
    pub max_request_bytes: usize,
    /// Until the response headers arrive.
    pub first_byte_timeout: Duration,
    /// Until the whole response has arrived.
    pub request_timeout: Duration,
    /// Longest silence while the response body arrives.
    pub idle_timeout: Duration,
    /// Redirects one call may follow (a connector follows them by hand).
    pub max_redirects: u32,
    /// Attempts of a request that is safe to retry, the first included.
    pub max_attempts: u32,
    /// Delay before the first retry of a 5xx or network failure; doubles.
    pub retry_base_delay: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_response_bytes: 64 << 20,
            max_response_header_bytes: 64 << 10,
            max_request_bytes: 16 << 20,
            first_byte_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(30),
            max_redirects: 10,
            max_attempts: 4,
            retry_base_delay: Duration::from_millis(200),
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
    /// Sent as `Idempotency-Key`; makes a POST or PATCH safe to retry.
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

/// The redirects one call received and followed. A connector follows a
/// redirect by hand, with a new request to its `Location`; a partner's
/// redirect loop must not turn into a request storm.
#[derive(Debug, Default)]
pub struct RedirectTrail {
    /// Where the redirects this call received point (absolute, no fragment).
    targets: HashSet<String>,
    /// Requests to one of those.
    followed: u32,
}

impl RedirectTrail {
    fn key(url: &Url) -> String {
        let mut url = url.clone();
        url.set_fragment(None);
        url.to_string()
    }
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
    /// The rate budget is spent for longer than the call may wait.
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

impl RequestFailure {
    fn outcome(&self) -> &'static str {
        match self {
            Self::Denied { .. } => "denied",
            Self::RateLimited { .. } => "rate-limited",
            Self::Timeout(_) => "timeout",
            Self::Transport(_) => "transport",
            Self::TooLarge(_) => "too-large",
            Self::InvalidRequest(_) => "invalid",
        }
    }

    /// What happened, as the operator reads it.
    pub fn message(&self) -> String {
        match self {
            Self::Denied { for_operator, .. } => for_operator.message.clone(),
            Self::RateLimited { message, .. } => message.clone(),
            Self::Timeout(m) | Self::Transport(m) | Self::TooLarge(m) | Self::InvalidRequest(m) => {
                m.clone()
            }
        }
    }

    fn is_retryable(&self) -> bool {
        matches!(self, Self::Timeout(_) | Self::Transport(_))
    }
}

/// Sends one connection's requests: checks the egress grant, the addresses
/// names resolve to and reserved headers, injects secrets, paces requests
/// by the rate budget, retries what is safe to retry, enforces limits and
/// records every attempt.
pub struct HttpGate {
    connection: ConnectionId,
    connector: String,
    grant: EgressGrant,
    secrets: Arc<Secrets>,
    /// For every origin not allowed exactly: its resolver refuses private
    /// addresses.
    client: reqwest::Client,
    /// For the origins the operator allowed exactly (scheme, host and port),
    /// the only ones that may reach private addresses.
    exact_client: Option<reqwest::Client>,
    limits: HttpLimits,
    budget: Arc<RateBudget>,
    audit: Arc<dyn AuditSink>,
}

/// The parts of a gate that come from the connection.
pub struct GateSetup {
    /// The connection.
    pub connection: ConnectionId,
    /// `name version` of its connector.
    pub connector: String,
    /// What it may reach.
    pub grant: EgressGrant,
    /// Its secrets.
    pub secrets: Arc<Secrets>,
    /// Its limits.
    pub limits: HttpLimits,
    /// Its rate budget (shared with other flows on the connection).
    pub budget: Arc<RateBudget>,
    /// Where attempts are recorded.
    pub audit: Arc<dyn AuditSink>,
}

impl HttpGate {
    /// A gate for one connection, with its own HTTP client: its resolver
    /// knows which hosts the connection may reach on private addresses.
    /// A resolver only knows the name it resolves, not the port, so the
    /// exemption of exact origins lives in a client of their own.
    pub fn new(setup: GateSetup) -> Self {
        let exempt = setup.grant.exempt_hosts();
        let exact_client = (!exempt.is_empty()).then(|| http_client(exempt));
        Self {
            connection: setup.connection,
            connector: setup.connector,
            grant: setup.grant,
            secrets: setup.secrets,
            client: http_client(HashSet::new()),
            exact_client,
            limits: setup.limits,
            budget: setup.budget,
            audit: setup.audit,
        }
    }

    /// A gate that refuses everything (used while loading plugins).
    pub fn closed(connector: String) -> Self {
        Self::new(GateSetup {
            connection: ConnectionId::new("none").expect("valid id"),
            connector,
            grant: EgressGrant::default(),
            secrets: Arc::default(),
            limits: HttpLimits::default(),
            budget: Arc::new(RateBudget::new(BudgetConfig::default_ceiling(), None)),
            audit: Arc::new(NoAudit),
        })
    }

    /// The connection's secrets.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// `METHOD host[:port]/path` of a request, for messages.
    pub fn describe(&self, request: &OutgoingRequest) -> String {
        let target = match Url::parse(&request.url) {
            Ok(url) => path_of(&url),
            Err(_) => super::printed_url::printed_text(&request.url),
        };
        format!("{} {target}", request.method)
    }

    /// The hint behind a permanent failure that follows a partner's 4xx
    /// answer to `request` (429, 401 and 403 have codes of their own).
    pub fn refusal_hint(&self, status: u16, request: &str) -> Option<String> {
        ((400..500).contains(&status) && !matches!(status, 401 | 403 | 429)).then(|| {
            format!(
                "the partner answered {status} to `{request}`: run the command again with `--debug-http` to see the request Weir sent and the start of the answer, and `weir audit {}` lists the connection's requests",
                self.connection
            )
        })
    }

    /// The hint behind a permanent failure on a response over a cap.
    pub fn too_large_hint(&self) -> String {
        format!(
            "the partner's response is over a cap of connection `{}`: raise `max_response_mb` (body) or `max_response_header_kb` (headers) in weir.toml if the partner legitimately sends that much",
            self.connection
        )
    }

    /// Sends a request on the connector's behalf, finishing by `deadline`;
    /// `trail` holds the redirects of the call it belongs to.
    pub async fn send(
        &self,
        request: OutgoingRequest,
        deadline: Instant,
        trail: &mut RedirectTrail,
    ) -> Result<PartnerResponse, RequestFailure> {
        let url = Url::parse(&request.url).map_err(|e| {
            RequestFailure::InvalidRequest(format!(
                "invalid URL `{}`: {e}",
                super::printed_url::printed_text(&request.url)
            ))
        })?;
        let origin = origin_of(&url);
        let path = url.path().to_string();
        let method = request.method.to_string();
        let audit = |at_ms, started: Instant, attempt, outcome: &'static str, status, received| {
            self.audit.record(AuditEntry {
                at_ms,
                connection: self.connection.to_string(),
                method: method.clone(),
                origin: origin.clone(),
                path: path.clone(),
                status,
                outcome: outcome.into(),
                bytes_sent: request.body.as_ref().map_or(0, |b| b.len() as u64),
                bytes_received: received,
                duration_ms: started.elapsed().as_millis() as u64,
                attempt,
                budget: self.budget.left(),
            })
        };
        let checked = self
            .follow_redirect(&url, trail)
            .and_then(|()| self.check(&request, &url));
        let (headers, body) = match checked {
            Ok(parts) => parts,
            Err(failure) => {
                audit(now_ms(), Instant::now(), 1, failure.outcome(), None, 0);
                return Err(failure);
            }
        };
        let retryable = request.idempotency_key.is_some()
            || matches!(
                request.method,
                Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
            );
        let attempts = if retryable {
            self.limits.max_attempts.max(1)
        } else {
            1
        };
        let timeout = request.timeout.map_or(self.limits.request_timeout, |t| {
            t.min(self.limits.request_timeout)
        });
        let mut attempt = 0;
        loop {
            attempt += 1;
            let _permit = match self.budget.acquire(deadline).await {
                Ok(permit) => permit,
                Err(exhausted) => {
                    audit(now_ms(), Instant::now(), attempt, "rate-limited", None, 0);
                    return Err(RequestFailure::RateLimited {
                        retry_after: exhausted.retry_after,
                        message: exhausted.message,
                    });
                }
            };
            // Timed from when the budget let the request go.
            let at_ms = now_ms();
            let started = Instant::now();
            let remaining = deadline.saturating_duration_since(started);
            let outcome = self
                .attempt(
                    &request.method,
                    &url,
                    headers.clone(),
                    body.clone(),
                    timeout.min(remaining),
                )
                .await;
            let last = attempt >= attempts;
            self.debug_exchange(&request.method, &url, &outcome, started);
            match outcome {
                Ok(response) => {
                    audit(
                        at_ms,
                        started,
                        attempt,
                        "ok",
                        Some(response.status),
                        response.body.len() as u64,
                    );
                    if (300..400).contains(&response.status)
                        && let Some(target) = response
                            .headers
                            .iter()
                            .find(|(name, _)| name == "location")
                            .and_then(|(_, location)| url.join(location).ok())
                    {
                        trail.targets.insert(RedirectTrail::key(&target));
                    }
                    if let Some((wait, capped)) =
                        self.budget.observe(response.status, &response.headers)
                    {
                        self.note_backoff(&url, response.status, wait, capped);
                    }
                    let retry = response.status == 429 || response.status >= 500;
                    if !retry || last || !self.wait_before_retry(attempt, deadline).await {
                        return Ok(response);
                    }
                }
                Err(failure) => {
                    audit(at_ms, started, attempt, failure.outcome(), None, 0);
                    if !failure.is_retryable()
                        || last
                        || !self.wait_before_retry(attempt, deadline).await
                    {
                        return Err(failure);
                    }
                }
            }
        }
    }

    /// Exponential backoff with jitter before a retry; false when the
    /// deadline would pass first. Waits imposed by the partner are applied
    /// by the budget when the retry acquires it.
    async fn wait_before_retry(&self, attempt: u32, deadline: Instant) -> bool {
        let exp = self
            .limits
            .retry_base_delay
            .saturating_mul(1 << (attempt - 1).min(10));
        let delay = exp / 2 + (exp / 2).mul_f64(fastrand::f64());
        if Instant::now() + delay >= deadline {
            return false;
        }
        tokio::time::sleep(delay).await;
        true
    }

    /// Says what the partner's demand to wait does: no request of the
    /// connection leaves before its end (the budget holds them).
    fn note_backoff(&self, url: &Url, status: u16, wait: Duration, capped: bool) {
        let origin = origin_of(url);
        let connection = &self.connection;
        let until = utc_after(wait);
        let wait = humanize_duration(wait);
        if capped {
            tracing::warn!(
                connection = %connection,
                "{origin} answered {status} and asked connection `{connection}` to wait longer than its `rate_limit.max_backoff`: no request goes to it for {wait}, until {until}"
            );
        } else {
            tracing::info!(
                connection = %connection,
                "{origin} answered {status} and asked connection `{connection}` to wait: no request goes to it for {wait}, until {until}"
            );
        }
    }

    /// Counts a request to where a redirect of this call pointed; past
    /// `max_redirects` the request is refused.
    fn follow_redirect(&self, url: &Url, trail: &mut RedirectTrail) -> Result<(), RequestFailure> {
        if !trail.targets.contains(&RedirectTrail::key(url)) {
            return Ok(());
        }
        trail.followed += 1;
        let max = self.limits.max_redirects;
        if trail.followed <= max {
            return Ok(());
        }
        let (connector, connection) = (&self.connector, &self.connection);
        let for_operator = Diagnostic::new(
            ErrorCode::TooManyRedirects,
            format!(
                "connector `{connector}` followed more than {max} redirects in one call, the last to `{}` (connection `{connection}`)",
                printed(url)
            ),
        )
        .with_hint(format!(
            "the partner redirects in a loop, or the connector follows one: check the partner's answers with `--debug-http`; raise `max_redirects` of connection `{connection}` in weir.toml only if the partner legitimately redirects that often"
        ));
        Err(RequestFailure::Denied {
            for_guest: format!("more than {max} redirects followed in one call"),
            for_operator,
        })
    }

    /// With `--debug-http` (the `weir::http` log target at debug level):
    /// each attempt's method, whole URL, status, and the start of a failed
    /// response's body, secret values redacted.
    fn debug_exchange(
        &self,
        method: &Method,
        url: &Url,
        outcome: &Result<PartnerResponse, RequestFailure>,
        started: Instant,
    ) {
        if !tracing::enabled!(target: "weir::http", tracing::Level::DEBUG) {
            return;
        }
        let shown = self.redact(debug_url(url));
        let took = humanize_duration(started.elapsed());
        let connection = &self.connection;
        match outcome {
            Ok(response) if response.status >= 400 => {
                let head = &response.body[..response.body.len().min(DEBUG_BODY_BYTES)];
                let cut = if response.body.len() > head.len() {
                    " [cut]"
                } else {
                    ""
                };
                tracing::debug!(
                    target: "weir::http",
                    "connection `{connection}`: {method} {shown} -> {} in {took}; body: {}{cut}",
                    response.status,
                    String::from_utf8_lossy(head)
                );
            }
            Ok(response) => tracing::debug!(
                target: "weir::http",
                "connection `{connection}`: {method} {shown} -> {} in {took}",
                response.status
            ),
            Err(failure) => tracing::debug!(
                target: "weir::http",
                "connection `{connection}`: {method} {shown} -> no response in {took}: {}",
                failure.message()
            ),
        }
    }

    /// Everything checked before the first byte is sent.
    fn check(
        &self,
        request: &OutgoingRequest,
        url: &Url,
    ) -> Result<(HeaderMap, Option<Bytes>), RequestFailure> {
        self.grant
            .check(url)
            .map_err(|denial| self.denied(url, denial))?;
        if let Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) = url.host() {
            let ip: IpAddr = match url.host() {
                Some(url::Host::Ipv4(v4)) => v4.into(),
                Some(url::Host::Ipv6(v6)) => v6.into(),
                _ => unreachable!(),
            };
            if let Some(why) = forbidden(ip)
                && !self.grant.explicitly_allows(url)
            {
                return Err(self.private_address(url, ip, why));
            }
        }
        let headers = self.headers(request)?;
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
        Ok((headers, request.body.clone().map(Bytes::from)))
    }

    async fn attempt(
        &self,
        method: &Method,
        url: &Url,
        headers: HeaderMap,
        body: Option<Bytes>,
        timeout: Duration,
    ) -> Result<PartnerResponse, RequestFailure> {
        let client = match &self.exact_client {
            Some(exact) if self.grant.explicitly_allows(url) => exact,
            _ => &self.client,
        };
        let first_byte = self.limits.first_byte_timeout.min(timeout);
        // When what is left of the call is shorter than the first-byte
        // timeout, both timers would end at once; reqwest's must lose, so
        // that the message names the cause.
        let whole = if first_byte < timeout {
            timeout
        } else {
            timeout + Duration::from_millis(100)
        };
        let mut builder = client
            .request(method.clone(), url.clone())
            .headers(headers)
            .timeout(whole);
        if let Some(body) = body {
            builder = builder.body(body);
        }
        // The first-byte timer is looked at first: a task woken late, once
        // both timers have passed, still reports what ran out.
        let first_byte_passed = tokio::time::sleep(first_byte);
        let response = tokio::select! {
            biased;
            () = first_byte_passed => Err(()),
            sent = builder.send() => Ok(sent),
        };
        let response = match response {
            Err(()) => {
                let left_of_call = if first_byte < self.limits.first_byte_timeout {
                    format!(
                        ", all the time the request had (see `request_timeout` and `call_timeout` of connection `{}`)",
                        self.connection
                    )
                } else {
                    String::new()
                };
                return Err(RequestFailure::Timeout(format!(
                    "{}: no response within {} ms{left_of_call}",
                    path_of(url),
                    first_byte.as_millis()
                )));
            }
            Ok(result) => result.map_err(|e| self.classify(e, url))?,
        };
        self.read_response(response, url).await
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
        let header_bytes: usize = response
            .headers()
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len())
            .sum();
        if header_bytes > self.limits.max_response_header_bytes {
            return Err(self.headers_too_large(url));
        }
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
        let idle = self.limits.idle_timeout;
        loop {
            let chunk = match tokio::time::timeout(idle, response.chunk()).await {
                Err(_) => {
                    return Err(RequestFailure::Timeout(format!(
                        "{}: the response stalled, no data for {} (see `idle_timeout` of connection `{}`)",
                        path_of(url),
                        humanize_duration(idle),
                        self.connection
                    )));
                }
                Ok(chunk) => chunk.map_err(|e| self.classify(e, url))?,
            };
            let Some(chunk) = chunk else { break };
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

    /// Over the cap of Weir or of the HTTP parser: both the partner's fault,
    /// neither passes by retrying.
    fn headers_too_large(&self, url: &Url) -> RequestFailure {
        RequestFailure::TooLarge(format!(
            "the response headers of {} are over the limit of {} KiB (or 100 headers) of connection `{}` (`max_response_header_kb`)",
            path_of(url),
            self.limits.max_response_header_bytes >> 10,
            self.connection
        ))
    }

    fn classify(&self, error: reqwest::Error, url: &Url) -> RequestFailure {
        let path = path_of(url);
        // Messages never show the URL: its query may carry secrets.
        let error = error.without_url();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            if let Some(forbidden) = cause.downcast_ref::<ForbiddenAddress>() {
                return self.private_address(url, forbidden.address, forbidden.why);
            }
            if cause
                .downcast_ref::<hyper::Error>()
                .is_some_and(hyper::Error::is_parse_too_large)
            {
                return self.headers_too_large(url);
            }
            source = cause.source();
        }
        if error.is_timeout() {
            return RequestFailure::Timeout(format!(
                "{path}: no complete response in time (see `request_timeout` and `call_timeout` of connection `{}`)",
                self.connection
            ));
        }
        // The chain carries the useful part ("connection refused", "dns error").
        let mut message = format!("{path}: {error}");
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        RequestFailure::Transport(message)
    }

    fn private_address(&self, url: &Url, address: IpAddr, why: &str) -> RequestFailure {
        let origin = origin_of(url);
        let (connector, connection) = (&self.connector, &self.connection);
        let for_operator = Diagnostic::new(
            ErrorCode::EgressDenied,
            format!(
                "connector `{connector}` tried to reach `{origin}`, which is {why} ({address}); connection `{connection}` does not allow that origin explicitly"
            ),
        )
        .with_hint(format!(
            "private, loopback and metadata addresses are refused unless the exact origin is allowed: add \"{origin}\" (with its port) to `allowed_hosts` of connection `{connection}` if this is intended"
        ));
        RequestFailure::Denied {
            for_guest: format!("`{origin}` is {why}, which this connection may not reach"),
            for_operator,
        }
    }

    fn denied(&self, url: &Url, denial: EgressDenial) -> RequestFailure {
        let (connector, connection) = (&self.connector, &self.connection);
        let (for_guest, for_operator) = match denial {
            EgressDenial::NotAllowed {
                origin,
                declared: true,
            } => (
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
            EgressDenial::NotAllowed {
                origin,
                declared: false,
            } => (
                format!("`{origin}` is not allowed for this connection"),
                Diagnostic::new(
                    ErrorCode::EgressDenied,
                    format!(
                        "connector `{connector}` tried to reach `{origin}`, which it does not declare in its spec and connection `{connection}` does not allow"
                    ),
                )
                .with_hint(format!(
                    "both are needed: the connector must list \"{origin}\" in its `spec.hosts` (a change to the connector), and `allowed_hosts` of connection `{connection}` in weir.toml must allow it, if you trust it"
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
                return RequestFailure::InvalidRequest(format!(
                    "cannot send to `{}`: {why}",
                    printed(url)
                ));
            }
        };
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

/// How much of a failed response's body `--debug-http` shows.
const DEBUG_BODY_BYTES: usize = 1024;

/// One connection's HTTP client; `exempt_hosts` may resolve to private
/// addresses.
fn http_client(exempt_hosts: HashSet<String>) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(30))
        .dns_resolver(Arc::new(GuardedResolver::new(exempt_hosts)))
        .user_agent(concat!("weir/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the TLS backend initializes")
}

/// The whole URL for `--debug-http`, user info removed and the values of
/// query parameters named like credentials hidden; secret values are
/// redacted by the caller.
fn debug_url(url: &Url) -> String {
    const CREDENTIAL_NAMES: &[&str] = &[
        "key",
        "token",
        "secret",
        "password",
        "signature",
        "sig",
        "auth",
        "credential",
    ];
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                let lower = name.to_ascii_lowercase();
                let hidden = CREDENTIAL_NAMES.iter().any(|c| lower.contains(c));
                let value = if hidden {
                    "[redacted]".into()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    shown.to_string()
}

fn header_name(name: &str) -> Result<HeaderName, RequestFailure> {
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| RequestFailure::InvalidRequest(format!("invalid header name `{name}`")))
}

fn header_value(name: &str, value: &[u8]) -> Result<HeaderValue, RequestFailure> {
    HeaderValue::from_bytes(value)
        .map_err(|_| RequestFailure::InvalidRequest(format!("invalid value for header `{name}`")))
}

/// `scheme://host[:port]` as an allow-list entry would spell it.
fn origin_of(url: &Url) -> String {
    super::OriginPattern::of_url(url)
        .map(|o| o.to_string())
        .unwrap_or_else(|_| url.origin().ascii_serialization())
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
    fn debug_urls_hide_credentials_but_keep_the_rest_of_the_query() {
        let url =
            Url::parse("https://u:p@api.example.com/v1/x?_limit=1000&api_key=s3&access_token=t")
                .unwrap();
        assert_eq!(
            debug_url(&url),
            "https://api.example.com/v1/x?_limit=1000&api_key=%5Bredacted%5D&access_token=%5Bredacted%5D"
        );
    }

    #[tokio::test]
    async fn an_origin_neither_declared_nor_allowed_gets_a_hint_naming_both() {
        let (grant, _) = EgressGrant::new(
            &["https://api.acme.example".into()],
            &serde_json::Value::Null,
            vec![super::super::OriginPattern::parse("https://api.acme.example").unwrap()],
        );
        let gate = HttpGate::new(GateSetup {
            connection: ConnectionId::new("acme").unwrap(),
            connector: "acme-crm 0.1.0".into(),
            grant,
            secrets: Arc::default(),
            limits: HttpLimits::default(),
            budget: Arc::new(RateBudget::new(BudgetConfig::default_ceiling(), None)),
            audit: Arc::new(NoAudit),
        });
        let request = OutgoingRequest {
            method: Method::GET,
            url: "https://elsewhere.example/x".into(),
            headers: Vec::new(),
            secret_headers: Vec::new(),
            body: None,
            idempotency_key: None,
            timeout: None,
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let Err(RequestFailure::Denied { for_operator, .. }) = gate
            .send(request, deadline, &mut RedirectTrail::default())
            .await
        else {
            panic!("refused");
        };
        assert!(
            for_operator.message.contains(
                "which it does not declare in its spec and connection `acme` does not allow"
            ),
            "{}",
            for_operator.message
        );
        let hint = for_operator.hint.unwrap();
        assert!(
            hint.contains("`spec.hosts`") && hint.contains("`allowed_hosts` of connection `acme`"),
            "{hint}"
        );
    }

    #[test]
    fn paths_never_show_the_query() {
        let url = Url::parse("https://api.example.com:8443/v1/x?api_key=secret").unwrap();
        assert_eq!(path_of(&url), "api.example.com:8443/v1/x");
        assert_eq!(origin_of(&url), "https://api.example.com:8443");
    }
}
