//! Signature verification per provider on a 1 KiB body, against the baseline of one bare
//! HMAC-SHA256 over the same bytes (the floor no verifier can beat). Report verify/baseline.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hmac::{Hmac, Mac};
use hookgate::verify::{build, Provider, Unverified, VerificationConfig};
use sha2::Sha256;

fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

fn bench(c: &mut Criterion) {
    let body = vec![b'x'; 1024];
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut group = c.benchmark_group("verify_1KiB");
    group.throughput(Throughput::Bytes(body.len() as u64));

    group.bench_function("baseline_hmac_sha256", |b| {
        b.iter(|| mac(b"secret", &[std::hint::black_box(&body)]))
    });

    let mut cfg = VerificationConfig::new(Provider::Stripe);
    cfg.secret = Some("whsec_bench".into());
    let stripe = build(&cfg).unwrap();
    let mut headers = http::HeaderMap::new();
    let sig = hex::encode(mac(
        b"whsec_bench",
        &[now.to_string().as_bytes(), b".", &body],
    ));
    headers.insert(
        "stripe-signature",
        format!("t={now},v1={sig}").parse().unwrap(),
    );
    group.bench_function("stripe", |b| {
        b.iter(|| {
            stripe
                .verify(&Unverified {
                    headers: &headers,
                    body: &body,
                    now_unix_s: now,
                })
                .unwrap()
        })
    });

    let mut cfg = VerificationConfig::new(Provider::Github);
    cfg.secret = Some("gh".into());
    let github = build(&cfg).unwrap();
    let mut headers = http::HeaderMap::new();
    let sig = hex::encode(mac(b"gh", &[&body]));
    headers.insert(
        "x-hub-signature-256",
        format!("sha256={sig}").parse().unwrap(),
    );
    headers.insert("x-github-event", "push".parse().unwrap());
    group.bench_function("github", |b| {
        b.iter(|| {
            github
                .verify(&Unverified {
                    headers: &headers,
                    body: &body,
                    now_unix_s: now,
                })
                .unwrap()
        })
    });

    let key = [5u8; 24];
    let mut cfg = VerificationConfig::new(Provider::StandardWebhooks);
    cfg.secret = Some(format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    ));
    let std_wh = build(&cfg).unwrap();
    let mut headers = http::HeaderMap::new();
    let sig = base64::engine::general_purpose::STANDARD.encode(mac(
        &key,
        &[b"msg_1.", now.to_string().as_bytes(), b".", &body],
    ));
    headers.insert("webhook-id", "msg_1".parse().unwrap());
    headers.insert("webhook-timestamp", now.to_string().parse().unwrap());
    headers.insert("webhook-signature", format!("v1,{sig}").parse().unwrap());
    group.bench_function("standard_webhooks", |b| {
        b.iter(|| {
            std_wh
                .verify(&Unverified {
                    headers: &headers,
                    body: &body,
                    now_unix_s: now,
                })
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
