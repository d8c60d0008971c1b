//! GitHub: `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 keyed with the
//! secret as-is over the raw body.
//!
//! Invariants: event type is the `X-GitHub-Event` header, plus `.` and the
//! body's JSON `action` when it has one (`pull_request.opened`); the body is
//! parsed only when the event header is present. Delivery id is
//! `X-GitHub-Delivery`.
//!
//! Deliberately does not accept the legacy SHA-1 `X-Hub-Signature`: it is
//! weaker and GitHub always sends the SHA-256 header alongside it. GitHub
//! signs no timestamp, so there is no replay window to enforce here.

use http::HeaderName;

use super::common::{self, KeyRing, Malformed};
use super::{Provider, Unverified, Verified, Verifier, VerifyError};

pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";
const SIGNATURE: HeaderName = HeaderName::from_static("x-hub-signature-256");
const EVENT: HeaderName = HeaderName::from_static("x-github-event");
const DELIVERY: HeaderName = HeaderName::from_static("x-github-delivery");

pub(super) struct GithubVerifier {
    keys: KeyRing,
}

/// Parses an `X-Hub-Signature-256` value into the raw MAC bytes.
pub fn parse_signature(value: &[u8]) -> Result<Vec<u8>, Malformed> {
    let hex_sig = value
        .trim_ascii()
        .strip_prefix(b"sha256=")
        .ok_or(Malformed("expected sha256=<hex>"))?;
    hex::decode(hex_sig).map_err(|_| Malformed("signature is not hex"))
}

// === impl GithubVerifier ===

impl GithubVerifier {
    pub(super) fn new(keys: KeyRing) -> Self {
        Self { keys }
    }
}

impl Verifier for GithubVerifier {
    fn provider(&self) -> Provider {
        Provider::Github
    }

