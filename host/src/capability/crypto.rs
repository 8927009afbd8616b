//! Cryptography over secret values, so connectors never hold them, and
//! signature checks with public keys, so connectors never hand-roll them.

use ed25519_dalek::{Signature, VerifyingKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The HMAC key a secret stands for. Standard Webhooks writes signing
/// secrets as `whsec_<base64>`, the key being the decoded bytes; any other
/// secret is used as it is.
pub fn hmac_key(secret: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    use base64::Engine as _;
    secret
        .strip_prefix(b"whsec_")
        .and_then(|encoded| {
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
        })
        .filter(|key| !key.is_empty())
        .map_or(std::borrow::Cow::Borrowed(secret), std::borrow::Cow::Owned)
}

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

/// Whether `signature` is an Ed25519 signature of `message` under
/// `public_key` (RFC 8032), checked strictly: non-canonical encodings and
/// weak (small-order) keys never verify, so a signature cannot be bent to
/// fit another message or key. Input straight from a guest: a key or
/// signature of the wrong length, or a key that is no curve point, is
/// simply not a match.
pub fn verify_ed25519(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Ok(public_key) = <&[u8; 32]>::try_from(public_key) else {
        return false;
    };
    let Ok(public_key) = VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    let Ok(signature) = Signature::from_slice(signature) else {
        return false;
    };
    public_key.verify_strict(message, &signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn standard_webhooks_known_answer() {
        use base64::Engine as _;
        let key = hmac_key(b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let signed = b"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{\"test\": 2432232314}";
        let expected = base64::engine::general_purpose::STANDARD
            .decode("g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
            .unwrap();
        assert!(hmac_sha256_matches(&key, signed, &expected));
        assert!(!hmac_sha256_matches(
            &key,
            &signed[..signed.len() - 1],
            &expected
        ));
        assert!(
            !hmac_sha256_matches(b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", signed, &expected),
            "the prefixed text is not the key"
        );
    }

    /// The example of GitHub's documentation (`X-Hub-Signature-256`).
    #[test]
    fn github_known_answer() {
        let mac = hmac_sha256(&hmac_key(b"It's a Secret to Everybody"), b"Hello, World!");
        assert_eq!(
            hex::encode(mac),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn empty_and_overlong_signatures_never_match() {
        let mac = hmac_sha256(b"key", b"message");
        assert!(!hmac_sha256_matches(b"key", b"message", &[]));
        let mut longer = mac.clone();
        longer.push(0);
        assert!(!hmac_sha256_matches(b"key", b"message", &longer));
        assert!(!hmac_sha256_matches(b"key", b"message", &mac[..16]));
    }

    /// RFC 8032, section 7.1: (secret key, public key, message, signature).
    const RFC8032_ED25519: [(&str, &str, &str, &str); 3] = [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
        (
            "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        ),
    ];

    fn unhex(text: &str) -> Vec<u8> {
        hex::decode(text).unwrap()
    }

    #[test]
    fn rfc8032_signatures_verify() {
        for (secret, public, message, signature) in RFC8032_ED25519 {
            let (public, message, signature) = (unhex(public), unhex(message), unhex(signature));
            assert!(verify_ed25519(&public, &message, &signature), "{message:?}");

            // The vectors are the RFC's: the secret key yields this public
            // key and (Ed25519 being deterministic) this signature.
            let signing = ed25519_dalek::SigningKey::from_bytes(&unhex(secret).try_into().unwrap());
            assert_eq!(signing.verifying_key().as_bytes().as_slice(), public);
            use ed25519_dalek::Signer as _;
            assert_eq!(signing.sign(&message).to_bytes().as_slice(), signature);
        }
    }

    #[test]
    fn ed25519_refuses_another_message_key_or_signature() {
        let [(_, public, message, signature), (_, other_public, ..), ..] = RFC8032_ED25519;
        let (public, message, signature) = (unhex(public), unhex(message), unhex(signature));
        assert!(!verify_ed25519(&public, b"x", &signature));
        assert!(!verify_ed25519(&unhex(other_public), &message, &signature));
        for byte in [0, 31, 32, 63] {
            let mut flipped = signature.clone();
            flipped[byte] ^= 1;
            assert!(!verify_ed25519(&public, &message, &flipped), "byte {byte}");
        }
    }

    #[test]
    fn ed25519_inputs_of_the_wrong_shape_are_false_never_a_panic() {
        let (_, public, message, signature) = RFC8032_ED25519[0];
        let (public, message, signature) = (unhex(public), unhex(message), unhex(signature));
        assert!(!verify_ed25519(&public[..31], &message, &signature));
        assert!(!verify_ed25519(
            &[public.clone(), vec![0]].concat(),
            &message,
            &signature
        ));
        assert!(!verify_ed25519(&public, &message, &signature[..63]));
        assert!(!verify_ed25519(
            &public,
            &message,
            &[signature.clone(), vec![0]].concat()
        ));
        assert!(!verify_ed25519(&[], &[], &[]));
        // Not a point on the curve (y = 2 has no x).
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        assert!(!verify_ed25519(&not_a_point, &message, &signature));
        // A small-order key: (0, 1), the identity. A signature (R = identity,
        // S = 0) "verifies" under it for any message unless checked strictly.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut forged = [0u8; 64];
        forged[0] = 1;
        assert!(!verify_ed25519(&identity, b"any message", &forged));
        // S not reduced modulo the group order: rejected, not wrapped around.
        let mut unreduced = signature.clone();
        unreduced[63] |= 0xf0;
        assert!(!verify_ed25519(&public, &message, &unreduced));
    }

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
