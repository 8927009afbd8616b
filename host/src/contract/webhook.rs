use super::ChangeKind;

/// A webhook request as received, bytes untouched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingRequest {
    /// Upper-case method.
    pub method: String,
    /// Path below the connection's endpoint.
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// Lower-case names with raw values, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Raw body.
    pub body: Vec<u8>,
    /// Receive time, ms since the Unix epoch.
    pub received_at_ms: u64,
}

/// An HTTP response for the partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// Why a delivery was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectionReason {
    /// No signature.
    MissingSignature,
    /// Signature matches no active secret.
    BadSignature,
    /// Signed timestamp outside the window.
    StaleTimestamp,
    /// Not a delivery the connector understands.
    Malformed,
}

/// A refused delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Why.
    pub reason: RejectionReason,
    /// Details for logs.
    pub detail: String,
}

/// A verified delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedDelivery {
    /// Deduplication key from signed data.
    pub delivery_key: String,
    /// Response to send after storing it.
    pub reply: Option<Reply>,
}

/// What the connector decided about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookVerdict {
    /// Answer a handshake; store nothing.
    Handshake(Reply),
    /// Store, then acknowledge.
    Accept(AcceptedDelivery),
    /// Refuse.
    Reject(Rejection),
}

/// One change reported by a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeNotice {
    /// Stream name.
    pub stream: String,
    /// Primary key.
    pub key: String,
    /// Upsert or delete.
    pub kind: ChangeKind,
    /// Version, when known.
    pub version: Option<u64>,
    /// Full object as JSON text, when carried.
    pub data: Option<String>,
}
