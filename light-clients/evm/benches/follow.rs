//! Following a QBFT chain (4 validators, 3 committed seals per header) against
//! the raw cost of recovering its seals, so the light client's overhead over
//! signature recovery can be read off one run; plus the same recoveries through
//! `k256`, the pure-Rust alternative.
#![allow(missing_docs)]

#[path = "../tests/common/chain.rs"]
mod chain;

use std::time::Duration;

use chain::BftChain;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use isthmus_light_client_evm::bft::{committed_seal_hash, BftExtraData};
use isthmus_light_client_evm::{
    recover_address, recover_address_k256, BftKind, EvmLightClient, B256,
};

const HEADERS: usize = 2_000;

fn benches(c: &mut Criterion) {
    let mut chain = BftChain::new(BftKind::Qbft, 4);
    let start = EvmLightClient::bft(BftKind::Qbft, chain.checkpoint(), &chain.head, 30_000)
        .expect("genesis checkpoint");
    let headers = chain.extend_plain(HEADERS, 3);
    let seals: Vec<(B256, [u8; 65])> = headers
        .iter()
        .flat_map(|h| {
            let e = BftExtraData::decode(BftKind::Qbft, &h.extra_data).expect("decodes");
            let d = committed_seal_hash(BftKind::Qbft, h, &e);
            e.seals.into_iter().map(move |s| (d, s))
        })
        .collect();
    assert_eq!(seals.len(), 3 * HEADERS);
    start
        .clone()
        .verify_headers(headers.clone())
        .expect("the chain verifies");

    let mut g = c.benchmark_group("follow_qbft_4_validators");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(HEADERS as u64));
    g.bench_function("verify_headers_2000", |b| {
        b.iter_batched(
            || (start.clone(), headers.clone()),
            |(mut lc, hs)| lc.verify_headers(hs).expect("verifies"),
            BatchSize::LargeInput,
        )
    });
    g.throughput(Throughput::Elements(seals.len() as u64));
    g.bench_function("recover_6000_seals_secp256k1", |b| {
        b.iter(|| {
            for (d, s) in &seals {
                black_box(recover_address(black_box(d), black_box(s)).expect("recovers"));
            }
        })
    });
    g.bench_function("recover_6000_seals_k256", |b| {
        b.iter(|| {
            for (d, s) in &seals {
                black_box(recover_address_k256(black_box(d), black_box(s)).expect("recovers"));
            }
        })
    });
    g.finish();
}

criterion_group!(all, benches);
criterion_main!(all);
