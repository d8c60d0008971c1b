//! Inbound webhook signature verification for `POST /ingest/<token>`.
//!
//! Owns the provider-neutral contract: the per-source [`VerificationConfig`]
//! (re-exported from `config`), [`build`] which turns a config into a
//! [`Verifier`], the [`Unverified`] → [`Verified`] typestate and the
//! [`VerifyError`] taxonomy. Each provider's scheme lives in its own file
//! behind the one [`Verifier`] trait.
//!
//! Invariants:
//! - A [`Verified`] exists only if a verifier in this module accepted the
//!   request: its fields are private and its constructor is private to this
//!   module tree, so the rest of the crate cannot forge one.
//! - Verification is a pure function of (config, headers, body, `now`): no
//!   clock reads and no I/O, which keeps it deterministic and testable.
//! - MACs are compared in constant time (`subtle`); a candidate of the wrong
//!   length simply fails. Header parsing never panics on any input.
//! - Secrets are decoded and keyed once in [`build`], never per request.
//! - A valid signature is checked before the timestamp, so
//!   `timestamp_out_of_tolerance` always means "authentic but stale or
//!   early" (a replay or clock skew), never "forged".
//! - Event type and delivery id are best effort: once the signature passed,
//!   a missing or unusable value is `None`, never an error.
//!
//! Deliberately does not: route requests, read the clock, limit body size,
//! deduplicate deliveries (it only extracts the delivery id), or log.

mod common;
mod config;
pub mod generic;
pub mod github;
pub mod none;
pub mod shopify;
pub mod slack;
pub mod standard;
pub mod stripe;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use http::HeaderMap;

pub use common::Malformed;
pub use config::{
    mask_secret, FieldProblem, HmacAlgorithm, Provider, SignatureEncoding, VerificationConfig,
    DEFAULT_TOLERANCE_S, MAX_SECRETS, MAX_SECRET_LEN, MAX_TOLERANCE_S,
};

/// Longest event type or delivery id kept; they later become index keys.
pub const MAX_KEY_LEN: usize = 256;

/// Validates `cfg` and builds the verifier for its provider.
///
/// Secrets are decoded and keyed here once, so [`Verifier::verify`] does no
/// per-request base64 or key setup.
pub fn build(cfg: &VerificationConfig) -> Result<Arc<dyn Verifier>, VerifyConfigError> {
    cfg.validate().map_err(VerifyConfigError::Invalid)?;
    let tolerance_s = cfg.tolerance_s.unwrap_or(DEFAULT_TOLERANCE_S);
    let verifier: Arc<dyn Verifier> = match cfg.provider {
        Provider::Stripe => Arc::new(stripe::StripeVerifier::new(
            common::KeyRing::raw(cfg, HmacAlgorithm::Sha256)?,
            tolerance_s,
        )),
        Provider::Github => Arc::new(github::GithubVerifier::new(common::KeyRing::raw(
            cfg,
            HmacAlgorithm::Sha256,
        )?)),
        Provider::Shopify => Arc::new(shopify::ShopifyVerifier::new(common::KeyRing::raw(
            cfg,
            HmacAlgorithm::Sha256,
        )?)),
        Provider::StandardWebhooks => Arc::new(standard::StandardVerifier::new(
            standard::key_ring(cfg)?,
            tolerance_s,
        )),
        Provider::Slack => Arc::new(slack::SlackVerifier::new(
            common::KeyRing::raw(cfg, HmacAlgorithm::Sha256)?,
            tolerance_s,
        )),
        Provider::Hmac => Arc::new(generic::GenericVerifier::new(cfg)?),
        Provider::None => Arc::new(none::NoneVerifier),
    };
    Ok(verifier)
}

/// One provider's signature scheme, built from a validated config.
pub trait Verifier: Send + Sync + 'static {
    /// The provider this verifier implements.
    fn provider(&self) -> Provider;

    /// Checks the request's signature; on success extracts the event type and
    /// delivery id. `req.now_unix_s` is the only notion of time used.
    fn verify(&self, req: &Unverified<'_>) -> Result<Verified, VerifyError>;
}

/// A request as received: nothing about it is trusted yet.
#[derive(Clone, Copy)]
pub struct Unverified<'a> {
    pub headers: &'a HeaderMap,
    /// The raw body bytes exactly as received; signatures cover these bytes.
    pub body: &'a [u8],
    /// Caller's clock, in unix seconds, for timestamp tolerance checks.
    pub now_unix_s: i64,
}

