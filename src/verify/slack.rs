//! Slack: `X-Slack-Signature: v0=<hex>`, HMAC-SHA256 keyed with the signing
//! secret as-is over `"v0:{X-Slack-Request-Timestamp}:{raw body}"`.
//!
//! Invariants: the timestamp is signed exactly as sent and must be within
//! tolerance in both directions, checked after the signature. Event type is
//! JSON `event.type` when present (Events API callbacks), else JSON `type`
//! (`url_verification`, `event_callback` without an inner type); delivery
//! id is JSON `event_id`.
//!
//! Deliberately does not answer `url_verification` challenges (that is the
//! ingest handler's business) nor parse form-encoded bodies (slash commands,
//! interactivity): those verify fine and simply yield no type or id.

use http::HeaderName;

use super::common::{self, KeyRing, Malformed};
use super::{Provider, Unverified, Verified, Verifier, VerifyError};

pub const SIGNATURE_HEADER: &str = "X-Slack-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Slack-Request-Timestamp";
const SIGNATURE: HeaderName = HeaderName::from_static("x-slack-signature");
const TIMESTAMP: HeaderName = HeaderName::from_static("x-slack-request-timestamp");

pub(super) struct SlackVerifier {
    keys: KeyRing,
    tolerance_s: u64,
}

/// Parses an `X-Slack-Signature` value into the raw MAC bytes.
pub fn parse_signature(value: &[u8]) -> Result<Vec<u8>, Malformed> {
    let hex_sig = value
        .trim_ascii()
        .strip_prefix(b"v0=")
        .ok_or(Malformed("expected v0=<hex>"))?;
    hex::decode(hex_sig).map_err(|_| Malformed("signature is not hex"))
}

// === impl SlackVerifier ===

impl SlackVerifier {
    pub(super) fn new(keys: KeyRing, tolerance_s: u64) -> Self {
        Self { keys, tolerance_s }
    }
}

impl Verifier for SlackVerifier {
    fn provider(&self) -> Provider {
        Provider::Slack
    }

