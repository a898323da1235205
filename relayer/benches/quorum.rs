//! The attestation quorum check (2 of 3, two recoveries): the protocol's `k256`
//! recovery against the relayer's libsecp256k1 backend, same attestations, same run.
#![allow(missing_docs)]
#![expect(clippy::unwrap_used, reason = "benchmark setup")]

use criterion::{criterion_group, criterion_main, Criterion};
use isthmus_protocol::attestation::address_of;
use isthmus_protocol::{Attestation, SignerSet};
use isthmus_relayer::verified::recover_signer;
use k256::ecdsa::SigningKey;

fn quorum(c: &mut Criterion) {
    let keys: Vec<SigningKey> = (1u8..=3)
        .map(|i| SigningKey::from_bytes(&[i; 32].into()).unwrap())
        .collect();
    let set = SignerSet::new(
        keys.iter().map(|k| address_of(k.verifying_key())).collect(),
        2,
    )
    .unwrap();
    let digest = [0x5a; 32];
    let atts: Vec<Attestation> = keys[..2]
        .iter()
        .map(|k| Attestation::sign(k, &digest).unwrap())
        .collect();
    assert_eq!(
        set.verify(&digest, &atts).unwrap(),
        set.verify_with(&digest, &atts, recover_signer).unwrap()
    );
    let mut g = c.benchmark_group("quorum_2_of_3");
    g.sample_size(50);
    g.bench_function("k256 (protocol)", |b| {
        b.iter(|| set.verify(&digest, &atts).unwrap())
    });
    g.bench_function("libsecp256k1 (relayer)", |b| {
        b.iter(|| set.verify_with(&digest, &atts, recover_signer).unwrap())
    });
    g.finish();
}

criterion_group!(all, quorum);
criterion_main!(all);
