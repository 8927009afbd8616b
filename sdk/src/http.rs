//! Outgoing HTTP through the host, the only way a connector reaches the
//! network.
//!
//! The host checks every request against the connection's egress grant,
//! paces it by the connection's rate budget and fills in secret headers:
//! secret values never enter connector memory. Build a [`Request`],
//! [`send`](Request::send) it, then turn partner statuses into the right
//! [`Error`] with [`Response::error_for_status`].
//!
//! # Example
//!
//! ```no_run
//! use serde::Deserialize;
//! use weir_sdk::http::Request;
//!
//! #[derive(Deserialize)]
//! struct Me { email: String }
//!
//! let me: Me = Request::get("https://api.acme.example/v1/me")
//!     .bearer_secret("token")
//!     .query("fields", "email")
//!     .send()?
//!     .error_for_status()?
//!     .json()?;
//! weir_sdk::log::info(format!("connected as {}", me.email));
//! # Ok::<(), weir_sdk::Error>(())
//! ```

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

use crate::{Error, Result, ResultExt};

/// An HTTP method.
///
/// # Example
///
/// ```
/// use weir_sdk::http::{Method, Request};
///
/// let request = Request::new(Method::Put, "https://api.acme.example/v1/tags/vip");
/// assert_eq!(request.method(), Method::Put);
/// assert_eq!(Method::Put.to_string(), "PUT");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
}

impl Method {
    /// The method's name, upper case.
    ///
    /// ```
    /// assert_eq!(weir_sdk::http::Method::Patch.as_str(), "PATCH");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A header whose value the host fills in from a secret of the connection:
/// `name: <prefix><secret value>`.
///
/// # Example
///
/// ```
/// let request = weir_sdk::http::Request::get("https://api.acme.example/v1/me").bearer_secret("token");
/// let header = &request.secret_headers()[0];
/// assert_eq!((header.name.as_str(), header.secret.as_str(), header.prefix.as_str()),
///            ("authorization", "token", "Bearer "));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretHeader {
    /// The header name.
    pub name: String,
    /// The secret's name, as declared with [`Spec::secret`](crate::Spec::secret).
    pub secret: String,
    /// Text put before the secret's value, e.g. `Bearer `.
    pub prefix: String,
}

/// A request to a partner, built step by step and sent with
/// [`send`](Request::send).
///
/// # Example
///
/// ```no_run
/// use weir_sdk::http::Request;
///
/// let created = Request::post_json(
///         "https://api.acme.example/v1/contacts",
///         &serde_json::json!({ "email": "ada@example.com" }),
///     )
///     .secret_header("x-api-key", "api_key")
///     .idempotency_key("run-7/rec-1")
///     .timeout_ms(10_000)
///     .send()?
///     .error_for_status()?;
/// assert_eq!(created.status, 201);
/// # Ok::<(), weir_sdk::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a request does nothing until it is sent"]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    secret_headers: Vec<SecretHeader>,
    body: Option<Vec<u8>>,
    idempotency_key: Option<String>,
    timeout_ms: Option<u32>,
    /// A failure while building (a body that did not serialize), reported
    /// by `send` so that building can chain.
    error: Option<Error>,
}

