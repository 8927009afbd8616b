//! Cryptography with the connection's secrets, done by the host so that
//! connectors never hold secret values nor hand-roll comparisons.
//!
//! [`webhook::StandardWebhooks`](crate::webhook::StandardWebhooks) and
//! [`webhook::HubSignature`](crate::webhook::HubSignature) cover the common
//! webhook schemes; use these functions for others.

use crate::Result;

/// Checks an HMAC-SHA256 `signature` of `message` against every active value
/// of secret `secret` (several during a rotation), in constant time. Returns
/// whether one matched.
///
/// # Errors
///
/// [`Error::Denied`](crate::Error::Denied) when the connection does not
/// define the secret.
///
/// # Example
///
/// ```no_run
/// let signature = [0u8; 32]; // decoded from the partner's header
/// let genuine = weir_sdk::crypto::verify_hmac_sha256("webhook_secret", b"payload", &signature)?;
/// # let _ = genuine;
/// # Ok::<(), weir_sdk::Error>(())
/// ```
pub fn verify_hmac_sha256(secret: &str, message: &[u8], signature: &[u8]) -> Result<bool> {
    crate::host::verify_hmac_sha256(secret, message, signature)
}

/// Signs `message` with HMAC-SHA256 under the newest value of secret
/// `secret`, for partners that want signed requests.
///
/// # Errors
///
/// [`Error::Denied`](crate::Error::Denied) when the connection does not
/// define the secret.
///
/// # Example
///
/// ```no_run
/// let signature = weir_sdk::crypto::sign_hmac_sha256("signing_key", b"GET /v1/contacts")?;
/// assert_eq!(signature.len(), 32);
/// # Ok::<(), weir_sdk::Error>(())
/// ```
pub fn sign_hmac_sha256(secret: &str, message: &[u8]) -> Result<Vec<u8>> {
    crate::host::sign_hmac_sha256(secret, message)
}

/// Compares two byte strings in constant time (for equal lengths).
///
/// # Example
///
/// ```
/// assert!(weir_sdk::crypto::constant_time_eq(b"token", b"token"));
/// assert!(!weir_sdk::crypto::constant_time_eq(b"token", b"tokeN"));
/// ```
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    crate::host::constant_time_eq(a, b)
}
