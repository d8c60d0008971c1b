//! Versioned encoding of stored records.
//!
//! Every value starts with one format byte. Control-plane records (format 1) are JSON after
//! that byte: they are small, rarely written, and JSON lets later versions add optional fields
//! without a migration. Unknown format bytes and malformed bodies are errors, never panics:
//! a record written by a newer hookgate must be refused, not misread.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// JSON record, the only format so far.
const FORMAT_JSON_V1: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("stored record is empty")]
    Empty,
    #[error("stored record has unknown format {0}; was it written by a newer hookgate?")]
    UnknownFormat(u8),
    #[error("stored record is malformed")]
    Malformed(#[source] serde_json::Error),
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
