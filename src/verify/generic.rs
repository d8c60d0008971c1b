//! Generic HMAC (`provider = "hmac"`): one configured header carrying an
//! HMAC (SHA-256 by default, SHA-1 or SHA-512) of the raw body, hex (default)
//! or base64 encoded, optionally behind a fixed prefix such as `sha256=`.
//!
//! Invariants: the secret is used as-is as the key; the prefix, when
//! configured, must be present (exact, case-sensitive match) so a value in
//! an unexpected format fails loudly instead of silently mismatching. Event
//! type comes from `event_type_header`, else from `event_type_pointer` into
//! the body (parsed only when the pointer is configured and needed);
//! delivery id from `delivery_id_header`.
//!
//! Deliberately has no timestamp or replay window: a generic scheme has no
//! agreed place for a signed timestamp. Not named `hmac.rs`, which would
//! shadow the `hmac` crate.

use std::borrow::Cow;

use base64::Engine as _;
use http::HeaderName;

use super::common::{self, KeyRing, Malformed, BASE64};
use super::{
    FieldProblem, Provider, SignatureEncoding, Unverified, VerificationConfig, Verified, Verifier,
    VerifyConfigError, VerifyError,
};

pub(super) struct GenericVerifier {
    keys: KeyRing,
    header: HeaderName,
    /// The header as configured, for error messages.
    header_display: Cow<'static, str>,
    prefix: Option<String>,
    encoding: SignatureEncoding,
    event_type_header: Option<HeaderName>,
    event_type_pointer: Option<String>,
    delivery_id_header: Option<HeaderName>,
}

/// Parses a signature header value: trims whitespace, strips `prefix` (which
/// must then be present) and decodes per `encoding`.
pub fn parse_signature(
    value: &[u8],
    prefix: Option<&str>,
    encoding: SignatureEncoding,
) -> Result<Vec<u8>, Malformed> {
    let mut value = value.trim_ascii();
    if let Some(prefix) = prefix {
        value = value
            .strip_prefix(prefix.as_bytes())
            .ok_or(Malformed("missing the configured prefix"))?;
    }
    if value.is_empty() {
        return Err(Malformed("empty signature"));
    }
    match encoding {
        SignatureEncoding::Hex => hex::decode(value).map_err(|_| Malformed("signature is not hex")),
        SignatureEncoding::Base64 => BASE64
            .decode(value)
            .map_err(|_| Malformed("signature is not base64")),
    }
}

fn header_name(field: &str, name: &str) -> Result<HeaderName, VerifyConfigError> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        VerifyConfigError::Invalid(vec![FieldProblem::new(
            field,
            "not a valid HTTP header name",
        )])
    })
}

// === impl GenericVerifier ===

impl GenericVerifier {
    /// Expects a config that passed `validate()`; re-checks what it relies
    /// on instead of unwrapping.
    pub(super) fn new(cfg: &VerificationConfig) -> Result<Self, VerifyConfigError> {
        let configured = cfg.header.as_deref().ok_or_else(|| {
            VerifyConfigError::Invalid(vec![FieldProblem::new(
                "header",
                "required for provider hmac",
            )])
        })?;
        let algorithm = cfg.algorithm.unwrap_or_default();
        Ok(Self {
            keys: KeyRing::raw(cfg, algorithm)?,
            header: header_name("header", configured)?,
            header_display: Cow::Owned(configured.to_owned()),
            prefix: cfg.prefix.clone(),
            encoding: cfg.encoding.unwrap_or_default(),
            event_type_header: cfg
                .event_type_header
                .as_deref()
                .map(|name| header_name("event_type_header", name))
                .transpose()?,
            // An empty pointer names the whole document, never a string.
            event_type_pointer: cfg.event_type_pointer.clone().filter(|p| !p.is_empty()),
            delivery_id_header: cfg
                .delivery_id_header
                .as_deref()
                .map(|name| header_name("delivery_id_header", name))
                .transpose()?,
        })
    }

    fn event_type(&self, req: &Unverified<'_>) -> Option<String> {
        self.event_type_header
            .as_ref()
            .and_then(|name| common::header_key(req.headers, name))
            .or_else(|| {
                let pointer = self.event_type_pointer.as_deref()?;
                common::json_key(&common::parse_json(req.body)?, pointer)
            })
    }
}

