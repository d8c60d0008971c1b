//! Standard Webhooks signing of outgoing deliveries.
//!
//! Owns the destination signing secret ([`SigningSecret`], the `whsec_…`
//! form) and the `webhook-signature` header value ([`sign`]), as specified
//! by Standard Webhooks: `v1,` + base64 HMAC-SHA256 over
//! `"{msg_id}.{timestamp}.{body}"`, one entry per active secret.
//!
//! Invariants:
//! - A `SigningSecret` always holds 16..=64 key bytes decoded from a
//!   `whsec_` string, and its `Debug` output never reveals either form.
//! - Signature entries come out in the order the secrets are given, so
//!   during rotation the caller passes the new secret first.
//!
//! Deliberately not here: verification of incoming signatures, the
//! `webhook-id`/`webhook-timestamp` headers themselves, secret storage, and
//! serde (a secret should only leave through [`SigningSecret::expose`], on
//! purpose, never by serialising a struct that happens to contain it).

use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Prefix Standard Webhooks uses to mark a signing secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Key size `generate` produces, in bytes (what the reference libraries use).
pub const GENERATED_SECRET_BYTES: usize = 24;
/// Accepted decoded key sizes, in bytes: below 16 is too weak to sign with,
/// above 64 exceeds SHA-256's block and would just be hashed down.
pub const MIN_SECRET_BYTES: usize = 16;
pub const MAX_SECRET_BYTES: usize = 64;

/// Secrets minted elsewhere sometimes drop the `=` padding; accept both so a
/// user importing a secret from another gateway is not refused for it.
const LENIENT_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

type HmacSha256 = Hmac<Sha256>;

/// Why a secret string was rejected. Messages never echo the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("signing secret must start with `whsec_`")]
    MissingPrefix,
    #[error("signing secret after `whsec_` is not valid base64")]
    InvalidBase64,
    #[error("signing secret decodes to {len} bytes; it must be 16 to 64 bytes")]
    BadLength { len: usize },
}

/// A destination's signing key, with the `whsec_` string it came from.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret {
    key: Vec<u8>,
    encoded: String,
}

// === impl SigningSecret ===

impl SigningSecret {
    /// A fresh random secret from the thread-local CSPRNG.
    pub fn generate() -> Self {
        let mut key = vec![0u8; GENERATED_SECRET_BYTES];
        rand::thread_rng().fill_bytes(&mut key);
        let encoded = format!("{SECRET_PREFIX}{}", STANDARD.encode(&key));
        Self { key, encoded }
    }

    /// Parses a `whsec_<base64>` string.
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        let body = s
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::MissingPrefix)?;
        let key = LENIENT_STANDARD
            .decode(body)
            .map_err(|_| SecretError::InvalidBase64)?;
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
            return Err(SecretError::BadLength { len: key.len() });
        }
        Ok(Self {
            key,
            encoded: s.to_owned(),
        })
    }

    /// The `whsec_…` string, for showing to the destination's owner once
    /// (and for persisting). Everything else should hold the struct.
    pub fn expose(&self) -> &str {
        &self.encoded
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(whsec_***)")
    }
}