impl Request {
    /// A request with `method` to the absolute `url`.
    ///
    /// ```
    /// use weir_sdk::http::{Method, Request};
    ///
    /// let request = Request::new(Method::Head, "https://api.acme.example/v1/contacts");
    /// assert_eq!(request.url(), "https://api.acme.example/v1/contacts");
    /// ```
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            headers: Vec::new(),
            secret_headers: Vec::new(),
            body: None,
            idempotency_key: None,
            timeout_ms: None,
            error: None,
        }
    }

    /// A `GET` request.
    ///
    /// ```
    /// let request = weir_sdk::http::Request::get("https://api.acme.example/v1/contacts");
    /// assert_eq!(request.method(), weir_sdk::http::Method::Get);
    /// ```
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }

    /// A `POST` request without a body.
    ///
    /// ```
    /// let request = weir_sdk::http::Request::post("https://api.acme.example/v1/contacts/c_1/merge");
    /// assert!(request.get_body().is_none());
    /// ```
    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::Post, url)
    }

    /// A `POST` request with `body` as JSON.
    ///
    /// ```
    /// let request = weir_sdk::http::Request::post_json(
    ///     "https://api.acme.example/v1/contacts",
    ///     &serde_json::json!({ "email": "ada@example.com" }),
    /// );
    /// assert_eq!(request.get_header("content-type"), Some("application/json"));
    /// ```
    pub fn post_json(url: impl Into<String>, body: &impl Serialize) -> Self {
        Self::new(Method::Post, url).json(body)
    }

    /// A `PUT` request with `body` as JSON.
    ///
    /// ```
    /// let request = weir_sdk::http::Request::put_json(
    ///     "https://api.acme.example/v1/tags/vip",
    ///     &serde_json::json!({ "color": "gold" }),
    /// );
    /// assert_eq!(request.method(), weir_sdk::http::Method::Put);
    /// ```
    pub fn put_json(url: impl Into<String>, body: &impl Serialize) -> Self {
        Self::new(Method::Put, url).json(body)
    }

    /// A `PATCH` request with `body` as JSON.
    ///
    /// ```
    /// let request = weir_sdk::http::Request::patch_json(
    ///     "https://api.acme.example/v1/contacts/c_1",
    ///     &serde_json::json!({ "score": 80 }),
    /// );
    /// assert_eq!(request.get_body(), Some(&br#"{"score":80}"#[..]));
    /// ```
    pub fn patch_json(url: impl Into<String>, body: &impl Serialize) -> Self {
        Self::new(Method::Patch, url).json(body)
    }

    /// A `DELETE` request.
    ///
    /// ```
    /// let request = weir_sdk::http::Request::delete("https://api.acme.example/v1/contacts/c_1");
    /// assert_eq!(request.method(), weir_sdk::http::Method::Delete);
    /// ```
    pub fn delete(url: impl Into<String>) -> Self {
        Self::new(Method::Delete, url)
    }

    /// Appends `name=value` to the URL's query, percent-encoding both (RFC
    /// 3986: everything but `A-Z a-z 0-9 - . _ ~`).
    ///
    /// ```
    /// let request = weir_sdk::http::Request::get("https://api.acme.example/v1/contacts?limit=10")
    ///     .query("updated_since", "2024-01-01T00:00:00+01:00")
    ///     .query("q", "Zoë & co");
    /// assert_eq!(
    ///     request.url(),
    ///     "https://api.acme.example/v1/contacts?limit=10\
    ///      &updated_since=2024-01-01T00%3A00%3A00%2B01%3A00&q=Zo%C3%AB%20%26%20co"
    /// );
    /// ```
    pub fn query(mut self, name: &str, value: impl fmt::Display) -> Self {
        let fragment = self.url.find('#').map(|at| self.url.split_off(at));
        if !self.url.contains('?') {
            self.url.push('?');
        } else if !self.url.ends_with(['?', '&']) {
            self.url.push('&');
        }
        percent_encode_into(&mut self.url, name);
        self.url.push('=');
        percent_encode_into(&mut self.url, &value.to_string());
        if let Some(fragment) = fragment {
            self.url.push_str(&fragment);
        }
        self
    }

    /// Appends `name=value` when `value` is `Some`, like [`query`](Request::query).
    ///
    /// ```
    /// let cursor: Option<&str> = None;
    /// let request = weir_sdk::http::Request::get("https://api.acme.example/v1/contacts")
    ///     .query("limit", 100)
    ///     .query_opt("cursor", cursor);
    /// assert_eq!(request.url(), "https://api.acme.example/v1/contacts?limit=100");
    /// ```
    pub fn query_opt(self, name: &str, value: Option<impl fmt::Display>) -> Self {
        match value {
            Some(value) => self.query(name, value),
            None => self,
        }
    }

    /// Adds a plain header. `host`, hop-by-hop headers and headers filled from
    /// secrets are refused by the host.
    ///
    /// ```
    /// let request = weir_sdk::http::Request::get("https://api.acme.example/v1/contacts")
    ///     .header("accept", "application/json");
    /// assert_eq!(request.get_header("Accept"), Some("application/json"));
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds header `name` whose value the host fills in from secret `secret`.
    ///
    /// ```
    /// let request = weir_sdk::http::Request::get("https://api.acme.example/v1/contacts")
    ///     .secret_header("x-api-key", "api_key");
    /// assert_eq!(request.secret_headers()[0].secret, "api_key");
    /// ```
    pub fn secret_header(self, name: impl Into<String>, secret: impl Into<String>) -> Self {
        self.secret_header_with_prefix(name, secret, "")
    }

    /// Adds header `name` with value `<prefix><value of secret>`.
    ///
    /// ```
    /// let request = weir_sdk::http::Request::get("https://api.acme.example/v1/contacts")
    ///     .secret_header_with_prefix("authorization", "api_key", "Token ");
    /// assert_eq!(request.secret_headers()[0].prefix, "Token ");
    /// ```
    pub fn secret_header_with_prefix(
        mut self,
        name: impl Into<String>,
        secret: impl Into<String>,
        prefix: impl Into<String>,
    ) -> Self {
        self.secret_headers.push(SecretHeader {
            name: name.into(),
            secret: secret.into(),
            prefix: prefix.into(),
        });
        self
    }

    /// Adds `authorization: Bearer <value of secret>`.
    ///
    /// ```
    /// let request = weir_sdk::http::Request::get("https://api.acme.example/v1/me").bearer_secret("token");
    /// assert_eq!(request.secret_headers()[0].name, "authorization");
    /// ```
    pub fn bearer_secret(self, secret: impl Into<String>) -> Self {
        self.secret_header_with_prefix("authorization", secret, "Bearer ")
    }

    /// Sets the body, as bytes.
    ///
    /// ```
    /// let request = weir_sdk::http::Request::post("https://api.acme.example/v1/upload")
    ///     .header("content-type", "text/csv")
    ///     .body("id,name\n1,Ada\n");
    /// assert_eq!(request.get_body().map(<[u8]>::len), Some(14));
    /// ```
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sets the body to `body` as JSON, with `content-type: application/json`.
    /// A body that does not serialize makes [`send`](Request::send) fail.
    ///
    /// ```
    /// let request = weir_sdk::http::Request::post("https://api.acme.example/v1/search")
    ///     .json(&serde_json::json!({ "q": "ada" }));
    /// assert_eq!(request.get_body(), Some(&br#"{"q":"ada"}"#[..]));
    /// ```
    pub fn json(mut self, body: &impl Serialize) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => self.body = Some(bytes),
            Err(error) => {
                self.error = Some(Error::from(error).context(format!(
                    "{} {}: request body",
                    self.method,
                    url_path(&self.url)
                )))
            }
        }
        self.header("content-type", "application/json")
    }

    /// Marks a `POST` or `PATCH` as safe to retry: the partner deduplicates
    /// by this key, which the host sends as the `Idempotency-Key` header.
    /// Pass the [`WriteRequest::idempotency_key`](crate::WriteRequest::idempotency_key).
    ///
    /// ```
    /// let request = weir_sdk::http::Request::post("https://api.acme.example/v1/contacts")
    ///     .idempotency_key("run-7/rec-1");
    /// assert_eq!(request.get_idempotency_key(), Some("run-7/rec-1"));
    /// ```
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Sets a shorter timeout than the connection's, in milliseconds.
    ///
    /// ```
    /// let request = weir_sdk::http::Request::get("https://api.acme.example/v1/ping").timeout_ms(2_000);
    /// assert_eq!(request.get_timeout_ms(), Some(2_000));
    /// ```
    pub fn timeout_ms(mut self, timeout_ms: u32) -> Self {
        self.timeout_ms = Some(timeout_ms);
        self
    }

    /// Sends the request through the host and waits for the whole response.
    ///
    /// Any status is a response, 4xx and 5xx included: check it with
    /// [`Response::error_for_status`].
    ///
    /// # Errors
    ///
    /// When no response was received: [`Error::Denied`] when the host's
    /// egress policy refused the request, [`Error::RateLimited`] when the
    /// connection's rate budget is spent, [`Error::Transient`] on timeouts
    /// and connection failures, [`Error::Permanent`] for a malformed or
    /// too-large request or response (or a body that did not serialize).
    ///
    /// Outside a Weir host (native unit tests) requests go to a
    /// [`testing::MockHost`](crate::testing::MockHost) when one is
    /// installed, and fail with [`Error::Unsupported`] otherwise.
    ///
    /// ```no_run
    /// let response = weir_sdk::http::Request::get("https://api.acme.example/v1/ping").send()?;
    /// println!("{}", response.status);
    /// # Ok::<(), weir_sdk::Error>(())
    /// ```
    pub fn send(mut self) -> Result<Response> {
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        crate::host::http_send(self)
    }

    /// The method.
    ///
    /// ```
    /// assert_eq!(weir_sdk::http::Request::get("https://x.example").method(), weir_sdk::http::Method::Get);
    /// ```
    pub fn method(&self) -> Method {
        self.method
    }

    /// The URL, query included.
    ///
    /// ```
    /// assert_eq!(weir_sdk::http::Request::get("https://x.example/a").query("b", 1).url(), "https://x.example/a?b=1");
    /// ```
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The first plain header named `name` (ignoring case).
    ///
    /// ```
    /// let request = weir_sdk::http::Request::get("https://x.example").header("Accept", "text/csv");
    /// assert_eq!(request.get_header("accept"), Some("text/csv"));
    /// ```
    pub fn get_header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The plain headers, in order.
    ///
    /// ```
    /// let request = weir_sdk::http::Request::get("https://x.example").header("accept", "text/csv");
    /// assert_eq!(request.headers().len(), 1);
    /// ```
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The headers the host fills from secrets.
    ///
    /// ```
    /// let request = weir_sdk::http::Request::get("https://x.example").secret_header("x-api-key", "api_key");
    /// assert_eq!(request.secret_headers().len(), 1);
    /// ```
    pub fn secret_headers(&self) -> &[SecretHeader] {
        &self.secret_headers
    }

    /// The body, if any.
    ///
    /// ```
    /// assert!(weir_sdk::http::Request::get("https://x.example").get_body().is_none());
    /// ```
    pub fn get_body(&self) -> Option<&[u8]> {
        self.body.as_deref()
    }

    /// The idempotency key, if any.
    ///
    /// ```
    /// assert!(weir_sdk::http::Request::post("https://x.example").get_idempotency_key().is_none());
    /// ```
    pub fn get_idempotency_key(&self) -> Option<&str> {
        self.idempotency_key.as_deref()
    }

    /// The timeout, if shorter than the connection's.
    ///
    /// ```
    /// assert!(weir_sdk::http::Request::get("https://x.example").get_timeout_ms().is_none());
    /// ```
    pub fn get_timeout_ms(&self) -> Option<u32> {
        self.timeout_ms
    }

    /// Splits the request for the host seam.
    #[cfg(target_arch = "wasm32")]
    pub(crate) fn into_parts(self) -> RequestParts {
        RequestParts {
            method: self.method,
            url: self.url,
            headers: self.headers,
            secret_headers: self.secret_headers,
            body: self.body,
            idempotency_key: self.idempotency_key,
            timeout_ms: self.timeout_ms,
        }
    }
}

