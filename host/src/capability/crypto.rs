//! Cryptography over secret values, so connectors never hold them.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// Whether `signature` is the HMAC-SHA256 of `message` under `key`, compared
/// in constant time; a signature of the wrong length never matches.
pub fn hmac_sha256_matches(key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(message);
    mac.verify_slice(signature).is_ok()
}

/// Constant-time equality for equal lengths; different lengths are unequal.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(hmac_sha256_matches(
            b"Jefe",
            b"what do ya want for nothing?",
            &mac
        ));
        assert!(!hmac_sha256_matches(
            b"Jefe",
            b"what do ya want for nothing?",
            &mac[..31]
        ));
        assert!(!hmac_sha256_matches(
            b"jefe",
            b"what do ya want for nothing?",
            &mac
        ));
    }

    #[test]
    fn constant_time_eq_checks_lengths() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