    fn verify(&self, req: &Unverified<'_>) -> Result<Verified, VerifyError> {
        let raw_signature = common::header_bytes(req.headers, &SIGNATURE)
            .ok_or(VerifyError::missing(SIGNATURE_HEADER))?;
        let raw_timestamp = common::header_bytes(req.headers, &TIMESTAMP)
            .ok_or(VerifyError::missing(TIMESTAMP_HEADER))?
            .trim_ascii();
        let timestamp = common::parse_unix_seconds(raw_timestamp)
            .ok_or_else(|| Malformed("timestamp is not unix seconds").at(TIMESTAMP_HEADER))?;
        let signature = parse_signature(raw_signature).map_err(|m| m.at(SIGNATURE_HEADER))?;
        if !self
            .keys
            .matches_any(&[b"v0:", raw_timestamp, b":", req.body], &[signature])
        {
            return Err(VerifyError::SignatureMismatch);
        }
        common::check_tolerance(timestamp, req.now_unix_s, self.tolerance_s)?;
        let json = common::parse_json(req.body);
        let field = |pointer| json.as_ref().and_then(|v| common::json_key(v, pointer));
        Ok(Verified::new(
            Provider::Slack,
            field("/event/type").or_else(|| field("/type")),
            field("/event_id"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::common::testing::{config, headers, hmac_sha256, verify};
    use crate::verify::VerificationConfig;

    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const NOW: i64 = 1_531_420_618;
    const BODY: &[u8] = br#"{"type":"event_callback","event_id":"Ev08MFMKH6","event":{"type":"app_mention","text":"hi"}}"#;

    fn sig(secret: &str, ts: &str, body: &[u8]) -> String {
        let mut msg = format!("v0:{ts}:").into_bytes();
        msg.extend_from_slice(body);
        format!("v0={}", hex::encode(hmac_sha256(secret.as_bytes(), &msg)))
    }

    fn slack() -> VerificationConfig {
        config(Provider::Slack, &[SECRET])
    }

    fn check(
        cfg: &VerificationConfig,
        signature: &str,
        ts: i64,
        body: &[u8],
    ) -> Result<Verified, VerifyError> {
        let map = headers(&[
            ("X-Slack-Signature", signature),
            ("X-Slack-Request-Timestamp", &ts.to_string()),
        ]);
        verify(cfg, &map, body, NOW)
    }

    #[test]
    fn valid_signature_passes_with_inner_event_type_and_event_id() {
        let ts = NOW.to_string();
        let verified = check(&slack(), &sig(SECRET, &ts, BODY), NOW, BODY).unwrap();
        assert_eq!(verified.provider(), Provider::Slack);
        assert_eq!(verified.event_type(), Some("app_mention"));
        assert_eq!(verified.delivery_id(), Some("Ev08MFMKH6"));
    }

    #[test]
    fn outer_type_is_used_without_inner_event() {
        let body = br#"{"token":"t","challenge":"abc","type":"url_verification"}"#;
        let ts = NOW.to_string();
        let verified = check(&slack(), &sig(SECRET, &ts, body), NOW, body).unwrap();
        assert_eq!(verified.event_type(), Some("url_verification"));
        assert_eq!(verified.delivery_id(), None);
    }

    #[test]
    fn form_encoded_body_passes_without_type() {
        let body = b"token=x&command=%2Fweather&text=94070";
        let ts = NOW.to_string();
        let verified = check(&slack(), &sig(SECRET, &ts, body), NOW, body).unwrap();
        assert_eq!(verified.event_type(), None);
        assert_eq!(verified.delivery_id(), None);
    }

    #[test]
    fn wrong_secret_is_signature_mismatch() {
        let ts = NOW.to_string();
        assert_eq!(
            check(&slack(), &sig("other", &ts, BODY), NOW, BODY).unwrap_err(),
            VerifyError::SignatureMismatch
        );
    }

    #[test]
    fn tampered_body_is_signature_mismatch() {
        let ts = NOW.to_string();
        assert_eq!(
            check(&slack(), &sig(SECRET, &ts, BODY), NOW, b"{}").unwrap_err(),
            VerifyError::SignatureMismatch
        );
    }

    #[test]
    fn tampered_timestamp_is_signature_mismatch() {
        let ts = NOW.to_string();
        assert_eq!(
            check(&slack(), &sig(SECRET, &ts, BODY), NOW - 1, BODY).unwrap_err(),
            VerifyError::SignatureMismatch
        );
    }

    #[test]
    fn stale_timestamp_is_out_of_tolerance() {
        let ts = NOW - 301;
        let signature = sig(SECRET, &ts.to_string(), BODY);
        assert_eq!(
            check(&slack(), &signature, ts, BODY).unwrap_err(),
            VerifyError::TimestampOutOfTolerance { age_s: 301 }
        );
    }

    #[test]
    fn future_timestamp_is_out_of_tolerance() {
        let ts = NOW + 301;
        let signature = sig(SECRET, &ts.to_string(), BODY);
        assert_eq!(
            check(&slack(), &signature, ts, BODY).unwrap_err(),
            VerifyError::TimestampOutOfTolerance { age_s: -301 }
        );
    }

    #[test]
    fn rotated_second_secret_passes() {
        let cfg = config(Provider::Slack, &["old-signing-secret", SECRET]);
        let ts = NOW.to_string();
        assert!(check(&cfg, &sig(SECRET, &ts, BODY), NOW, BODY).is_ok());
    }

    #[test]
    fn missing_headers_are_named() {
        let ts = NOW.to_string();
        let signature = sig(SECRET, &ts, BODY);
        let no_sig = headers(&[("X-Slack-Request-Timestamp", &ts)]);
        assert_eq!(
            verify(&slack(), &no_sig, BODY, NOW).unwrap_err(),
            VerifyError::MissingSignatureHeader {
                header: "X-Slack-Signature".into()
            }
        );
        let no_ts = headers(&[("X-Slack-Signature", &signature)]);
        assert_eq!(
            verify(&slack(), &no_ts, BODY, NOW).unwrap_err(),
            VerifyError::MissingSignatureHeader {
                header: "X-Slack-Request-Timestamp".into()
            }
        );
    }

    #[test]
    fn malformed_headers_are_malformed() {
        let ts = NOW.to_string();
        let good = sig(SECRET, &ts, BODY);
        let hex_only = good.trim_start_matches("v0=").to_owned();
        for (signature, ts) in [
            (hex_only.as_str(), ts.as_str()),
            ("v1=abcd", ts.as_str()),
            ("v0=xyz", ts.as_str()),
            ("", ts.as_str()),
            (good.as_str(), "1531420618.5"),
            (good.as_str(), ""),
        ] {
            let map = headers(&[
                ("X-Slack-Signature", signature),
                ("X-Slack-Request-Timestamp", ts),
            ]);
            assert_eq!(
                verify(&slack(), &map, BODY, NOW).unwrap_err().reason(),
                "malformed_signature_header",
                "{signature} {ts}"
            );
        }
    }

    #[test]
    fn non_string_event_type_falls_back_to_outer_type() {
        let body = br#"{"type":"event_callback","event":{"type":42},"event_id":7}"#;
        let ts = NOW.to_string();
        let verified = check(&slack(), &sig(SECRET, &ts, body), NOW, body).unwrap();
        assert_eq!(verified.event_type(), Some("event_callback"));
        assert_eq!(verified.delivery_id(), None);
    }
}
