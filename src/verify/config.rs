//! Per-source verification settings as stored and served by the API:
//! [`VerificationConfig`], its validation into [`FieldProblem`]s, and the
//! redaction used whenever a config is shown (API responses, `Debug`).
//!
//! Invariants: `Debug` never prints a secret, not even partially;
//! [`VerificationConfig::redacted`] keeps at most a short non-secret-looking
//! prefix; [`VerificationConfig::validate`] reports every problem at once,
//! each under a field path relative to the config (`secret`, `secrets[1]`,
//! `header`, ...), so the caller can prefix it with where the config lives.
//!
//! Deliberately does not build verifiers (see `build` in the parent) nor
//! decide defaults beyond the documented ones.

use std::fmt;

use http::HeaderName;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::standard;

/// Timestamp tolerance when `tolerance_s` is not set.
pub const DEFAULT_TOLERANCE_S: u64 = 300;
/// Largest accepted `tolerance_s` (one day).
pub const MAX_TOLERANCE_S: u64 = 86_400;
/// Most secrets one source may hold (`secret` plus `secrets`).
pub const MAX_SECRETS: usize = 5;
/// Longest accepted secret, in bytes.
pub const MAX_SECRET_LEN: usize = 1024;

/// Scheme prefixes that carry no secret material and tell the operator what kind of secret it is.
const MASK_KNOWN_PREFIXES: &[&str] = &["whsec_"];
/// Secrets (after a known prefix) at least this long show their last [`MASK_TAIL_CHARS`]
/// characters, so two secrets can be told apart during a rotation. Machine-generated secrets
/// are this long; a human-chosen one usually is not, and shows nothing.
const MASK_TAIL_MIN_CHARS: usize = 32;
const MASK_TAIL_CHARS: usize = 4;

/// Which signature scheme a source uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Stripe,
    Github,
    Shopify,
    /// Standard Webhooks; also accepts Svix's `svix-*` headers.
    StandardWebhooks,
    Slack,
    /// Generic HMAC over the raw body with a configurable header.
    Hmac,
    /// No verification at all.
    None,
}

/// Digest for the generic `hmac` provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HmacAlgorithm {
    #[default]
    Sha256,
    Sha1,
    Sha512,
}

/// How the generic `hmac` provider's signature is encoded in its header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignatureEncoding {
    #[default]
    Hex,
    /// Standard alphabet; padding optional.
    Base64,
}

/// How a source's inbound webhooks are authenticated.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerificationConfig {
    pub provider: Provider,
    /// Signing secret. Used as-is as the HMAC key, except for
    /// `standard_webhooks` where it is base64 after an optional `whsec_`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Further secrets accepted during a rotation; any one passing is enough.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Allowed distance between the signed timestamp and now, both ways
    /// (default 300). Ignored by schemes that sign no timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance_s: Option<u64>,
    /// `hmac` only: header carrying the signature (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// `hmac` only: prefix stripped from the header value, e.g. `sha256=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// `hmac` only: digest, default `sha256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<HmacAlgorithm>,
    /// `hmac` only: signature encoding, default `hex`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<SignatureEncoding>,
    /// `hmac` only: header holding the event type (checked first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type_header: Option<String>,
    /// `hmac` only: RFC 6901 JSON pointer to the event type in the body,
    /// e.g. `/event/type` (used when the header is absent or unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type_pointer: Option<String>,
    /// `hmac` only: header holding the delivery id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id_header: Option<String>,
}

/// One thing wrong with a config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldProblem {
    /// Path relative to the config: `secret`, `secrets[2]`, `header`, ...
    pub field: String,
    pub message: String,
}

/// Masks a secret for display: the first 6 characters followed by `…`, or
/// just `…` when the secret is shorter than 12 characters (a 6-character
/// prefix of a short secret would give away too much of it).
pub fn mask_secret(secret: &str) -> String {
    let prefix = MASK_KNOWN_PREFIXES
        .iter()
        .find(|p| secret.starts_with(**p))
        .copied()
        .unwrap_or("");
    let rest = &secret[prefix.len()..];
    let n = rest.chars().count();
    if n < MASK_TAIL_MIN_CHARS {
        return format!("{prefix}…");
    }
    let tail: String = rest.chars().skip(n - MASK_TAIL_CHARS).collect();
    format!("{prefix}…{tail}")
}

