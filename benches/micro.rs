//! criterion micro-benchmarks of the hot paths: request decoding, message
//! frame encoding, glob matching. `cargo bench --bench micro`.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use herald::pattern as glob;
use herald::resp::RequestDecoder;
use herald::resp::{Frame, Kind};
use std::hint::black_box;
use tokio_util::codec::Decoder;

fn decode(c: &mut Criterion) {
    let one = b"*3\r\n$7\r\nPUBLISH\r\n$12\r\nevents:order\r\n$64\r\n0123456789012345678901234567890123456789012345678901234567890123\r\n";
    let pipeline: Vec<u8> = one.iter().copied().cycle().take(one.len() * 32).collect();
    let mut g = c.benchmark_group("request_decoder");
    g.throughput(Throughput::Elements(32));
    g.bench_function("32 pipelined PUBLISH", |b| {
        b.iter(|| {
            let mut d = RequestDecoder::new(512 << 20);
            let mut buf = BytesMut::from(&pipeline[..]);
            let mut n = 0;
            while let Some(r) = d.decode(&mut buf).unwrap() {
                black_box(r);
                n += 1;
            }
            assert_eq!(n, 32);
        })
    });
    g.bench_function("inline PUBLISH", |b| {
        b.iter(|| {
            let mut d = RequestDecoder::new(512 << 20);
            let mut buf = BytesMut::from(&b"PUBLISH events:order \"hello world\"\r\n"[..]);
            black_box(d.decode(&mut buf).unwrap())
        })
    });
}

fn encode(c: &mut Criterion) {
    let channel = Bytes::from_static(b"events:order");
    let pattern = Bytes::from_static(b"events:*");
    for size in [64usize, 65536] {
        let payload = Bytes::from(vec![b'x'; size]);
        c.bench_function(&format!("message frame, {size} B payload"), |b| {
            b.iter(|| black_box(Frame::encode(Kind::Channel, None, &channel, &payload)))
        });
        c.bench_function(&format!("pmessage frame, {size} B payload"), |b| {
            b.iter(|| black_box(Frame::encode(Kind::Pattern, Some(&pattern[..]), &channel, &payload)))
        });
    }
}

fn matching(c: &mut Criterion) {
    let cases: [(&str, &[u8], &[u8]); 4] = [
        ("literal prefix + star", b"events:*", b"events:order-service:created"),
        ("two stars", b"events:*:payment_*", b"events:order-service:payment_failed"),
        ("class and ?", b"user:[0-9]?:alerts", b"user:42:alerts"),
        ("pathological stars, no match", b"a*a*a*a*a*a*a*b", b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
    ];
    for (name, p, s) in cases {
        c.bench_function(&format!("glob: {name}"), |b| b.iter(|| black_box(glob::matches(p, s))));
    }
}

criterion_group!(benches, decode, encode, matching);
criterion_main!(benches);
