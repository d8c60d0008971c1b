//! Versioned encoding of stored records.
//!
//! Every value starts with one format byte. Control-plane records (format 1) are JSON after
//! that byte: they are small, rarely written, and JSON lets later versions add optional fields
//! without a migration. Events (format 2) and deliveries (format 3) are on the hot path and
//! carry raw bodies, so they use a compact length-prefixed binary layout; an event's metadata
//! comes before its headers and body so listings can stop reading early.
//!
//! Unknown format bytes, truncated input and trailing garbage are errors, never panics: a
//! record written by a newer hookgate must be refused, not misread. Fuzzed (`codec_roundtrip`).

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::ids::{AccountId, DeliveryId, DestinationId, EventId, SourceId};
use crate::model::{Delivery, DeliveryStatus, Event, EventMeta, Origin};

/// JSON record (control plane).
const FORMAT_JSON_V1: u8 = 1;
/// Binary event record.
const FORMAT_EVENT_V1: u8 = 2;
/// Binary delivery record.
const FORMAT_DELIVERY_V1: u8 = 3;
/// Length marker of an absent optional string.
const NONE_U16: u16 = u16::MAX;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("stored record is empty")]
    Empty,
    #[error("stored record has unknown format {0}; was it written by a newer hookgate?")]
    UnknownFormat(u8),
    #[error("stored record is malformed")]
    Malformed(#[source] serde_json::Error),
    #[error("stored binary record is malformed: {0}")]
    Corrupt(&'static str),
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(FORMAT_JSON_V1);
    // Serialising plain derive(Serialize) data into a Vec cannot fail: no maps with non-string
    // keys, no I/O.
    serde_json::to_writer(&mut out, value)
        .expect("invariant: model records serialise to JSON infallibly");
    out
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&FORMAT_JSON_V1, body)) => {
            serde_json::from_slice(body).map_err(CodecError::Malformed)
        }
        Some((&other, _)) => Err(CodecError::UnknownFormat(other)),
    }
}

// --- binary records ------------------------------------------------------------------------

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        // Callers cap these strings far below 64 KiB; truncating keeps the layout valid anyway.
        Some(s) => {
            let bytes = &s.as_bytes()[..s.len().min(usize::from(NONE_U16 - 1))];
            out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
            out.extend_from_slice(bytes);
        }
        None => out.extend_from_slice(&NONE_U16.to_be_bytes()),
    }
}

/// Bounds-checked reader over a record.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.buf.len() < n {
            return Err(CodecError::Corrupt("truncated"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, CodecError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    fn u128(&mut self) -> Result<u128, CodecError> {
        Ok(u128::from_be_bytes(self.array()?))
    }

    fn opt_str(&mut self) -> Result<Option<String>, CodecError> {
        let len = self.u16()?;
        if len == NONE_U16 {
            return Ok(None);
        }
        let bytes = self.take(usize::from(len))?;
        std::str::from_utf8(bytes)
            .map(|s| Some(s.to_owned()))
            .map_err(|_| CodecError::Corrupt("string is not UTF-8"))
    }

    fn finish(self) -> Result<(), CodecError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(CodecError::Corrupt("trailing bytes"))
        }
    }
}

fn check_format(bytes: &[u8], want: u8) -> Result<Reader<'_>, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&f, rest)) if f == want => Ok(Reader { buf: rest }),
        Some((&f, _)) => Err(CodecError::UnknownFormat(f)),
    }
}

/// Encodes an event. The account and id are the table key, not part of the value.
pub fn encode_event(e: &Event) -> Vec<u8> {
    let headers_len: usize = e.headers.iter().map(|(n, v)| 6 + n.len() + v.len()).sum();
    let mut out = Vec::with_capacity(64 + headers_len + e.body.len());
    out.push(FORMAT_EVENT_V1);
    out.push(match e.origin {
        Origin::Inbound => 0,
        Origin::Outbound => 1,
    });
    out.extend_from_slice(&e.source_id.raw().to_be_bytes());
    out.extend_from_slice(&e.received_at_ms.to_be_bytes());
    put_opt_str(&mut out, e.event_type.as_deref());
    put_opt_str(&mut out, e.dedupe_key.as_deref());
    put_opt_str(&mut out, e.content_type.as_deref());
    let headers = &e.headers[..e.headers.len().min(usize::from(u16::MAX))];
    out.extend_from_slice(&(headers.len() as u16).to_be_bytes());
    for (name, value) in headers {
        put_opt_str(&mut out, Some(name));
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value);
    }
    out.extend_from_slice(&(e.body.len() as u32).to_be_bytes());
    out.extend_from_slice(&e.body);
    out
}

