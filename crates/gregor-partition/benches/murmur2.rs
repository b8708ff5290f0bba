//! `cargo bench -p gregor-partition --bench murmur2`: murmur2 and the partition choice per
//! record, for key sizes a producer sees (user ids, UUIDs, longer composite keys).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gregor_partition::{Murmur2, Partitioner, RecordView, Sticky, hash};

fn murmur2(c: &mut Criterion) {
    let mut group = c.benchmark_group("murmur2");
    for len in [8_usize, 36, 128, 1024] {
        let key: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(format!("hash/{len}B"), |b| {
            b.iter(|| hash::murmur2(black_box(&key)))
        });
    }
    group.finish();

    let keys: Vec<String> = (0..1000).map(|i| format!("user-{i}")).collect();
    let p = Murmur2::new();
    let mut group = c.benchmark_group("partition");
    group.throughput(Throughput::Elements(keys.len() as u64));
    group.bench_function("murmur2/1000 keys/12 partitions", |b| {
        b.iter(|| {
            for k in &keys {
                black_box(
                    p.partition(&RecordView::new(Some(k.as_bytes())), black_box(12))
                        .ok(),
                );
            }
        })
    });
    let sticky = Sticky::new();
    group.bench_function("sticky/1000 keyless/12 partitions", |b| {
        b.iter(|| {
            for _ in 0..1000 {
                black_box(sticky.partition(&RecordView::new(None), black_box(12)).ok());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, murmur2);
criterion_main!(benches);
