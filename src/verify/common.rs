//! Building blocks shared by the provider verifiers: keyed MAC state and its
//! constant-time comparison, timestamp parsing and tolerance, header lookup
//! and the sanitising of extracted event types / delivery ids.
//!
//! Invariants: nothing here panics on any input; MAC comparison goes through
//! `subtle::ConstantTimeEq` only; extracted strings are non-empty, at most
//! [`MAX_KEY_LEN`] bytes and free of control characters, because they become
//! index keys.
//!
//! Deliberately does not know any provider's header names or formats.

use std::borrow::Cow;
use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName};
use serde_json::Value;
use sha1::Sha1;
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::{
    FieldProblem, HmacAlgorithm, VerificationConfig, VerifyConfigError, VerifyError, MAX_KEY_LEN,
};

/// Standard-alphabet base64 that accepts both padded and unpadded input:
/// senders disagree on padding and it carries no meaning for a MAC.
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Unix seconds have at most 11 digits for millennia to come; 18 digits
/// still fit an `i64` without overflow checks and reject absurd input early.
const MAX_TIMESTAMP_DIGITS: usize = 18;

/// Why a signature header could not be parsed. Returned by the public
/// `parse_*` functions; verifiers attach the header name to make a
/// [`VerifyError::MalformedSignatureHeader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub &'static str);

/// A key already absorbed into HMAC state: per request we clone the state
/// instead of re-hashing the key.
#[derive(Clone)]
enum MacKey {
    Sha1(Hmac<Sha1>),
    Sha256(Hmac<Sha256>),
    Sha512(Hmac<Sha512>),
}

/// All keys a source accepts (more than one during a secret rotation).
#[derive(Clone)]
pub(crate) struct KeyRing {
    keys: Vec<MacKey>,
}

// === impl Malformed ===

impl Malformed {
    pub(crate) fn at(self, header: impl Into<Cow<'static, str>>) -> VerifyError {
        VerifyError::MalformedSignatureHeader {
            header: header.into(),
            reason: self.0,
        }
    }
}

// === impl MacKey ===

impl MacKey {
    fn new(algorithm: HmacAlgorithm, key: &[u8]) -> Result<Self, hmac::digest::InvalidLength> {
        Ok(match algorithm {
            HmacAlgorithm::Sha1 => Self::Sha1(Hmac::new_from_slice(key)?),
            HmacAlgorithm::Sha256 => Self::Sha256(Hmac::new_from_slice(key)?),
            HmacAlgorithm::Sha512 => Self::Sha512(Hmac::new_from_slice(key)?),
        })
    }

    /// MAC over the concatenation of `parts`, without allocating the
    /// concatenation (the body can be large).
    fn compute(&self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + Clone>(mac: &M, parts: &[&[u8]]) -> Vec<u8> {
            let mut mac = mac.clone();
            for part in parts {
                mac.update(part);
            }
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            Self::Sha1(mac) => run(mac, parts),
            Self::Sha256(mac) => run(mac, parts),
            Self::Sha512(mac) => run(mac, parts),
        }
    }
}

// === impl KeyRing ===

impl KeyRing {
    /// Keys are the secret strings' bytes used as-is (Stripe, GitHub,
    /// Shopify, Slack, generic HMAC).
    pub(crate) fn raw(
        cfg: &VerificationConfig,
        algorithm: HmacAlgorithm,
    ) -> Result<Self, VerifyConfigError> {
        Self::new(algorithm, cfg.all_secrets().map(str::as_bytes))
    }

    pub(crate) fn new<'a>(
        algorithm: HmacAlgorithm,
        keys: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Self, VerifyConfigError> {
        let keys = keys
            .into_iter()
            .map(|key| MacKey::new(algorithm, key))
            .collect::<Result<Vec<_>, _>>()
            // HMAC accepts keys of any length, so this is unreachable in
            // practice; still reported rather than unwrapped.
            .map_err(|_| {
                VerifyConfigError::Invalid(vec![FieldProblem::new(
                    "secret",
                    "secret cannot be used as an HMAC key",
                )])
            })?;
        Ok(Self { keys })
    }

    /// True if any key's MAC over `parts` equals any candidate.
    ///
    /// Each comparison is constant-time. Returning at the first match only
    /// reveals which key/candidate matched, which is not secret.
    pub(crate) fn matches_any(&self, parts: &[&[u8]], candidates: &[Vec<u8>]) -> bool {
        self.keys.iter().any(|key| {
            let mac = key.compute(parts);
            candidates
                .iter()
                .any(|candidate| bool::from(mac.as_slice().ct_eq(candidate.as_slice())))
        })
    }
}

impl fmt::Debug for KeyRing {
    // Key material never reaches logs; only how many keys there are.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("keys", &self.keys.len())
            .finish()
    }
}

