//! Receiving webhooks: the [`IncomingRequest`], the [`WebhookVerdict`] on
//! it, the [`ChangeNotice`]s it carries, and signature checks for the common
//! schemes ([`StandardWebhooks`], [`HubSignature`]).
//!
//! Signatures are checked by the host's `crypto` import against the
//! connection's secrets (all active values during a rotation): secret values
//! never enter connector memory.

use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;

use crate::{ChangeKind, Record, Result, ResultExt};

/// An HTTP request received from a partner (a webhook delivery).
///
/// # Example
///
/// ```
/// use weir_sdk::IncomingRequest;
///
/// let request = IncomingRequest::post(r#"{"type":"contact.updated"}"#)
///     .with_header("webhook-id", "msg_1");
/// assert_eq!(request.header_str("Webhook-Id"), Some("msg_1"));
/// let body: serde_json::Value = request.json()?;
/// assert_eq!(body["type"], "contact.updated");
/// # Ok::<(), weir_sdk::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IncomingRequest {
    /// The HTTP method, upper case.
    pub method: String,
    /// The path below the connection's webhook endpoint, e.g. `/` or
    /// `/events`.
    pub path: String,
    /// The raw query string, without `?`; read parameters with
    /// [`query_param`](IncomingRequest::query_param).
    pub query: String,
    /// Header names in lower case with their raw values, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The raw body, exactly as received (not necessarily UTF-8): verify
    /// signatures over these bytes.
    pub body: Vec<u8>,
    /// When the host received the request, in milliseconds since the Unix
    /// epoch. Check signed timestamps against this, not a clock.
    pub received_at_ms: u64,
}

impl IncomingRequest {
    /// A `POST /` with `body`, received at the epoch (for tests: the host
    /// builds these).
    ///
    /// ```
    /// let request = weir_sdk::IncomingRequest::post("{}");
    /// assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/"));
    /// ```
    pub fn post(body: impl Into<Vec<u8>>) -> Self {
        Self {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: Vec::new(),
            body: body.into(),
            received_at_ms: 0,
        }
    }

    /// Adds a header (its name in lower case).
    ///
    /// ```
    /// let request = weir_sdk::IncomingRequest::post("{}").with_header("X-Hub-Signature-256", "sha256=00");
    /// assert_eq!(request.headers[0].0, "x-hub-signature-256");
    /// ```
    pub fn with_header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// Sets when the host received the request, in milliseconds since the
    /// epoch.
    ///
    /// ```
    /// let request = weir_sdk::IncomingRequest::post("{}").received_at_ms(1_700_000_000_000);
    /// assert_eq!(request.received_at_ms, 1_700_000_000_000);
    /// ```
    pub fn received_at_ms(mut self, received_at_ms: u64) -> Self {
        self.received_at_ms = received_at_ms;
        self
    }

    /// The raw value of the first header named `name` (ignoring case).
    ///
    /// ```
    /// let request = weir_sdk::IncomingRequest::post("{}").with_header("x-token", vec![0xff]);
    /// assert_eq!(request.header("x-token"), Some(&[0xff][..]));
    /// ```
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_slice())
    }

    /// The first header named `name` as text, `None` when absent or not
    /// UTF-8.
    ///
    /// ```
    /// let request = weir_sdk::IncomingRequest::post("{}").with_header("x-token", vec![0xff]);
    /// assert_eq!(request.header_str("x-token"), None);
    /// ```
    pub fn header_str(&self, name: &str) -> Option<&str> {
        std::str::from_utf8(self.header(name)?).ok()
    }

    /// Parses the body as JSON. `T` may borrow from the body (e.g. a
    /// `&RawValue` field to pass a record through untouched).
    ///
    /// # Errors
    ///
    /// [`Error::Permanent`](crate::Error::Permanent) when it does not parse.
    ///
    /// ```
    /// assert!(weir_sdk::IncomingRequest::post("nope").json::<serde_json::Value>().is_err());
    /// ```
    pub fn json<'a, T: Deserialize<'a>>(&'a self) -> Result<T> {
        serde_json::from_slice(&self.body).context("webhook body")
    }

    /// Sets the raw query string, without `?` (for tests: the host builds
    /// these).
    ///
    /// ```
    /// let request = weir_sdk::IncomingRequest::post("").with_query("validationToken=abc");
    /// assert_eq!(request.query, "validationToken=abc");
    /// ```
    pub fn with_query(mut self, query: impl Into<String>) -> Self {
        self.query = query.into();
        self
    }

    /// The decoded value of the first query parameter `name`, `None` when
    /// there is none: `%XX` escapes decoded, `+` as a space (see
    /// [`http::query_pairs`](crate::http::query_pairs)).
    ///
    /// ```
    /// // A subscription handshake, the way Microsoft Graph does it.
    /// let request = weir_sdk::IncomingRequest::post("")
    ///     .with_query("validationToken=Validation%3A+Testing%20client");
    /// assert_eq!(request.query_param("validationToken").as_deref(), Some("Validation: Testing client"));
    /// assert_eq!(request.query_param("token"), None);
    /// ```
    pub fn query_param(&self, name: &str) -> Option<String> {
        crate::http::query_string_param(&self.query, name)
    }
}