impl Verifier for GenericVerifier {
    fn provider(&self) -> Provider {
        Provider::Hmac
    }

    fn verify(&self, req: &Unverified<'_>) -> Result<Verified, VerifyError> {
        let raw = common::header_bytes(req.headers, &self.header)
            .ok_or_else(|| VerifyError::missing(self.header_display.clone()))?;
        let signature = parse_signature(raw, self.prefix.as_deref(), self.encoding)
            .map_err(|m| m.at(self.header_display.clone()))?;
        if !self.keys.matches_any(&[req.body], &[signature]) {
            return Err(VerifyError::SignatureMismatch);
        }
        let delivery_id = self
            .delivery_id_header
            .as_ref()
            .and_then(|name| common::header_key(req.headers, name));
        Ok(Verified::new(
            Provider::Hmac,
            self.event_type(req),
            delivery_id,
        ))
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;

    use super::*;
    use crate::verify::common::testing::{
        config, headers, hmac_sha1, hmac_sha256, hmac_sha512, verify,
    };
    use crate::verify::HmacAlgorithm;

    const SECRET: &str = "generic-secret";
    const BODY: &[u8] = br#"{"event":{"type":"build.finished"},"id":"d-1"}"#;

    fn generic() -> VerificationConfig {
        let mut cfg = config(Provider::Hmac, &[SECRET]);
        cfg.header = Some("X-Signature".into());
        cfg
    }

    fn hex_sig(secret: &str, body: &[u8]) -> String {
        hex::encode(hmac_sha256(secret.as_bytes(), body))
    }

    fn check(cfg: &VerificationConfig, value: &str, body: &[u8]) -> Result<Verified, VerifyError> {
        verify(cfg, &headers(&[("X-Signature", value)]), body, 0)
    }

    #[test]
    fn default_sha256_hex_passes() {
        let verified = check(&generic(), &hex_sig(SECRET, BODY), BODY).unwrap();
        assert_eq!(verified.provider(), Provider::Hmac);
        assert_eq!(verified.event_type(), None);
        assert_eq!(verified.delivery_id(), None);
    }

    #[test]
    fn header_name_lookup_is_case_insensitive() {
        let map = headers(&[("x-SIGNATURE", &hex_sig(SECRET, BODY))]);
        assert!(verify(&generic(), &map, BODY, 0).is_ok());
    }

    #[test]
    fn prefix_is_stripped_and_required() {
        let mut cfg = generic();
        cfg.prefix = Some("sha256=".into());
        let value = format!("sha256={}", hex_sig(SECRET, BODY));
        assert!(check(&cfg, &value, BODY).is_ok());
        assert_eq!(
            check(&cfg, &hex_sig(SECRET, BODY), BODY).unwrap_err(),
            VerifyError::MalformedSignatureHeader {
                header: "X-Signature".into(),
                reason: "missing the configured prefix",
            }
        );
    }

    #[test]
    fn sha1_and_sha512_are_supported() {
        let mut cfg = generic();
        cfg.algorithm = Some(HmacAlgorithm::Sha1);
        let value = hex::encode(hmac_sha1(SECRET.as_bytes(), BODY));
        assert!(check(&cfg, &value, BODY).is_ok());
        // A SHA-256 MAC under a SHA-1 config has the wrong length: mismatch.
        assert_eq!(
            check(&cfg, &hex_sig(SECRET, BODY), BODY).unwrap_err(),
            VerifyError::SignatureMismatch
        );
        cfg.algorithm = Some(HmacAlgorithm::Sha512);
        let value = hex::encode(hmac_sha512(SECRET.as_bytes(), BODY));
        assert!(check(&cfg, &value, BODY).is_ok());
    }

    #[test]
    fn base64_encoding_is_supported() {
        let mut cfg = generic();
        cfg.encoding = Some(SignatureEncoding::Base64);
        let value = STANDARD.encode(hmac_sha256(SECRET.as_bytes(), BODY));
        assert!(check(&cfg, &value, BODY).is_ok());
        assert!(check(&cfg, value.trim_end_matches('='), BODY).is_ok());
    }

    #[test]
    fn wrong_secret_is_signature_mismatch() {
        assert_eq!(
            check(&generic(), &hex_sig("other", BODY), BODY).unwrap_err(),
            VerifyError::SignatureMismatch
        );
    }

    #[test]
    fn tampered_body_is_signature_mismatch() {
        assert_eq!(
            check(&generic(), &hex_sig(SECRET, BODY), b"{}").unwrap_err(),
            VerifyError::SignatureMismatch
        );
    }

    #[test]
    fn rotated_second_secret_passes() {
        let mut cfg = generic();
        cfg.secrets = vec!["next-secret".into()];
        assert!(check(&cfg, &hex_sig("next-secret", BODY), BODY).is_ok());
        assert!(check(&cfg, &hex_sig(SECRET, BODY), BODY).is_ok());
    }

    #[test]
    fn missing_header_names_the_configured_header() {
        let err = verify(&generic(), &headers(&[]), BODY, 0).unwrap_err();
        assert_eq!(err.to_string(), "missing signature header X-Signature");
        assert_eq!(err.reason(), "missing_signature_header");
    }

    #[test]
    fn malformed_headers_are_malformed() {
        for value in ["", "  ", "zz", "abc", "sha256=ab"] {
            assert_eq!(
                check(&generic(), value, BODY).unwrap_err().reason(),
                "malformed_signature_header",
                "{value:?}"
            );
        }
        let mut cfg = generic();
        cfg.encoding = Some(SignatureEncoding::Base64);
        assert_eq!(
            check(&cfg, "not base64!", BODY).unwrap_err().reason(),
            "malformed_signature_header"
        );
    }

    #[test]
    fn type_and_delivery_id_come_from_configured_headers() {
        let mut cfg = generic();
        cfg.event_type_header = Some("X-Event".into());
        cfg.event_type_pointer = Some("/event/type".into());
        cfg.delivery_id_header = Some("X-Delivery".into());
        let map = headers(&[
            ("X-Signature", &hex_sig(SECRET, BODY)),
            ("X-Event", "deploy"),
            ("X-Delivery", "abc-123"),
        ]);
        let verified = verify(&cfg, &map, BODY, 0).unwrap();
        assert_eq!(verified.event_type(), Some("deploy"));
        assert_eq!(verified.delivery_id(), Some("abc-123"));
    }

    #[test]
    fn pointer_is_the_fallback_for_event_type() {
        let mut cfg = generic();
        cfg.event_type_header = Some("X-Event".into());
        cfg.event_type_pointer = Some("/event/type".into());
        let verified = check(&cfg, &hex_sig(SECRET, BODY), BODY).unwrap();
        assert_eq!(verified.event_type(), Some("build.finished"));
    }

    #[test]
    fn pointer_to_missing_or_non_string_yields_none() {
        for pointer in ["/nope", "/event", "", "/id/0"] {
            let mut cfg = generic();
            cfg.event_type_pointer = Some(pointer.into());
            let verified = check(&cfg, &hex_sig(SECRET, BODY), BODY).unwrap();
            assert_eq!(verified.event_type(), None, "{pointer}");
        }
        let mut cfg = generic();
        cfg.event_type_pointer = Some("/type".into());
        let body = b"not json";
        let verified = check(&cfg, &hex_sig(SECRET, body), body).unwrap();
        assert_eq!(verified.event_type(), None);
    }

    #[test]
    fn json_pointer_escapes_are_honoured() {
        let mut cfg = generic();
        cfg.event_type_pointer = Some("/a~1b/c~0d".into());
        let body = br#"{"a/b":{"c~d":"escaped.ok"}}"#;
        let verified = check(&cfg, &hex_sig(SECRET, body), body).unwrap();
        assert_eq!(verified.event_type(), Some("escaped.ok"));
    }

    #[test]
    fn parse_signature_is_exposed_for_fuzzing() {
        assert_eq!(
            parse_signature(b" sha1=0aFF ", Some("sha1="), SignatureEncoding::Hex).unwrap(),
            [0x0a, 0xff]
        );
        assert!(parse_signature(b"sha1=", Some("sha1="), SignatureEncoding::Hex).is_err());
    }
}
