//! Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...][,v0=...]`,
//! HMAC-SHA256 keyed with the secret string as-is (`whsec_...` included, as
//! Stripe does) over `"{t}.{raw body}"`.
//!
//! Invariants: any `v1` matching any secret passes; the signed `t` is the
//! exact header text (not a re-formatted integer); the timestamp must be
//! within tolerance in both directions, checked only after the signature
//! matched. Event type is body JSON `type`, delivery id is body JSON `id`.
//!
//! Deliberately ignores `v0` (Stripe's test-mode legacy scheme) and unknown
//! schemes, like Stripe's own libraries do.

use http::HeaderName;

use super::common::{self, KeyRing, Malformed};
use super::{Provider, Unverified, Verified, Verifier, VerifyError};

/// Canonical spelling, as shown in errors.
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";
const SIGNATURE: HeaderName = HeaderName::from_static("stripe-signature");

/// A parsed `Stripe-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeHeader<'a> {
    pub timestamp: i64,
    /// The `t` value exactly as sent; this is what Stripe signs.
    pub timestamp_raw: &'a [u8],
    /// Decoded `v1` signatures; entries that are not hex are dropped.
    pub v1: Vec<Vec<u8>>,
}

pub(super) struct StripeVerifier {
    keys: KeyRing,
    tolerance_s: u64,
}

/// Parses a `Stripe-Signature` value. Never panics.
///
/// Items are `,`-separated `key=value` pairs with whitespace tolerated
/// around them; items without `=` and unknown keys are skipped so Stripe can
/// add schemes without breaking us. A repeated `t` is refused: which one was
/// signed would be ambiguous.
pub fn parse_header(value: &[u8]) -> Result<StripeHeader<'_>, Malformed> {
    let mut timestamp_raw: Option<&[u8]> = None;
    let mut saw_v1 = false;
    let mut v1 = Vec::new();
    for item in value.split(|b| *b == b',') {
        let mut kv = item.splitn(2, |b| *b == b'=');
        let key = kv.next().unwrap_or_default().trim_ascii();
        let Some(val) = kv.next() else { continue };
        let val = val.trim_ascii();
        match key {
            b"t" if timestamp_raw.is_some() => {
                return Err(Malformed("more than one timestamp"));
            }
            b"t" => timestamp_raw = Some(val),
            b"v1" => {
                saw_v1 = true;
                // An empty signature is as unusable as non-hex text.
                if let Ok(sig) = hex::decode(val) {
                    if !sig.is_empty() {
                        v1.push(sig);
                    }
                }
            }
            _ => {}
        }
    }
    let timestamp_raw = timestamp_raw.ok_or(Malformed("missing timestamp t="))?;
    let timestamp = common::parse_unix_seconds(timestamp_raw)
        .ok_or(Malformed("timestamp t= is not unix seconds"))?;
    if !saw_v1 {
        return Err(Malformed("no v1 signature"));
    }
    if v1.is_empty() {
        return Err(Malformed("v1 signature is not hex"));
    }
    Ok(StripeHeader {
        timestamp,
        timestamp_raw,
        v1,
    })
}

// === impl StripeVerifier ===

impl StripeVerifier {
    pub(super) fn new(keys: KeyRing, tolerance_s: u64) -> Self {
        Self { keys, tolerance_s }
    }
}

impl Verifier for StripeVerifier {
    fn provider(&self) -> Provider {
        Provider::Stripe
    }

