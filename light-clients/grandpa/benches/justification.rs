//! Verifying the real Polkadot justification (199 precommits, set 450 of 297):
//! batch signature verification against one verification per signature.
//!
//! Run: `cargo bench -p isthmus-light-client-grandpa`.
#![expect(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]

use criterion::{criterion_group, criterion_main, Criterion};
use ed25519_zebra::{SigningKey, VerificationKeyBytes};
use isthmus_light_client_grandpa::{
    AuthorityId, AuthoritySet, GrandpaJustification, SignatureCheck,
};

fn fixture() -> Vec<u8> {
    let dir = std::env::var_os("ISTHMUS_FIXTURES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures").into());
    let path = dir.join("substrate/polkadot-grandpa-justification-4635975.scale");
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn bench(c: &mut Criterion) {
    let bytes = fixture();
    let j = GrandpaJustification::decode_exact(&bytes).expect("fixture decodes");
    // The 199 signers plus 98 stand-ins: total weight 297 as on Polkadot (see the
    // `polkadot_justification` test for why this is a faithful set).
    let mut ids: Vec<AuthorityId> = j.commit.precommits.iter().map(|p| p.id).collect();
    ids.extend(
        (0u8..98)
            .map(|i| AuthorityId(VerificationKeyBytes::from(&SigningKey::from([i; 32])).into())),
    );
    let set =
        AuthoritySet::new(450, ids.into_iter().map(|id| (id, 1)).collect()).expect("distinct keys");
    j.verify(&set).expect("fixture verifies");

    let mut group = c.benchmark_group("polkadot_justification_199_precommits");
    group.bench_function("decode_and_verify_batch", |b| {
        b.iter(|| {
            GrandpaJustification::decode_exact(&bytes)
                .and_then(|j| j.verify_with(&set, SignatureCheck::Batch))
                .expect("verifies")
        })
    });
    group.bench_function("decode_and_verify_each_signature", |b| {
        b.iter(|| {
            GrandpaJustification::decode_exact(&bytes)
                .and_then(|j| j.verify_with(&set, SignatureCheck::EachSignature))
                .expect("verifies")
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