fn read_event_meta(
    r: &mut Reader<'_>,
    account: AccountId,
    id: EventId,
) -> Result<EventMeta, CodecError> {
    let origin = match r.u8()? {
        0 => Origin::Inbound,
        1 => Origin::Outbound,
        _ => return Err(CodecError::Corrupt("unknown origin")),
    };
    Ok(EventMeta {
        id,
        account_id: account,
        origin,
        source_id: SourceId(r.u128()?),
        received_at_ms: r.u64()?,
        event_type: r.opt_str()?,
        dedupe_key: r.opt_str()?,
    })
}

/// Decodes only what comes before headers and body.
pub fn decode_event_meta(
    bytes: &[u8],
    account: AccountId,
    id: EventId,
) -> Result<EventMeta, CodecError> {
    let mut r = check_format(bytes, FORMAT_EVENT_V1)?;
    read_event_meta(&mut r, account, id)
}

pub fn decode_event(bytes: &[u8], account: AccountId, id: EventId) -> Result<Event, CodecError> {
    let mut r = check_format(bytes, FORMAT_EVENT_V1)?;
    let meta = read_event_meta(&mut r, account, id)?;
    let content_type = r.opt_str()?;
    let count = r.u16()?;
    let mut headers = Vec::with_capacity(usize::from(count).min(256));
    for _ in 0..count {
        let name = r
            .opt_str()?
            .ok_or(CodecError::Corrupt("absent header name"))?;
        let len = r.u32()? as usize;
        headers.push((name, r.take(len)?.to_vec()));
    }
    let len = r.u32()? as usize;
    let body = bytes::Bytes::copy_from_slice(r.take(len)?);
    r.finish()?;
    Ok(Event {
        id: meta.id,
        account_id: meta.account_id,
        source_id: meta.source_id,
        origin: meta.origin,
        received_at_ms: meta.received_at_ms,
        event_type: meta.event_type,
        dedupe_key: meta.dedupe_key,
        content_type,
        headers,
        body,
    })
}

fn status_byte(s: DeliveryStatus) -> u8 {
    match s {
        DeliveryStatus::Pending => 0,
        DeliveryStatus::Delivering => 1,
        DeliveryStatus::RetryScheduled => 2,
        DeliveryStatus::Delivered => 3,
        DeliveryStatus::DeadLetter => 4,
    }
}

/// Encodes a delivery. The event and delivery ids are the table key.
pub fn encode_delivery(d: &Delivery) -> Vec<u8> {
    let mut out = Vec::with_capacity(72);
    out.push(FORMAT_DELIVERY_V1);
    out.extend_from_slice(&d.account_id.raw().to_be_bytes());
    out.extend_from_slice(&d.destination_id.raw().to_be_bytes());
    out.push(status_byte(d.status));
    out.extend_from_slice(&d.attempts.to_be_bytes());
    out.extend_from_slice(&d.retry_base.to_be_bytes());
    out.extend_from_slice(&d.next_attempt_at_ms.unwrap_or(0).to_be_bytes());
    out.extend_from_slice(&d.last_status_code.unwrap_or(0).to_be_bytes());
    out.extend_from_slice(&d.created_at_ms.to_be_bytes());
    out.extend_from_slice(&d.updated_at_ms.to_be_bytes());
    out
}

