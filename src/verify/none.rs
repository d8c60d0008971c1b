//! `none`: accepts every request without checking anything. For sources
//! that cannot sign (or sit behind another authenticating hop); the token
//! in the ingest URL is then the only protection.
//!
//! Invariants: never fails; event type is body JSON `type` when the body is
//! a JSON object with a string `type`; there is never a delivery id, since
//! nothing authenticates one.
//!
//! Deliberately reads no headers.

use super::common;
use super::{Provider, Unverified, Verified, Verifier, VerifyError};

pub(super) struct NoneVerifier;

impl Verifier for NoneVerifier {
    fn provider(&self) -> Provider {
        Provider::None
    }

    fn verify(&self, req: &Unverified<'_>) -> Result<Verified, VerifyError> {
        let [event_type] = common::top_level_strings(req.body, ["type"]);
        Ok(Verified::new(Provider::None, event_type, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::common::testing::{headers, verify};
    use crate::verify::VerificationConfig;

    fn run(body: &[u8]) -> Verified {
        let cfg = VerificationConfig::new(Provider::None);
        verify(&cfg, &headers(&[("X-Anything", "x")]), body, 0).unwrap()
    }

    #[test]
    fn any_request_passes_with_json_type() {
        let verified = run(br#"{"type":"user.created","id":"u1"}"#);
        assert_eq!(verified.provider(), Provider::None);
        assert_eq!(verified.event_type(), Some("user.created"));
        assert_eq!(verified.delivery_id(), None);
    }

    #[test]
    fn non_object_or_non_string_type_yields_none() {
        for body in [
            &b""[..],
            b"not json",
            b"[1,2]",
            br#""type""#,
            br#"{"type":3}"#,
            br#"{"type":""}"#,
            br#"{"type":"a\u0000b"}"#,
        ] {
            assert_eq!(run(body).event_type(), None, "{body:?}");
        }
    }

    #[test]
    fn ignores_signature_headers_entirely() {
        let cfg = VerificationConfig::new(Provider::None);
        let map = headers(&[("X-Hub-Signature-256", "sha256=garbage")]);
        assert!(verify(&cfg, &map, b"{}", i64::MIN).is_ok());
    }
}