/// Proof that a request passed its source's verification, plus what was
/// extracted from it. Only constructible inside `verify/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    event_type: Option<String>,
    delivery_id: Option<String>,
    provider: Provider,
}

/// Why a request was rejected. [`VerifyError::reason`] is the stable code.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// A header the scheme needs is absent. `header` is its canonical name
    /// (for the generic `hmac` provider: the name as configured).
    #[error("missing signature header {header}")]
    MissingSignatureHeader { header: Cow<'static, str> },
    #[error("malformed signature header {header}: {reason}")]
    MalformedSignatureHeader {
        header: Cow<'static, str>,
        reason: &'static str,
    },
    #[error("signature mismatch")]
    SignatureMismatch,
    /// The signature was valid but the signed timestamp is too far from
    /// `now`. `age_s` is `now - timestamp`: negative means from the future.
    #[error("timestamp out of tolerance (age {age_s} s)")]
    TimestampOutOfTolerance { age_s: i64 },
}

/// [`build`] refused a config.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum VerifyConfigError {
    #[error("invalid verification config: {}", join_problems(.0))]
    Invalid(Vec<FieldProblem>),
}

fn join_problems(problems: &[FieldProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

// === impl Unverified ===

impl fmt::Debug for Unverified<'_> {
    // Sizes only: the body is untrusted and may be large or sensitive.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unverified")
            .field("headers", &self.headers.len())
            .field("body_len", &self.body.len())
            .field("now_unix_s", &self.now_unix_s)
            .finish()
    }
}

// === impl Verified ===

impl Verified {
    // Private on purpose: child modules (the providers) can call it, the rest
    // of the crate cannot.
    fn new(provider: Provider, event_type: Option<String>, delivery_id: Option<String>) -> Self {
        Self {
            event_type,
            delivery_id,
            provider,
        }
    }

    /// Event type, e.g. `invoice.paid`, `pull_request.opened`, `orders/create`.
    pub fn event_type(&self) -> Option<&str> {
        self.event_type.as_deref()
    }

    /// The provider's id for this delivery, stable across its retries.
    pub fn delivery_id(&self) -> Option<&str> {
        self.delivery_id.as_deref()
    }

    pub fn provider(&self) -> Provider {
        self.provider
    }
}

// === impl VerifyError ===

impl VerifyError {
    /// Stable snake_case code, used as the HTTP error code and metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingSignatureHeader { .. } => "missing_signature_header",
            Self::MalformedSignatureHeader { .. } => "malformed_signature_header",
            Self::SignatureMismatch => "signature_mismatch",
            Self::TimestampOutOfTolerance { .. } => "timestamp_out_of_tolerance",
        }
    }

    pub(crate) fn missing(header: impl Into<Cow<'static, str>>) -> Self {
        Self::MissingSignatureHeader {
            header: header.into(),
        }
    }
}

// === impl VerifyConfigError ===

impl VerifyConfigError {
    pub fn problems(&self) -> &[FieldProblem] {
        match self {
            Self::Invalid(problems) => problems,
        }
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderName, HeaderValue};

    use super::common::testing::{config, hmac_sha256};
    use super::*;

    #[test]
    fn reasons_are_the_documented_codes() {
        let cases = [
            (VerifyError::missing("X"), "missing_signature_header"),
            (
                VerifyError::MalformedSignatureHeader {
                    header: "X".into(),
                    reason: "r",
                },
                "malformed_signature_header",
            ),
            (VerifyError::SignatureMismatch, "signature_mismatch"),
            (
                VerifyError::TimestampOutOfTolerance { age_s: -5 },
                "timestamp_out_of_tolerance",
            ),
        ];
        for (err, reason) in cases {
            assert_eq!(err.reason(), reason);
        }
    }

    #[test]
    fn display_names_the_header() {
        let err = VerifyError::missing("X-Hub-Signature-256");
        assert_eq!(
            err.to_string(),
            "missing signature header X-Hub-Signature-256"
        );
    }