/// An HTTP response to send back to a partner.
///
/// # Example
///
/// ```
/// let reply = weir_sdk::Reply::new(200)
///     .with_header("content-type", "text/plain")
///     .with_body("challenge-accepted");
/// assert_eq!(reply.body, b"challenge-accepted");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// A reply with `status`, no headers and an empty body.
    ///
    /// ```
    /// assert_eq!(weir_sdk::Reply::new(204).status, 204);
    /// ```
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    ///
    /// ```
    /// let reply = weir_sdk::Reply::new(200).with_header("x-challenge", "abc");
    /// assert_eq!(reply.headers.len(), 1);
    /// ```
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    ///
    /// ```
    /// let reply = weir_sdk::Reply::new(200).with_body("ok");
    /// assert_eq!(reply.body, b"ok");
    /// ```
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

/// Why a webhook delivery was refused.
///
/// # Example
///
/// ```
/// use weir_sdk::{RejectionReason, WebhookVerdict};
///
/// let verdict = WebhookVerdict::reject(RejectionReason::Malformed, "no `type` field");
/// assert!(matches!(verdict, WebhookVerdict::Reject { reason: RejectionReason::Malformed, .. }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectionReason {
    /// No signature header (or no timestamp where one is signed).
    MissingSignature,
    /// A signature is present but matches none of the active secrets, or
    /// cannot be decoded.
    BadSignature,
    /// The signed timestamp is outside the allowed window.
    StaleTimestamp,
    /// The request is not a delivery this connector understands.
    Malformed,
}

/// What to do with a received webhook request: the result of
/// [`Connector::verify_webhook`](crate::Connector::verify_webhook).
///
/// # Example
///
/// ```
/// use weir_sdk::{Reply, WebhookVerdict};
///
/// // A partner that validates the endpoint with `?challenge=...`.
/// let challenge = "abc123";
/// let verdict = WebhookVerdict::Handshake(Reply::new(200).with_body(challenge));
/// # let _ = verdict;
/// let verdict = WebhookVerdict::accept("msg_2Lh9");
/// assert!(matches!(verdict, WebhookVerdict::Accept { reply: None, .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookVerdict {
    /// A handshake (subscription validation, periodic challenge): send this
    /// response; nothing is stored as data.
    Handshake(Reply),
    /// An authentic delivery: the host stores it, then acknowledges it.
    Accept {
        /// A key taken from *signed* data (a signed delivery id, an id
        /// inside the signed body, or a hash of the body) so that a replayed
        /// or retried delivery is stored once.
        delivery_key: String,
        /// The response to send once the delivery is stored; `None` for a
        /// plain `200 OK` with an empty body.
        reply: Option<Reply>,
    },
    /// Refuse it: the host answers 401, counts it by reason and stores
    /// nothing.
    Reject {
        /// Why.
        reason: RejectionReason,
        /// Details for the operator's logs. Never echoed to the sender.
        detail: String,
    },
}

impl WebhookVerdict {
    /// Accepts a delivery identified by `delivery_key`, answered with a plain
    /// `200 OK`.
    ///
    /// ```
    /// let verdict = weir_sdk::WebhookVerdict::accept("msg_1");
    /// # let _ = verdict;
    /// ```
    pub fn accept(delivery_key: impl Into<String>) -> Self {
        Self::Accept {
            delivery_key: delivery_key.into(),
            reply: None,
        }
    }