/// The fields of a [`Request`], for the host seam.
#[cfg(target_arch = "wasm32")]
pub(crate) struct RequestParts {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub secret_headers: Vec<SecretHeader>,
    pub body: Option<Vec<u8>>,
    pub idempotency_key: Option<String>,
    pub timeout_ms: Option<u32>,
}

/// A partner's response. Any status is a response, 4xx and 5xx included:
/// the connector decides what it means, usually with
/// [`error_for_status`](Response::error_for_status).
///
/// # Example
///
/// ```
/// use weir_sdk::http::Response;
///
/// let response = Response::new(200)
///     .with_header("content-type", "application/json")
///     .with_body(r#"{"data":[]}"#);
/// assert_eq!(response.header("Content-Type"), Some("application/json"));
/// let body: serde_json::Value = response.json()?;
/// assert!(body["data"].as_array().unwrap().is_empty());
/// # Ok::<(), weir_sdk::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names in lower case, with their values.
    pub headers: Vec<(String, String)>,
    /// The body, decompressed.
    pub body: Vec<u8>,
    /// The request's method and URL, for error messages.
    method: Method,
    url: String,
}

impl Response {
    /// A response with `status`, no headers and an empty body (for tests:
    /// [`Request::send`] returns real ones).
    ///
    /// ```
    /// assert!(weir_sdk::http::Response::new(204).is_success());
    /// ```
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            method: Method::Get,
            url: String::new(),
        }
    }

    /// Adds a header (its name in lower case).
    ///
    /// ```
    /// let response = weir_sdk::http::Response::new(429).with_header("Retry-After", "3");
    /// assert_eq!(response.headers, [("retry-after".to_string(), "3".to_string())]);
    /// ```
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// Sets the body.
    ///
    /// ```
    /// let response = weir_sdk::http::Response::new(200).with_body("ok");
    /// assert_eq!(response.text()?, "ok");
    /// # Ok::<(), weir_sdk::Error>(())
    /// ```
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the request this responds to, for error messages.
    pub(crate) fn for_request(mut self, method: Method, url: String) -> Self {
        self.method = method;
        self.url = url;
        self
    }

    /// Whether the status is 2xx.
    ///
    /// ```
    /// assert!(!weir_sdk::http::Response::new(404).is_success());
    /// ```
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first header named `name` (ignoring case).
    ///
    /// ```
    /// let response = weir_sdk::http::Response::new(200).with_header("x-request-id", "r1");
    /// assert_eq!(response.header("X-Request-Id"), Some("r1"));
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The body as UTF-8 text.
    ///
    /// # Errors
    ///
    /// [`Error::Permanent`] when it is not UTF-8.
    ///
    /// ```
    /// let response = weir_sdk::http::Response::new(200).with_body(vec![0xff]);
    /// assert!(response.text().is_err());
    /// ```
    pub fn text(&self) -> Result<&str> {
        std::str::from_utf8(&self.body).map_err(|error| {
            Error::permanent(format!(
                "{}: response body is not UTF-8: {error}",
                self.describe()
            ))
        })
    }

    /// Parses the body as JSON. `T` may borrow from the body (e.g.
    /// `&RawValue` fields), which is the fast path for lists of records.
    ///
    /// # Errors
    ///
    /// [`Error::Permanent`] naming the request when it does not parse.
    ///
    /// ```
    /// use serde::Deserialize;
    /// use serde_json::value::RawValue;
    ///
    /// #[derive(Deserialize)]
    /// struct List<'a> {
    ///     #[serde(borrow)]
    ///     data: Vec<&'a RawValue>,
    ///     next_cursor: Option<String>,
    /// }
    ///
    /// let response = weir_sdk::http::Response::new(200)
    ///     .with_body(r#"{"data":[{"id":"c_1"}],"next_cursor":"c_1"}"#);
    /// let list: List = response.json()?;
    /// assert_eq!(list.data[0].get(), r#"{"id":"c_1"}"#);
    /// assert_eq!(list.next_cursor.as_deref(), Some("c_1"));
    /// # Ok::<(), weir_sdk::Error>(())
    /// ```
    pub fn json<'a, T: Deserialize<'a>>(&'a self) -> Result<T> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("{}: response body", self.describe()))
    }

    /// Returns the response when its status is 2xx, and otherwise the error
    /// that tells the host the truth:
    ///
    /// | status        | error                                             |
    /// |---------------|---------------------------------------------------|
    /// | 401, 403      | [`Error::Auth`]                                   |
    /// | 429           | [`Error::RateLimited`], after `Retry-After` (1 s when absent) |
    /// | 408, 5xx      | [`Error::Transient`]                              |
    /// | anything else | [`Error::Permanent`]                              |
    ///
    /// The message names method, URL path and status, and the partner's own
    /// message when the body has one (see [`partner_message`](Response::partner_message)).
    ///
    /// # Errors
    ///
    /// As above, for statuses other than 2xx.
    ///
    /// ```
    /// use weir_sdk::{Error, http::Response};
    ///
    /// let response = Response::new(429).with_header("retry-after", "3");
    /// assert!(matches!(response.error_for_status(), Err(Error::RateLimited { retry_after_ms: 3000, .. })));
    ///
    /// let response = Response::new(401).with_body(r#"{"error":{"message":"invalid api key"}}"#);
    /// assert!(matches!(response.error_for_status(), Err(Error::Auth(message)) if message.ends_with("invalid api key")));
    /// ```
    pub fn error_for_status(self) -> Result<Self> {
        match self.status_error() {
            Some(error) => Err(error),
            None => Ok(self),
        }
    }

    /// The error [`error_for_status`](Response::error_for_status) would return,
    /// `None` for 2xx; for connectors that map a few statuses themselves.
    ///
    /// ```
    /// let response = weir_sdk::http::Response::new(503);
    /// assert!(matches!(response.status_error(), Some(weir_sdk::Error::Transient(_))));
    /// ```
    pub fn status_error(&self) -> Option<Error> {
        if self.is_success() {
            return None;
        }
        let mut message = format!("{} returned {}", self.describe(), self.status);
        if let Some(reason) = reason_phrase(self.status) {
            let _ = write!(message, " {reason}");
        }
        if let Some(partner) = self.partner_message() {
            let _ = write!(message, ": {partner}");
        }
        Some(match self.status {
            401 | 403 => Error::Auth(message),
            429 => Error::RateLimited {
                retry_after_ms: retry_after_ms(self).unwrap_or(DEFAULT_RETRY_AFTER_MS),
                message,
            },
            408 | 500..=599 => Error::Transient(message),
            _ => Error::Permanent(message),
        })
    }

    /// The partner's error message in the body, if it has one: the first
    /// string among `error.message`, `error` (a string), `message`,
    /// `errors[0].message`, `error_description`, `detail` and `title` of a
    /// JSON body, else a short plain-text body; at most 300 characters.
    ///
    /// ```
    /// let response = weir_sdk::http::Response::new(422)
    ///     .with_body(r#"{"error":{"code":"validation","message":"email must contain @","field":"email"}}"#);
    /// assert_eq!(response.partner_message().as_deref(), Some("email must contain @"));
    /// ```
    pub fn partner_message(&self) -> Option<String> {
        let message = match serde_json::from_slice::<serde_json::Value>(&self.body) {
            Ok(json) => [
                "/error/message",
                "/error",
                "/message",
                "/errors/0/message",
                "/error_description",
                "/detail",
                "/title",
            ]
            .iter()
            .find_map(|pointer| json.pointer(pointer)?.as_str())?
            .to_owned(),
            Err(_) => {
                let text = std::str::from_utf8(&self.body).ok()?.trim();
                if text.is_empty() || text.starts_with('<') {
                    return None;
                }
                text.to_owned()
            }
        };
        Some(truncate(message, 300))
    }

    /// `METHOD /path`, for messages.
    fn describe(&self) -> String {
        format!("{} {}", self.method, url_path(&self.url))
    }
}

