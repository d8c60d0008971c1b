//! One attempt: build the request for one delivery, send it, decide what follows, record it.
//!
//! What is sent: the event's body byte for byte with its content type; the stored provider
//! headers (all of them, or `[delivery] forward_headers`), minus hop-by-hop and anything
//! hookgate sets itself; then hookgate's own headers — `webhook-id` (the event id, the same on
//! every retry), `webhook-timestamp`, `webhook-signature` (Standard Webhooks, every signing key
//! of the destination still in its grace period), `<prefix>event-type`, `<prefix>attempt`,
//! `<prefix>delivery-id` — and last the destination's auth and custom headers.
//!
//! The decision is the pure pair `retry::classify` + `retry::next_delay`; this file only
//! turns it into a `NextStep` and hands everything to `Store::record_attempt`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::client::{AttemptResult, DeliveryClient, OutboundRequest};
use super::retry::{classify, next_delay, Verdict};
use super::signer::{sign, SigningSecret};
use crate::ids::now_ms;
use crate::model::{Attempt, AttemptFailure, Delivery, Destination, DestinationAuth, Event};
use crate::store::deliveries::{DueEntry, HealthPolicy, NextStep, Outcome, Recorded};
use crate::store::{Store, StoreError};

/// Bytes of a response body kept in the attempt log.
pub const RESPONSE_BODY_KEPT_BYTES: usize = 4096;

/// Stored headers never forwarded: framing, credentials, and what hookgate sets itself.
const NOT_FORWARDED: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "authorization",
    "cookie",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "expect",
];

/// Delivery settings that are the same for every attempt.
#[derive(Debug, Clone)]
pub struct AttemptSettings {
    /// Prefix of hookgate's informational headers, e.g. `x-hookgate-`.
    pub header_prefix: String,
    /// Stored headers to forward by name; empty forwards all of them.
    pub forward_headers: Vec<String>,
    pub health: HealthPolicy,
}

/// How one attempt ended, for the scheduler.
#[derive(Debug, Clone)]
pub struct Finished {
    pub entry: DueEntry,
    pub succeeded: bool,
    /// The delivery's next queue entry, when it will be tried again.
    pub retry: Option<DueEntry>,
    /// Why this attempt disabled the destination (410, or a health threshold).
    pub disabled: Option<String>,
    pub status_code: Option<u16>,
    pub duration: Duration,
    /// `delivered`, `retry`, `dead_letter`, or `dropped` (nothing left to deliver).
    pub outcome: &'static str,
}

fn header(name: &str) -> Option<HeaderName> {
    HeaderName::from_bytes(name.as_bytes()).ok()
}

/// The request for one attempt. Pure apart from the clock value passed in.
pub fn build_request(
    event: &Event,
    delivery: &Delivery,
    destination: &Destination,
    attempt_number: u32,
    settings: &AttemptSettings,
    now_s: i64,
) -> OutboundRequest {
    let mut headers = HeaderMap::new();
    let prefix = settings.header_prefix.to_ascii_lowercase();
    for (name, value) in &event.headers {
        let lower = name.to_ascii_lowercase();
        if NOT_FORWARDED.contains(&lower.as_str()) || lower.starts_with(&prefix) {
            continue;
        }
        if !settings.forward_headers.is_empty()
            && !settings
                .forward_headers
                .iter()
                .any(|f| f.eq_ignore_ascii_case(&lower))
        {
            continue;
        }
        if let (Some(n), Ok(v)) = (header(&lower), HeaderValue::from_bytes(value)) {
            headers.append(n, v);
        }
    }
    if let Some(ct) = event
        .content_type
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        headers.insert(http::header::CONTENT_TYPE, ct);
    }

    let msg_id = event.id.to_string();
    let secrets: Vec<SigningSecret> = destination
        .signing_keys
        .iter()
        .filter(|k| k.expires_at_ms.is_none_or(|t| t > (now_s as u64) * 1000))
        .filter_map(|k| SigningSecret::parse(&k.secret).ok())
        .collect();
    let refs: Vec<&SigningSecret> = secrets.iter().collect();
    let signature = sign(&msg_id, now_s, &event.body, &refs);
    let mut set = |name: &str, value: String| {
        if let (Some(n), Ok(v)) = (header(name), HeaderValue::from_str(&value)) {
            headers.insert(n, v);
        }
    };
    set("webhook-id", msg_id);
    set("webhook-timestamp", now_s.to_string());
    if !signature.is_empty() {
        set("webhook-signature", signature);
    }
    if let Some(t) = &event.event_type {
        set(&format!("{prefix}event-type"), t.clone());
    }
    set(&format!("{prefix}attempt"), attempt_number.to_string());
    set(&format!("{prefix}delivery-id"), delivery.id.to_string());
    for (name, value) in &destination.headers {
        set(&name.to_ascii_lowercase(), value.clone());
    }
    match &destination.auth {
        Some(DestinationAuth::Bearer { token }) => {
            set("authorization", format!("Bearer {token}"));
        }
        Some(DestinationAuth::Basic { username, password }) => {
            let raw = format!("{username}:{password}");
            set(
                "authorization",
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                ),
            );
        }
        None => {}
    }
    OutboundRequest {
        url: destination.url.clone(),
        headers,
        body: event.body.clone(),
        timeout: Duration::from_millis(u64::from(destination.timeout_ms)),
    }
}