    /// Refuses a delivery.
    ///
    /// ```
    /// let verdict = weir_sdk::WebhookVerdict::reject(weir_sdk::RejectionReason::BadSignature, "no match");
    /// # let _ = verdict;
    /// ```
    pub fn reject(reason: RejectionReason, detail: impl Into<String>) -> Self {
        Self::Reject {
            reason,
            detail: detail.into(),
        }
    }

    /// Whether this is [`WebhookVerdict::Accept`].
    ///
    /// ```
    /// assert!(weir_sdk::WebhookVerdict::accept("msg_1").is_accepted());
    /// ```
    pub fn is_accepted(&self) -> bool {
        matches!(self, Self::Accept { .. })
    }
}

/// One change reported by a webhook delivery: what
/// [`Connector::handle_webhook`](crate::Connector::handle_webhook) returns.
///
/// # Example
///
/// ```
/// use weir_sdk::{ChangeNotice, Record};
///
/// // A full event: the record is in the delivery.
/// let full = ChangeNotice::from_record("contacts", Record::upsert("c_1", r#"{"id":"c_1"}"#).with_version(4));
/// assert_eq!(full.data.as_deref(), Some(r#"{"id":"c_1"}"#));
///
/// // A thin event: the host fetches the object with `Connector::fetch`.
/// let thin = ChangeNotice::thin("contacts", "c_2");
/// assert!(thin.data.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeNotice {
    /// The stream the object belongs to.
    pub stream: String,
    /// The object's primary key.
    pub key: String,
    /// Upsert or delete.
    pub kind: ChangeKind,
    /// The object's version, when the delivery carries it.
    pub version: Option<u64>,
    /// The object as a JSON object, when the delivery carries all of it.
    /// `None` for thin events: the host then fetches the object.
    pub data: Option<String>,
}

impl ChangeNotice {
    /// A change carrying the whole object (key, kind, version and data of
    /// `record`).
    ///
    /// ```
    /// let notice = weir_sdk::ChangeNotice::from_record("contacts", weir_sdk::Record::delete("c_1"));
    /// assert_eq!(notice.kind, weir_sdk::ChangeKind::Delete);
    /// ```
    pub fn from_record(stream: impl Into<String>, record: Record) -> Self {
        Self {
            stream: stream.into(),
            key: record.key,
            kind: record.kind,
            version: record.version,
            data: Some(record.data),
        }
    }

    /// A change to object `key` without its data (an upsert; set `kind` for
    /// a delete): the host fetches the current object.
    ///
    /// ```
    /// let notice = weir_sdk::ChangeNotice::thin("contacts", "c_1");
    /// assert_eq!(notice.kind, weir_sdk::ChangeKind::Upsert);
    /// ```
    pub fn thin(stream: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            stream: stream.into(),
            key: key.into(),
            kind: ChangeKind::Upsert,
            version: None,
            data: None,
        }
    }
}

/// Verifies [Standard Webhooks](https://www.standardwebhooks.com/)
/// signatures.
///
/// The partner sends `webhook-id`, `webhook-timestamp` (Unix seconds) and
/// `webhook-signature: v1,<base64 HMAC-SHA256>` (several space-separated
/// signatures during a key rotation), signing `{id}.{timestamp}.{body}`.
/// [`verify`](StandardWebhooks::verify) accepts a delivery when one `v1`
/// signature matches an active value of the secret and the timestamp is
/// within the tolerance (5 minutes by default, either side of
/// [`IncomingRequest::received_at_ms`]); the delivery key is the signed
/// `webhook-id`.
///
/// The host computes the HMAC with the secret's value as the key: store the
/// partner's key material in the secret as the partner uses it.
///
/// Partners that sign with a key pair send `v1a,<base64 Ed25519 signature>`
/// instead: [`ed25519`](StandardWebhooks::ed25519) verifies those under the
/// partner's public key (`whpk_...`), which is not a secret.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use weir_sdk::{IncomingRequest, Result, WebhookVerdict, webhook::StandardWebhooks};
///
/// fn verify_webhook(request: &IncomingRequest) -> Result<WebhookVerdict> {
///     StandardWebhooks::new("webhook_secret")
///         .tolerance(Duration::from_secs(120))
///         .verify(request)
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandardWebhooks {
    key: SigningKey,
    tolerance: Duration,
}