const DEFAULT_RETRY_AFTER_MS: u64 = 1_000;

/// The `Retry-After` header as milliseconds: delay-seconds, or an HTTP date
/// measured against the response's `Date` header (the guest has no clock of
/// its own to compare with).
fn retry_after_ms(response: &Response) -> Option<u64> {
    let value = response.header("retry-after")?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(seconds.saturating_mul(1000));
    }
    let at = crate::time::http_date_seconds(value)?;
    let now = crate::time::http_date_seconds(response.header("date")?)?;
    Some(u64::try_from(at - now).unwrap_or(0).saturating_mul(1000))
}

fn reason_phrase(status: u16) -> Option<&'static str> {
    Some(match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => return None,
    })
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

fn truncate(mut text: String, max_chars: usize) -> String {
    if let Some((at, _)) = text.char_indices().nth(max_chars) {
        text.truncate(at);
        text.push('…');
    }
    text
}

/// The path of an absolute URL, without scheme, authority, query or
/// fragment: what error messages show (queries may hold personal data).
pub(crate) fn url_path(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(url, |at| &url[at + 3..]);
    let path = after_scheme.find('/').map_or("/", |at| &after_scheme[at..]);
    let end = path.find(['?', '#']).unwrap_or(path.len());
    &path[..end]
}