    fn verify(&self, req: &Unverified<'_>) -> Result<Verified, VerifyError> {
        let raw = common::header_bytes(req.headers, &SIGNATURE)
            .ok_or(VerifyError::missing(SIGNATURE_HEADER))?;
        let signature = parse_signature(raw).map_err(|m| m.at(SIGNATURE_HEADER))?;
        if !self.keys.matches_any(&[req.body], &[signature]) {
            return Err(VerifyError::SignatureMismatch);
        }
        let event_type = common::header_key(req.headers, &EVENT).and_then(|event| {
            let [action] = common::top_level_strings(req.body, ["action"]);
            match action {
                // Re-checked as a whole: the combination may exceed the cap.
                Some(action) => common::index_key(&format!("{event}.{action}")),
                None => Some(event),
            }
        });
        let delivery_id = common::header_key(req.headers, &DELIVERY);
        Ok(Verified::new(Provider::Github, event_type, delivery_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::common::testing::{config, headers, hmac_sha256, verify};
    use crate::verify::VerificationConfig;

    const SECRET: &str = "gh-secret";
    const BODY: &[u8] = br#"{"action":"opened","number":7}"#;

    fn sig(secret: &str, body: &[u8]) -> String {
        format!(
            "sha256={}",
            hex::encode(hmac_sha256(secret.as_bytes(), body))
        )
    }

    fn github() -> VerificationConfig {
        config(Provider::Github, &[SECRET])
    }

    fn check(cfg: &VerificationConfig, value: &str, body: &[u8]) -> Result<Verified, VerifyError> {
        verify(cfg, &headers(&[("X-Hub-Signature-256", value)]), body, 0)
    }

    #[test]
    fn github_documented_example_passes() {
        let cfg = config(Provider::Github, &["It's a Secret to Everybody"]);
        let value = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(check(&cfg, value, b"Hello, World!").is_ok());
    }

    #[test]
    fn valid_signature_passes_with_type_action_and_delivery() {
        let map = headers(&[
            ("X-Hub-Signature-256", &sig(SECRET, BODY)),
            ("X-GitHub-Event", "pull_request"),
            ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ]);
        let verified = verify(&github(), &map, BODY, 0).unwrap();
        assert_eq!(verified.event_type(), Some("pull_request.opened"));
        assert_eq!(
            verified.delivery_id(),
            Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
        );
    }

    #[test]
    fn event_without_action_is_the_header_alone() {
        let body = br#"{"zen":"Keep it logically awesome.","action":5}"#;
        let map = headers(&[
            ("X-Hub-Signature-256", &sig(SECRET, body)),
            ("X-GitHub-Event", "ping"),
        ]);
        let verified = verify(&github(), &map, body, 0).unwrap();
        assert_eq!(verified.event_type(), Some("ping"));
        assert_eq!(verified.delivery_id(), None);
    }

    #[test]
    fn action_without_event_header_yields_no_type() {
        let verified = check(&github(), &sig(SECRET, BODY), BODY).unwrap();
        assert_eq!(verified.event_type(), None);
    }

    #[test]
    fn overlong_combined_type_is_dropped() {
        let body = format!(r#"{{"action":"{}"}}"#, "a".repeat(250)).into_bytes();
        let map = headers(&[
            ("X-Hub-Signature-256", &sig(SECRET, &body)),
            ("X-GitHub-Event", "pull_request"),
        ]);
        let verified = verify(&github(), &map, &body, 0).unwrap();
        assert_eq!(verified.event_type(), None);
    }

    #[test]
    fn wrong_secret_is_signature_mismatch() {
        assert_eq!(
            check(&github(), &sig("other", BODY), BODY).unwrap_err(),
            VerifyError::SignatureMismatch
        );
    }

    #[test]
    fn tampered_body_is_signature_mismatch() {
        assert_eq!(
            check(&github(), &sig(SECRET, BODY), b"{\"action\":\"closed\"}").unwrap_err(),
            VerifyError::SignatureMismatch
        );
    }

    #[test]
    fn truncated_signature_is_signature_mismatch() {
        let value = sig(SECRET, BODY);
        let truncated = value.get(..value.len() - 2).unwrap();
        assert_eq!(
            check(&github(), truncated, BODY).unwrap_err(),
            VerifyError::SignatureMismatch
        );
    }

    #[test]
    fn uppercase_hex_is_accepted() {
        let value = format!(
            "sha256={}",
            hex::encode_upper(hmac_sha256(SECRET.as_bytes(), BODY))
        );
        assert!(check(&github(), &value, BODY).is_ok());
    }

    #[test]
    fn rotated_second_secret_passes() {
        let cfg = config(Provider::Github, &["old", "new"]);
        assert!(check(&cfg, &sig("new", BODY), BODY).is_ok());
        assert!(check(&cfg, &sig("old", BODY), BODY).is_ok());
        assert!(check(&cfg, &sig("neither", BODY), BODY).is_err());
    }

    #[test]
    fn missing_header_is_reported_by_canonical_name() {
        // The legacy SHA-1 header alone does not count.
        let sha1_only = headers(&[("X-Hub-Signature", "sha1=00")]);
        assert_eq!(
            verify(&github(), &sha1_only, BODY, 0).unwrap_err(),
            VerifyError::MissingSignatureHeader {
                header: "X-Hub-Signature-256".into()
            }
        );
    }

    #[test]
    fn malformed_headers_are_malformed() {
        let hex_sig = hex::encode(hmac_sha256(SECRET.as_bytes(), BODY));
        for value in [
            String::new(),
            hex_sig.clone(),
            format!("sha1={hex_sig}"),
            format!("SHA256={hex_sig}"),
            "sha256=xyz".to_owned(),
            "sha256=abc".to_owned(),
        ] {
            let err = check(&github(), &value, BODY).unwrap_err();
            assert_eq!(
                err,
                VerifyError::MalformedSignatureHeader {
                    header: "X-Hub-Signature-256".into(),
                    reason: err_reason(&value),
                },
                "{value}"
            );
        }
    }

    fn err_reason(value: &str) -> &'static str {
        if value.starts_with("sha256=") {
            "signature is not hex"
        } else {
            "expected sha256=<hex>"
        }
    }

    #[test]
    fn control_characters_in_headers_yield_none() {
        let mut map = headers(&[("X-Hub-Signature-256", &sig(SECRET, BODY))]);
        map.insert(EVENT, http::HeaderValue::from_bytes(b"push\tx").unwrap());
        map.insert(
            DELIVERY,
            http::HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        );
        let verified = verify(&github(), &map, BODY, 0).unwrap();
        assert_eq!(verified.event_type(), None);
        assert_eq!(verified.delivery_id(), None);
    }
}