/// The `webhook-signature` header value for one delivery.
///
/// Returns `v1,<sig>` per secret, space separated, in the given order; an
/// empty `secrets` gives an empty string, which the caller should never
/// send.
pub fn sign(msg_id: &str, timestamp_s: i64, body: &[u8], secrets: &[&SigningSecret]) -> String {
    let timestamp = timestamp_s.to_string();
    // "v1," + 44 base64 chars + separator per secret.
    let mut header = String::with_capacity(secrets.len() * 48);
    for secret in secrets {
        let mut mac = HmacSha256::new_from_slice(&secret.key)
            .expect("invariant: HMAC accepts keys of any length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        if !header.is_empty() {
            header.push(' ');
        }
        header.push_str("v1,");
        STANDARD.encode_string(mac.finalize().into_bytes(), &mut header);
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const VECTOR_MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const VECTOR_TIMESTAMP_S: i64 = 1_614_265_330;
    const VECTOR_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const VECTOR_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn sign_matches_the_standard_webhooks_vector() {
        let secret = SigningSecret::parse(VECTOR_SECRET).unwrap();
        assert_eq!(
            sign(VECTOR_MSG_ID, VECTOR_TIMESTAMP_S, VECTOR_BODY, &[&secret]),
            VECTOR_SIGNATURE
        );
    }

    #[test]
    fn sign_lists_one_signature_per_secret_in_order() {
        let old = SigningSecret::parse(VECTOR_SECRET).unwrap();
        let new = SigningSecret::generate();
        let header = sign(
            VECTOR_MSG_ID,
            VECTOR_TIMESTAMP_S,
            VECTOR_BODY,
            &[&new, &old],
        );
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[0],
            sign(VECTOR_MSG_ID, VECTOR_TIMESTAMP_S, VECTOR_BODY, &[&new])
        );
        assert_eq!(parts[1], VECTOR_SIGNATURE);
        assert_eq!(
            sign(VECTOR_MSG_ID, VECTOR_TIMESTAMP_S, VECTOR_BODY, &[]),
            ""
        );
    }

    #[test]
    fn signature_covers_id_timestamp_and_body() {
        let secret = SigningSecret::parse(VECTOR_SECRET).unwrap();
        let base = sign(VECTOR_MSG_ID, VECTOR_TIMESTAMP_S, VECTOR_BODY, &[&secret]);
        assert_ne!(
            base,
            sign("msg_other", VECTOR_TIMESTAMP_S, VECTOR_BODY, &[&secret])
        );
        assert_ne!(
            base,
            sign(
                VECTOR_MSG_ID,
                VECTOR_TIMESTAMP_S + 1,
                VECTOR_BODY,
                &[&secret]
            )
        );
        assert_ne!(
            base,
            sign(VECTOR_MSG_ID, VECTOR_TIMESTAMP_S, b"{}", &[&secret])
        );
    }

    #[test]
    fn generated_secret_round_trips_through_parse() {
        let secret = SigningSecret::generate();
        assert!(secret.expose().starts_with("whsec_"));
        assert_eq!(secret.expose().len(), "whsec_".len() + 32);
        let parsed = SigningSecret::parse(secret.expose()).unwrap();
        assert_eq!(parsed, secret);
        assert_ne!(SigningSecret::generate(), secret);
    }

    #[test]
    fn parse_rejects_bad_secrets() {
        let cases: &[(&str, SecretError)] = &[
            (
                "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                SecretError::MissingPrefix,
            ),
            (
                "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                SecretError::MissingPrefix,
            ),
            ("whsec_not base64!", SecretError::InvalidBase64),
            ("whsec_", SecretError::BadLength { len: 0 }),
            // 15 bytes.
            (
                "whsec_AAAAAAAAAAAAAAAAAAAA",
                SecretError::BadLength { len: 15 },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                SigningSecret::parse(input).as_ref(),
                Err(expected),
                "{input:?}"
            );
        }
        let too_long = format!("whsec_{}", STANDARD.encode([7u8; 65]));
        assert_eq!(
            SigningSecret::parse(&too_long),
            Err(SecretError::BadLength { len: 65 })
        );
        let longest = format!("whsec_{}", STANDARD.encode([7u8; 64]));
        assert!(SigningSecret::parse(&longest).is_ok());
    }

    #[test]
    fn parse_accepts_unpadded_base64() {
        let padded = format!("whsec_{}", STANDARD.encode([1u8; 16]));
        assert!(padded.ends_with("=="));
        let unpadded = padded.trim_end_matches('=');
        let a = SigningSecret::parse(&padded).unwrap();
        let b = SigningSecret::parse(unpadded).unwrap();
        assert_eq!(a.key, b.key);
        // The original spelling is what gets exposed back.
        assert_eq!(b.expose(), unpadded);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = SigningSecret::parse(VECTOR_SECRET).unwrap();
        let shown = format!("{secret:?} {:?}", [&secret]);
        assert!(
            !shown.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            "{shown}"
        );
        assert!(!shown.contains("MfKQ"), "{shown}");
        assert!(shown.contains("SigningSecret"));
    }
}