// === impl Provider ===

impl Provider {
    /// The serde name, also used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stripe => "stripe",
            Self::Github => "github",
            Self::Shopify => "shopify",
            Self::StandardWebhooks => "standard_webhooks",
            Self::Slack => "slack",
            Self::Hmac => "hmac",
            Self::None => "none",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl FieldProblem ===

impl FieldProblem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

// === impl VerificationConfig ===

impl VerificationConfig {
    /// A config for `provider` with every optional field unset.
    pub fn new(provider: Provider) -> Self {
        Self {
            provider,
            secret: None,
            secrets: Vec::new(),
            tolerance_s: None,
            header: None,
            prefix: None,
            algorithm: None,
            encoding: None,
            event_type_header: None,
            event_type_pointer: None,
            delivery_id_header: None,
        }
    }

    /// `secret` first, then `secrets` in order.
    pub fn all_secrets(&self) -> impl Iterator<Item = &str> {
        self.secret
            .as_deref()
            .into_iter()
            .chain(self.secrets.iter().map(String::as_str))
    }

    /// Every problem with this config, or `Ok` if there is none.
    pub fn validate(&self) -> Result<(), Vec<FieldProblem>> {
        let mut problems = Vec::new();
        self.validate_secrets(&mut problems);
        if let Some(tolerance) = self.tolerance_s {
            if !(1..=MAX_TOLERANCE_S).contains(&tolerance) {
                problems.push(FieldProblem::new(
                    "tolerance_s",
                    format!("must be between 1 and {MAX_TOLERANCE_S} seconds"),
                ));
            }
        }
        if self.provider == Provider::Hmac {
            self.validate_generic(&mut problems);
        } else {
            for field in self.generic_fields_set() {
                problems.push(FieldProblem::new(
                    field,
                    format!(
                        "only valid for provider hmac, not {provider}",
                        provider = self.provider
                    ),
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// A copy fit for API responses: every secret replaced by
    /// [`mask_secret`]. Everything else is kept.
    pub fn redacted(&self) -> VerificationConfig {
        VerificationConfig {
            secret: self.secret.as_deref().map(mask_secret),
            secrets: self.secrets.iter().map(|s| mask_secret(s)).collect(),
            ..self.clone()
        }
    }

    /// Secrets with the field path each is reported under.
    fn secret_fields(&self) -> impl Iterator<Item = (String, &str)> {
        self.secret
            .as_deref()
            .map(|s| ("secret".to_owned(), s))
            .into_iter()
            .chain(
                self.secrets
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (format!("secrets[{i}]"), s.as_str())),
            )
    }

    fn validate_secrets(&self, problems: &mut Vec<FieldProblem>) {
        let count = self.all_secrets().count();
        if self.provider == Provider::None {
            // A secret on an unverified source suggests the operator expects
            // verification that will not happen.
            if self.secret.is_some() {
                problems.push(FieldProblem::new(
                    "secret",
                    "provider none verifies nothing; remove the secret or pick a provider",
                ));
            }
            if !self.secrets.is_empty() {
                problems.push(FieldProblem::new(
                    "secrets",
                    "provider none verifies nothing; remove the secrets or pick a provider",
                ));
            }
            return;
        }
        if count == 0 {
            problems.push(FieldProblem::new(
                "secret",
                format!("required for provider {}", self.provider),
            ));
        }
        if count > MAX_SECRETS {
            problems.push(FieldProblem::new(
                "secrets",
                format!("at most {MAX_SECRETS} secrets in total (secret + secrets), got {count}"),
            ));
        }
        for (field, secret) in self.secret_fields() {
            if secret.is_empty() {
                problems.push(FieldProblem::new(field, "must not be empty"));
            } else if secret.len() > MAX_SECRET_LEN {
                problems.push(FieldProblem::new(
                    field,
                    format!("must be at most {MAX_SECRET_LEN} bytes"),
                ));
            } else if self.provider == Provider::StandardWebhooks
                && standard::decode_secret(secret).is_err()
            {
                problems.push(FieldProblem::new(
                    field,
                    "must be base64, optionally prefixed with whsec_ (as shown by the sender)",
                ));
            }
        }
    }

    fn validate_generic(&self, problems: &mut Vec<FieldProblem>) {
        match &self.header {
            None => problems.push(FieldProblem::new("header", "required for provider hmac")),
            Some(name) => check_header_name("header", name, problems),
        }
        if let Some(name) = &self.event_type_header {
            check_header_name("event_type_header", name, problems);
        }
        if let Some(name) = &self.delivery_id_header {
            check_header_name("delivery_id_header", name, problems);
        }
        if let Some(pointer) = &self.event_type_pointer {
            if !pointer.is_empty() && !pointer.starts_with('/') {
                problems.push(FieldProblem::new(
                    "event_type_pointer",
                    "must be a JSON pointer (RFC 6901) starting with '/', e.g. /event/type",
                ));
            }
        }
    }

    /// Names of the `hmac`-only fields that are set.
    fn generic_fields_set(&self) -> Vec<&'static str> {
        let Self {
            header,
            prefix,
            algorithm,
            encoding,
            event_type_header,
            event_type_pointer,
            delivery_id_header,
            ..
        } = self;
        [
            ("header", header.is_some()),
            ("prefix", prefix.is_some()),
            ("algorithm", algorithm.is_some()),
            ("encoding", encoding.is_some()),
            ("event_type_header", event_type_header.is_some()),
            ("event_type_pointer", event_type_pointer.is_some()),
            ("delivery_id_header", delivery_id_header.is_some()),
        ]
        .into_iter()
        .filter_map(|(field, set)| set.then_some(field))
        .collect()
    }
}

fn check_header_name(field: &str, name: &str, problems: &mut Vec<FieldProblem>) {
    if HeaderName::from_bytes(name.as_bytes()).is_err() {
        problems.push(FieldProblem::new(field, "not a valid HTTP header name"));
    }
}

/// Stands in for a secret in `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Debug for VerificationConfig {
    // Destructured so that adding a field forces a decision here.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            provider,
            secret,
            secrets,
            tolerance_s,
            header,
            prefix,
            algorithm,
            encoding,
            event_type_header,
            event_type_pointer,
            delivery_id_header,
        } = self;
        let masked: Vec<Redacted> = secrets.iter().map(|_| Redacted).collect();
        f.debug_struct("VerificationConfig")
            .field("provider", provider)
            .field("secret", &secret.as_ref().map(|_| Redacted))
            .field("secrets", &masked)
            .field("tolerance_s", tolerance_s)
            .field("header", header)
            .field("prefix", prefix)
            .field("algorithm", algorithm)
            .field("encoding", encoding)
            .field("event_type_header", event_type_header)
            .field("event_type_pointer", event_type_pointer)
            .field("delivery_id_header", delivery_id_header)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::common::testing::config;

    fn fields(cfg: &VerificationConfig) -> Vec<String> {
        match cfg.validate() {
            Ok(()) => Vec::new(),
            Err(problems) => problems.into_iter().map(|p| p.field).collect(),
        }
    }

    fn generic(header: &str) -> VerificationConfig {
        let mut cfg = config(Provider::Hmac, &["s3cret"]);
        cfg.header = Some(header.to_owned());
        cfg
    }

    #[test]
    fn minimal_configs_are_valid() {
        assert!(config(Provider::Stripe, &["whsec_abc"]).validate().is_ok());
        assert!(config(Provider::Github, &["x"]).validate().is_ok());
        assert!(VerificationConfig::new(Provider::None).validate().is_ok());
        assert!(generic("X-Signature").validate().is_ok());
        assert!(config(Provider::StandardWebhooks, &["whsec_aw=="])
            .validate()
            .is_ok());
    }

    #[test]
    fn deserializes_snake_case_and_rejects_unknown_fields() {
        let cfg: VerificationConfig = serde_json::from_str(
            r#"{"provider":"standard_webhooks","secret":"whsec_aw==","tolerance_s":60}"#,
        )
        .unwrap();
        assert_eq!(cfg.provider, Provider::StandardWebhooks);
        assert_eq!(cfg.tolerance_s, Some(60));
        let unknown =
            serde_json::from_str::<VerificationConfig>(r#"{"provider":"github","secert":"x"}"#);
        assert!(unknown.is_err());
        let generic: VerificationConfig = serde_json::from_str(
            r#"{"provider":"hmac","secret":"k","header":"X-Sig","algorithm":"sha512","encoding":"base64"}"#,
        )
        .unwrap();
        assert_eq!(generic.algorithm, Some(HmacAlgorithm::Sha512));
        assert_eq!(generic.encoding, Some(SignatureEncoding::Base64));
    }

    #[test]
    fn serialization_omits_unset_fields() {
        let json = serde_json::to_string(&config(Provider::Github, &["x"])).unwrap();
        assert_eq!(json, r#"{"provider":"github","secret":"x"}"#);
    }

    #[test]
    fn every_provider_but_none_needs_a_secret() {
        for provider in [
            Provider::Stripe,
            Provider::Github,
            Provider::Shopify,
            Provider::StandardWebhooks,
            Provider::Slack,
        ] {
            assert_eq!(fields(&VerificationConfig::new(provider)), ["secret"]);
        }
        let mut cfg = VerificationConfig::new(Provider::Github);
        cfg.secrets = vec!["only-rotation-list".into()];
        assert!(cfg.validate().is_ok());
    }

    #[test]
    fn empty_and_oversized_secrets_are_named_by_path() {
        let cfg = config(
            Provider::Github,
            &["", "fine", &"x".repeat(MAX_SECRET_LEN + 1)],
        );
        assert_eq!(fields(&cfg), ["secret", "secrets[1]"]);
        assert!(config(Provider::Github, &[&"x".repeat(MAX_SECRET_LEN)])
            .validate()
            .is_ok());
    }

    #[test]
    fn more_than_five_secrets_is_a_problem() {
        let five = config(Provider::Slack, &["a", "b", "c", "d", "e"]);
        assert!(five.validate().is_ok());
        let six = config(Provider::Slack, &["a", "b", "c", "d", "e", "f"]);
        assert_eq!(fields(&six), ["secrets"]);
    }

    #[test]
    fn standard_webhooks_secret_must_be_base64() {
        let cfg = config(
            Provider::StandardWebhooks,
            &["whsec_not base64!", "c2VjcmV0", "whsec_"],
        );
        assert_eq!(fields(&cfg), ["secret", "secrets[1]"]);
    }

    #[test]
    fn none_with_a_secret_is_a_problem() {
        assert_eq!(fields(&config(Provider::None, &["x"])), ["secret"]);
        let mut cfg = VerificationConfig::new(Provider::None);
        cfg.secrets = vec!["y".into()];
        assert_eq!(fields(&cfg), ["secrets"]);
    }

    #[test]
    fn tolerance_must_be_between_one_second_and_one_day() {
        for (tolerance, ok) in [(0, false), (1, true), (86_400, true), (86_401, false)] {
            let mut cfg = config(Provider::Stripe, &["k"]);
            cfg.tolerance_s = Some(tolerance);
            assert_eq!(cfg.validate().is_ok(), ok, "{tolerance}");
        }
    }

    #[test]
    fn generic_hmac_needs_a_valid_header_name() {
        assert_eq!(
            fields(&config(Provider::Hmac, &["k"])),
            ["header"],
            "missing header"
        );
        assert_eq!(fields(&generic("bad header")), ["header"]);
        assert_eq!(fields(&generic("")), ["header"]);
        let mut cfg = generic("X-Sig");
        cfg.event_type_header = Some("X Event".into());
        cfg.delivery_id_header = Some("X:Id".into());
        assert_eq!(fields(&cfg), ["event_type_header", "delivery_id_header"]);
    }

    #[test]
    fn event_type_pointer_must_start_with_slash_or_be_empty() {
        for (pointer, ok) in [("/type", true), ("", true), ("type", false)] {
            let mut cfg = generic("X-Sig");
            cfg.event_type_pointer = Some(pointer.into());
            assert_eq!(cfg.validate().is_ok(), ok, "{pointer}");
        }
    }

    #[test]
    fn generic_only_fields_on_other_providers_are_each_named() {
        let mut cfg = config(Provider::Github, &["k"]);
        cfg.header = Some("X-Sig".into());
        cfg.prefix = Some("sha256=".into());
        cfg.algorithm = Some(HmacAlgorithm::Sha1);
        cfg.encoding = Some(SignatureEncoding::Hex);
        cfg.event_type_header = Some("X-Event".into());
        cfg.event_type_pointer = Some("/type".into());
        cfg.delivery_id_header = Some("X-Id".into());
        assert_eq!(
            fields(&cfg),
            [
                "header",
                "prefix",
                "algorithm",
                "encoding",
                "event_type_header",
                "event_type_pointer",
                "delivery_id_header"
            ]
        );
    }

    #[test]
    fn validate_reports_all_problems_at_once() {
        let mut cfg = VerificationConfig::new(Provider::Hmac);
        cfg.tolerance_s = Some(0);
        assert_eq!(fields(&cfg), ["secret", "tolerance_s", "header"]);
    }

    #[test]
    fn debug_never_prints_secrets() {
        let cfg = config(
            Provider::Stripe,
            &["whsec_supersecretvalue", "whsec_othersecretvalue"],
        );
        let debug = format!("{cfg:?}");
        assert!(!debug.contains("supersecret"), "{debug}");
        assert!(!debug.contains("othersecret"), "{debug}");
        assert!(!debug.contains("whsec_"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
        assert!(debug.contains("Stripe"), "{debug}");
    }

    #[test]
    fn redacted_masks_every_secret_and_keeps_the_rest() {
        let mut cfg = config(Provider::Stripe, &["whsec_supersecretvalue", "short"]);
        cfg.tolerance_s = Some(60);
        let shown = cfg.redacted();
        assert_eq!(shown.secret.as_deref(), Some("whsec_…"));
        assert_eq!(shown.secrets, ["…"]);
        assert_eq!(shown.tolerance_s, Some(60));
        assert_eq!(shown.provider, Provider::Stripe);
    }

    #[test]
    fn mask_reveals_no_part_of_a_human_chosen_secret() {
        assert_eq!(mask_secret(""), "…");
        assert_eq!(mask_secret("It's a Secret to Everybody"), "…");
        assert_eq!(mask_secret("whsec_short"), "whsec_…");
        // Long (machine-generated) secrets show their last four characters, counted as chars.
        let long = format!("{}WXYZ", "k".repeat(28));
        assert_eq!(mask_secret(&long), "…WXYZ");
        assert_eq!(mask_secret(&format!("whsec_{long}")), "whsec_…WXYZ");
        assert_eq!(mask_secret(&"é".repeat(40)), "…éééé");
        assert_eq!(mask_secret(&"k".repeat(31)), "…");
    }

    #[test]
    fn all_secrets_yields_secret_then_rotation_list() {
        let cfg = config(Provider::Github, &["a", "b", "c"]);
        assert_eq!(cfg.all_secrets().collect::<Vec<_>>(), ["a", "b", "c"]);
    }

    #[test]
    fn provider_names_match_serde() {
        for provider in [
            Provider::Stripe,
            Provider::Github,
            Provider::Shopify,
            Provider::StandardWebhooks,
            Provider::Slack,
            Provider::Hmac,
            Provider::None,
        ] {
            let json = serde_json::to_string(&provider).unwrap();
            assert_eq!(json, format!("\"{provider}\""));
        }
    }
}