/// Parses a unix timestamp in whole seconds: ASCII digits only (surrounding
/// whitespace tolerated), no sign, no fraction.
pub(crate) fn parse_unix_seconds(raw: &[u8]) -> Option<i64> {
    let raw = raw.trim_ascii();
    if raw.is_empty() || raw.len() > MAX_TIMESTAMP_DIGITS {
        return None;
    }
    raw.iter().try_fold(0_i64, |acc, b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(i64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// Symmetric window: too old is a replay, too far ahead is a clock problem
/// or a pre-signed request; both are refused. Exactly `tolerance_s` passes.
pub(crate) fn check_tolerance(
    timestamp: i64,
    now_unix_s: i64,
    tolerance_s: u64,
) -> Result<(), VerifyError> {
    let age_s = now_unix_s.saturating_sub(timestamp);
    if age_s.unsigned_abs() > tolerance_s {
        Err(VerifyError::TimestampOutOfTolerance { age_s })
    } else {
        Ok(())
    }
}

/// First value of a header as bytes. Repeated headers are not merged:
/// a signature split over several lines is not a format any provider uses.
pub(crate) fn header_bytes<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a [u8]> {
    headers.get(name).map(|value| value.as_bytes())
}

/// A header value usable as an index key (see [`index_key`]).
pub(crate) fn header_key(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    header_bytes(headers, name)
        .and_then(|raw| std::str::from_utf8(raw).ok())
        .and_then(index_key)
}

/// Keeps `s` only if it is fit to be an index key: non-empty, at most
/// [`MAX_KEY_LEN`] bytes, no control characters. Anything else is dropped
/// rather than truncated, so two different values never collide.
pub(crate) fn index_key(s: &str) -> Option<String> {
    if s.is_empty() || s.len() > MAX_KEY_LEN || s.chars().any(char::is_control) {
        None
    } else {
        Some(s.to_owned())
    }
}

/// The body as JSON, or `None` when it is not JSON. Callers only ask when
/// their provider actually reads fields from the body.
pub(crate) fn parse_json(body: &[u8]) -> Option<Value> {
    serde_json::from_slice(body).ok()
}

/// The string values of top-level `keys` of a JSON object body, each as an index key.
///
/// The hot path of every provider that reads its event type from the body: unlike
/// [`parse_json`], nothing else in the body is materialised (other values are skipped as
/// `IgnoredAny`), so a large payload costs a scan, not a tree of allocations. A body that is
/// not a JSON object yields all `None`.
pub(crate) fn top_level_strings<const N: usize>(
    body: &[u8],
    keys: [&str; N],
) -> [Option<String>; N] {
    use std::borrow::Cow;
    use std::fmt;

    use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};

    struct Fields<'k, const N: usize>(&'k [&'k str; N]);

    impl<'de, const N: usize> Visitor<'de> for Fields<'_, N> {
        type Value = [Option<String>; N];

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out: [Option<String>; N] = std::array::from_fn(|_| None);
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                match self.0.iter().position(|k| *k == key) {
                    Some(i) if out[i].is_none() => {
                        // A non-string value under a wanted key is simply not usable.
                        let value: serde_json::Value = map.next_value()?;
                        out[i] = value.as_str().and_then(index_key);
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(out)
        }
    }

    impl<'de, const N: usize> DeserializeSeed<'de> for Fields<'_, N> {
        type Value = [Option<String>; N];

        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }

    let mut de = serde_json::Deserializer::from_slice(body);
    Fields(&keys)
        .deserialize(&mut de)
        .ok()
        .filter(|_| de.end().is_ok())
        .unwrap_or_else(|| std::array::from_fn(|_| None))
}

/// String at an RFC 6901 pointer, as an index key.
pub(crate) fn json_key(value: &Value, pointer: &str) -> Option<String> {
    value.pointer(pointer)?.as_str().and_then(index_key)
}

#[cfg(test)]
mod top_level_tests {
    use super::*;

    #[test]
    fn top_level_strings_reads_only_top_level_string_fields() {
        let body = br#"{"data":{"type":"nested"},"id":"evt_1","type":"invoice.paid","n":[1,2,{"x":null}]}"#;
        assert_eq!(
            top_level_strings(body, ["type", "id", "missing"]),
            [Some("invoice.paid".into()), Some("evt_1".into()), None]
        );
        assert_eq!(top_level_strings(br#"{"type":7}"#, ["type"]), [None]);
        assert_eq!(
            top_level_strings(br#"{"type":"a\u0041"}"#, ["type"]),
            [Some("aA".into())]
        );
        for bad in [
            &b"not json"[..],
            b"[1,2]",
            b"{\"type\":\"a\"",
            b"{\"type\":\"a\"} trailing",
            b"",
        ] {
            assert_eq!(top_level_strings(bad, ["type"]), [None], "{bad:?}");
        }
        // The same answers as the general path.
        let v = parse_json(body).unwrap();
        assert_eq!(json_key(&v, "/type"), top_level_strings(body, ["type"])[0]);
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Test helpers. Expected MACs are computed straight from the `hmac`
    //! crate, independently of [`KeyRing`], so tests do not grade the code
    //! with its own answer key.

    use hmac::{Hmac, Mac};
    use http::{HeaderMap, HeaderName, HeaderValue};
    use sha1::Sha1;
    use sha2::{Sha256, Sha512};

    use crate::verify::{build, Provider, Unverified, VerificationConfig, Verified, VerifyError};

    pub(crate) fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(msg);
        mac.finalize().into_bytes().to_vec()
    }

    pub(crate) fn hmac_sha1(key: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha1>::new_from_slice(key).unwrap();
        mac.update(msg);
        mac.finalize().into_bytes().to_vec()
    }

    pub(crate) fn hmac_sha512(key: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha512>::new_from_slice(key).unwrap();
        mac.update(msg);
        mac.finalize().into_bytes().to_vec()
    }

    pub(crate) fn config(provider: Provider, secrets: &[&str]) -> VerificationConfig {
        let mut cfg = VerificationConfig::new(provider);
        let mut secrets = secrets.iter().map(|s| (*s).to_owned());
        cfg.secret = secrets.next();
        cfg.secrets = secrets.collect();
        cfg
    }

    pub(crate) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    /// Builds `cfg` and runs one verification.
    pub(crate) fn verify(
        cfg: &VerificationConfig,
        headers: &HeaderMap,
        body: &[u8],
        now_unix_s: i64,
    ) -> Result<Verified, VerifyError> {
        let verifier = match build(cfg) {
            Ok(v) => v,
            Err(err) => panic!("test config must build: {err}"),
        };
        verifier.verify(&Unverified {
            headers,
            body,
            now_unix_s,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::testing::hmac_sha256;
    use super::*;

    #[test]
    fn unix_seconds_accepts_digits_only() {
        assert_eq!(parse_unix_seconds(b"1614265330"), Some(1_614_265_330));
        assert_eq!(parse_unix_seconds(b" 42 "), Some(42));
        assert_eq!(parse_unix_seconds(b"0"), Some(0));
        for bad in [
            &b""[..],
            b"-5",
            b"+5",
            b"1.5",
            b"12a",
            b"1 2",
            b"9999999999999999999",
            b"\xff",
        ] {
            assert_eq!(parse_unix_seconds(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn tolerance_is_symmetric_and_inclusive() {
        assert!(check_tolerance(1000, 1300, 300).is_ok());
        assert!(check_tolerance(1300, 1000, 300).is_ok());
        assert_eq!(
            check_tolerance(1000, 1301, 300),
            Err(VerifyError::TimestampOutOfTolerance { age_s: 301 })
        );
        assert_eq!(
            check_tolerance(1301, 1000, 300),
            Err(VerifyError::TimestampOutOfTolerance { age_s: -301 })
        );
    }

    #[test]
    fn tolerance_survives_extreme_clocks() {
        assert!(check_tolerance(0, i64::MIN, 300).is_err());
        assert!(check_tolerance(i64::MAX, i64::MIN, u64::MAX).is_ok());
        assert!(check_tolerance(i64::MAX, i64::MIN, 300).is_err());
    }

    #[test]
    fn index_key_drops_empty_long_and_control_values() {
        assert_eq!(index_key("invoice.paid").as_deref(), Some("invoice.paid"));
        assert_eq!(index_key("ünïcode").as_deref(), Some("ünïcode"));
        assert_eq!(index_key(""), None);
        assert_eq!(
            index_key(&"a".repeat(MAX_KEY_LEN)).map(|s| s.len()),
            Some(256)
        );
        assert_eq!(index_key(&"a".repeat(MAX_KEY_LEN + 1)), None);
        assert_eq!(index_key("a\nb"), None);
        assert_eq!(index_key("a\tb"), None);
        assert_eq!(index_key("a\u{7f}"), None);
        assert_eq!(index_key("a\u{85}"), None);
    }

    #[test]
    fn key_ring_matches_any_key_and_any_candidate() {
        let ring = KeyRing::new(HmacAlgorithm::Sha256, [&b"old"[..], b"new"]).unwrap();
        let good = hmac_sha256(b"new", b"a.b");
        assert!(ring.matches_any(&[b"a", b".", b"b"], &[vec![1, 2, 3], good.clone()]));
        assert!(!ring.matches_any(&[b"a.c"], std::slice::from_ref(&good)));
        // Truncated candidate: wrong length fails instead of comparing a prefix.
        assert!(!ring.matches_any(&[b"a.b"], &[good[..16].to_vec()]));
        assert!(!ring.matches_any(&[b"a.b"], &[Vec::new()]));
        assert!(!ring.matches_any(&[b"a.b"], &[]));
    }

    #[test]
    fn key_ring_debug_hides_keys() {
        let ring = KeyRing::new(HmacAlgorithm::Sha256, [&b"topsecret"[..]]).unwrap();
        let debug = format!("{ring:?}");
        assert!(!debug.contains("topsecret"), "{debug}");
    }

    #[test]
    fn base64_accepts_padded_and_unpadded() {
        use base64::Engine as _;
        assert_eq!(BASE64.decode("aw==").unwrap(), b"k");
        assert_eq!(BASE64.decode("aw").unwrap(), b"k");
        assert!(BASE64.decode("a w").is_err());
    }
}
