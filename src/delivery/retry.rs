//! Retry policy: when to try a delivery again, and when to stop.
//!
//! Owns the destination's `retry` contract, in exactly one of two JSON shapes:
//!
//! ```json
//! {"schedule": ["5s", "5m", "30m", "2h", "5h", "10h", "10h"], "jitter": true}
//! {"initial": "1s", "factor": 2.0, "max_delay": "1h", "max_attempts": 10, "jitter": true}
//! ```
//!
//! plus the pure decisions built on it: [`classify`] turns what happened on
//! one attempt into a [`Verdict`], [`next_delay`] turns a policy and an
//! attempt count into "wait this long" or "give up", and
//! [`parse_retry_after`] reads a `Retry-After` header.
//!
//! Invariants:
//! - Attempt 1 is immediate; a schedule of N delays means N + 1 attempts.
//! - A `Retry-After` hint can lengthen a delay (up to [`RETRY_AFTER_CAP`]) but
//!   never shorten it and never buys an attempt beyond the policy's maximum.
//! - Nothing here panics or overflows, even for a policy that skipped
//!   [`RetryPolicy::validate`]: arithmetic saturates at `max_delay`.
//!
//! Deliberately not here: clocks, timers, I/O, persistence, or circuit
//! breaking. Deserialising checks shape and syntax only; ranges are checked
//! by [`RetryPolicy::validate`] so the API can report every bad field at once.

use std::fmt;
use std::time::Duration;

use rand::Rng;
use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest `Retry-After` a destination can impose on one retry.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(60 * 60);
/// Shortest delay a policy may configure; zero would hammer a failing destination.
pub const MIN_RETRY_DELAY: Duration = Duration::from_millis(1);
/// Longest delay a policy may configure (7 days).
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// Most entries a `schedule` may list.
pub const MAX_SCHEDULE_ENTRIES: usize = 30;
/// Bounds of the exponential `factor` (unitless).
pub const MIN_BACKOFF_FACTOR: f64 = 1.0;
pub const MAX_BACKOFF_FACTOR: f64 = 10.0;
/// Bounds of the exponential `max_attempts`.
pub const MAX_ATTEMPTS_LIMIT: u32 = 50;
/// Jitter multiplies a delay by a uniform factor in `1 ± JITTER_FRACTION`.
pub const JITTER_FRACTION: f64 = 0.2;

/// How a destination's failed deliveries are retried.
#[derive(Clone, Debug, PartialEq)]
pub enum RetryPolicy {
    /// Explicit delays: `delays[k - 1]` is waited before attempt `k + 1`.
    Schedule { delays: Vec<Duration>, jitter: bool },
    /// `initial * factor^(k - 1)`, capped at `max_delay`, before attempt `k + 1`.
    Exponential {
        initial: Duration,
        factor: f64,
        max_delay: Duration,
        max_attempts: u32,
        jitter: bool,
    },
}

/// What one delivery attempt produced, as seen by the HTTP client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The destination answered. `retry_after` is the parsed `Retry-After`
    /// header if present, whatever the status; [`classify`] decides whether
    /// it counts.
    Response {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// No complete response within the attempt timeout.
    Timeout,
    /// TCP connect failed (refused, unreachable, DNS resolution failed).
    Connect,
    /// TLS handshake failed (bad certificate, protocol mismatch).
    Tls,
    /// Our SSRF policy refused the resolved address; nothing was sent.
    SsrfBlocked,
    /// Any other transport failure (reset mid-body, protocol error).
    Other,
}

/// What to do after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// The destination said `410 Gone`: stop sending it anything.
    DisableDestination,
    /// Try again later (if the policy has attempts left; see [`next_delay`]).
    Retry {
        fault: Fault,
        /// Only set for 429 and 503, the statuses where the header means
        /// "come back later" rather than something incidental.
        retry_after: Option<Duration>,
    },
}

/// Whose side a failure is on, for metrics and the attempt log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The destination answered badly or presented a bad TLS setup.
    Destination,
    /// We could not get a timely answer: timeouts, connect and transport errors.
    Network,
    /// Our own SSRF rule stopped the attempt.
    Policy,
}

