//! Standard Webhooks (and Svix, which it grew out of):
//! `webhook-signature: v1,<base64>[ v1,<base64>...]`, HMAC-SHA256 over
//! `"{webhook-id}.{webhook-timestamp}.{raw body}"`, keyed with the base64
//! decoding of the secret after an optional `whsec_` prefix.
//!
//! Invariants:
//! - One header family per request: the `webhook-*` headers if any of them
//!   is present, else the `svix-*` ones. Never a mix, so which values were
//!   signed is never ambiguous.
//! - Signature entries are space separated; entries of other versions
//!   (`v1a,` asymmetric signatures, future ones) are ignored, and any `v1`
//!   matching any secret passes.
//! - The id and timestamp are signed exactly as sent; the timestamp must be
//!   within tolerance in both directions, checked after the signature.
//! - Event type is body JSON `type`; delivery id is the `webhook-id`.
//!
//! Deliberately does not verify `v1a` (ed25519) signatures.

use std::borrow::Cow;

use base64::Engine as _;
use http::{HeaderMap, HeaderName};

use super::common::{self, KeyRing, Malformed, BASE64};
use super::{
    FieldProblem, HmacAlgorithm, Provider, Unverified, VerificationConfig, Verified, Verifier,
    VerifyConfigError, VerifyError,
};

/// Optional prefix of Standard Webhooks / Svix secrets.
pub const SECRET_PREFIX: &str = "whsec_";

/// Names of the three headers of one family (canonical spelling + lookup key).
struct Family {
    id: (&'static str, HeaderName),
    timestamp: (&'static str, HeaderName),
    signature: (&'static str, HeaderName),
}

static WEBHOOK: Family = Family {
    id: ("webhook-id", HeaderName::from_static("webhook-id")),
    timestamp: (
        "webhook-timestamp",
        HeaderName::from_static("webhook-timestamp"),
    ),
    signature: (
        "webhook-signature",
        HeaderName::from_static("webhook-signature"),
    ),
};

static SVIX: Family = Family {
    id: ("svix-id", HeaderName::from_static("svix-id")),
    timestamp: ("svix-timestamp", HeaderName::from_static("svix-timestamp")),
    signature: ("svix-signature", HeaderName::from_static("svix-signature")),
};

pub(super) struct StandardVerifier {
    keys: KeyRing,
    tolerance_s: u64,
}

/// Decodes a secret: optional `whsec_` prefix, then standard base64
/// (padding optional) of at least one byte.
pub fn decode_secret(secret: &str) -> Result<Vec<u8>, Malformed> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    let key = BASE64
        .decode(encoded)
        .map_err(|_| Malformed("secret is not base64"))?;
    if key.is_empty() {
        return Err(Malformed("secret is empty"));
    }
    Ok(key)
}

/// Parses a `webhook-signature` value into the decoded `v1` signatures.
///
/// Entries are separated by spaces (runs of whitespace tolerated); each is
/// `<version>,<base64>`. Entries of other versions and `v1` entries that are
/// not base64 are skipped; at least one usable `v1` entry is required.
pub fn parse_signatures(value: &[u8]) -> Result<Vec<Vec<u8>>, Malformed> {
    let mut saw_v1 = false;
    let mut signatures = Vec::new();
    for entry in value.split(u8::is_ascii_whitespace) {
        let mut parts = entry.splitn(2, |b| *b == b',');
        let version = parts.next().unwrap_or_default();
        let Some(encoded) = parts.next() else {
            continue;
        };
        if version == b"v1" {
            saw_v1 = true;
            // An empty signature is as unusable as undecodable text.
            if let Ok(sig) = BASE64.decode(encoded) {
                if !sig.is_empty() {
                    signatures.push(sig);
                }
            }
        }
    }
    if !saw_v1 {
        return Err(Malformed("no v1 signature"));
    }
    if signatures.is_empty() {
        return Err(Malformed("v1 signature is not base64"));
    }
    Ok(signatures)
}

/// Keys for [`StandardVerifier`]: every secret decoded once, at build time.
pub(super) fn key_ring(cfg: &VerificationConfig) -> Result<KeyRing, VerifyConfigError> {
    let keys = cfg
        .all_secrets()
        .map(decode_secret)
        .collect::<Result<Vec<_>, _>>()
        // validate() already refused undecodable secrets; reported anyway.
        .map_err(|m| VerifyConfigError::Invalid(vec![FieldProblem::new("secret", m.0)]))?;
    KeyRing::new(HmacAlgorithm::Sha256, keys.iter().map(Vec::as_slice))
}

fn family(headers: &HeaderMap) -> &'static Family {
    let present = |f: &Family| {
        [&f.id.1, &f.timestamp.1, &f.signature.1]
            .into_iter()
            .any(|name| headers.contains_key(name))
    };
    if !present(&WEBHOOK) && present(&SVIX) {
        &SVIX
    } else {
        &WEBHOOK
    }
}

fn required<'a>(
    headers: &'a HeaderMap,
    (display, name): &(&'static str, HeaderName),
) -> Result<&'a [u8], VerifyError> {
    common::header_bytes(headers, name).ok_or(VerifyError::missing(Cow::Borrowed(*display)))
}