    #[test]
    fn build_rejects_invalid_config_with_field_problems() {
        let cfg = VerificationConfig::new(Provider::Github);
        let Err(err) = build(&cfg) else {
            panic!("config without secret must not build");
        };
        assert_eq!(err.problems()[0].field, "secret");
        assert!(err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn every_provider_builds_and_reports_itself() {
        let providers = [
            (Provider::Stripe, "whsec_test"),
            (Provider::Github, "s"),
            (Provider::Shopify, "s"),
            (Provider::StandardWebhooks, "whsec_c2VjcmV0"),
            (Provider::Slack, "s"),
        ];
        for (provider, secret) in providers {
            let Ok(v) = build(&config(provider, &[secret])) else {
                panic!("{provider} must build");
            };
            assert_eq!(v.provider(), provider);
        }
        let mut hmac = config(Provider::Hmac, &["s"]);
        hmac.header = Some("X-Signature".into());
        assert!(build(&hmac).is_ok_and(|v| v.provider() == Provider::Hmac));
        let none = VerificationConfig::new(Provider::None);
        assert!(build(&none).is_ok_and(|v| v.provider() == Provider::None));
    }

    #[test]
    fn unverified_debug_shows_sizes_not_content() {
        let headers = HeaderMap::new();
        let req = Unverified {
            headers: &headers,
            body: b"card=4242424242424242",
            now_unix_s: 7,
        };
        let debug = format!("{req:?}");
        assert!(!debug.contains("4242"), "{debug}");
        assert!(debug.contains("body_len: 21"), "{debug}");
    }

    #[test]
    fn verified_carries_the_provider() {
        let Ok(v) = build(&config(Provider::Github, &["k"])) else {
            panic!("builds");
        };
        let body = b"{}";
        let sig = format!("sha256={}", hex::encode(hmac_sha256(b"k", body)));
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("x-hub-signature-256"),
            HeaderValue::from_str(&sig).unwrap(),
        );
        let req = Unverified {
            headers: &headers,
            body,
            now_unix_s: 0,
        };
        let verified = v.verify(&req).unwrap();
        assert_eq!(verified.provider(), Provider::Github);
        assert_eq!(verified.event_type(), None);
        assert_eq!(verified.delivery_id(), None);
    }

    /// Cheap deterministic stand-in for a fuzzer: random bytes biased towards
    /// the separators the parsers split on must never panic any verifier.
    #[test]
    fn arbitrary_headers_and_bodies_never_panic() {
        let alphabet: &[u8] = b",=. ;:v1v0t0123456789abcdefABCDEF+/whsec_sha256=\t\x80\xff\"{}";
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let header_names = [
            "stripe-signature",
            "x-hub-signature-256",
            "x-shopify-hmac-sha256",
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "svix-id",
            "svix-timestamp",
            "svix-signature",
            "x-slack-signature",
            "x-slack-request-timestamp",
            "x-signature",
            "x-github-event",
            "x-shopify-topic",
        ];
        let mut generic = config(Provider::Hmac, &["k"]);
        generic.header = Some("X-Signature".into());
        generic.prefix = Some("sha256=".into());
        generic.event_type_header = Some("X-Github-Event".into());
        let verifiers = [
            build(&config(Provider::Stripe, &["k"])),
            build(&config(Provider::Github, &["k"])),
            build(&config(Provider::Shopify, &["k"])),
            build(&config(Provider::StandardWebhooks, &["whsec_aw=="])),
            build(&config(Provider::Slack, &["k"])),
            build(&generic),
            build(&VerificationConfig::new(Provider::None)),
        ];
        let verifiers: Vec<_> = verifiers.into_iter().map(|v| v.ok().unwrap()).collect();
        for _ in 0..3000 {
            let mut headers = HeaderMap::new();
            for name in header_names {
                if next() % 3 == 0 {
                    continue;
                }
                let len = (next() % 80) as usize;
                let value: Vec<u8> = (0..len)
                    .map(|_| {
                        let r = next();
                        if r % 5 == 0 {
                            (r >> 8) as u8
                        } else {
                            alphabet[(r >> 8) as usize % alphabet.len()]
                        }
                    })
                    .collect();
                stripe::parse_header(&value).ok();
                standard::parse_signatures(&value).ok();
                github::parse_signature(&value).ok();
                slack::parse_signature(&value).ok();
                shopify::parse_signature(&value).ok();
                if let Ok(v) = HeaderValue::from_bytes(&value) {
                    headers.insert(HeaderName::from_static(name), v);
                }
            }
            let body_len = (next() % 64) as usize;
            let body: Vec<u8> = (0..body_len)
                .map(|_| alphabet[(next() >> 8) as usize % alphabet.len()])
                .collect();
            let req = Unverified {
                headers: &headers,
                body: &body,
                now_unix_s: (next() >> 1) as i64 - i64::MAX / 2,
            };
            for v in &verifiers {
                let _ = v.verify(&req);
            }
        }
    }
}
