//! Fuzzes inbound signature verification (`hookgate::verify`), the first code
//! to touch an attacker's request: headers and body arrive before anything
//! about the sender is known, so no input may panic a parser or a verifier.
//!
//! The input is text split on `\n` into slots (a missing slot is empty):
//!
//! | line | slot                                                            |
//! |------|-----------------------------------------------------------------|
//! | 0    | `now` in unix seconds (default 1614265330 if not an `i64`)     |
//! | 1    | timestamp (`x-slack-request-timestamp`, `webhook-timestamp`)    |
//! | 2    | `Stripe-Signature`                                              |
//! | 3    | `X-Hub-Signature-256`                                           |
//! | 4    | `X-Shopify-Hmac-Sha256`                                         |
//! | 5    | `X-Slack-Signature`                                             |
//! | 6    | `webhook-signature` (`svix-signature` in the svix request)      |
//! | 7    | `webhook-id`                                                    |
//! | 8    | `X-Signature` (the generic `hmac` provider)                     |
//! | 9    | event type header (`X-GitHub-Event`, `X-Shopify-Topic`, ...)    |
//! | 10   | delivery id header (`X-GitHub-Delivery`, ...)                   |
//! | 11   | a secret, for `standard::decode_secret` and a fuzzed config     |
//! | rest | the body (may itself contain newlines)                          |
//!
//! Checks, per input:
//! 1. Every public parser (`stripe::parse_header`, `github`/`shopify`/
//!    `slack`/`generic::parse_signature`, `standard::parse_signatures`,
//!    `standard::decode_secret`) runs on its slot without panicking, and what
//!    it accepts satisfies its documented shape (e.g. no empty signature).
//! 2. Every provider's verifier runs on a `HeaderMap` built from the slots
//!    (once with `webhook-*`, once with `svix-*` headers). The fuzzer cannot
//!    forge an HMAC, so only the `none` provider may accept.
//! 3. A signed pass: the harness computes the correct MAC itself (with the
//!    `hmac`/`sha*` crates, independently of hookgate) over the fuzzed body,
//!    id and timestamp, so the code after the MAC check (timestamp
//!    tolerance, JSON event type / delivery id extraction) is reached too.
//!    The verdict must then be exactly `Ok` or `TimestampOutOfTolerance`
//!    with the right age, and extracted keys must be valid index keys.
//! 4. A config built from the fuzzed secret and slot names: whatever
//!    `VerificationConfig::validate` accepts, `build` must accept too.

#![no_main]