/// The step after an attempt, from the destination's policy.
pub fn decide(
    result: &AttemptResult,
    delivery: &Delivery,
    destination: &Destination,
    now: u64,
) -> (NextStep, Option<String>) {
    let attempts_made = delivery
        .attempts
        .saturating_sub(delivery.retry_base)
        .saturating_add(1);
    let retry = |retry_after| match next_delay(
        &destination.retry,
        attempts_made,
        retry_after,
        &mut rand::thread_rng(),
    ) {
        Some(d) => NextStep::RetryAt(now.saturating_add(d.as_millis() as u64)),
        None => NextStep::DeadLetter,
    };
    match classify(&result.outcome) {
        Verdict::Delivered => (NextStep::Delivered, None),
        Verdict::DisableDestination => (
            retry(None),
            Some("the destination answered 410 Gone".to_owned()),
        ),
        Verdict::Retry { retry_after, .. } => (retry(retry_after), None),
    }
}

fn failure(result: &AttemptResult) -> Option<AttemptFailure> {
    result.error.as_ref().map(|e| AttemptFailure {
        kind: e.kind.as_str().to_owned(),
        message: e.message.clone(),
    })
}

/// Runs one attempt of `entry` end to end. Errors are storage errors from recording it; the
/// delivery then stays queued and is tried again after a restart.
pub async fn run(
    store: &Store,
    client: &DeliveryClient,
    settings: &AttemptSettings,
    entry: DueEntry,
    destination: Option<&Destination>,
) -> Result<Finished, StoreError> {
    run_with(store, client, settings, entry, destination, false)
        .await
        .map(|(f, _)| f)
}

/// One attempt that is never retried (a test send): any failure ends the delivery. Also
/// returns the recorded attempt.
pub async fn run_once(
    store: &Store,
    client: &DeliveryClient,
    settings: &AttemptSettings,
    entry: DueEntry,
    destination: &Destination,
) -> Result<(Finished, Option<Attempt>), StoreError> {
    run_with(store, client, settings, entry, Some(destination), true).await
}

async fn run_with(
    store: &Store,
    client: &DeliveryClient,
    settings: &AttemptSettings,
    entry: DueEntry,
    destination: Option<&Destination>,
    once: bool,
) -> Result<(Finished, Option<Attempt>), StoreError> {
    let started_ms = now_ms();
    let finished = |succeeded, retry, disabled, status_code, duration, outcome| Finished {
        entry,
        succeeded,
        retry,
        disabled,
        status_code,
        duration,
        outcome,
    };
    let delivery = store.delivery(entry.event, entry.delivery)?;
    let event = store.event(entry.account, entry.event)?;
    let (Some(delivery), Some(event)) = (delivery, event) else {
        // Removed by retention while queued: nothing left to deliver.
        return Ok((
            finished(false, None, None, None, Duration::ZERO, "dropped"),
            None,
        ));
    };
    let attempt_number = delivery.attempts.saturating_add(1);

    let Some(destination) = destination else {
        let attempt = Attempt {
            attempt: attempt_number,
            delivery_id: entry.delivery,
            destination_id: entry.destination,
            started_at_ms: started_ms,
            duration_ms: 0,
            status_code: None,
            error: Some(AttemptFailure {
                kind: "destination_deleted".into(),
                message: "the destination was deleted".into(),
            }),
            response_body: String::new(),
        };
        record(
            store,
            settings,
            &entry,
            attempt.clone(),
            NextStep::DeadLetter,
            None,
        )
        .await?;
        return Ok((
            finished(false, None, None, None, Duration::ZERO, "dead_letter"),
            Some(attempt),
        ));
    };

    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let request = build_request(
        &event,
        &delivery,
        destination,
        attempt_number,
        settings,
        now_s,
    );
    let result = client.send(request).await;
    let (mut next, disable_now) = decide(&result, &delivery, destination, now_ms());
    if once && next != NextStep::Delivered {
        next = NextStep::DeadLetter;
    }
    let attempt = Attempt {
        attempt: attempt_number,
        delivery_id: entry.delivery,
        destination_id: entry.destination,
        started_at_ms: started_ms,
        duration_ms: result.duration.as_millis() as u64,
        status_code: result.status_code,
        error: failure(&result),
        response_body: String::from_utf8_lossy(
            &result.response_body[..result.response_body.len().min(RESPONSE_BODY_KEPT_BYTES)],
        )
        .into_owned(),
    };
    let outcome = match next {
        NextStep::Delivered => "delivered",
        NextStep::RetryAt(_) => "retry",
        NextStep::DeadLetter => "dead_letter",
    };
    let recorded = record(store, settings, &entry, attempt.clone(), next, disable_now).await?;
    let retry = match recorded.delivery.next_attempt_at_ms {
        Some(at) if outcome == "retry" => Some(DueEntry {
            due_ms: at,
            ..entry
        }),
        _ => None,
    };
    let mut attempt = attempt;
    attempt.attempt = recorded.delivery.attempts;
    Ok((
        finished(
            outcome == "delivered",
            retry,
            recorded.disabled.clone(),
            result.status_code,
            result.duration,
            outcome,
        ),
        Some(attempt),
    ))
}

async fn record(
    store: &Store,
    settings: &AttemptSettings,
    entry: &DueEntry,
    attempt: Attempt,
    next: NextStep,
    disable_now: Option<String>,
) -> Result<Recorded, StoreError> {
    store
        .record_attempt(
            Outcome {
                account: entry.account,
                event: entry.event,
                delivery: entry.delivery,
                attempt,
                next,
                disable_now,
            },
            settings.health,
        )
        .await
}
