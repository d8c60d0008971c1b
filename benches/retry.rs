//! The retry decision, run after every failed attempt, against the baseline of drawing the
//! jitter random number alone. Report decision/baseline.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use hookgate::delivery::retry::{classify, next_delay, AttemptOutcome, RetryPolicy};
use rand::{Rng, SeedableRng};

fn bench(c: &mut Criterion) {
    let schedule = RetryPolicy::default();
    let exponential: RetryPolicy = serde_json::from_str(
        r#"{"initial": "1s", "factor": 2.0, "max_delay": "1h", "max_attempts": 10}"#,
    )
    .unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut group = c.benchmark_group("retry");
    group.bench_function("baseline_rng_f64", |b| {
        b.iter(|| rng.gen_range(0.8..1.2f64))
    });
    group.bench_function("schedule_next_delay", |b| {
        b.iter(|| next_delay(&schedule, std::hint::black_box(3), None, &mut rng))
    });
    group.bench_function("exponential_next_delay_retry_after", |b| {
        b.iter(|| {
            next_delay(
                &exponential,
                std::hint::black_box(4),
                Some(Duration::from_secs(30)),
                &mut rng,
            )
        })
    });
    group.bench_function("classify_503", |b| {
        b.iter(|| {
            classify(std::hint::black_box(&AttemptOutcome::Response {
                status: 503,
                retry_after: None,
            }))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