// === impl StandardVerifier ===

impl StandardVerifier {
    pub(super) fn new(keys: KeyRing, tolerance_s: u64) -> Self {
        Self { keys, tolerance_s }
    }
}

impl Verifier for StandardVerifier {
    fn provider(&self) -> Provider {
        Provider::StandardWebhooks
    }

    fn verify(&self, req: &Unverified<'_>) -> Result<Verified, VerifyError> {
        let family = family(req.headers);
        // Signature first: when everything is missing, that is the most
        // useful thing to name.
        let raw_signature = required(req.headers, &family.signature)?;
        let id = required(req.headers, &family.id)?;
        let raw_timestamp = required(req.headers, &family.timestamp)?.trim_ascii();
        let timestamp = common::parse_unix_seconds(raw_timestamp)
            .ok_or_else(|| Malformed("timestamp is not unix seconds").at(family.timestamp.0))?;
        let signatures = parse_signatures(raw_signature).map_err(|m| m.at(family.signature.0))?;
        if !self
            .keys
            .matches_any(&[id, b".", raw_timestamp, b".", req.body], &signatures)
        {
            return Err(VerifyError::SignatureMismatch);
        }
        common::check_tolerance(timestamp, req.now_unix_s, self.tolerance_s)?;
        let [event_type] = common::top_level_strings(req.body, ["type"]);
        let delivery_id = std::str::from_utf8(id).ok().and_then(common::index_key);
        Ok(Verified::new(
            Provider::StandardWebhooks,
            event_type,
            delivery_id,
        ))
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;

    use super::*;
    use crate::verify::common::testing::{config, headers, hmac_sha256, verify};

    // Published test vector (Standard Webhooks spec / Svix libraries).
    const VECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const VECTOR_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const VECTOR_TS: i64 = 1_614_265_330;
    const VECTOR_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const VECTOR_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    const SECRET: &str = "whsec_c2VjcmV0LWtleS1ieXRlcw==";
    const ID: &str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";
    const NOW: i64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"type":"invoice.paid","data":{}}"#;

    fn sig(secret: &str, id: &str, ts: i64, body: &[u8]) -> String {
        let key = STANDARD
            .decode(secret.trim_start_matches("whsec_"))
            .unwrap();
        let mut msg = format!("{id}.{ts}.").into_bytes();
        msg.extend_from_slice(body);
        format!("v1,{}", STANDARD.encode(hmac_sha256(&key, &msg)))
    }

    fn std_cfg() -> VerificationConfig {
        config(Provider::StandardWebhooks, &[SECRET])
    }

    fn check_at(
        cfg: &VerificationConfig,
        signature: &str,
        ts: i64,
        body: &[u8],
    ) -> Result<Verified, VerifyError> {
        let map = headers(&[
            ("webhook-id", ID),
            ("webhook-timestamp", &ts.to_string()),
            ("webhook-signature", signature),
        ]);
        verify(cfg, &map, body, NOW)
    }

    #[test]
    fn published_vector_passes() {
        let cfg = config(Provider::StandardWebhooks, &[VECTOR_SECRET]);
        let map = headers(&[
            ("webhook-id", VECTOR_ID),
            ("webhook-timestamp", "1614265330"),
            ("webhook-signature", VECTOR_SIG),
        ]);
        let verified = verify(&cfg, &map, VECTOR_BODY, VECTOR_TS).unwrap();
        assert_eq!(verified.delivery_id(), Some(VECTOR_ID));
        assert_eq!(verified.event_type(), None);
    }