/// Percent-encodes `text` for use as one URL path segment or query value:
/// everything but `A-Z a-z 0-9 - . _ ~` becomes `%XX` (RFC 3986).
///
/// # Example
///
/// ```
/// use weir_sdk::http::{Request, encode_component};
///
/// let id = "c/42 ü";
/// let request = Request::get(format!("https://api.acme.example/v1/contacts/{}", encode_component(id)));
/// assert_eq!(request.url(), "https://api.acme.example/v1/contacts/c%2F42%20%C3%BC");
/// ```
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    percent_encode_into(&mut out, text);
    out
}

fn percent_encode_into(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
}

/// The parameters of a query string, in order, decoded: `%XX` escapes
/// become their bytes (invalid UTF-8 becomes `U+FFFD`) and `+` a space, as
/// browsers and partners encode forms and links
/// (`application/x-www-form-urlencoded`).
///
/// `url_or_query` is a URL (absolute, or a path starting with `/`), whose
/// query is what follows `?` up to any `#`; or a query string as is, with
/// or without a leading `?`.
///
/// # Example
///
/// ```
/// use weir_sdk::http::query_pairs;
///
/// let pairs: Vec<(String, String)> = query_pairs("https://api.acme.example/v1/contacts?cursor=a%2Fb&q=ada+lovelace#top")
///     .map(|(name, value)| (name.into_owned(), value.into_owned()))
///     .collect();
/// assert_eq!(pairs, [("cursor".into(), "a/b".into()), ("q".into(), "ada lovelace".into())]);
/// ```
pub fn query_pairs(url_or_query: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    form_urlencoded::parse(query_of(url_or_query).as_bytes())
}

