//! Cryptography done by the host: with the connection's secrets, so that
//! connectors never hold secret values, and with public keys, so that
//! connectors never hand-roll signature checks or comparisons.
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

/// Checks an Ed25519 (RFC 8032) `signature` of `message` under `public_key`,
/// for partners that sign with a key pair: Standard Webhooks `v1a`
/// signatures, Discord-style interaction endpoints
/// (`x-signature-ed25519` over timestamp + body).
///
/// `public_key` is the 32 raw bytes of the key and `signature` the 64 raw
/// bytes of the signature: decode hex or base64 first. A public key is not a
/// secret; take it from the connection's config. Verification is strict
/// (non-canonical encodings and weak keys never verify); a key or signature
/// of the wrong length, or a key that is not a valid curve point, gives
/// `false`.
///
/// Needs a host that speaks `weir:connector@0.1.1` or later. In native
/// tests it runs the same check locally, no [`MockHost`](crate::testing::MockHost)
/// needed.
///
/// # Example
///
/// ```
/// # fn hex(text: &str) -> Vec<u8> {
/// #     (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
/// # }
/// // RFC 8032, section 7.1, test 2.
/// let public_key = hex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
/// let signature = hex(
///     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
///      085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
/// );
/// assert!(weir_sdk::crypto::verify_ed25519(&public_key, &[0x72], &signature));
/// assert!(!weir_sdk::crypto::verify_ed25519(&public_key, b"forged", &signature));
/// assert!(!weir_sdk::crypto::verify_ed25519(b"too short", &[0x72], &signature));
/// ```
pub fn verify_ed25519(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    crate::host::verify_ed25519(public_key, message, signature)
}
