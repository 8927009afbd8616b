//! `Idempotency-Key` handling: a retried write replays the first response.
//!
//! Like Stripe, only successful (2xx) responses are remembered, so a request
//! refused for validation can be fixed and retried under the same key.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::Value;

/// What identifies "the same request" under one key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fingerprint {
    pub(crate) method: String,
    pub(crate) path: String,
    /// The parsed body, so formatting differences don't count as changes.
    pub(crate) body: Value,
}

/// A response stored for replay.
#[derive(Debug, Clone)]
pub(crate) struct StoredResponse {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
}

/// What to do with a keyed request.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// First time this key is seen: run the request.
    Fresh,
    /// Same key, same request: send this again.
    Replay(StoredResponse),
    /// Same key, different request.
    Conflict,
}

/// Responses by idempotency key.
#[derive(Debug, Default)]
pub(crate) struct IdempotencyBook {
    entries: HashMap<String, (Fingerprint, StoredResponse)>,
}

impl IdempotencyBook {
    /// Decides how to treat a request carrying `key`.
    pub(crate) fn lookup(&self, key: &str, request: &Fingerprint) -> Lookup {
        match self.entries.get(key) {
            None => Lookup::Fresh,
            Some((seen, response)) if seen == request => Lookup::Replay(response.clone()),
            Some(_) => Lookup::Conflict,
        }
    }

    /// Remembers a successful response under `key`.
    pub(crate) fn remember(&mut self, key: String, request: Fingerprint, response: StoredResponse) {
        if (200..300).contains(&response.status) {
            self.entries.insert(key, (request, response));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(body: Value) -> Fingerprint {
        Fingerprint {
            method: "POST".into(),
            path: "/v1/contacts".into(),
            body,
        }
    }

    #[test]
    fn same_request_replays_and_different_request_conflicts() {
        let mut book = IdempotencyBook::default();
        let first = request(json!({"email": "a@b", "score": 1}));
        assert!(matches!(book.lookup("k", &first), Lookup::Fresh));
        book.remember(
            "k".into(),
            first,
            StoredResponse {
                status: 201,
                body: Bytes::from_static(b"{}"),
            },
        );
        let reordered = request(json!({"score": 1, "email": "a@b"}));
        assert!(matches!(book.lookup("k", &reordered), Lookup::Replay(r) if r.status == 201));
        assert!(matches!(
            book.lookup("k", &request(json!({}))),
            Lookup::Conflict
        ));
    }

    #[test]
    fn failures_are_not_remembered() {
        let mut book = IdempotencyBook::default();
        let response = StoredResponse {
            status: 422,
            body: Bytes::new(),
        };
        book.remember("k".into(), request(json!({})), response);
        assert!(matches!(
            book.lookup("k", &request(json!({}))),
            Lookup::Fresh
        ));
    }
}