/// What the partner signs with.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SigningKey {
    /// `v1`: HMAC-SHA256 under the connection's secret of this name.
    Secret(String),
    /// `v1a`: Ed25519 under this public key.
    PublicKey([u8; 32]),
}

impl SigningKey {
    /// The signature scheme's prefix and the length of its signatures.
    fn scheme(&self) -> (&'static [u8], usize) {
        match self {
            SigningKey::Secret(_) => (b"v1,", 32),
            SigningKey::PublicKey(_) => (b"v1a,", 64),
        }
    }

    fn describe(&self) -> String {
        match self {
            SigningKey::Secret(name) => format!("`v1` signatures matches secret `{name}`"),
            SigningKey::PublicKey(_) => "`v1a` signatures matches the Ed25519 public key".into(),
        }
    }
}

impl StandardWebhooks {
    /// The default tolerance between the signed timestamp and the time the
    /// host received the request: 5 minutes.
    pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

    /// A verifier signing with secret `secret` of the connection.
    ///
    /// ```
    /// let verifier = weir_sdk::webhook::StandardWebhooks::new("webhook_secret");
    /// # let _ = verifier;
    /// ```
    pub fn new(secret: impl Into<String>) -> Self {
        Self {
            key: SigningKey::Secret(secret.into()),
            tolerance: Self::DEFAULT_TOLERANCE,
        }
    }

    /// A verifier of `v1a` (Ed25519) signatures under the partner's public
    /// key: `whpk_` then the base64 of its 32 bytes (the bare base64 also
    /// works).
    ///
    /// # Errors
    ///
    /// [`Error::Config`](crate::Error::Config) when `public_key` is not the
    /// base64 of 32 bytes.
    ///
    /// ```
    /// use weir_sdk::webhook::StandardWebhooks;
    ///
    /// let key = "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
    /// assert!(StandardWebhooks::ed25519(key).is_ok());
    /// assert!(StandardWebhooks::ed25519("whpk_c2hvcnQ=").is_err());
    /// ```
    pub fn ed25519(public_key: &str) -> Result<Self> {
        let encoded = public_key.strip_prefix("whpk_").unwrap_or(public_key);
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| {
                crate::Error::config(format!(
                    "the webhook public key must be `whpk_` and the base64 of 32 bytes, got `{public_key}`"
                ))
            })?;
        Ok(Self {
            key: SigningKey::PublicKey(key),
            tolerance: Self::DEFAULT_TOLERANCE,
        })
    }

    /// Sets the tolerance for the signed timestamp, either side of the time
    /// the host received the request.
    ///
    /// ```
    /// let verifier = weir_sdk::webhook::StandardWebhooks::new("webhook_secret")
    ///     .tolerance(std::time::Duration::from_secs(60));
    /// # let _ = verifier;
    /// ```
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Accepts the request, with the signed `webhook-id` as delivery key, or
    /// rejects it with the reason.
    ///
    /// # Errors
    ///
    /// [`Error::Denied`](crate::Error::Denied) when the connection does not
    /// define the secret. A bad request is a
    /// [`WebhookVerdict::Reject`], not an error.
    ///
    /// ```no_run
    /// let request = weir_sdk::IncomingRequest::post("{}");
    /// let verdict = weir_sdk::webhook::StandardWebhooks::new("webhook_secret").verify(&request)?;
    /// assert!(!verdict.is_accepted());
    /// # Ok::<(), weir_sdk::Error>(())
    /// ```
    pub fn verify(&self, request: &IncomingRequest) -> Result<WebhookVerdict> {
        match &self.key {
            SigningKey::Secret(secret) => self.verify_with(request, |message, signature| {
                crate::crypto::verify_hmac_sha256(secret, message, signature)
            }),
            SigningKey::PublicKey(key) => self.verify_with(request, |message, signature| {
                Ok(crate::crypto::verify_ed25519(key, message, signature))
            }),
        }
    }

    /// The checks of `verify`, with the signature check given (the seam for
    /// unit tests).
    fn verify_with(
        &self,
        request: &IncomingRequest,
        mut verify_signature: impl FnMut(&[u8], &[u8]) -> Result<bool>,
    ) -> Result<WebhookVerdict> {
        use RejectionReason::*;
        let reject = |reason, detail: &str| Ok(WebhookVerdict::reject(reason, detail));
        let (Some(id), Some(timestamp), Some(signatures)) = (
            request.header("webhook-id"),
            request.header("webhook-timestamp"),
            request.header("webhook-signature"),
        ) else {
            return reject(
                MissingSignature,
                "expected headers `webhook-id`, `webhook-timestamp` and `webhook-signature`",
            );
        };
        let Ok(id) = std::str::from_utf8(id) else {
            return reject(Malformed, "`webhook-id` is not UTF-8");
        };
        let Some(seconds) = std::str::from_utf8(timestamp)
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
        else {
            return reject(Malformed, "`webhook-timestamp` is not a number of seconds");
        };
        let received = request.received_at_ms / 1000;
        if seconds.abs_diff(received) > self.tolerance.as_secs() {
            return reject(
                StaleTimestamp,
                &format!(
                    "`webhook-timestamp` {seconds} is {} s from the time received ({received}); the tolerance is {} s",
                    seconds.abs_diff(received),
                    self.tolerance.as_secs()
                ),
            );
        }

        let mut message = Vec::with_capacity(id.len() + timestamp.len() + request.body.len() + 2);
        message.extend_from_slice(id.as_bytes());
        message.push(b'.');
        message.extend_from_slice(timestamp);
        message.push(b'.');
        message.extend_from_slice(&request.body);

        let (scheme, length) = self.key.scheme();
        let mut candidates = 0;
        for entry in signatures
            .split(|byte| *byte == b' ')
            .filter(|entry| !entry.is_empty())
        {
            let Some(encoded) = entry.strip_prefix(scheme) else {
                continue; // another scheme (`v1` or `v1a`)
            };
            candidates += 1;
            let Ok(signature) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
                continue;
            };
            if signature.len() == length && verify_signature(&message, &signature)? {
                return Ok(WebhookVerdict::accept(id));
            }
        }
        reject(
            BadSignature,
            &format!("none of {candidates} {}", self.key.describe()),
        )
    }
}

