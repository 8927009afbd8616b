//! Injected faults: the failures a real partner API has on a bad day.
//!
//! A fault matches requests by method and path prefix. It lets the first
//! `skip` matching requests through, then takes over the next `times`.
//! Faults count matching requests independently; when several are due on
//! the same request, the earliest queued fires and the others wait.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;

/// A fault to inject, built with [`Fault::new`] and its builder methods.
///
/// ```
/// use partner_sim::Fault;
/// // Let three list calls through, then fail one with a 500.
/// let fault = Fault::new("GET", "/v1/contacts").skip(3).times(1).status(500);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// HTTP method to match, or `*` for any.
    pub method: String,
    /// Path prefix to match: `/v1/contacts` also matches `/v1/contacts/c_000001`.
    pub path_prefix: String,
    /// Matching requests to let through first.
    pub skip: u32,
    /// Matching requests to affect after that.
    pub times: u32,
    /// What happens to an affected request.
    pub kind: FaultKind,
}

/// What happens to a request a fault takes over.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FaultKind {
    /// Answer with this status and a JSON error body (`Retry-After: 1` for 429 and 503).
    Status(u16),
    /// Send the real response, `chunk_bytes` at a time, waiting `delay` before each chunk.
    Trickle {
        /// Body bytes per chunk (at least 1).
        chunk_bytes: usize,
        /// Pause before each chunk.
        delay: Duration,
    },
    /// Never answer; the request ends when the client gives up (or the sim stops).
    Hang,
    /// Close the connection without sending a response.
    Close,
    /// Answer with this status, an empty JSON error body and these headers
    /// (a `Retry-After` of a day, a flood of headers).
    Reply {
        /// The status.
        status: u16,
        /// Headers, in order.
        headers: Vec<(String, String)>,
    },
}

impl Fault {
    /// A fault on `method` requests (`*` for any) under `path_prefix`; by
    /// default it answers the next matching request with a 500.
    pub fn new(method: &str, path_prefix: &str) -> Self {
        Self {
            method: method.to_ascii_uppercase(),
            path_prefix: path_prefix.to_owned(),
            skip: 0,
            times: 1,
            kind: FaultKind::Status(500),
        }
    }

    /// Lets the first `n` matching requests through.
    pub fn skip(mut self, n: u32) -> Self {
        self.skip = n;
        self
    }

    /// Affects `n` matching requests (after the skipped ones).
    pub fn times(mut self, n: u32) -> Self {
        self.times = n;
        self
    }

    /// Answers with `status` and a JSON error body.
    pub fn status(self, status: u16) -> Self {
        self.kind(FaultKind::Status(status))
    }

    /// Sends the real response slowly.
    pub fn trickle(self, chunk_bytes: usize, delay: Duration) -> Self {
        self.kind(FaultKind::Trickle { chunk_bytes, delay })
    }

    /// Never answers.
    pub fn hang(self) -> Self {
        self.kind(FaultKind::Hang)
    }

    /// Drops the connection without a response.
    pub fn close(self) -> Self {
        self.kind(FaultKind::Close)
    }

    /// Answers with `status` and `headers`.
    pub fn reply(self, status: u16, headers: Vec<(String, String)>) -> Self {
        self.kind(FaultKind::Reply { status, headers })
    }

    /// Sets what happens to affected requests.
    pub fn kind(mut self, kind: FaultKind) -> Self {
        self.kind = kind;
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        (self.method == "*" || self.method == method) && path.starts_with(&self.path_prefix)
    }
}

/// Faults waiting to fire.
#[derive(Debug, Default)]
pub(crate) struct FaultQueue {
    pending: Mutex<Vec<Fault>>,
    /// Lets requests skip the lock while no fault is queued, the usual case.
    armed: AtomicBool,
}

impl FaultQueue {
    fn lock(&self) -> MutexGuard<'_, Vec<Fault>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `fault` behind the others.
    pub(crate) fn push(&self, fault: Fault) {
        let mut pending = self.lock();
        pending.push(fault);
        self.armed.store(true, Ordering::Release);
    }

    /// Forgets every queued fault.
    pub(crate) fn clear(&self) {
        self.lock().clear();
        self.armed.store(false, Ordering::Release);
    }

    /// The faults still queued, with their remaining `skip` and `times`.
    pub(crate) fn pending(&self) -> Vec<Fault> {
        self.lock().clone()
    }

    /// Counts a request against the queued faults and says which one, if
    /// any, takes it over.
    pub(crate) fn take(&self, method: &str, path: &str) -> Option<FaultKind> {
        if !self.armed.load(Ordering::Acquire) {
            return None;
        }
        let mut pending = self.lock();
        let mut chosen = None;
        for fault in pending.iter_mut().filter(|f| f.matches(method, path)) {
            if fault.skip > 0 {
                fault.skip -= 1;
            } else if chosen.is_none() && fault.times > 0 {
                fault.times -= 1;
                chosen = Some(fault.kind.clone());
            }
        }
        pending.retain(|f| f.times > 0);
        self.armed.store(!pending.is_empty(), Ordering::Release);
        chosen
    }
}

/// Re-sends `response`'s body `chunk_bytes` at a time, pausing before each chunk.
pub(crate) async fn trickle(response: Response, chunk_bytes: usize, delay: Duration) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    // Keep the length so clients see a complete, valid response, just slowly.
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    let chunk = chunk_bytes.max(1);
    let chunks = futures_util::stream::unfold(0, move |offset| {
        let bytes = bytes.clone();
        async move {
            if offset >= bytes.len() {
                return None;
            }
            tokio::time::sleep(delay).await;
            let end = (offset + chunk).min(bytes.len());
            Some((Ok::<_, Infallible>(bytes.slice(offset..end)), end))
        }
    });
    Response::from_parts(parts, Body::from_stream(chunks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_then_fires_then_retires() {
        let queue = FaultQueue::default();
        queue.push(
            Fault::new("GET", "/v1/contacts")
                .skip(2)
                .times(2)
                .status(503),
        );
        let outcomes: Vec<_> = (0..5).map(|_| queue.take("GET", "/v1/contacts")).collect();
        let s503 = Some(FaultKind::Status(503));
        assert_eq!(outcomes, [None, None, s503.clone(), s503, None]);
        assert!(queue.pending().is_empty());
    }

    #[test]
    fn only_matching_requests_count() {
        let queue = FaultQueue::default();
        queue.push(Fault::new("get", "/v1/contacts").hang());
        assert_eq!(queue.take("POST", "/v1/contacts"), None);
        assert_eq!(queue.take("GET", "/v1/companies"), None);
        assert_eq!(
            queue.take("GET", "/v1/contacts/c_000001"),
            Some(FaultKind::Hang)
        );
    }

    #[test]
    fn the_earliest_due_fault_fires_and_the_others_wait() {
        let queue = FaultQueue::default();
        queue.push(Fault::new("*", "/v1").status(500));
        queue.push(Fault::new("*", "/v1").close());
        assert_eq!(queue.take("GET", "/v1/x"), Some(FaultKind::Status(500)));
        assert_eq!(queue.take("GET", "/v1/x"), Some(FaultKind::Close));
        assert_eq!(queue.take("GET", "/v1/x"), None);
    }
}
