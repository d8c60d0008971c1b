//! Fuzzes `hookgate::store::codec`, which reads every record back from disk.
//! A record may be truncated, corrupted or written by a newer hookgate; the
//! codec must refuse it with an error, never panic or misread it. And what
//! it writes it must read back unchanged, or stored data silently drifts.
//!
//! Input: the raw stored bytes (format byte first), fed to every decoder.
//!
//! Checks:
//! - `decode::<serde_json::Value>` never panics; empty input is `Empty`, a
//!   first byte other than 1 is `UnknownFormat` of that byte.
//! - Any `Value` that decodes survives `encode` then `decode` unchanged, and
//!   re-encoding that is byte-for-byte stable.
//! - The binary records (`decode_event`, `decode_event_meta`,
//!   `decode_delivery`) never panic; a decoded record re-encodes to exactly
//!   the input bytes (the layouts have one spelling per value), and
//!   `decode_event_meta` agrees with the full `decode_event`.

#![no_main]

use hookgate::ids::{AccountId, DeliveryId, EventId};
use hookgate::store::codec::{self, CodecError};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const FORMAT_JSON_V1: u8 = 1;

fn json(data: &[u8]) {
    let value = match codec::decode::<Value>(data) {
        Ok(value) => value,
        Err(CodecError::Empty) => {
            assert!(data.is_empty(), "non-empty input reported empty");
            return;
        }
        Err(CodecError::UnknownFormat(f)) => {
            assert_eq!(Some(&f), data.first(), "wrong format byte reported");
            assert_ne!(f, FORMAT_JSON_V1, "the JSON format byte reported unknown");
            return;
        }
        Err(CodecError::Malformed(_)) => {
            assert_eq!(data.first(), Some(&FORMAT_JSON_V1));
            return;
        }
        Err(e @ CodecError::Corrupt(_)) => panic!("JSON decode gave a binary error: {e}"),
    };
    assert_eq!(data.first(), Some(&FORMAT_JSON_V1));
    let encoded = codec::encode(&value);
    assert_eq!(encoded.first(), Some(&FORMAT_JSON_V1));
    let back = match codec::decode::<Value>(&encoded) {
        Ok(back) => back,
        Err(e) => panic!("encode of {value} does not decode: {e}"),
    };
    assert_eq!(
        back, value,
        "round trip changed the value (encoded as {encoded:?})"
    );
    assert_eq!(codec::encode(&back), encoded, "re-encoding is not stable");
}

fn binary(data: &[u8]) {
    let (account, event_id, delivery_id) = (AccountId(7), EventId(8), DeliveryId(9));

    let meta = codec::decode_event_meta(data, account, event_id);
    match codec::decode_event(data, account, event_id) {
        Ok(event) => {
            assert_eq!(
                codec::encode_event(&event),
                data,
                "event did not re-encode as read"
            );
            let meta = match meta {
                Ok(meta) => meta,
                Err(e) => panic!("decode_event accepted what decode_event_meta refused: {e}"),
            };
            assert_eq!(
                (meta.id, meta.account_id, meta.source_id, meta.origin),
                (event.id, event.account_id, event.source_id, event.origin)
            );
            assert_eq!(meta.received_at_ms, event.received_at_ms);
            assert_eq!(meta.event_type, event.event_type);
            assert_eq!(meta.dedupe_key, event.dedupe_key);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }

    if let Ok(delivery) = codec::decode_delivery(data, event_id, delivery_id) {
        assert_eq!(
            codec::encode_delivery(&delivery),
            data,
            "delivery did not re-encode as read"
        );
        assert_eq!((delivery.id, delivery.event_id), (delivery_id, event_id));
    }
}

fuzz_target!(|data: &[u8]| {
    json(data);
    binary(data);
});