pub fn decode_delivery(
    bytes: &[u8],
    event: EventId,
    id: DeliveryId,
) -> Result<Delivery, CodecError> {
    let mut r = check_format(bytes, FORMAT_DELIVERY_V1)?;
    let account_id = AccountId(r.u128()?);
    let destination_id = DestinationId(r.u128()?);
    let status = match r.u8()? {
        0 => DeliveryStatus::Pending,
        1 => DeliveryStatus::Delivering,
        2 => DeliveryStatus::RetryScheduled,
        3 => DeliveryStatus::Delivered,
        4 => DeliveryStatus::DeadLetter,
        _ => return Err(CodecError::Corrupt("unknown delivery status")),
    };
    let attempts = r.u32()?;
    let retry_base = r.u32()?;
    let next = r.u64()?;
    let last = r.u16()?;
    let created_at_ms = r.u64()?;
    let updated_at_ms = r.u64()?;
    r.finish()?;
    Ok(Delivery {
        id,
        event_id: event,
        account_id,
        destination_id,
        status,
        attempts,
        retry_base,
        next_attempt_at_ms: (next != 0).then_some(next),
        last_status_code: (last != 0).then_some(last),
        created_at_ms,
        updated_at_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Rec {
        a: u32,
        b: String,
    }

    #[test]
    fn records_round_trip() {
        let r = Rec {
            a: 7,
            b: "x".into(),
        };
        assert_eq!(decode::<Rec>(&encode(&r)).unwrap(), r);
    }

    fn sample_event() -> Event {
        Event {
            id: EventId::new(),
            account_id: AccountId::new(),
            source_id: SourceId::new(),
            origin: Origin::Inbound,
            received_at_ms: 1_700_000_000_123,
            event_type: Some("invoice.paid".into()),
            dedupe_key: Some("evt_1".into()),
            content_type: None,
            headers: vec![("stripe-signature".into(), b"t=1,v1=ab".to_vec())],
            body: bytes::Bytes::from_static(b"{\"id\":\"evt_1\"}\xff"),
        }
    }

    #[test]
    fn events_round_trip_and_meta_reads_the_prefix() {
        let e = sample_event();
        let bytes = encode_event(&e);
        assert_eq!(decode_event(&bytes, e.account_id, e.id).unwrap(), e);
        let meta = decode_event_meta(&bytes, e.account_id, e.id).unwrap();
        assert_eq!(meta.event_type, e.event_type);
        assert_eq!(meta.source_id, e.source_id);
    }

    #[test]
    fn truncated_or_extended_events_are_errors_not_panics() {
        let e = sample_event();
        let bytes = encode_event(&e);
        for n in 0..bytes.len() {
            assert!(
                decode_event(&bytes[..n], e.account_id, e.id).is_err(),
                "prefix {n}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_event(&longer, e.account_id, e.id).is_err());
    }

    #[test]
    fn deliveries_round_trip() {
        let d = Delivery {
            id: DeliveryId::new(),
            event_id: EventId::new(),
            account_id: AccountId::new(),
            destination_id: DestinationId::new(),
            status: DeliveryStatus::RetryScheduled,
            attempts: 3,
            retry_base: 1,
            next_attempt_at_ms: Some(42),
            last_status_code: Some(503),
            created_at_ms: 1,
            updated_at_ms: 2,
        };
        let bytes = encode_delivery(&d);
        assert_eq!(decode_delivery(&bytes, d.event_id, d.id).unwrap(), d);
        assert!(decode_delivery(&bytes[..bytes.len() - 1], d.event_id, d.id).is_err());
    }

    #[test]
    fn large_numbers_survive_a_round_trip_exactly() {
        // Found by the codec_roundtrip fuzz target: needs serde_json's float_roundtrip.
        let bytes = b"\x01123470986512345678901234567890";
        let v: serde_json::Value = decode(bytes).unwrap();
        assert_eq!(decode::<serde_json::Value>(&encode(&v)).unwrap(), v);
    }

    #[test]
    fn unknown_format_empty_and_garbage_are_errors() {
        assert!(matches!(decode::<Rec>(&[]), Err(CodecError::Empty)));
        assert!(matches!(
            decode::<Rec>(&[9, b'{']),
            Err(CodecError::UnknownFormat(9))
        ));
        assert!(matches!(
            decode::<Rec>(&[1, b'{']),
            Err(CodecError::Malformed(_))
        ));
    }
}