    #[test]
    fn published_vector_passes_with_svix_headers_and_unprefixed_secret() {
        let cfg = config(
            Provider::StandardWebhooks,
            &[VECTOR_SECRET.trim_start_matches("whsec_")],
        );
        let map = headers(&[
            ("svix-id", VECTOR_ID),
            ("svix-timestamp", "1614265330"),
            ("svix-signature", VECTOR_SIG),
        ]);
        let verified = verify(&cfg, &map, VECTOR_BODY, VECTOR_TS).unwrap();
        assert_eq!(verified.delivery_id(), Some(VECTOR_ID));
    }

    #[test]
    fn our_signer_reproduces_the_published_vector() {
        assert_eq!(
            sig(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY),
            VECTOR_SIG
        );
    }

    #[test]
    fn valid_signature_passes_with_type_and_id() {
        let verified = check_at(&std_cfg(), &sig(SECRET, ID, NOW, BODY), NOW, BODY).unwrap();
        assert_eq!(verified.provider(), Provider::StandardWebhooks);
        assert_eq!(verified.event_type(), Some("invoice.paid"));
        assert_eq!(verified.delivery_id(), Some(ID));
    }

    #[test]
    fn wrong_secret_is_signature_mismatch() {
        let other = "whsec_b3RoZXIta2V5";
        assert_eq!(
            check_at(&std_cfg(), &sig(other, ID, NOW, BODY), NOW, BODY).unwrap_err(),
            VerifyError::SignatureMismatch
        );
    }

    #[test]
    fn secret_string_bytes_are_not_the_key() {
        // Keying with the literal secret text (Stripe style) must not pass.
        let mut msg = format!("{ID}.{NOW}.").into_bytes();
        msg.extend_from_slice(BODY);
        let literal = format!(
            "v1,{}",
            STANDARD.encode(hmac_sha256(SECRET.as_bytes(), &msg))
        );
        assert_eq!(
            check_at(&std_cfg(), &literal, NOW, BODY).unwrap_err(),
            VerifyError::SignatureMismatch
        );
    }

    #[test]
    fn tampered_body_is_signature_mismatch() {
        let signature = sig(SECRET, ID, NOW, BODY);
        assert_eq!(
            check_at(&std_cfg(), &signature, NOW, b"{\"type\":\"x\"}").unwrap_err(),
            VerifyError::SignatureMismatch
        );
    }

    #[test]
    fn tampered_id_is_signature_mismatch() {
        let map = headers(&[
            ("webhook-id", "msg_other"),
            ("webhook-timestamp", &NOW.to_string()),
            ("webhook-signature", &sig(SECRET, ID, NOW, BODY)),
        ]);
        assert_eq!(
            verify(&std_cfg(), &map, BODY, NOW).unwrap_err(),
            VerifyError::SignatureMismatch
        );
    }

    #[test]
    fn stale_timestamp_is_out_of_tolerance() {
        let ts = NOW - 301;
        assert_eq!(
            check_at(&std_cfg(), &sig(SECRET, ID, ts, BODY), ts, BODY).unwrap_err(),
            VerifyError::TimestampOutOfTolerance { age_s: 301 }
        );
    }

    #[test]
    fn future_timestamp_is_out_of_tolerance() {
        let ts = NOW + 301;
        assert_eq!(
            check_at(&std_cfg(), &sig(SECRET, ID, ts, BODY), ts, BODY).unwrap_err(),
            VerifyError::TimestampOutOfTolerance { age_s: -301 }
        );
        let ts = NOW + 300;
        assert!(check_at(&std_cfg(), &sig(SECRET, ID, ts, BODY), ts, BODY).is_ok());
    }

    #[test]
    fn any_v1_among_several_passes_and_other_versions_are_ignored() {
        let good = sig(SECRET, ID, NOW, BODY);
        let bad = sig("whsec_b3RoZXI=", ID, NOW, BODY);
        let good_b64 = good.trim_start_matches("v1,");
        let value = format!("v1a,{good_b64} {bad}  v1,%%%% v2,{good_b64} {good}");
        assert!(check_at(&std_cfg(), &value, NOW, BODY).is_ok());
    }