/// The decoded value of the first parameter `name` of a query string (see
/// [`query_pairs`] for what it accepts and how it decodes); `None` when
/// there is none. A parameter without `=` has the value `""`.
///
/// # Example
///
/// ```
/// use weir_sdk::http::query_param;
///
/// // The `next` link of a partner's list response.
/// let next = "https://api.acme.example/v1/contacts?limit=100&cursor=MTcw%3D%3D";
/// assert_eq!(query_param(next, "cursor").as_deref(), Some("MTcw=="));
/// assert_eq!(query_param("validationToken=Validation%3A+Testing", "validationToken").as_deref(), Some("Validation: Testing"));
/// assert_eq!(query_param(next, "page"), None);
/// ```
pub fn query_param(url_or_query: &str, name: &str) -> Option<String> {
    query_string_param(query_of(url_or_query), name)
}

/// The decoded value of the first parameter `name` of `query`, a query
/// string without `?`.
pub(crate) fn query_string_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// The query string of a URL, or the text itself when it is one.
fn query_of(url_or_query: &str) -> &str {
    let is_url = url_or_query.starts_with('/')
        || url_or_query
            .split_once("://")
            .is_some_and(|(scheme, _)| is_scheme(scheme));
    if !is_url {
        return url_or_query.strip_prefix('?').unwrap_or(url_or_query);
    }
    let query = url_or_query.split_once('?').map_or("", |(_, query)| query);
    query.split_once('#').map_or(query, |(query, _)| query)
}

/// `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` (RFC 3986).
fn is_scheme(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_alphabetic())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// The most pages [`paginate`] fetches.
pub const MAX_PAGES: usize = 100;

/// Collects every page of a small listing inside one call, such as the
/// custom fields for [`Connector::discover`](crate::Connector::discover).
///
/// Calls `next_page` with `first` (`None`: from the beginning), then with
/// each cursor it returns, until it returns no cursor. Stops with an error
/// after [`MAX_PAGES`] pages, or when the partner returns the cursor it was
/// given (which would loop forever).
///
/// Do not use it to read a stream: return one [`Page`](crate::Page) per
/// `read` instead, so that the host stores a checkpoint after each.
///
/// # Errors
///
/// The first error of `next_page`, or [`Error::Permanent`] when the listing
/// does not end.
///
/// # Example
///
/// ```
/// use weir_sdk::http::paginate;
///
/// // A listing of 5 items, 2 per page; the cursor is the next offset.
/// let items = paginate(None, |cursor: Option<&usize>| {
///     let start = cursor.copied().unwrap_or(0);
///     let page: Vec<usize> = (start..5).take(2).collect();
///     let next = (start + 2 < 5).then_some(start + 2);
///     Ok((page, next))
/// })?;
/// assert_eq!(items, [0, 1, 2, 3, 4]);
/// # Ok::<(), weir_sdk::Error>(())
/// ```
pub fn paginate<C, T, F>(first: Option<C>, next_page: F) -> Result<Vec<T>>
where
    C: PartialEq,
    F: FnMut(Option<&C>) -> Result<(Vec<T>, Option<C>)>,
{
    paginate_up_to(MAX_PAGES, first, next_page)
}

/// [`paginate`] with a page cap of `max_pages` instead of [`MAX_PAGES`].
///
/// # Errors
///
/// As [`paginate`].
///
/// # Example
///
/// ```
/// let endless = weir_sdk::http::paginate_up_to(3, None, |cursor: Option<&u32>| {
///     Ok((vec![()], Some(cursor.map_or(0, |c| c + 1))))
/// });
/// assert!(endless.is_err());
/// ```
pub fn paginate_up_to<C, T, F>(
    max_pages: usize,
    first: Option<C>,
    mut next_page: F,
) -> Result<Vec<T>>
where
    C: PartialEq,
    F: FnMut(Option<&C>) -> Result<(Vec<T>, Option<C>)>,
{
    let mut items = Vec::new();
    let mut cursor = first;
    for _ in 0..max_pages {
        let (page, next) = next_page(cursor.as_ref())?;
        items.extend(page);
        match next {
            None => return Ok(items),
            Some(next) if cursor.as_ref() == Some(&next) => {
                return Err(Error::permanent(
                    "pagination: the partner returned the cursor it was given, which would loop forever",
                ));
            }
            next => cursor = next,
        }
    }
    Err(Error::permanent(format!(
        "pagination: the listing did not end after {max_pages} pages"
    )))
}

