//! Prefixed, time-ordered identifiers.
//!
//! Every id is a `u128`: the top 48 bits are Unix milliseconds, the low 80 bits random (the
//! ULID layout), except that ids made now are monotonic (ULID's monotonic rule, see
//! [`next_raw_id`]; across restarts too, from the newest stored event, see [`resume_after`]),
//! so they sort in the order they were made. Stored keys are the raw `u128`, so a redb range
//! scan over ids is a scan in creation order, which keeps batched inserts append-mostly
//! (random keys made large redb batches several times slower). On the wire an id is its prefix
//! plus the 26-character Crockford base32 form, e.g. `evt_01JD3X0Q4W8N7T5Y2B9C6K1M0P`.
//!
//! Ids are newtypes so a `SourceId` can never be passed where a `DestinationId` is meant.
//! This module does not guarantee ids are unguessable: they are identifiers, not secrets
//! (path tokens and API keys come from [`random_token`]).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::RngCore;

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const ENCODED_LEN: usize = 26;
const RANDOM_BITS: u32 = 80;

/// Milliseconds since the Unix epoch, saturating at zero for clocks before 1970.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A fresh raw id for now, greater than any id this process made before with it. Without
/// that, two events received one after the other within a millisecond would sort by their
/// random bits: listed newest-first in the wrong order, and delivered in the wrong order by a
/// FIFO destination. Ids stay increasing if the clock steps back; they then carry the later
/// time until the clock passes it, and events record that time as received (`EventId::new`).
pub fn next_raw_id() -> u128 {
    let fresh = raw_id_at(now_ms());
    let mut last = LAST
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // One past the last keeps ids unique; random low bits would only add a way to collide.
    *last = if fresh > *last { fresh } else { *last + 1 };
    *last
}

/// The last id [`next_raw_id`] made, or the greatest stored one [`resume_after`] was told of.
static LAST: std::sync::Mutex<u128> = std::sync::Mutex::new(0);

/// Makes every id made from now on greater than `raw`, an id already stored. Called at start
/// with the newest stored event id, so ids keep increasing across a restart even when the
/// clock is now behind the time the last run's ids carried (it stepped back while they ran
/// ahead of it): otherwise new events would sort before older ones, in listings and in a FIFO
/// destination's order.
pub fn resume_after(raw: u128) {
    let mut last = LAST
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *last = (*last).max(raw);
}

/// A fresh raw id for the given time, with no ordering against other ids of that millisecond.
pub fn raw_id_at(ms: u64) -> u128 {
    let mut random = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut random);
    let random = u128::from_be_bytes(random) & ((1u128 << RANDOM_BITS) - 1);
    (u128::from(ms & 0xFFFF_FFFF_FFFF) << RANDOM_BITS) | random
}

/// The creation time encoded in a raw id.
pub fn raw_id_ms(raw: u128) -> u64 {
    (raw >> RANDOM_BITS) as u64
}

/// An id's text form on the stack: ids are rendered on every request (envelope, header, log),
/// and a `String` each time showed up in the ingest profile.
pub struct IdText {
    buf: [u8; 32],
    len: usize,
}