use std::sync::{Arc, LazyLock};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use hookgate::verify::{
    self, generic, github, shopify, slack, standard, stripe, HmacAlgorithm, Provider,
    SignatureEncoding, Unverified, VerificationConfig, Verified, Verifier, VerifyError,
    DEFAULT_TOLERANCE_S, MAX_KEY_LEN,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

/// The `t` of Stripe's documented example header; the default `now`.
const DEFAULT_NOW: i64 = 1_614_265_330;
/// Largest timestamp of at most 18 digits, the most hookgate parses.
const MAX_TIMESTAMP: i64 = 999_999_999_999_999_999;
/// Number of header slots before the body.
const SLOTS: usize = 12;

const STRIPE_SECRET: &str = "whsec_fuzz_stripe_secret";
const RAW_SECRET: &str = "fuzz-shared-secret";
/// Standard Webhooks secret: `whsec_` + base64 of 24 bytes.
const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Generic `hmac` provider variants, covering each algorithm and encoding.
const GENERIC_VARIANTS: [(HmacAlgorithm, SignatureEncoding, Option<&str>); 3] = [
    (
        HmacAlgorithm::Sha256,
        SignatureEncoding::Hex,
        Some("sha256="),
    ),
    (HmacAlgorithm::Sha1, SignatureEncoding::Base64, None),
    (HmacAlgorithm::Sha512, SignatureEncoding::Hex, None),
];
const GENERIC_HEADER: &str = "X-Signature";
const GENERIC_EVENT_HEADER: &str = "X-Event-Type";
const GENERIC_DELIVERY_HEADER: &str = "X-Delivery-Id";

struct Verifiers {
    stripe: Arc<dyn Verifier>,
    github: Arc<dyn Verifier>,
    shopify: Arc<dyn Verifier>,
    slack: Arc<dyn Verifier>,
    standard: Arc<dyn Verifier>,
    generic: Vec<Arc<dyn Verifier>>,
    none: Arc<dyn Verifier>,
}

/// Built once: `build` keys the MACs, which is the expensive part.
static VERIFIERS: LazyLock<Verifiers> = LazyLock::new(|| {
    let keyed = |provider, secret: &str| {
        let mut cfg = VerificationConfig::new(provider);
        cfg.secret = Some(secret.to_owned());
        built(&cfg)
    };
    Verifiers {
        stripe: keyed(Provider::Stripe, STRIPE_SECRET),
        github: keyed(Provider::Github, RAW_SECRET),
        shopify: keyed(Provider::Shopify, RAW_SECRET),
        slack: keyed(Provider::Slack, RAW_SECRET),
        standard: keyed(Provider::StandardWebhooks, STANDARD_SECRET),
        generic: GENERIC_VARIANTS
            .iter()
            .map(|&(algorithm, encoding, prefix)| {
                built(&generic_config(algorithm, encoding, prefix))
            })
            .collect(),
        none: built(&VerificationConfig::new(Provider::None)),
    }
});

fn generic_config(
    algorithm: HmacAlgorithm,
    encoding: SignatureEncoding,
    prefix: Option<&str>,
) -> VerificationConfig {
    let mut cfg = VerificationConfig::new(Provider::Hmac);
    cfg.secret = Some(RAW_SECRET.to_owned());
    cfg.header = Some(GENERIC_HEADER.to_owned());
    cfg.prefix = prefix.map(str::to_owned);
    cfg.algorithm = Some(algorithm);
    cfg.encoding = Some(encoding);
    cfg.event_type_header = Some(GENERIC_EVENT_HEADER.to_owned());
    cfg.event_type_pointer = Some("/type".to_owned());
    cfg.delivery_id_header = Some(GENERIC_DELIVERY_HEADER.to_owned());
    cfg
}

/// Builds a fixed, known-good config; failing here is a harness bug.
fn built(cfg: &VerificationConfig) -> Arc<dyn Verifier> {
    match verify::build(cfg) {
        Ok(v) => v,
        Err(e) => panic!("fixed {} config must build: {e}", cfg.provider),
    }
}

/// Provider header constants are mixed-case canonical spellings; `from_bytes`
/// lowercases them. They are constants, so failing here is a harness bug.
fn name(s: &str) -> HeaderName {
    HeaderName::from_bytes(s.as_bytes()).expect("header name constants are valid")
}

/// Inserts `value` under `name` if it is a legal header value; the parsers
/// see the raw slot anyway, so an illegal one is simply left out.
fn insert(map: &mut HeaderMap, name: &str, value: &[u8]) {
    if value.is_empty() {
        return;
    }
    if let Ok(v) = HeaderValue::from_bytes(value) {
        map.insert(self::name(name), v);
    }
}

fn mac(algorithm: HmacAlgorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut mac = <M as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }
    match algorithm {
        HmacAlgorithm::Sha1 => run::<Hmac<sha1::Sha1>>(key, parts),
        HmacAlgorithm::Sha256 => run::<Hmac<sha2::Sha256>>(key, parts),
        HmacAlgorithm::Sha512 => run::<Hmac<sha2::Sha512>>(key, parts),
    }
}

fn is_index_key(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_KEY_LEN && !s.chars().any(char::is_control)
}

/// What a header slot yields as event type / delivery id: the slot itself
/// when it could be sent as a header value and is a valid index key.
fn slot_key(slot: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(slot).ok()?;
    (is_index_key(s) && HeaderValue::from_bytes(slot).is_ok()).then_some(s)
}

/// What every accepted request must satisfy, whoever accepted it.
fn check_verified(provider: Provider, verified: &Verified) {
    assert_eq!(verified.provider(), provider);
    if let Some(t) = verified.event_type() {
        assert!(is_index_key(t), "{provider}: unusable event type {t:?}");
    }
    if let Some(id) = verified.delivery_id() {
        assert!(is_index_key(id), "{provider}: unusable delivery id {id:?}");
    }
}

