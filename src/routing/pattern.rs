//! Event type names and the glob patterns that route on them.
//!
//! Owns two things: the syntax of an event type (`orders/create`,
//! `pull_request.opened`, `invoice.payment.failed`) and
//! [`EventTypePattern`], a comma-separated list of globs a route or
//! destination subscribes with (`invoice.*, customer.created`).
//!
//! Invariants:
//! - An [`EventTypePattern`] only exists in parsed, validated form; its
//!   serde form is the source string and deserialising re-validates, so a
//!   stored pattern can never bypass the limits below.
//! - Matching cannot backtrack exponentially: every glob is split on `*` at
//!   parse time into a prefix, ordered middle segments and a suffix, and a
//!   match is one anchored prefix/suffix check plus a greedy left-to-right
//!   scan for each middle segment. Greedy is correct here because `*` is the
//!   only wildcard, so the leftmost occurrence of a segment never rules out a
//!   match that a later occurrence would allow.
//! - `matches` does not allocate.
//!
//! Deliberately not here: `?`, character classes, escaping, negation, or
//! case-insensitive matching. Event types are case-sensitive identifiers
//! chosen by providers, and a smaller language is easier to reason about
//! when a route silently fails to match.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest accepted event type, in bytes.
pub const MAX_EVENT_TYPE_BYTES: usize = 256;
/// Longest accepted pattern source string (all globs, commas and spaces), in bytes.
pub const MAX_PATTERN_BYTES: usize = 256;
/// Most globs one pattern may list.
pub const MAX_GLOBS_PER_PATTERN: usize = 16;

/// Checks that `s` is a well-formed event type.
///
/// Allowed characters are ASCII letters, digits and `. _ : / -`, which
/// covers the naming schemes of the common providers (Shopify's
/// `orders/create`, GitHub's `pull_request.opened`, Stripe's
/// `invoice.payment_failed`) while keeping `*` and `,` free for patterns.
pub fn validate_event_type(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("event type must not be empty");
    }
    if s.len() > MAX_EVENT_TYPE_BYTES {
        return Err("event type must be at most 256 bytes");
    }
    if !s.bytes().all(is_event_type_byte) {
        return Err("event type may only contain letters, digits and . _ : / -");
    }
    Ok(())
}

fn is_event_type_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'/' | b'-')
}

/// Why a pattern string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("event type pattern must not be empty")]
    Empty,
    #[error("event type pattern is {len} bytes; at most {MAX_PATTERN_BYTES} are allowed")]
    TooLong { len: usize },
    #[error("event type pattern lists {count} globs; at most {MAX_GLOBS_PER_PATTERN} are allowed")]
    TooManyGlobs { count: usize },
    /// `position` is 1-based, as a person counts list items.
    #[error("event type pattern item {position} is empty (stray comma?)")]
    EmptyItem { position: usize },
    #[error(
        "event type pattern item {glob:?} contains {ch:?}; only letters, digits, . _ : / - and * are allowed"
    )]
    InvalidChar { glob: String, ch: char },
}

/// A parsed, validated list of event type globs; matches when any glob does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventTypePattern {
    /// Exactly what the user wrote; kept so the API echoes their spelling.
    source: String,
    globs: Vec<Glob>,
}

/// One glob, pre-split on `*` so matching needs no parsing and no allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Glob {
    /// No `*` at all: plain string equality.
    Exact(String),
    /// At least one `*`: `prefix*middle[0]*…*middle[n]*suffix`, where the
    /// middles are non-empty (runs of `**` collapse, as they match the same).
    Wild {
        prefix: String,
        middles: Vec<String>,
        suffix: String,
        /// Shortest text that can match; a cheap early reject and what keeps
        /// the prefix and suffix from overlapping.
        min_len: usize,
    },
}

// === impl EventTypePattern ===

impl EventTypePattern {
    /// Parses `a.*, b.created` style patterns; see the module docs for the rules.
    pub fn parse(s: &str) -> Result<Self, PatternError> {
        if s.trim().is_empty() {
            return Err(PatternError::Empty);
        }
        if s.len() > MAX_PATTERN_BYTES {
            return Err(PatternError::TooLong { len: s.len() });
        }
        // Counting before building means an oversized list is rejected
        // without doing any per-glob work.
        let count = s.split(',').count();
        if count > MAX_GLOBS_PER_PATTERN {
            return Err(PatternError::TooManyGlobs { count });
        }

        let mut globs = Vec::with_capacity(count);
        for (index, item) in s.split(',').enumerate() {
            let item = item.trim();
            if item.is_empty() {
                return Err(PatternError::EmptyItem {
                    position: index + 1,
                });
            }
            if let Some(ch) = item
                .chars()
                .find(|&c| !(c == '*' || (c.is_ascii() && is_event_type_byte(c as u8))))
            {
                return Err(PatternError::InvalidChar {
                    glob: item.to_owned(),
                    ch,
                });
            }
            globs.push(Glob::compile(item));
        }

        Ok(Self {
            source: s.to_owned(),
            globs,
        })
    }

