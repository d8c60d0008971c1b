//! Route matching, which runs on every ingest: one account with 50 routes, against the
//! baseline of a single exact string comparison. Report match/baseline.

use criterion::{criterion_group, criterion_main, Criterion};
use hookgate::ids::{AccountId, DestinationId, RouteId, SourceId};
use hookgate::model::Route;
use hookgate::routing::pattern::EventTypePattern;
use hookgate::routing::AccountRoutes;

fn bench(c: &mut Criterion) {
    let source = SourceId(7);
    let routes: Vec<Route> = (0..50u128)
        .map(|i| Route {
            id: RouteId(i),
            account_id: AccountId(1),
            source_id: (i % 2 == 0).then_some(source),
            destination_id: DestinationId(i % 20),
            event_type_pattern: Some(
                EventTypePattern::parse(match i % 5 {
                    0 => "invoice.*",
                    1 => "customer.*, charge.*",
                    2 => "*.failed",
                    3 => "orders/*",
                    _ => "payment_intent.succeeded",
                })
                .unwrap(),
            ),
            created_at_ms: 0,
        })
        .collect();
    let table = AccountRoutes::new(routes);
    let pattern = EventTypePattern::parse("invoice.*, customer.*, *.failed").unwrap();

    let mut group = c.benchmark_group("routing");
    group.bench_function("baseline_str_eq", |b| {
        b.iter(|| {
            std::hint::black_box("invoice.payment.failed")
                == std::hint::black_box("invoice.payment.failed")
        })
    });
    group.bench_function("pattern_3_globs", |b| {
        b.iter(|| pattern.matches(std::hint::black_box("invoice.payment.failed")))
    });
    group.bench_function("account_50_routes", |b| {
        b.iter(|| table.destinations(source, Some(std::hint::black_box("invoice.payment.failed"))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
