//! Verifying the real Polkadot justification (199 precommits, set 450 of 297):
//! the light client's batch verification (keys decompressed in the set) against, in
//! the same run, a raw `ed25519-dalek` `verify_batch` of the same 199 triples with
//! keys decompressed beforehand, a raw `ed25519-zebra` batch of them, and one
//! verification per signature.
//!
//! Run: `cargo bench -p isthmus-light-client-grandpa`.
#![expect(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]

use criterion::{criterion_group, criterion_main, Criterion};
use ed25519_zebra::{SigningKey, VerificationKeyBytes};
use isthmus_light_client_grandpa::justification::precommit_signing_payload;
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

    // The same 199 (key, signature, message) triples for the raw baselines.
    let messages: Vec<[u8; 53]> = j
        .commit
        .precommits
        .iter()
        .map(|p| precommit_signing_payload(&p.precommit, j.round, 450))
        .collect();
    let dalek_keys: Vec<ed25519_dalek::VerifyingKey> = j
        .commit
        .precommits
        .iter()
        .map(|p| ed25519_dalek::VerifyingKey::from_bytes(&p.id.0).expect("a curve point"))
        .collect();
    let dalek_signatures: Vec<ed25519_dalek::Signature> = j
        .commit
        .precommits
        .iter()
        .map(|p| ed25519_dalek::Signature::from_bytes(&p.signature))
        .collect();
    let message_refs: Vec<&[u8]> = messages.iter().map(|m| m.as_slice()).collect();
    ed25519_dalek::verify_batch(&message_refs, &dalek_signatures, &dalek_keys)
        .expect("the raw batch verifies");

    let mut group = c.benchmark_group("polkadot_justification_199_precommits");
    group.bench_function("verify_batch", |b| {
        b.iter(|| {
            j.verify_with(&set, SignatureCheck::Batch)
                .expect("verifies")
        })
    });
    group.bench_function("raw_dalek_verify_batch_keys_decompressed", |b| {
        b.iter(|| {
            ed25519_dalek::verify_batch(&message_refs, &dalek_signatures, &dalek_keys)
                .expect("verifies")
        })
    });
    group.bench_function("raw_zebra_batch", |b| {
        b.iter(|| {
            let mut verifier = ed25519_zebra::batch::Verifier::new();
            for (p, m) in j.commit.precommits.iter().zip(&messages) {
                verifier.queue((
                    VerificationKeyBytes::from(p.id.0),
                    ed25519_zebra::Signature::from_bytes(&p.signature),
                    m,
                ));
            }
            verifier.verify(rand_core::OsRng).expect("verifies")
        })
    });
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