    /// The pattern exactly as it was written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `event_type` matches any glob of this pattern.
    ///
    /// Accepts any string (including ones `validate_event_type` would
    /// reject); such strings simply fail to match unless a glob covers them.
    pub fn matches(&self, event_type: &str) -> bool {
        self.globs.iter().any(|glob| glob.matches(event_type))
    }
}

impl FromStr for EventTypePattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for EventTypePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Serialize for EventTypePattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for EventTypePattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        Self::parse(&source).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for EventTypePattern {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};

        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "Comma-separated event type globs; `*` matches any run of characters \
                 (including none). Up to 16 globs, 256 bytes in total.",
            ))
            .min_length(Some(1))
            .max_length(Some(MAX_PATTERN_BYTES))
            .pattern(Some(r"^[A-Za-z0-9._:/*, -]+$"))
            .examples(["invoice.*", "orders/create, orders/updated", "*"])
            .into()
    }
}

impl utoipa::ToSchema for EventTypePattern {}

// === impl Glob ===

impl Glob {
    /// Splits a validated, trimmed glob on `*`.
    fn compile(glob: &str) -> Self {
        let mut parts = glob.split('*');
        // `split` always yields at least one item, so this is never the fallback.
        let prefix = parts.next().unwrap_or_default();
        let rest: Vec<&str> = parts.collect();
        let Some((suffix, middles)) = rest.split_last() else {
            return Glob::Exact(glob.to_owned());
        };
        let middles: Vec<String> = middles
            .iter()
            .filter(|m| !m.is_empty())
            .map(|m| (*m).to_owned())
            .collect();
        let min_len = prefix.len() + suffix.len() + middles.iter().map(String::len).sum::<usize>();
        Glob::Wild {
            prefix: prefix.to_owned(),
            middles,
            suffix: (*suffix).to_owned(),
            min_len,
        }
    }

    fn matches(&self, text: &str) -> bool {
        match self {
            Glob::Exact(exact) => exact == text,
            Glob::Wild {
                prefix,
                middles,
                suffix,
                min_len,
            } => {
                if text.len() < *min_len {
                    return false;
                }
                let Some(rest) = text.strip_prefix(prefix.as_str()) else {
                    return false;
                };
                // Length was checked above, so the suffix cannot overlap the prefix.
                let Some(mut rest) = rest.strip_suffix(suffix.as_str()) else {
                    return false;
                };
                for middle in middles {
                    match rest.find(middle.as_str()) {
                        Some(at) => rest = &rest[at + middle.len()..],
                        None => return false,
                    }
                }
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn event_type_validation_accepts_provider_styles_and_rejects_the_rest() {
        let cases: &[(&str, bool)] = &[
            ("orders/create", true),
            ("pull_request.opened", true),
            ("invoice.payment_failed", true),
            ("urn:evt:v1-thing", true),
            ("A9", true),
            ("", false),
            ("has space", false),
            ("star*", false),
            ("comma,", false),
            ("ünïcode", false),
            ("tab\t", false),
        ];
        for (input, ok) in cases {
            assert_eq!(validate_event_type(input).is_ok(), *ok, "{input:?}");
        }
        assert!(validate_event_type(&"a".repeat(256)).is_ok());
        assert!(validate_event_type(&"a".repeat(257)).is_err());
    }

    #[test]
    fn matching_follows_the_glob_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "anything.at.all", true),
            ("*", "", true),
            ("invoice.*", "invoice.paid", true),
            ("invoice.*", "invoice.payment.failed", true),
            ("invoice.*", "invoice.", true),
            ("invoice.*", "invoice", false),
            ("invoice.*", "customer.invoice.paid", false),
            ("invoice.paid", "invoice.paid", true),
            ("invoice.paid", "invoice.paid.extra", false),
            ("invoice.paid", "Invoice.paid", false),
            ("*.created", "customer.created", true),
            ("*.created", "customer.created.v2", false),
            ("*.created", ".created", true),
            ("orders/*", "orders/create", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "acb", false),
            ("a*b*c", "abcb", false),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("ab*ba", "aba", false),
            ("ab*ba", "abba", true),
            ("*b*", "abc", true),
            ("*b*", "ac", false),
            ("a**b", "ab", true),
            ("a**b", "aXYb", true),
            ("pull_request.*, issues.*", "issues.opened", true),
            ("pull_request.*, issues.*", "pull_request.closed", true),
            ("pull_request.*, issues.*", "push", false),
            (" push ,  ping ", "ping", true),
            (" push ,  ping ", " ping", false),
            ("*a*a*a", "aa", false),
            ("*a*a*a", "aaa", true),
        ];
        for (pattern, event_type, expected) in cases {
            let parsed = EventTypePattern::parse(pattern)
                .unwrap_or_else(|e| panic!("{pattern:?} should parse: {e}"));
            assert_eq!(
                parsed.matches(event_type),
                *expected,
                "{pattern:?} vs {event_type:?}"
            );
        }
    }