fn run(
    v: &dyn Verifier,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<Verified, VerifyError> {
    let req = Unverified {
        headers,
        body,
        now_unix_s: now,
    };
    let result = v.verify(&req);
    match &result {
        Ok(verified) => check_verified(v.provider(), verified),
        // `reason` and `Display` feed the HTTP error and metrics: exercise them.
        Err(e) => {
            assert!(!e.reason().is_empty());
            let _ = e.to_string();
        }
    }
    result
}

/// Step 1: each parser on its slot, plus the shape of what it accepts.
fn parsers(slots: &[&[u8]; SLOTS]) {
    if let Ok(h) = stripe::parse_header(slots[2]) {
        assert!(
            h.timestamp >= 0,
            "negative stripe timestamp {}",
            h.timestamp
        );
        assert!(!h.v1.is_empty() && h.v1.iter().all(|s| !s.is_empty()));
        assert!(h.timestamp_raw.iter().all(u8::is_ascii_digit));
    }
    for (slot, parse) in [
        (slots[3], github::parse_signature as fn(&[u8]) -> _),
        (slots[4], shopify::parse_signature),
        (slots[5], slack::parse_signature),
    ] {
        let _ = parse(slot);
    }
    if let Ok(sigs) = standard::parse_signatures(slots[6]) {
        assert!(!sigs.is_empty() && sigs.iter().all(|s| !s.is_empty()));
    }
    if let Ok(secret) = std::str::from_utf8(slots[11]) {
        if let Ok(key) = standard::decode_secret(secret) {
            assert!(!key.is_empty(), "decoded secret {secret:?} is empty");
        }
    }
    let fuzzed_prefix = std::str::from_utf8(slots[9]).ok();
    for encoding in [SignatureEncoding::Hex, SignatureEncoding::Base64] {
        for prefix in [None, Some("sha256="), fuzzed_prefix] {
            if let Ok(sig) = generic::parse_signature(slots[8], prefix, encoding) {
                assert!(!sig.is_empty(), "generic accepted an empty signature");
            }
        }
    }
}

/// Step 2: every verifier on the raw, unsigned slots.
fn unsigned(slots: &[&[u8]; SLOTS], body: &[u8], now: i64) {
    let v = &*VERIFIERS;
    for svix in [false, true] {
        let family = if svix { "svix" } else { "webhook" };
        let mut map = HeaderMap::new();
        insert(&mut map, stripe::SIGNATURE_HEADER, slots[2]);
        insert(&mut map, github::SIGNATURE_HEADER, slots[3]);
        insert(&mut map, shopify::SIGNATURE_HEADER, slots[4]);
        insert(&mut map, slack::SIGNATURE_HEADER, slots[5]);
        insert(&mut map, slack::TIMESTAMP_HEADER, slots[1]);
        insert(&mut map, &format!("{family}-signature"), slots[6]);
        insert(&mut map, &format!("{family}-id"), slots[7]);
        insert(&mut map, &format!("{family}-timestamp"), slots[1]);
        insert(&mut map, GENERIC_HEADER, slots[8]);
        for event in ["X-GitHub-Event", "X-Shopify-Topic", GENERIC_EVENT_HEADER] {
            insert(&mut map, event, slots[9]);
        }
        for id in [
            "X-GitHub-Delivery",
            "X-Shopify-Webhook-Id",
            GENERIC_DELIVERY_HEADER,
        ] {
            insert(&mut map, id, slots[10]);
        }
        let keyed = [&v.stripe, &v.github, &v.shopify, &v.slack, &v.standard]
            .into_iter()
            .chain(&v.generic);
        for verifier in keyed {
            // Forging an HMAC-SHA* under a secret the fuzzer never sees would
            // be a break of HMAC, or (far likelier) a verifier accepting
            // without checking: either way, a bug.
            if let Ok(verified) = run(&**verifier, &map, body, now) {
                panic!(
                    "{} accepted an unsigned request: {verified:?}",
                    verifier.provider()
                );
            }
        }
        assert!(run(&*v.none, &map, body, now).is_ok(), "none must accept");
    }
}

/// Step 3: correctly signed requests must pass, up to the timestamp window.
fn signed(slots: &[&[u8]; SLOTS], body: &[u8], now: i64) {
    let v = &*VERIFIERS;
    // A timestamp that every provider accepts as unix seconds: the fuzzed
    // one when it is 1..=18 ASCII digits, else `now` clamped to that range.
    let ts_text: Vec<u8> = match slots[1] {
        t if (1..=18).contains(&t.len()) && t.iter().all(u8::is_ascii_digit) => t.to_vec(),
        _ => now.clamp(0, MAX_TIMESTAMP).to_string().into_bytes(),
    };
    let ts: i64 = ts_text
        .iter()
        .fold(0, |acc, d| acc * 10 + i64::from(d - b'0'));
    let age_s = now.saturating_sub(ts);
    let in_window = age_s.unsigned_abs() <= DEFAULT_TOLERANCE_S;
    let timed = |provider: Provider, result: Result<Verified, VerifyError>| match result {
        Ok(_) if in_window => {}
        Err(VerifyError::TimestampOutOfTolerance { age_s: got }) if !in_window => {
            assert_eq!(got, age_s, "{provider}: wrong age for t={ts} now={now}");
        }
        other => {
            panic!("{provider}: signed request with t={ts} now={now} (age {age_s}) gave {other:?}")
        }
    };
    let untimed = |provider: Provider, result: Result<Verified, VerifyError>| {
        if let Err(e) = result {
            panic!("{provider}: correctly signed request refused: {e:?}");
        }
    };
    let with_event_headers = |map: &mut HeaderMap| {
        for event in ["X-GitHub-Event", "X-Shopify-Topic", GENERIC_EVENT_HEADER] {
            insert(map, event, slots[9]);
        }
        for id in [
            "X-GitHub-Delivery",
            "X-Shopify-Webhook-Id",
            GENERIC_DELIVERY_HEADER,
        ] {
            insert(map, id, slots[10]);
        }
    };
    let sha256 = HmacAlgorithm::Sha256;
    let raw_key = RAW_SECRET.as_bytes();

    // Stripe: t=<ts>,v1=<hex> over "<ts>.<body>", keyed with the whole secret.
    let mut map = HeaderMap::new();
    let sig = hex::encode(mac(
        sha256,
        STRIPE_SECRET.as_bytes(),
        &[&ts_text, b".", body],
    ));
    let value = [b"t=", &ts_text[..], b",v1=", sig.as_bytes()].concat();
    insert(&mut map, stripe::SIGNATURE_HEADER, &value);
    timed(Provider::Stripe, run(&*v.stripe, &map, body, now));

    // GitHub: sha256=<hex> over the body.
    let mut map = HeaderMap::new();
    with_event_headers(&mut map);
    let sig = format!("sha256={}", hex::encode(mac(sha256, raw_key, &[body])));
    insert(&mut map, github::SIGNATURE_HEADER, sig.as_bytes());
    untimed(Provider::Github, run(&*v.github, &map, body, now));

    // Shopify: base64 over the body; type and id straight from the headers.
    let mut map = HeaderMap::new();
    with_event_headers(&mut map);
    let sig = BASE64.encode(mac(sha256, raw_key, &[body]));
    insert(&mut map, shopify::SIGNATURE_HEADER, sig.as_bytes());
    let result = run(&*v.shopify, &map, body, now);
    if let Ok(verified) = &result {
        assert_eq!(verified.event_type(), slot_key(slots[9]), "shopify topic");
        assert_eq!(verified.delivery_id(), slot_key(slots[10]), "shopify id");
    }
    untimed(Provider::Shopify, result);

    // Slack: v0=<hex> over "v0:<ts>:<body>".
    let mut map = HeaderMap::new();
    let sig = format!(
        "v0={}",
        hex::encode(mac(sha256, raw_key, &[b"v0:", &ts_text, b":", body]))
    );
    insert(&mut map, slack::SIGNATURE_HEADER, sig.as_bytes());
    insert(&mut map, slack::TIMESTAMP_HEADER, &ts_text);
    timed(Provider::Slack, run(&*v.slack, &map, body, now));

    // Standard Webhooks / Svix: v1,<base64> over "<id>.<ts>.<body>", keyed
    // with the base64-decoded secret. The fuzzed id is signed as sent.
    let id: &[u8] = match slots[7] {
        id if !id.is_empty() && HeaderValue::from_bytes(id).is_ok() => id,
        _ => b"msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
    };
    let key = STANDARD_SECRET
        .strip_prefix(standard::SECRET_PREFIX)
        .and_then(|k| BASE64.decode(k).ok())
        .expect("the fixed Standard Webhooks secret is whsec_ + base64");
    let sig = BASE64.encode(mac(sha256, &key, &[id, b".", &ts_text, b".", body]));
    // Other versions and the fuzzed signature slot ride along; only a
    // matching v1 entry should count.
    let value = [b"v1a,AAAA v1,", sig.as_bytes()].concat();
    for family in ["webhook", "svix"] {
        let mut map = HeaderMap::new();
        insert(&mut map, &format!("{family}-signature"), &value);
        insert(&mut map, &format!("{family}-id"), id);
        insert(&mut map, &format!("{family}-timestamp"), &ts_text);
        let result = run(&*v.standard, &map, body, now);
        if let Ok(verified) = &result {
            let expected = std::str::from_utf8(id).ok().filter(|s| is_index_key(s));
            assert_eq!(verified.delivery_id(), expected, "{family}-id");
        }
        timed(Provider::StandardWebhooks, result);
    }

    // Generic hmac, each algorithm and encoding, with its optional prefix.
    for (&(algorithm, encoding, prefix), verifier) in GENERIC_VARIANTS.iter().zip(&v.generic) {
        let raw = mac(algorithm, raw_key, &[body]);
        let encoded = match encoding {
            SignatureEncoding::Hex => hex::encode(raw),
            SignatureEncoding::Base64 => BASE64.encode(raw),
        };
        let mut map = HeaderMap::new();
        with_event_headers(&mut map);
        let value = format!("{}{encoded}", prefix.unwrap_or_default());
        insert(&mut map, GENERIC_HEADER, value.as_bytes());
        untimed(Provider::Hmac, run(&**verifier, &map, body, now));
    }
}

/// Step 4: `validate` and `build` must agree on fuzzed configs.
fn fuzzed_config(slots: &[&[u8]; SLOTS]) {
    let text = |slot: &[u8]| std::str::from_utf8(slot).ok().map(str::to_owned);
    for provider in [
        Provider::Stripe,
        Provider::Github,
        Provider::Shopify,
        Provider::StandardWebhooks,
        Provider::Slack,
        Provider::Hmac,
        Provider::None,
    ] {
        let mut cfg = VerificationConfig::new(provider);
        cfg.secret = text(slots[11]).filter(|_| provider != Provider::None);
        if provider == Provider::Hmac {
            cfg.header = text(slots[8]);
            cfg.prefix = text(slots[2]);
            cfg.event_type_header = text(slots[9]).filter(|s| !s.is_empty());
            cfg.delivery_id_header = text(slots[10]).filter(|s| !s.is_empty());
            cfg.event_type_pointer = text(slots[7]);
        }
        let valid = cfg.validate().is_ok();
        match verify::build(&cfg) {
            Ok(built) => {
                assert!(
                    valid,
                    "{provider}: build accepted a config validate refused"
                );
                assert_eq!(built.provider(), provider);
            }
            Err(e) => assert!(!valid, "{provider}: validate accepted, build refused: {e}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut lines = data.splitn(SLOTS + 1, |b| *b == b'\n');
    let slots: [&[u8]; SLOTS] = std::array::from_fn(|_| lines.next().unwrap_or_default());
    let body = lines.next().unwrap_or_default();
    let now = std::str::from_utf8(slots[0])
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(DEFAULT_NOW);

    parsers(&slots);
    unsigned(&slots, body, now);
    signed(&slots, body, now);
    fuzzed_config(&slots);
});