    fn verify(&self, req: &Unverified<'_>) -> Result<Verified, VerifyError> {
        let raw = common::header_bytes(req.headers, &SIGNATURE)
            .ok_or(VerifyError::missing(SIGNATURE_HEADER))?;
        let header = parse_header(raw).map_err(|m| m.at(SIGNATURE_HEADER))?;
        if !self
            .keys
            .matches_any(&[header.timestamp_raw, b".", req.body], &header.v1)
        {
            return Err(VerifyError::SignatureMismatch);
        }
        common::check_tolerance(header.timestamp, req.now_unix_s, self.tolerance_s)?;
        let [event_type, id] = common::top_level_strings(req.body, ["type", "id"]);
        Ok(Verified::new(Provider::Stripe, event_type, id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::common::testing::{config, headers, hmac_sha256, verify};
    use crate::verify::VerificationConfig;

    const SECRET: &str = "whsec_test_secret";
    const NOW: i64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"id":"evt_1NzX","object":"event","type":"invoice.paid"}"#;

    fn sig(secret: &str, t: i64, body: &[u8]) -> String {
        let mut msg = format!("{t}.").into_bytes();
        msg.extend_from_slice(body);
        hex::encode(hmac_sha256(secret.as_bytes(), &msg))
    }

    fn check(cfg: &VerificationConfig, value: &str, body: &[u8]) -> Result<Verified, VerifyError> {
        verify(cfg, &headers(&[("Stripe-Signature", value)]), body, NOW)
    }

    fn stripe() -> VerificationConfig {
        config(Provider::Stripe, &[SECRET])
    }

    #[test]
    fn valid_signature_passes_with_type_and_id() {
        let value = format!("t={NOW},v1={}", sig(SECRET, NOW, BODY));
        let verified = check(&stripe(), &value, BODY).unwrap();
        assert_eq!(verified.provider(), Provider::Stripe);
        assert_eq!(verified.event_type(), Some("invoice.paid"));
        assert_eq!(verified.delivery_id(), Some("evt_1NzX"));
    }

    #[test]
    fn secret_is_used_as_is_including_whsec_prefix() {
        // Stripe does not base64-decode its secret: signing with the bytes
        // after the prefix must fail.
        let value = format!("t={NOW},v1={}", sig("test_secret", NOW, BODY));
        assert_eq!(
            check(&stripe(), &value, BODY).unwrap_err(),
            VerifyError::SignatureMismatch
        );
    }

    #[test]
    fn wrong_secret_is_signature_mismatch() {
        let value = format!("t={NOW},v1={}", sig("whsec_other", NOW, BODY));
        assert_eq!(
            check(&stripe(), &value, BODY).unwrap_err(),
            VerifyError::SignatureMismatch
        );
    }

    #[test]
    fn tampered_body_is_signature_mismatch() {
        let value = format!("t={NOW},v1={}", sig(SECRET, NOW, BODY));
        let tampered = br#"{"id":"evt_1NzX","object":"event","type":"invoice.void"}"#;
        assert_eq!(
            check(&stripe(), &value, tampered).unwrap_err(),
            VerifyError::SignatureMismatch
        );
    }

    #[test]
    fn tampered_timestamp_is_signature_mismatch() {
        let value = format!("t={},v1={}", NOW + 1, sig(SECRET, NOW, BODY));
        assert_eq!(
            check(&stripe(), &value, BODY).unwrap_err(),
            VerifyError::SignatureMismatch
        );
    }

    #[test]
    fn stale_timestamp_is_out_of_tolerance() {
        let t = NOW - 301;
        let value = format!("t={t},v1={}", sig(SECRET, t, BODY));
        assert_eq!(
            check(&stripe(), &value, BODY).unwrap_err(),
            VerifyError::TimestampOutOfTolerance { age_s: 301 }
        );
        let t = NOW - 300;
        let value = format!("t={t},v1={}", sig(SECRET, t, BODY));
        assert!(check(&stripe(), &value, BODY).is_ok());
    }

    #[test]
    fn future_timestamp_is_out_of_tolerance() {
        let t = NOW + 301;
        let value = format!("t={t},v1={}", sig(SECRET, t, BODY));
        assert_eq!(
            check(&stripe(), &value, BODY).unwrap_err(),
            VerifyError::TimestampOutOfTolerance { age_s: -301 }
        );
    }

    #[test]
    fn configured_tolerance_applies() {
        let mut cfg = stripe();
        cfg.tolerance_s = Some(10);
        let t = NOW - 11;
        let value = format!("t={t},v1={}", sig(SECRET, t, BODY));
        assert_eq!(
            check(&cfg, &value, BODY).unwrap_err().reason(),
            "timestamp_out_of_tolerance"
        );
    }

    #[test]
    fn forged_stale_request_is_mismatch_not_tolerance() {
        let t = NOW - 10_000;
        let value = format!("t={t},v1={}", sig("whsec_other", t, BODY));
        assert_eq!(
            check(&stripe(), &value, BODY).unwrap_err(),
            VerifyError::SignatureMismatch
        );
    }

    #[test]
    fn any_matching_v1_among_several_passes() {
        let value = format!(
            "t={NOW},v1={},v1=nothex,v1={},v0={}",
            sig("whsec_other", NOW, BODY),
            sig(SECRET, NOW, BODY),
            "00".repeat(32)
        );
        assert!(check(&stripe(), &value, BODY).is_ok());
    }

    #[test]
    fn v0_signature_alone_is_not_accepted() {
        let value = format!("t={NOW},v0={}", sig(SECRET, NOW, BODY));
        assert_eq!(
            check(&stripe(), &value, BODY).unwrap_err(),
            VerifyError::MalformedSignatureHeader {
                header: "Stripe-Signature".into(),
                reason: "no v1 signature"
            }
        );
    }

    #[test]
    fn rotated_second_secret_passes() {
        let cfg = config(Provider::Stripe, &["whsec_old", "whsec_new"]);
        let value = format!("t={NOW},v1={}", sig("whsec_new", NOW, BODY));
        assert!(check(&cfg, &value, BODY).is_ok());
    }

    #[test]
    fn missing_header_is_reported_by_canonical_name() {
        let err = verify(&stripe(), &headers(&[]), BODY, NOW).unwrap_err();
        assert_eq!(
            err,
            VerifyError::MissingSignatureHeader {
                header: "Stripe-Signature".into()
            }
        );
        assert_eq!(err.reason(), "missing_signature_header");
    }

    #[test]
    fn malformed_headers_are_malformed() {
        let good = sig(SECRET, NOW, BODY);
        for value in [
            String::new(),
            format!("v1={good}"),
            format!("t=,v1={good}"),
            format!("t=-5,v1={good}"),
            format!("t=12abc,v1={good}"),
            format!("t={NOW}"),
            format!("t={NOW},v1=zz"),
            format!("t={NOW},t={NOW},v1={good}"),
            ",,,===,".to_owned(),
        ] {
            let err = check(&stripe(), &value, BODY).unwrap_err();
            assert_eq!(err.reason(), "malformed_signature_header", "{value}");
        }
    }

    #[test]
    fn whitespace_around_items_is_tolerated() {
        let value = format!("t={NOW}, v1={} , v0=ab", sig(SECRET, NOW, BODY));
        assert!(check(&stripe(), &value, BODY).is_ok());
    }

    #[test]
    fn timestamp_is_signed_as_sent() {
        // A zero-padded `t` is signed with the padding; re-formatting the
        // parsed integer would break the MAC.
        let raw_t = format!("0{NOW}");
        let mut msg = format!("{raw_t}.").into_bytes();
        msg.extend_from_slice(BODY);
        let value = format!(
            "t={raw_t},v1={}",
            hex::encode(hmac_sha256(SECRET.as_bytes(), &msg))
        );
        assert!(check(&stripe(), &value, BODY).is_ok());
    }

    #[test]
    fn non_json_body_passes_without_type_or_id() {
        let body = b"not json";
        let value = format!("t={NOW},v1={}", sig(SECRET, NOW, body));
        let verified = check(&stripe(), &value, body).unwrap();
        assert_eq!(verified.event_type(), None);
        assert_eq!(verified.delivery_id(), None);
    }

    #[test]
    fn unusable_type_and_id_are_dropped() {
        let long = "x".repeat(257);
        let body = format!(r#"{{"id":"evt\n1","type":"{long}"}}"#).into_bytes();
        let value = format!("t={NOW},v1={}", sig(SECRET, NOW, &body));
        let verified = check(&stripe(), &value, &body).unwrap();
        assert_eq!(verified.event_type(), None);
        assert_eq!(verified.delivery_id(), None);
    }

    #[test]
    fn parse_header_exposes_parts() {
        let parsed = parse_header(b"t=12,v1=ab,v1=cd,v0=ef,x=1,junk").unwrap();
        assert_eq!(parsed.timestamp, 12);
        assert_eq!(parsed.timestamp_raw, b"12");
        assert_eq!(parsed.v1, [vec![0xab], vec![0xcd]]);
    }

    #[test]
    fn non_utf8_header_is_malformed_not_a_panic() {
        let mut map = http::HeaderMap::new();
        map.insert(
            SIGNATURE,
            http::HeaderValue::from_bytes(b"t=\xff\xfe,v1=\x80").unwrap(),
        );
        let err = verify(&stripe(), &map, BODY, NOW).unwrap_err();
        assert_eq!(err.reason(), "malformed_signature_header");
    }
}