impl IdText {
    fn new(prefix: &str, raw: u128) -> Self {
        let mut buf = [0u8; 32];
        let p = prefix.len();
        buf[..p].copy_from_slice(prefix.as_bytes());
        buf[p] = b'_';
        let mut v = raw;
        for slot in buf[p + 1..p + 1 + ENCODED_LEN].iter_mut().rev() {
            *slot = CROCKFORD[(v & 31) as usize];
            v >>= 5;
        }
        Self {
            buf,
            len: p + 1 + ENCODED_LEN,
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII from the prefix and the alphabet above is ever written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

fn decode(s: &str) -> Option<u128> {
    if s.len() != ENCODED_LEN {
        return None;
    }
    let mut v: u128 = 0;
    for (i, b) in s.bytes().enumerate() {
        let d = match b.to_ascii_uppercase() {
            c @ b'0'..=b'9' => c - b'0',
            b'O' => 0,
            b'I' | b'L' => 1,
            c => CROCKFORD.iter().position(|&x| x == c)? as u8,
        };
        // 26 * 5 = 130 bits: the first character may only carry 3 bits.
        if i == 0 && d > 7 {
            return None;
        }
        v = (v << 5) | u128::from(d);
    }
    Some(v)
}

/// A random URL-safe token of `bytes` random bytes (base64url, no padding). Used for path
/// tokens and API key secrets, which must be unguessable.
pub fn random_token(bytes: usize) -> String {
    use base64::Engine as _;
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u128);

        // IdText holds prefix + '_' + 26 characters in 32 bytes.
        const _: () = assert!($prefix.len() <= 5);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id, greater than any this process made before ([`next_raw_id`]). An
            /// event records its id's time as `received_at_ms` rather than reading the clock
            /// again, so time filters (which read the id) and `received_at` agree, also after
            /// the clock steps back and ids run ahead of it.
            pub fn new() -> Self {
                Self(next_raw_id())
            }

            pub fn raw(self) -> u128 {
                self.0
            }

            /// The text form without allocating.
            pub fn text(self) -> IdText {
                IdText::new($prefix, self.0)
            }

            pub fn created_ms(self) -> u64 {
                raw_id_ms(self.0)
            }

            /// Parses `prefix_XXXXXXXX…`; `None` for anything else, including another type's prefix.
            pub fn parse(s: &str) -> Option<Self> {
                s.strip_prefix($prefix)?.strip_prefix('_').and_then(decode).map(Self)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.text().as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&s).ok_or_else(|| {
                    serde::de::Error::custom(format!("not a valid {} id", $prefix))
                })
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some(concat!("^", $prefix, "_[0-9A-HJKMNP-TV-Z]{26}$")))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

id_type!(
    /// A tenant.
    AccountId, "acc"
);
id_type!(
    /// An API key (the id, not the secret).
    ApiKeyId, "key"
);
id_type!(
    /// Where events come from.
    SourceId, "src"
);
id_type!(
    /// Where events go.
    DestinationId, "dst"
);
id_type!(
    /// A source → destination subscription.
    RouteId, "rte"
);
id_type!(
    /// A persisted inbound request or outbound message.
    EventId, "evt"
);
id_type!(
    /// One event on its way to one destination.
    DeliveryId, "dlv"
);
id_type!(
    /// One API request, echoed in every envelope and log line.
    RequestId, "req"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_their_text_form() {
        for _ in 0..1000 {
            let id = EventId::new();
            let text = id.to_string();
            assert!(text.starts_with("evt_"));
            assert_eq!(text.len(), 4 + ENCODED_LEN);
            assert_eq!(EventId::parse(&text), Some(id));
        }
        let max = EventId(u128::MAX);
        assert_eq!(EventId::parse(&max.to_string()), Some(max));
        let zero = EventId(0);
        assert_eq!(EventId::parse(&zero.to_string()), Some(zero));
    }

    #[test]
    fn ids_sort_by_creation_time_in_raw_and_text_form() {
        let a = SourceId(raw_id_at(1_000));
        let b = SourceId(raw_id_at(2_000));
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
        assert_eq!(a.created_ms(), 1_000);
    }

    #[test]
    fn ids_made_one_after_another_increase_even_within_a_millisecond() {
        // Thousands of ids a millisecond: random low bits alone would misorder about half.
        let ids: Vec<EventId> = (0..20_000).map(|_| EventId::new()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let texts: Vec<String> = ids.iter().map(ToString::to_string).collect();
        assert!(texts.windows(2).all(|w| w[0] < w[1]));
        // Across threads too: every id is distinct and each thread's own are increasing.
        let per_thread: Vec<Vec<u128>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..5_000).map(|_| next_raw_id()).collect::<Vec<_>>()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(per_thread.iter().all(|v| v.windows(2).all(|w| w[0] < w[1])));
        let mut all: Vec<u128> = per_thread.concat();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 20_000);
    }

    #[test]
    fn parse_rejects_wrong_prefix_length_and_alphabet() {
        let id = SourceId::new().to_string();
        assert!(DestinationId::parse(&id).is_none());
        assert!(SourceId::parse("src_").is_none());
        assert!(SourceId::parse("src_0123").is_none());
        assert!(SourceId::parse(&format!("{id}0")).is_none());
        assert!(SourceId::parse("src_UUUUUUUUUUUUUUUUUUUUUUUUUU").is_none());
        // First character beyond 3 bits would overflow 128 bits.
        assert!(SourceId::parse("src_80000000000000000000000000").is_none());
        assert!(SourceId::parse("src_é0000000000000000000000000").is_none());
    }

    #[test]
    fn random_tokens_are_distinct_and_url_safe() {
        let a = random_token(24);
        let b = random_token(24);
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }
}