/// Maps one attempt's outcome to a verdict.
///
/// Only 2xx counts as delivered; redirects are not followed, so 3xx is a
/// failure like any 4xx/5xx, because following them would let a destination
/// bounce us to an address the SSRF check never saw.
pub fn classify(outcome: &AttemptOutcome) -> Verdict {
    match *outcome {
        AttemptOutcome::Response { status, .. } if (200..300).contains(&status) => {
            Verdict::Delivered
        }
        AttemptOutcome::Response { status: 410, .. } => Verdict::DisableDestination,
        AttemptOutcome::Response {
            status,
            retry_after,
        } => Verdict::Retry {
            fault: Fault::Destination,
            retry_after: if status == 429 || status == 503 {
                retry_after
            } else {
                None
            },
        },
        AttemptOutcome::Timeout | AttemptOutcome::Connect | AttemptOutcome::Other => {
            Verdict::Retry {
                fault: Fault::Network,
                retry_after: None,
            }
        }
        // A certificate problem is the destination's configuration, not a
        // flaky network, so it is reported as theirs.
        AttemptOutcome::Tls => Verdict::Retry {
            fault: Fault::Destination,
            retry_after: None,
        },
        // Retried because DNS answers change and operators may widen the
        // allow-list; the policy's attempt limit still ends it.
        AttemptOutcome::SsrfBlocked => Verdict::Retry {
            fault: Fault::Policy,
            retry_after: None,
        },
    }
}

/// The delay before the next attempt, or `None` to give up (dead letter).
///
/// `attempts_made` counts attempts already done, including the one that
/// just failed; 0 (nothing tried yet) yields an immediate first attempt.
/// `retry_after` should be the hint from [`Verdict::Retry`].
pub fn next_delay(
    policy: &RetryPolicy,
    attempts_made: u32,
    retry_after: Option<Duration>,
    rng: &mut impl Rng,
) -> Option<Duration> {
    if attempts_made == 0 {
        return Some(Duration::ZERO);
    }
    if attempts_made >= policy.max_attempts() {
        return None;
    }
    let (base, jitter) = match policy {
        RetryPolicy::Schedule { delays, jitter } => {
            let index = usize::try_from(attempts_made - 1).ok()?;
            (*delays.get(index)?, *jitter)
        }
        RetryPolicy::Exponential {
            initial,
            factor,
            max_delay,
            jitter,
            ..
        } => (
            exponential_delay(*initial, *factor, *max_delay, attempts_made - 1),
            *jitter,
        ),
    };
    let delay = if jitter {
        apply_jitter(base, rng)
    } else {
        base
    };
    Some(match retry_after {
        Some(hint) => delay.max(hint.min(RETRY_AFTER_CAP)),
        None => delay,
    })
}

/// `initial * factor^exponent`, saturating at `max_delay`.
fn exponential_delay(
    initial: Duration,
    factor: f64,
    max_delay: Duration,
    exponent: u32,
) -> Duration {
    // Exponents past i32::MAX are already far beyond any cap.
    let exponent = i32::try_from(exponent).unwrap_or(i32::MAX);
    let nanos = initial.as_nanos() as f64 * factor.powi(exponent);
    if nanos.is_nan() || nanos < 0.0 {
        // Only reachable with an unvalidated factor; fall back to the
        // smallest sane answer rather than guessing.
        return initial.min(max_delay);
    }
    if nanos >= max_delay.as_nanos() as f64 {
        return max_delay;
    }
    // Below max_delay, so it fits a u64 of nanoseconds for any validated
    // policy; `as` saturates rather than wrapping if it somehow does not.
    Duration::from_nanos(nanos.round() as u64)
}

fn apply_jitter(delay: Duration, rng: &mut impl Rng) -> Duration {
    let scale = rng.gen_range((1.0 - JITTER_FRACTION)..=(1.0 + JITTER_FRACTION));
    // `Duration::mul_f64` panics on overflow; the fallible path does not.
    Duration::try_from_secs_f64(delay.as_secs_f64() * scale).unwrap_or(delay)
}

/// Parses a `Retry-After` value: delta-seconds (`120`) or an IMF-fixdate
/// (`Wed, 21 Oct 2015 07:28:00 GMT`), relative to `now_unix_s`.
///
/// Dates in the past give `Some(0)`. The obsolete RFC 850 and asctime date
/// forms, and anything else malformed, give `None` so the caller falls back
/// to its own schedule. Absurdly large delta-seconds saturate; the caller
/// clamps with [`RETRY_AFTER_CAP`].
pub fn parse_retry_after(value: &[u8], now_unix_s: i64) -> Option<Duration> {
    let value = value.trim_ascii();
    if value.is_empty() {
        return None;
    }
    if value.iter().all(u8::is_ascii_digit) {
        let secs = value.iter().fold(0u64, |acc, d| {
            acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        });
        return Some(Duration::from_secs(secs));
    }
    let at = parse_imf_fixdate(value)?;
    let ahead = at.saturating_sub(now_unix_s);
    Some(Duration::from_secs(u64::try_from(ahead).unwrap_or(0)))
}

