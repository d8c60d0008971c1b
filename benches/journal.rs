//! Durable appends by batch size: N concurrent `append_event` calls (1 KiB bodies, one delivery
//! each) against a real redb file. The baseline is batch size 1 (one fsync per event); report
//! per-event time at 16 and 256 as ratios of it. Disk speed swings between runs here, so only
//! ratios within one run mean anything.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hookgate::config::{Config, RawConfig};
use hookgate::ids::{AccountId, DestinationId, EventId, SourceId};
use hookgate::model::{Event, Origin};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut raw = RawConfig::default();
    raw.storage.data_dir = dir.path().to_owned();
    let config = Config::from_raw(raw, &|_| None).unwrap();
    let (store, _thread) = rt
        .block_on(async {
            hookgate::store::Store::open(&config.storage, &prometheus::Registry::new())
        })
        .unwrap();
    let (account, source, destination) = (AccountId::new(), SourceId::new(), DestinationId::new());
    let event = move || Event {
        id: EventId::new(),
        account_id: account,
        source_id: source,
        origin: Origin::Inbound,
        received_at_ms: hookgate::ids::now_ms(),
        event_type: Some("bench".into()),
        dedupe_key: None,
        content_type: None,
        headers: vec![],
        body: vec![b'x'; 1024].into(),
    };

    let mut group = c.benchmark_group("journal_append_1KiB");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for batch in [1usize, 16, 256] {
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &batch| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let started = Instant::now();
                    for _ in 0..iters {
                        let writes: Vec<_> = (0..batch)
                            .map(|_| {
                                let store = store.clone();
                                let e = event();
                                tokio::spawn(async move {
                                    store
                                        .append_event(e, vec![destination], Duration::ZERO)
                                        .await
                                        .unwrap()
                                })
                            })
                            .collect();
                        for w in writes {
                            w.await.unwrap();
                        }
                    }
                    started.elapsed()
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