/// Turns the host's `http-error` into an [`Error`], naming the request.
#[cfg_attr(
    not(any(target_arch = "wasm32", test)),
    expect(dead_code, reason = "only the wasm32 seam receives host errors")
)]
pub(crate) fn http_error(
    method: Method,
    url: &str,
    error: crate::bindings::http::HttpError,
) -> Error {
    use crate::bindings::http::HttpError;
    let request = format!("{method} {}", url_path(url));
    match error {
        // Returned as-is: the host's message already tells the operator
        // what to allow.
        HttpError::Denied(message) => Error::Denied(message),
        HttpError::RateLimited(limit) => Error::RateLimited {
            retry_after_ms: limit.retry_after_ms,
            message: format!("{request}: {}", limit.message),
        },
        HttpError::Timeout(message) => Error::Transient(format!("{request}: timed out: {message}")),
        HttpError::Transport(message) => Error::Transient(format!("{request}: {message}")),
        HttpError::TooLarge(message) => {
            Error::Permanent(format!("{request}: too large: {message}"))
        }
        HttpError::InvalidRequest(message) => {
            Error::Permanent(format!("{request}: invalid request: {message}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::bindings::http::HttpError;
    use crate::bindings::types::RateLimit;

    fn response(status: u16) -> Response {
        Response::new(status).for_request(
            Method::Post,
            "https://api.acme.example/v1/contacts?limit=5".into(),
        )
    }

    #[test]
    fn query_appends_and_encodes() {
        let url = |base: &str| {
            Request::get(base)
                .query("a b", "x/y?z")
                .query("n", 5)
                .url()
                .to_owned()
        };
        assert_eq!(
            url("https://h.example/p"),
            "https://h.example/p?a%20b=x%2Fy%3Fz&n=5"
        );
        assert_eq!(
            url("https://h.example/p?"),
            "https://h.example/p?a%20b=x%2Fy%3Fz&n=5"
        );
        assert_eq!(
            url("https://h.example/p?k=v&"),
            "https://h.example/p?k=v&a%20b=x%2Fy%3Fz&n=5"
        );
        assert_eq!(
            url("https://h.example/p#top"),
            "https://h.example/p?a%20b=x%2Fy%3Fz&n=5#top"
        );
        assert_eq!(
            Request::get("https://h.example").query("e", "é~-._").url(),
            "https://h.example?e=%C3%A9~-._"
        );
    }

    #[test]
    fn url_path_drops_origin_query_and_fragment() {
        assert_eq!(
            url_path("https://h.example:8443/v1/contacts?api_key=x#f"),
            "/v1/contacts"
        );
        assert_eq!(url_path("https://h.example"), "/");
        assert_eq!(url_path("https://h.example?x=1"), "/");
        assert_eq!(url_path("/relative/path"), "/relative/path");
    }

    #[test]
    fn statuses_map_to_error_cases() {
        assert!(response(200).error_for_status().is_ok());
        assert!(response(204).error_for_status().is_ok());
        assert!(matches!(response(401).status_error(), Some(Error::Auth(_))));
        assert!(matches!(response(403).status_error(), Some(Error::Auth(_))));
        assert!(matches!(
            response(408).status_error(),
            Some(Error::Transient(_))
        ));
        assert!(matches!(
            response(500).status_error(),
            Some(Error::Transient(_))
        ));
        assert!(matches!(
            response(503).status_error(),
            Some(Error::Transient(_))
        ));
        assert!(matches!(
            response(404).status_error(),
            Some(Error::Permanent(_))
        ));
        assert!(matches!(
            response(422).status_error(),
            Some(Error::Permanent(_))
        ));
        assert!(matches!(
            response(302).status_error(),
            Some(Error::Permanent(_))
        ));
    }

    #[test]
    fn messages_name_method_path_status_and_partner_message() {
        let error = response(422)
            .with_body(r#"{"error":{"code":"validation","message":"email must contain @","field":"email"}}"#)
            .status_error()
            .unwrap();
        assert_eq!(
            error,
            Error::Permanent(
                "POST /v1/contacts returned 422 Unprocessable Content: email must contain @".into()
            )
        );
        let error = response(599)
            .with_body("upstream exploded\n")
            .status_error()
            .unwrap();
        assert_eq!(
            error,
            Error::Transient("POST /v1/contacts returned 599: upstream exploded".into())
        );
        let error = response(502)
            .with_body("<html>bad gateway</html>")
            .status_error()
            .unwrap();
        assert_eq!(
            error,
            Error::Transient("POST /v1/contacts returned 502 Bad Gateway".into())
        );
    }

    #[test]
    fn partner_messages_come_from_common_shapes() {
        for (body, message) in [
            (r#"{"error":"invalid_grant"}"#, "invalid_grant"),
            (r#"{"message":"Not Found"}"#, "Not Found"),
            (
                r#"{"errors":[{"message":"first"},{"message":"second"}]}"#,
                "first",
            ),
            (
                r#"{"error":"invalid_client","error_description":"bad secret"}"#,
                "invalid_client",
            ),
            (
                r#"{"type":"about:blank","title":"Bad","detail":"limit too high"}"#,
                "limit too high",
            ),
        ] {
            assert_eq!(
                response(400).with_body(body).partner_message().as_deref(),
                Some(message)
            );
        }
        assert_eq!(
            response(400).with_body(r#"{"ok":false}"#).partner_message(),
            None
        );
        assert_eq!(response(400).partner_message(), None);
        let long = "x".repeat(400);
        assert_eq!(
            response(400)
                .with_body(long)
                .partner_message()
                .unwrap()
                .chars()
                .count(),
            301
        );
    }

    #[test]
    fn retry_after_is_seconds_or_a_date_or_one_second() {
        let limited = |response: Response| response.status_error().unwrap().retry_after().unwrap();
        assert_eq!(
            limited(response(429).with_header("retry-after", "7")),
            Duration::from_secs(7)
        );
        assert_eq!(
            limited(
                response(429)
                    .with_header("date", "Sun, 06 Nov 1994 08:49:37 GMT")
                    .with_header("retry-after", "Sun, 06 Nov 1994 08:50:07 GMT")
            ),
            Duration::from_secs(30)
        );
        assert_eq!(
            limited(
                response(429)
                    .with_header("date", "Sun, 06 Nov 1994 08:49:37 GMT")
                    .with_header("retry-after", "Sun, 06 Nov 1994 08:00:00 GMT")
            ),
            Duration::ZERO
        );
        assert_eq!(
            limited(response(429).with_header("retry-after", "soon")),
            Duration::from_secs(1)
        );
        assert_eq!(limited(response(429)), Duration::from_secs(1));
    }

    #[test]
    fn host_errors_map_to_error_cases() {
        let map = |error| http_error(Method::Get, "https://h.example/v1/x?q=secret", error);
        assert_eq!(
            map(HttpError::Denied("not granted".into())),
            Error::Denied("not granted".into())
        );
        assert_eq!(
            map(HttpError::RateLimited(RateLimit {
                retry_after_ms: 250,
                message: "budget".into()
            })),
            Error::RateLimited {
                retry_after_ms: 250,
                message: "GET /v1/x: budget".into()
            }
        );
        assert_eq!(
            map(HttpError::Timeout("30 s".into())),
            Error::Transient("GET /v1/x: timed out: 30 s".into())
        );
        assert_eq!(
            map(HttpError::Transport("reset".into())),
            Error::Transient("GET /v1/x: reset".into())
        );
        assert!(matches!(
            map(HttpError::TooLarge("10 MiB".into())),
            Error::Permanent(_)
        ));
        assert!(matches!(
            map(HttpError::InvalidRequest("bad header".into())),
            Error::Permanent(_)
        ));
    }

    #[test]
    fn body_serialization_errors_surface_on_send() {
        let mut map = std::collections::HashMap::new();
        map.insert(vec![1u8], 1);
        let error = Request::post_json("https://h.example/v1/x", &map)
            .send()
            .unwrap_err();
        assert!(
            matches!(error, Error::Permanent(message) if message.starts_with("POST /v1/x: request body: "))
        );
    }

    #[test]
    fn paginate_stops_on_repeated_cursors() {
        let result = paginate(Some(1), |_| Ok((vec![()], Some(1))));
        assert!(result.unwrap_err().message().contains("loop forever"));
    }

    #[test]
    fn query_params_are_percent_decoded_with_plus_as_space() {
        let query = "token=a%2Bb+c%20d&empty=&flag&name=%C3%BCber&bad=%zz%4";
        assert_eq!(query_param(query, "token").as_deref(), Some("a+b c d"));
        assert_eq!(query_param(query, "empty").as_deref(), Some(""));
        assert_eq!(query_param(query, "flag").as_deref(), Some(""));
        assert_eq!(query_param(query, "name").as_deref(), Some("über"));
        assert_eq!(
            query_param(query, "bad").as_deref(),
            Some("%zz%4"),
            "a malformed escape stays as it is"
        );
        assert_eq!(
            query_param("bytes=%FF", "bytes").as_deref(),
            Some("\u{fffd}")
        );
        assert_eq!(query_param(query, "missing"), None);
    }

    #[test]
    fn query_params_come_from_urls_and_query_strings() {
        for text in [
            "https://api.acme.example/v1/contacts?cursor=MTcw&limit=5#next",
            "/v1/contacts?cursor=MTcw&limit=5",
            "?cursor=MTcw&limit=5",
            "cursor=MTcw&limit=5",
        ] {
            assert_eq!(
                query_param(text, "cursor").as_deref(),
                Some("MTcw"),
                "{text}"
            );
            assert_eq!(query_param(text, "limit").as_deref(), Some("5"), "{text}");
        }
        assert_eq!(
            query_param("https://api.acme.example/v1/contacts", "cursor"),
            None
        );
        assert_eq!(
            query_param("next=https://api.acme.example/v1?page=2", "next").as_deref(),
            Some("https://api.acme.example/v1?page=2"),
            "a query string whose value is a URL is not taken for a URL"
        );
    }

    #[test]
    fn the_first_of_repeated_params_wins_and_names_are_decoded_too() {
        assert_eq!(query_param("a=1&a=2", "a").as_deref(), Some("1"));
        assert_eq!(
            query_param("valid%61tion+token=x", "validation token").as_deref(),
            Some("x")
        );
        let pairs: Vec<_> = query_pairs("a=1&a=2&b").collect();
        assert_eq!(pairs.len(), 3);
        assert_eq!((&*pairs[2].0, &*pairs[2].1), ("b", ""));
    }
}