    #[test]
    fn only_other_versions_is_malformed() {
        let good = sig(SECRET, ID, NOW, BODY);
        let value = format!("v1a,{}", good.trim_start_matches("v1,"));
        assert_eq!(
            check_at(&std_cfg(), &value, NOW, BODY).unwrap_err(),
            VerifyError::MalformedSignatureHeader {
                header: "webhook-signature".into(),
                reason: "no v1 signature",
            }
        );
    }

    #[test]
    fn rotated_second_secret_passes() {
        let new = "whsec_bmV3LWtleQ==";
        let cfg = config(Provider::StandardWebhooks, &[SECRET, new]);
        assert!(check_at(&cfg, &sig(new, ID, NOW, BODY), NOW, BODY).is_ok());
    }

    #[test]
    fn missing_headers_are_named() {
        let signature = sig(SECRET, ID, NOW, BODY);
        let ts = NOW.to_string();
        let cases = [
            (vec![], "webhook-signature"),
            (
                vec![("webhook-id", ID), ("webhook-timestamp", ts.as_str())],
                "webhook-signature",
            ),
            (
                vec![
                    ("webhook-signature", signature.as_str()),
                    ("webhook-timestamp", ts.as_str()),
                ],
                "webhook-id",
            ),
            (
                vec![
                    ("webhook-signature", signature.as_str()),
                    ("webhook-id", ID),
                ],
                "webhook-timestamp",
            ),
            (
                vec![("svix-signature", signature.as_str()), ("svix-id", ID)],
                "svix-timestamp",
            ),
        ];
        for (pairs, missing) in cases {
            assert_eq!(
                verify(&std_cfg(), &headers(&pairs), BODY, NOW).unwrap_err(),
                VerifyError::MissingSignatureHeader {
                    header: missing.into()
                },
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn families_are_not_mixed() {
        // webhook-* present, so svix-signature is not consulted.
        let map = headers(&[
            ("webhook-id", ID),
            ("webhook-timestamp", &NOW.to_string()),
            ("svix-signature", &sig(SECRET, ID, NOW, BODY)),
        ]);
        assert_eq!(
            verify(&std_cfg(), &map, BODY, NOW).unwrap_err(),
            VerifyError::MissingSignatureHeader {
                header: "webhook-signature".into()
            }
        );
    }

    #[test]
    fn malformed_headers_are_malformed() {
        let good = sig(SECRET, ID, NOW, BODY);
        for (ts, value) in [
            ("1.5", good.as_str()),
            ("", good.as_str()),
            ("-1", good.as_str()),
            ("now", good.as_str()),
            ("1700000000", ""),
            ("1700000000", "v1"),
            ("1700000000", "v1,"),
            ("1700000000", "v1,***"),
            ("1700000000", ",,,"),
        ] {
            let map = headers(&[
                ("webhook-id", ID),
                ("webhook-timestamp", ts),
                ("webhook-signature", value),
            ]);
            let err = verify(&std_cfg(), &map, BODY, NOW).unwrap_err();
            assert_eq!(err.reason(), "malformed_signature_header", "{ts} {value}");
        }
    }

    #[test]
    fn non_json_body_passes_without_type() {
        let body = b"plain text";
        let verified = check_at(&std_cfg(), &sig(SECRET, ID, NOW, body), NOW, body).unwrap();
        assert_eq!(verified.event_type(), None);
        assert_eq!(verified.delivery_id(), Some(ID));
    }

    #[test]
    fn decode_secret_strips_prefix_and_needs_a_byte() {
        assert_eq!(decode_secret("whsec_aw==").unwrap(), b"k");
        assert_eq!(decode_secret("aw").unwrap(), b"k");
        assert!(decode_secret("whsec_").is_err());
        assert!(decode_secret("").is_err());
        assert!(decode_secret("whsec_!!").is_err());
    }

    #[test]
    fn parse_signatures_keeps_only_decodable_v1() {
        assert_eq!(
            parse_signatures(b"v1,aw== v1a,aw== v1,!! \tv1,aw").unwrap(),
            [b"k".to_vec(), b"k".to_vec()]
        );
    }
}