/// Parses `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 §5.6.7) to Unix seconds.
///
/// The weekday name is checked for spelling but not against the date, as
/// most HTTP stacks do; the date and time fields are range-checked.
fn parse_imf_fixdate(s: &[u8]) -> Option<i64> {
    const DAY_NAMES: [&[u8; 3]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    const MONTH_NAMES: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];

    // Fixed layout: every field sits at a known offset, so once the length
    // is right, constant indexing into the array cannot go out of bounds.
    const TEMPLATE: &[u8; 29] = b"___, __ ___ ____ __:__:__ GMT";
    let s: &[u8; 29] = s.try_into().ok()?;
    let punctuation_ok = s
        .iter()
        .zip(TEMPLATE)
        .all(|(got, want)| *want == b'_' || got == want);
    if !punctuation_ok {
        return None;
    }
    if !DAY_NAMES.contains(&&[s[0], s[1], s[2]]) {
        return None;
    }
    let month = MONTH_NAMES
        .iter()
        .position(|m| **m == [s[8], s[9], s[10]])? as u32
        + 1;
    let day = two_digits(s[5], s[6])?;
    let year = two_digits(s[12], s[13])? * 100 + two_digits(s[14], s[15])?;
    let hour = two_digits(s[17], s[18])?;
    let minute = two_digits(s[20], s[21])?;
    let second = two_digits(s[23], s[24])?;
    // 60 is allowed for a leap second, which Unix time folds into the next one.
    if day == 0 || day > days_in_month(year, month) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    Some(days * 86_400 + i64::from(hour * 3600 + minute * 60 + second))
}

