//! Secret values a tenant's settings hold, sealed: what a SaaS settings
//! page collects from its customer (an API key) goes to Weir through the
//! admin API and is kept only encrypted, under the key `[secrets] key` of
//! `weir.toml` names (an environment variable or a file, never the store).
//!
//! ChaCha20-Poly1305 with a random nonce per value; the associated data is
//! the value's place (`tenant/connection/secret`), so a sealed value copied
//! into another tenant's settings does not open.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use super::{SecretSource, SecretValue, Secrets};

/// What a sealed value starts with: the format, for later ones.
const PREFIX: &str = "v1:";
const NONCE_LEN: usize = 12;

/// The key values are sealed with: 32 bytes, given as base64.
pub struct SealingKey(Key);

/// Reads the sealing keys `[secrets] key` names, newest first: values are
/// sealed with the first and opened with whichever fits, so a new key can
/// be put first while values sealed with the old one still open.
pub fn sealing_keys(sources: &[SecretSource]) -> Result<Vec<SealingKey>, String> {
    let secrets = Secrets::resolve([("secrets.key", sources)])
        .map_err(|(_, why)| format!("the sealing key (`[secrets] key`): {why}"))?;
    secrets
        .all("secrets.key")
        .iter()
        .map(|text| {
            SealingKey::from_base64(text.expose())
                .map_err(|why| format!("the sealing key (`[secrets] key`) {why}"))
        })
        .collect()
}

/// Opens a value sealed for `place` with the first of `keys` that fits.
pub fn open_sealed(keys: &[SealingKey], place: &str, sealed: &str) -> Result<SecretValue, String> {
    let mut last = Err("there is no `[secrets] key`".to_string());
    for key in keys {
        last = key.open(place, sealed);
        if last.is_ok() {
            break;
        }
    }
    last
}

impl SealingKey {
    /// Reads a key from its base64 text (as `head -c 32 /dev/urandom |
    /// base64` prints it).
    pub fn from_base64(text: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(text).map_err(|_| "is not base64 text".to_string())?;
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| "is not base64".to_string())?;
        let key: [u8; 32] = bytes.try_into().map_err(|bytes: Vec<u8>| {
            format!(
                "holds {} bytes, not 32 (make one with `head -c 32 /dev/urandom | base64`)",
                bytes.len()
            )
        })?;
        Ok(Self(key.into()))
    }

    /// Seals `value` for its `place`.
    pub fn seal(&self, place: &str, value: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the operating system provides randomness");
        let sealed = ChaCha20Poly1305::new(&self.0)
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: value,
                    aad: place.as_bytes(),
                },
            )
            .expect("sealing a value in memory cannot fail");
        format!(
            "{PREFIX}{}",
            STANDARD.encode([&nonce[..], &sealed].concat())
        )
    }

    /// Opens a value sealed for `place`.
    pub fn open(&self, place: &str, sealed: &str) -> Result<SecretValue, String> {
        let bytes = sealed
            .strip_prefix(PREFIX)
            .and_then(|b64| STANDARD.decode(b64).ok())
            .filter(|bytes| bytes.len() > NONCE_LEN)
            .ok_or("is not a value Weir sealed")?;
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let value = ChaCha20Poly1305::new(&self.0)
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: place.as_bytes(),
                },
            )
            .map_err(|_| {
                "does not open with any `[secrets] key`: it was sealed under another key, or for another tenant, connection or secret".to_string()
            })?;
        SecretValue::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SealingKey {
        SealingKey::from_base64(STANDARD.encode([byte; 32]).as_bytes()).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_place() {
        let sealed = key(1).seal("t1/acme/api_key", b"sk-live-123");
        assert!(!sealed.contains("sk-live-123"));
        assert_ne!(
            sealed,
            key(1).seal("t1/acme/api_key", b"sk-live-123"),
            "a nonce each"
        );
        let opened = key(1).open("t1/acme/api_key", &sealed).unwrap();
        assert_eq!(opened.expose(), b"sk-live-123");

        assert!(
            key(2).open("t1/acme/api_key", &sealed).is_err(),
            "another key"
        );
        assert!(
            key(1).open("t2/acme/api_key", &sealed).is_err(),
            "another tenant"
        );
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(
            key(1).open("t1/acme/api_key", &tampered).is_err(),
            "altered"
        );
        assert!(key(1).open("t1/acme/api_key", "sk-live-123").is_err());
    }

    #[test]
    fn a_key_must_be_32_bytes_of_base64() {
        assert!(SealingKey::from_base64(b"not base64!").is_err());
        let short = SealingKey::from_base64(STANDARD.encode([0; 16]).as_bytes());
        assert!(short.err().unwrap().contains("16 bytes, not 32"));
        assert!(
            SealingKey::from_base64(format!("{}\n", STANDARD.encode([0; 32])).as_bytes()).is_ok()
        );
    }
}
