//! Shopify: `X-Shopify-Hmac-Sha256: <base64>`, HMAC-SHA256 keyed with the
//! app's secret as-is over the raw body.
//!
//! Invariants: event type is the `X-Shopify-Topic` header (`orders/create`),
//! delivery id is `X-Shopify-Webhook-Id`; the body is never parsed.
//!
//! Deliberately does not enforce a replay window: Shopify signs no
//! timestamp (`X-Shopify-Triggered-At` is not covered by the MAC, so
//! checking it would prove nothing).

use base64::Engine as _;
use http::HeaderName;

use super::common::{self, KeyRing, Malformed, BASE64};
use super::{Provider, Unverified, Verified, Verifier, VerifyError};

pub const SIGNATURE_HEADER: &str = "X-Shopify-Hmac-Sha256";
const SIGNATURE: HeaderName = HeaderName::from_static("x-shopify-hmac-sha256");
const TOPIC: HeaderName = HeaderName::from_static("x-shopify-topic");
const WEBHOOK_ID: HeaderName = HeaderName::from_static("x-shopify-webhook-id");

pub(super) struct ShopifyVerifier {
    keys: KeyRing,
}

/// Parses an `X-Shopify-Hmac-Sha256` value into the raw MAC bytes.
pub fn parse_signature(value: &[u8]) -> Result<Vec<u8>, Malformed> {
    let value = value.trim_ascii();
    if value.is_empty() {
        return Err(Malformed("empty signature"));
    }
    BASE64
        .decode(value)
        .map_err(|_| Malformed("signature is not base64"))
}

// === impl ShopifyVerifier ===

impl ShopifyVerifier {
    pub(super) fn new(keys: KeyRing) -> Self {
        Self { keys }
    }
}

impl Verifier for ShopifyVerifier {
    fn provider(&self) -> Provider {
        Provider::Shopify
    }

    fn verify(&self, req: &Unverified<'_>) -> Result<Verified, VerifyError> {
        let raw = common::header_bytes(req.headers, &SIGNATURE)
            .ok_or(VerifyError::missing(SIGNATURE_HEADER))?;
        let signature = parse_signature(raw).map_err(|m| m.at(SIGNATURE_HEADER))?;
        if !self.keys.matches_any(&[req.body], &[signature]) {
            return Err(VerifyError::SignatureMismatch);
        }
        Ok(Verified::new(
            Provider::Shopify,
            common::header_key(req.headers, &TOPIC),
            common::header_key(req.headers, &WEBHOOK_ID),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::common::testing::{config, headers, hmac_sha256, verify};
    use crate::verify::VerificationConfig;

    const SECRET: &str = "shpss_0123456789abcdef";
    const BODY: &[u8] = br#"{"id":820982911946154508,"email":"jon@example.com"}"#;

    fn sig(secret: &str, body: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(hmac_sha256(secret.as_bytes(), body))
    }

    fn shopify() -> VerificationConfig {
        config(Provider::Shopify, &[SECRET])
    }

    fn check(cfg: &VerificationConfig, value: &str, body: &[u8]) -> Result<Verified, VerifyError> {
        verify(cfg, &headers(&[("X-Shopify-Hmac-Sha256", value)]), body, 0)
    }

    #[test]
    fn valid_signature_passes_with_topic_and_webhook_id() {
        let map = headers(&[
            ("X-Shopify-Hmac-Sha256", &sig(SECRET, BODY)),
            ("X-Shopify-Topic", "orders/create"),
            (
                "X-Shopify-Webhook-Id",
                "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
            ),
        ]);
        let verified = verify(&shopify(), &map, BODY, 0).unwrap();
        assert_eq!(verified.provider(), Provider::Shopify);
        assert_eq!(verified.event_type(), Some("orders/create"));
        assert_eq!(
            verified.delivery_id(),
            Some("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
        );
    }

    #[test]
    fn body_type_field_is_not_used() {
        let body = br#"{"type":"not-the-topic"}"#;
        let verified = check(&shopify(), &sig(SECRET, body), body).unwrap();
        assert_eq!(verified.event_type(), None);
        assert_eq!(verified.delivery_id(), None);
    }

    #[test]
    fn unpadded_base64_is_accepted() {
        let value = sig(SECRET, BODY);
        assert!(check(&shopify(), value.trim_end_matches('='), BODY).is_ok());
    }

    #[test]
    fn wrong_secret_is_signature_mismatch() {
        assert_eq!(
            check(&shopify(), &sig("shpss_other", BODY), BODY).unwrap_err(),
            VerifyError::SignatureMismatch
        );
    }

    #[test]
    fn tampered_body_is_signature_mismatch() {
        assert_eq!(
            check(&shopify(), &sig(SECRET, BODY), b"{\"id\":1}").unwrap_err(),
            VerifyError::SignatureMismatch
        );
    }

    #[test]
    fn hex_encoded_signature_is_malformed_or_mismatch() {
        // Hex digits are valid base64 characters, so a hex MAC decodes to
        // 48 wrong bytes: it must fail, never pass.
        let value = hex::encode(hmac_sha256(SECRET.as_bytes(), BODY));
        assert!(check(&shopify(), &value, BODY).is_err());
    }

    #[test]
    fn rotated_second_secret_passes() {
        let cfg = config(Provider::Shopify, &["shpss_old", "shpss_new"]);
        assert!(check(&cfg, &sig("shpss_new", BODY), BODY).is_ok());
    }

    #[test]
    fn missing_header_is_reported_by_canonical_name() {
        assert_eq!(
            verify(&shopify(), &headers(&[]), BODY, 0).unwrap_err(),
            VerifyError::MissingSignatureHeader {
                header: "X-Shopify-Hmac-Sha256".into()
            }
        );
    }

    #[test]
    fn malformed_headers_are_malformed() {
        for value in ["", "   ", "not base64!", "a===", "sha256=abcd"] {
            assert_eq!(
                check(&shopify(), value, BODY).unwrap_err().reason(),
                "malformed_signature_header",
                "{value:?}"
            );
        }
    }
}