/// Verifies `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`, the
/// scheme of GitHub and many others.
///
/// This scheme signs no delivery id nor timestamp, so the delivery key is the
/// verified signature itself (a keyed hash of the body): a retried delivery
/// with the same body is stored once. Replays cannot be told from retries.
///
/// # Example
///
/// ```no_run
/// use weir_sdk::{IncomingRequest, Result, WebhookVerdict, webhook::HubSignature};
///
/// fn verify_webhook(request: &IncomingRequest) -> Result<WebhookVerdict> {
///     HubSignature::new("webhook_secret").verify(request)
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSignature {
    secret: String,
    header: String,
}

impl HubSignature {
    /// A verifier of header `x-hub-signature-256` with secret `secret`.
    ///
    /// ```
    /// let verifier = weir_sdk::webhook::HubSignature::new("webhook_secret");
    /// # let _ = verifier;
    /// ```
    pub fn new(secret: impl Into<String>) -> Self {
        Self {
            secret: secret.into(),
            header: "x-hub-signature-256".into(),
        }
    }

    /// Reads the signature from header `name` instead.
    ///
    /// ```
    /// let verifier = weir_sdk::webhook::HubSignature::new("webhook_secret").header("x-acme-signature");
    /// # let _ = verifier;
    /// ```
    pub fn header(mut self, name: impl Into<String>) -> Self {
        self.header = name.into();
        self
    }

    /// Accepts the request, with the signature as delivery key, or rejects it
    /// with the reason.
    ///
    /// # Errors
    ///
    /// [`Error::Denied`](crate::Error::Denied) when the connection does not
    /// define the secret.
    ///
    /// ```no_run
    /// let request = weir_sdk::IncomingRequest::post("{}").with_header("x-hub-signature-256", "sha256=zz");
    /// let verdict = weir_sdk::webhook::HubSignature::new("webhook_secret").verify(&request)?;
    /// assert!(!verdict.is_accepted());
    /// # Ok::<(), weir_sdk::Error>(())
    /// ```
    pub fn verify(&self, request: &IncomingRequest) -> Result<WebhookVerdict> {
        self.verify_with(request, |message, signature| {
            crate::crypto::verify_hmac_sha256(&self.secret, message, signature)
        })
    }