fn two_digits(a: u8, b: u8) -> Option<u32> {
    if a.is_ascii_digit() && b.is_ascii_digit() {
        Some(u32::from(a - b'0') * 10 + u32::from(b - b'0'))
    } else {
        None
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`), valid for every year a four-digit field can hold.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

// === impl RetryPolicy ===

impl RetryPolicy {
    /// Total attempts allowed, counting the first one.
    pub fn max_attempts(&self) -> u32 {
        match self {
            RetryPolicy::Schedule { delays, .. } => {
                u32::try_from(delays.len()).map_or(u32::MAX, |n| n.saturating_add(1))
            }
            RetryPolicy::Exponential { max_attempts, .. } => *max_attempts,
        }
    }

    /// Range checks, reporting every problem as `(field, message)` with
    /// fields named as in the JSON (`schedule[2]`, `factor`).
    pub fn validate(&self) -> Result<(), Vec<(String, String)>> {
        let mut errors = Vec::new();
        match self {
            RetryPolicy::Schedule { delays, .. } => {
                if delays.is_empty() {
                    errors.push(("schedule".into(), "must list at least one delay".into()));
                }
                if delays.len() > MAX_SCHEDULE_ENTRIES {
                    errors.push((
                        "schedule".into(),
                        format!("must list at most {MAX_SCHEDULE_ENTRIES} delays"),
                    ));
                }
                for (i, delay) in delays.iter().enumerate() {
                    if let Some(problem) = delay_range_problem(*delay) {
                        errors.push((format!("schedule[{i}]"), problem));
                    }
                }
            }
            RetryPolicy::Exponential {
                initial,
                factor,
                max_delay,
                max_attempts,
                ..
            } => {
                if *initial < MIN_RETRY_DELAY {
                    errors.push(("initial".into(), "must be at least 1ms".into()));
                }
                if !(factor.is_finite()
                    && (MIN_BACKOFF_FACTOR..=MAX_BACKOFF_FACTOR).contains(factor))
                {
                    errors.push((
                        "factor".into(),
                        format!("must be a number from {MIN_BACKOFF_FACTOR:.1} to {MAX_BACKOFF_FACTOR:.1}"),
                    ));
                }
                if *max_delay < *initial {
                    errors.push((
                        "max_delay".into(),
                        format!(
                            "must be at least `initial` ({})",
                            humantime::format_duration(*initial)
                        ),
                    ));
                } else if *max_delay > MAX_RETRY_DELAY {
                    errors.push(("max_delay".into(), "must be at most 7 days".into()));
                }
                if !(1..=MAX_ATTEMPTS_LIMIT).contains(max_attempts) {
                    errors.push((
                        "max_attempts".into(),
                        format!("must be from 1 to {MAX_ATTEMPTS_LIMIT}"),
                    ));
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

fn delay_range_problem(delay: Duration) -> Option<String> {
    if delay < MIN_RETRY_DELAY {
        Some("must be at least 1ms".into())
    } else if delay > MAX_RETRY_DELAY {
        Some("must be at most 7 days".into())
    } else {
        None
    }
}

impl Default for RetryPolicy {
    /// Immediately, then 5s, 5m, 30m, 2h, 5h, 10h, 10h: 8 attempts over ~28 hours.
    fn default() -> Self {
        const MINUTE_S: u64 = 60;
        const HOUR_S: u64 = 60 * MINUTE_S;
        RetryPolicy::Schedule {
            delays: [
                5,
                5 * MINUTE_S,
                30 * MINUTE_S,
                2 * HOUR_S,
                5 * HOUR_S,
                10 * HOUR_S,
                10 * HOUR_S,
            ]
            .into_iter()
            .map(Duration::from_secs)
            .collect(),
            jitter: true,
        }
    }
}

impl Serialize for RetryPolicy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            RetryPolicy::Schedule { delays, jitter } => {
                let mut map = serializer.serialize_map(Some(2))?;
                let human: Vec<HumanDuration> = delays.iter().copied().map(HumanDuration).collect();
                map.serialize_entry("schedule", &human)?;
                map.serialize_entry("jitter", jitter)?;
                map.end()
            }
            RetryPolicy::Exponential {
                initial,
                factor,
                max_delay,
                max_attempts,
                jitter,
            } => {
                let mut map = serializer.serialize_map(Some(5))?;
                map.serialize_entry("initial", &HumanDuration(*initial))?;
                map.serialize_entry("factor", factor)?;
                map.serialize_entry("max_delay", &HumanDuration(*max_delay))?;
                map.serialize_entry("max_attempts", max_attempts)?;
                map.serialize_entry("jitter", jitter)?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for RetryPolicy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Going through `deserialize_map` refuses the array form that a
        // derived struct would otherwise accept (`["5s", ...]` by position).
        struct Visitor;

        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawRetryPolicy;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a retry policy object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<RawRetryPolicy, A::Error> {
                RawRetryPolicy::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }

        let raw = deserializer.deserialize_map(Visitor)?;
        raw.into_policy().map_err(D::Error::custom)
    }
}

impl utoipa::PartialSchema for RetryPolicy {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Type,
        };

        let duration = || {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(
                    "Duration such as `250ms`, `5s`, `5m`, `2h`; 1ms to 7 days.",
                ))
        };
        let jitter = || {
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .default(Some(serde_json::Value::Bool(true)))
                .description(Some("Scale each delay by a random factor in [0.8, 1.2]."))
        };

        let schedule = ObjectBuilder::new()
            .schema_type(Type::Object)
            .title(Some("RetrySchedule"))
            .description(Some(
                "Explicit delays before each retry; attempts = delays + 1, the first immediate.",
            ))
            .property(
                "schedule",
                ArrayBuilder::new()
                    .items(duration())
                    .min_items(Some(1))
                    .max_items(Some(MAX_SCHEDULE_ENTRIES)),
            )
            .required("schedule")
            .property("jitter", jitter())
            .additional_properties(Some(
                AdditionalProperties::<utoipa::openapi::schema::Schema>::FreeForm(false),
            ))
            .examples([serde_json::json!({
                "schedule": ["5s", "5m", "30m", "2h", "5h", "10h", "10h"]
            })]);

        let exponential = ObjectBuilder::new()
            .schema_type(Type::Object)
            .title(Some("RetryExponential"))
            .description(Some(
                "Delay before retry k is initial * factor^(k-1), capped at max_delay.",
            ))
            .property("initial", duration())
            .required("initial")
            .property(
                "factor",
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .minimum(Some(MIN_BACKOFF_FACTOR))
                    .maximum(Some(MAX_BACKOFF_FACTOR)),
            )
            .required("factor")
            .property("max_delay", duration())
            .required("max_delay")
            .property(
                "max_attempts",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1))
                    .maximum(Some(MAX_ATTEMPTS_LIMIT)),
            )
            .required("max_attempts")
            .property("jitter", jitter())
            .additional_properties(Some(
                AdditionalProperties::<utoipa::openapi::schema::Schema>::FreeForm(false),
            ))
            .examples([serde_json::json!({
                "initial": "1s", "factor": 2.0, "max_delay": "1h", "max_attempts": 10
            })]);

        OneOfBuilder::new()
            .item(schedule)
            .item(exponential)
            .description(Some(
                "Retry policy: an explicit schedule or exponential backoff.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for RetryPolicy {}

/// Both shapes' fields, all optional, so that one pass can tell which shape
/// was meant and name exactly what is missing or mixed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetryPolicy {
    schedule: Option<Vec<HumanDuration>>,
    initial: Option<HumanDuration>,
    factor: Option<f64>,
    max_delay: Option<HumanDuration>,
    max_attempts: Option<u32>,
    jitter: Option<bool>,
}

// === impl RawRetryPolicy ===

impl RawRetryPolicy {
    fn into_policy(self) -> Result<RetryPolicy, String> {
        let jitter = self.jitter.unwrap_or(true);
        let exponential_fields = [
            ("initial", self.initial.is_some()),
            ("factor", self.factor.is_some()),
            ("max_delay", self.max_delay.is_some()),
            ("max_attempts", self.max_attempts.is_some()),
        ];
        let present: Vec<&str> = exponential_fields
            .iter()
            .filter(|(_, set)| *set)
            .map(|(name, _)| *name)
            .collect();

        if let Some(schedule) = self.schedule {
            if !present.is_empty() {
                return Err(format!(
                    "retry policy mixes `schedule` with exponential fields ({}); use either \
                     `schedule` or `initial`/`factor`/`max_delay`/`max_attempts`",
                    present.join(", ")
                ));
            }
            return Ok(RetryPolicy::Schedule {
                delays: schedule.into_iter().map(|d| d.0).collect(),
                jitter,
            });
        }

        match (self.initial, self.factor, self.max_delay, self.max_attempts) {
            (Some(initial), Some(factor), Some(max_delay), Some(max_attempts)) => {
                Ok(RetryPolicy::Exponential {
                    initial: initial.0,
                    factor,
                    max_delay: max_delay.0,
                    max_attempts,
                    jitter,
                })
            }
            _ if present.is_empty() => Err(
                "retry policy needs either `schedule` or `initial`/`factor`/`max_delay`/`max_attempts`"
                    .into(),
            ),
            _ => {
                let missing: Vec<&str> = exponential_fields
                    .iter()
                    .filter(|(_, set)| !*set)
                    .map(|(name, _)| *name)
                    .collect();
                Err(format!(
                    "exponential retry policy is missing {}",
                    missing.join(", ")
                ))
            }
        }
    }
}

/// A `Duration` in humantime's text form on the wire (`"5m"`, `"250ms"`).
struct HumanDuration(Duration);

// === impl HumanDuration ===

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = HumanDuration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"5s\", \"5m\" or \"2h\"")
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<HumanDuration, E> {
                humantime::parse_duration(s)
                    .map(HumanDuration)
                    .map_err(|e| E::custom(format!("invalid duration {s:?}: {e}")))
            }
        }

        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use serde_json::json;

    use super::*;

    const fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    const fn ms(m: u64) -> Duration {
        Duration::from_millis(m)
    }

    fn rng() -> StdRng {
        StdRng::seed_from_u64(0x5eed)
    }

    fn exponential(jitter: bool) -> RetryPolicy {
        RetryPolicy::Exponential {
            initial: secs(1),
            factor: 2.0,
            max_delay: secs(60),
            max_attempts: 10,
            jitter,
        }
    }

    #[test]
    fn default_policy_is_the_documented_schedule() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.max_attempts(), 8);
        assert!(policy.validate().is_ok());
        let json = serde_json::to_value(&policy).unwrap();
        assert_eq!(
            json,
            json!({"schedule": ["5s", "5m", "30m", "2h", "5h", "10h", "10h"], "jitter": true})
        );
    }

    #[test]
    fn schedule_without_jitter_follows_the_table_then_gives_up() {
        let mut policy = RetryPolicy::default();
        if let RetryPolicy::Schedule { jitter, .. } = &mut policy {
            *jitter = false;
        }
        let cases: &[(u32, Option<Duration>)] = &[
            (0, Some(Duration::ZERO)),
            (1, Some(secs(5))),
            (2, Some(secs(300))),
            (3, Some(secs(1800))),
            (4, Some(secs(7200))),
            (5, Some(secs(18_000))),
            (6, Some(secs(36_000))),
            (7, Some(secs(36_000))),
            (8, None),
            (9, None),
            (u32::MAX, None),
        ];
        for (attempts, expected) in cases {
            assert_eq!(
                next_delay(&policy, *attempts, None, &mut rng()),
                *expected,
                "after {attempts} attempts"
            );
        }
    }

    #[test]
    fn exponential_without_jitter_doubles_up_to_the_cap_then_gives_up() {
        let policy = exponential(false);
        let cases: &[(u32, Option<Duration>)] = &[
            (1, Some(secs(1))),
            (2, Some(secs(2))),
            (3, Some(secs(4))),
            (6, Some(secs(32))),
            (7, Some(secs(60))),
            (9, Some(secs(60))),
            (10, None),
        ];
        for (attempts, expected) in cases {
            assert_eq!(
                next_delay(&policy, *attempts, None, &mut rng()),
                *expected,
                "after {attempts} attempts"
            );
        }

        let fractional = RetryPolicy::Exponential {
            initial: ms(250),
            factor: 1.5,
            max_delay: secs(3600),
            max_attempts: 5,
            jitter: false,
        };
        assert_eq!(
            next_delay(&fractional, 3, None, &mut rng()),
            Some(Duration::from_micros(562_500))
        );
    }

    #[test]
    fn exponential_saturates_for_huge_factors_and_attempts() {
        let policy = RetryPolicy::Exponential {
            initial: secs(1),
            factor: f64::MAX,
            max_delay: MAX_RETRY_DELAY,
            max_attempts: u32::MAX,
            jitter: true,
        };
        for attempts in [2, 100, u32::MAX - 1] {
            let delay = next_delay(&policy, attempts, None, &mut rng()).unwrap();
            assert!(delay <= MAX_RETRY_DELAY.mul_f64(1.2), "{delay:?}");
        }
        // Unvalidated garbage must not panic either.
        for factor in [f64::NAN, f64::INFINITY, -3.0, 0.0] {
            let policy = RetryPolicy::Exponential {
                initial: Duration::MAX,
                factor,
                max_delay: Duration::MAX,
                max_attempts: 100,
                jitter: true,
            };
            let _ = next_delay(&policy, 50, Some(Duration::MAX), &mut rng());
        }
    }

    #[test]
    fn jitter_stays_within_twenty_percent_and_varies() {
        let mut rng = rng();
        let policy = exponential(true);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let delay = next_delay(&policy, 3, None, &mut rng).unwrap();
            assert!(delay >= ms(3200) && delay <= ms(4800), "{delay:?}");
            seen.insert(delay);
        }
        assert!(seen.len() > 100, "jitter should spread delays");

        let schedule = RetryPolicy::default();
        for _ in 0..200 {
            let delay = next_delay(&schedule, 2, None, &mut rng).unwrap();
            assert!(delay >= secs(240) && delay <= secs(360), "{delay:?}");
        }
    }

    #[test]
    fn retry_after_lengthens_but_never_shortens_and_is_capped() {
        let policy = exponential(false);
        let cases: &[(u32, Option<Duration>, Option<Duration>)] = &[
            // Longer hint wins.
            (1, Some(secs(30)), Some(secs(30))),
            // Shorter hint does not hurry us.
            (5, Some(secs(1)), Some(secs(16))),
            // Hint beyond the cap is clamped to it, even above max_delay.
            (1, Some(secs(86_400)), Some(RETRY_AFTER_CAP)),
            (1, Some(Duration::MAX), Some(RETRY_AFTER_CAP)),
            // The hint does not buy an extra attempt.
            (10, Some(secs(30)), None),
        ];
        for (attempts, hint, expected) in cases {
            assert_eq!(
                next_delay(&policy, *attempts, *hint, &mut rng()),
                *expected,
                "after {attempts} attempts with {hint:?}"
            );
        }
    }

    #[test]
    fn classify_maps_outcomes_to_verdicts() {
        let response = |status, retry_after| AttemptOutcome::Response {
            status,
            retry_after,
        };
        let retry = |fault, retry_after| Verdict::Retry { fault, retry_after };
        let hint = Some(secs(7));
        let cases: &[(AttemptOutcome, Verdict)] = &[
            (response(200, None), Verdict::Delivered),
            (response(204, hint), Verdict::Delivered),
            (response(299, None), Verdict::Delivered),
            (response(410, hint), Verdict::DisableDestination),
            (response(301, None), retry(Fault::Destination, None)),
            (response(400, None), retry(Fault::Destination, None)),
            (response(404, hint), retry(Fault::Destination, None)),
            (response(429, hint), retry(Fault::Destination, hint)),
            (response(429, None), retry(Fault::Destination, None)),
            (response(500, hint), retry(Fault::Destination, None)),
            (response(503, hint), retry(Fault::Destination, hint)),
            (response(101, None), retry(Fault::Destination, None)),
            (AttemptOutcome::Timeout, retry(Fault::Network, None)),
            (AttemptOutcome::Connect, retry(Fault::Network, None)),
            (AttemptOutcome::Other, retry(Fault::Network, None)),
            (AttemptOutcome::Tls, retry(Fault::Destination, None)),
            (AttemptOutcome::SsrfBlocked, retry(Fault::Policy, None)),
        ];
        for (outcome, verdict) in cases {
            assert_eq!(classify(outcome), *verdict, "{outcome:?}");
        }
    }

    #[test]
    fn parse_retry_after_reads_seconds_and_imf_dates() {
        // 2015-10-21T07:28:00Z
        let now = 1_445_412_480;
        let cases: &[(&str, Option<Duration>)] = &[
            ("120", Some(secs(120))),
            ("  0 ", Some(secs(0))),
            ("99999999999999999999999", Some(secs(u64::MAX))),
            ("Wed, 21 Oct 2015 07:28:00 GMT", Some(secs(0))),
            ("Wed, 21 Oct 2015 07:30:30 GMT", Some(secs(150))),
            ("Thu, 22 Oct 2015 07:28:00 GMT", Some(secs(86_400))),
            // In the past: retry now.
            ("Sun, 06 Nov 1994 08:49:37 GMT", Some(secs(0))),
            ("Thu, 01 Jan 1970 00:00:00 GMT", Some(secs(0))),
            // Leap day and leap second.
            ("Mon, 29 Feb 2016 00:00:00 GMT", Some(secs(11_291_520))),
            ("Wed, 21 Oct 2015 07:28:60 GMT", Some(secs(60))),
            ("", None),
            ("-5", None),
            ("1.5", None),
            ("+5", None),
            ("soon", None),
            ("Wed, 21 Oct 2015 07:28:00 UTC", None),
            ("Wed, 21 oct 2015 07:28:00 GMT", None),
            ("Xyz, 21 Oct 2015 07:28:00 GMT", None),
            ("Wed, 32 Oct 2015 07:28:00 GMT", None),
            ("Sun, 29 Feb 2015 07:28:00 GMT", None),
            ("Wed, 21 Oct 2015 24:00:00 GMT", None),
            ("Wed, 21 Oct 2015 07:60:00 GMT", None),
            ("Wed, 21 Oct 2015 7:28:00 GMT", None),
            ("Wed, 21 Oct 2015 07:28:00 GMT ", Some(secs(0))),
            // Obsolete forms are not supported; caller falls back.
            ("Wednesday, 21-Oct-15 07:28:00 GMT", None),
            ("Wed Oct 21 07:28:00 2015", None),
            ("Wed, 21 Oct 2015 07:28:00 GMTX", None),
        ];
        for (value, expected) in cases {
            assert_eq!(
                parse_retry_after(value.as_bytes(), now),
                *expected,
                "{value:?}"
            );
        }
        assert_eq!(parse_retry_after(&[0xff, 0xfe], now), None);
    }

    #[test]
    fn imf_dates_convert_to_unix_time() {
        let cases: &[(&str, i64)] = &[
            ("Thu, 01 Jan 1970 00:00:00 GMT", 0),
            ("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_777),
            ("Wed, 01 Mar 2000 00:00:00 GMT", 951_868_800),
            ("Tue, 19 Jan 2038 03:14:08 GMT", 2_147_483_648),
            ("Fri, 31 Dec 9999 23:59:59 GMT", 253_402_300_799),
            ("Sat, 01 Jan 0000 00:00:00 GMT", -62_167_219_200),
        ];
        for (value, expected) in cases {
            assert_eq!(
                parse_imf_fixdate(value.as_bytes()),
                Some(*expected),
                "{value:?}"
            );
        }
    }

    #[test]
    fn serde_round_trips_both_shapes() {
        let cases = [
            json!({"schedule": ["250ms", "5s", "1m 30s"], "jitter": false}),
            json!({"initial": "1s", "factor": 2.0, "max_delay": "1h", "max_attempts": 10, "jitter": true}),
        ];
        for case in cases {
            let policy: RetryPolicy = serde_json::from_value(case.clone()).unwrap();
            assert!(policy.validate().is_ok(), "{policy:?}");
            assert_eq!(serde_json::to_value(&policy).unwrap(), case);
        }

        let policy: RetryPolicy =
            serde_json::from_value(json!({"schedule": ["5s", "5m"]})).unwrap();
        assert_eq!(
            policy,
            RetryPolicy::Schedule {
                delays: vec![secs(5), secs(300)],
                jitter: true
            }
        );
        assert_eq!(policy.max_attempts(), 3);

        let policy: RetryPolicy = serde_json::from_value(
            json!({"initial": "250ms", "factor": 3, "max_delay": "2h", "max_attempts": 4}),
        )
        .unwrap();
        assert_eq!(
            policy,
            RetryPolicy::Exponential {
                initial: ms(250),
                factor: 3.0,
                max_delay: secs(7200),
                max_attempts: 4,
                jitter: true
            }
        );
    }

    #[test]
    fn deserialisation_rejects_bad_input_with_clear_messages() {
        let cases = [
            (
                json!({"schedule": ["5s"], "extra": 1}),
                "unknown field `extra`",
            ),
            (
                json!({"schedule": ["5 parsecs"]}),
                "invalid duration \"5 parsecs\"",
            ),
            (json!({"schedule": ["-5s"]}), "invalid duration \"-5s\""),
            (json!({"schedule": [5]}), "a duration string"),
            (json!({"schedule": "5s"}), "invalid type"),
            (
                json!({"schedule": ["5s"], "initial": "1s"}),
                "mixes `schedule` with exponential fields (initial)",
            ),
            (
                json!({"initial": "1s", "factor": 2.0}),
                "missing max_delay, max_attempts",
            ),
            (json!({}), "needs either `schedule`"),
            (json!({"jitter": false}), "needs either `schedule`"),
            (
                json!({"initial": "1s", "factor": 2.0, "max_delay": "1h", "max_attempts": -1}),
                "invalid value",
            ),
            (json!([]), "invalid type"),
        ];
        for (input, needle) in cases {
            let err = serde_json::from_value::<RetryPolicy>(input.clone())
                .expect_err(&input.to_string())
                .to_string();
            assert!(err.contains(needle), "{input}: {err}");
        }
    }

    #[test]
    fn validate_reports_each_bad_field() {
        let zero_schedule: RetryPolicy =
            serde_json::from_value(json!({"schedule": ["5s", "0s", "8d"]})).unwrap();
        assert_eq!(
            zero_schedule.validate(),
            Err(vec![
                ("schedule[1]".into(), "must be at least 1ms".into()),
                ("schedule[2]".into(), "must be at most 7 days".into()),
            ])
        );

        let empty = RetryPolicy::Schedule {
            delays: vec![],
            jitter: true,
        };
        assert_eq!(empty.validate().unwrap_err()[0].0, "schedule");
        let long = RetryPolicy::Schedule {
            delays: vec![secs(1); 31],
            jitter: true,
        };
        assert_eq!(long.validate().unwrap_err()[0].0, "schedule");
        let thirty = RetryPolicy::Schedule {
            delays: vec![secs(1); 30],
            jitter: true,
        };
        assert!(thirty.validate().is_ok());
        assert_eq!(thirty.max_attempts(), 31);

        let fields = |policy: RetryPolicy| -> Vec<String> {
            policy
                .validate()
                .err()
                .unwrap_or_default()
                .into_iter()
                .map(|(field, _)| field)
                .collect()
        };
        let exp = |initial, factor, max_delay, max_attempts| RetryPolicy::Exponential {
            initial,
            factor,
            max_delay,
            max_attempts,
            jitter: true,
        };
        let cases: &[(RetryPolicy, &[&str])] = &[
            (exp(ms(1), 1.0, ms(1), 1), &[]),
            (exp(secs(1), 10.0, MAX_RETRY_DELAY, 50), &[]),
            (exp(Duration::ZERO, 2.0, secs(1), 5), &["initial"]),
            (exp(secs(1), 0.5, secs(60), 5), &["factor"]),
            (exp(secs(1), 10.5, secs(60), 5), &["factor"]),
            (exp(secs(1), f64::NAN, secs(60), 5), &["factor"]),
            (exp(secs(1), f64::INFINITY, secs(60), 5), &["factor"]),
            (exp(secs(10), 2.0, secs(5), 5), &["max_delay"]),
            (
                exp(secs(1), 2.0, MAX_RETRY_DELAY + secs(1), 5),
                &["max_delay"],
            ),
            (exp(secs(1), 2.0, secs(60), 0), &["max_attempts"]),
            (exp(secs(1), 2.0, secs(60), 51), &["max_attempts"]),
            (
                exp(Duration::ZERO, -1.0, Duration::ZERO, 0),
                &["initial", "factor", "max_attempts"],
            ),
        ];
        for (policy, expected) in cases {
            assert_eq!(fields(policy.clone()), *expected, "{policy:?}");
        }
    }

    #[test]
    fn schema_is_a_one_of_of_the_two_shapes() {
        use utoipa::PartialSchema;
        let json = serde_json::to_value(RetryPolicy::schema()).unwrap();
        let shapes = json["oneOf"].as_array().unwrap();
        assert_eq!(shapes.len(), 2);
        assert_eq!(shapes[0]["required"], json!(["schedule"]));
        assert_eq!(
            shapes[1]["required"],
            json!(["initial", "factor", "max_delay", "max_attempts"])
        );
        assert_eq!(shapes[0]["additionalProperties"], json!(false));
    }
}