    #[test]
    fn matching_tolerates_non_ascii_event_types() {
        let pattern = EventTypePattern::parse("a*b").unwrap();
        assert!(pattern.matches("aéb"));
        assert!(!pattern.matches("é"));
    }

    #[test]
    fn parse_rejects_malformed_patterns_with_a_named_problem() {
        let cases: &[(&str, PatternError)] = &[
            ("", PatternError::Empty),
            ("   ", PatternError::Empty),
            ("a,,b", PatternError::EmptyItem { position: 2 }),
            ("a, ", PatternError::EmptyItem { position: 2 }),
            (",a", PatternError::EmptyItem { position: 1 }),
            (
                "a b",
                PatternError::InvalidChar {
                    glob: "a b".into(),
                    ch: ' ',
                },
            ),
            (
                "in?voice",
                PatternError::InvalidChar {
                    glob: "in?voice".into(),
                    ch: '?',
                },
            ),
            (
                "é*",
                PatternError::InvalidChar {
                    glob: "é*".into(),
                    ch: 'é',
                },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                EventTypePattern::parse(input).as_ref(),
                Err(expected),
                "{input:?}"
            );
        }
    }

    #[test]
    fn parse_enforces_glob_count_and_byte_limits() {
        let sixteen = vec!["a"; 16].join(",");
        assert!(EventTypePattern::parse(&sixteen).is_ok());
        let seventeen = vec!["a"; 17].join(",");
        assert_eq!(
            EventTypePattern::parse(&seventeen),
            Err(PatternError::TooManyGlobs { count: 17 })
        );

        assert!(EventTypePattern::parse(&"a".repeat(256)).is_ok());
        assert_eq!(
            EventTypePattern::parse(&"a".repeat(257)),
            Err(PatternError::TooLong { len: 257 })
        );
    }

    #[test]
    fn error_messages_name_the_problem() {
        let msg = EventTypePattern::parse(&vec!["a"; 17].join(","))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("17") && msg.contains("16"), "{msg}");
        let msg = EventTypePattern::parse("a,,b").unwrap_err().to_string();
        assert!(msg.contains("item 2 is empty"), "{msg}");
    }

    #[test]
    fn pathological_pattern_matches_in_linear_time() {
        let pattern = EventTypePattern::parse("*a*a*a*a*a*a*a*a*a*a*b").unwrap();
        let long = "a".repeat(200);
        let started = Instant::now();
        for _ in 0..1_000 {
            assert!(!pattern.matches(&long));
        }
        // Exponential backtracking would take far longer than this on even
        // one call; a generous bound keeps the test stable on slow CI.
        assert!(started.elapsed() < Duration::from_secs(2));

        let pattern = EventTypePattern::parse("a*a*a*a*a*a*a*a*a*c*b").unwrap();
        let long = format!("{}b", "a".repeat(255));
        assert!(!pattern.matches(&long));
        let hit = format!("{}cb", "a".repeat(254));
        assert!(pattern.matches(&hit));
    }

    #[test]
    fn serde_uses_the_source_string_and_revalidates() {
        let pattern: EventTypePattern = serde_json::from_str(r#""invoice.*, ping""#).unwrap();
        assert_eq!(pattern.as_str(), "invoice.*, ping");
        assert_eq!(pattern.to_string(), "invoice.*, ping");
        assert_eq!(
            serde_json::to_string(&pattern).unwrap(),
            r#""invoice.*, ping""#
        );
        assert!(pattern.matches("ping"));

        let err = serde_json::from_str::<EventTypePattern>(r#""a,,b""#).unwrap_err();
        assert!(err.to_string().contains("item 2 is empty"), "{err}");
        assert!(serde_json::from_str::<EventTypePattern>("42").is_err());
    }

    #[test]
    fn schema_is_a_string() {
        use utoipa::PartialSchema;
        let json = serde_json::to_value(EventTypePattern::schema()).unwrap();
        assert_eq!(json["type"], "string");
        assert_eq!(json["maxLength"], 256);
    }
}