    fn verify_with(
        &self,
        request: &IncomingRequest,
        mut verify_hmac: impl FnMut(&[u8], &[u8]) -> Result<bool>,
    ) -> Result<WebhookVerdict> {
        let Some(value) = request.header(&self.header) else {
            return Ok(WebhookVerdict::reject(
                RejectionReason::MissingSignature,
                format!("expected header `{}`", self.header),
            ));
        };
        let value = value.trim_ascii();
        let signature = value.strip_prefix(b"sha256=").and_then(decode_hex);
        match signature {
            Some(signature) if signature.len() == 32 && verify_hmac(&request.body, &signature)? => {
                Ok(WebhookVerdict::accept(String::from_utf8_lossy(value)))
            }
            _ => Ok(WebhookVerdict::reject(
                RejectionReason::BadSignature,
                format!("`{}` does not match secret `{}`", self.header, self.secret),
            )),
        }
    }
}

fn decode_hex(text: &[u8]) -> Option<Vec<u8>> {
    fn nibble(byte: u8) -> Option<u8> {
        match byte {
            b'0'..=b'9' => Some(byte - b'0'),
            b'a'..=b'f' => Some(byte - b'a' + 10),
            b'A'..=b'F' => Some(byte - b'A' + 10),
            _ => None,
        }
    }
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    const GOOD: [u8; 32] = [7; 32];

    /// Stands in for the host: a signature matches when it is `GOOD` and the
    /// message is what the scheme signs.
    fn host<'a>(expected_message: &'a [u8]) -> impl FnMut(&[u8], &[u8]) -> Result<bool> + 'a {
        move |message, signature| Ok(message == expected_message && signature == GOOD)
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn delivery(signature: &str) -> IncomingRequest {
        IncomingRequest::post(r#"{"type":"contact.updated"}"#)
            .with_header("webhook-id", "msg_1")
            .with_header("webhook-timestamp", "1700000000")
            .with_header("webhook-signature", signature)
            .received_at_ms(1_700_000_010_500)
    }

    const SIGNED: &[u8] = br#"msg_1.1700000000.{"type":"contact.updated"}"#;

    fn reason(verdict: Result<WebhookVerdict>) -> Option<RejectionReason> {
        match verdict.unwrap() {
            WebhookVerdict::Reject { reason, .. } => Some(reason),
            _ => None,
        }
    }

    #[test]
    fn standard_accepts_a_good_signature_among_several() {
        let header = format!("v1a,AAAA v1,{} v1,{}", b64(&[1; 32]), b64(&GOOD));
        let verdict = StandardWebhooks::new("s").verify_with(&delivery(&header), host(SIGNED));
        assert_eq!(verdict, Ok(WebhookVerdict::accept("msg_1")));
    }

    #[test]
    fn standard_rejects_missing_headers() {
        let mut request = delivery(&format!("v1,{}", b64(&GOOD)));
        request
            .headers
            .retain(|(name, _)| name != "webhook-timestamp");
        assert_eq!(
            reason(StandardWebhooks::new("s").verify_with(&request, host(SIGNED))),
            Some(RejectionReason::MissingSignature)
        );
    }

    #[test]
    fn standard_rejects_undecodable_and_wrong_signatures_as_bad() {
        for header in [
            "v1,!!!not base64!!!".to_string(),
            format!("v1,{}", b64(&[7; 31])),
            format!("v1,{}", b64(&[1; 32])),
            format!("v2,{}", b64(&GOOD)),
            String::new(),
        ] {
            assert_eq!(
                reason(StandardWebhooks::new("s").verify_with(&delivery(&header), host(SIGNED))),
                Some(RejectionReason::BadSignature),
                "{header:?}"
            );
        }
    }

    #[test]
    fn standard_rejects_a_signature_over_another_body() {
        let mut request = delivery(&format!("v1,{}", b64(&GOOD)));
        request.body = br#"{"type":"contact.deleted"}"#.to_vec();
        assert_eq!(
            reason(StandardWebhooks::new("s").verify_with(&request, host(SIGNED))),
            Some(RejectionReason::BadSignature)
        );
    }

    #[test]
    fn standard_ed25519_accepts_only_v1a_signatures_under_its_key() {
        use ed25519_dalek::{Signer, SigningKey};
        let partner = SigningKey::from_bytes(&[9; 32]);
        let public_key = format!("whpk_{}", b64(partner.verifying_key().as_bytes()));
        let verifier = StandardWebhooks::ed25519(&public_key).unwrap();
        let good = b64(&partner.sign(SIGNED).to_bytes());
        let other = b64(&SigningKey::from_bytes(&[8; 32]).sign(SIGNED).to_bytes());
        let over_another_body = b64(&partner.sign(b"msg_1.1700000000.{}").to_bytes());

        let accepted = |header: &str| verifier.verify(&delivery(header)).unwrap().is_accepted();
        assert!(accepted(&format!("v1a,{good}")));
        assert!(accepted(&format!("v1a,{other} v1a,{good}")), "rotation");
        for header in [
            format!("v1,{good}"),
            format!("v1a,{other}"),
            format!("v1a,{over_another_body}"),
            format!("v1a,{}", &good[..good.len() - 4]),
            "v1a,".to_string(),
        ] {
            assert!(!accepted(&header), "{header}");
        }
        assert!(StandardWebhooks::ed25519(&b64(&[1; 31])).is_err());
        assert!(StandardWebhooks::ed25519("whpk_!!").is_err());
    }

    #[test]
    fn standard_checks_the_timestamp_both_ways() {
        let verifier = StandardWebhooks::new("s").tolerance(Duration::from_secs(60));
        let header = format!("v1,{}", b64(&GOOD));
        for (received_ms, accepted) in [
            (1_700_000_060_999, true),
            (1_700_000_061_000, false),
            (1_699_999_940_000, true),
            (1_699_999_939_999, false),
        ] {
            let request = delivery(&header).received_at_ms(received_ms);
            let verdict = verifier.verify_with(&request, host(SIGNED)).unwrap();
            assert_eq!(verdict.is_accepted(), accepted, "received at {received_ms}");
            if !accepted {
                assert_eq!(reason(Ok(verdict)), Some(RejectionReason::StaleTimestamp));
            }
        }
    }

    #[test]
    fn standard_rejects_a_timestamp_that_is_not_a_number() {
        let mut request = delivery(&format!("v1,{}", b64(&GOOD)));
        request.headers[1].1 = b"yesterday".to_vec();
        assert_eq!(
            reason(StandardWebhooks::new("s").verify_with(&request, host(SIGNED))),
            Some(RejectionReason::Malformed)
        );
    }

    #[test]
    fn standard_passes_host_errors_through() {
        let request = delivery(&format!("v1,{}", b64(&GOOD)));
        let verdict = StandardWebhooks::new("s")
            .verify_with(&request, |_, _| Err(Error::Denied("no secret `s`".into())));
        assert_eq!(verdict, Err(Error::Denied("no secret `s`".into())));
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    #[test]
    fn hub_signature_accepts_with_the_signature_as_key() {
        let header = format!("sha256={}", hex(&GOOD));
        let request =
            IncomingRequest::post("{}").with_header("X-Hub-Signature-256", header.clone());
        let verdict = HubSignature::new("s").verify_with(&request, host(b"{}"));
        assert_eq!(verdict, Ok(WebhookVerdict::accept(header)));
    }

    #[test]
    fn hub_signature_rejects_missing_and_bad_signatures() {
        let verify = |request: &IncomingRequest| {
            reason(HubSignature::new("s").verify_with(request, host(b"{}")))
        };
        assert_eq!(
            verify(&IncomingRequest::post("{}")),
            Some(RejectionReason::MissingSignature)
        );
        for header in [
            "sha256=zz".to_string(),
            "sha256=abc".to_string(),
            format!("sha1={}", hex(&GOOD)),
            format!("sha256={}", hex(&[7; 20])),
            format!("sha256={}", hex(&[1; 32])),
        ] {
            let request =
                IncomingRequest::post("{}").with_header("x-hub-signature-256", header.clone());
            assert_eq!(
                verify(&request),
                Some(RejectionReason::BadSignature),
                "{header}"
            );
        }
    }

    #[test]
    fn hex_decodes_both_cases() {
        assert_eq!(decode_hex(b"00ffAB"), Some(vec![0, 255, 171]));
        assert_eq!(decode_hex(b"0"), None);
        assert_eq!(decode_hex(b"0g"), None);
    }
}
