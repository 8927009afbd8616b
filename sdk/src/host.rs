//! The seam between the SDK and the host's imports.
//!
//! On wasm32 every function calls its import. Elsewhere (unit tests, doc
//! tests, a connector's own native tests) the imports cannot run: calls go
//! to an installed [`testing::MockHost`](crate::testing::MockHost), or fail
//! with [`Error::Unsupported`](crate::Error::Unsupported).

#[cfg(target_arch = "wasm32")]
mod wasm {
    use crate::Result;
    use crate::http::{Request, Response};
    use crate::log::Level;

    pub(crate) fn http_send(request: Request) -> Result<Response> {
        use crate::bindings::http as wit;

        let parts = request.into_parts();
        let request = wit::Request {
            method: parts.method.into(),
            url: parts.url,
            headers: parts.headers,
            secret_headers: parts.secret_headers.into_iter().map(Into::into).collect(),
            body: parts.body,
            idempotency_key: parts.idempotency_key,
            timeout_ms: parts.timeout_ms,
        };
        match wit::send(&request) {
            Ok(response) => {
                let mut sdk = Response::new(response.status).for_request(parts.method, request.url);
                sdk.headers = response.headers;
                sdk.body = response.body;
                Ok(sdk)
            }
            Err(error) => Err(crate::http::http_error(parts.method, &request.url, error)),
        }
    }

    pub(crate) fn log(level: Level, message: &str) {
        crate::bindings::log::log(level.into(), message);
    }

    pub(crate) fn verify_hmac_sha256(
        secret: &str,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool> {
        crate::bindings::crypto::verify_hmac_sha256(secret, message, signature).map_err(Into::into)
    }

    pub(crate) fn sign_hmac_sha256(secret: &str, message: &[u8]) -> Result<Vec<u8>> {
        crate::bindings::crypto::sign_hmac_sha256(secret, message).map_err(Into::into)
    }

    pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
        crate::bindings::crypto::constant_time_eq(a, b)
    }

    pub(crate) fn verify_ed25519(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        crate::bindings::crypto::verify_ed25519(public_key, message, signature)
    }
}

#[cfg(target_arch = "wasm32")]
pub(crate) use wasm::{
    constant_time_eq, http_send, log, sign_hmac_sha256, verify_ed25519, verify_hmac_sha256,
};

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use crate::testing::{
    constant_time_eq, http_send, log, sign_hmac_sha256, verify_ed25519, verify_hmac_sha256,
};
